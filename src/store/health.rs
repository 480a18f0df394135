//! The origin's health as closed-loop admission sees it: each instance's sample of a
//! room's forwarded traffic, summed by the store over one control window, and the
//! controller's state, which the store keeps so that every instance admits at one rate.

/// Upper bounds (ms) of the latency buckets a sample counts in; one more bucket holds
/// everything slower. Fine where targets are usually set (50 ms – 1 s).
pub const LATENCY_BUCKETS_MS: [u64; 19] =
    [5, 10, 20, 30, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2500, 5000, 10000];

/// Buckets of a sample: the bounded ones and the open one.
pub const BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// What one instance saw of a room's origin traffic, or what all of them saw in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthSample {
    /// Requests forwarded to the origin (answered or not).
    pub requests: u64,
    /// 5xx answers of the origin, connect failures and timeouts.
    pub errors: u64,
    /// Requests that waited for an origin slot (the gateway's protection is busy).
    pub delayed: u64,
    /// Requests the gateway's protection refused (503): the clearest sign of overload.
    pub shed: u64,
    /// Requests in flight to the origin, integrated over time (request-milliseconds):
    /// divided by the window's length, the mean number in flight. Unlike latencies, which
    /// are known only once a request ends, it sees requests stuck in a jammed shop.
    pub in_flight_ms: u64,
    /// Time to the origin's response headers, counted per bucket (`LATENCY_BUCKETS_MS`).
    pub latency: [u64; BUCKETS],
}

impl HealthSample {
    pub fn add(&mut self, other: &HealthSample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.delayed += other.delayed;
        self.shed += other.shed;
        self.in_flight_ms += other.in_flight_ms;
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            *mine += theirs;
        }
    }

    /// The bucket a latency counts in.
    pub fn bucket(latency_ms: u64) -> usize {
        LATENCY_BUCKETS_MS.iter().position(|&upper| latency_ms <= upper).unwrap_or(BUCKETS - 1)
    }

    /// The latency (ms) below which `quantile` of the timed requests fell, interpolated
    /// linearly within its bucket; the open bucket counts as twice the last bound. `None`
    /// without timed requests.
    pub fn latency_quantile_ms(&self, quantile: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = quantile.clamp(0.0, 1.0) * total as f64;
        let mut below = 0.0;
        let mut lower = 0.0;
        for (i, &count) in self.latency.iter().enumerate() {
            let upper = LATENCY_BUCKETS_MS.get(i).map_or(2.0 * lower, |&ms| ms as f64);
            let count = count as f64;
            if count > 0.0 && below + count >= rank {
                return Some(lower + (upper - lower) * ((rank - below) / count).clamp(0.0, 1.0));
            }
            below += count;
            lower = upper;
        }
        Some(lower)
    }
}

/// A control window that has ended, summed over every instance. The one store call that
/// ended it gets it, so exactly one instance decides per window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthWindow {
    /// Numbers the windows: a decision is accepted only for the window just ended.
    pub id: u64,
    pub elapsed_ms: u64,
    pub sample: HealthSample,
    /// Admissions granted during the window (all instances).
    pub admitted: u64,
    /// Visitors waiting as the window ended.
    pub queue_length: u64,
    /// An operator pinned the rate: the controller stands aside.
    pub pinned: bool,
    /// The controller's state as the window ended (`rate`: the effective rate).
    pub control: Control,
}

/// The controller's state, kept in the store for every instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// Admissions per minute the room admits at now.
    pub rate: u32,
    pub phase: Phase,
    /// Why the rate last changed.
    pub reason: ControlReason,
    /// The last verdict on the origin.
    pub health: OriginHealth,
    /// The origin's latency when not queueing: the lowest recent window p90 (µs; 0 not
    /// known yet).
    pub baseline_us: u32,
    /// The rate in force when a hard limit was last crossed (0: never): growth stops
    /// short of it, and it creeps up so that the shop's level is found again.
    pub cliff: u32,
}

/// The controller's decision on one window, for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlUpdate {
    /// The new rate; `None` for a room at a fixed rate (only the verdict is kept).
    pub rate: Option<u32>,
    pub phase: Phase,
    pub reason: ControlReason,
    pub health: OriginHealth,
    pub baseline_us: u32,
    pub cliff: u32,
}

/// Where the controller is in its cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// From the start until the shop first shows strain: the rate grows by a factor per
    /// window, to find the shop's level quickly.
    #[default]
    Probing,
    /// Additive increase, multiplicative decrease.
    Steady,
    /// Just decreased: the buyers admitted before still load the shop, so a latency
    /// verdict waits one window before it decreases again.
    Easing,
}

/// Why the rate last changed (`controller_reason`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ControlReason {
    /// No decision yet: the starting rate.
    #[default]
    Start,
    /// The shop was healthy, people waited and the rate was used: increased.
    Healthy,
    /// The origin's latency (p90) was over the target: decreased.
    Latency,
    /// The origin's error rate was over its budget: decreased.
    Errors,
    /// The gateway shed some of the room's requests: decreased.
    Shedding,
    /// An increase stopped at `admit_per_minute`.
    Ceiling,
    /// A decrease stopped at `min_admit_per_minute`.
    Floor,
    /// An operator pinned the rate.
    Manual,
}

impl ControlReason {
    pub const ALL: [ControlReason; 8] = [
        ControlReason::Start,
        ControlReason::Healthy,
        ControlReason::Latency,
        ControlReason::Errors,
        ControlReason::Shedding,
        ControlReason::Ceiling,
        ControlReason::Floor,
        ControlReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ControlReason::Start => "start",
            ControlReason::Healthy => "healthy",
            ControlReason::Latency => "latency",
            ControlReason::Errors => "errors",
            ControlReason::Shedding => "shedding",
            ControlReason::Ceiling => "ceiling",
            ControlReason::Floor => "floor",
            ControlReason::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    /// The rate last went down.
    pub fn is_decrease(self) -> bool {
        matches!(self, ControlReason::Latency | ControlReason::Errors | ControlReason::Shedding | ControlReason::Floor)
    }
}

/// The controller's verdict on the origin, from the last window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OriginHealth {
    /// No verdict yet (no traffic).
    #[default]
    Unknown,
    Healthy,
    /// Within target, but the gateway's protection is delaying many requests: no increase.
    Strained,
    /// Latency over target, errors over budget, or shedding.
    Unhealthy,
}

impl OriginHealth {
    pub const ALL: [OriginHealth; 4] =
        [OriginHealth::Unknown, OriginHealth::Healthy, OriginHealth::Strained, OriginHealth::Unhealthy];

    pub fn as_str(self) -> &'static str {
        match self {
            OriginHealth::Unknown => "unknown",
            OriginHealth::Healthy => "healthy",
            OriginHealth::Strained => "strained",
            OriginHealth::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|health| health.as_str() == text)
    }

    /// The gauge `anteroom_origin_health`: 1 healthy, 0.5 strained, 0 unhealthy.
    pub fn gauge(self) -> Option<f64> {
        match self {
            OriginHealth::Unknown => None,
            OriginHealth::Healthy => Some(1.0),
            OriginHealth::Strained => Some(0.5),
            OriginHealth::Unhealthy => Some(0.0),
        }
    }
}

impl Phase {
    /// As the store keeps it.
    pub fn code(self) -> u8 {
        match self {
            Phase::Probing => 0,
            Phase::Steady => 1,
            Phase::Easing => 2,
        }
    }

    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Phase::Steady,
            2 => Phase::Easing,
            _ => Phase::Probing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(latencies_ms: &[u64]) -> HealthSample {
        let mut sample = HealthSample::default();
        for &ms in latencies_ms {
            sample.requests += 1;
            sample.latency[HealthSample::bucket(ms)] += 1;
        }
        sample
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        assert_eq!(HealthSample::default().latency_quantile_ms(0.9), None);
        // 90 fast requests and 10 slow ones: p90 is at the top of the fast bucket.
        let mut mixed = sample(&[8; 90]);
        mixed.add(&sample(&[900; 10]));
        let p90 = mixed.latency_quantile_ms(0.9).unwrap();
        assert!((5.0..=10.0).contains(&p90), "{p90}");
        let p95 = mixed.latency_quantile_ms(0.95).unwrap();
        assert!((750.0..=1000.0).contains(&p95), "{p95}");
        // Everything slower than the last bound still reads as slow.
        assert!(sample(&[60_000]).latency_quantile_ms(0.9).unwrap() > 10_000.0);
    }

    #[test]
    fn a_quantile_is_interpolated_within_its_bucket() {
        // Ten requests spread evenly over (200, 250]: p50 near the bucket's middle.
        let p50 = sample(&[210, 215, 220, 225, 230, 235, 240, 245, 250, 250]).latency_quantile_ms(0.5).unwrap();
        assert!((220.0..=230.0).contains(&p50), "{p50}");
    }

    #[test]
    fn names_round_trip() {
        for reason in ControlReason::ALL {
            assert_eq!(ControlReason::parse(reason.as_str()), Some(reason));
        }
        for health in OriginHealth::ALL {
            assert_eq!(OriginHealth::parse(health.as_str()), Some(health));
        }
        for phase in [Phase::Probing, Phase::Steady, Phase::Easing] {
            assert_eq!(Phase::from_code(i64::from(phase.code())), phase);
        }
    }
}
