//! Counters and histograms kept in atomics, rendered as Prometheus text on `/metrics`.
//!
//! Hand-rolled rather than a metrics crate: the set is small and fixed, and the hot path
//! stays one relaxed atomic add per event.

mod abuse;
mod connections;
mod histogram;
mod ops;
pub(crate) mod read;

pub(crate) use abuse::{ChallengeResult, Challenges, PlaceRefusal, PlacesRefused};
pub(crate) use connections::ClientConnections;
pub(crate) use connections::Counted;
pub(crate) use histogram::{quantile, Histogram};
use histogram::{LATENCY_BUCKETS, WAIT_BUCKETS};
#[cfg(test)]
pub(crate) use ops::STORE_OPS;
pub(crate) use ops::{store_call, Decision};

use crate::token::Rejection;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Label used for forwarded requests that got no response from the origin.
pub(crate) const NO_RESPONSE: u16 = 0;

#[derive(Debug)]
pub struct Metrics {
    /// Indexed by HTTP status; slot 0 counts requests that got no response.
    origin_requests: StatusCounters,
    origin_latency: Histogram,
    origin_delayed: AtomicU64,
    origin_shed: AtomicU64,
    /// The origin in-flight cap in force (adaptive or configured).
    origin_in_flight_limit: AtomicU64,
    store_errors: AtomicU64,
    requests: ops::Requests,
    /// Config reloads (`SIGHUP`): applied, refused.
    reloads: [AtomicU64; 2],
    /// 1 while the store answers, 0 while it does not (set by the store's callers).
    store_up: AtomicBool,
    /// One entry per configured room, in config order. A reload adds and removes rooms;
    /// a room kept keeps its counters.
    rooms: RwLock<Vec<(String, Arc<RoomMetrics>)>>,
    /// The public listeners' client connections (the servers count them).
    connections: Arc<ClientConnections>,
}

/// A per-room metric family: name, type, help, and which field it reads.
type RoomFamily = (&'static str, &'static str, &'static str, fn(&RoomMetrics) -> &AtomicU64);

/// The values of `anteroom_admission_mode`'s `mode` label: as configured, or an
/// operator's pin.
pub(crate) const ADMISSION_MODES: [&str; 3] = ["fixed", "adaptive", "manual"];

/// The numbers of one room. Gauges mirror the store (the same on every instance);
/// counters count what this instance did.
#[derive(Debug)]
pub struct RoomMetrics {
    pub queue_length: AtomicU64,
    pub active_sessions: AtomicU64,
    /// The capacity in force (configured or a live override).
    pub max_active_users: AtomicU64,
    pub admitted: AtomicU64,
    pub joins: AtomicU64,
    /// Visitors dropped for silence who came back within the grace and got their place.
    pub rejoins: AtomicU64,
    pub abandoned: AtomicU64,
    /// The admission rate in force (admissions per minute).
    pub admit_per_minute: AtomicU64,
    /// Index into `ADMISSION_MODES`.
    pub admission_mode: AtomicU8,
    /// The controller's verdict as a gauge (f64 bits; NaN: no verdict yet).
    pub origin_health: AtomicU64,
    /// By `Rejection`, in the order of `Rejection::ALL`.
    tokens_rejected: [AtomicU64; Rejection::ALL.len()],
    pub challenges: Challenges,
    pub places_refused: PlacesRefused,
    /// Time in line of the visitors whose turn came (0 for those let in at once).
    pub(crate) wait: Histogram,
}

impl Default for RoomMetrics {
    fn default() -> Self {
        Self {
            queue_length: AtomicU64::new(0),
            active_sessions: AtomicU64::new(0),
            max_active_users: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            rejoins: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            admit_per_minute: AtomicU64::new(0),
            admission_mode: AtomicU8::new(0),
            origin_health: AtomicU64::new(f64::NAN.to_bits()),
            tokens_rejected: Default::default(),
            challenges: Challenges::default(),
            places_refused: PlacesRefused::default(),
            wait: Histogram::new(WAIT_BUCKETS),
        }
    }
}

impl RoomMetrics {
    /// `mode`: an entry of `ADMISSION_MODES`.
    pub fn set_admission(&self, admit_per_minute: u32, mode: &str, origin_health: Option<f64>) {
        self.admit_per_minute.store(u64::from(admit_per_minute), Relaxed);
        let index = ADMISSION_MODES.iter().position(|m| *m == mode).unwrap_or(0);
        self.admission_mode.store(index as u8, Relaxed);
        self.origin_health.store(origin_health.unwrap_or(f64::NAN).to_bits(), Relaxed);
    }

    pub fn token_rejected(&self, rejection: Rejection) {
        self.tokens_rejected[rejection as usize].fetch_add(1, Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            origin_requests: StatusCounters::default(),
            origin_latency: Histogram::new(LATENCY_BUCKETS),
            requests: ops::Requests::default(),
            origin_delayed: AtomicU64::new(0),
            origin_shed: AtomicU64::new(0),
            origin_in_flight_limit: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            reloads: Default::default(),
            // Assumed up until a call fails, so a fresh instance does not report an outage.
            store_up: AtomicBool::new(true),
            rooms: RwLock::default(),
            connections: Arc::default(),
        }
    }
}

/// This instance's origin traffic so far, as the console samples it.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginTotals {
    pub requests: u64,
    /// 5xx answers and requests that got no answer.
    pub errors: u64,
    pub shed: u64,
    /// Per latency bucket (see [`Metrics::latency_bounds`]), not cumulative.
    pub latency: Vec<u64>,
}

impl Metrics {
    pub(crate) fn origin_totals(&self) -> OriginTotals {
        let (mut requests, mut errors) = (0, 0);
        for (status, count) in self.origin_requests.nonzero() {
            requests += count;
            if status == NO_RESPONSE || status >= 500 {
                errors += count;
            }
        }
        OriginTotals { requests, errors, shed: self.origin_shed.load(Relaxed), latency: self.origin_latency.counts() }
    }

    pub(crate) fn latency_bounds(&self) -> &'static [f64] {
        self.origin_latency.bounds()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_rooms<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let rooms = names.into_iter().map(|n| (n.to_owned(), Arc::default())).collect();
        Self { rooms: RwLock::new(rooms), ..Self::default() }
    }

    /// The metrics of the room at `index` in the config.
    pub fn room(&self, index: usize) -> Arc<RoomMetrics> {
        self.rooms()[index].1.clone()
    }

    /// The metrics of the room named `name`, added if new (a reload's new room).
    pub fn room_named(&self, name: &str) -> Arc<RoomMetrics> {
        if let Some((_, m)) = self.rooms().iter().find(|(n, _)| n == name) {
            return m.clone();
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, m)) = rooms.iter().find(|(n, _)| n == name) {
            return m.clone();
        }
        let metrics = Arc::<RoomMetrics>::default();
        rooms.push((name.to_owned(), metrics.clone()));
        metrics
    }

    /// After a reload: the rooms of the new config, in its order; a room gone is no longer
    /// reported.
    pub fn keep_rooms<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let kept = names.into_iter().map(|name| (name.to_owned(), self.room_named(name))).collect();
        *self.rooms.write().unwrap_or_else(PoisonError::into_inner) = kept;
    }

    /// The rooms now, for rendering (a copy: a reload never waits on a scrape).
    fn rooms(&self) -> Vec<(String, Arc<RoomMetrics>)> {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A config reload was applied (`true`) or refused.
    pub fn config_reloaded(&self, applied: bool) {
        self.reloads[usize::from(!applied)].fetch_add(1, Relaxed);
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Relaxed);
    }

    /// Records whether the store answered; returns whether that changed.
    pub fn set_store_up(&self, up: bool) -> bool {
        self.store_up.swap(up, Relaxed) != up
    }

    pub fn is_store_up(&self) -> bool {
        self.store_up.load(Relaxed)
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

    pub fn set_in_flight_limit(&self, limit: usize) {
        self.origin_in_flight_limit.store(limit as u64, Relaxed);
    }

    /// What the public listeners' servers count their connections in.
    pub(crate) fn client_connections(&self) -> Arc<ClientConnections> {
        self.connections.clone()
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
        self.origin_latency.render(&mut out, "anteroom_origin_latency_seconds", "");
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
        header(
            &mut out,
            "anteroom_origin_in_flight_limit",
            "gauge",
            "Requests this instance lets be at the origin at once (max_in_flight, or the adaptive limit).",
        );
        let _ = writeln!(out, "anteroom_origin_in_flight_limit {}", self.origin_in_flight_limit.load(Relaxed));
        header(&mut out, "anteroom_store_errors_total", "counter", "Store calls that failed or timed out.");
        let _ = writeln!(out, "anteroom_store_errors_total {}", self.store_errors.load(Relaxed));
        header(&mut out, "anteroom_config_reloads_total", "counter", "Config reloads (SIGHUP), applied or refused.");
        for (result, count) in ["success", "failure"].iter().zip(&self.reloads) {
            let _ = writeln!(out, "anteroom_config_reloads_total{{result=\"{result}\"}} {}", count.load(Relaxed));
        }
        header(&mut out, "anteroom_store_up", "gauge", "1 while the store answers, 0 while it does not.");
        let _ = writeln!(out, "anteroom_store_up {}", u8::from(self.store_up.load(Relaxed)));
        header(
            &mut out,
            "anteroom_client_connections",
            "gauge",
            "Client connections open on the public listeners: serving, or parked (idle HTTP/1, no buffers held).",
        );
        let (serving, parked) = self.connections.now();
        let _ = writeln!(out, "anteroom_client_connections{{state=\"serving\"}} {serving}");
        let _ = writeln!(out, "anteroom_client_connections{{state=\"parked\"}} {parked}");
        header(
            &mut out,
            "anteroom_log_lines_dropped_total",
            "counter",
            "Log lines dropped because the log output (stdout) did not keep up.",
        );
        let _ = writeln!(out, "anteroom_log_lines_dropped_total {}", crate::telemetry::dropped_lines());
        self.render_ops(&mut out);
        self.render_rooms(&mut out);
        self.render_abuse(&mut out);
        out
    }

    fn render_rooms(&self, out: &mut String) {
        let rooms = self.rooms();
        let families: [RoomFamily; 8] = [
            ("anteroom_queue_length", "gauge", "Visitors waiting in the room's line.", |m| &m.queue_length),
            ("anteroom_active_sessions", "gauge", "Sessions holding the room's capacity.", |m| &m.active_sessions),
            (
                "anteroom_max_active_users",
                "gauge",
                "The room's capacity in force: configured, or an operator's live value.",
                |m| &m.max_active_users,
            ),
            ("anteroom_admitted_total", "counter", "Visitors this instance admitted.", |m| &m.admitted),
            ("anteroom_joins_total", "counter", "Places in line this instance handed out.", |m| &m.joins),
            (
                "anteroom_rejoins_total",
                "counter",
                "Visitors dropped for silence who came back within the grace and got their old place.",
                |m| &m.rejoins,
            ),
            (
                "anteroom_abandoned_total",
                "counter",
                "Waiters this instance dropped for missing heartbeats or unclaimed turns.",
                |m| &m.abandoned,
            ),
            (
                "anteroom_admit_per_minute",
                "gauge",
                "The admission rate in force: configured, pinned by an operator, or the controller's.",
                |m| &m.admit_per_minute,
            ),
        ];
        for (name, kind, help, field) in families {
            header(out, name, kind, help);
            for (room, m) in &rooms {
                let _ = writeln!(out, "{name}{{room=\"{room}\"}} {}", field(m).load(Relaxed));
            }
        }
        header(out, "anteroom_admission_mode", "gauge", "1 for the way the room's rate is set now, else 0.");
        for (room, m) in &rooms {
            let current = usize::from(m.admission_mode.load(Relaxed));
            for (i, mode) in ADMISSION_MODES.iter().enumerate() {
                let on = u8::from(i == current);
                let _ = writeln!(out, "anteroom_admission_mode{{room=\"{room}\",mode=\"{mode}\"}} {on}");
            }
        }
        header(
            out,
            "anteroom_origin_health",
            "gauge",
            "The controller's verdict on the origin: 1 healthy, 0.5 strained, 0 unhealthy (absent: no traffic yet).",
        );
        for (room, m) in &rooms {
            let health = f64::from_bits(m.origin_health.load(Relaxed));
            if health.is_finite() {
                let _ = writeln!(out, "anteroom_origin_health{{room=\"{room}\"}} {health}");
            }
        }
        header(
            out,
            "anteroom_tokens_rejected_total",
            "counter",
            "Admission tokens not accepted (treated as no token), by reason.",
        );
        for (room, m) in &rooms {
            for (rejection, count) in Rejection::ALL.iter().zip(&m.tokens_rejected) {
                let reason = rejection.reason();
                let count = count.load(Relaxed);
                if count > 0 {
                    let _ =
                        writeln!(out, "anteroom_tokens_rejected_total{{room=\"{room}\",reason=\"{reason}\"}} {count}");
                }
            }
        }
        header(
            out,
            "anteroom_wait_seconds",
            "histogram",
            "Time in line of the visitors whose turn came, from taking a place (or the opening) to the admission; 0 for those let in at once.",
        );
        for (room, m) in &rooms {
            m.wait.render(out, "anteroom_wait_seconds", &format!("room=\"{room}\""));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[derive(Debug)]
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

    #[test]
    fn rooms_are_labelled_and_rejections_counted_by_reason() {
        let m = Metrics::with_rooms(["sale", "vip"]);
        m.room(1).queue_length.store(42, Relaxed);
        m.room(0).token_rejected(Rejection::Expired);
        m.room(0).token_rejected(Rejection::Expired);
        let text = m.render();
        assert!(text.contains("anteroom_queue_length{room=\"vip\"} 42"), "{text}");
        assert!(text.contains("anteroom_tokens_rejected_total{room=\"sale\",reason=\"expired\"} 2"));
        assert!(text.contains("anteroom_store_errors_total 0"));
        assert!(!text.contains("anteroom_origin_health{"), "no verdict, no series");
        m.room(0).set_admission(1200, "adaptive", Some(0.5));
        let text = m.render();
        assert!(text.contains("anteroom_admit_per_minute{room=\"sale\"} 1200"), "{text}");
        assert!(text.contains("anteroom_admission_mode{room=\"sale\",mode=\"adaptive\"} 1"));
        assert!(text.contains("anteroom_admission_mode{room=\"sale\",mode=\"fixed\"} 0"));
        assert!(text.contains("anteroom_origin_health{room=\"sale\"} 0.5"));
    }

    #[test]
    fn token_rejections_count_in_their_own_series() {
        for (i, rejection) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*rejection as usize, i, "Rejection::ALL follows the enum's order");
        }
    }
}
