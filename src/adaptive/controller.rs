//! The closed-loop controller: one decision per control window, from the window's sums
//! over every instance. Pure: the store and the ticker around it do the I/O.
//!
//! Two kinds of evidence, as in TCP (see docs/ADAPTIVE.md for the measurements behind the
//! constants):
//!
//! - **Hard limits** the operator set (AIMD's loss signal): any shedding of the room's
//!   requests, errors over budget, or the p90 over `target_origin_latency` → decrease
//!   multiplicatively: ×0.7 for shedding or errors; by target / p90 for latency (between
//!   ×0.5 and ×0.9: a little over, a little slower).
//! - **Queueing in the shop** (TCP Vegas, Netflix's gradient limiters): the p90 against
//!   its baseline, the lowest recent p90. A fragile shop's latency stays flat until its
//!   queues build, then climbs within seconds to a collapse it takes far longer to leave
//!   (buyers already inside keep retrying). So the rate grows only while the p90 stays
//!   within 1.5× the baseline, holds up to 2×, and eases off (×0.85) beyond — before the
//!   target is reached. A p90 under a quarter of the target never slows the line: a fast
//!   shop's noise is no queue.
//!
//! Growth: ×1.25 per window from the start until the first strain (probing), then 5 % of
//! the rate per window, short of the last cliff (which creeps up, faster while the shop is
//! at ease); only while people wait and the rate was actually used (not when
//! the line ran dry or capacity held admissions back). A decrease is followed by one
//! window in which latency alone does not decrease again: buyers admitted before it still
//! load the shop (TCP's one cut per round trip). No traffic, or the gateway's protection
//! delaying a quarter of the requests → hold. Always between the floor and the ceiling; a
//! pinned rate is left alone.

use crate::config::{AdmissionMode, RoomConfig};
use crate::store::{ControlReason, ControlUpdate, HealthWindow, OriginHealth, Phase};
use std::time::Duration;

/// One decision per window. Long enough for the buyers admitted at the last decision to
/// reach the shop (their page polls about every second near the front) and for a p90
/// from a few dozen requests; short enough to ease off within seconds.
pub(crate) const WINDOW: Duration = Duration::from_secs(2);

/// Fewest timed requests a p90 is read from (fewer: no latency verdict).
const MIN_TIMED: u64 = 5;
/// Fewest errors that can make the origin unhealthy (one failed request is no trend).
const MIN_ERRORS: u64 = 2;
/// Share of requests delayed for an origin slot above which the rate is held: the
/// gateway's own protection is the bottleneck, and more buyers would only wait there.
const STRAINED_DELAYED: f64 = 0.25;
/// Share of the rate's admissions that must have happened for the rate to count as used.
const USED: f64 = 0.7;
/// p90 / baseline: below, room to grow; above `QUEUEING`, the shop is queueing.
const GROW_BELOW: f64 = 1.5;
const QUEUEING: f64 = 2.0;
/// Latency under this share of the target never slows the line.
const QUIET_SHARE: f64 = 0.25;
/// The baseline rises by this factor per window, to follow a shop that got slower for good.
const BASELINE_DRIFT: f64 = 1.02;

const PROBE_FACTOR: f64 = 1.25;
/// Growth stops at this share of the cliff (the rate trouble started at last time)...
const CLIFF_MARGIN: f64 = 0.85;
/// ...which creeps up by this factor per window, so that a shop that recovered is found
/// again (+35 % a minute)...
const CLIFF_CREEP: f64 = 1.01;
/// ...and by this one while the shop is at ease — its p90 within `AT_EASE` of the
/// baseline, where a fragile shop is far from its queues (+ 6 % a window: a cliff found
/// during a bad spell is forgotten within a minute of the shop being well again).
const CLIFF_CREEP_AT_EASE: f64 = 1.06;
const AT_EASE: f64 = 1.1;
/// Below this share of the cliff the rate grows at the probing pace.
const FAR_BELOW: f64 = 0.5;
const STEP_DIVISOR: u32 = 20;
const QUEUEING_FACTOR: f64 = 0.85;
const ERROR_FACTOR: f64 = 0.7;
const LATENCY_FACTOR_MIN: f64 = 0.5;
const LATENCY_FACTOR_MAX: f64 = 0.9;

/// A room's bounds and targets, from its config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Settings {
    pub adaptive: bool,
    pub ceiling: u32,
    pub floor: u32,
    pub target_ms: Option<f64>,
    pub max_error_rate: f64,
}

impl Settings {
    pub(crate) fn of(room: &RoomConfig) -> Self {
        Self {
            adaptive: room.admission == AdmissionMode::Adaptive,
            ceiling: room.admit_per_minute,
            floor: room.min_admit_per_minute().min(room.admit_per_minute),
            target_ms: room.target_origin_latency.as_ref().map(|t| t.0.as_secs_f64() * 1000.0),
            max_error_rate: room.max_origin_error_rate,
        }
    }

    /// Where an adaptive room starts: a tenth of the ceiling (probing finds the shop's
    /// level within a few windows), never below the floor.
    pub(crate) fn starting_rate(&self) -> u32 {
        (self.ceiling / 10).max(self.floor).min(self.ceiling)
    }
}

/// What a window says about the origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Reading {
    /// A hard limit was crossed: shedding, errors or latency over the target.
    Over(ControlReason),
    /// The p90 climbs well above its baseline: queues are building in the shop.
    Queueing,
    /// Room neither to grow nor need to ease: the p90 somewhat above its baseline, or the
    /// gateway's protection delaying many requests.
    Busy,
    /// No requests: nothing to judge.
    Silent,
    /// Within every limit and near the baseline.
    Headroom,
}

impl Reading {
    pub(crate) fn health(self) -> OriginHealth {
        match self {
            Reading::Over(_) => OriginHealth::Unhealthy,
            Reading::Queueing | Reading::Busy => OriginHealth::Strained,
            Reading::Silent => OriginHealth::Unknown,
            Reading::Headroom => OriginHealth::Healthy,
        }
    }
}

/// The window's p90 (ms), if enough requests were timed.
fn p90(window: &HealthWindow) -> Option<f64> {
    let timed: u64 = window.sample.latency.iter().sum();
    (timed >= MIN_TIMED).then(|| window.sample.latency_quantile_ms(0.9)).flatten()
}

/// Time in flight per request (ms), from the requests in flight over the window and those
/// that ended (Little's law). Latencies are known only when a request ends; this also
/// sees the requests a jammed shop holds: none ending, many in flight.
fn little_ms(window: &HealthWindow) -> Option<f64> {
    let s = &window.sample;
    (s.in_flight_ms > 0).then(|| s.in_flight_ms as f64 / s.requests.max(1) as f64)
}

/// The latency the verdicts judge: the p90, or the time in flight per request if that is
/// worse (a jam shows there first).
fn latency_ms(window: &HealthWindow) -> Option<f64> {
    match (p90(window), little_ms(window)) {
        (Some(p90), Some(little)) => Some(p90.max(little)),
        (p90, None) => p90,
        (None, Some(little)) if window.sample.requests < MIN_TIMED => Some(little),
        (None, Some(_)) => None,
    }
}

/// What the window says, against the limits and the latency baseline (ms; 0: none yet).
pub(crate) fn read(window: &HealthWindow, settings: &Settings, baseline_ms: f64) -> Reading {
    let s = &window.sample;
    let latency = latency_ms(window);
    let errors_over = s.errors >= MIN_ERRORS && s.errors as f64 > settings.max_error_rate * s.requests as f64;
    let target = settings.target_ms.unwrap_or(f64::INFINITY);
    let ratio = match latency {
        Some(latency) if baseline_ms > 0.0 && latency >= QUIET_SHARE * target => latency / baseline_ms,
        _ => 1.0,
    };
    if s.shed > 0 {
        Reading::Over(ControlReason::Shedding)
    } else if errors_over {
        Reading::Over(ControlReason::Errors)
    } else if latency.is_some_and(|latency| latency > target) {
        Reading::Over(ControlReason::Latency)
    } else if s.requests == 0 && s.in_flight_ms == 0 {
        Reading::Silent
    } else if ratio > QUEUEING {
        Reading::Queueing
    } else if ratio > GROW_BELOW || s.delayed as f64 > STRAINED_DELAYED * s.requests as f64 {
        Reading::Busy
    } else {
        Reading::Headroom
    }
}

/// The baseline after this window: the lowest recent p90, drifting up slowly. Windows
/// over a hard limit teach nothing about the shop at ease.
fn next_baseline(window: &HealthWindow, reading: Reading) -> f64 {
    let old = f64::from(window.control.baseline_us) / 1000.0;
    match p90(window) {
        _ if matches!(reading, Reading::Over(_)) => old,
        Some(p90) if old > 0.0 => p90.min(old * BASELINE_DRIFT),
        Some(p90) => p90,
        None => old,
    }
}

/// The decision on a window that has ended.
pub(crate) fn decide(window: &HealthWindow, settings: &Settings) -> ControlUpdate {
    let was = window.control;
    let reading = read(window, settings, f64::from(was.baseline_us) / 1000.0);
    let baseline_us = (next_baseline(window, reading) * 1000.0).round().min(f64::from(u32::MAX)) as u32;
    let baseline_ms = f64::from(was.baseline_us) / 1000.0;
    let at_ease = reading == Reading::Headroom
        && baseline_ms > 0.0
        && latency_ms(window).is_some_and(|latency| latency <= AT_EASE * baseline_ms);
    let creep = if at_ease { CLIFF_CREEP_AT_EASE } else { CLIFF_CREEP };
    let creeping = if was.cliff > 0 { (f64::from(was.cliff) * creep).ceil() as u32 } else { 0 };
    // A fixed or pinned rate: only the verdict is kept.
    let keep = ControlUpdate {
        rate: None,
        phase: was.phase,
        reason: was.reason,
        health: reading.health(),
        baseline_us,
        cliff: creeping,
    };
    if !settings.adaptive || window.pinned {
        return keep;
    }
    let current = was.rate.clamp(settings.floor, settings.ceiling);
    let hold = ControlUpdate {
        rate: Some(current),
        phase: match (was.phase, reading) {
            (Phase::Easing, _) | (Phase::Probing, Reading::Busy) => Phase::Steady,
            (phase, _) => phase,
        },
        ..keep
    };
    // A decrease also marks the rate it happened at: growth stops short of it.
    let lower = |factor: f64, cause: ControlReason| {
        let lowered = (f64::from(current) * factor).floor() as u32;
        let (rate, reason) =
            if lowered <= settings.floor { (settings.floor, ControlReason::Floor) } else { (lowered, cause) };
        // Trouble that goes on (the last change was a decrease) is still the first trouble.
        let ongoing = creeping > 0 && was.reason.is_decrease();
        let cliff = if ongoing { creeping } else { current };
        ControlUpdate { rate: Some(rate), phase: Phase::Easing, reason, cliff, ..keep }
    };
    match reading {
        Reading::Over(ControlReason::Latency) | Reading::Queueing if was.phase == Phase::Easing => hold,
        Reading::Over(ControlReason::Latency) => lower(latency_factor(window, settings), ControlReason::Latency),
        Reading::Over(cause) => lower(ERROR_FACTOR, cause),
        Reading::Queueing => lower(QUEUEING_FACTOR, ControlReason::Latency),
        Reading::Headroom if window.queue_length > 0 && used(window, current) => {
            let far_below = was.phase == Phase::Probing || (current as f64) < f64::from(creeping) * FAR_BELOW;
            let raised = if far_below {
                (f64::from(current) * PROBE_FACTOR).ceil() as u32
            } else {
                current + current / STEP_DIVISOR
            };
            let cap = if creeping > 0 { (f64::from(creeping) * CLIFF_MARGIN) as u32 } else { u32::MAX };
            let raised = raised.max(current + 1).min(cap.max(current));
            match raised {
                _ if raised >= settings.ceiling => {
                    ControlUpdate { rate: Some(settings.ceiling), reason: ControlReason::Ceiling, ..hold }
                }
                _ if raised > current => ControlUpdate { rate: Some(raised), reason: ControlReason::Healthy, ..hold },
                _ => hold,
            }
        }
        Reading::Busy | Reading::Silent | Reading::Headroom => hold,
    }
}

/// Latency over target: target / latency, within bounds (a little over, a little slower).
fn latency_factor(window: &HealthWindow, settings: &Settings) -> f64 {
    let latency = latency_ms(window).unwrap_or(f64::INFINITY);
    let target = settings.target_ms.unwrap_or(latency);
    (target / latency).clamp(LATENCY_FACTOR_MIN, LATENCY_FACTOR_MAX)
}

/// Did admissions keep up with the rate (so a higher one would be used)? Not when the
/// line ran dry or the room's capacity held them back. One admission of slack: slots are
/// spaced evenly, and a window's edges cut them arbitrarily.
fn used(window: &HealthWindow, rate: u32) -> bool {
    let expected = f64::from(rate) * window.elapsed_ms as f64 / 60_000.0;
    window.admitted as f64 + 1.0 >= USED * expected
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
