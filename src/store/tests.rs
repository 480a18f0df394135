//! The admission rate, checked on the memory store with a hand-driven clock: a long
//! simulated sale with irregular ticks from two instances, a pause and a quiet spell. The
//! rate holds both by the time visitors are let in and by the time admissions are
//! granted (what `anteroom_admitted_total` counts).

use super::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const START_US: u64 = 1_800_000_000_000_000;

fn policy() -> Policy {
    Policy {
        admit_per_minute: 600,
        max_active_users: 100_000,
        session_ms: 3_600_000,
        abandon_ms: 3_600_000,
        claim_ms: 3_600_000,
        reclaim_ms: crate::store::RECLAIM_MS,
        max_places_per_client: 0,
        opens_at_ms: None,
        ..Policy::default()
    }
}

struct Sim {
    store: Store,
    now_us: Arc<AtomicU64>,
    line: VecDeque<String>,
    admitted_at_ms: Vec<u64>,
    /// When admissions were granted (a tick's, or an immediate one), one entry each.
    granted_at_ms: Vec<u64>,
    joined: usize,
}

impl Sim {
    fn new() -> Self {
        let now_us = Arc::new(AtomicU64::new(START_US));
        let clock = now_us.clone();
        let store = Store::Memory(MemoryStore::with_clock(Arc::new(move || clock.load(Ordering::SeqCst))));
        Self { store, now_us, line: VecDeque::new(), admitted_at_ms: Vec::new(), granted_at_ms: Vec::new(), joined: 0 }
    }

    fn now_ms(&self) -> u64 {
        (self.now_us.load(Ordering::SeqCst) - START_US) / 1000
    }

    async fn join(&mut self, n: usize) {
        for _ in 0..n {
            let visitor = format!("v{}", self.joined);
            self.joined += 1;
            let standing = self.store.visit("r", &plain(&visitor), &policy()).await.unwrap();
            if standing.state == QueueState::Admitted {
                self.admitted_at_ms.push(self.now_ms());
                self.granted_at_ms.push(self.now_ms());
            } else {
                self.line.push_back(visitor);
            }
        }
    }

    /// The head of the line polls; whoever's slot has come is admitted now.
    async fn poll_heads(&mut self) {
        while let Some(visitor) = self.line.front() {
            let standing = self.store.visit("r", &plain(visitor), &policy()).await.unwrap();
            if standing.state != QueueState::Admitted {
                break;
            }
            self.line.pop_front();
            self.admitted_at_ms.push(self.now_ms());
        }
    }

    /// Runs until `until_ms`, polling every 10 ms; the two instances tick at irregular
    /// moments (every 100–400 ms each, from a fixed pseudo-random sequence).
    async fn run(&mut self, until_ms: u64, seed: &mut u64) {
        let mut next_tick = [self.now_ms(), self.now_ms() + 137];
        while self.now_ms() < until_ms {
            for at in &mut next_tick {
                if *at <= self.now_ms() {
                    let report = self.store.tick("r", &policy(), 0).await.unwrap();
                    let now = self.now_ms();
                    self.granted_at_ms.extend(std::iter::repeat_n(now, report.admitted as usize));
                    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *at = self.now_ms() + 100 + (*seed >> 33) % 300;
                }
            }
            self.poll_heads().await;
            self.now_us.fetch_add(10_000, Ordering::SeqCst);
        }
    }
}

fn plain(visitor: &str) -> Visit<'_> {
    Visit { visitor, restore: None, prequeue_score: 0, joining: Joining::Place, client: None }
}

/// The most admissions in any window of `window_ms` (half-open).
fn busiest_window(times: &[u64], window_ms: u64) -> usize {
    let mut best = 0;
    for (i, start) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|t| **t < start + window_ms).count();
        best = best.max(n);
    }
    best
}

#[tokio::test]
async fn no_ten_second_window_holds_more_than_a_sixth_of_the_minute_rate() {
    let mut sim = Sim::new();
    let mut seed = 7;
    sim.join(500).await;
    sim.run(30_000, &mut seed).await;
    sim.store.set_paused("r", true).await.unwrap();
    sim.run(50_000, &mut seed).await;
    sim.store.set_paused("r", false).await.unwrap();
    sim.run(90_000, &mut seed).await; // drains, then a quiet spell
    assert!(sim.line.is_empty(), "the line should have drained, {} left", sim.line.len());
    sim.join(300).await;
    sim.run(150_000, &mut seed).await;

    let limit = 600usize.div_ceil(6);
    assert_eq!(busiest_window(&sim.admitted_at_ms, 10_000), limit, "{:?}", &sim.admitted_at_ms[..20]);
    assert_eq!(busiest_window(&sim.granted_at_ms, 10_000), limit, "by the time granted");
    assert_eq!(sim.granted_at_ms.len(), sim.admitted_at_ms.len());
    // Not just capped: the configured rate is reached while people wait.
    let first_30s = sim.admitted_at_ms.iter().filter(|t| **t < 30_000).count();
    assert!((295..=301).contains(&first_30s), "admitted in the first 30 s: {first_30s}");
    // After the pause and after the quiet spell, no catch-up: the next 2 s hold 20 or 21.
    for resume in [50_000, 90_000] {
        let burst = sim.admitted_at_ms.iter().filter(|t| (resume..resume + 2_000).contains(*t)).count();
        assert!(burst <= 21, "{burst} admitted in the 2 s after {resume} ms");
    }
}

#[test]
fn every_store_operation_has_its_latency_label() {
    for (i, op) in StoreOp::ALL.iter().enumerate() {
        assert_eq!(*op as usize, i, "StoreOp::ALL is in declaration order");
        assert_eq!(crate::metrics::STORE_OPS[i], op.to_string());
    }
    assert_eq!(StoreOp::ALL.len(), crate::metrics::STORE_OPS.len());
}
