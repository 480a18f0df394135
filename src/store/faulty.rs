//! A store that fails on demand, for tests of the `on_failure` paths and of token holders
//! riding out an outage, without killing a server. Otherwise the memory store.

use super::health::*;
use super::memory::MemoryStore;
use super::types::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Faulty {
    inner: MemoryStore,
    down: AtomicBool,
}

/// Each operation fails while the store is down, else is the memory store's.
macro_rules! fallible {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        pub async fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreFault> {
            if self.down.load(Relaxed) {
                return Err(StoreFault::unreachable("connection refused (injected)"));
            }
            self.inner.$name($($arg),*).await
        }
    )*};
}

impl Faulty {
    /// From now on every call fails (`true`) or works again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Relaxed);
    }

    fallible! {
        visit(room: &str, visit: &Visit<'_>, policy: &Policy) -> Standing;
        leave(room: &str, departure: &Departure<'_>) -> ();
        end_session(room: &str, session: &str) -> ();
        renew(room: &str, renewal: &Renewal<'_>, policy: &Policy) -> bool;
        tick(room: &str, policy: &Policy, revoked_since_ms: u64) -> TickReport;
        stats(room: &str, policy: &Policy) -> RoomStats;
        set_paused(room: &str, paused: bool) -> ();
        set_closed(room: &str, closed: bool) -> ();
        set_limits(room: &str, limits: LimitOverrides) -> ();
        unpin_rate(room: &str) -> ();
        set_message(room: &str, message: &str) -> ();
        report_health(room: &str, policy: &Policy, sample: &HealthSample, window_ms: u64) -> Option<HealthWindow>;
        adapt(room: &str, window_id: u64, update: &ControlUpdate) -> bool;
        find_visitors(room: &str, prefix: &str) -> Vec<Found>;
    }
}
