//! Counters and histograms kept in atomics, rendered as Prometheus text on `/metrics`.
//!
//! Hand-rolled rather than a metrics crate: the set is small and fixed, and the hot path
//! stays one relaxed atomic add per event.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the origin latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Label used for forwarded requests that got no response from the origin.
pub const NO_RESPONSE: u16 = 0;

#[derive(Default)]
pub struct Metrics {
    /// Indexed by HTTP status; slot 0 counts requests that got no response.
    origin_requests: StatusCounters,
    origin_latency: Histogram,
    origin_delayed: AtomicU64,
    origin_shed: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A request was forwarded; `status` is the origin's, or [`NO_RESPONSE`].
    pub fn origin_response(&self, status: u16, latency: Duration) {
        self.origin_requests.add(status);
        self.origin_latency.observe(latency);
    }

    pub fn origin_delayed(&self) {
        self.origin_delayed.fetch_add(1, Relaxed);
    }

    pub fn origin_shed(&self) {
        self.origin_shed.fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        header(
            &mut out,
            "anteroom_origin_requests_total",
            "counter",
            "Requests forwarded to the origin, by the origin's status (\"none\": no response).",
        );
        for (status, count) in self.origin_requests.nonzero() {
            let label = if status == NO_RESPONSE { "none".to_owned() } else { status.to_string() };
            let _ = writeln!(out, "anteroom_origin_requests_total{{status=\"{label}\"}} {count}");
        }
        header(
            &mut out,
            "anteroom_origin_latency_seconds",
            "histogram",
            "Time from forwarding a request to the origin's response headers.",
        );
        self.origin_latency.render(&mut out, "anteroom_origin_latency_seconds");
        header(
            &mut out,
            "anteroom_origin_delayed_total",
            "counter",
            "Requests that waited for a rate-limit slot before being forwarded.",
        );
        let _ = writeln!(out, "anteroom_origin_delayed_total {}", self.origin_delayed.load(Relaxed));
        header(
            &mut out,
            "anteroom_origin_shed_total",
            "counter",
            "Requests answered 503 because the origin's limits left no slot within max_wait.",
        );
        let _ = writeln!(out, "anteroom_origin_shed_total {}", self.origin_shed.load(Relaxed));
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

struct StatusCounters(Box<[AtomicU64; 600]>);

impl Default for StatusCounters {
    fn default() -> Self {
        Self(Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
    }
}

impl StatusCounters {
    fn add(&self, status: u16) {
        let slot = usize::from(status).min(599);
        self.0[slot].fetch_add(1, Relaxed);
    }
    fn nonzero(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.0.iter().enumerate().filter_map(|(status, c)| {
            let count = c.load(Relaxed);
            (count > 0).then_some((status as u16, count))
        })
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&upper| secs <= upper) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(value.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (upper, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{upper}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new();
        m.origin_response(200, Duration::from_millis(3));
        m.origin_response(200, Duration::from_millis(30));
        m.origin_response(NO_RESPONSE, Duration::from_secs(20));
        m.origin_shed();
        let text = m.render();
        assert!(text.contains("anteroom_origin_requests_total{status=\"200\"} 2"));
        assert!(text.contains("anteroom_origin_requests_total{status=\"none\"} 1"));
        assert!(text.contains("anteroom_origin_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("anteroom_origin_latency_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("anteroom_origin_latency_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("anteroom_origin_shed_total 1"));
        assert!(text.contains("anteroom_origin_delayed_total 0"));
    }
}
