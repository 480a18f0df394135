//! A sale in a test: a crowd of buyers against a gateway, each behaving as the queue page
//! does (take the queue cookie, poll the status at `poll_after_ms` until admitted), then
//! shopping (an event page, a moment's thought, the checkout), retrying a failed request
//! after `Retry-After` a few times before giving up — what real buyers do.

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

#[derive(Clone, Debug)]
pub struct Crowd {
    pub buyers: usize,
    /// Arrivals are spread evenly over this time.
    pub arrive_over: Duration,
    pub room: &'static str,
    /// The protected page every buyer asks for first.
    pub page: &'static str,
    pub checkout: &'static str,
    /// Between the page and the checkout.
    pub think: Duration,
    /// Failed requests a buyer retries before giving up.
    pub retries: u32,
    /// Buyers not admitted by then stop waiting (counted as never admitted).
    pub give_up_after: Duration,
}

impl Crowd {
    pub fn new(buyers: usize, arrive_over: Duration) -> Self {
        Self {
            buyers,
            arrive_over,
            room: "sale",
            page: "/shop/event",
            checkout: "/shop/checkout",
            think: Duration::from_millis(200),
            retries: 3,
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// What became of one buyer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    CheckedOut,
    /// Admitted, then failed: the shop or the gateway refused them more often than they
    /// would retry (the worst outcome: they had waited their turn).
    FailedInside(String),
    NeverAdmitted(String),
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub checked_out: usize,
    pub failed_inside: Vec<String>,
    pub never_admitted: Vec<String>,
    /// 5xx answers admitted buyers saw (retried or not).
    pub errors_inside: usize,
}

impl Outcome {
    /// One line for a failure message: counts, and the first few reasons.
    pub fn summary(&self) -> String {
        let first = |reasons: &[String]| reasons.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        format!(
            "checked out {}, failed inside {} ({}), never admitted {} ({}), errors seen inside {}",
            self.checked_out,
            self.failed_inside.len(),
            first(&self.failed_inside),
            self.never_admitted.len(),
            first(&self.never_admitted),
            self.errors_inside
        )
    }
}

/// Runs the crowd against the gateway at `addr` and waits for every buyer.
pub async fn run(addr: SocketAddr, crowd: &Crowd) -> Outcome {
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let buyers: Vec<_> = (0..crowd.buyers)
        .map(|i| {
            let crowd = crowd.clone();
            let errors = errors.clone();
            let arrival = crowd.arrive_over.mul_f64(i as f64 / crowd.buyers.max(1) as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until((started + arrival).into()).await;
                let mut buyer = Buyer { addr, cookies: BTreeMap::new(), connection: None, errors };
                buyer.buy(&crowd).await
            })
        })
        .collect();
    let mut outcome = Outcome::default();
    for buyer in buyers {
        match buyer.await.unwrap_or_else(|e| Fate::FailedInside(format!("buyer panicked: {e}"))) {
            Fate::CheckedOut => outcome.checked_out += 1,
            Fate::FailedInside(why) => outcome.failed_inside.push(why),
            Fate::NeverAdmitted(why) => outcome.never_admitted.push(why),
        }
    }
    outcome.errors_inside = errors.load(std::sync::atomic::Ordering::Relaxed);
    outcome
}

struct Buyer {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
    connection: Option<SendRequest<Empty<Bytes>>>,
    errors: Arc<std::sync::atomic::AtomicUsize>,
}

struct Reply {
    status: StatusCode,
    queued: bool,
    retry_after: Option<Duration>,
    body: Bytes,
}

impl Buyer {
    async fn buy(&mut self, crowd: &Crowd) -> Fate {
        let deadline = Instant::now() + crowd.give_up_after;
        let first = match self.request(Method::GET, crowd.page, false).await {
            Ok(reply) => reply,
            Err(e) => return Fate::NeverAdmitted(e),
        };
        if first.queued {
            let status_path = format!("/_anteroom/status?room={}", crowd.room);
            loop {
                let reply = match self.request(Method::GET, &status_path, true).await {
                    Ok(reply) => reply,
                    Err(e) => return Fate::NeverAdmitted(e),
                };
                let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                if status["state"] == "admitted" || status["state"] == "open" {
                    break;
                }
                if Instant::now() > deadline {
                    return Fate::NeverAdmitted(format!("still {} at the deadline", status["state"]));
                }
                let wait = status["poll_after_ms"].as_u64().unwrap_or(1_000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            if let Err(why) = self.inside(Method::GET, crowd.page, crowd).await {
                return Fate::FailedInside(why);
            }
        } else if !first.status.is_success() {
            return Fate::NeverAdmitted(format!("first request answered {}", first.status));
        }
        tokio::time::sleep(crowd.think).await;
        match self.inside(Method::POST, crowd.checkout, crowd).await {
            Ok(()) => Fate::CheckedOut,
            Err(why) => Fate::FailedInside(why),
        }
    }

    /// A request of an admitted buyer, retried after failures as a person would.
    async fn inside(&mut self, method: Method, path: &str, crowd: &Crowd) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..=crowd.retries {
            match self.request(method.clone(), path, false).await {
                Ok(reply) if reply.queued => return Err(format!("{path}: sent back to the line")),
                Ok(reply) if reply.status.is_success() => return Ok(()),
                Ok(reply) => {
                    self.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    last = format!("{path}: {}", reply.status);
                    tokio::time::sleep(reply.retry_after.unwrap_or(Duration::from_secs(1))).await;
                }
                Err(e) => {
                    self.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    last = format!("{path}: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        Err(last)
    }

    async fn request(&mut self, method: Method, path: &str, json: bool) -> Result<Reply, String> {
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "shop.example");
        req = req.header(header::ACCEPT, if json { "application/json" } else { "text/html" });
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        // As a browser does: a request that fails on a kept-alive connection (the server
        // closed it, idle too long between polls; the close raced the request and shows as
        // a reset, a cancel or an incomplete message) is sent again on a new one — once.
        let reused = self.connection.is_some();
        let response = match self.connection().await?.send_request(req.clone()).await {
            Ok(response) => response,
            Err(_) if reused => {
                self.connection = None;
                self.connection().await?.send_request(req).await.map_err(|e| {
                    self.connection = None;
                    format!("request failed: {e}")
                })?
            }
            Err(e) => {
                self.connection = None;
                return Err(format!("request failed: {e}"));
            }
        };
        super::jar::take_cookies(&mut self.cookies, response.headers())?;
        let status = response.status();
        let queued = response.headers().contains_key("x-anteroom-state");
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(|secs: u64| Duration::from_secs(secs.clamp(1, 5)));
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply { status, queued, retry_after, body })
    }

    async fn connection(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, String> {
        if let Some(sender) = self.connection.as_mut() {
            if sender.ready().await.is_err() {
                self.connection = None;
            }
        }
        if self.connection.is_none() {
            let stream = TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            self.connection = Some(sender);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }
}

/// The shop's own numbers over the steady state of a sale: from `settle` after its first
/// request to its last checkout.
#[derive(Debug)]
pub struct ShopNumbers {
    pub requests: usize,
    pub overloaded: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub checkouts_per_second: f64,
    pub from: Duration,
    pub to: Duration,
}

pub fn steady_state(served: &[anteroom::demo::fragile::Served], settle: Duration) -> ShopNumbers {
    let start = served.iter().map(|s| s.at).min().unwrap_or_default() + settle;
    let end = served.iter().filter(|s| s.checkout).map(|s| s.at).max().unwrap_or_default().max(start);
    numbers(served, start, end)
}

/// The shop's own numbers over everything it finished.
pub fn whole_sale(served: &[anteroom::demo::fragile::Served]) -> ShopNumbers {
    let start = served.iter().map(|s| s.at).min().unwrap_or_default();
    let end = served.iter().map(|s| s.at).max().unwrap_or_default();
    numbers(served, start, end)
}

fn numbers(served: &[anteroom::demo::fragile::Served], start: Duration, end: Duration) -> ShopNumbers {
    let window: Vec<_> = served.iter().filter(|s| s.at >= start && s.at <= end).collect();
    let mut took: Vec<Duration> = window.iter().filter(|s| !s.overloaded).map(|s| s.took).collect();
    took.sort();
    let quantile = |q: f64| took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1))).copied();
    let checkouts = window.iter().filter(|s| s.checkout).count();
    let span = (end - start).as_secs_f64().max(0.001);
    ShopNumbers {
        requests: window.len(),
        overloaded: window.iter().filter(|s| s.overloaded).count(),
        p50: quantile(0.5).unwrap_or_default(),
        p90: quantile(0.9).unwrap_or_default(),
        checkouts_per_second: checkouts as f64 / span,
        from: start,
        to: end,
    }
}
