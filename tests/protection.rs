//! Origin protection: a spike reaches the origin as a smooth line, and whoever cannot be
//! served within `max_wait` is told so at once.

mod support;

use std::time::{Duration, Instant};
use support::client::get;
use support::origin::Origin;
use support::{metric, Gateway};

#[tokio::test]
async fn a_spike_is_smoothed_and_the_excess_is_shed_with_retry_after() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_requests_per_second = 20;
        o.burst = 1;
        o.max_wait = Duration::from_millis(300).into();
    }))
    .await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = get(addr, "/").await;
            (answer, sent.elapsed())
        }));
    }
    let mut forwarded = 0;
    let mut shed = 0;
    for task in tasks {
        let (answer, _waited) = task.await.unwrap();
        match answer.status.as_u16() {
            200 => forwarded += 1,
            503 => {
                shed += 1;
                let retry: u64 = answer.header("retry-after").expect("Retry-After").parse().expect("seconds");
                assert!(retry >= 1);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(forwarded + shed, 40);
    assert!(shed > 0, "40 at once cannot all fit in 300ms at 20/s");
    assert!(forwarded >= 2, "some are served");
    assert_eq!(origin.count(), forwarded, "shed requests never reach the origin");
    // GCRA bound: the burst, plus one per interval over the elapsed time.
    let bound = 1.0 + 1.0 + elapsed * 20.0;
    assert!((forwarded as f64) <= bound, "{forwarded} forwarded in {elapsed:.2}s exceeds {bound:.1}");
    let m = gw.metrics().await;
    assert_eq!(metric(&m, "anteroom_origin_shed_total"), shed as u64);
    assert!(metric(&m, "anteroom_origin_delayed_total") >= 1, "{m}");
    assert_eq!(metric(&m, "anteroom_origin_requests_total{status=\"200\"}"), forwarded as u64);
}

#[tokio::test]
async fn requests_wait_for_their_slot_instead_of_failing() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_requests_per_second = 10;
        o.burst = 1;
        o.max_wait = Duration::from_secs(5).into();
    }))
    .await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..5).map(|_| tokio::spawn(get(gw.addr, "/"))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 200, "all fit in max_wait");
    }
    // Five requests at 10/s with a burst of one cannot all be done before 4 intervals.
    assert!(started.elapsed() >= Duration::from_millis(390), "{:?}", started.elapsed());
    // Normally the four behind the first are delayed; a slow machine may start some late
    // enough to find their slot free.
    let delayed = metric(&gw.metrics().await, "anteroom_origin_delayed_total");
    assert!((1..=4).contains(&delayed), "{delayed}");
}

#[tokio::test]
async fn the_origin_never_has_more_than_max_in_flight_requests() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_in_flight = 2;
        o.max_wait = Duration::from_secs(10).into();
    }))
    .await;
    let tasks: Vec<_> = (0..6).map(|_| tokio::spawn(get(gw.addr, "/slow/150"))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 200);
    }
    assert_eq!(origin.count(), 6);
    assert_eq!(origin.max_in_flight(), 2);
}

#[tokio::test]
async fn past_the_wait_budget_the_in_flight_cap_sheds() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_in_flight = 1;
        o.max_wait = Duration::from_millis(100).into();
    }))
    .await;
    let slow = tokio::spawn(get(gw.addr, "/slow/1000"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = get(gw.addr, "/").await;
    assert_eq!(answer.status, 503);
    assert!(answer.header("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_millis(900), "answered before the slow one ended");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(origin.count(), 1);
}
