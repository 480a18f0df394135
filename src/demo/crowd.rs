//! `anteroom demo --crowd N`: simulated buyers, so that a person opening the demo lands in
//! a moving line. Half arrive in the first two seconds (the line forms at once), the rest
//! at random moments in the first 20 s; each asks for an event page, polls
//! `/_anteroom/status` as the queue page does, and when admitted looks at the event for a
//! few seconds and buys (the shop then ends the session).

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

const FIRST_WAVE: Duration = Duration::from_secs(2);
const ARRIVAL_SPREAD: Duration = Duration::from_secs(20);

/// Starts `n` simulated buyers against the gateway at `gateway`.
pub(super) fn spawn(gateway: SocketAddr, n: usize) {
    for i in 0..n {
        tokio::spawn(async move {
            let spread = if i < n / 2 { FIRST_WAVE } else { ARRIVAL_SPREAD };
            let arrival = spread.mul_f64(fraction(i as u64 * 7919 + 17));
            tokio::time::sleep(arrival).await;
            let mut buyer = Buyer { gateway, cookies: BTreeMap::new(), seed: i as u64 + 1 };
            if let Err(e) = buyer.shop().await {
                tracing::debug!(buyer = i, error = %e, "a simulated buyer gave up");
            }
        });
    }
}

/// A pseudo-random fraction in [0, 1) from a seed (enough to spread a crowd).
fn fraction(seed: u64) -> f64 {
    let x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

struct Buyer {
    gateway: SocketAddr,
    cookies: BTreeMap<String, String>,
    seed: u64,
}

impl Buyer {
    async fn shop(&mut self) -> Result<(), String> {
        let event = 1 + self.seed % 3;
        let page = format!("/events/{event}");
        let (state, _) = self.request(Method::GET, &page).await?;
        if state.is_some() {
            // Queued: poll like the page does until it is our turn.
            loop {
                let (_, body) = self.request(Method::GET, "/_anteroom/status?room=show").await?;
                let status: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                if status["state"] == "admitted" || status["state"] == "open" {
                    break;
                }
                let wait = status["poll_after_ms"].as_u64().unwrap_or(2_000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            self.request(Method::GET, &page).await?;
        }
        self.seed = self.seed.wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(2_000 + (fraction(self.seed) * 4_000.0) as u64)).await;
        self.request(Method::POST, &format!("/checkout?event={event}")).await?;
        Ok(())
    }

    /// One request on a fresh connection, with the buyer's cookies; returns the
    /// `X-Anteroom-State` (if queued) and the body.
    async fn request(&mut self, method: Method, path: &str) -> Result<(Option<String>, Bytes), String> {
        let stream = TcpStream::connect(self.gateway).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "demo");
        if path.starts_with("/_anteroom/") {
            req = req.header(header::ACCEPT, "application/json");
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        for line in response.headers().get_all(header::SET_COOKIE) {
            let Ok(line) = line.to_str() else { continue };
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            if let Some((name, value)) = pair.split_once('=') {
                if attributes.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let state = response.headers().get("x-anteroom-state").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((state, body))
    }
}
