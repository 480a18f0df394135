//! What this instance sees of one room's origin traffic between two reports to the
//! store: a few relaxed atomic adds per forwarded request, drained by the room's ticker.
//!
//! One session counts for at most `PER_SESSION` requests per sample: a script holding an
//! admission could otherwise hammer a slow or broken page of the shop (a legacy shop
//! answers `500` to plenty of junk) and make the shop look sick, slowing the line for
//! everyone. Its requests still go to the shop; they just stop being evidence.

use crate::store::{HealthSample, BUCKETS};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests one session may contribute to one sample (a tick, about a quarter second):
/// a person's page makes a few at once.
const PER_SESSION: u16 = 8;
/// Counters for the sessions of one sample, by a keyed hash of the session id (a
/// collision only costs an honest session some of its samples).
const SESSION_SLOTS: usize = 1024;

#[derive(Debug)]
pub(crate) struct OriginSignals {
    requests: AtomicU64,
    errors: AtomicU64,
    delayed: AtomicU64,
    shed: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    /// Requests of the room at the origin now.
    in_flight: AtomicU64,
    /// When the last sample was taken: the number in flight then is counted for the
    /// time since (sampled at each tick, a few times a second).
    last_take: Mutex<Option<Instant>>,
    /// Requests per session in this sample.
    sessions: Box<[AtomicU16]>,
    hasher: RandomState,
}

impl Default for OriginSignals {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            latency: Default::default(),
            in_flight: AtomicU64::new(0),
            last_take: Mutex::new(None),
            sessions: (0..SESSION_SLOTS).map(|_| AtomicU16::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

/// A request of the room at the origin; counted until dropped (a cancelled request too).
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// What became of one forwarded request, as the controller counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The origin answered (any status) after this long.
    Answered { status: u16, latency: Duration },
    /// No answer (connect failure, timeout, reset) after this long. A timeout counts as
    /// slow: a shop that stops answering is the slowest shop of all.
    Failed { after: Duration },
}

impl OriginSignals {
    /// These signals, if `session`'s next request is to count (see `PER_SESSION`). A
    /// request without a session (let through while the store is away) always counts.
    pub(crate) fn counting(&self, session: Option<&str>) -> Option<&Self> {
        let Some(session) = session else { return Some(self) };
        let slot = (self.hasher.hash_one(session) % SESSION_SLOTS as u64) as usize;
        let before = self.sessions[slot].fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(1)));
        (before.unwrap_or(u16::MAX) < PER_SESSION).then_some(self)
    }

    /// A request of the room is about to go to the origin.
    pub(crate) fn sending(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// A request of the room went to the origin. Errors are what an overloaded shop
    /// answers — `502`, `503`, `504` — and no answer at all (connect failure, timeout).
    /// Another `5xx` (a `500` on junk input) is the shop's bug for that input, which a
    /// client can trigger at will: no evidence of load either way, so not counted. An
    /// error answer's time is no latency sample (a shop refusing at once is not fast); a
    /// timeout's is.
    pub(crate) fn forwarded(&self, outcome: Outcome) {
        let (latency, error) = match outcome {
            Outcome::Answered { status: 502..=504, .. } => (None, true),
            Outcome::Answered { status: 500..=599, .. } => return,
            Outcome::Answered { latency, .. } => (Some(latency), false),
            Outcome::Failed { after } => (Some(after), true),
        };
        self.requests.fetch_add(1, Relaxed);
        if let Some(latency) = latency {
            let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
            self.latency[HealthSample::bucket(ms)].fetch_add(1, Relaxed);
        }
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    /// A request of the room waited for an origin slot.
    pub(crate) fn delayed(&self) {
        self.delayed.fetch_add(1, Relaxed);
    }

    /// A request of the room was refused by origin protection.
    pub(crate) fn shed(&self) {
        self.shed.fetch_add(1, Relaxed);
    }

    /// Everything counted since the last call, and a fresh start. Counts that land while
    /// it drains go to one sample or the next, never to neither.
    pub(crate) fn take(&self) -> HealthSample {
        let mut sample = HealthSample {
            requests: self.requests.swap(0, Relaxed),
            errors: self.errors.swap(0, Relaxed),
            delayed: self.delayed.swap(0, Relaxed),
            shed: self.shed.swap(0, Relaxed),
            in_flight_ms: self.in_flight_since_last_take(),
            ..HealthSample::default()
        };
        for (count, bucket) in sample.latency.iter_mut().zip(&self.latency) {
            *count = bucket.swap(0, Relaxed);
        }
        for session in &self.sessions {
            session.store(0, Relaxed);
        }
        sample
    }

    fn in_flight_since_last_take(&self) -> u64 {
        let now = Instant::now();
        let Ok(mut last) = self.last_take.lock() else { return 0 };
        let since = last.replace(now).map_or(Duration::ZERO, |then| now.duration_since(then));
        self.in_flight.load(Relaxed) * since.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_and_drained() {
        let signals = OriginSignals::default();
        let ok = |ms| Outcome::Answered { status: 200, latency: Duration::from_millis(ms) };
        signals.forwarded(ok(12));
        signals.forwarded(ok(480));
        signals.forwarded(Outcome::Answered { status: 503, latency: Duration::from_millis(3) });
        signals.forwarded(Outcome::Failed { after: Duration::from_secs(30) });
        // A 500 is the shop's bug for some input, not a sign of load: not counted.
        signals.forwarded(Outcome::Answered { status: 500, latency: Duration::from_millis(1) });
        signals.delayed();
        signals.shed();
        let sample = signals.take();
        assert_eq!((sample.requests, sample.errors, sample.delayed, sample.shed), (4, 2, 1, 1));
        // The 503's time is no latency sample; the timeout's is.
        assert_eq!(sample.latency.iter().sum::<u64>(), 3);
        assert_eq!(sample.latency[HealthSample::bucket(480)], 1);
        assert_eq!(sample.latency[HealthSample::bucket(30_000)], 1, "a timeout is a slow sample");
        assert_eq!(signals.take(), HealthSample::default(), "taking starts afresh");
    }

    #[test]
    fn one_session_counts_for_a_few_requests_per_sample_however_many_it_sends() {
        let signals = OriginSignals::default();
        let hammered = (0..1_000).filter(|_| signals.counting(Some("bot.1")).is_some()).count();
        assert_eq!(hammered, usize::from(PER_SESSION));
        // Others still count (bar the rare one sharing the bot's slot).
        let others = (0..100).filter(|i| signals.counting(Some(&format!("buyer-{i}.1"))).is_some()).count();
        assert!(others >= 98, "{others}");
        assert!(signals.counting(None).is_some(), "no session: always counts");
        signals.take();
        assert!(signals.counting(Some("bot.1")).is_some(), "a new sample, a new allowance");
    }

    #[test]
    fn requests_in_flight_are_counted_over_time_until_dropped() {
        let signals = OriginSignals::default();
        signals.take();
        let (one, two) = (signals.sending(), signals.sending());
        std::thread::sleep(Duration::from_millis(50));
        let sample = signals.take();
        assert!((100..300).contains(&sample.in_flight_ms), "two requests for 50 ms: {}", sample.in_flight_ms);
        drop((one, two));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(signals.take().in_flight_ms, 0, "a dropped request no longer counts");
    }
}
