//! Who caused a failure, for logs and for the status a client gets: the client (fix the
//! request), the origin or the store (try later), or anteroom itself (a bug).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    Client,
    Origin,
    Store,
    Anteroom,
}

impl Blame {
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::Origin => "origin",
            Blame::Store => "store",
            Blame::Anteroom => "anteroom",
        }
    }
}

impl fmt::Display for Blame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
