//! Closed-loop admission in the store, one suite for both stores: every instance's sample
//! is summed per control window, exactly one caller gets each ended window, a decision
//! counts only for the window just ended, and an operator's pin outranks the controller.

mod support;

use anteroom::store::{
    ControlReason, ControlUpdate, HealthSample, LimitOverrides, OriginHealth, Phase, Policy, QueueState,
};
use std::time::Duration;
use support::stores::{conformance, plain, policy, Harness, ROOM};

conformance!(
    samples_of_all_instances_are_summed_and_each_window_ends_once,
    a_decision_counts_only_for_the_window_just_ended,
    an_adaptive_room_starts_at_its_starting_rate_and_admits_at_the_controllers,
    a_pinned_rate_outranks_the_controller_until_handed_back,
    a_fixed_room_keeps_its_rate_and_gets_a_verdict,
    after_a_wipe_the_controller_starts_over,
);

const WINDOW_MS: u64 = 150;

fn adaptive() -> Policy {
    Policy { admit_per_minute: 6_000, adaptive_start: Some(600), ..policy() }
}

fn sample(requests: u64, latency_ms: u64) -> HealthSample {
    let mut sample =
        HealthSample { requests, errors: 1, delayed: 2, shed: 0, in_flight_ms: 100, ..HealthSample::default() };
    sample.latency[HealthSample::bucket(latency_ms)] = requests;
    sample
}

fn update(rate: u32, reason: ControlReason) -> ControlUpdate {
    let health = OriginHealth::Unhealthy;
    ControlUpdate { rate: Some(rate), phase: Phase::Steady, reason, health, baseline_us: 42_000, cliff: rate + 100 }
}

/// Reports until a window ends (the first report starts one), returning it.
async fn end_window(h: &Harness, policy: &Policy, last: &HealthSample) -> anteroom::store::HealthWindow {
    tokio::time::sleep(Duration::from_millis(WINDOW_MS + 20)).await;
    h.store.report_health(ROOM, policy, last, WINDOW_MS).await.unwrap().expect("the window is over")
}

async fn samples_of_all_instances_are_summed_and_each_window_ends_once(h: Harness) {
    let policy = adaptive();
    // Three instances report within one window; none of them ends it.
    for latency in [20, 40, 900] {
        assert_eq!(h.store.report_health(ROOM, &policy, &sample(10, latency), WINDOW_MS).await.unwrap(), None);
    }
    let ended = end_window(&h, &policy, &sample(5, 40)).await;
    assert_eq!(ended.id, 1);
    assert!(ended.elapsed_ms >= WINDOW_MS, "{ended:?}");
    let s = &ended.sample;
    assert_eq!((s.requests, s.errors, s.delayed, s.shed, s.in_flight_ms), (35, 4, 8, 0, 400));
    assert_eq!(s.latency[HealthSample::bucket(40)], 15);
    assert_eq!(s.latency[HealthSample::bucket(900)], 10);
    assert_eq!((ended.control.rate, ended.control.reason, ended.pinned), (600, ControlReason::Start, false));
    // Whoever reports next starts the next window: the sums are not handed out twice.
    assert_eq!(h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap(), None);
    let next = end_window(&h, &policy, &HealthSample::default()).await;
    assert_eq!((next.id, next.sample.requests), (2, 1));
}

async fn a_decision_counts_only_for_the_window_just_ended(h: Harness) {
    let policy = adaptive();
    h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap();
    let first = end_window(&h, &policy, &sample(1, 40)).await;
    let second = end_window(&h, &policy, &sample(1, 40)).await;
    // A late decision on the first window must not undo one on the second.
    assert!(!h.store.adapt(ROOM, first.id, &update(100, ControlReason::Latency)).await.unwrap());
    assert!(h.store.adapt(ROOM, second.id, &update(900, ControlReason::Healthy)).await.unwrap());
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.control_reason), (900, ControlReason::Healthy));
    assert_eq!((stats.origin_health, stats.rate_pinned), (OriginHealth::Unhealthy, false));
    let third = end_window(&h, &policy, &HealthSample::default()).await;
    assert_eq!((third.control.rate, third.control.phase), (900, Phase::Steady));
    assert_eq!((third.control.baseline_us, third.control.cliff), (42_000, 1_000));
}

async fn an_adaptive_room_starts_at_its_starting_rate_and_admits_at_the_controllers(h: Harness) {
    // Starting at 60 a minute: one admission at once, then one a second.
    let policy = Policy { adaptive_start: Some(60), ..adaptive() };
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().admit_per_minute, 60);
    assert_eq!(h.store.visit(ROOM, &plain("first"), &policy).await.unwrap().state, QueueState::Admitted);
    for i in 0..20 {
        h.store.visit(ROOM, &plain(&format!("waiter-{i}")), &policy).await.unwrap();
    }
    h.store.tick(ROOM, &policy, 0).await.unwrap();
    // The controller raises the rate to 6,000 a minute (one each 10 ms): the line moves.
    h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap();
    let ended = end_window(&h, &policy, &sample(1, 40)).await;
    assert!(h.store.adapt(ROOM, ended.id, &update(6_000, ControlReason::Ceiling)).await.unwrap());
    let mut admitted = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        admitted += h.store.tick(ROOM, &policy, 0).await.unwrap().admitted;
    }
    assert!(admitted >= 10, "admitted at the controller's rate: {admitted}");
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!(stats.admit_per_minute, 6_000);
}

async fn a_pinned_rate_outranks_the_controller_until_handed_back(h: Harness) {
    let policy = adaptive();
    let pin = LimitOverrides { admit_per_minute: Some(250), max_active_users: None, reset: false };
    h.store.set_limits(ROOM, pin).await.unwrap();
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.rate_pinned, stats.control_reason), (250, true, ControlReason::Manual));
    h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap();
    let ended = end_window(&h, &policy, &sample(1, 40)).await;
    assert!(ended.pinned);
    assert_eq!(ended.control.rate, 250);
    // The controller stands aside; its verdict is still shown.
    assert!(!h.store.adapt(ROOM, ended.id, &update(2_000, ControlReason::Healthy)).await.unwrap());
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.origin_health), (250, OriginHealth::Unhealthy));
    // Handed back: the controller goes on from the operator's rate.
    h.store.unpin_rate(ROOM).await.unwrap();
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.rate_pinned, stats.control_reason), (250, false, ControlReason::Manual));
    let ended = end_window(&h, &policy, &sample(1, 40)).await;
    assert_eq!((ended.pinned, ended.control.phase), (false, Phase::Steady));
    assert!(h.store.adapt(ROOM, ended.id, &update(300, ControlReason::Healthy)).await.unwrap());
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().admit_per_minute, 300);
}

async fn a_fixed_room_keeps_its_rate_and_gets_a_verdict(h: Harness) {
    let policy = policy();
    h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap();
    let ended = end_window(&h, &policy, &sample(1, 40)).await;
    assert_eq!(ended.control.rate, 6_000);
    let verdict = ControlUpdate { rate: None, ..update(0, ControlReason::Start) };
    assert!(!h.store.adapt(ROOM, ended.id, &verdict).await.unwrap());
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.origin_health), (6_000, OriginHealth::Unhealthy));
}

async fn after_a_wipe_the_controller_starts_over(mut h: Harness) {
    let policy = adaptive();
    h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap();
    let ended = end_window(&h, &policy, &sample(1, 40)).await;
    assert!(h.store.adapt(ROOM, ended.id, &update(2_000, ControlReason::Healthy)).await.unwrap());
    h.wipe();
    // The rate is the starting one again, and a decision from before is refused.
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().admit_per_minute, 600);
    assert!(!h.store.adapt(ROOM, ended.id, &update(3_000, ControlReason::Healthy)).await.unwrap());
    assert_eq!(h.store.report_health(ROOM, &policy, &sample(1, 40), WINDOW_MS).await.unwrap(), None);
}
