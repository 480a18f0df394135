//! A browser-like visitor: one keep-alive connection, a cookie jar, and helpers for the
//! waiting-room API.

use super::client::Answer;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::net::TcpStream;

pub struct Visitor {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
    /// Ask for JSON instead of the queue page (as apps and the page's script do).
    pub json: bool,
    /// Sent as `X-Forwarded-For` (a client behind a proxy).
    pub forwarded_for: Option<String>,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Visitor {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, cookies: BTreeMap::new(), json: false, forwarded_for: None, connection: None }
    }

    pub fn json(addr: SocketAddr) -> Self {
        Self { json: true, ..Self::new(addr) }
    }

    /// The same cookies, talking to another gateway instance.
    pub fn moved_to(&self, addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: self.cookies.clone(),
            json: self.json,
            forwarded_for: self.forwarded_for.clone(),
            connection: None,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.request(Method::GET, path).await
    }

    pub async fn post(&mut self, path: &str) -> Answer {
        self.request(Method::POST, path).await
    }

    /// `GET /_anteroom/status?room=ROOM` as JSON.
    pub async fn status(&mut self, room: &str) -> serde_json::Value {
        let answer = self.get(&format!("/_anteroom/status?room={room}")).await;
        serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", answer.body_text()))
    }

    /// Takes a place in the room protecting `path`: the first request brings the queue
    /// cookie, the second (with it) the place. A visitor let in (forwarded to the shop)
    /// reads as `{"state": "admitted"}`; otherwise the status object.
    pub async fn join(&mut self, path: &str) -> serde_json::Value {
        let json = std::mem::replace(&mut self.json, true);
        let mut answer = self.get(path).await;
        if answer.header("x-anteroom-state").is_some() {
            answer = self.get(path).await;
        }
        self.json = json;
        if answer.header("x-anteroom-state").is_none() {
            return serde_json::json!({ "state": "admitted", "body": answer.body_text() });
        }
        serde_json::from_slice(&answer.body).expect("status JSON")
    }

    /// `POST /_anteroom/join?room=ROOM` with a form body (`pow=…&challenge=…`), as JSON.
    pub async fn join_with(&mut self, room: &str, form: &str) -> Answer {
        let mut builder = Request::post(format!("/_anteroom/join?room={room}"))
            .header("host", "shop.example")
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header("cookie", jar.join("; "));
        }
        let answer = self.send(builder.body(Full::new(Bytes::from(form.to_owned()))).expect("request")).await;
        super::jar::take_cookies(&mut self.cookies, &answer.headers).unwrap_or_else(|e| panic!("{e}"));
        answer
    }

    /// In a room with a proof-of-work challenge: asks for the challenge, solves it, and
    /// joins with the solution. Returns the join's status object.
    pub async fn solve_and_join(&mut self, room: &str) -> serde_json::Value {
        let status = self.status(room).await;
        assert_eq!(status["state"], "challenge", "{status}");
        let (prefix, difficulty) = challenge_of(&status);
        let nonce = anteroom::solve_challenge(&prefix, difficulty);
        let answer = self.join_with(room, &format!("pow={nonce}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body_text());
        serde_json::from_slice(&answer.body).expect("status JSON")
    }

    /// Polls the room's status (every 100 ms) until the visitor is admitted.
    pub async fn wait_until_admitted(&mut self, room: &str, within: std::time::Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let status = self.status(room).await;
            if status["state"] == "admitted" {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "not admitted within {within:?}: {status}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub async fn request(&mut self, method: Method, path: &str) -> Answer {
        let mut builder = Request::builder().method(method).uri(path).header("host", "shop.example");
        if self.json {
            builder = builder.header("accept", "application/json");
        }
        if let Some(chain) = &self.forwarded_for {
            builder = builder.header("x-forwarded-for", chain);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header("cookie", jar.join("; "));
        }
        let req = builder.body(Full::new(Bytes::new())).expect("request");
        let answer = self.send(req).await;
        super::jar::take_cookies(&mut self.cookies, &answer.headers).unwrap_or_else(|e| panic!("{e}"));
        answer
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Answer {
        for _ in 0..3 {
            if self.connection.as_ref().is_none_or(|c| c.is_closed()) {
                let stream = TcpStream::connect(self.addr).await.expect("connect");
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::spawn(conn);
                self.connection = Some(sender);
            }
            let sender = self.connection.as_mut().expect("connection");
            if sender.ready().await.is_err() {
                self.connection = None;
                continue;
            }
            match sender.send_request(req.clone()).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await.expect("body").to_bytes();
                    return Answer { status: parts.status, headers: parts.headers, body };
                }
                Err(_) => self.connection = None,
            }
        }
        panic!("the gateway did not answer");
    }
}

/// The challenge of a status object: its prefix and difficulty.
pub fn challenge_of(status: &serde_json::Value) -> (String, u8) {
    let challenge = &status["challenge"];
    let prefix = challenge["prefix"].as_str().unwrap_or_else(|| panic!("no challenge: {status}")).to_owned();
    (prefix, challenge["difficulty"].as_u64().expect("difficulty") as u8)
}
