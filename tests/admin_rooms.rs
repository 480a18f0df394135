//! The room controls on the admin listener: stats, pause/resume, live rate and capacity,
//! all behind the bearer token.

mod support;

use anteroom::config::{ConfigBuilder, Secret};
use std::time::Duration;
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

const TOKEN: &str = "admin-secret-for-tests";

/// One room `sale` with room for one shopper; the admin API on (with `TOKEN`) or off.
fn config(origin: &Origin, with_token: bool) -> ConfigBuilder {
    Gateway::config(&origin.url()).admin(|admin| admin.token = with_token.then(|| Secret::new(TOKEN))).room(
        "sale",
        &["/tickets"],
        |room| {
            room.admit_per_minute = 6000;
            room.max_active_users = 1;
        },
    )
}

async fn admin(gw: &Gateway, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    gw.admin_api(method, path, token, body).await
}

#[tokio::test]
async fn the_room_controls_need_a_configured_token_and_the_right_bearer() {
    let origin = Origin::start().await;
    let off = Gateway::built(config(&origin, false)).await;
    let (status, body) = admin(&off, "GET", "/admin/rooms", Some(TOKEN), "").await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("admin.token"));

    let on = Gateway::built(config(&origin, true)).await;
    assert_eq!(admin(&on, "GET", "/admin/rooms", None, "").await.0, 401);
    assert_eq!(admin(&on, "GET", "/admin/rooms", Some("wrong"), "").await.0, 401);
    let (status, body) = admin(&on, "GET", "/admin/rooms", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert_eq!(body["rooms"][0]["room"], "sale");
    assert_eq!(body["rooms"][0]["max_active_users"], 1);
    // Never on the public listener.
    assert_eq!(Visitor::new(on.addr).get("/admin/rooms").await.body_text(), "hello");
}

#[tokio::test]
async fn pausing_stops_admissions_and_resuming_lets_the_line_move() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, true)).await;
    let (status, body) = admin(&gw, "POST", "/admin/rooms/sale/pause", Some(TOKEN), "").await;
    assert_eq!((status, body["paused"].as_bool()), (200, Some(true)));

    let mut buyer = Visitor::json(gw.addr);
    let queued = buyer.join("/tickets/1").await;
    assert_eq!((queued["state"].as_str(), queued["position"].as_u64()), (Some("paused"), Some(1)));
    tokio::time::sleep(Duration::from_millis(600)).await; // ticks come and go: nobody is let in
    assert_eq!(buyer.status("sale").await["state"], "paused");

    admin(&gw, "POST", "/admin/rooms/sale/resume", Some(TOKEN), "").await;
    buyer.wait_until_admitted("sale", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn capacity_and_rate_change_live() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, true)).await;
    assert_eq!(Visitor::new(gw.addr).get("/tickets/1").await.body_text(), "hello");
    let mut second = Visitor::json(gw.addr);
    assert_eq!(second.join("/tickets/1").await["state"], "waiting", "capacity 1 is taken");

    let (status, body) =
        admin(&gw, "PATCH", "/admin/rooms/sale", Some(TOKEN), r#"{"max_active_users": 2, "admit_per_minute": 120}"#)
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["max_active_users"].as_u64(), body["admit_per_minute"].as_u64()), (Some(2), Some(120)));
    second.wait_until_admitted("sale", Duration::from_secs(5)).await; // the second place opened
}

#[tokio::test]
async fn bad_admin_requests_get_clear_errors_and_change_nothing() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, true)).await;
    let cases = [
        ("GET", "/admin/rooms/nope", "", 404),
        ("DELETE", "/admin/rooms/sale", "", 405),
        ("PATCH", "/admin/rooms/sale", "not json", 400),
        ("PATCH", "/admin/rooms/sale", r#"{"admit_per_minute": 0}"#, 400),
        ("PATCH", "/admin/rooms/sale", r#"{"rate": 5}"#, 400),
        ("PATCH", "/admin/rooms/sale", "{}", 400),
        ("GET", "/admin/other", "", 404),
    ];
    for (method, path, body, expected) in cases {
        let (status, answer) = admin(&gw, method, path, Some(TOKEN), body).await;
        assert_eq!(status, expected, "{method} {path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: an error message");
    }
    let (_, stats) = admin(&gw, "GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    assert_eq!((stats["admit_per_minute"].as_u64(), stats["max_active_users"].as_u64()), (Some(6000), Some(1)));
}

#[tokio::test]
async fn closing_a_room_tells_the_line_and_keeps_shoppers_shopping() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, true)).await;
    let mut shopper = Visitor::new(gw.addr);
    assert_eq!(shopper.get("/tickets/1").await.body_text(), "hello");
    let (status, body) = admin(&gw, "POST", "/admin/rooms/sale/close", Some(TOKEN), "").await;
    assert_eq!((status, body["closed"].as_bool()), (200, Some(true)));

    let mut late = Visitor::json(gw.addr);
    assert_eq!(late.join("/tickets/1").await["state"], "closed");
    let page = Visitor::new(gw.addr).get("/tickets/1").await;
    assert_eq!(page.header("x-anteroom-state"), Some("closed"));
    assert!(page.body_text().contains("The sale is closed"));
    assert_eq!(shopper.get("/tickets/2").await.body_text(), "hello", "the shopper inside finishes");

    admin(&gw, "POST", "/admin/rooms/sale/open", Some(TOKEN), "").await;
    assert_ne!(late.join("/tickets/1").await["state"], "closed");
}
