//! `anteroom rehearse` against a real gateway and a recording origin: the report's counts
//! match what the origin saw, the line was served in order, `--direct` goes straight at the
//! shop, and a bad script, an unreachable target or a remote one without `--allow-remote`
//! each stop with a clear error. `--admin` adds what the gateway said; `--find-capacity`
//! finds where a fragile shop's p90 crossed the target, straight and through an adaptive
//! room.

mod support;

use anteroom::config::{AdmissionMode, ChallengeMode, Difficulty, HumanDuration, Secret};
use anteroom::demo::fragile::{FragileShop, Shape};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::origin::Origin;
use support::{metric, Gateway};

const BIN: &str = env!("CARGO_BIN_EXE_anteroom");
const TOKEN: &str = "admin-secret-for-tests";
/// One capacity search at a time: each measures a shop's latency on a 2-core machine.
static ONE_SEARCH_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `anteroom rehearse` off the async runtime (the gateway under test shares it).
async fn rehearse_async<S: AsRef<str>>(args: &[S]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    tokio::task::spawn_blocking(move || rehearse(&args)).await.unwrap()
}

/// Runs `anteroom rehearse ARGS --script (steps, written into dir) --out DIR/report` off
/// the async runtime; the output, and the report's folder.
async fn rehearse_scripted(dir: &Path, steps: &str, args: &[&str]) -> (Output, PathBuf) {
    let script = dir.join("buyer.toml");
    std::fs::write(&script, steps).unwrap();
    let out_dir = dir.join("report");
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend([
        "--script".to_owned(),
        script.display().to_string(),
        "--out".to_owned(),
        out_dir.display().to_string(),
    ]);
    (rehearse_async(&all).await, out_dir)
}

fn rehearse<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(BIN).arg("rehearse").args(args).output().expect("run anteroom")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("JSON")
}

const SCRIPT: &str = "[[step]]\npath = \"/tickets/1\"\nthink = \"100ms\"\n\
                      [[step]]\nmethod = \"POST\"\npath = \"/tickets/revoke\"\nbody = \"seats=2\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_through_the_gateway_reports_what_the_shop_saw_and_a_fair_line() {
    let origin = Origin::start().await;
    // Ten admissions a second, ten inside at once (the checkout ends a session): 60
    // buyers in 2 s make a line.
    let config = Gateway::config(&origin.url()).admin(|admin| admin.token = Some(Secret::new(TOKEN))).room(
        "sale",
        &["/tickets"],
        |room| {
            room.admit_per_minute = 600;
            room.max_active_users = 10;
        },
    );
    let gw = Gateway::built(config).await;
    let dir = tempfile::tempdir().unwrap();
    let url = gw.url("/");
    let admin = format!("http://{}", gw.admin);
    let (out, out_dir) = rehearse_scripted(
        dir.path(),
        SCRIPT,
        &[
            &url,
            "--crowd",
            "60",
            "--arrival",
            "spread",
            "--arrival-s",
            "2",
            "--duration",
            "60s",
            "--admin",
            &admin,
            "--admin-token",
            TOKEN,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&out_dir);
    let summary = &report["summary"];
    assert_eq!(summary["buyers"], 60, "{summary}");
    assert_eq!(summary["done"], 60, "every buyer finished: {}", report["outcomes"]);
    // What the buyers say reached the shop is what the shop saw.
    assert_eq!(summary["shop_requests"].as_u64().unwrap(), origin.count() as u64, "{summary}");
    assert_eq!(origin.count(), 120, "two steps each");
    assert!(summary["waited"].as_u64().unwrap() > 10, "a line formed: {summary}");
    assert_eq!(report["fifo"]["certain_inversions"], 0, "{}", report["fifo"]);
    assert!(report["fifo"]["checked"].as_u64().unwrap() > 10);
    assert_eq!(report["generator"]["saturated"], false);
    // The gateway's own account agrees, and its rate in force is the configured one.
    let gateway = &report["gateway"];
    assert_eq!(gateway["room"], "sale", "{gateway}");
    assert_eq!(gateway["shop_requests"].as_u64(), Some(origin.count() as u64), "{gateway}");
    let samples = gateway["samples"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.iter().all(|s| s["admit_per_minute"].as_f64() == Some(600.0)), "{gateway}");
    assert!(samples.iter().any(|s| s["queue_length"].as_f64() > Some(0.0)), "the whole line was read: {gateway}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("60 of 60 buyers finished their visit"), "{said}");
    // A progress line every 2 s while it ran, on stderr.
    assert!(stderr(&out).lines().any(|l| l.contains(" of 60 arrived |") && l.contains("in line")), "{}", stderr(&out));
    assert!(
        said.contains("The gateway forwarded 120 requests to the shop; the buyers counted 120 (0.0 % apart)"),
        "{said}"
    );

    // The page stands alone: no script, no other host.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("60 of 60 buyers finished"), "{html}");
    for reference in ["<script", "src=", "href=", "<link", "url(", "@import"] {
        assert!(!html.contains(reference), "{reference} in the report: {html}");
    }
    // And it renders in a browser, from the file alone.
    let browser = support::browser::Browser::start(support::browser::Options::default()).await;
    browser.open(&format!("file://{}", out_dir.join("report.html").display())).await;
    assert_eq!(browser.text("h1").await.as_deref(), Some("Rehearsal through anteroom"));
    let charts = browser.eval("return document.querySelectorAll('svg polyline, svg rect').length;").await;
    assert!(charts.as_u64().unwrap() >= 12, "the buyers' and the gateway's charts: {charts}");
    assert_eq!(browser.text("h2").await.as_deref(), Some("What the gateway said"));
    browser.screenshot("rehearsal-report").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_sends_the_same_crowd_straight_at_the_shop() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let shop = origin.url();
    let (out, out_dir) = rehearse_scripted(
        dir.path(),
        SCRIPT,
        &["--direct", &shop, "--crowd", "40", "--arrival", "at-once", "--arrival-s", "0"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&out_dir);
    assert_eq!(report["direct"], true);
    assert_eq!(report["summary"]["done"], 40);
    assert_eq!(report["summary"]["waited"], 0, "no line straight at the shop");
    assert_eq!(report["summary"]["shop_requests"].as_u64().unwrap(), origin.count() as u64);
    assert!(origin.seen().iter().all(|seen| !seen.uri.to_string().starts_with("/_anteroom")));
}

#[test]
fn a_bad_script_an_unreachable_target_and_a_remote_one_stop_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[step]]\npath = \"tickets\"\n").unwrap();
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.display().to_string();
    let bad_arg = bad.display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = format!("http://127.0.0.1:{port}/");
    let cases: [(Vec<&str>, i32, &str); 6] = [
        (vec!["http://127.0.0.1:9/", "--script", &bad_arg], 2, "step[0].path"),
        (vec!["http://127.0.0.1:9/", "--script", "/no/such/script.toml"], 2, "cannot read /no/such/script.toml"),
        (vec![&closed], 1, "cannot reach"),
        (vec!["http://192.0.2.1:80/"], 2, "--allow-remote"),
        (vec!["http://127.0.0.1:9/", "--crowd", "0"], 2, "--crowd"),
        (vec!["https://127.0.0.1:9/"], 2, "plain HTTP"),
    ];
    for (args, code, says) in cases {
        let mut all = args.clone();
        all.extend(["--out", &out_arg]);
        let out = rehearse(&all);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!out_dir.join("report.json").exists(), "{args:?}: no report for a rehearsal that did not run");
    }
}

const SHOP_SCRIPT: &str = "[[step]]\npath = \"/shop/1\"\nthink = \"200ms\"\n[[step]]\npath = \"/shop/checkout\"\n";

/// The p90 the searches hold the fragile shop to.
const TARGET: Duration = Duration::from_millis(250);

async fn fragile_shop() -> FragileShop {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    FragileShop::serve(listener, Shape::SEED).unwrap()
}

/// The script shipped for rehearsals against the fragile shop.
fn shipped_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rehearsal/buyer.toml")
}

/// The arguments every search shares; `script`: the buyer's script file.
fn search_args(dir: &Path, script: &Path, crowd: usize, over_s: u32) -> Vec<String> {
    ["--find-capacity", "--crowd", &crowd.to_string(), "--arrival-s", &over_s.to_string(), "--duration", "90s"]
        .iter()
        .map(|a| a.to_string())
        .chain(["--script".to_owned(), script.display().to_string()])
        .chain(["--out".to_owned(), dir.join("report").display().to_string()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_capacity_straight_at_a_fragile_shop_finds_where_its_p90_crossed_the_target() {
    let _alone = ONE_SEARCH_AT_A_TIME.lock().await;
    let shop = fragile_shop().await;
    let dir = tempfile::tempdir().unwrap();
    // Up to 80 buyers a second at the end (two requests each): well past what the shop
    // takes at the target.
    let mut args = vec!["--direct".to_owned(), shop.url(), "--target".to_owned(), "250ms".to_owned()];
    let script = dir.path().join("buyer.toml");
    std::fs::write(&script, SHOP_SCRIPT).unwrap();
    args.extend(search_args(dir.path(), &script, 1_200, 30));
    let out = rehearse_async(&args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&dir.path().join("report"));
    let capacity = &report["capacity"];
    assert_eq!(report["arrival"], "ramp", "--find-capacity ramps the crowd");
    assert_eq!(capacity["target_ms"], 250.0);
    let held = &capacity["held"];
    let crossed = &capacity["crossed"];
    assert!(crossed.is_object(), "the shop was pushed past its target: {capacity}");
    // What the shop itself can do at the target: the search lands near it, not above.
    let can = Shape::SEED.throughput_at(TARGET, 1.0);
    let found = held["shop_requests_per_s"].as_f64().unwrap();
    assert!(found <= can * 1.25 && found >= can * 0.3, "found {found} req/s, the shop takes {can:.0}: {capacity}");
    assert!(held["shop_p90_ms"].as_f64().unwrap() <= 250.0, "{capacity}");
    assert!(crossed["from_s"].as_u64() >= held["from_s"].as_u64(), "{capacity}");
    let settings = capacity["settings"].as_str().unwrap();
    for key in ["max_requests_per_second = ", "max_in_flight = ", "admit_per_minute = ", "max_active_users = "] {
        assert!(settings.contains(key), "{key} in {settings}");
    }
    // The settings parse as TOML, and the printed copy is the report's.
    let parsed: toml::Value = toml::from_str(settings).unwrap_or_else(|e| panic!("{e}: {settings}"));
    assert!(parsed["origin"]["max_in_flight"].as_integer().unwrap() >= 1);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(settings.trim()) && said.contains("crossed the target"), "{said}");
    assert!(std::fs::read_to_string(dir.path().join("report/report.html"))
        .unwrap()
        .contains("Capacity (target p90 250 ms)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_capacity_through_an_adaptive_room_reads_the_target_from_the_gateway() {
    let _alone = ONE_SEARCH_AT_A_TIME.lock().await;
    let shop = fragile_shop().await;
    let config = Gateway::config(&shop.url())
        .origin(|origin| origin.response_timeout = HumanDuration(Duration::from_secs(5)))
        .admin(|admin| admin.token = Some(Secret::new(TOKEN)))
        .room("sale", &["/shop"], |room| {
            room.admission = AdmissionMode::Adaptive;
            room.admit_per_minute = 12_000;
            room.target_origin_latency = Some(HumanDuration(TARGET));
            room.max_active_users = 100_000;
        });
    let gw = Gateway::built(config).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![gw.url("/"), "--admin".to_owned(), format!("http://{}", gw.admin)];
    args.extend(["--admin-token".to_owned(), TOKEN.to_owned()]);
    args.extend(search_args(dir.path(), &shipped_script(), 1_200, 30));
    let out = rehearse_async(&args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&dir.path().join("report"));
    let capacity = &report["capacity"];
    assert_eq!(capacity["target_ms"], 250.0, "the room's target_origin_latency: {capacity}");
    assert_eq!(report["gateway"]["admission"], "adaptive");
    // The gateway held the shop: nobody failed, and what the shop took under the target
    // is no more than it can.
    assert_eq!(report["summary"]["failed"], 0, "{}", report["outcomes"]);
    let can = Shape::SEED.throughput_at(TARGET, 1.0);
    let found = capacity["held"]["shop_requests_per_s"].as_f64().unwrap();
    assert!(found <= can * 1.25 && found >= can * 0.3, "found {found} req/s, the shop takes {can:.0}: {capacity}");
    let rates: Vec<f64> = report["gateway"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["admit_per_minute"].as_f64())
        .collect();
    assert!(rates.iter().any(|r| *r != rates[0]), "the controller steered the rate: {rates:?}");
}

#[test]
fn capacity_and_admin_mistakes_stop_before_the_crowd_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.display().to_string();
    // Something that accepts connections, so only the plan can be at fault.
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/", listening.local_addr().unwrap());
    let cases: [(Vec<&str>, &str); 5] = [
        (vec![&target, "--find-capacity"], "--find-capacity needs the p90"),
        (vec![&target, "--find-capacity", "--target", "250ms", "--arrival", "spread"], "leave --arrival out"),
        (vec![&target, "--find-capacity", "--target", "0s"], "--target: more than 0"),
        (vec![&target, "--admin", "https://127.0.0.1:9"], "--admin: "),
        (vec![&target, "--target", "soon"], "--target"),
    ];
    for (args, says) in cases {
        let mut all = args.clone();
        all.extend(["--out", &out_arg]);
        let out = rehearse(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!out_dir.join("report.json").exists(), "{args:?}: no report");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_token_stops_the_rehearsal_before_it_starts() {
    let origin = Origin::start().await;
    let gw = Gateway::with_admin_token(&origin.url(), TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let admin = format!("http://{}", gw.admin);
    let out_dir = dir.path().join("out");
    let (url, out_arg) = (gw.url("/"), out_dir.display().to_string());
    let out = rehearse_async(&[url.as_str(), "--admin", &admin, "--admin-token", "wrong", "--out", &out_arg]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the admin token was refused"), "{}", stderr(&out));
    assert!(!out_dir.join("report.json").exists());
    assert_eq!(origin.count(), 0, "not one buyer was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_gateway_held_back_are_not_counted_as_the_shops() {
    let origin = Origin::start().await;
    // One request at the shop at a time, 300 ms each; the rest wait at most 100 ms.
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_in_flight = 1;
        o.max_wait = Duration::from_millis(100).into();
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = gw.url("/");
    let (out, out_dir) = rehearse_scripted(
        dir.path(),
        "[[step]]\npath = \"/slow/300\"\n",
        &[&url, "--crowd", "6", "--arrival", "at-once", "--arrival-s", "0", "--duration", "60s"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&out_dir);
    let summary = &report["summary"];
    assert!(summary["held_back"].as_u64().unwrap() > 0, "six at once through one slot: {summary}");
    // What the report says reached the shop is exactly what did.
    assert_eq!(summary["shop_requests"].as_u64().unwrap(), origin.count() as u64, "{summary}");
    assert!(report["errors"].as_object().unwrap().keys().all(|k| k != "status 503"), "{}", report["errors"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("The gateway held back"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_solve_the_rooms_challenge_before_they_get_a_place() {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.challenge = ChallengeMode::ProofOfWork;
        room.challenge_difficulty = Difficulty::Bits(8);
        room.admit_per_minute = 600;
        room.max_active_users = 5;
    });
    let gw = Gateway::built(config).await;
    let dir = tempfile::tempdir().unwrap();
    let url = gw.url("/");
    let (out, out_dir) =
        rehearse_scripted(dir.path(), SCRIPT, &[&url, "--crowd", "20", "--arrival-s", "1", "--duration", "60s"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report = report(&out_dir);
    assert_eq!(report["summary"]["done"], 20, "{}", report["outcomes"]);
    assert_eq!(report["summary"]["shop_requests"].as_u64().unwrap(), origin.count() as u64);
    // Every place was bought with a solved challenge, none with a failed one.
    let metrics = gw.metrics().await;
    let solved = metric(&metrics, "anteroom_challenges_total{room=\"sale\",result=\"solved\"}");
    assert!(solved >= 20, "{solved} challenges solved for 20 buyers");
    assert_eq!(metric(&metrics, "anteroom_challenges_total{room=\"sale\",result=\"failed\"}"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_abandon_buyers_give_up_while_they_wait() {
    let origin = Origin::start().await;
    // One buyer a minute: everyone else waits for the whole rehearsal.
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.admit_per_minute = 1;
        room.max_active_users = 1;
    });
    let gw = Gateway::built(config).await;
    let dir = tempfile::tempdir().unwrap();
    let url = gw.url("/");
    // Each gives up after 10 s to 2 min: within 25 s about one in eight of 100 does.
    let (out, out_dir) = rehearse_scripted(
        dir.path(),
        SCRIPT,
        &[&url, "--crowd", "100", "--arrival-s", "1", "--duration", "25s", "--abandon", "1"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = &report(&out_dir)["summary"];
    let count = |key: &str| summary[key].as_u64().unwrap();
    assert!(count("gave_up") > 0, "{summary}");
    assert_eq!(count("failed"), 0, "{summary}");
    assert_eq!(count("gave_up") + count("unfinished") + count("done"), 100, "{summary}");
    assert!(count("placed") >= 98, "all but the first took a place: {summary}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{} gave up", count("gave_up"))));
}
