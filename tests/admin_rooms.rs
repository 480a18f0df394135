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

#[tokio::test]
async fn a_message_to_the_line_shows_on_every_waiting_page_and_bad_ones_are_refused() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, true)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut waiter = Visitor::new(gw.addr);
    assert_eq!(waiter.join("/tickets/1").await["message"], serde_json::Value::Null);

    let text = "Sorry for the wait: <b>100 more</b> tickets at 10:05";
    let body = serde_json::json!({ "message": format!("  {text}  ") }).to_string();
    let (status, stats) = admin(&gw, "PUT", "/admin/rooms/sale/message", Some(TOKEN), &body).await;
    assert_eq!((status, stats["message"].as_str()), (200, Some(text)), "{stats}");
    // Within a tick it is on the waiter's status and page (escaped, as text).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(waiter.status("sale").await["message"], text);
    let page = waiter.get("/tickets/1").await.body_text();
    assert!(page.contains("Sorry for the wait: &lt;b&gt;100 more&lt;&#x2f;b&gt; tickets at 10:05"), "{page}");
    assert!(!page.contains("<b>100 more</b>"), "never markup: {page}");

    // Refused, and the message stays as it was.
    let too_long = serde_json::json!({ "message": "x".repeat(281) }).to_string();
    let two_lines = serde_json::json!({ "message": "one\ntwo" }).to_string();
    for (body, token, expected) in [
        (too_long.as_str(), Some(TOKEN), 400),
        (two_lines.as_str(), Some(TOKEN), 400),
        ("{\"text\": \"hi\"}", Some(TOKEN), 400),
        ("not json", Some(TOKEN), 400),
        ("{\"message\": \"a forged one\"}", None, 401),
        ("{\"message\": \"a forged one\"}", Some("wrong-token"), 401),
    ] {
        let (status, answer) = admin(&gw, "PUT", "/admin/rooms/sale/message", token, body).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    assert_eq!(admin(&gw, "GET", "/admin/rooms/sale/message", Some(TOKEN), "").await.0, 405);
    assert_eq!(admin(&gw, "GET", "/admin/rooms/sale", Some(TOKEN), "").await.1["message"], text);

    let (status, stats) = admin(&gw, "DELETE", "/admin/rooms/sale/message", Some(TOKEN), "").await;
    assert_eq!((status, &stats["message"]), (200, &serde_json::Value::Null));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(waiter.status("sale").await["message"], serde_json::Value::Null);
}
