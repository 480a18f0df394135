//! Client connections open on this instance's public listeners, and how many of them are
//! parked (idle HTTP/1 connections holding no HTTP buffers).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct ClientConnections {
    open: AtomicU64,
    parked: AtomicU64,
}

impl ClientConnections {
    /// Counts a connection as open until the guard is dropped.
    pub(crate) fn opened(self: &Arc<Self>) -> Counted {
        self.open.fetch_add(1, Relaxed);
        Counted { counts: self.clone(), parked: false }
    }

    /// (serving, parked): open connections that are not parked, and those that are.
    pub(crate) fn now(&self) -> (u64, u64) {
        let parked = self.parked.load(Relaxed);
        (self.open.load(Relaxed).saturating_sub(parked), parked)
    }
}

/// One open connection; its drop ends the count (and the parking, if parked).
#[derive(Debug)]
pub(crate) struct Counted {
    counts: Arc<ClientConnections>,
    parked: bool,
}

impl Counted {
    pub(crate) fn set_parked(&mut self, parked: bool) {
        if parked != self.parked {
            self.parked = parked;
            match parked {
                true => self.counts.parked.fetch_add(1, Relaxed),
                false => self.counts.parked.fetch_sub(1, Relaxed),
            };
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.set_parked(false);
        self.counts.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_as_serving_or_parked_until_it_closes() {
        let counts = Arc::new(ClientConnections::default());
        let mut one = counts.opened();
        let _two = counts.opened();
        assert_eq!(counts.now(), (2, 0));
        one.set_parked(true);
        one.set_parked(true);
        assert_eq!(counts.now(), (1, 1));
        drop(one);
        assert_eq!(counts.now(), (1, 0));
    }
}
