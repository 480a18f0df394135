//! The buyer's flow in real headless Chromium: the queue page, its live updates, the
//! return to the page first asked for, a second tab, German, and JavaScript off.
//! Screenshots of each state go to `target/screenshots/`.

mod support;

use anteroom::config::{ConfigBuilder, HumanDuration, OpensAt, RoomConfig, Secret};
use std::time::Duration;
use support::browser::{Browser, Options};
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

/// One room on `/tickets`; `admit_per_minute` sets how long the browser waits, `set`
/// changes other keys.
fn room(origin: &Origin, admit_per_minute: u32, set: impl FnOnce(&mut RoomConfig)) -> ConfigBuilder {
    Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.title = Some("The Exclusive Show".into());
        room.admit_per_minute = admit_per_minute;
        room.abandon_after = HumanDuration::secs(30);
        set(room);
    })
}

async fn shown_position(browser: &Browser) -> Option<u64> {
    browser.text("[data-anteroom=position]").await?.trim().replace(',', "").parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_waits_on_the_queue_page_and_lands_on_the_page_first_asked_for() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    // One buyer at a time: the browser waits until the one inside checks out.
    let gw = Gateway::built(room(&origin, 600, |room| room.max_active_users = 1)).await;
    let mut inside = gw.take_first_slot("/tickets/0").await;
    browser.open(&gw.url("/tickets/42?seat=A12")).await;
    browser
        .wait_for("a position on the page", Duration::from_secs(10), async |b| shown_position(b).await.is_some())
        .await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("You are in line"));
    assert_eq!(shown_position(&browser).await, Some(1));
    let updated = browser.text("[data-anteroom=updated]").await.unwrap_or_default();
    assert!(!updated.ends_with("UTC"), "the script updated the page in place (local time): {updated}");
    tokio::time::sleep(Duration::from_millis(900)).await; // the progress bar's transition
    browser.screenshot("queue-waiting-en").await;

    // Everything the page loaded came from the gateway itself.
    let loaded =
        browser.eval("return performance.getEntriesByType('resource').map(function (e) { return e.name; });").await;
    let origin_url = gw.url("/");
    let loaded: Vec<&str> = loaded.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(!loaded.is_empty() && loaded.iter().all(|u| u.starts_with(&origin_url)), "external requests: {loaded:?}");

    assert_eq!(inside.get("/tickets/revoke").await.body_text(), "thank you for your order");

    browser
        .wait_for("the turn", Duration::from_secs(20), async |b| {
            b.text("[data-anteroom=headline]").await.as_deref() == Some("It's your turn!")
        })
        .await;
    browser.screenshot("queue-admitted").await;
    browser
        .wait_for("the return to the shop", Duration::from_secs(10), async |b| {
            b.url().await.ends_with("/tickets/42?seat=A12") && b.html().await.contains("hello")
        })
        .await;
    browser.screenshot("shop-after-admission").await;
    let seen = origin.seen();
    let arrived = seen.iter().find(|s| s.uri == "/tickets/42?seat=A12").expect("the shop saw the page first asked for");
    assert_eq!(arrived.headers.get("x-anteroom-room").unwrap(), "sale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tab_shows_the_same_place() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    for _ in 0..2 {
        Visitor::json(gw.addr).join("/tickets/1").await; // two people ahead
    }
    browser.open(&gw.url("/tickets/5")).await;
    browser.wait_for("a position", Duration::from_secs(10), async |b| shown_position(b).await.is_some()).await;
    let first_tab = shown_position(&browser).await;
    assert_eq!(first_tab, Some(3));
    browser.new_tab().await;
    browser.open(&gw.url("/tickets/5")).await;
    browser
        .wait_for("a position in the second tab", Duration::from_secs(10), async |b| shown_position(b).await.is_some())
        .await;
    assert_eq!(shown_position(&browser).await, first_tab, "one place, whatever the tab");
    let length = browser.text("[data-anteroom=queue-length]").await.unwrap_or_default();
    assert!(length.starts_with("3 "), "still three in line: {length}");
    browser.screenshot("queue-second-tab").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_german_browser_gets_the_german_page() {
    let browser = Browser::start(Options { language: Some("de"), ..Options::default() }).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    browser.open(&gw.url("/tickets/1")).await;
    browser.wait_for("a position", Duration::from_secs(10), async |b| shown_position(b).await.is_some()).await;
    assert_eq!(browser.eval("return document.documentElement.lang;").await, "de");
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("Sie sind in der Warteschlange"));
    assert!(browser.html().await.contains("Ihr Platz bleibt erhalten"));
    tokio::time::sleep(Duration::from_millis(900)).await; // the progress bar's transition
    browser.screenshot("queue-waiting-de").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_off_the_page_still_reaches_the_shop() {
    let browser = Browser::start(Options { javascript_off: true, ..Options::default() }).await;
    let origin = Origin::start().await;
    // One buyer at a time, so that no slot opens (and no refresh lets the browser in) before
    // the page is checked, however slowly a loaded machine loads it.
    let gw = Gateway::built(room(&origin, 600, |room| room.max_active_users = 1)).await;
    let mut inside = gw.take_first_slot("/tickets/0").await;
    browser.open(&gw.url("/tickets/7")).await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("You are in line"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // No script ran: the page is exactly as the gateway rendered it (server time, in UTC).
    let updated = browser.text("[data-anteroom=updated]").await.unwrap_or_default();
    assert!(updated.ends_with("UTC"), "no script should have touched the page: {updated}");
    browser.screenshot("queue-noscript").await;
    assert_eq!(inside.get("/tickets/revoke").await.body_text(), "thank you for your order");
    browser
        .wait_for("the shop, by refreshes alone", Duration::from_secs(30), async |b| {
            b.url().await.ends_with("/tickets/7") && b.html().await.contains("hello")
        })
        .await;
    assert!(origin.seen().iter().any(|s| s.uri == "/tickets/7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_pause_and_a_resume() {
    let origin = Origin::start().await;
    let config = room(&origin, 20, |_| {}).admin(|admin| admin.token = Some(Secret::new("browser-test-token")));
    let gw = Gateway::built(config).await;
    gw.take_first_slot("/tickets/0").await;
    let pause = |action: &'static str| {
        let admin = gw.admin;
        async move {
            let req = http::Request::post(format!("/admin/rooms/sale/{action}"))
                .header("host", "admin")
                .header("authorization", "Bearer browser-test-token")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            assert_eq!(support::client::send(admin, req).await.status.as_u16(), 200);
        }
    };
    pause("pause").await;
    let browser = Browser::start(Options::default()).await;
    browser.open(&gw.url("/tickets/3")).await;
    browser
        .wait_for("the paused wording", Duration::from_secs(10), async |b| {
            b.text("[data-anteroom=headline]").await.as_deref() == Some("The line is paused for a moment")
        })
        .await;
    browser.screenshot("queue-paused").await;
    pause("resume").await;
    browser
        .wait_for("the shop after the resume", Duration::from_secs(30), async |b| {
            b.url().await.ends_with("/tickets/3") && b.html().await.contains("hello")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_opening_the_page_counts_down_then_lets_the_buyer_in() {
    let browser = Browser::start(Options::default()).await;
    let opens_at = anteroom::time::rfc3339(anteroom::time::unix_secs() + 8);
    let origin = Origin::start().await;
    let config = room(&origin, 600, |room| room.opens_at = Some(OpensAt::parse(&opens_at).unwrap()));
    let gw = Gateway::built(config).await;
    browser.open(&gw.url("/tickets/9")).await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("The sale opens soon"));
    let let_in = |origin: &Origin| origin.seen().iter().any(|s| s.uri.starts_with("/tickets"));
    assert!(!let_in(&origin), "nobody is let in before the opening");
    browser
        .wait_for("the countdown", Duration::from_secs(5), async |b| {
            b.text("[data-anteroom=countdown]").await.is_some_and(|t| t.starts_with("00:0"))
        })
        .await;
    browser.screenshot("queue-scheduled").await;
    assert!(!let_in(&origin), "nobody is let in before the opening");
    browser
        .wait_for("the shop after the opening", Duration::from_secs(30), async |b| {
            b.url().await.ends_with("/tickets/9") && b.html().await.contains("hello")
        })
        .await;
}
