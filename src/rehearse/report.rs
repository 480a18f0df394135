//! The rehearsal's report: the crowd's records summed up per second and in plain words,
//! written as `report.json` and a self-contained `report.html` (inline SVG, no script, no
//! other host).

use super::buyer::{Outcome, Record};
use super::capacity::Capacity;
use super::watch::GatewayView;
use serde::Serialize;
use std::collections::BTreeMap;

/// A generator that started buyers later than this (99th percentile) could not keep up:
/// the report says the crowd, not the gateway, was the limit.
const SATURATED_LATE_MS: f64 = 1_000.0;

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    /// The crowd went straight at the shop (no gateway).
    pub direct: bool,
    pub crowd: usize,
    pub arrival: String,
    pub arrival_s: f64,
    pub started_at: String,
    pub ran_s: f64,
    pub summary: Summary,
    /// One entry per second of the rehearsal.
    pub timeline: Vec<Second>,
    /// Time in line of the buyers who waited, in seconds.
    pub wait_s: Spread,
    /// Failed requests to the shop, by kind (`status 503`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// How buyers' visits ended.
    pub outcomes: BTreeMap<String, u64>,
    pub fifo: Fifo,
    pub generator: Generator,
    /// What the gateway's admin listener said meanwhile (`--admin`).
    pub gateway: Option<GatewayView>,
    /// `--find-capacity`.
    pub capacity: Option<Capacity>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub buyers: usize,
    pub done: u64,
    pub gave_up: u64,
    pub turned_away: u64,
    pub failed: u64,
    pub unfinished: u64,
    /// Buyers who took a place in line (whether or not their turn came).
    pub placed: u64,
    /// Buyers whose turn came after they had taken a place.
    pub waited: u64,
    pub shop_requests: u64,
    pub shop_errors: u64,
    /// Requests the gateway shed before the shop (`503` with `Retry-After`), each sent
    /// again by the buyer: not among `shop_requests`.
    pub held_back: u64,
    pub shop_p50_ms: Option<f64>,
    pub shop_p90_ms: Option<f64>,
    pub shop_p99_ms: Option<f64>,
    pub polls: u64,
    /// The report's findings in plain words.
    pub sentences: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Second {
    pub t: u64,
    /// This crowd's buyers holding a place in line.
    pub in_line: u64,
    /// Buyers whose turn came in this second.
    pub admitted: u64,
    pub shop_requests: u64,
    pub shop_errors: u64,
    pub shop_p50_ms: Option<f64>,
    pub shop_p90_ms: Option<f64>,
    pub shop_p99_ms: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// Buyers per bucket: `[upper bound in seconds, count]`.
    pub histogram: Vec<(f64, u64)>,
}

#[derive(Debug, Default, Serialize)]
pub struct Fifo {
    /// Buyers whose order could be judged (a place, and their turn or a last wait seen).
    pub checked: u64,
    /// Buyers certainly passed by someone who joined after them: the later buyer's turn
    /// was seen before the earlier one last heard "still waiting".
    pub certain_inversions: u64,
}

#[derive(Debug, Serialize)]
pub struct Generator {
    /// How late buyers started against their due time (ms).
    pub late_p50_ms: Option<f64>,
    pub late_p99_ms: Option<f64>,
    /// The crowd could not be generated on time: the limit was the generator.
    pub saturated: bool,
    pub cores: usize,
    pub buyers_per_core: f64,
    pub requests_per_core_per_s: f64,
}

/// The settings the report names.
#[derive(Debug)]
pub(crate) struct Setting<'a> {
    pub target: &'a str,
    pub direct: bool,
    pub arrival: &'a str,
    pub arrival_s: f64,
    pub started_at: String,
    pub ran_s: f64,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some((sorted[rank - 1] * 10.0).round() / 10.0)
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

impl Report {
    pub(crate) fn of(records: &[Record], setting: &Setting<'_>) -> Self {
        let seconds = (setting.ran_s.ceil() as usize).max(1);
        let mut timeline: Vec<Second> = (0..seconds).map(|t| Second { t: t as u64, ..Second::default() }).collect();
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); seconds];
        let mut errors = BTreeMap::new();
        let mut outcomes = BTreeMap::new();
        let mut all_latencies = Vec::new();
        let mut waits = Vec::new();
        let (mut shop_requests, mut shop_errors, mut polls, mut held_back) = (0, 0, 0, 0);
        for record in records {
            polls += record.polls;
            held_back += record.held_back;
            *outcomes.entry(outcome_label(&record.outcome)).or_insert(0u64) += 1;
            for sent in &record.shop {
                shop_requests += 1;
                let second = ((sent.at_ms / 1000) as usize).min(seconds - 1);
                timeline[second].shop_requests += 1;
                if sent.status == 0 || sent.status >= 500 {
                    shop_errors += 1;
                    timeline[second].shop_errors += 1;
                    let kind = sent.failure.map_or_else(|| format!("status {}", sent.status), |f| f.label().to_owned());
                    *errors.entry(kind).or_insert(0u64) += 1;
                } else {
                    latencies[second].push(sent.latency_ms);
                    all_latencies.push(sent.latency_ms);
                }
            }
            if let Some(admitted) = record.admitted_ms {
                timeline[((admitted / 1000) as usize).min(seconds - 1)].admitted += 1;
            }
            if let Some(placed) = record.placed_ms {
                let until = record.admitted_ms.unwrap_or(u64::MAX);
                let left = match record.outcome {
                    Outcome::GaveUp | Outcome::Unfinished | Outcome::Turned(_) | Outcome::Failed(_)
                        if record.admitted_ms.is_none() =>
                    {
                        record.last_waiting_ms.unwrap_or(placed)
                    }
                    _ => until,
                };
                for second in &mut timeline[((placed / 1000) as usize).min(seconds - 1)..] {
                    if second.t * 1000 >= left {
                        break;
                    }
                    second.in_line += 1;
                }
                if let Some(admitted) = record.admitted_ms {
                    waits.push(admitted.saturating_sub(record.first_sent_ms) as f64 / 1000.0);
                }
            }
        }
        for (second, values) in timeline.iter_mut().zip(latencies) {
            let values = sorted(values);
            second.shop_p50_ms = quantile(&values, 0.5);
            second.shop_p90_ms = quantile(&values, 0.9);
            second.shop_p99_ms = quantile(&values, 0.99);
        }
        let all_latencies = sorted(all_latencies);
        let count = |label: &str| outcomes.get(label).copied().unwrap_or(0);
        let wait_s = spread(sorted(waits));
        let late = sorted(records.iter().map(|r| r.late_ms as f64).collect());
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let requests = (shop_requests + polls) as f64;
        let generator = Generator {
            late_p50_ms: quantile(&late, 0.5),
            late_p99_ms: quantile(&late, 0.99),
            saturated: quantile(&late, 0.99).is_some_and(|late| late > SATURATED_LATE_MS),
            cores,
            buyers_per_core: records.len() as f64 / cores as f64,
            requests_per_core_per_s: (requests / setting.ran_s.max(0.001) / cores as f64).round(),
        };
        let mut summary = Summary {
            buyers: records.len(),
            done: count("done"),
            gave_up: count("gave up"),
            turned_away: outcomes.iter().filter(|(k, _)| k.starts_with("turned away")).map(|(_, v)| v).sum(),
            failed: outcomes.iter().filter(|(k, _)| k.starts_with("failed")).map(|(_, v)| v).sum(),
            unfinished: count("unfinished"),
            placed: records.iter().filter(|r| r.placed_ms.is_some()).count() as u64,
            waited: wait_s.count as u64,
            shop_requests,
            shop_errors,
            held_back,
            shop_p50_ms: quantile(&all_latencies, 0.5),
            shop_p90_ms: quantile(&all_latencies, 0.9),
            shop_p99_ms: quantile(&all_latencies, 0.99),
            polls,
            sentences: Vec::new(),
        };
        let fifo = fifo(records);
        summary.sentences = sentences(&summary, &wait_s, &fifo, &generator);
        Self {
            target: setting.target.to_owned(),
            direct: setting.direct,
            crowd: records.len(),
            arrival: setting.arrival.to_owned(),
            arrival_s: setting.arrival_s,
            started_at: setting.started_at.clone(),
            ran_s: (setting.ran_s * 10.0).round() / 10.0,
            summary,
            timeline,
            wait_s,
            errors,
            outcomes,
            fifo,
            generator,
            gateway: None,
            capacity: None,
        }
    }

    /// Adds what the gateway said and what the capacity search found.
    pub(crate) fn with(mut self, gateway: Option<GatewayView>, capacity: Option<Capacity>) -> Self {
        if let Some(forwarded) = gateway.as_ref().and_then(|g| g.shop_requests) {
            let counted = self.summary.shop_requests;
            let apart = forwarded.abs_diff(counted) as f64 / forwarded.max(1) as f64 * 100.0;
            self.summary.sentences.push(format!(
                "The gateway forwarded {} requests to the shop; the buyers counted {} ({apart:.1} % apart{}).",
                group(forwarded),
                group(counted),
                if forwarded > counted {
                    ": others were shopping too, or requests were cut off at the end"
                } else {
                    ""
                }
            ));
        }
        if let Some(capacity) = &capacity {
            self.summary.sentences.extend(capacity.sentences.iter().cloned());
        }
        self.gateway = gateway;
        self.capacity = capacity;
        self
    }
}

fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done => "done".to_owned(),
        Outcome::GaveUp => "gave up".to_owned(),
        Outcome::Turned(state) => format!("turned away: {state}"),
        Outcome::Failed(why) => format!("failed: {why}"),
        Outcome::Unfinished => "unfinished".to_owned(),
    }
}

fn spread(values: Vec<f64>) -> Spread {
    const BOUNDS: [f64; 10] = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, f64::INFINITY];
    let mut histogram: Vec<(f64, u64)> = BOUNDS.iter().map(|b| (*b, 0)).collect();
    for v in &values {
        if let Some(bucket) = histogram.iter_mut().find(|(upper, _)| v <= upper) {
            bucket.1 += 1;
        }
    }
    histogram.retain(|(upper, count)| upper.is_finite() || *count > 0);
    Spread {
        count: values.len(),
        p50: quantile(&values, 0.5),
        p90: quantile(&values, 0.9),
        p99: quantile(&values, 0.99),
        max: values.last().copied(),
        histogram,
    }
}

/// Certain inversions: A got a place before B even asked (`A.placed < B.first_sent`), yet
/// B's turn was seen before A's last "still waiting" was sent. Buyers sorted by when they
/// first asked; the earliest turn of everyone who asked after a moment is a suffix
/// minimum, so each A is judged in `O(log n)`.
fn fifo(records: &[Record]) -> Fifo {
    let mut by_first: Vec<(u64, u64)> =
        records.iter().map(|r| (r.first_sent_ms, r.admitted_ms.unwrap_or(u64::MAX))).collect();
    by_first.sort_unstable();
    let mut earliest_turn_after = vec![u64::MAX; by_first.len() + 1];
    for i in (0..by_first.len()).rev() {
        earliest_turn_after[i] = earliest_turn_after[i + 1].min(by_first[i].1);
    }
    let mut fifo = Fifo::default();
    for record in records {
        let (Some(placed), Some(last_waiting)) = (record.placed_ms, record.last_waiting_ms) else { continue };
        fifo.checked += 1;
        let later = by_first.partition_point(|(first, _)| *first <= placed);
        if earliest_turn_after[later] < last_waiting {
            fifo.certain_inversions += 1;
        }
    }
    fifo
}

pub(crate) fn duration_words(secs: f64) -> String {
    let secs = secs.round() as u64;
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

fn sentences(summary: &Summary, wait: &Spread, fifo: &Fifo, generator: &Generator) -> Vec<String> {
    let mut said = Vec::new();
    if let (Some(p90), Some(p99)) = (summary.shop_p90_ms, summary.shop_p99_ms) {
        said.push(format!("The shop answered 90 % of requests within {p90:.0} ms and 99 % within {p99:.0} ms."));
    }
    said.push(format!(
        "{} of {} buyers finished their visit; {} failed, {} gave up, {} were turned away, {} were still going at the end.",
        group(summary.done),
        group(summary.buyers as u64),
        group(summary.failed),
        group(summary.gave_up),
        group(summary.turned_away),
        group(summary.unfinished)
    ));
    said.push(format!(
        "{} requests reached the shop; {} of them failed.",
        group(summary.shop_requests),
        group(summary.shop_errors)
    ));
    if summary.held_back > 0 {
        said.push(format!(
            "The gateway held back {} requests (no slot at the shop in time: 503 with Retry-After), and the buyers \
             sent them again.",
            group(summary.held_back)
        ));
    }
    if let (Some(p50), Some(max)) = (wait.p50, wait.max) {
        said.push(format!(
            "{} buyers waited in line: half of them up to {}, the longest {}.",
            group(wait.count as u64),
            duration_words(p50),
            duration_words(max)
        ));
    } else if summary.placed > 0 {
        said.push(format!("{} buyers took a place in line; nobody's turn came.", group(summary.placed)));
    } else {
        said.push("Nobody waited in line.".to_owned());
    }
    if fifo.checked > 0 {
        said.push(format!(
            "First come, first served: {} certain inversions among {} buyers whose order could be judged.",
            group(fifo.certain_inversions),
            group(fifo.checked)
        ));
    }
    if generator.saturated {
        said.push(format!(
            "The load generator could not keep up (buyers started up to {:.0} ms late): the crowd, not the gateway, \
             was the limit of this rehearsal.",
            generator.late_p99_ms.unwrap_or_default()
        ));
    }
    said
}

/// 48211 → "48,211".
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearse::buyer::Sent;

    fn buyer(first: u64, placed: Option<u64>, last_waiting: Option<u64>, admitted: Option<u64>) -> Record {
        Record {
            late_ms: 0,
            first_sent_ms: first,
            placed_ms: placed,
            last_waiting_ms: last_waiting,
            admitted_ms: admitted,
            polls: 1,
            shop: vec![Sent { at_ms: admitted.unwrap_or(first), latency_ms: 20.0, status: 200, failure: None }],
            held_back: 0,
            outcome: Outcome::Done,
        }
    }

    #[test]
    fn only_a_certain_pass_counts_as_an_inversion() {
        // A placed at 100; B asked at 200 and was let in at 1000; A still waiting at 1500.
        let passed = [buyer(50, Some(100), Some(1_500), Some(2_000)), buyer(200, Some(250), Some(900), Some(1_000))];
        assert_eq!(fifo(&passed).certain_inversions, 1);
        // B asked before A's place was confirmed: their order is not certain.
        let unsure = [buyer(50, Some(300), Some(1_500), Some(2_000)), buyer(200, Some(250), Some(900), Some(1_000))];
        assert_eq!(fifo(&unsure).certain_inversions, 0);
        // A's last "waiting" was sent before B's turn was seen: in order.
        let fair = [buyer(50, Some(100), Some(900), Some(2_000)), buyer(200, Some(250), Some(1_500), Some(2_500))];
        assert_eq!(fifo(&fair).certain_inversions, 0);
    }

    /// A rehearsal of a crowd spread over one second that ran `ran_s` seconds.
    fn spread_over_a_second(ran_s: f64) -> Setting<'static> {
        Setting {
            target: "http://127.0.0.1:8080",
            direct: false,
            arrival: "spread",
            arrival_s: 1.0,
            started_at: "2026-12-04T21:00:00Z".to_owned(),
            ran_s,
        }
    }

    #[test]
    fn a_line_whose_turns_never_came_is_not_called_no_line() {
        let mut waiting = buyer(0, Some(10), Some(900), None);
        waiting.outcome = Outcome::Unfinished;
        let setting = spread_over_a_second(2.0);
        let report = Report::of(&[waiting], &setting);
        assert_eq!((report.summary.placed, report.summary.waited), (1, 0));
        assert!(report.summary.sentences.iter().any(|s| s == "1 buyers took a place in line; nobody's turn came."));
    }

    #[test]
    fn the_report_sums_the_crowd_and_says_it_in_words() {
        let records = [buyer(0, Some(10), Some(500), Some(1_200)), buyer(100, None, None, None)];
        let setting = spread_over_a_second(3.0);
        let report = Report::of(&records, &setting);
        assert_eq!((report.summary.buyers, report.summary.done, report.summary.shop_requests), (2, 2, 2));
        assert_eq!(report.timeline.len(), 3);
        assert_eq!(report.timeline[0].in_line, 1);
        assert_eq!(report.wait_s.count, 1);
        assert!(report.summary.sentences.iter().any(|s| s.contains("2 of 2 buyers finished")), "{:?}", report.summary);
        let page = crate::rehearse::page::html(&report);
        assert!(page.contains("<svg") && page.contains("2 of 2 buyers finished"));
        assert_eq!(group(48_211), "48,211");
    }
}
