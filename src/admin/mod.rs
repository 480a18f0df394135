//! The admin listener: liveness, readiness, metrics, and the room controls. Never served
//! on the public port.
//!
//! - [`rooms`]  `/admin/rooms…`: live stats, pause/resume, rate and capacity (bearer token)
//! - [`client`] the other end, for `anteroom admin` and `anteroom healthcheck`

pub mod client;
mod console;
mod rooms;
mod visitors;

use crate::config::Secret;
use crate::metrics::Metrics;
use crate::response::{self, full, Body};
use crate::room::WaitingRoom;
use crate::server::Handler;
use crate::server::Peer;
use arc_swap::ArcSwap;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `/readyz` reports: not ready until the gateway serves and knows its rooms' state,
/// and not ready while draining, so load balancers stop sending traffic. A store outage
/// does not make an instance unready: every instance shares the store, so a readiness
/// probe that followed it would take them all out at once, while token holders can keep
/// shopping and newcomers get the `on_failure` answer.
#[derive(Debug, Default)]
pub struct Health {
    started: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
pub struct Admin {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The rooms and the token now: a reload replaces both.
    current: ArcSwap<Current>,
    /// The console's last minutes.
    history: console::history::History,
}

/// What the admin API answers with since the last (re)load.
#[derive(Debug)]
struct Current {
    waiting: Arc<WaitingRoom>,
    /// Bearer token of `/admin/…`; without one the room controls are off.
    token: Option<Secret>,
}

impl Admin {
    pub fn new(metrics: Arc<Metrics>, health: Arc<Health>, waiting: Arc<WaitingRoom>, token: Option<Secret>) -> Self {
        let history = console::history::History::default();
        Self { metrics, health, current: ArcSwap::from_pointee(Current { waiting, token }), history }
    }

    /// Samples the console's charts every 2 s until aborted.
    pub fn spawn_history(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let admin = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(console::history::EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                admin.history.record(&admin.metrics, &admin.waiting());
            }
        })
    }

    /// After a reload: the new rooms and token answer from the next call on.
    pub fn reload(&self, waiting: Arc<WaitingRoom>, token: Option<Secret>) {
        self.current.store(Arc::new(Current { waiting, token }));
    }

    fn waiting(&self) -> Arc<WaitingRoom> {
        self.current.load().waiting.clone()
    }

    /// The store (the same across reloads).
    fn store(&self) -> Arc<crate::store::Store> {
        self.current.load().waiting.store.clone()
    }

    fn answer(&self, method: &Method, path: &str) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return response::text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        match path {
            "/healthz" => response::text(StatusCode::OK, "ok"),
            "/readyz" => self.readiness(),
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

impl Admin {
    /// `/readyz`: the status says whether to send traffic; the body also says how the
    /// store is doing (which `anteroom_store_up` tells monitoring).
    fn readiness(&self) -> Response<Body> {
        let store = match (self.metrics.is_store_up(), self.waiting().store.backend()) {
            (true, backend) => format!("store: {backend}, reachable"),
            (false, backend) => {
                format!("store: {backend}, unreachable (token holders keep shopping; newcomers get store.on_failure)")
            }
        };
        let (status, state) = if self.health.is_draining() {
            (StatusCode::SERVICE_UNAVAILABLE, "draining")
        } else if !self.health.is_started() {
            (StatusCode::SERVICE_UNAVAILABLE, "starting")
        } else {
            (StatusCode::OK, "ready")
        };
        response::text(status, &format!("{state}\n{store}"))
    }
}

impl Handler for Admin {
    async fn handle(&self, req: Request<Incoming>, _peer: Peer) -> Response<Body> {
        let path = req.uri().path();
        if path == "/admin/console" || path.starts_with("/admin/console/") {
            return self.console(req).await;
        }
        if path == "/admin" || path.starts_with("/admin/") {
            return self.rooms(req).await;
        }
        self.answer(req.method(), req.uri().path())
    }
}
