//! The upstream connection pool: keep-alive HTTP/1.1 connections to the one origin.
//!
//! Hand-rolled on hyper's connection API rather than hyper-util's general client: there is
//! a single origin (no per-host map to hash into), a connection goes back to the pool only
//! once it is truly ready for the next request — its response body has ended *and* its
//! request body has been sent whole (an origin may answer a `401`/`403` before it has read
//! a slow upload) — and a caller learns whether its connection was reused, the one case
//! where replaying an idempotent request is safe.

use crate::config::Origin;
use crate::response::{Body, BoxError};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

pub(super) struct Pool {
    shared: Arc<Shared>,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
}

struct Shared {
    /// Idle connections, most recently used last (LIFO keeps the warmest ones busy).
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
    max_idle: usize,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// A connection checked out for one request.
pub(super) struct Conn {
    sender: SendRequest<Body>,
    /// Whether it served an earlier request (see the module docs on replays).
    pub reused: bool,
    pool: Weak<Shared>,
    /// Set once the request body has been sent whole (`None`: the request had none).
    request_sent: Option<Arc<AtomicBool>>,
}

/// How long a pooled connection may take to say it is ready before it is given up: an
/// idle connection is ready at once, so waiting longer would only be waiting on a
/// connection that is still busy.
const READY_WAIT: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
}

impl Pool {
    pub(super) fn new(origin: &Origin, tls: Option<TlsConnector>) -> Self {
        let url = &origin.url;
        let https = url.scheme_str() == Some("https");
        let host = url.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = match (https, tls, ServerName::try_from(host.clone())) {
            (true, Some(connector), Ok(name)) => Some((connector, name)),
            _ => None,
        };
        let shared = Arc::new(Shared {
            idle: Mutex::new(Vec::new()),
            idle_timeout: origin.pool_idle_timeout.0,
            max_idle: origin.pool_max_idle,
        });
        spawn_reaper(Arc::downgrade(&shared));
        Self { shared, host, port, tls, connect_timeout: origin.connect_timeout.0 }
    }

    /// A ready connection: an idle one if any is still open, else a new one.
    pub(super) async fn checkout(&self) -> Result<Conn, ConnectError> {
        while let Some(mut idle) = self.shared.pop_idle() {
            // An idle connection is ready at once: polled once without a timer, as this
            // runs for every request. One that is not gets a moment (see READY_WAIT),
            // never more.
            let ready = {
                let mut ready = std::pin::pin!(idle.sender.ready());
                match std::future::poll_fn(|cx| Poll::Ready(ready.as_mut().poll(cx))).await {
                    Poll::Ready(result) => result.is_ok(),
                    Poll::Pending => matches!(tokio::time::timeout(READY_WAIT, ready).await, Ok(Ok(()))),
                }
            };
            if ready {
                return Ok(self.conn(idle.sender, true));
            }
        }
        // Boxed: connecting (TCP, TLS, hyper's handshake) is a large state machine, and
        // inline it would be room in every request's future, allocated and moved on each
        // request, though nearly all of them find an idle connection.
        let sender = Box::pin(tokio::time::timeout(self.connect_timeout, self.connect()))
            .await
            .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
        Ok(self.conn(sender, false))
    }

    fn conn(&self, sender: SendRequest<Body>, reused: bool) -> Conn {
        Conn { sender, reused, pool: Arc::downgrade(&self.shared), request_sent: None }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, ConnectError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => handshake(connector.connect(name.clone(), tcp).await?).await,
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Body>, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "origin connection ended with an error");
        }
    });
    Ok(sender)
}

impl Shared {
    fn pop_idle(&self) -> Option<Idle> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(candidate) = idle.pop() {
            if now.duration_since(candidate.since) < self.idle_timeout && !candidate.sender.is_closed() {
                return Some(candidate);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle { sender, since: Instant::now() });
        }
    }

    fn reap(&self) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.retain(|c| now.duration_since(c.since) < self.idle_timeout && !c.sender.is_closed());
    }
}

/// Closes idle connections past `pool_idle_timeout`, so that the origin's keep-alive
/// timer never closes one under a request.
fn spawn_reaper(shared: Weak<Shared>) {
    let Some(period) = shared.upgrade().map(|s| (s.idle_timeout / 2).max(Duration::from_millis(100))) else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match shared.upgrade() {
                Some(shared) => shared.reap(),
                None => return,
            }
        }
    });
}

impl Conn {
    /// Sends one request; the connection goes back to the pool when the response has ended
    /// and the request body has been sent whole.
    pub(super) async fn send(mut self, req: http::Request<Body>) -> Result<http::Response<Released>, hyper::Error> {
        let req = if http_body::Body::is_end_stream(req.body()) {
            req
        } else {
            let sent = Arc::new(AtomicBool::new(false));
            self.request_sent = Some(sent.clone());
            req.map(|body| Sending { inner: body, sent }.boxed_unsync())
        };
        let response = self.sender.send_request(req).await?;
        let (parts, body) = response.into_parts();
        let mut body = Released { inner: body, conn: Some(self) };
        if http_body::Body::is_end_stream(&body.inner) {
            // No body to wait for (204, 304, HEAD, Content-Length: 0).
            Released::release(&mut body.conn);
        }
        Ok(http::Response::from_parts(parts, body))
    }
}

pin_project! {
    /// The origin's response body; hands its connection back to the pool at the end.
    pub struct Released {
        #[pin]
        inner: Incoming,
        conn: Option<Conn>,
    }
}

impl Released {
    fn release(conn: &mut Option<Conn>) {
        let Some(conn) = conn.take() else { return };
        // An origin that answered before reading the whole request body is still being
        // sent to: that connection is not ready for anyone else. Dropping our handle lets
        // it finish the upload, then close.
        let sent = conn.request_sent.as_ref().is_none_or(|sent| sent.load(Ordering::Acquire));
        if let (true, Some(pool)) = (sent, conn.pool.upgrade()) {
            pool.put(conn.sender);
        }
    }
}

pin_project! {
    /// The request body on its way to the origin; notes when it has been sent whole.
    struct Sending {
        #[pin]
        inner: Body,
        sent: Arc<AtomicBool>,
    }
}

impl http_body::Body for Sending {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        // hyper stops polling a body of known length after its last byte, so the end is
        // also taken from is_end_stream.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            _ => false,
        };
        if ended {
            this.sent.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl http_body::Body for Released {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            // A body with a known length is over with its last byte: callers may not poll
            // again, so hand the connection back now.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => Self::release(this.conn),
            Poll::Ready(None) => Self::release(this.conn),
            // A broken body: the connection is not reusable; dropping it closes it.
            Poll::Ready(Some(Err(_))) => drop(this.conn.take()),
            _ => {}
        }
        polled.map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
