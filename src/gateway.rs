//! The per-request pipeline of the public listeners:
//! reserved paths → request limits → origin protection → proxy, with one log line each.

use crate::metrics::{Metrics, NO_RESPONSE};
use crate::protect::{Protection, ShedReason};
use crate::proxy::headers::{client_ip, is_trusted, wants_upgrade};
use crate::proxy::{Peer, Proxy};
use crate::response::{self, Body};
use crate::server::Handler;
use crate::token::TokenKeys;
use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use ipnet::IpNet;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// Paths under this prefix are anteroom's own and never reach the origin.
pub const RESERVED_PREFIX: &str = "/_anteroom/";

pub struct Gateway {
    proxy: Proxy,
    protection: Protection,
    metrics: Arc<Metrics>,
    tokens: TokenKeys,
    trusted_proxies: Vec<IpNet>,
    allow_upgrade: bool,
}

/// What happened to a request, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Forwarded,
    Delayed,
    Shed,
    Rejected,
    Reserved,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Forwarded => "forwarded",
            Decision::Delayed => "delayed",
            Decision::Shed => "shed",
            Decision::Rejected => "rejected",
            Decision::Reserved => "reserved",
        }
    }
}

impl Gateway {
    pub fn new(
        proxy: Proxy,
        protection: Protection,
        metrics: Arc<Metrics>,
        tokens: TokenKeys,
        trusted_proxies: Vec<IpNet>,
        allow_upgrade: bool,
    ) -> Self {
        Self { proxy, protection, metrics, tokens, trusted_proxies, allow_upgrade }
    }
}

impl Handler for Gateway {
    async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        // Decided once per request: used for the client address and the forwarding headers.
        let trusted = is_trusted(peer.addr.ip(), &self.trusted_proxies);
        // Behind no trusted proxy (the common case) the client is the peer, whose address
        // text is already made.
        let client: Cow<'_, str> = if trusted {
            client_ip(req.headers(), peer.addr.ip(), &self.trusted_proxies).to_string().into()
        } else {
            peer.ip_text().into()
        };
        let (response, decision) = self.decide(req, &peer, trusted).await;
        tracing::info!(
            target: "anteroom::access",
            method = method.as_str(),
            %path,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_micros() as f64 / 1000.0,
            decision = decision.as_str(),
            client = &*client,
        );
        response
    }
}

impl Gateway {
    async fn decide(&self, req: Request<Incoming>, peer: &Peer, trusted: bool) -> (Response<Body>, Decision) {
        if req.uri().path().starts_with(RESERVED_PREFIX) {
            return (self.reserved(req.uri().path()), Decision::Reserved);
        }
        let tunnel = wants_upgrade(req.headers());
        if tunnel && !self.allow_upgrade {
            let answer =
                response::text(StatusCode::NOT_IMPLEMENTED, "protocol upgrades are not enabled on this gateway");
            return (answer, Decision::Rejected);
        }
        if declared_length(&req).is_some_and(|len| len > self.proxy.max_body_bytes()) {
            let answer = response::text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            return (answer, Decision::Rejected);
        }

        let pass = match self.protection.admit().await {
            Ok(pass) => pass,
            Err(shed) => {
                self.metrics.origin_shed();
                let message = match shed.reason {
                    ShedReason::Rate => "the shop is busy; please retry shortly",
                    ShedReason::InFlight => "the shop is at capacity; please retry shortly",
                };
                return (response::unavailable(message, shed.retry_after), Decision::Shed);
            }
        };
        if pass.delayed {
            self.metrics.origin_delayed();
        }
        let decision = if pass.delayed { Decision::Delayed } else { Decision::Forwarded };

        let sent = Instant::now();
        // Boxed: the forwarding future is large, and hyper moves the request future around.
        let result = Box::pin(self.proxy.forward(req, peer, trusted, tunnel && self.allow_upgrade)).await;
        match result {
            Ok(response) => {
                self.metrics.origin_response(response.status().as_u16(), sent.elapsed());
                // The origin is busy until its body is done, so the in-flight slot is too.
                (response.map(|body| response::hold(body, pass)), decision)
            }
            Err(e) => {
                self.metrics.origin_response(NO_RESPONSE, sent.elapsed());
                tracing::warn!(error = %e, blame = e.blame(), "forwarding failed");
                (response::text(e.status(), e.public_message()), decision)
            }
        }
    }
}

impl Gateway {
    /// anteroom's own endpoints under `/_anteroom/`.
    fn reserved(&self, path: &str) -> Response<Body> {
        match path {
            "/_anteroom/jwks.json" => {
                let mut answer = Response::new(response::full(self.tokens.jwks().to_string()));
                let headers = answer.headers_mut();
                headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/jwk-set+json"));
                // Verifiers may cache it briefly; a rotation adds the new key before using it.
                headers.insert(header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
                answer
            }
            _ => response::text(StatusCode::NOT_FOUND, "no such anteroom endpoint"),
        }
    }
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
