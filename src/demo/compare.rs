//! `anteroom demo --crowd N`: the crowd, and the same crowd without anteroom. The buyers
//! are `anteroom rehearse`'s, played twice at once: through the demo's gateway (they make
//! the line a person opening the demo joins), and straight at a twin of the demo's shop
//! (so the demo's own shop is not touched). Each run ends in a line on the terminal and a
//! report; the two lines side by side are the before and after.

use crate::rehearse::report::{duration_words, group};
use crate::rehearse::{self, Arrival, Plan, Report, Script};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The crowd arrives evenly over this long: the line forms within the first seconds.
const ARRIVAL: Duration = Duration::from_secs(20);
/// No demo crowd plays longer.
const LONGEST: Duration = Duration::from_secs(15 * 60);

/// Plays the crowd through `gateway` and straight at `twin`, sending a line to `news`
/// as each ends, then both side by side.
pub(super) async fn before_and_after(
    gateway: SocketAddr,
    twin: SocketAddr,
    crowd: usize,
    news: UnboundedSender<String>,
) {
    let folder = std::env::temp_dir().join("anteroom-demo");
    let plan = |target: SocketAddr, direct: bool, name: &str| Plan {
        target: format!("http://{target}/"),
        direct,
        crowd,
        arrival: Arrival::Spread,
        arrival_s: ARRIVAL,
        duration: LONGEST,
        connections: 256,
        script: Script::sample(),
        abandon: 0.0,
        allow_remote: false,
        out: folder.join(name),
        admin: None,
        admin_token: None,
        find_capacity: false,
        latency_target: None,
    };
    let (after, before) = (plan(gateway, false, "through-anteroom"), plan(twin, true, "straight-at-the-shop"));
    let play = |plan: Plan, news: UnboundedSender<String>| async move {
        let result = rehearse::run(&plan, |_| {}).await;
        let said = match &result {
            Ok(report) => line(&plan, report),
            Err(e) => format!("{}: {e}", who(&plan)),
        };
        let _ = news.send(said);
        result.ok()
    };
    let (after_report, before_report) = tokio::join!(play(after, news.clone()), play(before, news.clone()));
    if let (Some(after_report), Some(before_report)) = (after_report, before_report) {
        let _ = news.send(verdict(&before_report, &after_report, &folder));
    }
}

fn who(plan: &Plan) -> &'static str {
    if plan.direct {
        "straight at the shop"
    } else {
        "through anteroom"
    }
}

/// "through anteroom: 30 of 30 buyers finished, 0 failed; the shop's p99 212 ms; the longest wait 1 min 4 s"
fn line(plan: &Plan, report: &Report) -> String {
    let s = &report.summary;
    let p99 = match s.shop_p99_ms {
        None => "–".to_owned(),
        Some(ms) if ms >= 1000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
    };
    let wait = report.wait_s.max.map_or_else(String::new, |w| format!("; the longest wait {}", duration_words(w)));
    format!(
        "{:<21} {} of {} buyers finished, {} failed; the shop's p99 {p99}{wait}",
        format!("{}:", who(plan)),
        group(s.done),
        group(s.buyers as u64),
        group(s.failed)
    )
}

fn verdict(before: &Report, after: &Report, folder: &std::path::Path) -> String {
    let reports: PathBuf = folder.join("{through-anteroom,straight-at-the-shop}/report.html");
    format!(
        "the same crowd: {} failed straight at the shop, {} through anteroom — reports: {}",
        group(before.summary.failed),
        group(after.summary.failed),
        reports.display()
    )
}
