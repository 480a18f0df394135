//! What ops watch beyond the rooms: requests by the gateway's decision, store call
//! latency by operation, the build.

use super::histogram::{Histogram, STORE_BUCKETS};
use super::{header, Metrics};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::LazyLock;
use std::time::Duration;

/// What happened to a request: the access log's `decision` and the label of
/// `anteroom_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Forwarded,
    Delayed,
    Shed,
    Rejected,
    Reserved,
    /// Answered with the queue page or status object.
    Queued,
    /// Admitted by this request (token issued), then forwarded.
    Admitted,
}

impl Decision {
    pub(crate) const ALL: [Decision; 7] = [
        Decision::Forwarded,
        Decision::Delayed,
        Decision::Shed,
        Decision::Rejected,
        Decision::Reserved,
        Decision::Queued,
        Decision::Admitted,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Decision::Forwarded => "forwarded",
            Decision::Delayed => "delayed",
            Decision::Shed => "shed",
            Decision::Rejected => "rejected",
            Decision::Reserved => "reserved",
            Decision::Queued => "queued",
            Decision::Admitted => "admitted",
        }
    }
}

/// Requests answered, by decision.
#[derive(Debug, Default)]
pub(crate) struct Requests([AtomicU64; Decision::ALL.len()]);

/// The store's operations, as `StoreOp` prints them (kept in step by a test there).
pub(crate) const STORE_OPS: [&str; 14] = [
    "visit",
    "leave",
    "end_session",
    "renew",
    "tick",
    "stats",
    "set_paused",
    "set_closed",
    "set_limits",
    "set_message",
    "unpin",
    "health",
    "adapt",
    "find",
];

/// Store call latency by operation. Kept per process rather than per `Metrics`: the store
/// is called from the rooms, the tickers and the admin API alike, and one process is one
/// gateway instance.
static STORE_HISTOGRAMS: LazyLock<Vec<Histogram>> =
    LazyLock::new(|| STORE_OPS.iter().map(|_| Histogram::new(STORE_BUCKETS)).collect());

/// Records one store call (`op`: an index into `STORE_OPS`), answered or not.
pub(crate) fn store_call(op: usize, took: Duration) {
    if let Some(histogram) = STORE_HISTOGRAMS.get(op) {
        histogram.observe(took);
    }
}

impl Metrics {
    pub(crate) fn request(&self, decision: Decision) {
        self.requests.0[decision as usize].fetch_add(1, Relaxed);
    }

    pub(super) fn render_ops(&self, out: &mut String) {
        header(out, "anteroom_requests_total", "counter", "Requests this instance answered, by its decision.");
        for (decision, count) in Decision::ALL.iter().zip(&self.requests.0) {
            let _ =
                writeln!(out, "anteroom_requests_total{{decision=\"{}\"}} {}", decision.as_str(), count.load(Relaxed));
        }
        header(
            out,
            "anteroom_store_latency_seconds",
            "histogram",
            "Time of this instance's store calls, by operation (timeouts included).",
        );
        for (op, histogram) in STORE_OPS.iter().zip(STORE_HISTOGRAMS.iter()) {
            if histogram.count() > 0 {
                histogram.render(out, "anteroom_store_latency_seconds", &format!("op=\"{op}\""));
            }
        }
        header(out, "anteroom_build_info", "gauge", "The running build: always 1, with the version as a label.");
        let _ = writeln!(out, "anteroom_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    }
}
