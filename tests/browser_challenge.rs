//! The proof-of-work challenge in real headless Chromium: the queue page solves a real
//! challenge in a Web Worker while showing progress, joins the line with the solution and
//! is later let into the shop; with JavaScript off the page says why it cannot go on; the
//! worker's own SHA-256 (for pages served over plain HTTP, without WebCrypto) finds the
//! same solutions as WebCrypto and the gateway.

mod support;

use anteroom::config::{ChallengeMode, ConfigBuilder, Difficulty};
use std::time::Duration;
use support::browser::{Browser, Options};
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

/// `sale` on `/tickets`, one admission every 10 s, behind a challenge of `bits`.
fn room(origin: &Origin, bits: u8) -> ConfigBuilder {
    Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.title = Some("The Exclusive Show".into());
        room.admit_per_minute = 6;
        room.challenge = ChallengeMode::ProofOfWork;
        room.challenge_difficulty = Difficulty::Bits(bits);
    })
}

/// From the next page on, every width the challenge's progress bar takes is recorded in
/// `window.progressSeen` (the page may solve faster than a test could look).
async fn record_progress(browser: &Browser) {
    let script = "window.progressSeen = []; new MutationObserver(function () { \
                    var e = document.querySelector('[data-anteroom=challenge-progress]'); \
                    if (e && e.style.width) window.progressSeen.push(parseFloat(e.style.width)); \
                  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['style'] });";
    browser.cdp("Page.addScriptToEvaluateOnNewDocument", serde_json::json!({ "source": script })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_solves_the_challenge_showing_progress_then_waits_and_reaches_the_shop() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 17)).await;
    // Someone took the first admission: the buyer will wait in line after the challenge
    // (2^17 hashes on average: a second or so, and the page stays usable meanwhile).
    assert_eq!(Visitor::json(gw.addr).solve_and_join("sale").await["state"], "admitted");

    record_progress(&browser).await;
    browser.open(&gw.url("/tickets/7")).await;
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("Getting you a place in line…"));
    browser.screenshot("queue-challenge").await;
    browser
        .wait_for("a place, bought with the solution", Duration::from_secs(60), async |b| {
            b.text("[data-anteroom=position]").await.is_some_and(|p| p.trim().parse::<u64>().is_ok())
        })
        .await;
    let seen = browser.eval("return window.progressSeen;").await;
    let seen: Vec<f64> = seen.as_array().unwrap().iter().filter_map(|v| v.as_f64()).collect();
    assert!(seen.iter().any(|p| *p > 0.0 && *p < 100.0), "the bar showed the work going on: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "and never went back: {seen:?}");
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("You are in line"));
    assert!(
        browser.cookie_names().await.iter().all(|name| name != "anteroom_c_sale"),
        "the spent challenge is cleared"
    );
    browser
        .wait_for("the shop", Duration::from_secs(30), async |b| {
            b.url().await.ends_with("/tickets/7") && b.html().await.contains("hello")
        })
        .await;
    assert!(origin.seen().iter().any(|s| s.uri == "/tickets/7"));
    let text = gw.metrics().await;
    assert_eq!(support::metric(&text, "anteroom_challenges_total{room=\"sale\",result=\"solved\"}"), 2, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_javascript_off_the_page_explains_that_the_challenge_needs_scripts() {
    let browser = Browser::start(Options { javascript_off: true, ..Options::default() }).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 8)).await;
    browser.open(&gw.url("/tickets/7")).await;
    let html = browser.html().await;
    assert!(html.contains("Please turn on JavaScript for this site and reload this page."), "{html}");
    browser.screenshot("queue-challenge-noscript").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(browser.url().await.ends_with("/tickets/7"));
    assert_eq!(browser.text("[data-anteroom=headline]").await.as_deref(), Some("Getting you a place in line…"));
    let shop = origin.seen().iter().filter(|s| s.uri.starts_with("/tickets")).count();
    assert_eq!(shop, 0, "no place, and nobody let in, without a solution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_script_sha256_finds_what_webcrypto_and_the_gateway_find() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 8)).await;
    browser.open(&gw.url("/tickets/7")).await;
    let worker = browser
        .eval("return document.querySelector('[data-anteroom-challenge-worker]').getAttribute('data-anteroom-challenge-worker');")
        .await;
    let worker = worker.as_str().expect("the page names its worker").to_owned();
    // A page of the gateway's that goes nowhere by itself (the queue page would join and
    // leave for the shop meanwhile).
    browser.open(&gw.url("/_anteroom/assets/queue.css")).await;
    for prefix in ["c1:1796404995328:16:FXcx_drxPvc6UmL2UVkeRQ:", "héllo · ünïcode:"] {
        let expected = anteroom::solve_challenge(prefix, 16).to_string();
        for script in [false, true] {
            let run = format!(
                "var w = new Worker({worker:?}); w.onmessage = function (e) {{ if (e.data.nonce != null) done(e.data.nonce + ' ' + e.data.how); }};\
                 w.postMessage({{ prefix: {prefix:?}, difficulty: 16, script: {script} }});"
            );
            let found = browser.eval_async(&run).await;
            let how = if script { "script" } else { "webcrypto" };
            assert_eq!(found.as_str(), Some(format!("{expected} {how}").as_str()), "{prefix}");
        }
    }
}

/// The numbers behind docs/BENCHMARKS.md ("Proof of work"): how fast this machine's
/// Chromium hashes in the worker, with WebCrypto and with the script SHA-256, and so the
/// expected solve time at each difficulty.
/// `cargo test --test browser_challenge -- --ignored --nocapture measure_solve_times`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_solve_times() {
    let browser = Browser::start(Options::default()).await;
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, 8)).await;
    browser.open(&gw.url("/_anteroom/assets/queue.css")).await;
    let worker = anteroom_asset_url(&gw).await;
    let mut rates = Vec::new();
    for script in [false, true] {
        // A difficulty nobody solves in 4 s: the worker reports how far it got.
        let run = format!(
            "var w = new Worker({worker:?}), last = 0, t0 = performance.now(); \
             w.onmessage = function (e) {{ if (e.data.tried != null) last = e.data.tried; }}; \
             w.postMessage({{ prefix: 'c1:1796404995328:28:FXcx_drxPvc6UmL2UVkeRQ:', difficulty: 28, script: {script} }}); \
             setTimeout(function () {{ w.terminate(); done(last / ((performance.now() - t0) / 1000)); }}, 4000);"
        );
        let rate = browser.eval_async(&run).await.as_f64().unwrap_or(0.0);
        let how = if script { "script SHA-256" } else { "WebCrypto" };
        println!("Chromium worker, {how}: {:.0} k hashes/s", rate / 1e3);
        rates.push(rate);
    }
    println!("| bits | hashes (mean) | WebCrypto mean | WebCrypto 90th pct | script mean |");
    for bits in 12..=20 {
        let hashes = 2f64.powi(bits);
        let mean = |rate: f64| hashes / rate;
        // Tries until the first success are geometric: the 90th percentile is ln(10) ≈ 2.3 × the mean.
        println!(
            "| {bits} | {hashes} | {:.2} s | {:.2} s | {:.2} s |",
            mean(rates[0]),
            mean(rates[0]) * 10f64.ln(),
            mean(rates[1])
        );
    }
}

/// The worker's URL, as the queue page of a room with a challenge names it.
async fn anteroom_asset_url(gw: &Gateway) -> String {
    let page = Visitor::new(gw.addr).get("/tickets/1").await.body_text();
    let start = page.find("data-anteroom-challenge-worker=\"").expect("the page names its worker") + 32;
    page[start..].split('"').next().unwrap().to_owned()
}
