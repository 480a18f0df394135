//! The admin listener, and draining on shutdown.

mod support;

use std::time::Duration;
use support::client::get;
use support::origin::Origin;
use support::Gateway;

#[tokio::test]
async fn health_readiness_and_metrics_are_served_on_the_admin_listener_only() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    assert_eq!(get(gw.admin, "/healthz").await.status, 200);
    let ready = get(gw.admin, "/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body_text(), "ready\nstore: memory, reachable\n");
    get(gw.addr, "/").await;
    let metrics = get(gw.admin, "/metrics").await;
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body_text();
    for name in [
        "anteroom_origin_requests_total{status=\"200\"} 1",
        "anteroom_origin_latency_seconds_count 1",
        "anteroom_origin_delayed_total 0",
        "anteroom_origin_shed_total 0",
        "anteroom_store_up 1",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    // The public listener does not serve admin paths: they go to the origin like any path.
    get(gw.addr, "/metrics").await;
    assert_eq!(origin.seen().last().unwrap().uri, "/metrics");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_refuses_new_ones_and_reports_not_ready() {
    let origin = Origin::start().await;
    let mut gw = Gateway::start(&origin.url()).await;
    let slow = tokio::spawn(get(gw.addr, "/slow/800"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(gw.admin, "/readyz").await.status, 503, "not ready while draining");
    assert_eq!(get(gw.admin, "/healthz").await.status, 200, "but alive");
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err(), "new connections are refused");
    let answer = slow.await.unwrap();
    assert_eq!(answer.status, 200, "the in-flight request finished");
    assert_eq!(answer.body_text(), "slow hello");
    tokio::time::timeout(Duration::from_secs(5), gw.shutdown()).await.expect("drained in time").expect("clean exit");
}

#[tokio::test]
async fn shutdown_does_not_wait_past_the_grace_period() {
    let origin = Origin::start().await;
    let mut gw =
        Gateway::built(Gateway::config(&origin.url()).limits(|l| l.shutdown_grace = Duration::from_millis(300).into()))
            .await;
    let _hung = tokio::spawn(get(gw.addr, "/hang"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.begin_shutdown();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), gw.shutdown()).await.expect("bounded by the grace").expect("ok");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_jwks_endpoint_publishes_public_keys_and_never_reaches_the_origin() {
    let origin = Origin::start().await;
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), anteroom::token::generate_key(anteroom::token::TokenAlgorithm::Es256).unwrap()).unwrap();
    let config = Gateway::config(&origin.url()).tokens(|tokens| {
        tokens.algorithm = anteroom::token::TokenAlgorithm::Es256;
        let key_file = Some(key.path().to_owned());
        tokens.keys = vec![anteroom::config::TokenKey { kid: "k1".into(), secret: None, private_key_file: key_file }];
    });
    let gw = Gateway::built(config).await;
    let answer = get(gw.addr, "/_anteroom/jwks.json").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/jwk-set+json"));
    let jwks: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    assert_eq!(get(gw.addr, "/_anteroom/nothing-here").await.status, 404);
    assert_eq!(origin.count(), 0, "reserved paths never reach the origin");
}
