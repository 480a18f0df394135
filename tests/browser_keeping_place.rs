//! Buyers keep their place, in real headless Chromium: a tab brought back to the front
//! polls at once; the tab title follows the place and the turn; the leave button asks,
//! then gives the place up; the queue id on the page is the one support looks up; error
//! pages and the queue page speak the buyer's language with the right plural forms; a
//! room's time zone decides the times shown. Screenshots go to `target/screenshots/`.

mod support;

use anteroom::config::{ConfigBuilder, OpensAt, RoomConfig, Secret};
use std::time::Duration;
use support::browser::{Browser, Options};
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

const TOKEN: &str = "browser-admin-token";

/// One room on `/tickets` titled "The Exclusive Show", the admin API on.
fn room(origin: &Origin, admit_per_minute: u32, set: impl FnOnce(&mut RoomConfig)) -> ConfigBuilder {
    Gateway::config(&origin.url()).admin(|admin| admin.token = Some(Secret::new(TOKEN))).room(
        "sale",
        &["/tickets"],
        |room| {
            room.title = Some("The Exclusive Show".into());
            room.admit_per_minute = admit_per_minute;
            set(room);
        },
    )
}

/// How many times the page has asked for its status.
async fn polls(browser: &Browser) -> u64 {
    let script = "return performance.getEntriesByType('resource')\
                  .filter(function (e) { return e.name.indexOf('/_anteroom/status') >= 0; }).length;";
    browser.eval(script).await.as_u64().unwrap_or(0)
}

/// Opens `path` and waits for the page to show a place (the first answer only hands out
/// the queue cookie; the page's first poll takes the place).
async fn open_in_line(browser: &Browser, gw: &Gateway, path: &str) {
    browser.open(&gw.url(path)).await;
    browser
        .wait_for("a place on the page", Duration::from_secs(10), async |b| {
            b.text("[data-anteroom=position]").await.is_some_and(|p| p.trim().parse::<u64>().is_ok())
        })
        .await;
}

async fn title(browser: &Browser) -> String {
    browser.eval("return document.title;").await.as_str().unwrap_or_default().to_owned()
}

async fn wait_for_text(browser: &Browser, selector: &str, expected: &str) {
    let what = format!("{selector} to read {expected:?}");
    browser
        .wait_for(&what, Duration::from_secs(10), async |b| b.text(selector).await.as_deref() == Some(expected))
        .await;
}

/// Hides the tab and shows it again: the page asks for its status at once, not when its
/// (throttled, 30 s) timer fires.
async fn switch_away_and_back(browser: &Browser) {
    let before = polls(browser).await;
    let front = browser.hide().await;
    assert_eq!(browser.eval("return document.visibilityState;").await, "hidden");
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.show(&front).await;
    assert_eq!(browser.eval("return document.visibilityState;").await, "visible");
    browser.wait_for("a poll on becoming visible", Duration::from_secs(3), async |b| polls(b).await > before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_shown_again_polls_at_once_and_its_title_follows_the_place() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    // One admission a minute: the page is told to poll only every ~30 s.
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    let mut ahead = Visitor::json(gw.addr);
    ahead.join("/tickets/1").await;
    open_in_line(&browser, &gw, "/tickets/2").await;
    browser.open(&gw.url("/tickets/2")).await; // with the place: served with it, and the slow poll
    assert_eq!(title(&browser).await, "#2 in line · The Exclusive Show");
    let interval: u64 = browser
        .eval(
            "return Number(document.querySelector('[data-anteroom-poll-after-ms]')\
                                       .getAttribute('data-anteroom-poll-after-ms'));",
        )
        .await
        .as_u64()
        .unwrap();
    assert!(interval >= 20_000, "a slow line polls rarely: {interval} ms");
    assert_eq!(polls(&browser).await, 0);

    assert_eq!(ahead.post("/_anteroom/leave?room=sale").await.status, 200);
    switch_away_and_back(&browser).await;
    wait_for_text(&browser, "[data-anteroom=position]", "1").await;
    browser
        .wait_for("the title", Duration::from_secs(5), async |b| title(b).await == "#1 in line · The Exclusive Show")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_network_comes_back_the_page_polls_at_once() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    open_in_line(&browser, &gw, "/tickets/2").await;
    browser.open(&gw.url("/tickets/2")).await; // served with the place: the next poll in ~30 s
    let before = polls(&browser).await;
    let offline =
        serde_json::json!({ "offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 });
    browser.cdp("Network.emulateNetworkConditions", offline).await;
    browser
        .wait_for("offline", Duration::from_secs(3), async |b| b.eval("return navigator.onLine;").await == false)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let online =
        serde_json::json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 });
    browser.cdp("Network.emulateNetworkConditions", online).await;
    browser.wait_for("a poll when back online", Duration::from_secs(3), async |b| polls(b).await > before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_template_keeps_its_own_words() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("fans.html");
    std::fs::write(
        &template,
        r#"<!doctype html><html lang="{{ lang }}"><head><title>{{ tab_title }}</title>{{ head|safe }}</head>
<body><main {{ hooks|safe }}>
<h2 data-anteroom="headline">{% if lang == "de" %}Gleich geht's los!{% else %}Hang tight, fans!{% endif %}</h2>
<p data-anteroom="position">{{ position or "" }}</p>
<script type="application/json" id="anteroom-custom-texts">
{% if lang == "de" %}{"headline_waiting": "Gleich geht's los!"}{% else %}{"headline_waiting": "Hang tight, fans!"}{% endif %}
</script>
</main>{{ scripts|safe }}</body></html>"#,
    )
    .unwrap();
    let gw = Gateway::built(room(&origin, 1, |room| room.template = Some(template.clone()))).await;
    gw.take_first_slot("/tickets/0").await;
    // The place comes with the script's first poll, which renders the page again.
    open_in_line(&browser, &gw, "/tickets/1").await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("Hang tight, fans!"));
    open_in_line(&browser, &gw, "/tickets/1?lang=de").await;
    switch_away_and_back(&browser).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("Gleich geht's los!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_title_says_your_turn_when_it_comes() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 600, |room| room.max_active_users = 1)).await;
    let mut inside = gw.take_first_slot("/tickets/0").await;
    open_in_line(&browser, &gw, "/tickets/42").await;
    assert_eq!(title(&browser).await, "#1 in line · The Exclusive Show");
    assert_eq!(inside.get("/tickets/revoke").await.body_text(), "thank you for your order");
    browser
        .wait_for("the turn in the title", Duration::from_secs(20), async |b| {
            title(b).await == "Your turn! · The Exclusive Show"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leave_button_asks_then_gives_the_place_up_and_support_sees_the_same_id() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    open_in_line(&browser, &gw, "/tickets/3").await;
    let mut behind = Visitor::json(gw.addr);
    assert_eq!(behind.join("/tickets/1").await["position"], 2);

    let id = browser.text("[data-anteroom=queue-id]").await.expect("a queue id on the page");
    let (status, found) = gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{id}"), Some(TOKEN), "").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (found["visitors"][0]["state"].as_str(), found["visitors"][0]["position"].as_u64()),
        (Some("waiting"), Some(1))
    );
    browser.screenshot("queue-with-id-and-leave").await;

    let click = "setTimeout(function () { document.querySelector('[data-anteroom=leave]').click(); }, 0); return 1;";
    browser.eval(click).await;
    let asked = browser.answer_dialog(false).await;
    assert!(asked.starts_with("Leave the line?"), "{asked}");
    assert_eq!(behind.status("sale").await["queue_length"], 2, "dismissed: the place is kept");

    browser.eval(click).await;
    browser.answer_dialog(true).await;
    wait_for_text(&browser, "[data-anteroom=headline]", "You have left the line").await;
    assert_eq!(title(&browser).await, "You left the line · The Exclusive Show");
    assert_eq!(behind.status("sale").await["queue_length"], 1, "the place was given up");
    let (status, _) = gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{id}"), Some(TOKEN), "").await;
    assert_eq!(status, 404, "support no longer finds a place for that id");
    let cookies = browser.eval("return document.cookie;").await; // HttpOnly: none visible either way
    assert_eq!(cookies, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_counts_with_its_own_plural_forms() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 1, |_| {})).await;
    gw.take_first_slot("/tickets/0").await;
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut v = Visitor::json(gw.addr);
        v.join("/tickets/1").await;
        others.push(v);
    }
    open_in_line(&browser, &gw, "/tickets/4").await;
    // Three ahead and four waiting: Polish's "few"; then five waiting: its "many".
    let cases = [
        ("fr", "3 personnes sont devant vous.", "4 personnes attendent."),
        ("es", "Hay 3 personas delante de ti.", "4 personas están esperando."),
        ("it", "Ci sono 3 persone davanti a te.", "4 persone sono in attesa."),
        ("nl", "Er staan 3 mensen voor je.", "4 mensen wachten."),
        ("pl", "Przed Tobą są 3 osoby.", "Czekają 4 osoby."),
        ("pt", "3 pessoas estão na sua frente.", "4 pessoas estão esperando."),
    ];
    for (lang, ahead, waiting) in cases {
        browser.open(&gw.url(&format!("/tickets/4?lang={lang}"))).await;
        assert_eq!(browser.eval("return document.documentElement.lang;").await, lang);
        assert_eq!(browser.text("[data-anteroom=ahead]").await.as_deref(), Some(ahead), "{lang}, as served");
        assert_eq!(browser.text("[data-anteroom=queue-length]").await.as_deref(), Some(waiting), "{lang}");
        // The page's script writes them again after a poll, with the browser's plural rules.
        browser.eval("document.querySelector('[data-anteroom=ahead]').textContent = ''; return 1;").await;
        switch_away_and_back(&browser).await;
        wait_for_text(&browser, "[data-anteroom=ahead]", ahead).await;
        if lang == "fr" {
            tokio::time::sleep(Duration::from_millis(900)).await; // the progress bar's transition
            browser.screenshot("queue-waiting-fr").await;
        }
    }
    browser.open(&gw.url("/tickets/4?lang=pl")).await;
    let mut last = Visitor::json(gw.addr);
    last.join("/tickets/1").await;
    switch_away_and_back(&browser).await;
    wait_for_text(&browser, "[data-anteroom=queue-length]", "Czeka 5 osób.").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    browser.screenshot("queue-waiting-pl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_page_speaks_the_browsers_language() {
    let browser = Browser::start(Options { language: Some("pl"), ..Options::default() }).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gw = Gateway::start(&dead).await;
    browser.open(&gw.url("/tickets/1")).await;
    assert_eq!(browser.eval("return document.documentElement.lang;").await, "pl");
    assert_eq!(browser.text("h2").await.as_deref(), Some("Nie można połączyć się ze sklepem"));
    assert_eq!(browser.text("code").await.as_deref(), Some("shop_unreachable"));
    browser.screenshot("error-502-pl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_time_zone_decides_the_times_shown() {
    let browser = Browser::start(Options { language: Some("de"), ..Options::default() }).await;
    let origin = Origin::start().await;
    let zone_name = "Pacific/Kiritimati"; // UTC+14: never the same hour as this machine's UTC
    let opens_at_secs = anteroom::time::unix_secs() + 3 * 3600;
    let opens_at = OpensAt::parse(&anteroom::time::rfc3339(opens_at_secs)).unwrap();
    let gw = Gateway::built(room(&origin, 600, |room| {
        room.opens_at = Some(opens_at);
        room.time_zone = Some(zone_name.into());
    }))
    .await;
    let zone = anteroom::time::Zone::named(zone_name).unwrap();
    browser.open(&gw.url("/tickets/1")).await;
    let opening = &zone.date_time(opens_at_secs * 1000)[11..16]; // "HH:MM" there
    browser
        .wait_for("the opening time in the room's zone", Duration::from_secs(5), async |b| {
            b.text("[data-anteroom=opens-at]").await.is_some_and(|t| t.contains(opening))
        })
        .await;
    let shown = browser.text("[data-anteroom=opens-at]").await.unwrap();
    assert!(shown.contains("Dezember") || shown.contains("Januar") || shown.contains('.'), "in German: {shown}");

    // "Last updated", after the script's first poll, in the room's zone as well.
    switch_away_and_back(&browser).await;
    let now = anteroom::time::unix_secs();
    let hours: Vec<String> = [now, now + 5].iter().map(|t| zone.wall_clock(*t)[..3].to_owned()).collect();
    browser
        .wait_for("last updated in the room's zone", Duration::from_secs(5), async |b| {
            b.text("[data-anteroom=updated]").await.is_some_and(|t| hours.iter().any(|h| t.starts_with(h.as_str())))
        })
        .await;
    browser.screenshot("queue-scheduled-time-zone").await;
}
