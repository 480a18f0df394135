//! Closed-loop admission: a room's admission rate follows the origin's health.
//!
//! - [`signals`]    what this instance sees of a room's origin traffic (lock-free counts)
//! - [`controller`] the decision per control window, from every instance's sums
//!
//! The store sums the instances' samples per window and keeps the controller's state, so
//! every instance admits at one rate (`store::health`); the room's ticker drives both.

pub(crate) mod controller;
pub(crate) mod signals;

pub(crate) use controller::{decide, Settings, WINDOW};
pub(crate) use signals::{InFlight, OriginSignals, Outcome};
