//! A fragile shop, as the one anteroom was built for: each request takes longer the more
//! requests are in flight (a database whose locks and buffers are shared), until beyond
//! a limit the shop answers `503` at once. With `n` requests in flight each progresses at
//! `1 / (1 + (n / knee)³)` of its idle pace, re-read as the load changes, so a request
//! takes `base × (1 + (n / knee)³)` while the load stays at `n`;
//! its capacity can be changed while it runs (a cache going cold, a payment provider
//! slowing down). Any path serves a page; a path ending in `/checkout` completes a
//! purchase and tells anteroom to end the buyer's session (`X-Anteroom-Command: revoke`);
//! one ending in `/broken` fails at once with `500`, as a legacy shop does on junk input.
//!
//! Used by the closed-loop admission tests and benchmark, which read its own account of
//! what it served (`ShopStats`).

use crate::response::{full, Body};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How often a request in the shop looks at the load again.
const WORK_STEP: Duration = Duration::from_millis(10);

/// How the shop slows down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// A request's time when the shop is idle.
    pub base: Duration,
    /// In-flight requests at which a request takes twice `base`.
    pub knee: f64,
    /// Beyond this many requests in flight the shop answers `503` at once.
    pub limit: usize,
}

impl Shape {
    /// The fragile shop `anteroom shop --fragile` serves: 50 ms when idle, twice that at
    /// 10 requests in flight, 1.4 s at 30, over 30 s (a proxy's timeout) past 90, and
    /// `503` beyond 100 — a shop whose database goes from milliseconds to seconds.
    pub const SEED: Shape = Shape { base: Duration::from_millis(50), knee: 10.0, limit: 100 };

    /// The time one request takes with `in_flight` requests (itself included) at
    /// `capacity` (1.0: as shaped).
    pub fn latency(&self, in_flight: usize, capacity: f64) -> Duration {
        let load = in_flight as f64 / (self.knee * capacity);
        self.base.mul_f64(1.0 + load.powi(3))
    }

    /// Requests per second the shop completes while it answers within `target`: the
    /// in-flight level at which a request takes `target`, divided by `target`.
    pub fn throughput_at(&self, target: Duration, capacity: f64) -> f64 {
        let ratio = (target.as_secs_f64() / self.base.as_secs_f64() - 1.0).max(0.0);
        self.knee * capacity * ratio.cbrt() / target.as_secs_f64()
    }
}

/// One request as the shop saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// When it finished, since the shop started.
    pub at: Duration,
    /// How long it took (zero for an overload answer).
    pub took: Duration,
    pub overloaded: bool,
    pub checkout: bool,
}

/// The shop's own account.
#[derive(Debug, Default)]
pub struct ShopStats {
    served: Mutex<Vec<Served>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Capacity factor as f64 bits (1.0: as shaped).
    capacity: AtomicU64,
}

impl ShopStats {
    /// Every request so far, in the order they finished.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn capacity(&self) -> f64 {
        f64::from_bits(self.capacity.load(Relaxed))
    }

    /// One request's work: `base` of it at the pace the current load allows, re-read
    /// every step (processor sharing: when the load drops, requests in flight speed up).
    async fn work(&self, shape: &Shape) -> Duration {
        let begun = Instant::now();
        let mut done = Duration::ZERO;
        while done < shape.base {
            let pace =
                shape.base.as_secs_f64() / shape.latency(self.in_flight.load(Relaxed), self.capacity()).as_secs_f64();
            let left = (shape.base - done).div_f64(pace);
            let step = left.min(WORK_STEP);
            tokio::time::sleep(step).await;
            done += step.mul_f64(pace);
        }
        begun.elapsed()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Relaxed)
    }
}

/// A running fragile shop.
#[derive(Clone, Debug)]
pub struct FragileShop {
    pub addr: SocketAddr,
    pub shape: Shape,
    pub stats: Arc<ShopStats>,
}

impl FragileShop {
    /// Serves on `listener` until the runtime ends.
    pub fn serve(listener: TcpListener, shape: Shape) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let stats = Arc::new(ShopStats { capacity: AtomicU64::new(1.0f64.to_bits()), ..ShopStats::default() });
        let started = Instant::now();
        let shop = stats.clone();
        super::serve_forever(listener, move |req| {
            let shop = shop.clone();
            async move { answer(&shop, &shape, started, &req).await }
        });
        Ok(Self { addr, shape, stats })
    }

    /// Changes the shop's capacity while it runs (0.5: it can take half the load).
    pub fn set_capacity(&self, factor: f64) {
        self.stats.capacity.store(factor.to_bits(), Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn answer(shop: &Arc<ShopStats>, shape: &Shape, started: Instant, req: &Request<Incoming>) -> Response<Body> {
    if req.uri().path().ends_with("/broken") {
        let mut response = Response::new(full("unhandled exception\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    }
    let in_flight = shop.in_flight.fetch_add(1, Relaxed) + 1;
    shop.max_in_flight.fetch_max(in_flight, Relaxed);
    let checkout = req.uri().path().ends_with("/checkout");
    let overloaded = in_flight > shape.limit;
    // The work goes on when the client gives up (a query does not stop because the web
    // server's caller left): the request holds its place in flight until it is done.
    let work = {
        let (shop, shape) = (shop.clone(), *shape);
        tokio::spawn(async move {
            let took = if overloaded { Duration::ZERO } else { shop.work(&shape).await };
            shop.in_flight.fetch_sub(1, Relaxed);
            if let Ok(mut served) = shop.served.lock() {
                served.push(Served { at: started.elapsed(), took, overloaded, checkout: checkout && !overloaded });
            }
        })
    };
    let _ = work.await;
    let (status, text) = match (overloaded, checkout) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "the shop is overloaded\n"),
        (false, true) => (StatusCode::OK, "your ticket is booked\n"),
        (false, false) => (StatusCode::OK, "an event page\n"),
    };
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    if checkout && !overloaded {
        response.headers_mut().insert("x-anteroom-command", HeaderValue::from_static("revoke"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_grows_with_the_cube_of_the_load() {
        let shape = Shape { base: Duration::from_millis(50), knee: 10.0, limit: 100 };
        assert_eq!(shape.latency(0, 1.0), Duration::from_millis(50));
        assert_eq!(shape.latency(10, 1.0), Duration::from_millis(100));
        assert_eq!(shape.latency(20, 1.0), Duration::from_millis(450));
        // Half the capacity: the same latency at half the load.
        assert_eq!(shape.latency(5, 0.5), Duration::from_millis(100));
        // At a 250 ms target it completes about 63 requests a second.
        let at_target = shape.throughput_at(Duration::from_millis(250), 1.0);
        assert!((62.0..64.0).contains(&at_target), "{at_target}");
    }
}
