//! The waiting room: routing a request to its room, the admission decision for each
//! visitor, the queue page and status API, and the tick that lets people in.
//!
//! - [`admission`] the one answer to a request: route, bypass, the visitor's verdict
//! - [`decide`]   the decision table: token → inside; else visit the store → admitted or not
//! - [`ticket`]   what a forwarded request carries: session headers, cookies, origin commands
//! - [`api`]      everything under `/_anteroom/`: assets, `status`, `join`, `leave`, JWKS
//! - [`routing`]  normalized paths → room; bypass rules
//! - [`cookies`]  the queue and token cookies; signing, stripping
//! - [`status`]   the status object and visitor states; poll interval, ETA, `return_to`
//! - [`page`]     the queue page (HTML)
//! - [`cache`]    verified tokens, so busy buyers are not re-verified on every request
//! - [`challenge`] the proof-of-work challenge: issue, check, the `auto` difficulty curve
//! - [`proof`]    a challenge room's gate: the solution on the join call, the challenge instead
//! - [`caps`]     per-client caps: the client as places are counted (IPv4, IPv6 /64)
//! - [`enqueue`]  enqueue tokens: the account as the visitor, one place per account
//! - [`params`]   the join call's parameters (query, form or JSON body)
//! - [`ticker`]   the per-room admission tick, gauges, store reachability
//! - [`steer`]    closed-loop admission: the sample to the store, a decision per window

pub(crate) mod admission;
pub(crate) mod api;
pub(crate) mod cache;
mod caps;
pub(crate) mod challenge;
pub(crate) mod cookies;
mod decide;
mod enqueue;
pub(crate) mod page;
mod params;
mod problem;
mod proof;
pub(crate) mod queue_id;
mod reload;
pub(crate) mod routing;
pub(crate) mod status;
mod steer;
pub(crate) mod ticker;
pub(crate) mod ticket;

use crate::adaptive;
use crate::config::{BypassRule, ChallengeMode, Config, ConfigErrors, OnFailure, RoomConfig};
use crate::metrics::{Metrics, RoomMetrics};
use crate::store::{Policy, Remembered, RoomStats, Store};
use crate::time::Clock;
use crate::token::TokenKeys;
use cache::VerifiedTokens;
use cookies::QueueCookieSigner;
use page::Pages;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) use admission::{Admission, Answered};
pub(crate) use api::RESERVED_PREFIX;

/// One configured room and what this instance knows of it.
#[derive(Debug)]
pub struct Room {
    pub index: usize,
    pub name: String,
    pub config: RoomConfig,
    pub policy: Policy,
    prefixes: Vec<String>,
    hosts: Vec<String>,
    bypass: Vec<BypassRule>,
    pub queue_cookie: String,
    pub token_cookie: String,
    /// The prefix of the challenge the visitor is solving (a room with a challenge).
    pub challenge_cookie: String,
    /// The status of the queued answer (`queueing_status`, validated at load).
    queueing_status: http::StatusCode,
    /// The time zone of the times the page shows (`time_zone`, validated at load).
    pub zone: Option<crate::time::Zone>,
    /// Admissions per second, a moving average over the store's global count.
    rate_bits: AtomicU64,
    /// New places per second, a moving average over the store's global count: what an
    /// `auto` challenge difficulty follows.
    join_rate_bits: AtomicU64,
    /// Last known from the store (ticker), for answers that need no store call, and put
    /// back into the store should it lose the room's data.
    paused: AtomicBool,
    closed: AtomicBool,
    /// Admissions wait for the recount after a data loss: the room is not "open" then.
    recounting: AtomicBool,
    /// Live overrides of the limits as last seen (0: none).
    admit_per_minute_override: AtomicU32,
    max_active_users_override: AtomicU32,
    /// The store's epoch for this room as last seen (0: not yet).
    epoch: AtomicU64,
    /// Revocations have been read from the store up to this time (unix ms).
    revocations_read_ms: AtomicU64,
    /// The admission rate in force, as last seen (configured, pinned or the controller's).
    admit_per_minute: AtomicU32,
    /// `enqueue = "token"`: the shop's key for enqueue tokens.
    pub(crate) enqueue: Option<crate::token::enqueue::EnqueueVerifier>,
    /// Closed-loop admission: the bounds and targets, and this instance's sample of the
    /// room's origin traffic.
    pub(crate) control: adaptive::Settings,
    pub(crate) signals: adaptive::OriginSignals,
    /// This room's numbers (kept by name across reloads).
    metrics: Arc<RoomMetrics>,
    /// An operator's message to the line, as last seen in the store.
    message: arc_swap::ArcSwapOption<String>,
}

impl Room {
    fn new(
        index: usize,
        config: &RoomConfig,
        enqueue: Option<crate::token::enqueue::EnqueueVerifier>,
        metrics: Arc<RoomMetrics>,
    ) -> Self {
        let session_ms = config.session_duration.0.as_millis() as u64;
        let control = adaptive::Settings::of(config);
        Self {
            index,
            name: config.name.clone(),
            policy: Policy {
                admit_per_minute: config.admit_per_minute,
                max_active_users: config.max_active_users,
                session_ms,
                abandon_ms: config.abandon_after.0.as_millis() as u64,
                claim_ms: config.claim_within.0.as_millis() as u64,
                rejoin_ms: config.rejoin_grace().0.as_millis() as u64,
                reclaim_ms: crate::store::RECLAIM_MS,
                max_places_per_client: config.max_places_per_client.unwrap_or(0),
                opens_at_ms: config.opens_at_ms(),
                recount_ms: status::recount_ms(config.abandon_after.0.as_millis() as u64),
                adaptive_start: control.adaptive.then(|| control.starting_rate()),
                remembered: Remembered::default(),
            },
            prefixes: config.paths.iter().map(|p| routing::normalize_path(p)).collect(),
            hosts: config.hosts.iter().map(|h| routing::host_name(h).into_owned()).collect(),
            // Prefixes normalized once here, as request paths are (routing::normalize_path).
            bypass: config
                .bypass
                .rules()
                .iter()
                .map(|rule| match rule {
                    BypassRule::Prefix(prefix) => BypassRule::Prefix(routing::normalize_path(prefix)),
                    BypassRule::ScopedExtension { prefix, extension } => BypassRule::ScopedExtension {
                        prefix: routing::normalize_path(prefix),
                        extension: extension.clone(),
                    },
                    other => other.clone(),
                })
                .collect(),
            queueing_status: http::StatusCode::from_u16(config.queueing_status).unwrap_or(http::StatusCode::OK),
            queue_cookie: cookies::queue_cookie_name(&config.name),
            token_cookie: cookies::token_cookie_name(&config.name),
            challenge_cookie: cookies::challenge_cookie_name(&config.name),
            rate_bits: AtomicU64::new(f64::NAN.to_bits()),
            join_rate_bits: AtomicU64::new(0f64.to_bits()),
            paused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            recounting: AtomicBool::new(false),
            admit_per_minute_override: AtomicU32::new(0),
            max_active_users_override: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            revocations_read_ms: AtomicU64::new(0),
            admit_per_minute: AtomicU32::new(config.admit_per_minute),
            control,
            enqueue,
            signals: adaptive::OriginSignals::default(),
            metrics,
            message: arc_swap::ArcSwapOption::empty(),
            zone: config.zone(),
            config: config.clone(),
        }
    }

    /// Token lifetime: the session duration (renewed at half-life while the buyer is active).
    pub fn token_ttl_secs(&self) -> u64 {
        self.config.session_duration.0.as_secs().max(1)
    }

    /// The admission rate in force (admissions per minute), as last seen.
    pub fn admit_per_minute(&self) -> u32 {
        self.admit_per_minute.load(Ordering::Relaxed)
    }

    /// Measured admissions per second; until measured, the rate in force.
    pub fn admission_rate(&self) -> Option<f64> {
        if self.paused.load(Ordering::Relaxed) {
            return None;
        }
        let in_force = f64::from(self.admit_per_minute()) / 60.0;
        let measured = f64::from_bits(self.rate_bits.load(Ordering::Relaxed));
        if !(measured.is_finite() && measured > 0.01) {
            return Some(in_force);
        }
        // At a fixed rate the line cannot move faster than the rate in force, whatever a
        // burst of admissions just measured. An adaptive room's rate moves every few
        // seconds; there the measured pace is the better guess (capping it at a rate the
        // controller has just cut makes waiting buyers poll late, and the shop's load
        // then lags the controller's decisions).
        Some(if self.control.adaptive { measured } else { measured.min(in_force) })
    }

    /// The room's limits for a store call, with what this instance remembers of its
    /// live state (see `Remembered`).
    pub fn policy(&self) -> Policy {
        let override_of = |value: &AtomicU32| Some(value.load(Ordering::Relaxed)).filter(|n| *n > 0);
        Policy {
            remembered: Remembered {
                epoch: self.epoch(),
                paused: self.paused.load(Ordering::Relaxed),
                closed: self.closed.load(Ordering::Relaxed),
                admit_per_minute: override_of(&self.admit_per_minute_override),
                max_active_users: override_of(&self.max_active_users_override),
            },
            ..self.policy.clone()
        }
    }

    /// The store's epoch of this room as last seen (0: not yet).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Notes what the store says of the room (after every tick).
    fn note_stats(&self, stats: &RoomStats) {
        self.note_paused(stats.paused);
        self.note_closed(stats.closed);
        self.recounting.store(stats.recounting, Ordering::Relaxed);
        let override_of = |effective: u32, configured: u32| if effective == configured { 0 } else { effective };
        self.admit_per_minute.store(stats.admit_per_minute, Ordering::Relaxed);
        let pinned = if stats.rate_pinned { stats.admit_per_minute } else { 0 };
        self.admit_per_minute_override.store(pinned, Ordering::Relaxed);
        self.max_active_users_override
            .store(override_of(stats.max_active_users, self.policy.max_active_users), Ordering::Relaxed);
        self.note_epoch(stats.epoch);
        self.note_message(&stats.message);
    }

    /// This room's numbers on this instance (the gauges mirror the store).
    pub(crate) fn metrics(&self) -> &RoomMetrics {
        &self.metrics
    }

    /// The operator's message to the line, if there is one.
    pub fn message(&self) -> Option<String> {
        self.message.load().as_deref().cloned()
    }

    fn note_message(&self, message: &str) {
        if self.message.load().as_deref().map_or("", String::as_str) != message {
            self.message.store((!message.is_empty()).then(|| Arc::new(message.to_owned())));
        }
    }

    /// The store's epoch as a store call just reported it: when it changes, the store
    /// lost the room's data, and token holders are counted again at their next request.
    pub fn note_epoch(&self, epoch: u64) {
        if epoch != 0 {
            self.epoch.store(epoch, Ordering::Relaxed);
        }
    }

    /// What this instance believes until its next tick reads the store.
    pub fn note_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    pub fn note_closed(&self, closed: bool) {
        self.closed.store(closed, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub fn is_recounting(&self) -> bool {
        self.recounting.load(Ordering::Relaxed)
    }

    /// A visitor shows a proof of work before they get a place.
    pub fn asks_proof(&self) -> bool {
        self.config.challenge == ChallengeMode::ProofOfWork
    }

    /// `host`: already through `routing::host_name`.
    fn matches_host(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|mine| mine == host)
    }
}

/// A request's room, with the forms of its path that fall in it (see `routing`), which
/// the bypass rules look at.
#[derive(Debug)]
pub struct Routed<'a> {
    pub room: &'a Room,
    /// The normalized form, and the literal form when it differs.
    forms: [Option<String>; 2],
}

/// Where a request belongs.
#[derive(Debug)]
pub enum Routing<'a> {
    /// No room covers it: straight to the origin (still under origin protection).
    Outside,
    Room(Routed<'a>),
    /// Its normalized and literal paths fall in two different rooms.
    Ambiguous,
}

/// Everything the waiting room needs, shared by the gateway, the API and the tickers.
#[derive(Debug)]
pub struct WaitingRoom {
    pub rooms: Vec<Room>,
    pub store: Arc<Store>,
    pub tokens: TokenKeys,
    signer: QueueCookieSigner,
    challenges: challenge::ChallengeSigner,
    accounts: enqueue::Accounts,
    cache: VerifiedTokens,
    pages: Pages,
    metrics: Arc<Metrics>,
    on_failure: OnFailure,
    secure_cookies: bool,
    /// The time tokens are issued, renewed and checked at: the system's, or a test's.
    clock: TokenClock,
}

/// The clock the room reads token times from (Debug for the room's sake).
struct TokenClock(Clock);

impl std::fmt::Debug for TokenClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenClock")
    }
}

impl WaitingRoom {
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        tokens: TokenKeys,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConfigErrors> {
        Self::with_clock(config, store, tokens, metrics, crate::time::system_clock())
    }

    /// As `new`, reading token times from `clock` (unix µs): tests move time by hand.
    pub(crate) fn with_clock(
        config: &Config,
        store: Arc<Store>,
        tokens: TokenKeys,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let rooms = config
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| {
                let enqueue = room.enqueue_verifier(config.tokens.leeway).unwrap_or_else(|problem| {
                    problems.push(problem);
                    None
                });
                Room::new(i, room, enqueue, metrics.room_named(&room.name))
            })
            .collect();
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        Ok(Self {
            clock: TokenClock(clock),
            rooms,
            pages: Pages::new(&config.rooms).map_err(ConfigErrors)?,
            store,
            signer: QueueCookieSigner::new(tokens.cookie_secrets()),
            challenges: challenge::ChallengeSigner::new(tokens.cookie_secrets()),
            accounts: enqueue::Accounts::new(tokens.cookie_secrets()),
            tokens,
            cache: VerifiedTokens::default(),
            metrics,
            on_failure: config.store.on_failure,
            secure_cookies: config.tokens.secure_cookies,
        })
    }

    /// The room protecting this raw path on this (normalized) host: the most specific
    /// prefix wins, and a path is protected when either of its forms is in a room.
    pub fn route(&self, raw_path: &str, host: &str) -> Routing<'_> {
        if self.rooms.is_empty() {
            return Routing::Outside;
        }
        // Most paths are already canonical: one scan instead of two rewrites.
        let canonical = routing::is_canonical(raw_path);
        let normalized = if canonical { raw_path.to_owned() } else { routing::normalize_path(raw_path) };
        // The literal form, when it differs (a canonical path is its own).
        let literal = (!canonical).then(|| routing::literal_path(raw_path)).filter(|literal| *literal != normalized);
        let by_normalized = self.room_for(&normalized, host);
        let by_literal = match &literal {
            Some(literal) => self.room_for(literal, host),
            None => by_normalized,
        };
        let room = match (by_normalized, by_literal) {
            (None, None) => return Routing::Outside,
            (Some(a), Some(b)) if a.index != b.index => return Routing::Ambiguous,
            (Some(room), _) | (None, Some(room)) => room,
        };
        let in_room = |form: Option<&Room>| form.is_some_and(|r| r.index == room.index);
        let forms = [in_room(by_normalized).then_some(normalized), literal.filter(|_| in_room(by_literal))];
        Routing::Room(Routed { room, forms })
    }

    fn room_for(&self, path: &str, host: &str) -> Option<&Room> {
        self.rooms
            .iter()
            .filter(|room| room.matches_host(host))
            .flat_map(|room| room.prefixes.iter().map(move |prefix| (room, prefix)))
            .filter(|(_, prefix)| routing::covers(prefix, path))
            .max_by_key(|(room, prefix)| (prefix.len(), !room.hosts.is_empty()))
            .map(|(room, _)| room)
    }

    /// Does this request skip the room's queue? The monitoring secret or a client network
    /// rule lets it through; a path rule must match every form of the path in the room.
    pub fn bypassed(
        &self,
        routed: &Routed<'_>,
        method: &http::Method,
        client: IpAddr,
        headers: &http::HeaderMap,
    ) -> bool {
        let room = routed.room;
        if let Some(secret) = &room.config.bypass_secret {
            let offered = headers.get("x-anteroom-bypass").map(|v| v.as_bytes()).unwrap_or_default();
            if aws_lc_rs::constant_time::verify_slices_are_equal(offered, secret.expose().as_bytes()).is_ok() {
                return true;
            }
        }
        !room.bypass.is_empty()
            && routed.forms.iter().flatten().all(|form| routing::bypassed(&room.bypass, method, form, client))
    }

    pub fn room_by_name(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.name == name)
    }

    /// Now, in unix seconds, by the room's clock.
    fn now_secs(&self) -> u64 {
        (self.clock.0)() / 1_000_000
    }

    /// Now, in unix ms, by the room's clock.
    fn now_ms(&self) -> u64 {
        (self.clock.0)() / 1_000
    }

    /// Whether cookies get `Secure`: over TLS, or when configured (TLS ends before anteroom).
    fn secure(&self, tls: bool) -> bool {
        tls || self.secure_cookies
    }
}

/// Random bits for pre-queue order and poll jitter.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return crate::time::unix_us();
    }
    u64::from_le_bytes(bytes)
}

fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
