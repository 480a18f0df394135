//! The plain data the store operations take and return.

use super::health::{ControlReason, OriginHealth};
use crate::blame::Blame;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Most visitors one tick drops or admits (and revocations it reports), to keep each
/// script short.
pub const TICK_BATCH: u64 = 2_000;

/// How long after an admission is claimed it may be claimed once more (the answer that
/// carried the token was lost, a retried call): after that, or after that one more claim,
/// the admission belongs to whoever claimed it, and a queue cookie handed around gets
/// nothing (`QueueState::Claimed`).
pub const RECLAIM_MS: u64 = 30_000;

/// How often a queue cookie's "last seen" is refreshed (at most every 10 s, and well
/// inside `abandon_ms`); a restore after a data loss allows for it.
pub fn seen_refresh_ms(abandon_ms: u64) -> u64 {
    (abandon_ms / 4).clamp(250, 10_000)
}

/// The room as a store operation needs it: its configured limits, and what the calling
/// instance remembers of its live state (put back if the store lost it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub admit_per_minute: u32,
    pub max_active_users: u32,
    pub session_ms: u64,
    /// A waiter without a heartbeat for this long is dropped.
    pub abandon_ms: u64,
    /// An admission nobody claimed within this long is dropped.
    pub claim_ms: u64,
    /// A waiter dropped for silence who comes back within this long (with the signed
    /// queue cookie of that place) gets the old place back. 0: never.
    pub rejoin_ms: u64,
    /// An admission claimed within this long may be claimed once more ([`RECLAIM_MS`]).
    pub reclaim_ms: u64,
    /// Places one client (address) may hold in line at once; 0: any number.
    pub max_places_per_client: u32,
    /// Unix ms; before it the room pre-queues in random order.
    pub opens_at_ms: Option<u64>,
    /// After a data loss is noticed, admissions wait this long for waiters to come back
    /// with their cookies and for shoppers' tokens to be counted again.
    pub recount_ms: u64,
    /// An adaptive room: the rate its controller starts at (`admit_per_minute` is then
    /// the ceiling). `None`: the room admits at a fixed rate.
    pub adaptive_start: Option<u32>,
    pub remembered: Remembered,
}

/// What an instance last learned of a room from the store (all empty until it has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remembered {
    /// 0: nothing known yet.
    pub epoch: u64,
    pub paused: bool,
    pub closed: bool,
    /// Live overrides of the configured limits.
    pub admit_per_minute: Option<u32>,
    pub max_active_users: Option<u32>,
}

/// One visitor's call.
#[derive(Clone, Debug)]
pub struct Visit<'a> {
    pub visitor: &'a str,
    /// From the visitor's signed queue cookie: where they stood, in which store epoch.
    pub restore: Option<Restore>,
    /// The order score to use if the visitor joins before `opens_at` (random, so that
    /// arriving early gives no advantage).
    pub prequeue_score: u64,
    /// Whether the visit may take a place the visitor does not hold yet.
    pub joining: Joining<'a>,
    /// The client's address as the room counts places per client (IPv4, or an IPv6 /64),
    /// when the room caps them.
    pub client: Option<&'a str>,
}

/// What a visit may take beyond the place the visitor already holds (which it always
/// keeps, restores after a data loss, or takes back within the rejoin grace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joining<'a> {
    /// Only an admission at once in an open room: a visitor without a queue cookie holds
    /// no place, so cookie-less clients cannot grow the line.
    AtOnce,
    /// A place (or an admission at once).
    Place,
    /// As `Place`, paid with a proof of work: the store remembers its id until `until_ms`
    /// and refuses it a second time (`Standing::replayed`), so one proof buys one place.
    Proof { id: &'a str, until_ms: u64 },
    /// Nothing new: the room asks for a proof before a place.
    Keep,
}

impl Joining<'_> {
    /// A place the visitor does not hold may be taken.
    pub fn takes_place(&self) -> bool {
        matches!(self, Joining::Place | Joining::Proof { .. })
    }
}

/// A token holder's session, to count (again) until its token expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renewal<'a> {
    pub session: &'a str,
    /// How long the session lasts from now. A duration, not a time: the store adds it to
    /// its own clock, the one clock all instances share.
    pub ttl_ms: u64,
    /// How long ago the token was issued: before the room's data began means the data
    /// was lost.
    pub age_ms: u64,
}

/// A visitor giving up their place (and session): `leave`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Departure<'a> {
    pub visitor: &'a str,
    /// The sequence of the place the visitor's cookie names (0: none): a place dropped for
    /// silence is given up too, so the cookie cannot bring it back.
    pub seq: u64,
    /// The session of the visitor's token, revoked everywhere.
    pub session: Option<&'a str>,
}

/// Where a visitor's signed queue cookie says they stood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restore {
    pub epoch: u64,
    pub seq: u64,
    /// Unix ms when the place was last confirmed (0: unknown). After a data loss only a
    /// place confirmed within `abandon_ms` (plus [`seen_refresh_ms`]) is restored: one that
    /// had been left or dropped would otherwise jump back to the front.
    pub seen_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueState {
    /// In line; `position` is known.
    Waiting,
    /// Their turn has come: the caller issues the token now (the session exists).
    Admitted,
    /// In the pre-queue before `opens_at`; order not yet known.
    Scheduled,
    /// In line, but admissions are paused.
    Paused,
    /// The room is closed (sale over): no place, no admission.
    Closed,
    /// Shopping already, on a token this request does not carry: the admission was
    /// claimed (by another client with the same queue cookie, or long ago) and is not
    /// handed out again.
    Claimed,
}

impl QueueState {
    pub const ALL: [QueueState; 6] = [
        QueueState::Waiting,
        QueueState::Admitted,
        QueueState::Scheduled,
        QueueState::Paused,
        QueueState::Closed,
        QueueState::Claimed,
    ];

    /// The number the Redis scripts answer with. Defined only here: the scripts get these
    /// as constants (`WAITING`, …), so the two sides cannot disagree.
    pub fn code(self) -> i64 {
        match self {
            QueueState::Waiting => 1,
            QueueState::Admitted => 2,
            QueueState::Scheduled => 3,
            QueueState::Paused => 4,
            QueueState::Closed => 5,
            QueueState::Claimed => 6,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.code() == code)
    }

    /// The constant's name in the scripts.
    pub fn lua_name(self) -> &'static str {
        match self {
            QueueState::Waiting => "WAITING",
            QueueState::Admitted => "ADMITTED",
            QueueState::Scheduled => "SCHEDULED",
            QueueState::Paused => "PAUSED",
            QueueState::Closed => "CLOSED",
            QueueState::Claimed => "CLAIMED",
        }
    }
}

/// Where a visitor stands after `visit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub state: QueueState,
    /// 1-based rank among live waiters; `None` when unknown (pre-queue, admitted).
    pub position: Option<u64>,
    pub queue_length: u64,
    /// The visitor's order score, for the queue cookie (0 when admitted).
    pub seq: u64,
    /// Changes when the store loses the room's data (wipe, memory store restart).
    pub epoch: u64,
    /// Admitted at once because the room was open (never queued).
    pub immediate: bool,
    /// Back at the old place after being dropped for silence (within `rejoin_ms`).
    pub rejoined: bool,
    /// The visit's proof of work had bought a place before: no place for it now.
    pub replayed: bool,
    /// No place: the visitor's client holds `max_places_per_client` already.
    pub capped: bool,
    /// This visit made the place (a new one, or one restored after a data loss).
    pub joined: bool,
    /// Admitted: when the admission was claimed (unix ms, the store's clock), the same for
    /// a claim and the one more claim allowed after it, so both name one session.
    pub claimed_ms: u64,
    /// The store's clock (unix ms) at this visit.
    pub now_ms: u64,
}

/// A visitor the store knows, found for an operator (support looking up a queue id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub visitor: String,
    pub whereabouts: Whereabouts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whereabouts {
    /// In line at `position`, last heard from at `seen_ms` (unix ms).
    Waiting { position: u64, seen_ms: u64 },
    /// Their turn came at `at_ms`; not yet claimed.
    Admitted { at_ms: u64 },
    /// Shopping; the session lasts until `until_ms` unless renewed.
    Shopping { until_ms: u64 },
    /// Dropped for silence at `at_ms`; the place comes back if they return within the grace.
    Dropped { at_ms: u64 },
}

/// What one tick did, and the room's numbers after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub admitted: u64,
    pub abandoned: u64,
    pub expired_sessions: u64,
    pub stats: RoomStats,
    /// Sessions revoked at or after the time asked for: (session id, unix ms revoked),
    /// oldest first, at most [`TICK_BATCH`].
    pub revocations: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Visitors waiting in line.
    pub queue_length: u64,
    pub active_sessions: u64,
    /// Admissions whose token has not been claimed yet.
    pub admitted_unclaimed: u64,
    /// Admissions in this room since its data began, over all instances.
    pub admitted_total: u64,
    /// Places taken in this room since its data began, over all instances (the join
    /// rate an `auto` challenge difficulty follows).
    pub joins_total: u64,
    pub paused: bool,
    /// Closed: nobody new is admitted; open sessions go on.
    pub closed: bool,
    /// Effective limits (configured, or the live override).
    pub admit_per_minute: u32,
    pub max_active_users: u32,
    /// Changes when the store loses the room's data (0: the room has no data yet).
    pub epoch: u64,
    /// Admissions wait while the line and sessions are counted again after a data loss.
    pub recounting: bool,
    /// An operator set `admit_per_minute` live: it holds until unpinned.
    pub rate_pinned: bool,
    /// Why the admission rate last changed (an adaptive room; `Manual` while pinned).
    pub control_reason: ControlReason,
    /// The last verdict on the origin's health.
    pub origin_health: OriginHealth,
    /// An operator's message to the line (empty: none).
    pub message: String,
}

/// The longest message to the line, in characters.
pub const MAX_MESSAGE_CHARS: usize = 280;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub admit_per_minute: Option<u32>,
    pub max_active_users: Option<u32>,
    /// Drop the live values first, so that the configured ones apply again (a pinned rate of
    /// an adaptive room goes back to the controller, as `unpin_rate` hands it).
    pub reset: bool,
}

/// A store call that failed: which operation, for which room, and why. This is what a
/// log line on the day needs to say.
#[derive(Clone, Debug, thiserror::Error)]
#[error("store {op} of room `{room}`: {fault}")]
pub struct StoreError {
    pub op: StoreOp,
    pub room: String,
    #[source]
    pub fault: StoreFault,
}

impl StoreError {
    pub fn blame(&self) -> Blame {
        match self.fault {
            // A reply the protocol does not allow is anteroom's own bug (or mixed versions).
            StoreFault::Protocol(_) => Blame::Anteroom,
            _ => Blame::Store,
        }
    }
}

/// The store's operations, as errors and logs name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Visit,
    Leave,
    EndSession,
    Renew,
    Tick,
    Stats,
    SetPaused,
    SetClosed,
    SetLimits,
    SetMessage,
    Unpin,
    Health,
    Adapt,
    Find,
}

impl StoreOp {
    /// Every operation, in declaration order (the metrics' `op` labels follow it).
    pub const ALL: [StoreOp; 14] = [
        StoreOp::Visit,
        StoreOp::Leave,
        StoreOp::EndSession,
        StoreOp::Renew,
        StoreOp::Tick,
        StoreOp::Stats,
        StoreOp::SetPaused,
        StoreOp::SetClosed,
        StoreOp::SetLimits,
        StoreOp::SetMessage,
        StoreOp::Unpin,
        StoreOp::Health,
        StoreOp::Adapt,
        StoreOp::Find,
    ];
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreOp::Visit => "visit",
            StoreOp::Leave => "leave",
            StoreOp::EndSession => "end_session",
            StoreOp::Renew => "renew",
            StoreOp::Tick => "tick",
            StoreOp::Stats => "stats",
            StoreOp::SetPaused => "set_paused",
            StoreOp::SetClosed => "set_closed",
            StoreOp::SetLimits => "set_limits",
            StoreOp::SetMessage => "set_message",
            StoreOp::Unpin => "unpin",
            StoreOp::Health => "health",
            StoreOp::Adapt => "adapt",
            StoreOp::Find => "find",
        })
    }
}

/// Why a store call failed. Cloned when one batched call answers many visitors.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreFault {
    /// The store could not be reached or refused the call (the client library's error).
    #[error("unreachable: {0}")]
    Unreachable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer the protocol does not allow: a bug or a script of another version.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The store cannot be set up from the config (a bad URL, an unreadable CA file).
    #[error("{0}")]
    Setup(String),
}

impl StoreFault {
    pub fn unreachable(why: &str) -> Self {
        StoreFault::Unreachable(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(why)))
    }

    /// Names the operation and room the fault happened in.
    pub fn during(self, op: StoreOp, room: &str) -> StoreError {
        StoreError { op, room: room.to_owned(), fault: self }
    }
}
