//! `--find-capacity`: a ramping crowd pushes ever more buyers at the shop; the records say
//! at which admission rate, requests per second and requests in flight the shop still kept
//! its p90 under the target, and where it crossed it — and so what to put in the config.

use super::buyer::Record;
use super::report::group;
use serde::Serialize;
use std::fmt::Write;

/// Judged over sliding windows this long (one second apart): long enough that a burst of
/// admissions at one tick does not pass for a rate.
const WINDOW_S: usize = 10;
/// A window with fewer shop requests says nothing.
const MIN_REQUESTS: usize = 20;
/// What the settings keep in hand below what the shop took on the day of the rehearsal.
const HEADROOM: f64 = 0.9;

/// What the shop took in one window.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Level {
    /// The window's first second.
    pub from_s: u64,
    pub admit_per_minute: f64,
    pub shop_requests_per_s: f64,
    /// Requests in flight at the shop as the buyers saw them (the gateway's wait for a
    /// slot included): the mean, and the highest second.
    pub in_flight: f64,
    pub in_flight_peak: f64,
    /// Buyers inside at once (admitted, not yet done), at the most.
    pub inside_peak: u64,
    pub shop_p90_ms: Option<f64>,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub target_ms: f64,
    /// The busiest window in which the shop kept its p90 under the target without errors.
    pub held: Option<Level>,
    /// The first window in which it did not.
    pub crossed: Option<Level>,
    /// The settings to put in the config, as TOML.
    pub settings: Option<String>,
    pub sentences: Vec<String>,
}

/// Per second of the rehearsal.
#[derive(Clone, Default)]
struct Tally {
    admitted: u64,
    /// Latencies of the answered requests; failures are counted apart.
    latencies: Vec<f64>,
    errors: u64,
    /// Request-milliseconds in flight during the second.
    in_flight_ms: f64,
    inside: u64,
}

pub(crate) fn find(records: &[Record], ran_s: f64, target_ms: f64) -> Capacity {
    let seconds = (ran_s.ceil() as usize).max(1);
    let mut tally = vec![Tally::default(); seconds];
    let at = |ms: u64| ((ms / 1000) as usize).min(seconds - 1);
    for record in records {
        if let Some(admitted) = record.admitted_ms {
            tally[at(admitted)].admitted += 1;
            let left = record.shop.iter().map(|s| s.at_ms + s.latency_ms as u64).max().unwrap_or(admitted);
            for second in &mut tally[at(admitted)..=at(left)] {
                second.inside += 1;
            }
        }
        for sent in &record.shop {
            let second = &mut tally[at(sent.at_ms)];
            if sent.status == 0 || sent.status >= 500 {
                second.errors += 1;
            } else {
                second.latencies.push(sent.latency_ms);
            }
            // Spread the request's time over the seconds it spanned.
            let (start, end) = (sent.at_ms as f64, sent.at_ms as f64 + sent.latency_ms);
            for (i, second) in tally.iter_mut().enumerate().take(at(end as u64) + 1).skip(at(sent.at_ms)) {
                let (from, to) = ((i * 1000) as f64, ((i + 1) * 1000) as f64);
                second.in_flight_ms += (end.min(to) - start.max(from)).max(0.0);
            }
        }
    }
    let levels: Vec<Level> = (0..seconds.saturating_sub(WINDOW_S - 1))
        .filter_map(|from| level(from, &tally[from..from + WINDOW_S]))
        .collect();
    let within = |l: &Level| l.errors == 0 && l.shop_p90_ms.is_some_and(|p90| p90 <= target_ms);
    let held = levels
        .iter()
        .filter(|l| within(l))
        .max_by(|a, b| a.shop_requests_per_s.total_cmp(&b.shop_requests_per_s))
        .cloned();
    let crossed = levels.iter().find(|l| !within(l)).cloned();
    let settings = held.as_ref().map(settings);
    let sentences = sentences(target_ms, held.as_ref(), crossed.as_ref());
    Capacity { target_ms, held, crossed, settings, sentences }
}

fn level(from: usize, window: &[Tally]) -> Option<Level> {
    let mut latencies: Vec<f64> = window.iter().flat_map(|s| s.latencies.iter().copied()).collect();
    let errors: u64 = window.iter().map(|s| s.errors).sum();
    let requests = latencies.len() + errors as usize;
    if requests < MIN_REQUESTS {
        return None;
    }
    latencies.sort_by(f64::total_cmp);
    // Failures count as slower than anything answered.
    let rank = ((0.9 * requests as f64).ceil() as usize).clamp(1, requests);
    let p90 = latencies.get(rank - 1).map(|v| v.round());
    let n = window.len() as f64;
    Some(Level {
        from_s: from as u64,
        admit_per_minute: (window.iter().map(|s| s.admitted).sum::<u64>() as f64 * 60.0 / n).round(),
        shop_requests_per_s: (requests as f64 / n * 10.0).round() / 10.0,
        in_flight: (window.iter().map(|s| s.in_flight_ms).sum::<f64>() / 1000.0 / n * 10.0).round() / 10.0,
        in_flight_peak: (window.iter().map(|s| s.in_flight_ms).fold(0.0, f64::max) / 1000.0 * 10.0).round() / 10.0,
        inside_peak: window.iter().map(|s| s.inside).max().unwrap_or(0),
        shop_p90_ms: p90,
        errors,
    })
}

fn settings(held: &Level) -> String {
    let keep = |v: f64| ((v * HEADROOM).floor() as u64).max(1);
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# From `anteroom rehearse --find-capacity`: the shop kept its p90 under the target at\n\
         # {:.0} admissions/min, {:.1} requests/s and {:.1} in flight; 90 % of that is kept here.",
        held.admit_per_minute, held.shop_requests_per_s, held.in_flight_peak
    );
    let _ = writeln!(toml, "[origin]\nmax_requests_per_second = {}", keep(held.shop_requests_per_s));
    let _ = writeln!(toml, "max_in_flight = {}\n", (held.in_flight_peak.ceil() as u64).max(1));
    let _ = writeln!(toml, "[[rooms]]\n# (name, paths and the rest of the room as they are)");
    let _ = writeln!(
        toml,
        "admit_per_minute = {}   # a fixed room's rate; an adaptive room's ceiling may sit higher",
        keep(held.admit_per_minute)
    );
    let _ = writeln!(toml, "max_active_users = {}", keep(held.inside_peak as f64));
    toml
}

fn sentences(target_ms: f64, held: Option<&Level>, crossed: Option<&Level>) -> Vec<String> {
    let mut said = Vec::new();
    match held {
        Some(held) => said.push(format!(
            "The shop kept its p90 under {target_ms:.0} ms at up to {} admissions a minute: {:.1} requests/s, \
             {:.1} in flight on average ({:.1} at the most), {} buyers inside at once.",
            group(held.admit_per_minute as u64),
            held.shop_requests_per_s,
            held.in_flight,
            held.in_flight_peak,
            group(held.inside_peak)
        )),
        None => said.push(format!(
            "The shop never kept its p90 under {target_ms:.0} ms for {WINDOW_S} s with {MIN_REQUESTS} requests or \
             more: start the ramp lower (a smaller crowd or a longer --arrival-s)."
        )),
    }
    match crossed {
        Some(crossed) => said.push(format!(
            "It crossed the target {} s in, at {} admissions a minute, {:.1} requests/s and {:.1} in flight \
             (p90 {}, {} failed requests).",
            crossed.from_s + WINDOW_S as u64,
            group(crossed.admit_per_minute as u64),
            crossed.shop_requests_per_s,
            crossed.in_flight,
            crossed.shop_p90_ms.map_or_else(|| "–".to_owned(), |p| format!("{p:.0} ms")),
            crossed.errors
        )),
        None => said.push(
            "It never crossed the target: its capacity lies above what this crowd asked of it — ramp a larger \
             crowd to find it."
                .to_owned(),
        ),
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearse::buyer::{Outcome, Sent};

    /// A buyer admitted at `at_ms` whose two shop requests took `latency_ms` each.
    fn buyer(at_ms: u64, latency_ms: f64, status: u16) -> Record {
        let sent = |at_ms| Sent { at_ms, latency_ms, status, failure: None };
        Record {
            late_ms: 0,
            first_sent_ms: at_ms,
            placed_ms: None,
            last_waiting_ms: None,
            admitted_ms: Some(at_ms),
            polls: 0,
            shop: vec![sent(at_ms), sent(at_ms + latency_ms as u64)],
            held_back: 0,
            outcome: Outcome::Done,
        }
    }

    #[test]
    fn the_busiest_window_under_the_target_is_the_capacity_and_the_first_over_it_the_crossing() {
        // 60 s: buyers every 100 ms for 30 s at 50 ms each, then every 50 ms at 600 ms.
        let mut records: Vec<Record> = (0..300).map(|i| buyer(i * 100, 50.0, 200)).collect();
        records.extend((0..600).map(|i| buyer(30_000 + i * 50, 600.0, 200)));
        let found = find(&records, 60.0, 250.0);
        let held = found.held.expect("the first half held");
        assert_eq!((held.admit_per_minute, held.shop_requests_per_s), (600.0, 20.0));
        // Each buyer keeps the shop busy 100 ms of every 100 ms: one in flight.
        assert!((held.in_flight - 1.0).abs() < 0.05, "{held:?}");
        let crossed = found.crossed.expect("the second half crossed");
        assert!(crossed.from_s > 20 && crossed.from_s <= 30, "{crossed:?}");
        let settings = found.settings.unwrap();
        assert!(settings.contains("admit_per_minute = 540"), "{settings}");
        assert!(settings.contains("max_requests_per_second = 18"), "{settings}");
        assert!(found.sentences[0].contains("600 admissions a minute"), "{:?}", found.sentences);
    }

    #[test]
    fn failures_count_against_the_shop_and_a_quiet_rehearsal_finds_nothing() {
        let failing: Vec<Record> = (0..300).map(|i| buyer(i * 100, 10.0, 503)).collect();
        let found = find(&failing, 30.0, 250.0);
        assert!(found.held.is_none() && found.settings.is_none());
        assert_eq!(found.crossed.unwrap().errors, 200);
        let quiet = [buyer(0, 10.0, 200)];
        let found = find(&quiet, 30.0, 250.0);
        assert!(found.held.is_none() && found.crossed.is_none());
        assert!(found.sentences[0].contains("start the ramp lower"));
    }
}
