//! Origin protection: a GCRA rate limit (governor) with smoothing, and an in-flight cap.
//!
//! A request that finds no free slot does not bounce: it joins a FIFO line and waits for
//! its slot, as long as the predicted wait fits in `max_wait`. Only one request at a time
//! (the head of the line) polls the limiter, so waiters are served in arrival order and do
//! not stampede on every freed cell. When the line is already too long to be served within
//! `max_wait`, the request is shed at once with a `Retry-After` hint — nobody hangs.
//!
//! The in-flight cap is `max_in_flight`, or, when adaptive, the origin's own level found
//! below it ([`limit`]).

mod limit;

use crate::config::Origin;
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use limit::AdaptiveLimit;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

type Limiter = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<<MonotonicClock as Clock>::Instant>>;

pub(crate) struct Protection {
    limiter: Limiter,
    clock: MonotonicClock,
    /// Time between two slots at the steady rate.
    interval: Duration,
    max_wait: Duration,
    /// FIFO line of requests waiting for a rate slot; tokio's mutex is fair.
    line: Mutex<()>,
    /// How many requests are in the line (used to predict the wait of a newcomer).
    waiting: AtomicUsize,
    in_flight: Arc<Semaphore>,
    /// The adaptive in-flight limit (`None`: `max_in_flight` as configured).
    limit: Option<Arc<AdaptiveLimit>>,
}

/// Leave to forward one request; holds an in-flight slot until dropped.
#[derive(Debug)]
pub(crate) struct Pass {
    /// Whether the request had to wait for its slot.
    pub delayed: bool,
    in_flight: Option<OwnedSemaphorePermit>,
    limit: Option<Arc<AdaptiveLimit>>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let (Some(limit), Some(permit)) = (&self.limit, self.in_flight.take()) {
            if limit.released() {
                // The limit shrank while this slot was taken: the slot goes with it.
                permit.forget();
            }
        }
    }
}

/// The request cannot be forwarded within `max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shed {
    pub reason: ShedReason,
    /// When a retry is likely to find a slot.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShedReason {
    Rate,
    InFlight,
}

impl Protection {
    /// `adaptive`: find the origin's own in-flight limit below `max_in_flight`.
    pub(crate) fn new(origin: &Origin, adaptive: bool) -> Self {
        let rate = origin.max_requests_per_second.max(1);
        let interval = Duration::from_nanos(1_000_000_000 / u64::from(rate));
        let burst = NonZeroU32::new(origin.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
        let clock = MonotonicClock;
        let max = origin.max_in_flight as usize;
        let (limit, permits) = match adaptive {
            true => {
                let (limit, permits) = AdaptiveLimit::new(max);
                (Some(Arc::new(limit)), permits)
            }
            false => (None, max),
        };
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            interval,
            max_wait: origin.max_wait.0,
            line: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            in_flight: Arc::new(Semaphore::new(permits)),
            limit,
        }
    }

    /// The origin answered a request in `rtt` (from forwarding to the response headers).
    /// Returns the adaptive in-flight limit when this changed it.
    pub(crate) fn observe(&self, rtt: Duration) -> Option<usize> {
        let limit = self.limit.as_ref()?;
        match limit.observe(rtt, &self.in_flight) {
            limit::Change::Keep => None,
            limit::Change::Grow | limit::Change::Shrink => Some(limit.limit()),
        }
    }

    /// The in-flight cap when serving starts.
    pub(crate) fn in_flight_limit(&self) -> usize {
        self.limit.as_ref().map_or(self.in_flight.available_permits(), |limit| limit.limit())
    }

    /// Waits (at most `max_wait`) for a rate slot and an in-flight slot.
    pub(crate) async fn admit(&self) -> Result<Pass, Shed> {
        let deadline = Instant::now() + self.max_wait;
        let mut delayed = false;
        // Fast path: nobody in line and a cell free now.
        // The waits are boxed: their timers and locks would otherwise be part of every
        // request's future, which is moved on every request.
        if self.waiting.load(Ordering::Acquire) > 0 || self.limiter.check().is_err() {
            delayed = true;
            Box::pin(self.wait_for_rate_slot(deadline)).await?;
        }
        let permit = match self.in_flight.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                delayed = true;
                let remaining = deadline.saturating_duration_since(Instant::now());
                match Box::pin(tokio::time::timeout(remaining, self.in_flight.clone().acquire_owned())).await {
                    Ok(Ok(p)) => p,
                    _ => return Err(Shed { reason: ShedReason::InFlight, retry_after: Duration::from_secs(1) }),
                }
            }
        };
        if let Some(limit) = &self.limit {
            limit.acquired();
        }
        Ok(Pass { delayed, in_flight: Some(permit), limit: self.limit.clone() })
    }

    async fn wait_for_rate_slot(&self, deadline: Instant) -> Result<(), Shed> {
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave_line = LineGuard(&self.waiting);
        // Everyone ahead takes one interval, and so do we (at most).
        let predicted = self.interval.saturating_mul(ahead as u32 + 1);
        let shed = Shed { reason: ShedReason::Rate, retry_after: predicted };
        if Instant::now() + predicted > deadline {
            return Err(shed);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _head = tokio::time::timeout(remaining, self.line.lock()).await.map_err(|_| shed)?;
        loop {
            match self.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    if Instant::now() + wait > deadline {
                        return Err(shed);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

struct LineGuard<'a>(&'a AtomicUsize);

impl Drop for LineGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn origin(rate: u32, burst: u32, in_flight: u32, max_wait_ms: u64) -> Origin {
        let text = format!(
            "[origin]\nurl = \"http://127.0.0.1:1\"\nmax_requests_per_second = {rate}\nburst = {burst}\n\
             max_in_flight = {in_flight}\nmax_wait = \"{max_wait_ms}ms\"\n"
        );
        Config::from_toml(&text, []).expect("valid test config").origin
    }

    #[tokio::test]
    async fn a_burst_is_served_in_order_at_the_steady_rate() {
        let p = Arc::new(Protection::new(&origin(10, 1, 100, 10_000), false));
        let start = Instant::now();
        let mut handles = Vec::new();
        for i in 0..5 {
            let p = p.clone();
            handles.push(tokio::spawn(async move {
                let pass = p.admit().await.expect("admitted");
                (i, start.elapsed(), pass.delayed)
            }));
            tokio::task::yield_now().await;
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        assert!(!out[0].2, "the first request is not delayed");
        assert!(out[1..].iter().all(|o| o.2), "the others are delayed: {out:?}");
        for pair in out.windows(2) {
            assert!(pair[1].1 >= pair[0].1, "served in arrival order: {out:?}");
        }
        // 5 requests at 10/s with burst 1: the last one waits 4 intervals (a lower bound
        // holds on any machine, however slow).
        assert!(out[4].1 >= Duration::from_millis(390), "{out:?}");
    }

    #[tokio::test]
    async fn a_line_longer_than_max_wait_is_shed_at_once_with_a_hint() {
        let p = Arc::new(Protection::new(&origin(10, 1, 100, 250), false));
        let _first = p.admit().await.expect("first");
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let p = p.clone();
            waiting.push(tokio::spawn(async move { p.admit().await.map(|_| ()) }));
            tokio::task::yield_now().await;
        }
        let before = Instant::now();
        let shed = p.admit().await.expect_err("line too long");
        // Shed on arrival, not after waiting out max_wait.
        assert!(before.elapsed() < Duration::from_millis(250), "shed without waiting");
        assert_eq!(shed.reason, ShedReason::Rate);
        assert!(shed.retry_after >= Duration::from_millis(300));
        for w in waiting {
            assert!(w.await.expect("task").is_ok());
        }
    }

    #[tokio::test]
    async fn the_in_flight_cap_holds_and_frees_on_drop() {
        let p = Protection::new(&origin(1000, 1000, 1, 100), false);
        let first = p.admit().await.expect("first");
        let shed = p.admit().await.expect_err("cap reached");
        assert_eq!(shed.reason, ShedReason::InFlight);
        drop(first);
        assert!(p.admit().await.is_ok());
    }
}
