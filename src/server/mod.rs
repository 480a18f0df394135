//! Accept loops: take an already-bound listener and a shutdown signal (so tests run on
//! port 0), serve HTTP/1.1 and HTTP/2 on each connection, cut off slow and idle clients,
//! and drain gracefully.

mod gate;
mod http1;
mod idle;
mod peer;
mod rewind;
mod service;
pub(crate) mod threads;
pub(crate) mod tls;

use crate::config::Limits;
use crate::metrics::ClientConnections;
use crate::response::Body;
use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use idle::{Activity, Tracked};
pub(crate) use peer::Peer;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
pub(crate) use threads::ServingThreads;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// Whatever answers requests on a listener: the gateway, or the admin API.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request<Incoming>, peer: Peer) -> impl Future<Output = Response<Body>> + Send;
}

pub(crate) struct Server<H> {
    handler: Arc<H>,
    connections: Arc<ClientConnections>,
    /// Read once per new connection: a reload (limits, certificate) applies to the
    /// connections accepted after it; open ones keep what they started with.
    settings: ArcSwap<Settings>,
}

/// How connections are served: the HTTP builders, TLS, and the client timeouts.
pub(crate) struct Settings {
    /// HTTP/2 (after ALPN or the prior-knowledge preface).
    builder: auto::Builder<TokioExecutor>,
    /// HTTP/1, served in episodes (see `http1`).
    http1: hyper::server::conn::http1::Builder,
    tls: Option<TlsAcceptor>,
    /// Bounds the TLS handshake, which hyper's header timer does not cover, and the wait
    /// for a new connection's first byte, which it does not cover either.
    handshake_timeout: Duration,
    idle_timeout: Duration,
    /// How long an HTTP/1 connection is quiet between exchanges before it is parked.
    park_after: Duration,
}

impl<H: Handler> Server<H> {
    /// `connections` counts the open connections (the public listeners share the
    /// metrics' counts; the admin listener keeps its own).
    pub(crate) fn new(
        handler: Arc<H>,
        limits: &Limits,
        tls: Option<TlsAcceptor>,
        connections: Arc<ClientConnections>,
    ) -> Self {
        Self { handler, connections, settings: ArcSwap::from_pointee(Settings::new(limits, tls)) }
    }

    /// Serves the connections accepted from now on with new limits and certificate.
    pub(crate) fn reconfigure(&self, limits: &Limits, tls: Option<TlsAcceptor>) {
        self.settings.store(Arc::new(Settings::new(limits, tls)));
    }

    /// Whether this server speaks TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.settings.load().tls.is_some()
    }
}

impl Settings {
    fn new(limits: &Limits, tls: Option<TlsAcceptor>) -> Self {
        // Twice the limit for the parser: a head between the two gets the gateway's 431 page
        // (in the buyer's language); only a larger one the parser's bare 431.
        let max_header_bytes = usize::try_from(limits.max_header_bytes.0).unwrap_or(usize::MAX).saturating_mul(2);
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1
            // The header timeout does nothing without a timer (hyper needs one set).
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout.0)
            .max_buf_size(max_header_bytes)
            .keep_alive(true);
        let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
        let idle_timeout = limits.idle_timeout.0;
        Self {
            builder,
            http1: h1,
            tls,
            handshake_timeout: limits.header_read_timeout.0,
            idle_timeout,
            // Well inside both limits: hyper's header timer also runs while a connection
            // waits for its next request, and would close it before it could be parked.
            park_after: http1::PARK_AFTER.min(idle_timeout / 3).min(limits.header_read_timeout.0 / 3),
        }
    }
}

impl<H: Handler> Server<H> {
    /// Serves until `shutdown` turns true, then stops accepting (new connections are
    /// refused), asks open connections to finish, and returns once they have.
    pub(crate) async fn run(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        // Each connection holds a sender; recv() returns None once all are gone.
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let server = self.clone();
                        let (shutdown, open) = (shutdown.clone(), open_tx.clone());
                        tokio::spawn(async move {
                            server.connection(stream, addr, shutdown).await;
                            drop(open);
                        });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        drop(open_tx);
        let _ = open_rx.recv().await;
    }

    async fn connection(&self, stream: TcpStream, addr: std::net::SocketAddr, shutdown: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let mut counted = self.connections.opened();
        let activity = Activity::new();
        let io = Tracked::new(stream, activity.clone());
        let settings = self.settings.load_full();
        // The handshake and the protocols' futures are boxed: a task is allocated at the
        // size of its largest state, and a parked connection should keep only what waiting
        // for its next byte needs (the handshake alone is ~3.5 KB).
        let Some(acceptor) = &settings.tls else {
            let peer = Peer::new(addr, false);
            return Box::pin(self.serve_http1(settings.clone(), io, peer, activity, shutdown, &mut counted)).await;
        };
        let Some(tls) = Box::pin(handshake(acceptor, io, settings.handshake_timeout, addr)).await else { return };
        let peer = Peer::new(addr, true);
        // The stream stays in its box. Moved out (`*tls`), it took room in the protocol's
        // future twice (as the argument, and inside hyper's connection or the parked
        // state) while the emptied box was freed only when this function returned: every
        // TLS connection held rustls's ~1.2 KB state three times.
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            Box::pin(self.drive(&settings, tls, peer, activity, shutdown)).await;
        } else {
            Box::pin(self.serve_http1(settings.clone(), tls, peer, activity, shutdown, &mut counted)).await;
        }
    }

    /// Serves HTTP/2 (one hyper connection for the connection's life).
    async fn drive<I>(
        &self,
        settings: &Settings,
        io: I,
        peer: Peer,
        activity: Activity,
        mut shutdown: watch::Receiver<bool>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addr = peer.addr;
        let service = service::boxed(service::serve(self.handler.clone(), peer, None));
        let conn = settings.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        // hyper's header timer starts with the first byte of a request; a connection that
        // never sends one would otherwise be held until the idle timeout.
        let silent = activity.silent_for(activity.count(), settings.handshake_timeout);
        let mut draining = *shutdown.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        let stop = stopped(&mut shutdown);
        let idle = activity.idle_for(settings.idle_timeout);
        tokio::pin!(silent, stop, idle);
        // Every stream's wake-up wakes this task: the watchers are polled only when one
        // of them woke it (see `gate`).
        let gate = gate::Gate::new();
        loop {
            let watching_stop = !draining;
            let watched = std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    if watching_stop && stop.as_mut().poll(cx).is_ready() {
                        Poll::Ready(None)
                    } else if idle.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Some("closing idle connection"))
                    } else if silent.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Some("closing a connection that sent nothing"))
                    } else {
                        Poll::Pending
                    }
                })
            });
            let closing = tokio::select! {
                biased;
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%addr, error = %e, "connection ended with an error");
                    }
                    return;
                }
                closing = watched => closing,
            };
            let Some(why) = closing else {
                draining = true;
                conn.as_mut().graceful_shutdown();
                continue;
            };
            tracing::debug!(%addr, "{why}");
            return;
        }
    }
}

/// A handler a reload replaces: each request is answered by the one in place when it came.
impl<H: Handler> Handler for ArcSwap<H> {
    async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<Body> {
        let current = self.load_full();
        current.handle(req, peer).await
    }
}

/// The TLS handshake, bounded by `limit`; the stream comes boxed, so that the connection's
/// task does not keep room for it.
async fn handshake(
    acceptor: &TlsAcceptor,
    io: Tracked,
    limit: Duration,
    addr: std::net::SocketAddr,
) -> Option<Box<tokio_rustls::server::TlsStream<Tracked>>> {
    match tokio::time::timeout(limit, acceptor.accept(io)).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            None
        }
    }
}

/// Resolves once the shutdown flag is set (the watch guard is not held across awaits).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
