//! One room, a million waiting: what a long line costs Redis when every waiter polls at the
//! queue page's own pace, with two gateway instances sharing one Redis.
//!
//! Run: `cargo bench --bench one_room` (env: WAITING=100000,1000000 the line lengths,
//! SECONDS=40 of measured polling for each, CONNECTIONS=256 per gateway, ANTEROOM_BIN=
//! another build of the gateway).
//!
//! For each line length it starts a fresh `redis-server` and two release `anteroom run`
//! (the same signing key, the same room), puts WAITING visitors in line through the
//! gateways (a cookie-less status hands out a signed cookie, then a join), then keeps
//! every one of them polling `GET /_anteroom/status` at the pace the answers ask for
//! (`poll_after_ms`: with the default `abandon_after` of 5 min, every 30 s ±20 % far back
//! in line), half through each gateway, and reads Redis's CPU (`INFO cpu`, user + system)
//! and the scripts' own time (`INFO commandstats`) while they do. The ticks of both
//! gateways run all along and are counted in.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::queue::{connect, fetch_cookies, Gateway, Redis};

/// A fixed HS256 key (benchmark only): both gateways must accept each other's cookies.
const SECRET: &str = "GD9KhJiMUrcqnBcr2EefMvLMtNRe6O2Ly57oT5+Rgow=";
/// One admission a minute: the line only grows while it is measured.
const ROOM: &str = "[[rooms]]\nname = \"bench\"\npaths = [\"/q\"]\nadmit_per_minute = 1\nmax_active_users = 1\n";
/// The longest interval the page polls at (before its ±20 % jitter), for the default
/// `abandon_after`.
const POLL_EVERY: Duration = Duration::from_secs(30);
/// Polling before the measurement starts, so that the window sees the steady pace.
const WARM_UP: Duration = Duration::from_secs(5);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("WAITING")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("WAITING: numbers separated by commas"))
        .collect();
    let seconds = env_usize("SECONDS", 40) as u64;
    let connections = env_usize("CONNECTIONS", 256);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "# one room: two gateways, one Redis, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for waiting in sizes {
        runtime.block_on(one_line(waiting, Duration::from_secs(seconds), connections));
    }
}

async fn one_line(waiting: usize, window: Duration, connections: usize) {
    let redis = Redis::start();
    let rest = format!(
        "[tokens]\n[[tokens.keys]]\nkid = \"bench\"\nsecret = \"{SECRET}\"\n\
         [store]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}/\"\n{ROOM}",
        redis.port
    );
    let gateways = [Gateway::start(&rest), Gateway::start(&rest)];
    let addrs = [gateways[0].addr, gateways[1].addr];
    let memory_before = redis.used_memory();

    let started = Instant::now();
    let (cookies, _) = fetch_cookies(addrs[0], waiting, 64).await;
    let joined = Arc::new(Outcome::default());
    let joins = Pace::unpaced(waiting);
    run_clients(&addrs, &cookies, connections, "POST", "/_anteroom/join?room=bench", joins, &joined).await;
    let per_waiter = (redis.used_memory() - memory_before) as f64 / waiting as f64;
    println!(
        "{waiting} waiting: joined in {:.0} s through two gateways; Redis memory {per_waiter:.0} B per waiter",
        started.elapsed().as_secs_f64()
    );
    // The first comes in at once (the room was quiet); everyone else takes a place.
    assert_eq!(joined.line.load(Ordering::Relaxed), waiting as u64 - 1, "everyone took a place");
    // From here on each buyer sends the cookie the join set, which names their place.
    let mut kept: Vec<String> = cookies.to_vec();
    for (i, pair) in std::mem::take(&mut *joined.set_cookies.lock().expect("lock")) {
        kept[i] = pair;
    }
    let cookies = Arc::new(kept);

    // What the line costs with nobody polling: the two gateways' ticks.
    let cpu_before = redis.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = (redis.cpu_seconds() - cpu_before) / 5.0;
    println!("  Redis with nobody polling (the ticks): {:.2} % of a core", idle * 100.0);

    // Everyone polls once per POLL_EVERY, in join order, from 2 × CONNECTIONS clients.
    let rate = waiting as f64 / POLL_EVERY.as_secs_f64();
    let polls = Pace::paced(rate, WARM_UP + window + Duration::from_secs(1));
    let outcome = Arc::new(Outcome::default());
    let polling = {
        let (addrs, cookies, outcome) = (addrs, cookies.clone(), outcome.clone());
        tokio::spawn(async move {
            run_clients(&addrs, &cookies, connections, "GET", "/_anteroom/status?room=bench", polls, &outcome).await;
        })
    };
    tokio::time::sleep(WARM_UP).await;
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let cpu_before = redis.cpu_seconds();
    let measured_from = Instant::now();
    let sent_before = outcome.sent.load(Ordering::Relaxed);
    tokio::time::sleep(window).await;
    let cpu = redis.cpu_seconds() - cpu_before;
    let seconds = measured_from.elapsed().as_secs_f64();
    let (calls, usec) = redis.command_stats("evalsha");
    let poll_rate = outcome.rate_since(sent_before, seconds);
    polling.await.expect("polling");

    let core = cpu / seconds;
    let per_poll_us = cpu * 1e6 / (poll_rate * seconds).max(1.0);
    println!(
        "  polls: wanted {rate:.0}/s, sent {:.0}/s (mean poll_after_ms asked: {:.0}; {} answers not a place in line; line {})",
        poll_rate,
        outcome.mean_poll_after_ms(),
        outcome.failures.load(Ordering::Relaxed),
        outcome.line.load(Ordering::Relaxed),
    );
    println!(
        "  Redis: {:.1} % of a core; {per_poll_us:.2} µs of CPU per poll; scripts {:.0} calls/s, {:.1} µs each, {:.1} polls per call",
        core * 100.0,
        calls as f64 / seconds,
        usec as f64 / calls.max(1) as f64,
        poll_rate * seconds / calls.max(1) as f64,
    );
    println!(
        "  per waiter: {:.3} µs of Redis CPU per second; at 50 % of a core at this pace: {:.2} million waiting",
        core * 1e6 / waiting as f64,
        0.5 / core * waiting as f64 / 1e6
    );
    for (i, g) in gateways.iter().enumerate() {
        println!("  gateway {i} RSS {} MiB", g.rss_kib() / 1024);
    }
}

/// How the clients send: as fast as answers come (`requests` in all), or `rate` a second
/// (for `length`).
#[derive(Clone, Copy)]
struct Pace {
    requests: Option<usize>,
    rate: f64,
    length: Duration,
}

impl Pace {
    fn unpaced(requests: usize) -> Self {
        Self { requests: Some(requests), rate: 0.0, length: Duration::ZERO }
    }

    fn paced(rate: f64, length: Duration) -> Self {
        Self { requests: None, rate, length }
    }
}

/// What the clients saw.
#[derive(Default)]
struct Outcome {
    /// Requests sent so far (each answered before the next on its connection).
    sent: AtomicU64,
    failures: AtomicU64,
    /// The longest line an answer reported.
    line: AtomicU64,
    poll_after_sum: AtomicU64,
    poll_after_count: AtomicU64,
    /// The cookies the answers set, by visitor: a browser keeps the one that names its place.
    set_cookies: std::sync::Mutex<Vec<(usize, String)>>,
}

impl Outcome {
    fn mean_poll_after_ms(&self) -> f64 {
        self.poll_after_sum.load(Ordering::Relaxed) as f64 / self.poll_after_count.load(Ordering::Relaxed).max(1) as f64
    }

    /// Requests a second over the last `seconds`, when `before` had been sent at their start.
    fn rate_since(&self, before: u64, seconds: f64) -> f64 {
        (self.sent.load(Ordering::Relaxed).saturating_sub(before)) as f64 / seconds
    }
}

/// Clients spread over the gateways, each request with the next cookie in turn.
async fn run_clients(
    addrs: &[std::net::SocketAddr; 2],
    cookies: &Arc<Vec<String>>,
    connections: usize,
    method: &'static str,
    path: &'static str,
    pace: Pace,
    outcome: &Arc<Outcome>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let clients = connections * addrs.len();
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (cookies, next, outcome) = (cookies.clone(), next.clone(), outcome.clone());
        let addr = addrs[client % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            // Paced: this client's share of the rate, as deadlines from the start (a late
            // request does not push the later ones back).
            let every = Duration::from_secs_f64(clients as f64 / pace.rate.max(1e-9));
            let mut sent_here: u32 = 0;
            loop {
                if pace.requests.is_none() {
                    let due = started + every * sent_here + every.mul_f64(client as f64 / clients as f64);
                    if due - started >= pace.length {
                        return;
                    }
                    tokio::time::sleep_until(due).await;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if pace.requests.is_some_and(|total| i >= total) {
                    return;
                }
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", "bench")
                    .header("accept", "application/json")
                    .header("cookie", &cookies[i % cookies.len()])
                    .body(Empty::<Bytes>::new())
                    .expect("req");
                let response = sender.send_request(req).await.expect("response");
                let ok = response.status() == 200 && response.headers().contains_key("x-anteroom-state");
                if method == "POST" {
                    let set = response.headers().get("set-cookie").and_then(|v| v.to_str().ok());
                    if let Some(pair) = set.and_then(|c| c.split(';').next()) {
                        outcome.set_cookies.lock().expect("lock").push((i, pair.to_owned()));
                    }
                }
                let body = response.into_body().collect().await.expect("body").to_bytes();
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if !ok || answer["position"].as_u64().is_none() {
                    outcome.failures.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(line) = answer["queue_length"].as_u64() {
                    outcome.line.fetch_max(line, Ordering::Relaxed);
                }
                if let Some(ms) = answer["poll_after_ms"].as_u64() {
                    outcome.poll_after_sum.fetch_add(ms, Ordering::Relaxed);
                    outcome.poll_after_count.fetch_add(1, Ordering::Relaxed);
                }
                outcome.sent.fetch_add(1, Ordering::Relaxed);
                sent_here += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
}
