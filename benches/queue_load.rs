//! Queue throughput and memory, on this machine, one gateway and Redis on the same box.
//!
//! Run: `cargo bench --bench queue_load` (env: VISITORS=100000, CONNECTIONS=64,
//! MILLION=1000000; ONLY=memory stops after the first part). It starts its own `redis-server` and the release `anteroom` binary,
//! then measures and prints:
//!
//! 1. Redis memory per waiting visitor at 100k and 1M (joined through the store API, with
//!    real 22-character visitor ids; `used_memory` before and after), and at 1M before the
//!    opening (pre-queue places).
//! 2. Through the gateway (HTTP keep-alive, CONNECTIONS clients): cookie-less status
//!    (no store call), joins (`POST /_anteroom/join`, one store script each) and status
//!    polls of joined visitors (`GET /_anteroom/status`).
//! 3. The ceiling: `redis-benchmark` running the very same visit script (EVALSHA) with
//!    the same number of clients, in the same run.
//! 4. Gateway resident memory with VISITORS waiting, on the Redis store and on the
//!    memory store.

mod support;

use anteroom::store::{Joining, Policy, RedisStore, Store, Visit};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use support::queue::{connect, fetch_cookies, Gateway, Redis};

/// The benchmark's room, after the store's section.
const ROOM: &str = "[[rooms]]\nname = \"bench\"\npaths = [\"/q\"]\nadmit_per_minute = 1\nmax_active_users = 1\nabandon_after = \"1h\"\n";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let visitors = env_usize("VISITORS", 100_000);
    let connections = env_usize("CONNECTIONS", 64);
    let million = env_usize("MILLION", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(visitors, connections, million));
}

fn policy() -> Policy {
    Policy {
        admit_per_minute: 1,
        max_active_users: 1,
        session_ms: 900_000,
        abandon_ms: 3_600_000,
        claim_ms: 3_600_000,
        reclaim_ms: anteroom::store::RECLAIM_MS,
        max_places_per_client: 0,
        ..Policy::default()
    }
}

fn visitor_id(i: usize) -> String {
    // 22 characters, as real (base64url of 128 random bits) ids are.
    format!("{:0>22}", format!("{i:x}"))
}

async fn run(visitors: usize, connections: usize, million: usize) {
    println!("# anteroom queue benchmark: {visitors} visitors, {connections} connections, {} cores", num_cpus());

    // 1. Redis memory per waiting visitor.
    let redis = Redis::start();
    let store = Arc::new(Store::Redis(Box::new(
        RedisStore::connect(&format!("redis://127.0.0.1:{}/", redis.port), &[], None).expect("store"),
    )));
    store.set_paused("mem", true).await.expect("pause");
    let before = redis.used_memory();
    let mut joined = 0;
    for target in [visitors.min(million), million] {
        join_directly(&store, "mem", joined, target, &policy()).await;
        joined = target;
        let per = (redis.used_memory() - before) as f64 / target as f64;
        println!("redis memory per waiting visitor at {target}: {per:.0} bytes");
        poll_directly(&store, &redis, "mem", target, 300_000).await;
    }
    // Support's lookup of a queue id walks the whole room (ZSCAN steps); a prefix nobody
    // has makes it walk every member.
    let started = std::time::Instant::now();
    let found = store.find_visitors("mem", "zzzzzz").await.expect("find");
    println!(
        "support lookup of a queue id among {million} waiting (redis, ZSCAN steps): {:.2} s ({} found)",
        started.elapsed().as_secs_f64(),
        found.len()
    );
    redis.cli(&["FLUSHALL"]);

    // The same before the opening: pre-queue places, in random order.
    let before = redis.used_memory();
    let opens = Policy { opens_at_ms: Some(anteroom::time::unix_ms() + 86_400_000), ..policy() };
    join_directly(&store, "pre", 0, million, &opens).await;
    let per = (redis.used_memory() - before) as f64 / million as f64;
    println!("redis memory per pre-queue visitor at {million}: {per:.0} bytes");
    redis.cli(&["FLUSHALL"]);
    if std::env::var("ONLY").as_deref() == Ok("memory") {
        return;
    }

    // 2. Through the gateway on the Redis store.
    let gateway = Gateway::start(&format!(
        "[tokens]\nallow_random_keys = true\n[store]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}/\"\n{ROOM}",
        redis.port
    ));
    let rss_idle = gateway.rss_kib();
    let (cookies, rate) = fetch_cookies(gateway.addr, visitors, connections).await;
    println!("gateway, cookie-less status (no store call): {rate:.0} req/s");
    let joins = drive(gateway.addr, &cookies, connections, "POST", "/_anteroom/join?room=bench", cookies.len()).await;
    println!("gateway, joins: {joins:.0} req/s");
    let status =
        drive(gateway.addr, &cookies, connections, "GET", "/_anteroom/status?room=bench", cookies.len() * 2).await;
    println!("gateway, status polls of waiting visitors: {status:.0} req/s");
    let rss_redis = gateway.rss_kib();
    println!(
        "gateway RSS, Redis store: {} MiB idle, {} MiB with {visitors} waiting",
        rss_idle / 1024,
        rss_redis / 1024
    );
    drop(gateway);

    // 3. The ceiling: redis-benchmark running the same script.
    let sha = redis.cli(&["SCRIPT", "LOAD", &anteroom::store::visit_script_source()]);
    let join_ceiling = redis_benchmark(&redis, &sha, connections, 200_000, 100_000_000);
    println!("redis-benchmark, visit script as a join: {join_ceiling:.0} calls/s");
    redis_benchmark(&redis, &sha, connections, 250_000, 50_000); // warm: joins most of 50k ids
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let cpu_before = redis.cpu_seconds();
    let status_ceiling = redis_benchmark(&redis, &sha, connections, 300_000, 50_000);
    let cpu = redis.cpu_seconds() - cpu_before;
    let (calls, usec) = redis.command_stats("evalsha");
    println!(
        "redis-benchmark, visit script as a status of a waiting visitor: {status_ceiling:.0} calls/s; \
         redis CPU {:.2} µs per call, script {:.2} µs per call",
        cpu * 1e6 / calls.max(1) as f64,
        usec as f64 / calls.max(1) as f64
    );
    println!("ratio gateway/redis-benchmark: joins {:.2}, status {:.2}", joins / join_ceiling, status / status_ceiling);
    drop(redis);

    // 4. Gateway memory with the line held in-process.
    let gateway = Gateway::start(&format!("[store]\nbackend = \"memory\"\n{ROOM}"));
    let (cookies, _) = fetch_cookies(gateway.addr, visitors, connections).await;
    let joins_memory =
        drive(gateway.addr, &cookies, connections, "POST", "/_anteroom/join?room=bench", cookies.len()).await;
    let status_memory =
        drive(gateway.addr, &cookies, connections, "GET", "/_anteroom/status?room=bench", cookies.len()).await;
    println!("gateway, memory store: joins {joins_memory:.0} req/s, status {status_memory:.0} req/s");
    println!("gateway RSS, memory store: {} MiB with {visitors} waiting", gateway.rss_kib() / 1024);
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn join_directly(store: &Arc<Store>, room: &str, from: usize, to: usize, policy: &Policy) {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let (store, next, room, policy) = (store.clone(), next.clone(), room.to_owned(), policy.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return;
                }
                let id = visitor_id(i);
                // The gateway's pre-queue order: random (here a cheap hash of the index).
                let prequeue_score = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
                let visit =
                    Visit { visitor: &id, restore: None, prequeue_score, joining: Joining::Place, client: None };
                store.visit(&room, &visit, &policy).await.expect("visit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

/// Status polls of waiting visitors straight through the store API (as the gateway sends
/// them, coalesced), picked at random among `population`: polls per second, and what each
/// cost Redis: its CPU (user and system, so the network's share too) per poll, and the
/// script's own time per call divided by the visitors each call carried.
async fn poll_directly(store: &Arc<Store>, redis: &Redis, room: &str, population: usize, polls: usize) {
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let cpu_before = redis.cpu_seconds();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..256 {
        let (store, next, room) = (store.clone(), next.clone(), room.to_owned());
        tasks.push(tokio::spawn(async move {
            // A cheap random walk over the population (an LCG per task).
            let mut x = task as u64 * 7_919 + 1;
            while next.fetch_add(1, Ordering::Relaxed) < polls {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let id = visitor_id((x >> 33) as usize % population);
                let visit =
                    Visit { visitor: &id, restore: None, prequeue_score: 0, joining: Joining::Keep, client: None };
                let standing = store.visit(&room, &visit, &policy()).await.expect("poll");
                assert!(standing.position.is_some(), "a waiting visitor has a position");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = redis.cpu_seconds() - cpu_before;
    let (calls, usec) = redis.command_stats("evalsha");
    let per_call = calls.max(1) as f64;
    println!(
        "store status polls at {population} waiting: {:.0} polls/s; redis CPU {:.2} µs per poll; \
         script {:.1} µs per call / {:.1} visitors per call = {:.2} µs per poll",
        polls as f64 / seconds,
        cpu * 1e6 / polls as f64,
        usec as f64 / per_call,
        polls as f64 / per_call,
        usec as f64 / polls as f64,
    );
}

fn redis_benchmark(redis: &Redis, sha: &str, clients: usize, requests: usize, keyspace: usize) -> f64 {
    // The room's keys, as the store passes them.
    let keys: Vec<String> = anteroom::store::ROOM_KEYS.iter().map(|k| format!("anteroom:{{rb}}:{k}")).collect();
    let mut args: Vec<String> = vec![
        "-p".into(),
        redis.port.to_string(),
        "-c".into(),
        clients.to_string(),
        "-n".into(),
        requests.to_string(),
        "-r".into(),
        keyspace.to_string(),
        "-q".into(),
        "EVALSHA".into(),
        sha.into(),
        keys.len().to_string(),
    ];
    args.extend(keys);
    // The room (admit_per_minute, capacity, session ms, abandon ms, opens_at, recount ms,
    // remembered epoch, paused, closed, two overrides, adaptive start), the restore grace,
    // rejoin, reclaim, places per client; then one visitor: id, restore epoch, seq and
    // seen, pre-queue score, join, proof id and expiry, client.
    let room = ["1", "1", "900000", "3600000", "0", "38000", "0", "0", "0", "", "", "", "10000", "0", "30000", "0"];
    let visitor = ["v:__rand_int__", "", "", "", "0", "1", "", "0", ""];
    for a in room.iter().chain(&visitor) {
        args.push((*a).into());
    }
    let failed_before = redis.failed_calls("evalsha");
    let out = Command::new("redis-benchmark").args(&args).output().expect("redis-benchmark");
    // An error reply counts as a request to redis-benchmark: the script must not fail.
    let failed = redis.failed_calls("evalsha") - failed_before;
    assert_eq!(failed, 0, "the visit script failed under redis-benchmark: {}", redis.cli(&["INFO", "errorstats"]));
    let text = String::from_utf8_lossy(&out.stdout);
    // "EVALSHA ...: 61349.69 requests per second, p50=..." (the last \r-separated part)
    let last = text.rsplit('\r').next().unwrap_or(&text);
    last.split("requests per second")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1).or(s.rsplit(": ").next()))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark output: {text}"))
}

/// `total` requests over `connections` keep-alive connections, each with the next cookie.
async fn drive(
    addr: SocketAddr,
    cookies: &Arc<Vec<String>>,
    connections: usize,
    method: &str,
    path: &str,
    total: usize,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (cookies, next, failures) = (cookies.clone(), next.clone(), failures.clone());
        let (method, path) = (method.to_owned(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let req = Request::builder()
                    .method(method.as_str())
                    .uri(path.as_str())
                    .header("host", "bench")
                    .header("cookie", &cookies[i % cookies.len()])
                    .body(Empty::<Bytes>::new())
                    .expect("req");
                let response = sender.send_request(req).await.expect("response");
                if response.status() != 200 || response.headers().get("x-anteroom-state").is_none_or(|s| s == "paused")
                {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                response.into_body().collect().await.expect("body");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        println!("  ({failed} of {total} answers were not a normal queue answer)");
    }
    total as f64 / started.elapsed().as_secs_f64()
}
