//! A real in-test origin that records every request it receives.
//!
//! Behaviour is chosen by path, so each test reads as the request it makes:
//! `/slow/MS`, `/hang`, `/bytes/N` (streams N bytes), `/upload` (counts the body),
//! `/early` (answers `403` at once, reading the body only afterwards, as Node and nginx
//! do), `/ws` (answers `101` and echoes bytes), `…/revoke` (`200` with
//! `X-Anteroom-Command: revoke`, as a shop does after checkout), anything else: `200 hello`.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    /// Bytes of body received (for `/upload`, the whole body; otherwise not read).
    pub body_len: u64,
    /// For `/upload`: whether the body ended properly (a truncated one ends in an error).
    pub body_complete: bool,
}

#[derive(Clone, Default)]
pub struct Origin {
    pub addr: Option<SocketAddr>,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

type Body = BoxBody<Bytes, Infallible>;

impl Origin {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An `https://` origin.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Self {
        Self::start_with(Some(acceptor)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let origin = Origin { addr: Some(listener.local_addr().expect("addr")), ..Default::default() };
        let served = origin.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                served.connections.fetch_add(1, Ordering::SeqCst);
                let served = served.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let served = served.clone();
                        async move { Ok::<_, Infallible>(served.answer(req).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                        }
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        origin
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr.expect("started"))
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.expect("started").port())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The most requests the origin ever had open at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    async fn answer(&self, mut req: Request<Incoming>) -> Response<Body> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let path = req.uri().path().to_owned();
        let upgrade = (path == "/ws").then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let mut body_len = 0;
        let mut body_complete = false;
        if path == "/upload" {
            let mut body = body;
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => body_len += frame.data_ref().map_or(0, |d| d.len() as u64),
                    Some(Err(_)) => break,
                    None => {
                        body_complete = true;
                        break;
                    }
                }
            }
        } else if path == "/early" {
            // Answer first; the body is read (and dropped) afterwards.
            let mut body = body;
            tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
        }
        self.seen.lock().expect("lock").push(Seen {
            method: parts.method.clone(),
            uri: parts.uri.to_string(),
            version: parts.version,
            headers: parts.headers.clone(),
            body_len,
            body_complete,
        });
        let response = self.respond(&path, body_len, upgrade).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        response
    }

    async fn respond(&self, path: &str, body_len: u64, upgrade: Option<hyper::upgrade::OnUpgrade>) -> Response<Body> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["slow", ms] => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(100))).await;
                text(StatusCode::OK, "slow hello")
            }
            ["hang"] => std::future::pending().await,
            ["bytes", n] => stream_bytes(n.parse().unwrap_or(0)),
            ["upload"] => text(StatusCode::OK, &body_len.to_string()),
            ["early"] => text(StatusCode::FORBIDDEN, "not for you"),
            [.., "revoke"] => {
                let mut r = text(StatusCode::OK, "thank you for your order");
                r.headers_mut().insert("x-anteroom-command", "revoke".parse().expect("value"));
                r
            }
            ["ws"] => {
                if let Some(upgrade) = upgrade {
                    tokio::spawn(async move {
                        if let Ok(io) = upgrade.await {
                            let (mut r, mut w) = tokio::io::split(TokioIo::new(io));
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                    });
                }
                Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .body(Full::new(Bytes::new()).boxed())
                    .expect("response")
            }
            _ => {
                let mut r = text(StatusCode::OK, "hello");
                r.headers_mut().insert("connection", "x-origin-private".parse().expect("value"));
                r.headers_mut().insert("x-origin-private", "hop".parse().expect("value"));
                r.headers_mut().insert("keep-alive", "timeout=5".parse().expect("value"));
                r
            }
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())).boxed());
    *r.status_mut() = status;
    r
}

/// Streams `total` bytes in 64 KiB chunks without ever holding them all.
fn stream_bytes(total: u64) -> Response<Body> {
    let mut r = Response::new(Repeat::new(total).boxed());
    r.headers_mut().insert("content-length", total.into());
    r
}

/// A body of `left` bytes of `x`, produced chunk by chunk.
pub struct Repeat {
    left: u64,
    chunk: Bytes,
}

impl Repeat {
    pub fn new(total: u64) -> Self {
        Self { left: total, chunk: Bytes::from(vec![b'x'; 64 * 1024]) }
    }
}

impl hyper::body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}
