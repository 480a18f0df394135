//! The in-process store: the same operations as the Redis scripts, for one instance (the
//! embedded default and `anteroom demo`). Its data lives as long as the process; after a
//! restart the epoch changes, so visitors' signed queue cookies restore their places.

use super::ranked::RankedSet;
use super::types::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Unix time in microseconds; injectable so tests can drive time by hand.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub struct MemoryStore {
    rooms: Mutex<HashMap<String, Room>>,
    clock: Clock,
}

/// A sorted set: member → score, and the same ordered by (score, member).
#[derive(Default)]
struct ZSet {
    scores: HashMap<String, u64>,
    order: BTreeSet<(u64, String)>,
}

impl ZSet {
    fn add(&mut self, member: &str, score: u64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(old, member.to_owned()));
        }
        self.order.insert((score, member.to_owned()));
    }

    fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => self.order.remove(&(score, member.to_owned())),
            None => false,
        }
    }

    fn score(&self, member: &str) -> Option<u64> {
        self.scores.get(member).copied()
    }

    fn len(&self) -> u64 {
        self.scores.len() as u64
    }

    /// Members with `min < score`, counted.
    fn count_above(&self, min: u64) -> u64 {
        self.order.range((min + 1, String::new())..).count() as u64
    }

    /// Members with score ≤ max, lowest first, at most `limit`.
    fn up_to(&self, max: u64, limit: u64) -> Vec<String> {
        self.order.iter().take_while(|(s, _)| *s <= max).take(limit as usize).map(|(_, m)| m.clone()).collect()
    }
}

#[derive(Default)]
struct Room {
    waiting: RankedSet,
    seen: ZSet,
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
    admitted_total: u64,
}

impl Room {
    fn pending(&self, now: u64) -> u64 {
        self.admitted.count_above(now)
    }

    fn queue_length(&self, now: u64) -> u64 {
        self.waiting.len() + self.pending(now)
    }

    fn limits(&self, policy: &Policy) -> (u32, u32) {
        (
            self.admit_per_minute.unwrap_or(policy.admit_per_minute),
            self.max_active_users.unwrap_or(policy.max_active_users),
        )
    }

    fn stats(&self, now: u64, policy: &Policy) -> RoomStats {
        let (admit_per_minute, max_active_users) = self.limits(policy);
        RoomStats {
            queue_length: self.queue_length(now),
            active_sessions: self.active.len(),
            admitted_unclaimed: self.admitted.len() - self.pending(now),
            admitted_total: self.admitted_total,
            paused: self.paused,
            closed: self.closed,
            admit_per_minute,
            max_active_users,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(unix_us))
    }
}

impl MemoryStore {
    pub fn with_clock(clock: Clock) -> Self {
        Self { rooms: Mutex::new(HashMap::new()), clock }
    }

    fn with_room<T>(&self, room: &str, f: impl FnOnce(&mut Room, u64, u64) -> T) -> Result<T, StoreError> {
        let now_us = (self.clock)();
        let mut rooms = self.rooms.lock().map_err(|_| StoreError::Unavailable("memory store poisoned".into()))?;
        let room = rooms.entry(room.to_owned()).or_insert_with(|| Room { epoch: now_us, ..Room::default() });
        Ok(f(room, now_us / 1000, now_us))
    }

    pub async fn visit(&self, room: &str, visit: &Visit<'_>, policy: &Policy) -> Result<Standing, StoreError> {
        self.with_room(room, |r, now, now_us| {
            let v = visit.visitor;
            let (admit_per_minute, capacity) = r.limits(policy);
            let scheduled = policy.opens_at_ms.is_some_and(|at| at > now);
            let answer = |r: &Room, state, position: Option<u64>, seq, immediate| Standing {
                state,
                position,
                queue_length: r.queue_length(now),
                seq,
                epoch: r.epoch,
                immediate,
            };
            let start_session = |r: &mut Room| {
                r.revoked.remove(v);
                r.active.add(v, now + policy.session_ms);
            };
            let in_line = |r: &mut Room, score: u64| {
                r.seen.add(v, now);
                if scheduled {
                    return answer(r, QueueState::Scheduled, None, score, false);
                }
                let position = r.pending(now) + r.waiting.rank(v).unwrap_or(0) + 1;
                let state = if r.paused { QueueState::Paused } else { QueueState::Waiting };
                answer(r, state, Some(position), score, false)
            };

            if r.active.score(v).is_some() {
                start_session(r);
                return answer(r, QueueState::Admitted, None, 0, false);
            }
            if r.closed {
                return answer(r, QueueState::Closed, None, 0, false);
            }
            if let Some(slot) = r.admitted.score(v) {
                if slot <= now {
                    r.admitted.remove(v);
                    r.seen.remove(v);
                    start_session(r);
                    return answer(r, QueueState::Admitted, None, 0, false);
                }
                r.seen.add(v, now);
                let ahead = r.admitted.count_above(now) - r.admitted.count_above(slot - 1);
                return answer(r, QueueState::Waiting, Some(ahead + 1), 0, false);
            }
            if let Some(score) = r.waiting.score(v) {
                return in_line(r, score);
            }

            if !r.paused && !scheduled && admit_per_minute > 0 && r.queue_length(now) == 0 {
                let used = r.active.len() + r.admitted.len();
                if r.next_slot <= now as f64 && used < u64::from(capacity) {
                    r.next_slot = now as f64 + 60_000.0 / f64::from(admit_per_minute);
                    r.admitted_total += 1;
                    start_session(r);
                    return answer(r, QueueState::Admitted, None, 0, true);
                }
            }

            if !visit.join {
                let state = match (scheduled, r.paused) {
                    (true, _) => QueueState::Scheduled,
                    (false, true) => QueueState::Paused,
                    (false, false) => QueueState::Waiting,
                };
                return answer(r, state, None, 0, false);
            }
            let restorable = visit.restore.filter(|restore| {
                restore.epoch != r.epoch && restore.seq >= now_us.saturating_sub(RESTORE_MAX_AGE_MS * 1000)
            });
            let score = if scheduled {
                visit.prequeue_score
            } else if let Some(restore) = restorable {
                restore.seq
            } else {
                r.seq = (r.seq + 1).max(now_us);
                r.seq
            };
            r.waiting.add(v, score);
            in_line(r, score)
        })
    }

    pub async fn leave(&self, room: &str, visitor: &str, revoke_until_ms: u64) -> Result<(), StoreError> {
        self.with_room(room, |r, _, _| {
            r.waiting.remove(visitor);
            r.seen.remove(visitor);
            r.admitted.remove(visitor);
            if r.active.remove(visitor) {
                r.revoked.add(visitor, revoke_until_ms);
            }
        })
    }

    pub async fn end_session(&self, room: &str, session: &str, revoke_until_ms: u64) -> Result<(), StoreError> {
        self.with_room(room, |r, _, _| {
            r.active.remove(session);
            r.revoked.add(session, revoke_until_ms);
        })
    }

    pub async fn renew(&self, room: &str, session: &str, expires_at_ms: u64) -> Result<bool, StoreError> {
        self.with_room(room, |r, _, _| {
            if r.revoked.score(session).is_some() {
                return false;
            }
            r.active.add(session, expires_at_ms);
            true
        })
    }

    pub async fn tick(&self, room: &str, policy: &Policy) -> Result<TickReport, StoreError> {
        self.with_room(room, |r, now, _| {
            let cutoff = now.saturating_sub(policy.abandon_ms);
            let mut abandoned = 0;
            for v in r.seen.up_to(cutoff, TICK_BATCH) {
                abandoned += u64::from(r.waiting.remove(&v)) + u64::from(r.admitted.remove(&v));
                r.seen.remove(&v);
            }
            for v in r.admitted.up_to(cutoff, TICK_BATCH) {
                abandoned += u64::from(r.admitted.remove(&v));
                r.seen.remove(&v);
            }
            let mut expired_sessions = 0;
            for session in r.active.up_to(now, u64::MAX) {
                expired_sessions += u64::from(r.active.remove(&session));
            }
            for session in r.revoked.up_to(now, u64::MAX) {
                r.revoked.remove(&session);
            }

            let (admit_per_minute, capacity) = r.limits(policy);
            let open = !r.paused && !r.closed && policy.opens_at_ms.is_none_or(|at| at <= now) && admit_per_minute > 0;
            let mut admitted = 0;
            let free = u64::from(capacity).saturating_sub(r.active.len() + r.admitted.len());
            if open && free > 0 {
                let interval = 60_000.0 / f64::from(admit_per_minute);
                let start = r.next_slot.max(now as f64);
                let horizon = (now + ADMISSION_LOOKAHEAD_MS) as f64;
                if start <= horizon {
                    let by_rate = ((horizon - start) / interval).floor() as u64 + 1;
                    let heads = r.waiting.first(by_rate.min(free).min(TICK_BATCH));
                    for (i, v) in heads.iter().enumerate() {
                        r.admitted.add(v, (start + i as f64 * interval).floor() as u64);
                        r.waiting.remove(v);
                    }
                    admitted = heads.len() as u64;
                    if admitted > 0 {
                        r.next_slot = start + admitted as f64 * interval;
                        r.admitted_total += admitted;
                    }
                }
            }
            TickReport { admitted, abandoned, expired_sessions, stats: r.stats(now, policy) }
        })
    }

    pub async fn stats(&self, room: &str, policy: &Policy) -> Result<RoomStats, StoreError> {
        self.with_room(room, |r, now, _| r.stats(now, policy))
    }

    pub async fn set_paused(&self, room: &str, paused: bool) -> Result<(), StoreError> {
        self.with_room(room, |r, _, _| r.paused = paused)
    }

    pub async fn set_closed(&self, room: &str, closed: bool) -> Result<(), StoreError> {
        self.with_room(room, |r, _, _| r.closed = closed)
    }

    pub async fn set_limits(&self, room: &str, limits: LimitOverrides) -> Result<(), StoreError> {
        self.with_room(room, |r, _, _| {
            if limits.admit_per_minute.is_some() {
                r.admit_per_minute = limits.admit_per_minute;
            }
            if limits.max_active_users.is_some() {
                r.max_active_users = limits.max_active_users;
            }
        })
    }
}
