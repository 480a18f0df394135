//! The admin listener: liveness, readiness and metrics. Never served on the public port.

use crate::metrics::Metrics;
use crate::proxy::Peer;
use crate::response::{self, full, Body};
use crate::server::Handler;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `/readyz` reports: false while draining, so load balancers stop sending traffic,
/// and while the store is unreachable.
pub struct Health {
    draining: AtomicBool,
    store_reachable: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self { draining: AtomicBool::new(false), store_reachable: AtomicBool::new(true) }
    }
}

impl Health {
    /// Updated by the room tickers after every store call; returns whether it changed.
    pub fn set_store_reachable(&self, reachable: bool) -> bool {
        self.store_reachable.swap(reachable, Ordering::AcqRel) != reachable
    }

    pub fn is_store_reachable(&self) -> bool {
        self.store_reachable.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

pub struct Admin {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Admin {
    pub fn new(metrics: Arc<Metrics>, health: Arc<Health>) -> Self {
        Self { metrics, health }
    }

    fn answer(&self, method: &Method, path: &str) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return response::text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        match path {
            "/healthz" => response::text(StatusCode::OK, "ok"),
            "/readyz" if self.health.is_draining() => response::text(StatusCode::SERVICE_UNAVAILABLE, "draining"),
            "/readyz" if !self.health.is_store_reachable() => {
                response::text(StatusCode::SERVICE_UNAVAILABLE, "store unreachable")
            }
            "/readyz" => response::text(StatusCode::OK, "ready"),
            "/metrics" => {
                let mut response = Response::new(full(self.metrics.render()));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
                response
            }
            _ => response::text(StatusCode::NOT_FOUND, "unknown admin path"),
        }
    }
}

impl Handler for Admin {
    async fn handle(&self, req: Request<Incoming>, _peer: Peer) -> Response<Body> {
        self.answer(req.method(), req.uri().path())
    }
}

/// Asks a running gateway's admin listener for `/healthz` (blocking, 2 s budget). An
/// unspecified listen address (`0.0.0.0`) is reached through loopback.
pub fn probe_health(admin: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut target = admin;
    if target.ip().is_unspecified() {
        target.set_ip(if admin.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let budget = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&target, budget).map_err(|e| format!("{target}: {e}"))?;
    stream.set_read_timeout(Some(budget)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(budget)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    match answer.lines().next() {
        Some(status) if status.starts_with("HTTP/1.1 200") => Ok(()),
        other => Err(format!("{target} answered {:?}", other.unwrap_or(""))),
    }
}
