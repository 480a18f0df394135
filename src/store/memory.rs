//! The in-process store: the same operations as the Redis scripts, for one instance (the
//! embedded default and `anteroom demo`). Its data lives as long as the process; after a
//! restart the epoch changes, so visitors' signed queue cookies restore their places.

use super::dropped::Dropped;
use super::health::*;
use super::ledger::{Ledger, RoomNow};
use super::places::ClientPlaces;
use super::ranked::RankedSet;
use super::types::*;
use super::zset::ZSet;
use crate::time::Clock;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

mod find;

pub struct MemoryStore {
    rooms: Mutex<HashMap<String, Room>>,
    clock: Clock,
}

#[derive(Default)]
struct Room {
    waiting: RankedSet,
    seen: ZSet,
    dropped: Dropped,
    /// Spent proofs of work → when their challenge expires (ms).
    proofs: ZSet,
    /// Visitor → when their admission was claimed (ms), kept for the reclaim window.
    claims: ZSet,
    places: ClientPlaces,
    admitted: ZSet,
    active: ZSet,
    revoked: ZSet,
    seq: u64,
    epoch: u64,
    paused: bool,
    closed: bool,
    admit_per_minute: Option<u32>,
    max_active_users: Option<u32>,
    /// ms, fractional: slots are spaced exactly 60 s / admit_per_minute.
    next_slot: f64,
    last_tick: Option<u64>,
    /// Grants of the last 10 s: (ms, how many), oldest first, and their sum.
    grants: VecDeque<(u64, u64)>,
    window_used: u64,
    admitted_total: u64,
    joins_total: u64,
    recovered: bool,
    recount_until: u64,
    ledger: Ledger,
    message: String,
}

impl Room {
    /// The admission rate (a pinned override; the controller's in an adaptive room; else
    /// the configured one) and the capacity, as `admission_rate` in the scripts.
    fn limits(&self, policy: &Policy) -> (u32, u32) {
        let adaptive = policy.adaptive_start.map(|start| self.ledger.adaptive_apm.unwrap_or(start));
        (
            self.admit_per_minute.or(adaptive).unwrap_or(policy.admit_per_minute),
            self.max_active_users.unwrap_or(policy.max_active_users),
        )
    }

    fn stats(&self, now: u64, policy: &Policy) -> RoomStats {
        let (admit_per_minute, max_active_users) = self.limits(policy);
        RoomStats {
            queue_length: self.waiting.len(),
            active_sessions: self.active.len(),
            admitted_unclaimed: self.admitted.len(),
            admitted_total: self.admitted_total,
            joins_total: self.joins_total,
            paused: self.paused,
            closed: self.closed,
            admit_per_minute,
            max_active_users,
            epoch: self.epoch,
            recounting: self.recounting(now),
            rate_pinned: self.admit_per_minute.is_some(),
            control_reason: self.ledger.reason(self.admit_per_minute.is_some()),
            origin_health: self.ledger.health,
            message: self.message.clone(),
        }
    }

    fn recounting(&self, now: u64) -> bool {
        now < self.recount_until
    }

    fn start_recount(&mut self, now: u64, policy: &Policy) {
        self.recovered = true;
        self.recount_until = now + policy.recount_ms;
    }

    /// The room's data is gone when the instance knew another epoch: put back what it
    /// remembers and recount (as `room_epoch` in the scripts' prelude).
    fn recover_if_lost(&mut self, now: u64, policy: &Policy) {
        let remembered = &policy.remembered;
        if remembered.epoch != 0 && remembered.epoch != self.epoch && !self.recovered {
            self.paused |= remembered.paused;
            self.closed |= remembered.closed;
            self.admit_per_minute = self.admit_per_minute.or(remembered.admit_per_minute);
            self.max_active_users = self.max_active_users.or(remembered.max_active_users);
            self.start_recount(now, policy);
        }
    }

    /// Admissions still allowed in the 10 s window ending now.
    fn window_budget(&mut self, now: u64, admit_per_minute: u32) -> u64 {
        while let Some(&(at, n)) = self.grants.front() {
            if at > now.saturating_sub(10_000) {
                break;
            }
            self.grants.pop_front();
            self.window_used = self.window_used.saturating_sub(n);
        }
        u64::from(admit_per_minute).div_ceil(6).saturating_sub(self.window_used)
    }

    fn record_grant(&mut self, now: u64, n: u64) {
        self.grants.push_back((now, n));
        self.window_used += n;
        self.admitted_total += n;
    }
}

/// Session ids are `visitor.start`: the visitor holds the place in `active`.
fn visitor_of(session: &str) -> &str {
    session.split('.').next().unwrap_or(session)
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rooms = self.rooms.lock().map(|rooms| rooms.len()).unwrap_or(0);
        f.debug_struct("MemoryStore").field("rooms", &rooms).finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(crate::time::system_clock())
    }
}

impl MemoryStore {
    pub fn with_clock(clock: Clock) -> Self {
        Self { rooms: Mutex::new(HashMap::new()), clock }
    }

    fn with_room<T>(&self, room: &str, f: impl FnOnce(&mut Room, u64, u64) -> T) -> Result<T, StoreFault> {
        let now_us = (self.clock)();
        let mut rooms = self.rooms.lock().map_err(|_| StoreFault::unreachable("memory store poisoned"))?;
        let room = rooms.entry(room.to_owned()).or_insert_with(|| Room { epoch: now_us, ..Room::default() });
        Ok(f(room, now_us / 1000, now_us))
    }

    pub async fn visit(&self, room: &str, visit: &Visit<'_>, policy: &Policy) -> Result<Standing, StoreFault> {
        self.with_room(room, |r, now, now_us| {
            r.recover_if_lost(now, policy);
            let v = visit.visitor;
            let (admit_per_minute, capacity) = r.limits(policy);
            let scheduled = policy.opens_at_ms.is_some_and(|at| at > now);
            let answer = |r: &Room, state, position: Option<u64>, seq, immediate| Standing {
                state,
                position,
                queue_length: r.waiting.len(),
                seq,
                epoch: r.epoch,
                immediate,
                rejoined: false,
                replayed: false,
                claimed_ms: 0,
                capped: false,
                joined: false,
                now_ms: now,
            };
            // The client holds one place more (counted only where the room caps them).
            let client = visit.client.filter(|_| policy.max_places_per_client > 0);
            let hold_place = |r: &mut Room| {
                if let Some(client) = client {
                    r.places.hold(v, client);
                }
            };
            // A proof of work buys one place: spent here, refused the second time.
            let spend = |r: &mut Room| match visit.joining {
                Joining::Proof { id, until_ms } => {
                    let fresh = r.proofs.score(id).is_none();
                    if fresh {
                        r.proofs.add(id, until_ms);
                    }
                    fresh
                }
                _ => true,
            };
            let may_restore = visit.joining != Joining::AtOnce;
            // The admission is claimed now: the session starts, and for `reclaim_ms` one
            // more claim (an answer lost on its way) gets a token of the same session.
            let claim = |r: &mut Room, immediate| {
                r.active.add(v, now + policy.session_ms);
                r.claims.add(v, now);
                Standing { claimed_ms: now, ..answer(r, QueueState::Admitted, None, 0, immediate) }
            };
            // Shopping already and asking again without a token: once, shortly after the
            // claim; after that the admission belongs to whoever claimed it.
            let claim_again = |r: &mut Room| match r.claims.score(v) {
                Some(claimed) if claimed >= now.saturating_sub(policy.reclaim_ms) => {
                    r.claims.remove(v);
                    r.active.add(v, now + policy.session_ms);
                    Standing { claimed_ms: claimed, ..answer(r, QueueState::Admitted, None, 0, false) }
                }
                _ => answer(r, QueueState::Claimed, None, 0, false),
            };
            let in_line = |r: &mut Room, score: u64| {
                r.seen.add(v, now);
                if scheduled {
                    return answer(r, QueueState::Scheduled, None, score, false);
                }
                let position = r.waiting.rank(v).unwrap_or(0) + 1;
                let state = if r.paused { QueueState::Paused } else { QueueState::Waiting };
                answer(r, state, Some(position), score, false)
            };

            if r.closed {
                if r.active.score(v).is_some() {
                    return claim_again(r);
                }
                return answer(r, QueueState::Closed, None, 0, false);
            }
            if let Some(score) = r.waiting.score(v) {
                return in_line(r, score);
            }
            if r.admitted.remove(v) {
                r.seen.remove(v);
                return claim(r, false);
            }
            if r.active.score(v).is_some() {
                return claim_again(r);
            }

            // Dropped for silence and back within the grace, with the cookie of that place.
            let rejoining = visit
                .restore
                .filter(|restore| may_restore && policy.rejoin_ms > 0 && restore.epoch == r.epoch && restore.seq > 0);
            if let Some(restore) = rejoining {
                if r.dropped.take(v, restore.seq, now, policy.rejoin_ms) {
                    r.waiting.add(v, restore.seq);
                    hold_place(r);
                    return Standing { rejoined: true, ..in_line(r, restore.seq) };
                }
            }

            // Coming back after the room's data was lost, having polled until shortly before
            // (a place given up long ago earns nothing): back at the old sequence.
            let restorable = visit.restore.filter(|restore| {
                may_restore
                    && !scheduled
                    && restore.epoch != r.epoch
                    && restore.seen_ms >= now.saturating_sub(policy.abandon_ms + seen_refresh_ms(policy.abandon_ms))
            });
            let quiet = restorable.is_none()
                && visit.joining != Joining::Keep
                && !r.paused
                && !scheduled
                && !r.recounting(now)
                && admit_per_minute > 0
                && r.waiting.len() == 0;
            if quiet {
                let used = r.active.len() + r.admitted.len();
                if r.next_slot <= now as f64
                    && used < u64::from(capacity)
                    && r.window_budget(now, admit_per_minute) >= 1
                {
                    if !spend(r) {
                        return Standing { replayed: true, ..answer(r, QueueState::Waiting, None, 0, false) };
                    }
                    r.next_slot = now as f64 + 60_000.0 / f64::from(admit_per_minute);
                    r.record_grant(now, 1);
                    return claim(r, true);
                }
            }

            let no_place = match (scheduled, r.paused) {
                (true, _) => QueueState::Scheduled,
                (false, true) => QueueState::Paused,
                (false, false) => QueueState::Waiting,
            };
            if !visit.joining.takes_place() && restorable.is_none() {
                return answer(r, no_place, None, 0, false);
            }
            // A client at its share gets no place; its proof of work stays unspent.
            if restorable.is_none() && client.is_some_and(|c| r.places.held_by(c) >= policy.max_places_per_client) {
                return Standing { capped: true, ..answer(r, no_place, None, 0, false) };
            }
            if restorable.is_none() && !spend(r) {
                return Standing { replayed: true, ..answer(r, no_place, None, 0, false) };
            }
            let score = if scheduled {
                visit.prequeue_score
            } else if let Some(restore) = restorable {
                if !r.recovered {
                    r.start_recount(now, policy);
                }
                restore.seq
            } else {
                r.seq = (r.seq + 1).max(now_us);
                r.seq
            };
            r.waiting.add(v, score);
            hold_place(r);
            r.joins_total += 1;
            Standing { joined: true, ..in_line(r, score) }
        })
    }

    pub async fn leave(&self, room: &str, departure: &Departure<'_>) -> Result<(), StoreFault> {
        let Departure { visitor, seq, session } = *departure;
        self.with_room(room, |r, now, _| {
            r.dropped.forget(visitor, seq);
            r.waiting.remove(visitor);
            r.places.release(visitor);
            r.seen.remove(visitor);
            r.admitted.remove(visitor);
            r.active.remove(visitor);
            r.claims.remove(visitor);
            if let Some(session) = session {
                r.revoked.add(session, now);
            }
        })
    }

    pub async fn end_session(&self, room: &str, session: &str) -> Result<(), StoreFault> {
        self.with_room(room, |r, now, _| {
            r.active.remove(visitor_of(session));
            r.revoked.add(session, now);
        })
    }

    pub async fn renew(&self, room: &str, renewal: &Renewal<'_>, policy: &Policy) -> Result<bool, StoreFault> {
        self.with_room(room, |r, now, _| {
            r.recover_if_lost(now, policy);
            if r.revoked.score(renewal.session).is_some() {
                return false;
            }
            let visitor = visitor_of(renewal.session);
            let counted = r.active.score(visitor).is_some();
            r.active.raise(visitor, now + renewal.ttl_ms);
            let issued_at = now.saturating_sub(renewal.age_ms);
            if !counted && issued_at < r.epoch / 1000 && !r.recovered {
                r.start_recount(now, policy);
            }
            true
        })
    }

    pub async fn tick(&self, room: &str, policy: &Policy, revoked_since_ms: u64) -> Result<TickReport, StoreFault> {
        self.with_room(room, |r, now, _| {
            r.recover_if_lost(now, policy);
            r.dropped.trim(now, policy.rejoin_ms);
            for spent in r.proofs.up_to(now.saturating_sub(1), u64::MAX) {
                r.proofs.remove(&spent);
            }
            for old in r.claims.up_to(now.saturating_sub(policy.reclaim_ms + 1), u64::MAX) {
                r.claims.remove(&old);
            }
            let cutoff = now.saturating_sub(policy.abandon_ms);
            let mut abandoned = 0;
            for v in r.seen.up_to(cutoff, TICK_BATCH) {
                // A waiter's place is remembered for the rejoin grace; a pending admission is not.
                if let Some(seq) = r.waiting.score(&v).filter(|_| policy.rejoin_ms > 0) {
                    r.dropped.remember(&v, seq, now);
                }
                abandoned += u64::from(r.waiting.remove(&v)) + u64::from(r.admitted.remove(&v));
                r.places.release(&v);
                r.seen.remove(&v);
            }
            for v in r.admitted.up_to(now.saturating_sub(policy.claim_ms), TICK_BATCH) {
                abandoned += u64::from(r.admitted.remove(&v));
                r.seen.remove(&v);
            }
            let mut expired_sessions = 0;
            for session in r.active.up_to(now, u64::MAX) {
                expired_sessions += u64::from(r.active.remove(&session));
            }
            for session in r.revoked.up_to(now.saturating_sub(policy.session_ms + 60_000), u64::MAX) {
                r.revoked.remove(&session);
            }

            let (admit_per_minute, capacity) = r.limits(policy);
            let open = !r.paused
                && !r.closed
                && !r.recounting(now)
                && policy.opens_at_ms.is_none_or(|at| at <= now)
                && admit_per_minute > 0;
            let mut admitted = 0;
            let last_tick = r.last_tick.unwrap_or(now);
            if open {
                let free = u64::from(capacity).saturating_sub(r.active.len() + r.admitted.len());
                let want = free.min(TICK_BATCH).min(r.window_budget(now, admit_per_minute));
                let interval = 60_000.0 / f64::from(admit_per_minute);
                // A slot reserved at a lower rate waits no longer than one interval at the new one
                // after the last tick.
                let next_slot = r.next_slot.min(last_tick as f64 + interval);
                let start = next_slot.max(last_tick as f64).max(now.saturating_sub(1_000) as f64);
                if want > 0 && start <= now as f64 {
                    let by_rate = ((now as f64 - start) / interval).floor() as u64 + 1;
                    let heads = r.waiting.first(by_rate.min(want));
                    for v in &heads {
                        r.admitted.add(v, now);
                        r.waiting.remove(v);
                        r.places.release(v);
                    }
                    admitted = heads.len() as u64;
                    if admitted > 0 {
                        r.next_slot = start + admitted as f64 * interval;
                        r.record_grant(now, admitted);
                    }
                }
            }
            r.last_tick = Some(now);
            let revocations = r.revoked.from(revoked_since_ms, TICK_BATCH);
            TickReport { admitted, abandoned, expired_sessions, stats: r.stats(now, policy), revocations }
        })
    }

    pub async fn stats(&self, room: &str, policy: &Policy) -> Result<RoomStats, StoreFault> {
        self.with_room(room, |r, now, _| r.stats(now, policy))
    }

    pub async fn set_paused(&self, room: &str, paused: bool) -> Result<(), StoreFault> {
        self.with_room(room, |r, _, _| r.paused = paused)
    }

    pub async fn set_closed(&self, room: &str, closed: bool) -> Result<(), StoreFault> {
        self.with_room(room, |r, _, _| r.closed = closed)
    }

    pub async fn set_limits(&self, room: &str, limits: LimitOverrides) -> Result<(), StoreFault> {
        self.with_room(room, |r, _, _| {
            if limits.reset {
                if let Some(pinned) = r.admit_per_minute.take() {
                    r.ledger.unpin(pinned);
                }
                r.max_active_users = None;
            }
            if limits.admit_per_minute.is_some() {
                r.admit_per_minute = limits.admit_per_minute;
            }
            if limits.max_active_users.is_some() {
                r.max_active_users = limits.max_active_users;
            }
        })
    }

    pub async fn set_message(&self, room: &str, message: &str) -> Result<(), StoreFault> {
        self.with_room(room, |r, _, _| message.clone_into(&mut r.message))
    }

    pub async fn unpin_rate(&self, room: &str) -> Result<(), StoreFault> {
        self.with_room(room, |r, _, _| {
            if let Some(pinned) = r.admit_per_minute.take() {
                r.ledger.unpin(pinned);
            }
        })
    }

    pub async fn report_health(
        &self,
        room: &str,
        policy: &Policy,
        sample: &HealthSample,
        window_ms: u64,
    ) -> Result<Option<HealthWindow>, StoreFault> {
        self.with_room(room, |r, now, _| {
            r.recover_if_lost(now, policy);
            let at = RoomNow {
                now,
                admitted_total: r.admitted_total,
                queue_length: r.waiting.len(),
                pinned: r.admit_per_minute.is_some(),
                rate: r.limits(policy).0,
            };
            r.ledger.report(&at, sample, window_ms)
        })
    }

    pub async fn adapt(&self, room: &str, window_id: u64, update: &ControlUpdate) -> Result<bool, StoreFault> {
        self.with_room(room, |r, _, _| {
            let pinned = r.admit_per_minute.is_some();
            r.ledger.adapt(window_id, update, pinned)
        })
    }
}
