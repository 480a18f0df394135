//! The console in real headless Chromium: a wrong token is refused, the right one logs in,
//! the numbers move while a crowd waits, and each control works — seen on a buyer's queue
//! page in a second browser.

mod support;

use anteroom::config::{ConfigBuilder, Secret};
use std::time::Duration;
use support::browser::{Browser, Options};
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

const TOKEN: &str = "console-test-admin-token";
const WITHIN: Duration = Duration::from_secs(15);

/// `sale` on `/tickets`: one buyer inside at a time, so everyone after the first waits.
fn config(origin: &Origin) -> ConfigBuilder {
    Gateway::config(&origin.url()).admin(|admin| admin.token = Some(Secret::new(TOKEN))).room(
        "sale",
        &["/tickets"],
        |room| {
            room.title = Some("The Exclusive Show".into());
            room.admit_per_minute = 6_000;
            room.max_active_users = 1;
        },
    )
}

async fn log_in(console: &Browser, token: &str) {
    let script = format!(
        "document.getElementById('token').value = {}; document.querySelector('form').submit(); return true;",
        serde_json::json!(token)
    );
    console.eval(&script).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn click(console: &Browser, action: &str) {
    let script = format!("document.querySelector('[data-room=sale] [data-action={action}]').click(); return true;");
    console.eval(&script).await;
}

async fn fill(console: &Browser, key: &str, value: &str) {
    let script = format!(
        "var e = document.querySelector('[data-room=sale] [data-k={key}]'); e.value = {}; return true;",
        serde_json::json!(value)
    );
    console.eval(&script).await;
}

/// Waits until the console shows `text` for the room's number `key`.
async fn console_shows(console: &Browser, key: &str, text: &str) {
    let selector = format!("[data-room=sale] dd[data-k={key}]");
    console
        .wait_for(&format!("the console's {key} to read {text:?}"), WITHIN, async |b| {
            b.text(&selector).await.as_deref() == Some(text)
        })
        .await;
}

/// Waits until the buyer's page shows the section `when` (e.g. `when-paused`).
async fn buyer_sees(buyer: &Browser, when: &str) {
    let script = format!("var e = document.querySelector('[data-anteroom={when}]'); return !!e && !e.hidden;");
    buyer.wait_for(&format!("the buyer's page to show {when}"), WITHIN, async |b| b.eval(&script).await == true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_logs_in_shows_the_line_moving_and_every_control_reaches_the_buyers() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin)).await;
    let _inside = gw.take_first_slot("/tickets/1").await;
    let mut crowd = Vec::new();
    for _ in 0..4 {
        let mut waiter = Visitor::new(gw.addr);
        assert_eq!(waiter.join("/tickets/1").await["state"], "waiting");
        crowd.push(waiter);
    }

    let console = Browser::start(Options::default()).await;
    console.open(&format!("http://{}/admin/console", gw.admin)).await;
    log_in(&console, "not-the-admin-token").await;
    let said = console.text(".problem").await;
    assert_eq!(said.as_deref(), Some("That is not the admin token."), "{}", console.html().await);
    assert!(console.text("[data-room=sale]").await.is_none(), "no console without the token");
    log_in(&console, TOKEN).await;
    assert!(console.cookie_names().await.contains(&"anteroom_console".to_owned()));
    console_shows(&console, "queue_length", "4").await;
    console_shows(&console, "inside", "1 / 1").await;

    // The buyer, in a browser of their own, waits in line.
    let buyer = Browser::start(Options::default()).await;
    buyer.open(&gw.url("/tickets/7")).await;
    buyer_sees(&buyer, "when-waiting").await;
    // The numbers move as the crowd grows.
    for _ in 0..3 {
        crowd.push(Visitor::new(gw.addr));
        crowd.last_mut().unwrap().join("/tickets/1").await;
    }
    console_shows(&console, "queue_length", "8").await;
    console.screenshot("console").await;

    click(&console, "pause").await;
    buyer_sees(&buyer, "when-paused").await;
    click(&console, "resume").await;
    buyer_sees(&buyer, "when-waiting").await;

    fill(&console, "message-input", "Doors open at 10:05 — thanks for waiting").await;
    click(&console, "message").await;
    buyer
        .wait_for("the message on the buyer's page", WITHIN, async |b| {
            b.text("[data-anteroom=message]").await.as_deref() == Some("Doors open at 10:05 — thanks for waiting")
                && b.eval("return !document.querySelector('[data-anteroom=message]').hidden;").await == true
        })
        .await;
    console_shows(&console, "message", "Doors open at 10:05 — thanks for waiting").await;
    click(&console, "clear-message").await;
    buyer
        .wait_for("the message gone", WITHIN, async |b| {
            b.eval("return document.querySelector('[data-anteroom=message]').hidden;").await == true
        })
        .await;

    fill(&console, "rate-input", "120").await;
    click(&console, "rate").await;
    console_shows(&console, "admit_per_minute", "120").await;
    fill(&console, "capacity-input", "50").await;
    click(&console, "capacity").await;
    // The crowd's turn comes (the buyers who do not poll never claim it: not inside).
    console_shows(&console, "queue_length", "0").await;
    // Their turn: the page says so, then takes them to the page they asked for.
    let arrived = "var e = document.querySelector('[data-anteroom=when-admitted]'); \
                   return (!!e && !e.hidden) || document.body.textContent === 'hello';";
    buyer.wait_for("the buyer's turn", WITHIN, async |b| b.eval(arrived).await == true).await;
    console_shows(&console, "inside", "2 / 50").await;

    click(&console, "close").await;
    let mut late = Visitor::json(gw.addr);
    assert_eq!(late.join("/tickets/1").await["state"], "closed", "nobody new gets in");
    click(&console, "open").await;
    click(&console, "reset").await;
    console_shows(&console, "admit_per_minute", "6,000").await;
    console_shows(&console, "inside", "2 / 1").await;
    let (_, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
    assert_eq!((stats["closed"].as_bool(), stats["rate_pinned"].as_bool()), (Some(false), Some(false)), "{stats}");
}
