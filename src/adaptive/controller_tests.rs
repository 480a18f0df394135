use super::*;
use crate::store::{Control, HealthSample};

/// Target 300 ms: latency under 75 ms never slows the line.
fn settings() -> Settings {
    Settings { adaptive: true, ceiling: 6000, floor: 60, target_ms: Some(300.0), max_error_rate: 0.01 }
}

/// A 2 s window at `rate` with `requests` requests all taking `latency_ms`, the rate
/// fully used, people waiting, and a baseline of 40 ms.
fn window(rate: u32, phase: Phase, requests: u64, latency_ms: u64) -> HealthWindow {
    let mut sample = HealthSample { requests, in_flight_ms: requests * latency_ms, ..HealthSample::default() };
    sample.latency[HealthSample::bucket(latency_ms)] = requests;
    HealthWindow {
        id: 7,
        elapsed_ms: 2000,
        sample,
        admitted: u64::from(rate) / 30,
        queue_length: 500,
        pinned: false,
        control: Control {
            rate,
            phase,
            reason: ControlReason::Healthy,
            health: OriginHealth::Healthy,
            baseline_us: 40_000,
            cliff: 0,
        },
    }
}

fn with_cliff(mut window: HealthWindow, cliff: u32) -> HealthWindow {
    window.control.cliff = cliff;
    window
}

#[test]
fn a_shop_at_ease_with_a_line_gets_more_buyers() {
    let probing = decide(&window(600, Phase::Probing, 100, 40), &settings());
    assert_eq!((probing.rate, probing.phase, probing.health), (Some(750), Phase::Probing, OriginHealth::Healthy));
    let steady = decide(&window(1000, Phase::Steady, 100, 40), &settings());
    assert_eq!((steady.rate, steady.reason), (Some(1050), ControlReason::Healthy));
}

#[test]
fn the_ceiling_and_the_floor_bound_the_rate() {
    let capped = decide(&window(5000, Phase::Probing, 100, 40), &settings());
    assert_eq!((capped.rate, capped.reason), (Some(6000), ControlReason::Ceiling));
    let floored = decide(&window(70, Phase::Steady, 100, 5000), &settings());
    assert_eq!((floored.rate, floored.reason), (Some(60), ControlReason::Floor));
}

#[test]
fn latency_over_target_decreases_in_proportion_and_marks_the_cliff() {
    // A little over 300 ms (read as 390 from the (300, 400] bucket): a small cut.
    let little = decide(&window(1000, Phase::Steady, 100, 320), &settings());
    assert_eq!(
        (little.reason, little.phase, little.health),
        (ControlReason::Latency, Phase::Easing, OriginHealth::Unhealthy)
    );
    assert!(little.rate.is_some_and(|rate| (750..=900).contains(&rate)), "{little:?}");
    assert_eq!(little.cliff, 1000, "trouble started at this rate");
    // Far over: halved.
    assert_eq!(decide(&window(1000, Phase::Steady, 100, 4000), &settings()).rate, Some(500));
    // Right after a decrease the shop still holds the buyers admitted before it.
    let easing = decide(&window(900, Phase::Easing, 100, 4000), &settings());
    assert_eq!((easing.rate, easing.phase), (Some(900), Phase::Steady));
}

#[test]
fn a_queue_building_in_the_shop_eases_off_before_the_target_is_reached() {
    // 40 ms at ease, now about 100 ms: under the 300 ms target, but the shop is queueing.
    let queueing = decide(&window(1000, Phase::Steady, 100, 100), &settings());
    assert_eq!((queueing.rate, queueing.reason), (Some(850), ControlReason::Latency));
    assert_eq!(queueing.health, OriginHealth::Strained);
    // Somewhat slower than at ease (read as 97.5 ms against 55): hold, and probing is over.
    let mut busy = window(1000, Phase::Probing, 100, 80);
    busy.control.baseline_us = 55_000;
    let busy = decide(&busy, &settings());
    assert_eq!((busy.rate, busy.phase, busy.health), (Some(1000), Phase::Steady, OriginHealth::Strained));
    // Fast in absolute terms (under a quarter of the target): never a reason to slow.
    let mut fast = window(1000, Phase::Steady, 100, 60);
    fast.control.baseline_us = 5_000;
    assert_eq!(decide(&fast, &settings()).rate, Some(1050));
}

#[test]
fn a_jammed_shop_is_seen_by_what_it_holds_not_only_by_what_it_answers() {
    // Nothing answered, forty requests held all window long.
    let mut jammed = window(1000, Phase::Steady, 0, 40);
    jammed.sample.in_flight_ms = 40 * 2000;
    let decided = decide(&jammed, &settings());
    assert_eq!((decided.reason, decided.health), (ControlReason::Latency, OriginHealth::Unhealthy));
    assert_eq!(decided.rate, Some(500));
}

#[test]
fn errors_and_shedding_decrease_even_while_easing() {
    let mut errors = window(1000, Phase::Easing, 100, 40);
    errors.sample.errors = 5;
    let decided = decide(&errors, &settings());
    assert_eq!((decided.rate, decided.reason), (Some(700), ControlReason::Errors));
    let mut shed = window(1000, Phase::Steady, 100, 40);
    shed.sample.shed = 1;
    assert_eq!(decide(&shed, &settings()).reason, ControlReason::Shedding);
    // One error in a hundred requests is no trend.
    let mut one = window(1000, Phase::Steady, 100, 40);
    one.sample.errors = 1;
    assert_eq!(decide(&one, &settings()).health, OriginHealth::Healthy);
}

#[test]
fn a_cliff_from_a_bad_spell_is_forgotten_quickly_once_the_shop_is_at_ease() {
    // At its baseline the shop is far from its queues: the cliff creeps 6 % a window, so
    // growth is no longer held at a rate cut during a degraded spell.
    let mut cliff = 1000;
    let mut rate = 850;
    // The baseline is the lowest p90, read from the same buckets.
    let at_baseline = |rate: u32, latency_ms: u64| {
        let mut w = window(rate, Phase::Steady, 100, latency_ms);
        w.control.baseline_us = (p90(&window(rate, Phase::Steady, 100, 40)).unwrap() * 1000.0) as u32;
        w
    };
    for _ in 0..12 {
        let decided = decide(&with_cliff(at_baseline(rate, 40), cliff), &settings());
        (rate, cliff) = (decided.rate.unwrap(), decided.cliff);
    }
    assert!(cliff > 1900 && rate > 1400, "after 24 s at ease: rate {rate}, cliff {cliff}");
    // Not while the p90 is above its baseline: then 1 % a window.
    let busy = decide(&with_cliff(at_baseline(850, 70), 1000), &settings());
    assert_eq!(busy.cliff, 1010);
}

#[test]
fn growth_stops_short_of_the_cliff_and_is_quick_far_below_it() {
    // Trouble started at 1000 last time: growth stops at 85 % of it (as it creeps up),
    // while the shop is busier than at its best (p90 50 ms against a 40 ms baseline).
    let near = decide(&with_cliff(window(840, Phase::Steady, 100, 50), 1000), &settings());
    assert_eq!((near.rate, near.cliff), (Some(858), 1010));
    let at = decide(&with_cliff(window(858, Phase::Steady, 100, 50), 1000), &settings());
    assert_eq!(at.rate, Some(858), "held at the margin");
    // Far below it (after a collapse took the rate to the floor): back at the probing pace.
    let far = decide(&with_cliff(window(200, Phase::Steady, 100, 40), 1000), &settings());
    assert_eq!(far.rate, Some(250));
    // Trouble that goes on does not move the cliff down with the rate.
    let mut ongoing = with_cliff(window(500, Phase::Steady, 100, 40), 1000);
    ongoing.control.reason = ControlReason::Errors;
    ongoing.sample.errors = 10;
    let decided = decide(&ongoing, &settings());
    assert_eq!((decided.rate, decided.cliff), (Some(350), 1010));
}

#[test]
fn no_increase_without_a_line_a_used_rate_or_a_signal() {
    let mut empty_line = window(1000, Phase::Steady, 100, 40);
    empty_line.queue_length = 0;
    let mut capacity_bound = window(1000, Phase::Steady, 100, 40);
    capacity_bound.admitted = 3;
    let mut silent = window(1000, Phase::Steady, 0, 40);
    silent.sample.in_flight_ms = 0;
    let mut delayed = window(1000, Phase::Steady, 100, 40);
    delayed.sample.delayed = 60;
    for (case, expected_health) in [
        (empty_line, OriginHealth::Healthy),
        (capacity_bound, OriginHealth::Healthy),
        (silent, OriginHealth::Unknown),
        (delayed, OriginHealth::Strained),
    ] {
        let decided = decide(&case, &settings());
        assert_eq!((decided.rate, decided.health), (Some(1000), expected_health), "{case:?}");
    }
}

#[test]
fn a_fixed_or_pinned_rate_gets_only_a_verdict_and_a_baseline() {
    let fixed = Settings { adaptive: false, ..settings() };
    let slow = window(1000, Phase::Steady, 100, 4000);
    assert_eq!(decide(&slow, &fixed).rate, None);
    assert_eq!(decide(&slow, &fixed).health, OriginHealth::Unhealthy);
    let pinned = HealthWindow { pinned: true, ..slow };
    assert_eq!(decide(&pinned, &settings()).rate, None);
    // The baseline follows the fastest recent window, drifting up slowly; a window over
    // a hard limit does not move it.
    assert_eq!(decide(&window(1000, Phase::Steady, 100, 20), &fixed).baseline_us, 19_000);
    assert_eq!(decide(&window(1000, Phase::Steady, 100, 48), &fixed).baseline_us, 40_800);
    assert_eq!(decide(&pinned, &fixed).baseline_us, 40_000);
}

#[test]
fn a_rate_from_outside_the_bounds_is_brought_back_in() {
    // The config changed between restarts: the stored rate is above the new ceiling.
    let mut silent = window(9000, Phase::Steady, 0, 40);
    silent.sample.in_flight_ms = 0;
    assert_eq!(decide(&silent, &settings()).rate, Some(6000));
    assert_eq!(settings().starting_rate(), 600);
    let small = Settings { ceiling: 100, floor: 60, ..settings() };
    assert_eq!(small.starting_rate(), 60);
}
