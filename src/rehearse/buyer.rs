//! One simulated buyer: arrives, opens the protected page, waits in line as the queue
//! page does (polling at `poll_after_ms`, solving a challenge), maybe gives up, and once
//! inside clicks through the script, honouring `Retry-After`. Every request is written
//! down with its time, so the report can say what the shop saw and whether the line was
//! fair.

use super::client::{Failure, Pool};
use super::script::Script;
use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body_util::Full;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// `Retry-After` is honoured this many times per step before the step counts as failed.
const RETRIES: usize = 3;

/// What the crowd shares: the pool, the script, the clock the report's times count from.
pub(crate) struct Crowd {
    pub pool: Pool,
    pub script: Script,
    pub started: Instant,
    /// No buyer goes on past this.
    pub deadline: Instant,
    /// The crowd now, for the progress line.
    pub now: Progress,
}

/// Counters every buyer moves as their visit goes on.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub arrived: AtomicU64,
    pub in_line: AtomicI64,
    pub inside: AtomicI64,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub shop_requests: AtomicU64,
}

/// How a buyer's visit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every step of the script answered.
    Done,
    /// Gave up while waiting (the `--abandon` share of the crowd).
    GaveUp,
    /// The room was closed, or refused the buyer a place.
    Turned(String),
    /// A step failed for good: a status (5xx) or no answer (`connect`, `timeout`, `broken`).
    Failed(String),
    /// Still waiting or shopping when the rehearsal's time was up.
    Unfinished,
}

/// A request that went to the shop (through the gateway, or straight).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    /// Since the rehearsal began.
    pub at_ms: u64,
    pub latency_ms: f64,
    /// The answer's status, or 0 when there was none.
    pub status: u16,
    pub failure: Option<Failure>,
}

/// One buyer's account.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// How late the generator let the buyer start against their due time.
    pub late_ms: u64,
    /// Sent the first request: no place of theirs can be older.
    pub first_sent_ms: u64,
    /// A place in line was confirmed (the first answer with a position) — it was there
    /// at the latest by then.
    pub placed_ms: Option<u64>,
    /// The last poll that found them still waiting was sent then.
    pub last_waiting_ms: Option<u64>,
    /// Their turn was seen (or they walked in) by then.
    pub admitted_ms: Option<u64>,
    pub polls: u64,
    pub shop: Vec<Sent>,
    /// Requests the gateway held back from the shop (shed with `Retry-After`).
    pub held_back: u64,
    pub outcome: Outcome,
}

/// A buyer's cookies, as a browser keeps them for one site.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, response: &Response<Bytes>) {
        for value in response.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, rest)) = value.split_once('=') else { continue };
            let cookie_value = rest.split(';').next().unwrap_or("").to_owned();
            if value.contains("Max-Age=0") || cookie_value.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), cookie_value);
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }
}

/// What one answer of the line said.
struct Said {
    state: String,
    room: String,
    position: Option<u64>,
    poll_after: Duration,
    challenge: Option<(String, u8)>,
}

impl Said {
    fn of(response: &Response<Bytes>) -> Option<Self> {
        let json: serde_json::Value = serde_json::from_slice(response.body()).ok()?;
        Some(Self {
            state: json["state"].as_str()?.to_owned(),
            room: json["room"].as_str().unwrap_or_default().to_owned(),
            position: json["position"].as_u64(),
            poll_after: Duration::from_millis(json["poll_after_ms"].as_u64().unwrap_or(1_000).clamp(100, 60_000)),
            challenge: json["challenge"]["prefix"]
                .as_str()
                .zip(json["challenge"]["difficulty"].as_u64())
                .map(|(prefix, bits)| (prefix.to_owned(), u8::try_from(bits).unwrap_or(u8::MAX))),
        })
    }
}

struct Buyer<'a> {
    crowd: &'a Crowd,
    jar: Jar,
    record: Record,
    /// Counted in the progress line as in line / inside.
    in_line: bool,
    inside: bool,
}

impl Buyer<'_> {
    fn placed(&mut self, at_ms: u64) {
        if self.record.placed_ms.is_none() {
            self.record.placed_ms = Some(at_ms);
            self.in_line = true;
            self.crowd.now.in_line.fetch_add(1, Relaxed);
        }
    }

    fn admitted(&mut self) {
        if self.record.admitted_ms.is_none() {
            self.record.admitted_ms = Some(self.ms());
            self.leave_line();
            self.inside = true;
            self.crowd.now.inside.fetch_add(1, Relaxed);
        }
    }

    fn leave_line(&mut self) {
        if std::mem::take(&mut self.in_line) {
            self.crowd.now.in_line.fetch_sub(1, Relaxed);
        }
    }

    fn ms(&self) -> u64 {
        u64::try_from(self.crowd.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn request(&mut self, method: Method, path: &str, body: Option<&str>) -> Result<Response<Bytes>, Failure> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.crowd.pool.host())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "anteroom-rehearse");
        if let Some(cookies) = self.jar.header() {
            req = req.header(header::COOKIE, cookies);
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default().to_owned()))).map_err(|_| Failure::Broken)?;
        let answer = self.crowd.pool.send(req).await;
        if let Ok(response) = &answer {
            self.jar.take(response);
        }
        answer
    }

    /// A request that may reach the shop, sent again after `Retry-After` (up to
    /// `RETRIES` times): what the line said, if it answered, or the request that failed.
    async fn shop_request(&mut self, method: Method, path: &str, body: Option<&str>) -> Result<Option<Said>, Sent> {
        let mut tries = 0;
        loop {
            match self.once(method.clone(), path, body).await {
                Err((_, Some(wait))) if tries < RETRIES => {
                    tries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err((sent, _)) => return Err(sent),
                Ok(said) => return Ok(said),
            }
        }
    }

    /// One such request, written down unless the line answered it; a failure comes with
    /// the wait `Retry-After` asks for.
    async fn once(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Option<Said>, (Sent, Option<Duration>)> {
        let at_ms = self.ms();
        let started = Instant::now();
        let answer = self.request(method, path, body).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match answer {
            Ok(response) if response.headers().contains_key("x-anteroom-state") => Ok(Said::of(&response)),
            // The gateway held the request back (no origin slot within `max_wait`): it
            // never reached the shop, and the buyer comes back after `Retry-After`.
            Ok(response) if held_back(&response) => {
                self.record.held_back += 1;
                let sent =
                    Sent { at_ms, latency_ms, status: response.status().as_u16(), failure: Some(Failure::HeldBack) };
                Err((sent, Some(retry_after(&response).map_or(Duration::from_secs(1), Duration::from_secs))))
            }
            Ok(response) => {
                let sent = Sent { at_ms, latency_ms, status: response.status().as_u16(), failure: None };
                self.record.shop.push(sent);
                self.crowd.now.shop_requests.fetch_add(1, Relaxed);
                match (response.status().as_u16(), retry_after(&response)) {
                    (503 | 429, Some(secs)) => Err((sent, Some(Duration::from_secs(secs.clamp(1, 60))))),
                    (status, _) if status >= 500 => Err((sent, None)),
                    _ => Ok(None),
                }
            }
            Err(failure) => {
                let sent = Sent { at_ms, latency_ms, status: 0, failure: Some(failure) };
                self.record.shop.push(sent);
                self.crowd.now.shop_requests.fetch_add(1, Relaxed);
                Err((sent, None))
            }
        }
    }
}

/// Lives one buyer's visit: due `due` after the start; gives up after waiting
/// `patience` (none: never).
pub(crate) async fn live(crowd: &Crowd, due: Duration, patience: Option<Duration>) -> Record {
    tokio::time::sleep_until(crowd.started + due).await;
    let due_ms = u64::try_from(due.as_millis()).unwrap_or(u64::MAX);
    let mut buyer = Buyer {
        crowd,
        jar: Jar::default(),
        in_line: false,
        inside: false,
        record: Record {
            late_ms: 0,
            first_sent_ms: 0,
            placed_ms: None,
            last_waiting_ms: None,
            admitted_ms: None,
            polls: 0,
            shop: Vec::new(),
            held_back: 0,
            outcome: Outcome::Unfinished,
        },
    };
    crowd.now.arrived.fetch_add(1, Relaxed);
    let now = buyer.ms();
    buyer.record.late_ms = now.saturating_sub(due_ms);
    buyer.record.first_sent_ms = now;
    let outcome = tokio::time::timeout_at(crowd.deadline, visit(&mut buyer, patience)).await;
    buyer.record.outcome = outcome.unwrap_or(Outcome::Unfinished);
    buyer.leave_line();
    let now = &crowd.now;
    if buyer.inside {
        now.inside.fetch_sub(1, Relaxed);
    }
    let finished = if buyer.record.outcome == Outcome::Done { &now.done } else { &now.failed };
    finished.fetch_add(1, Relaxed);
    buyer.record
}

async fn visit(buyer: &mut Buyer<'_>, patience: Option<Duration>) -> Outcome {
    // The crowd outlives the buyer: its script is borrowed, not copied per visit.
    let crowd = buyer.crowd;
    let script = &crowd.script;
    let first = &script.steps[0];
    let mut waiting_since: Option<Instant> = None;
    let mut said = match buyer.shop_request(Method::GET, &first.path, None).await {
        Ok(said) => said,
        Err(sent) => return failed(&sent),
    };
    // In line until the page reaches the shop.
    while let Some(line) = said {
        let sent_ms = buyer.ms();
        let next = match line.state.as_str() {
            "waiting" | "paused" | "scheduled" => {
                if line.position.is_some() {
                    buyer.placed(sent_ms);
                }
                let since = *waiting_since.get_or_insert_with(Instant::now);
                let left = patience.map(|patience| patience.saturating_sub(since.elapsed()));
                if left.is_some_and(|left| left.is_zero()) {
                    return Outcome::GaveUp;
                }
                // No place yet (the first answer brings the cookie): ask again at once.
                if line.position.is_some() || line.state != "waiting" {
                    // A person gives up when their patience ends, not at the next poll.
                    tokio::time::sleep(left.map_or(line.poll_after, |left| left.min(line.poll_after))).await;
                    if patience.is_some_and(|patience| since.elapsed() >= patience) {
                        return Outcome::GaveUp;
                    }
                }
                Next::Poll
            }
            "challenge" => match &line.challenge {
                Some((prefix, bits)) => {
                    let nonce = crate::room::challenge::solve(prefix, *bits);
                    Next::Join(nonce)
                }
                None => return Outcome::Failed("challenge without a prefix".to_owned()),
            },
            "admitted" | "open" => Next::Enter,
            other => return Outcome::Turned(other.to_owned()),
        };
        let room = line.room.clone();
        said = match next {
            Next::Poll => {
                let polled_ms = buyer.ms();
                buyer.record.polls += 1;
                match buyer.request(Method::GET, &format!("/_anteroom/status?room={room}"), None).await {
                    Ok(response) => {
                        let said = Said::of(&response);
                        if said.as_ref().is_some_and(|s| s.state == "waiting") {
                            buyer.record.last_waiting_ms = Some(polled_ms);
                            if said.as_ref().is_some_and(|s| s.position.is_some()) {
                                let at_ms = buyer.ms();
                                buyer.placed(at_ms);
                            }
                        }
                        said
                    }
                    // The page backs off and tries again.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        Some(line)
                    }
                }
            }
            Next::Join(nonce) => {
                let path = format!("/_anteroom/join?room={room}&pow={nonce}");
                match buyer.request(Method::POST, &path, None).await {
                    Ok(response) => Said::of(&response),
                    Err(_) => return Outcome::Failed("join".to_owned()),
                }
            }
            Next::Enter => {
                buyer.admitted();
                match buyer.shop_request(Method::GET, &first.path, None).await {
                    Ok(said) => said,
                    Err(sent) => return failed(&sent),
                }
            }
        };
    }
    buyer.admitted();
    // Inside: the rest of the script.
    tokio::time::sleep(first.think).await;
    for step in &script.steps[1..] {
        if let Err(sent) = buyer.shop_request(step.method.clone(), &step.path, step.body.as_deref()).await {
            return failed(&sent);
        }
        tokio::time::sleep(step.think).await;
    }
    Outcome::Done
}

enum Next {
    Poll,
    Join(u64),
    Enter,
}

/// `Retry-After` in seconds, as anteroom and most shops give it.
fn retry_after(response: &Response<Bytes>) -> Option<u64> {
    response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// anteroom's own "the shop is busy / at capacity" (`X-Anteroom-Error`): the request was
/// shed at the gateway, not answered by the shop.
fn held_back(response: &Response<Bytes>) -> bool {
    response.headers().get("x-anteroom-error").is_some_and(|code| code == "shop_busy" || code == "shop_at_capacity")
}

fn failed(sent: &Sent) -> Outcome {
    Outcome::Failed(match sent.failure {
        Some(failure) => failure.label().to_owned(),
        None => format!("status {}", sent.status),
    })
}
