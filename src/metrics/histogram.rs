//! A Prometheus histogram in atomics: fixed bucket bounds, one relaxed add per
//! observation.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the origin latency buckets.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Upper bounds (seconds) of the store call buckets: a healthy Redis answers in well under
/// a millisecond; the call timeout is 0.8 s.
pub(crate) const STORE_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Upper bounds (seconds) of the time-in-line buckets: from walking in to two hours.
pub(crate) const WAIT_BUCKETS: &[f64] =
    &[1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0];

#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&upper| secs <= upper) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(u64::try_from(value.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The upper bounds of the buckets.
    pub(crate) fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// The count of each bucket (not cumulative; the last entry counts above the last
    /// bound).
    pub(crate) fn counts(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let within: u64 = counts.iter().sum();
        counts.push(self.count().saturating_sub(within));
        counts
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The series of `name`; `labels` (like `room="sale"`) go before `le`.
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (open, close) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        let mut cumulative = 0;
        for (upper, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{open}le=\"{upper}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{open}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{close} {sum}\n{name}_count{close} {count}");
    }
}

/// The `q` quantile (0..1) of observations counted per bucket (`counts` as
/// [`Histogram::counts`] gives them, or the difference of two such), interpolated within
/// its bucket as Prometheus's `histogram_quantile` does. `None` without observations.
pub(crate) fn quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            // Above the last bound: the last bound is all that can be said.
            let Some(&upper) = bounds.get(i) else { return bounds.last().copied() };
            return Some(lower + (upper - lower) * ((rank - below as f64) / count as f64));
        }
        below += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_as_prometheus_does() {
        let h = Histogram::new(&[1.0, 2.0, 4.0]);
        for ms in [500, 1500, 1500, 3000] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(h.counts(), [1, 2, 1, 0]);
        assert_eq!(quantile(h.bounds(), &h.counts(), 0.5), Some(1.5));
        assert_eq!(quantile(h.bounds(), &h.counts(), 1.0), Some(4.0));
        assert_eq!(quantile(h.bounds(), &[0, 0, 0, 0], 0.5), None);
        assert_eq!(quantile(h.bounds(), &[0, 0, 0, 3], 0.9), Some(4.0), "above the last bound");
    }
}
