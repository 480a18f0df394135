//! The binary's own command handlers that are too long to sit in `main.rs`. (The
//! library knows nothing of these: they turn arguments into the library's plans.)

pub(crate) mod rehearse;
