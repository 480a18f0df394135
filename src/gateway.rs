//! The per-request pipeline of the public listeners: reserved paths → request limits →
//! room (bypass, token, queue) → origin protection → proxy, with one log line each.

use crate::adaptive::Outcome;
use crate::blame::Blame;
use crate::config::Limits;
use crate::metrics::{Decision, Metrics, NO_RESPONSE};
use crate::problem::{Asked, Problem};
use crate::protect::{Protection, ShedReason};
use crate::proxy::headers::{client_ip, is_trusted, wants_upgrade};
use crate::proxy::{upload, Proxy};
use crate::response::{self, Body};
use crate::room::{Admission, Answered, WaitingRoom, RESERVED_PREFIX};
use crate::server::{Handler, Peer};
use crate::telemetry::Access;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use ipnet::IpNet;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// `Allow` of the 405 answer to `CONNECT`: every method is forwarded but that one.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

pub(crate) struct Gateway {
    /// Shared with the gateway a reload replaces this one with, when `[origin]` and
    /// `[limits]` stay as they were: the pool and the origin's budget carry on.
    proxy: Arc<Proxy>,
    protection: Arc<Protection>,
    metrics: Arc<Metrics>,
    waiting: Arc<WaitingRoom>,
    trusted_proxies: Vec<IpNet>,
    allow_upgrade: bool,
    /// `limits.max_header_bytes`: a larger head gets the 431 page (the HTTP parser's own
    /// limit is twice this, so that the answer can be a page rather than a bare status).
    max_header_bytes: u64,
}

impl Gateway {
    pub(crate) fn new(
        proxy: Arc<Proxy>,
        protection: Arc<Protection>,
        metrics: Arc<Metrics>,
        waiting: Arc<WaitingRoom>,
        trusted_proxies: Vec<IpNet>,
        limits: &Limits,
    ) -> Self {
        metrics.set_in_flight_limit(protection.in_flight_limit());
        let (allow_upgrade, max_header_bytes) = (limits.allow_upgrade, limits.max_header_bytes.0);
        Self { proxy, protection, metrics, waiting, trusted_proxies, allow_upgrade, max_header_bytes }
    }
}

impl Handler for Gateway {
    async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        // A clone of the URI shares its bytes: the path for the log line costs no copy.
        let uri = req.uri().clone();
        // Decided once per request: used for the client address and the forwarding headers.
        let trusted = is_trusted(peer.addr.ip(), &self.trusted_proxies);
        // Behind no trusted proxy (the common case) the client is the peer, whose address
        // text is already made.
        let client_addr =
            if trusted { client_ip(req.headers(), peer.addr.ip(), &self.trusted_proxies) } else { peer.addr.ip() };
        let client: Cow<'_, str> = if trusted { client_addr.to_string().into() } else { peer.ip_text().into() };
        let (response, decision) = self.decide(req, &peer, trusted, client_addr).await;
        self.metrics.request(decision);
        Access {
            method: method.as_str(),
            path: uri.path(),
            status: response.status().as_u16(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            decision: decision.as_str(),
            client: &client,
        }
        .log();
        response
    }
}

impl Gateway {
    async fn decide(
        &self,
        req: Request<Incoming>,
        peer: &Peer,
        trusted: bool,
        client: IpAddr,
    ) -> (Response<Body>, Decision) {
        if req.method() == Method::CONNECT {
            // A gateway to one shop is no tunnel to anywhere; and the origin would get a
            // CONNECT it never expected.
            let mut answer = response::text(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not served by this gateway");
            answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            return (answer, Decision::Rejected);
        }
        if header_bytes(&req) > self.max_header_bytes {
            let asked = Asked::of(req.method(), req.headers());
            return (self.waiting.problem(Problem::HeadersTooLarge, &asked, None), Decision::Rejected);
        }
        if req.uri().path().starts_with(RESERVED_PREFIX) {
            // Boxed: the queue API's future is four-fifths of this one's size, and every
            // proxied request would otherwise carry (and copy) room for it.
            return (Box::pin(self.waiting.reserved(req, peer.tls, client)).await, Decision::Reserved);
        }
        let tunnel = wants_upgrade(req.headers());
        if tunnel && !self.allow_upgrade {
            let answer =
                response::text(StatusCode::NOT_IMPLEMENTED, "protocol upgrades are not enabled on this gateway");
            return (answer, Decision::Rejected);
        }
        if declared_length(&req).is_some_and(|len| len > self.proxy.uploads().max_bytes) {
            let asked = Asked::of(req.method(), req.headers());
            return (self.waiting.problem(Problem::BodyTooLarge, &asked, None), Decision::Rejected);
        }
        let ticket = match self.waiting.admission(&req, client, peer.tls).await {
            Admission::Forward(ticket) => ticket,
            Admission::Answer(answer, Answered::Queued) => return (answer, Decision::Queued),
            Admission::Answer(answer, Answered::Rejected) => return (answer, Decision::Rejected),
        };

        // Kept for an error answer after the request has gone on.
        let asked = Asked::of(req.method(), req.headers());
        // The body (if small) is read before a slot is taken: a client trickling it holds
        // no slot meanwhile.
        let req = if http_body::Body::is_end_stream(req.body()) {
            upload::without_body(req)
        } else {
            match Box::pin(upload::read_ahead(req, self.proxy.uploads())).await {
                Ok(req) => req,
                Err(e) => {
                    tracing::info!(error = %e, blame = %Blame::Client, "request body refused");
                    let answer = match e.problem() {
                        Some(problem) => self.waiting.problem(problem, &asked, None),
                        None => response::text(e.status(), e.public_message()),
                    };
                    return (answer, Decision::Rejected);
                }
            }
        };
        // The room's signals time a request from here: a wait for an origin slot is part
        // of what a struggling shop costs a buyer.
        let arrived = Instant::now();
        let in_flight = ticket.in_flight();
        let pass = match self.protection.admit().await {
            Ok(pass) => pass,
            Err(shed) => {
                self.metrics.origin_shed();
                ticket.note_shed();
                let problem = match shed.reason {
                    ShedReason::Rate => Problem::ShopBusy,
                    ShedReason::InFlight => Problem::ShopAtCapacity,
                };
                return (self.waiting.problem(problem, &asked, Some(shed.retry_after)), Decision::Shed);
            }
        };
        if pass.delayed {
            self.metrics.origin_delayed();
            ticket.note_delayed();
        }
        let decision = match (ticket.admitted_now(), pass.delayed) {
            (true, _) => Decision::Admitted,
            (false, true) => Decision::Delayed,
            (false, false) => Decision::Forwarded,
        };

        let sent = Instant::now();
        let prepare = |headers: &mut http::HeaderMap| ticket.prepare(headers);
        let result = self.proxy.forward(req, peer, trusted, tunnel && self.allow_upgrade, prepare).await;
        drop(in_flight);
        match result {
            Ok(mut response) => {
                let (status, latency) = (response.status().as_u16(), sent.elapsed());
                self.metrics.origin_response(status, latency);
                if status < 500 {
                    self.observe_origin(latency);
                }
                ticket.note_origin(Outcome::Answered { status, latency: arrived.elapsed() });
                ticket.finish(&mut response).await;
                // The origin is busy until its body is done, so the in-flight slot is too.
                (response.map(|body| response::hold(body, pass)), decision)
            }
            Err(e) => {
                self.metrics.origin_response(NO_RESPONSE, sent.elapsed());
                self.observe_origin(sent.elapsed());
                ticket.note_origin(Outcome::Failed { after: arrived.elapsed() });
                tracing::warn!(error = %e, blame = %e.blame(), "forwarding failed");
                let answer = match e.problem() {
                    Some(problem) => self.waiting.problem(problem, &asked, None),
                    None => response::text(e.status(), e.public_message()),
                };
                (answer, decision)
            }
        }
    }
}

impl Gateway {
    /// An origin round trip, for the adaptive in-flight limit.
    fn observe_origin(&self, rtt: std::time::Duration) {
        if let Some(limit) = self.protection.observe(rtt) {
            self.metrics.set_in_flight_limit(limit);
        }
    }
}

/// The size of the request's head as `limits.max_header_bytes` counts it: the target and
/// every header line.
fn header_bytes<B>(req: &Request<B>) -> u64 {
    let lines: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    (req.uri().path_and_query().map_or(0, |p| p.as_str().len()) + lines) as u64
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
