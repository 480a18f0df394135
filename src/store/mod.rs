//! Where the queues live: the `Store` with its two backends, `memory` (in-process, one
//! instance) and `redis` (shared by every gateway instance; one Lua script per change).
//!
//! Both implement the same operations with the same meaning; `tests/store_conformance.rs`
//! runs one suite against both. The model, per room:
//!
//! - `waiting`: visitor → order score (join sequence; a random score before `opens_at`)
//! - heartbeats: when each waiter was last heard from (ms), for abandonment. Redis keeps
//!   them packed, six bytes per place at the place's *slot* (read from its order score;
//!   see `lua/prelude.lua`), and looks at a stretch of the line each tick, with the heads
//!   checked before they are admitted; `seen` (visitor → ms) holds the rest: admissions
//!   not yet claimed, and places without a slot
//! - `dropped`: `visitor:seq` → when dropped for silence (ms); a visitor who comes back
//!   within `rejoin_ms` with the signed cookie of that place gets it back
//! - `admitted`: visitor → when admitted (ms); the visitor's next visit claims it
//! - `active`: visitor → session expiry (ms); capacity accounting
//! - `revoked`: session id → when revoked (ms); tokens of these sessions are refused
//! - `state`: paused flag, live overrides, the next admission slot, counters, epoch,
//!   the recount after a data loss
//! - `grants`: admissions granted in the last 10 s
//!
//! Admissions are spread evenly: each one takes a *slot* at least `60 s / admit_per_minute`
//! after the previous one, is granted when its slot has come (never ahead of time), and
//! budget unused since the last tick is lost rather than saved up (no catch-up burst after
//! a pause or a quiet spell). On top of the spacing, a log of grants caps any 10 s window
//! of grant time at `ceil(admit_per_minute / 6)`, whichever instance granted them.
//!
//! Data loss (a Redis restart without persistence, `FLUSHALL`, a memory store's process
//! restart) gives the room a new *epoch*. The first store call that finds the room empty,
//! from an instance that knew the old epoch, puts back what that instance remembers of the
//! operator's settings (paused, closed, live limits); admissions then wait `recount_ms`
//! while waiters come back with their signed cookies (restored at their old sequence if
//! they were polling until shortly before) and token holders are counted again. A
//! restored cookie also starts the recount, for stores whose instances remember nothing
//! (a restarted memory store).

mod dropped;
#[cfg(test)]
pub(crate) mod faulty;
mod health;
mod ledger;
mod memory;
mod places;
mod ranked;
mod redis;
mod reply;
mod types;
mod visits;
mod zset;

pub use self::memory::MemoryStore;
pub use self::redis::{visit_script_source, RedisStore, ROOM_KEYS};
pub use health::*;
pub use types::*;

#[cfg(test)]
mod tests;

use std::time::Duration;

/// The store a gateway instance talks to.
#[derive(Debug)]
pub enum Store {
    Memory(MemoryStore),
    /// Boxed: its scripts and connection make it several times the memory store's size.
    Redis(Box<RedisStore>),
    /// The memory store, failing on demand (unit tests of the outage paths).
    #[cfg(test)]
    Faulty(faulty::Faulty),
}

/// Longest a request waits on the store before it takes the `on_failure` path: the
/// redis client's own timeouts cover the socket, this covers everything else (reconnect
/// back-off included), so that no visitor's request hangs on the store.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(800);

/// An operator's search walks a whole room (a million waiters take a few hundred steps);
/// it is nobody's request to the shop, so it may take longer.
const FIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls the backend within `CALL_TIMEOUT`; a failure names the operation and room.
macro_rules! dispatch {
    ($self:ident, $op:ident, $room:ident, $store:ident => $call:expr) => {
        dispatch!($self, $op, $room, CALL_TIMEOUT, $store => $call)
    };
    ($self:ident, $op:ident, $room:ident, $timeout:expr, $store:ident => $call:expr) => {{
        let call = async {
            match $self {
                Store::Memory($store) => $call.await,
                Store::Redis($store) => $call.await,
                #[cfg(test)]
                Store::Faulty($store) => $call.await,
            }
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout($timeout, call).await {
            Ok(result) => result.map_err(|fault| fault.during(StoreOp::$op, $room)),
            Err(_) => Err(StoreFault::Timeout($timeout).during(StoreOp::$op, $room)),
        };
        crate::metrics::store_call(StoreOp::$op as usize, started.elapsed());
        result
    }};
}

impl Store {
    /// Join, or report on, `visitor`'s place (`join` and `status`: a visitor who
    /// presents a valid queue cookie and holds no place gets one, so they are one
    /// operation). Also the heartbeat. Admits at once when the room is open.
    pub async fn visit(&self, room: &str, visitor: &Visit<'_>, policy: &Policy) -> Result<Standing, StoreError> {
        dispatch!(self, Visit, room, s => s.visit(room, visitor, policy))
    }

    /// Gives up the visitor's place (one dropped for silence too), pending admission and
    /// session; the session's tokens are refused from now on.
    pub async fn leave(&self, room: &str, departure: &Departure<'_>) -> Result<(), StoreError> {
        dispatch!(self, Leave, room, s => s.leave(room, departure))
    }

    /// Every visitor whose id starts with `prefix`, wherever they are in the room: in line,
    /// admitted, shopping, or dropped within the rejoin grace. Walks the room's sets in
    /// steps, so a long line is never blocked for the whole walk.
    pub async fn find_visitors(&self, room: &str, prefix: &str) -> Result<Vec<Found>, StoreError> {
        dispatch!(self, Find, room, FIND_TIMEOUT, s => s.find_visitors(room, prefix))
    }

    /// Ends a session early (`X-Anteroom-Command: revoke`): frees its capacity, and its
    /// tokens are refused from now on, by every instance (they learn it at their next tick).
    pub async fn end_session(&self, room: &str, session: &str) -> Result<(), StoreError> {
        dispatch!(self, EndSession, room, s => s.end_session(room, session))
    }

    /// Makes sure the session is counted until at least its expiry (renewal, and counting
    /// a token holder again after a data loss); `false` when it was revoked. A token issued
    /// before the room's data began proves the data was lost, and starts the recount.
    pub async fn renew(&self, room: &str, renewal: &Renewal<'_>, policy: &Policy) -> Result<bool, StoreError> {
        dispatch!(self, Renew, room, s => s.renew(room, renewal, policy))
    }

    /// Drops abandoned visitors and expired sessions, then admits from the head of the
    /// queue within the rate and capacity. Safe when several instances tick at once.
    /// Reports the sessions revoked since `revoked_since_ms` (inclusive), so that every
    /// instance refuses their tokens.
    pub async fn tick(&self, room: &str, policy: &Policy, revoked_since_ms: u64) -> Result<TickReport, StoreError> {
        dispatch!(self, Tick, room, s => s.tick(room, policy, revoked_since_ms))
    }

    /// The room's live numbers, without touching anyone's place.
    pub async fn stats(&self, room: &str, policy: &Policy) -> Result<RoomStats, StoreError> {
        dispatch!(self, Stats, room, s => s.stats(room, policy))
    }

    /// Pauses (no admissions) or resumes a room, for every instance.
    pub async fn set_paused(&self, room: &str, paused: bool) -> Result<(), StoreError> {
        dispatch!(self, SetPaused, room, s => s.set_paused(room, paused))
    }

    /// Closes a room (the sale is over: nobody new gets in, shoppers finish) or reopens it.
    pub async fn set_closed(&self, room: &str, closed: bool) -> Result<(), StoreError> {
        dispatch!(self, SetClosed, room, s => s.set_closed(room, closed))
    }

    /// Live overrides of the configured limits, for every instance (`None` leaves one as is).
    pub async fn set_limits(&self, room: &str, limits: LimitOverrides) -> Result<(), StoreError> {
        dispatch!(self, SetLimits, room, s => s.set_limits(room, limits))
    }

    /// An operator's message to everyone in the line (empty: none), for every instance.
    pub async fn set_message(&self, room: &str, message: &str) -> Result<(), StoreError> {
        dispatch!(self, SetMessage, room, s => s.set_message(room, message))
    }

    /// Hands a pinned admission rate back to an adaptive room's controller, which goes on
    /// from the pinned value.
    pub async fn unpin_rate(&self, room: &str) -> Result<(), StoreError> {
        dispatch!(self, Unpin, room, s => s.unpin_rate(room))
    }

    /// Adds this instance's sample of the room's origin traffic to the current control
    /// window. The call that finds the window (`window_ms` long) over ends it and gets
    /// the sums of every instance: exactly one caller per window decides.
    pub async fn report_health(
        &self,
        room: &str,
        policy: &Policy,
        sample: &HealthSample,
        window_ms: u64,
    ) -> Result<Option<HealthWindow>, StoreError> {
        dispatch!(self, Health, room, s => s.report_health(room, policy, sample, window_ms))
    }

    /// The controller's decision on window `window_id`: applied unless another window has
    /// ended since, or an operator pinned the rate (then only the verdict is kept; so it
    /// is when `update.rate` is `None`, for a room at a fixed rate). Returns whether the
    /// rate was applied.
    pub async fn adapt(&self, room: &str, window_id: u64, update: &ControlUpdate) -> Result<bool, StoreError> {
        dispatch!(self, Adapt, room, s => s.adapt(room, window_id, update))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
            #[cfg(test)]
            Store::Faulty(_) => "faulty",
        }
    }
}
