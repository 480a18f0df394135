//! `anteroom rehearse` against a real gateway and a recording origin: the report's counts
//! match what the origin saw, the line was served in order, `--direct` goes straight at the
//! shop, and a bad script, an unreachable target or a remote one without `--allow-remote`
//! each stop with a clear error.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::origin::Origin;
use support::Gateway;

const BIN: &str = env!("CARGO_BIN_EXE_anteroom");

fn rehearse(args: &[&str]) -> Output {
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
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.admit_per_minute = 600;
        room.max_active_users = 10;
    });
    let gw = Gateway::built(config).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("buyer.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let out_dir = dir.path().join("report");
    let url = gw.url("/");
    let args = ["--crowd", "60", "--arrival", "spread", "--arrival-s", "2", "--duration", "60s"];
    let out = tokio::task::spawn_blocking({
        let (script, out_dir) = (script.display().to_string(), out_dir.display().to_string());
        move || {
            let mut all = vec![url.as_str()];
            all.extend(args);
            all.extend(["--script", &script, "--out", &out_dir]);
            rehearse(&all)
        }
    })
    .await
    .unwrap();
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
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("60 of 60 buyers finished their visit"), "{said}");

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
    assert!(charts.as_u64().unwrap() >= 6, "{charts}");
    browser.screenshot("rehearsal-report").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_sends_the_same_crowd_straight_at_the_shop() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("buyer.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let out_dir = dir.path().join("direct");
    let shop = origin.url();
    let out = tokio::task::spawn_blocking({
        let (script, out_dir) = (script.display().to_string(), out_dir.display().to_string());
        move || {
            rehearse(&[
                "--direct",
                &shop,
                "--crowd",
                "40",
                "--arrival",
                "at-once",
                "--arrival-s",
                "0",
                "--script",
                &script,
                "--out",
                &out_dir,
            ])
        }
    })
    .await
    .unwrap();
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
