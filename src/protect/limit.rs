//! An in-flight limit that finds the origin's own, below `max_in_flight`: TCP Vegas'
//! idea, as Netflix's concurrency-limits applies it to servers. The time the origin takes
//! when nothing queues in it (`rtt_min`) against the time it takes now tells how many of
//! the requests in flight are queueing there: `limit × (1 − rtt_min / rtt)`. Few: one
//! more is allowed; many: one fewer. A shop whose throughput falls once too much is in
//! flight at once (a database thrashing on locks) is kept at its best, and what it cannot
//! take waits at the gateway, in order, instead of jamming it — where the room's
//! closed-loop admission sees the wait and slows the line.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Where the limit starts: most legacy shops are happy with ten at once, and it grows
/// within a few round trips where more fit.
const INITIAL: usize = 10;
/// Never fewer in flight than this (one slow request must not starve the rest).
const MINIMUM: usize = 2;
/// `rtt_min` rises by this share per second, so that a shop that got slower for good is
/// not judged against the time it took when it was fast.
const RTT_MIN_DRIFT_PER_SEC: f64 = 0.01;

#[derive(Debug)]
pub(crate) struct AdaptiveLimit {
    max: usize,
    /// Permits the limit gave up while all were in use: the next ones released are
    /// forgotten instead.
    debt: AtomicUsize,
    in_use: AtomicUsize,
    vegas: Mutex<Vegas>,
}

#[derive(Debug)]
struct Vegas {
    limit: usize,
    /// Seconds; 0 until the first window.
    rtt_min: f64,
    rtt_min_at: Instant,
    sum: f64,
    samples: usize,
    peak_in_use: usize,
}

/// What a window decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Grow,
    Shrink,
    Keep,
}

impl AdaptiveLimit {
    /// The limit, and the permits the semaphore starts with.
    pub(crate) fn new(max: usize) -> (Self, usize) {
        let initial = INITIAL.min(max).max(1);
        let vegas =
            Vegas { limit: initial, rtt_min: 0.0, rtt_min_at: Instant::now(), sum: 0.0, samples: 0, peak_in_use: 0 };
        let limit = Self { max, debt: AtomicUsize::new(0), in_use: AtomicUsize::new(0), vegas: Mutex::new(vegas) };
        (limit, initial)
    }

    pub(crate) fn limit(&self) -> usize {
        self.vegas.lock().map(|v| v.limit).unwrap_or(INITIAL)
    }

    pub(crate) fn acquired(&self) {
        let now = self.in_use.fetch_add(1, Relaxed) + 1;
        if let Ok(mut vegas) = self.vegas.lock() {
            vegas.peak_in_use = vegas.peak_in_use.max(now);
        }
    }

    /// A request's slot is free again; `true`: forget its permit (the limit shrank).
    pub(crate) fn released(&self) -> bool {
        self.in_use.fetch_sub(1, Relaxed);
        self.debt.fetch_update(Relaxed, Relaxed, |debt| debt.checked_sub(1)).is_ok()
    }

    /// The origin took `rtt` to answer a request; every round trip's worth of answers
    /// (`limit` of them) the limit moves by one, applied to `permits`.
    pub(crate) fn observe(&self, rtt: Duration, permits: &Semaphore) -> Change {
        let Ok(mut vegas) = self.vegas.lock() else { return Change::Keep };
        vegas.sum += rtt.as_secs_f64();
        vegas.samples += 1;
        if vegas.samples < vegas.limit.max(4) {
            return Change::Keep;
        }
        let change = vegas.decide(self.max);
        drop(vegas);
        match change {
            Change::Grow => {
                // Pay back a debt first: the permit was never forgotten.
                if self.debt.fetch_update(Relaxed, Relaxed, |debt| debt.checked_sub(1)).is_err() {
                    permits.add_permits(1);
                }
            }
            Change::Shrink => match permits.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(_) => {
                    self.debt.fetch_add(1, Relaxed);
                }
            },
            Change::Keep => {}
        }
        change
    }
}

impl Vegas {
    fn decide(&mut self, max: usize) -> Change {
        let rtt = self.sum / self.samples as f64;
        let now = Instant::now();
        let drift = 1.0 + RTT_MIN_DRIFT_PER_SEC * now.duration_since(self.rtt_min_at).as_secs_f64();
        self.rtt_min = if self.rtt_min > 0.0 { (self.rtt_min * drift).min(rtt) } else { rtt };
        self.rtt_min_at = now;
        let limit = self.limit as f64;
        let queued = limit * (1.0 - self.rtt_min / rtt);
        // Netflix's thresholds: a few requests queued is fine, and more so at a larger limit.
        let alpha = (3.0 * limit.log10()).max(1.0);
        let beta = 2.0 * alpha;
        let used = self.peak_in_use * 10 >= self.limit * 9;
        let change = if queued > beta && self.limit > MINIMUM {
            self.limit -= 1;
            Change::Shrink
        } else if queued < alpha && used && self.limit < max {
            self.limit += 1;
            Change::Grow
        } else {
            Change::Keep
        };
        self.sum = 0.0;
        self.samples = 0;
        self.peak_in_use = 0;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a round trip's worth of answers at `rtt`, all slots in use.
    fn round_trip(limit: &AdaptiveLimit, permits: &Semaphore, rtt_ms: u64) -> Change {
        let n = limit.limit().max(4);
        for _ in 0..limit.limit() {
            limit.acquired();
        }
        let mut change = Change::Keep;
        for _ in 0..n {
            change = limit.observe(Duration::from_millis(rtt_ms), permits);
        }
        for _ in 0..n.min(limit.in_use.load(Relaxed)) {
            limit.released();
        }
        change
    }

    #[test]
    fn the_limit_grows_while_nothing_queues_and_shrinks_when_the_origin_slows() {
        let (limit, initial) = AdaptiveLimit::new(64);
        let permits = Semaphore::new(initial);
        for _ in 0..5 {
            assert_eq!(round_trip(&limit, &permits, 50), Change::Grow);
        }
        assert_eq!(limit.limit(), 15);
        assert_eq!(permits.available_permits(), 15);
        // Four times as slow: most of what is in flight is queueing there.
        for _ in 0..5 {
            assert_eq!(round_trip(&limit, &permits, 200), Change::Shrink);
        }
        assert_eq!(limit.limit(), 10);
        assert_eq!(permits.available_permits(), 10);
        // A little slower is no queue worth shrinking for.
        assert_eq!(round_trip(&limit, &permits, 60), Change::Grow);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let (limit, initial) = AdaptiveLimit::new(64);
        let permits = Semaphore::new(initial);
        for _ in 0..3 * initial {
            limit.observe(Duration::from_millis(50), &permits);
        }
        assert_eq!(limit.limit(), initial, "nothing was ever in flight");
    }

    #[test]
    fn a_limit_shrinking_while_every_slot_is_taken_forgets_the_next_slots_freed() {
        let (limit, initial) = AdaptiveLimit::new(64);
        let permits = std::sync::Arc::new(Semaphore::new(initial));
        // A round trip with the slots unused: the origin's time at ease, no growth.
        for _ in 0..initial {
            limit.observe(Duration::from_millis(50), &permits);
        }
        let held: Vec<_> = (0..initial).map(|_| permits.clone().try_acquire_owned().unwrap()).collect();
        for _ in 0..initial {
            limit.acquired();
        }
        for _ in 0..initial {
            limit.observe(Duration::from_millis(500), &permits);
        }
        assert_eq!(limit.limit(), initial - 1);
        assert_eq!(limit.debt.load(Relaxed), 1);
        assert!(limit.released(), "the first slot freed is forgotten");
        assert!(!limit.released());
        drop(held);
    }

    #[test]
    fn the_limit_stays_within_its_bounds() {
        let (limit, initial) = AdaptiveLimit::new(3);
        assert_eq!(initial, 3);
        let permits = Semaphore::new(initial);
        for _ in 0..10 {
            round_trip(&limit, &permits, 10);
        }
        assert_eq!(limit.limit(), 3, "never above max_in_flight");
        for _ in 0..10 {
            round_trip(&limit, &permits, 5_000);
        }
        assert_eq!(limit.limit(), MINIMUM);
    }
}
