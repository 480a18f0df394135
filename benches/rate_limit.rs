//! Rate-limit accuracy: offer 5× `max_requests_per_second` for 30 s and check that the
//! origin never sees more than the limit plus `burst` in any one-second window, and that
//! no client waits longer than `max_wait` for its answer.
//!
//! Run: `cargo bench --bench rate_limit` (optional args: RATE SECONDS).
//! Everything runs in this process on loopback: a counting origin, the gateway, and an
//! open-loop load generator that starts a request every 1/(5×RATE) s on its own connection.

use anteroom::Config;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const BURST: u32 = 20;
const MAX_WAIT: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rate: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(rate, seconds));
}

async fn run(rate: u32, seconds: u64) {
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let origin = start_origin(arrivals.clone()).await;
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[origin]\nurl = \"http://{origin}\"\n\
         max_requests_per_second = {rate}\nburst = {BURST}\nmax_in_flight = 10000\nmax_wait = \"{}ms\"\n",
        MAX_WAIT.as_millis()
    );
    let config = Config::from_toml(&text, []).expect("config");
    let listeners = anteroom::Listeners::bind(&config).await.expect("bind");
    let gateway = listeners.http.as_ref().expect("http").local_addr().expect("addr");
    tokio::spawn(anteroom::serve(config, listeners, std::future::pending()));

    let offered = rate * 5;
    println!("offering {offered} req/s for {seconds} s to a limit of {rate}/s + burst {BURST}, max_wait {MAX_WAIT:?}");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(offered)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        requests.push(tokio::spawn(one_request(gateway)));
    }
    let sent = requests.len();
    let mut forwarded_waits = Vec::new();
    let mut shed_waits = Vec::new();
    let mut other = 0;
    for r in requests {
        match r.await.expect("task") {
            (200, wait) => forwarded_waits.push(wait),
            (503, wait) => shed_waits.push(wait),
            _ => other += 1,
        }
    }
    let arrivals = arrivals.lock().expect("lock").clone();
    report(rate, started, sent, &arrivals, &mut forwarded_waits, &mut shed_waits, other);
}

fn report(
    rate: u32,
    started: Instant,
    sent: usize,
    arrivals: &[Instant],
    forwarded: &mut [Duration],
    shed: &mut [Duration],
    other: usize,
) {
    // Sliding one-second windows over the arrival times at the origin.
    let mut sorted: Vec<Duration> = arrivals.iter().map(|a| a.duration_since(started)).collect();
    sorted.sort();
    let mut worst_window = 0;
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        worst_window = worst_window.max(hi - lo + 1);
    }
    let span = sorted.last().copied().unwrap_or_default().as_secs_f64().max(1e-9);
    forwarded.sort();
    shed.sort();
    let pct = |v: &[Duration], p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied();
    let limit = rate + BURST;
    println!("requests sent: {sent}; forwarded (200): {}; shed (503): {}; other: {other}", forwarded.len(), shed.len());
    println!(
        "origin: {} requests, mean {:.1}/s, busiest 1 s window {} (limit + burst = {limit}) -> {}",
        arrivals.len(),
        arrivals.len() as f64 / span,
        worst_window,
        if worst_window as u32 <= limit { "within" } else { "EXCEEDED" }
    );
    for (name, waits) in [("forwarded", &*forwarded), ("shed", &*shed)] {
        if let (Some(p50), Some(p99), Some(max)) = (pct(waits, 0.5), pct(waits, 0.99), waits.last()) {
            let over = waits.iter().filter(|w| **w > MAX_WAIT).count();
            println!("{name} answer time: p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}; over max_wait: {over}");
        }
    }
}

async fn one_request(gateway: std::net::SocketAddr) -> (u16, Duration) {
    let sent = Instant::now();
    let status = async {
        let stream = TcpStream::connect(gateway).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(conn);
        let req = http::Request::get("/").header("host", "bench").body(Empty::<Bytes>::new()).ok()?;
        let response = sender.send_request(req).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
    .await
    .unwrap_or(0);
    (status, sent.elapsed())
}

async fn start_origin(arrivals: Arc<Mutex<Vec<Instant>>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    arrivals.lock().expect("lock").push(Instant::now());
                    async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok")))) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
