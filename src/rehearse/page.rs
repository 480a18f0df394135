//! `report.html`: the report as one page — the summary in words and a table, then charts
//! as inline SVG. Nothing is fetched from anywhere; nothing needs JavaScript.

use super::capacity::Capacity;
use super::report::{duration_words, group, Report, Second};
use super::watch::{GatewayView, Sample};
use std::fmt::Write;

/// The report as one HTML file: the summary in words and a table, then charts as inline
/// SVG. Nothing is fetched from anywhere; nothing needs JavaScript.
pub(crate) fn html(report: &Report) -> String {
    let mut out = String::new();
    let title = if report.direct { "Rehearsal, straight at the shop" } else { "Rehearsal through anteroom" };
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p class=\"meta\">{} buyers, arriving {} over {} s, against {} — {} s, started {}</p><ul class=\"said\">",
        report.crowd,
        esc(&report.arrival),
        report.arrival_s,
        esc(&report.target),
        report.ran_s,
        esc(&report.started_at)
    );
    for sentence in &report.summary.sentences {
        let _ = write!(out, "<li>{}</li>", esc(sentence));
    }
    out.push_str("</ul><table><tbody>");
    let s = &report.summary;
    let ms = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"));
    let secs = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), duration_words);
    let rows: Vec<(&str, String)> = vec![
        ("buyers", group(s.buyers as u64)),
        ("finished their visit", group(s.done)),
        ("failed", group(s.failed)),
        ("gave up", group(s.gave_up)),
        ("turned away", group(s.turned_away)),
        ("still going at the end", group(s.unfinished)),
        ("requests to the shop", group(s.shop_requests)),
        ("failed requests to the shop", group(s.shop_errors)),
        ("held back by the gateway, sent again", group(s.held_back)),
        (
            "shop latency p50 / p90 / p99",
            format!("{} / {} / {}", ms(s.shop_p50_ms), ms(s.shop_p90_ms), ms(s.shop_p99_ms)),
        ),
        (
            "time in line p50 / p90 / longest",
            format!("{} / {} / {}", secs(report.wait_s.p50), secs(report.wait_s.p90), secs(report.wait_s.max)),
        ),
        (
            "certain FIFO inversions",
            format!("{} of {} judged", group(report.fifo.certain_inversions), group(report.fifo.checked)),
        ),
        ("polls of the line", group(s.polls)),
        (
            "load generator",
            format!(
                "{} late at p99{}",
                ms(report.generator.late_p99_ms),
                if report.generator.saturated { " — saturated" } else { "" }
            ),
        ),
    ];
    for (name, value) in rows {
        let _ = write!(out, "<tr><th>{name}</th><td>{}</td></tr>", esc(&value));
    }
    out.push_str("</tbody></table>");
    let t: Vec<f64> = report.timeline.iter().map(|s| s.t as f64).collect();
    let series = |f: &dyn Fn(&Second) -> Option<f64>| report.timeline.iter().map(f).collect::<Vec<_>>();
    let charts: Vec<(&str, Vec<Line<'_>>)> = vec![
        ("Buyers in line", vec![("in line", series(&|s| Some(s.in_line as f64)))]),
        ("Admissions per second", vec![("admitted", series(&|s| Some(s.admitted as f64)))]),
        (
            "Requests to the shop per second",
            vec![
                ("answered", series(&|s| Some((s.shop_requests - s.shop_errors) as f64))),
                ("failed", series(&|s| Some(s.shop_errors as f64))),
            ],
        ),
        (
            "Shop latency (ms)",
            vec![
                ("p50", series(&|s| s.shop_p50_ms)),
                ("p90", series(&|s| s.shop_p90_ms)),
                ("p99", series(&|s| s.shop_p99_ms)),
            ],
        ),
    ];
    for (caption, lines) in charts {
        out.push_str(&chart(caption, &t, &lines));
    }
    if let Some(gateway) = &report.gateway {
        out.push_str(&gateway_charts(gateway));
    }
    if let Some(capacity) = &report.capacity {
        out.push_str(&capacity_section(capacity));
    }
    out.push_str(&bars("Time in line (buyers per bucket, seconds)", &report.wait_s.histogram));
    if !report.errors.is_empty() {
        out.push_str("<h2>Failed requests to the shop</h2><table><tbody>");
        for (kind, count) in &report.errors {
            let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(kind), group(*count));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h2>How visits ended</h2><table><tbody>");
    for (outcome, count) in &report.outcomes {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(outcome), group(*count));
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}

/// The gateway's own readings, every 2 s: the rate in force against the configured one,
/// the whole line, and the shop as the gateway timed it.
fn gateway_charts(gateway: &GatewayView) -> String {
    let t: Vec<f64> = gateway.samples.iter().map(|s| s.t).collect();
    let series = |f: &dyn Fn(&Sample) -> Option<f64>| gateway.samples.iter().map(f).collect::<Vec<_>>();
    let mut out = format!(
        "<h2>What the gateway said</h2><p class=\"meta\">room {}, admission {}, read from {} every 2 s{}</p>",
        esc(&gateway.room),
        esc(&gateway.admission),
        esc(&gateway.admin),
        if gateway.missed > 0 { format!(" ({} readings missed)", gateway.missed) } else { String::new() }
    );
    out.push_str(&chart(
        "Admissions per minute, the gateway's",
        &t,
        &[("in force", series(&|s| s.admit_per_minute)), ("configured", series(&|s| s.configured_admit_per_minute))],
    ));
    out.push_str(&chart(
        "The whole line and the sessions inside",
        &t,
        &[("in line", series(&|s| s.queue_length)), ("inside", series(&|s| s.active_sessions))],
    ));
    let target = gateway.target_origin_latency_ms;
    out.push_str(&chart(
        "Shop latency p90 as the gateway timed it (ms)",
        &t,
        &[("p90", series(&|s| s.shop_p90_ms)), ("target", series(&|_| target))],
    ));
    out
}

fn capacity_section(capacity: &Capacity) -> String {
    let mut out = format!("<h2>Capacity (target p90 {:.0} ms)</h2><ul class=\"said\">", capacity.target_ms);
    for sentence in &capacity.sentences {
        let _ = write!(out, "<li>{}</li>", esc(sentence));
    }
    out.push_str("</ul>");
    if let Some(settings) = &capacity.settings {
        let _ = write!(out, "<pre>{}</pre>", esc(settings));
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.4rem}h2{font-size:1.05rem;margin-top:1.5rem}.meta{color:#57606a}.said li{margin:.3rem 0}\
table{border-collapse:collapse;margin:1rem 0}th{text-align:left;font-weight:400;color:#57606a;padding:.2rem 1rem .2rem 0}\
td{font-variant-numeric:tabular-nums;padding:.2rem 0}figure{margin:1rem 0}figcaption{color:#57606a;font-size:.9rem}\
svg{width:100%;height:auto;background:#f6f7f9;border-radius:6px}.l0{stroke:#0b57d0}.l1{stroke:#b3261e}.l2{stroke:#8a6d00}\
polyline{fill:none;stroke-width:1.5}text{font-size:10px;fill:#57606a}rect{fill:#0b57d0}pre{background:#f6f7f9;padding:.6rem;border-radius:6px;overflow:auto}";

/// One line of a chart: its name and a value per second.
type Line<'a> = (&'a str, Vec<Option<f64>>);

const W: f64 = 600.0;
const H: f64 = 160.0;

fn chart(caption: &str, t: &[f64], lines: &[Line<'_>]) -> String {
    let t_max = t.last().copied().unwrap_or(1.0).max(1.0);
    let max = lines.iter().flat_map(|(_, v)| v.iter().flatten()).fold(0.0f64, |a, b| a.max(*b)).max(1.0);
    let mut svg = format!(
        "<figure><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{caption}\">\
         <text x=\"4\" y=\"12\">{}</text><text x=\"4\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\">{} s</text>",
        max.round(),
        H - 4.0,
        W - 40.0,
        H - 4.0,
        t_max
    );
    for (i, (_, values)) in lines.iter().enumerate() {
        let points: Vec<String> = t
            .iter()
            .zip(values)
            .filter_map(|(t, v)| {
                v.map(|v| format!("{:.1},{:.1}", 30.0 + t / t_max * (W - 40.0), H - 14.0 - v / max * (H - 30.0)))
            })
            .collect();
        let _ = write!(svg, "<polyline class=\"l{i}\" points=\"{}\"/>", points.join(" "));
    }
    let legend: Vec<&str> = lines.iter().map(|(name, _)| *name).collect();
    let _ = write!(svg, "</svg><figcaption>{caption}: {}</figcaption></figure>", legend.join(", "));
    svg
}

fn bars(caption: &str, buckets: &[(f64, u64)]) -> String {
    let max = buckets.iter().map(|(_, c)| *c).max().unwrap_or(1).max(1) as f64;
    let width = W / buckets.len().max(1) as f64;
    let mut svg = format!("<figure><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{caption}\">");
    for (i, (upper, count)) in buckets.iter().enumerate() {
        let height = *count as f64 / max * (H - 34.0);
        let x = i as f64 * width;
        let label = if upper.is_finite() { format!("≤{upper}") } else { "more".to_owned() };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\"/><text x=\"{:.1}\" y=\"{}\">{label}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\">{count}</text>",
            x + 4.0,
            H - 18.0 - height,
            width - 8.0,
            x + 4.0,
            H - 4.0,
            x + 4.0,
            H - 22.0 - height
        );
    }
    let _ = write!(svg, "</svg><figcaption>{caption}</figcaption></figure>");
    svg
}
