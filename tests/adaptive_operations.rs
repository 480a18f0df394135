//! Closed-loop admission as ops live with it: an operator's rate pins the room until
//! `auto`; several instances on one Redis take one decision; a store outage holds the
//! last rate and control resumes after it.

mod support;

use anteroom::config::{AdmissionMode, Backend, ConfigBuilder, HumanDuration, Secret};
use anteroom::demo::fragile::{FragileShop, Shape};
use std::time::{Duration, Instant};
use support::redis::RedisServer;
use support::sale::{self, Crowd, Outcome};
use support::{metric, Gateway};

const TOKEN: &str = "admin-secret-for-tests";
const SHAPE: Shape = Shape { base: Duration::from_millis(50), knee: 10.0, limit: 100 };
/// Where an adaptive room with a 12,000 ceiling starts.
const START: u64 = 1_200;
/// One sale at a time: each runs a crowd, gateways and a shop whose latency is the
/// measure, on a 2-core machine. Side by side they measure each other's CPU, not the
/// controller (the outage test's "control resumes" failed only when run beside the
/// two-instance sale).
static ONE_SALE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fragile_shop() -> FragileShop {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    FragileShop::serve(listener, SHAPE).unwrap()
}

fn config(shop: &FragileShop, admission: AdmissionMode, redis: Option<&RedisServer>) -> ConfigBuilder {
    let mut config = Gateway::config(&shop.url())
        .origin(|origin| origin.response_timeout = HumanDuration(Duration::from_secs(5)))
        .admin(|admin| admin.token = Some(Secret::new(TOKEN)))
        .room("sale", &["/shop"], |room| {
            room.admission = admission;
            room.admit_per_minute = 12_000;
            room.min_admit_per_minute = Some(60);
            room.target_origin_latency = Some(HumanDuration(Duration::from_millis(250)));
            room.max_active_users = 100_000;
        });
    if let Some(redis) = redis {
        config = config.store(|store| {
            store.backend = Backend::Redis;
            store.redis_url = redis.url();
        });
        config = config.tokens(|tokens| tokens.allow_random_keys = true);
    }
    config
}

async fn stats(gw: &Gateway) -> serde_json::Value {
    let (status, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    assert_eq!(status, 200, "{stats}");
    stats
}

async fn rate(gw: &Gateway) -> u64 {
    stats(gw).await["effective_admit_per_minute"].as_u64().expect("a rate")
}

async fn patch(gw: &Gateway, body: &str) -> (u16, serde_json::Value) {
    gw.admin_api("PATCH", "/admin/rooms/sale", Some(TOKEN), body).await
}

/// A crowd running in the background against `gw`.
fn crowd(gw: &Gateway, buyers: usize, arrive_over: Duration) -> tokio::task::JoinHandle<Outcome> {
    let (addr, crowd) = (gw.addr, Crowd::new(buyers, arrive_over));
    tokio::spawn(async move { sale::run(addr, &crowd).await })
}

/// Waits (at most `within`) until `check` holds for the gateway's metrics.
async fn metrics_until(gw: &Gateway, within: Duration, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = gw.metrics().await;
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_rate_pins_the_room_until_auto_hands_it_back() {
    let _alone = ONE_SALE_AT_A_TIME.lock().await;
    let shop = fragile_shop().await;
    let gw = Gateway::built(config(&shop, AdmissionMode::Adaptive, None)).await;
    let sale = crowd(&gw, 1_500, Duration::from_secs(3));
    tokio::time::sleep(Duration::from_secs(5)).await;

    let (status, pinned) = patch(&gw, r#"{"admit_per_minute": 500}"#).await;
    assert_eq!(status, 200, "{pinned}");
    assert_eq!(pinned["admission"], "adaptive");
    assert_eq!(pinned["rate_pinned"], true);
    assert_eq!(pinned["effective_admit_per_minute"], 500);
    assert_eq!(pinned["controller_reason"], "manual");
    let text = metrics_until(&gw, Duration::from_secs(2), |m| m.contains("mode=\"manual\"} 1")).await;
    assert_eq!(metric(&text, "anteroom_admit_per_minute{room=\"sale\"}"), 500, "{text}");
    assert_eq!(metric(&text, "anteroom_admission_mode{room=\"sale\",mode=\"adaptive\"}"), 0);
    // Several windows with a healthy shop and a long line: the controller stands aside.
    for _ in 0..12 {
        assert_eq!(rate(&gw).await, 500);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (status, auto) = patch(&gw, r#"{"admit_per_minute": "auto"}"#).await;
    assert_eq!(status, 200, "{auto}");
    assert_eq!(auto["rate_pinned"], false);
    assert_eq!(auto["effective_admit_per_minute"], 500, "the controller goes on from the operator's rate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rate(&gw).await == 500 {
        assert!(Instant::now() < deadline, "the controller never took the rate back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let text = metrics_until(&gw, Duration::from_secs(2), |m| m.contains("mode=\"adaptive\"} 1")).await;
    assert_eq!(metric(&text, "anteroom_admission_mode{room=\"sale\",mode=\"adaptive\"}"), 1, "{text}");
    sale.abort();
}

#[tokio::test]
async fn bad_rate_changes_are_refused_and_change_nothing() {
    let shop = fragile_shop().await;
    let adaptive = Gateway::built(config(&shop, AdmissionMode::Adaptive, None)).await;
    let fixed = Gateway::built(config(&shop, AdmissionMode::Fixed, None)).await;
    for body in [r#"{"admit_per_minute": "fast"}"#, r#"{"admit_per_minute": 0}"#, r#"{"admit_per_minute": -5}"#] {
        let (status, answer) = patch(&adaptive, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("admit_per_minute"), "{answer}");
    }
    let (status, answer) = patch(&fixed, r#"{"admit_per_minute": "auto"}"#).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("fixed rate"), "{answer}");
    let (fixed_stats, adaptive_stats) = (stats(&fixed).await, stats(&adaptive).await);
    assert_eq!(
        (fixed_stats["effective_admit_per_minute"].as_u64(), fixed_stats["rate_pinned"].as_bool()),
        (Some(12_000), Some(false))
    );
    assert_eq!(fixed_stats["controller_reason"], serde_json::Value::Null);
    assert_eq!(adaptive_stats["effective_admit_per_minute"].as_u64(), Some(START));
    assert_eq!(adaptive_stats["controller_reason"], "start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_admit_at_one_rate() {
    let _alone = ONE_SALE_AT_A_TIME.lock().await;
    let redis = RedisServer::start();
    let shop = fragile_shop().await;
    let one = Gateway::built(config(&shop, AdmissionMode::Adaptive, Some(&redis))).await;
    let two = Gateway::built(config(&shop, AdmissionMode::Adaptive, Some(&redis))).await;
    let sales = [crowd(&one, 500, Duration::from_secs(4)), crowd(&two, 500, Duration::from_secs(4))];
    let (mut same, mut samples, mut seen) = (0, 0, std::collections::BTreeSet::new());
    while !sales.iter().all(|sale| sale.is_finished()) {
        let (a, b) = tokio::join!(rate(&one), rate(&two));
        samples += 1;
        same += usize::from(a == b);
        seen.insert(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Read at the same moment, the two differ only when a decision lands in between.
    assert!(same * 10 >= samples * 9, "{same} of {samples} samples agreed");
    assert!(seen.len() >= 3, "the rate was steered: {seen:?}");
    for sale in sales {
        let outcome = sale.await.unwrap();
        assert_eq!(outcome.checked_out, 500, "{}", outcome.summary());
    }
    // Each instance's gauge shows the one rate.
    let final_rate = rate(&one).await;
    for gw in [&one, &two] {
        let series = "anteroom_admit_per_minute{room=\"sale\"}";
        let text = metrics_until(gw, Duration::from_secs(2), |m| metric(m, series) == final_rate).await;
        assert_eq!(metric(&text, series), final_rate);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_the_last_rate_holds_and_control_resumes_after() {
    let _alone = ONE_SALE_AT_A_TIME.lock().await;
    let mut redis = RedisServer::start_persistent();
    let shop = fragile_shop().await;
    let gw = Gateway::built(config(&shop, AdmissionMode::Adaptive, Some(&redis))).await;
    let sale = crowd(&gw, 3_000, Duration::from_secs(10));
    // The controller has taken the rate from its start.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rate(&gw).await == START {
        assert!(Instant::now() < deadline, "the controller never moved");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rate(&gw).await;
    redis.kill();
    let series = "anteroom_admit_per_minute{room=\"sale\"}";
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(metric(&gw.metrics().await, series));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(held.windows(2).all(|pair| pair[0] == pair[1]), "the rate moved with the store away: {held:?}");
    let (status, _) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    assert_eq!(status, 503, "the admin API says the store is away");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (status, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
        if status == 200 {
            break stats["effective_admit_per_minute"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "the store did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Not started over: within one decision of the rate before the outage.
    assert!(after * 2 >= before && after * 4 <= before * 5, "before {before}, after {after}");
    // And the controller acts again: the shop slows to a crawl, the rate falls.
    shop.set_capacity(0.3);
    // A slow shop answers slowly: the first windows after the change still hold the
    // buyers admitted before it, so allow several decisions.
    let deadline = Instant::now() + Duration::from_secs(25);
    while rate(&gw).await * 4 > after * 3 {
        assert!(Instant::now() < deadline, "control did not resume after the outage (rate {after})");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sale.abort();
}
