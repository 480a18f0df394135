//! The console's memory of the last minutes: every 2 s a sample of what this instance
//! knows (the rooms' gauges, which mirror the store, and its own origin traffic), so that a
//! console opened mid-sale draws the last 15 minutes at once rather than from its first
//! poll on.

use crate::metrics::{quantile, Metrics, OriginTotals};
use crate::room::WaitingRoom;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How often a sample is taken.
pub(crate) const EVERY: Duration = Duration::from_secs(2);
/// Samples kept: 15 minutes.
const KEEP: usize = 450;
/// Rates and latency percentiles are over this many samples (10 s).
const RATE_SPAN: usize = 5;
/// Time-in-line percentiles are over this many samples (5 min).
const WAIT_SPAN: usize = 150;

#[derive(Clone, Debug)]
struct Sample {
    at_ms: u64,
    origin: OriginTotals,
    rooms: Vec<RoomSample>,
}

#[derive(Clone, Debug)]
struct RoomSample {
    name: String,
    queue_length: u64,
    active_sessions: u64,
    max_active_users: u64,
    admit_per_minute: u64,
    /// Global admissions per minute (the store's count, a moving average).
    admitted_per_minute: Option<f64>,
    wait: Vec<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    samples: Mutex<VecDeque<Sample>>,
}

/// One point of the charts.
#[derive(Debug, Serialize)]
pub(crate) struct Point {
    pub t: u64,
    pub origin_rps: f64,
    pub origin_errors_per_s: f64,
    pub origin_p50_ms: Option<f64>,
    pub origin_p90_ms: Option<f64>,
    pub shed_per_s: f64,
    pub rooms: Vec<RoomPoint>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RoomPoint {
    pub room: String,
    pub queue_length: u64,
    pub active_sessions: u64,
    pub max_active_users: u64,
    pub admit_per_minute: u64,
    pub admitted_per_minute: Option<f64>,
}

/// This instance's numbers now, over the last samples.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Now {
    pub origin_rps: f64,
    pub origin_errors_per_s: f64,
    pub origin_p50_ms: Option<f64>,
    pub origin_p90_ms: Option<f64>,
    pub shed_per_s: f64,
    /// Per room: time in line, p50 and p90 over the last 5 minutes (seconds).
    pub wait: Vec<(String, Option<f64>, Option<f64>)>,
}

impl History {
    pub(crate) fn record(&self, metrics: &Metrics, waiting: &WaitingRoom) {
        let rooms = waiting
            .rooms
            .iter()
            .map(|room| {
                let m = room.metrics();
                let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
                RoomSample {
                    name: room.name.clone(),
                    queue_length: load(&m.queue_length),
                    active_sessions: load(&m.active_sessions),
                    max_active_users: load(&m.max_active_users),
                    admit_per_minute: load(&m.admit_per_minute),
                    admitted_per_minute: room.admission_rate().map(|r| (r * 60.0 * 10.0).round() / 10.0),
                    wait: m.wait.counts(),
                }
            })
            .collect();
        let sample = Sample { at_ms: crate::time::unix_ms(), origin: metrics.origin_totals(), rooms };
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == KEEP {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The charts' points, oldest first, and the numbers now.
    pub(crate) fn view(&self, metrics: &Metrics, waiting: &WaitingRoom) -> (Vec<Point>, Now) {
        let samples: Vec<Sample> =
            self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        let bounds = metrics.latency_bounds();
        let points = samples
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, s)| {
                let before = &samples[i.saturating_sub(RATE_SPAN)];
                let origin = origin_rates(bounds, &before.origin, &s.origin, s.at_ms.saturating_sub(before.at_ms));
                Point {
                    t: s.at_ms,
                    origin_rps: origin.0,
                    origin_errors_per_s: origin.1,
                    origin_p50_ms: origin.2,
                    origin_p90_ms: origin.3,
                    shed_per_s: origin.4,
                    rooms: s
                        .rooms
                        .iter()
                        .map(|r| RoomPoint {
                            room: r.name.clone(),
                            queue_length: r.queue_length,
                            active_sessions: r.active_sessions,
                            max_active_users: r.max_active_users,
                            admit_per_minute: r.admit_per_minute,
                            admitted_per_minute: r.admitted_per_minute,
                        })
                        .collect(),
                }
            })
            .collect::<Vec<_>>();
        let mut now = Now::default();
        if let Some(last) = points.last() {
            now.origin_rps = last.origin_rps;
            now.origin_errors_per_s = last.origin_errors_per_s;
            now.origin_p50_ms = last.origin_p50_ms;
            now.origin_p90_ms = last.origin_p90_ms;
            now.shed_per_s = last.shed_per_s;
        }
        let (oldest, newest) = (samples.len().saturating_sub(WAIT_SPAN + 1), samples.len().saturating_sub(1));
        for room in &waiting.rooms {
            let counts = |s: &Sample| s.rooms.iter().find(|r| r.name == room.name).map(|r| r.wait.clone());
            let (then, last) = (samples.get(oldest).and_then(counts), samples.get(newest).and_then(counts));
            let recent = match (then, last) {
                (Some(then), Some(last)) if samples.len() > 1 => difference(&last, &then),
                (_, Some(last)) => last,
                _ => Vec::new(),
            };
            let bounds = room.metrics().wait.bounds();
            now.wait.push((room.name.clone(), quantile(bounds, &recent, 0.5), quantile(bounds, &recent, 0.9)));
        }
        (points, now)
    }
}

/// Requests/s, errors/s, p50 and p90 (ms), shed/s between two samples `ms` apart.
fn origin_rates(
    bounds: &[f64],
    before: &OriginTotals,
    after: &OriginTotals,
    ms: u64,
) -> (f64, f64, Option<f64>, Option<f64>, f64) {
    let secs = (ms as f64 / 1000.0).max(0.001);
    let per_s = |a: u64, b: u64| round1(a.saturating_sub(b) as f64 / secs);
    let latency = difference(&after.latency, &before.latency);
    let ms_of = |q: f64| quantile(bounds, &latency, q).map(|s| round1(s * 1000.0));
    (
        per_s(after.requests, before.requests),
        per_s(after.errors, before.errors),
        ms_of(0.5),
        ms_of(0.9),
        per_s(after.shed, before.shed),
    )
}

fn difference(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().enumerate().map(|(i, a)| a.saturating_sub(before.get(i).copied().unwrap_or(0))).collect()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
