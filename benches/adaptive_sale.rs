//! The same sale three times, against the same fragile shop: a fixed rate set too high, a
//! fixed rate well chosen (by someone who knew the shop's capacity), and closed-loop
//! admission with the too-high rate as its ceiling.
//!
//! Also, to show what each part does: the well-chosen rate without and with a well-chosen
//! `max_in_flight`, and adaptive admission without the adaptive in-flight limit.
//!
//! Run: `cargo bench --bench adaptive_sale` (env: CROWD=4000, ARRIVE_S=20, PATIENCE_S=240
//! (how long a buyer waits in line before giving up), ONLY=text (the runs whose name
//! contains it)). The shop is
//! `50 ms × (1 + (in_flight / 10)³)` per request (processor sharing), `503` beyond 100 in
//! flight: about 63 requests/s at a 250 ms p90, 32 checkouts/s at two requests each. Each
//! buyer queues as the page does, then opens the event and checks out, retrying a failed
//! request three times (after `Retry-After`) before giving up. Prints one line per run:
//! the shop's p50 and p90 (its own account), its overload answers, admitted buyers who
//! failed, buyers never admitted, checkouts per second over the sale, and for adaptive the
//! time until the rate settled (it stays within ±20 % of its median over the rest of the
//! time people waited).

#[path = "../tests/support/mod.rs"]
mod support;

use anteroom::config::{AdmissionMode, HumanDuration, Secret};
use anteroom::demo::fragile::{FragileShop, Shape};
use std::time::{Duration, Instant};
use support::sale::{self, whole_sale, Crowd};
use support::Gateway;

const SHAPE: Shape = Shape { base: Duration::from_millis(50), knee: 10.0, limit: 100 };
const TARGET: Duration = Duration::from_millis(250);
const TOKEN: &str = "admin-secret-for-the-benchmark";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Run {
    name: &'static str,
    admission: AdmissionMode,
    rate: u32,
    /// The origin's in-flight cap, and whether it adapts below it.
    max_in_flight: u32,
    adaptive_in_flight: bool,
}

#[tokio::main]
async fn main() {
    let mut crowd = Crowd::new(env("CROWD", 4_000) as usize, Duration::from_secs(env("ARRIVE_S", 20)));
    // Patient buyers: the last of 4,000 waits about two minutes at the shop's pace.
    crowd.give_up_after = Duration::from_secs(env("PATIENCE_S", 240));
    let only = std::env::var("ONLY").unwrap_or_default();
    let at_target = SHAPE.throughput_at(TARGET, 1.0);
    println!(
        "crowd {} arriving over {:?}; the shop: {:.0} requests/s at a {TARGET:?} p90 ({:.1} checkouts/s)",
        crowd.buyers,
        crowd.arrive_over,
        at_target,
        at_target / 2.0
    );
    println!(
        "{:<40} {:>8} {:>9} {:>9} {:>7} {:>7} {:>12} {:>8}",
        "run", "shop p50", "shop p90", "overload", "failed", "unadm.", "checkouts/s", "settled"
    );
    let fixed = AdmissionMode::Fixed;
    let adaptive = AdmissionMode::Adaptive;
    let runs = [
        Run {
            name: "fixed 12000/min, max_in_flight 1000",
            admission: fixed,
            rate: 12_000,
            max_in_flight: 1_000,
            adaptive_in_flight: false,
        },
        Run {
            name: "fixed 1800/min, max_in_flight 1000",
            admission: fixed,
            rate: 1_800,
            max_in_flight: 1_000,
            adaptive_in_flight: false,
        },
        Run {
            name: "fixed 1800/min, max_in_flight 10",
            admission: fixed,
            rate: 1_800,
            max_in_flight: 10,
            adaptive_in_flight: false,
        },
        Run {
            name: "adaptive rate only, max_in_flight 1000",
            admission: adaptive,
            rate: 12_000,
            max_in_flight: 1_000,
            adaptive_in_flight: false,
        },
        Run {
            name: "adaptive (ceiling 12000), in-flight auto",
            admission: adaptive,
            rate: 12_000,
            max_in_flight: 1_000,
            adaptive_in_flight: true,
        },
    ];
    for run in runs.into_iter().filter(|run| run.name.contains(&only)) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shop = FragileShop::serve(listener, SHAPE).unwrap();
        let config = Gateway::config(&shop.url())
            .origin(|origin| {
                origin.max_in_flight = run.max_in_flight;
                origin.adaptive_in_flight = Some(run.adaptive_in_flight);
                origin.response_timeout = HumanDuration(Duration::from_secs(5));
            })
            .admin(|admin| admin.token = Some(Secret::new(TOKEN)))
            .room("sale", &["/shop"], |room| {
                room.admission = run.admission;
                room.admit_per_minute = run.rate;
                room.min_admit_per_minute = Some(60);
                room.target_origin_latency = Some(HumanDuration(TARGET));
                room.max_active_users = 100_000;
            });
        let gw = Gateway::built(config).await;
        let started = Instant::now();
        let (addr, buyers) = (gw.addr, crowd.clone());
        let sale = tokio::spawn(async move { sale::run(addr, &buyers).await });
        let mut rates = Vec::new();
        while !sale.is_finished() {
            let (_, stats) = gw.admin_api("GET", "/admin/rooms/sale", Some(TOKEN), "").await;
            if let Some(rate) = stats["effective_admit_per_minute"].as_u64() {
                rates.push((started.elapsed(), rate, stats["queue_length"].as_u64().unwrap_or(0)));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let outcome = sale.await.unwrap();
        let shop_numbers = whole_sale(&shop.stats.served());
        let settled = match run.admission {
            AdmissionMode::Fixed => "-".to_owned(),
            AdmissionMode::Adaptive => {
                settled_after(&rates).map_or("never".into(), |t| format!("{:.0} s", t.as_secs_f64()))
            }
        };
        println!(
            "{:<40} {:>6.0}ms {:>7.0}ms {:>9} {:>7} {:>7} {:>12.1} {:>8}",
            run.name,
            shop_numbers.p50.as_secs_f64() * 1000.0,
            shop_numbers.p90.as_secs_f64() * 1000.0,
            shop_numbers.overloaded,
            outcome.failed_inside.len(),
            outcome.never_admitted.len(),
            shop_numbers.checkouts_per_second,
            settled,
        );
        if run.admission == AdmissionMode::Adaptive && run.adaptive_in_flight {
            let while_waiting: Vec<u64> = rates.iter().filter(|(_, _, line)| *line > 0).map(|(_, r, _)| *r).collect();
            println!("  rate while people waited (every 250 ms): {while_waiting:?}");
        }
    }
}

/// When the rate stopped moving by more than ±20 % around its median, counting only the
/// part of the sale with people waiting.
fn settled_after(rates: &[(Duration, u64, u64)]) -> Option<Duration> {
    let waiting: Vec<_> = rates.iter().filter(|(_, _, line)| *line > 0).collect();
    let mut sorted: Vec<u64> = waiting.iter().map(|(_, rate, _)| *rate).collect();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)? as f64;
    let outside = |rate: u64| (rate as f64) < median * 0.8 || (rate as f64) > median * 1.2;
    let last_outside = waiting.iter().rposition(|(_, rate, _)| outside(*rate));
    let first = waiting.first()?.0;
    Some(match last_outside {
        Some(i) => waiting.get(i + 1).map_or(waiting[i].0, |(t, _, _)| *t) - first,
        None => Duration::ZERO,
    })
}
