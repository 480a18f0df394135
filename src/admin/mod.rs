//! The admin listener: liveness, readiness, metrics, and the room controls. Never served
//! on the public port.
//!
//! - [`rooms`]  `/admin/rooms…`: live stats, pause/resume, rate and capacity (bearer token)
//! - [`client`] the other end, for `anteroom admin` and `anteroom healthcheck`

pub mod client;
mod rooms;

use crate::config::Secret;
use crate::metrics::Metrics;
use crate::proxy::Peer;
use crate::response::{self, full, Body};
use crate::room::WaitingRoom;
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
    waiting: Arc<WaitingRoom>,
    /// Bearer token of `/admin/…`; without one the room controls are off.
    token: Option<Secret>,
}

impl Admin {
    pub fn new(metrics: Arc<Metrics>, health: Arc<Health>, waiting: Arc<WaitingRoom>, token: Option<Secret>) -> Self {
        Self { metrics, health, waiting, token }
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
        if req.uri().path() == "/admin" || req.uri().path().starts_with("/admin/") {
            return self.rooms(req).await;
        }
        self.answer(req.method(), req.uri().path())
    }
}
