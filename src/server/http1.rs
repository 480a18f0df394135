//! HTTP/1 connections served in episodes, parked in between.
//!
//! hyper keeps a read buffer and a buffer for answer heads (8 KiB each) for as long as a
//! connection lives, busy or idle, and has no setting to let them go. A waiting room's
//! crowd is mostly idle connections: browsers that poll their place every half minute. So
//! a connection that has been quiet for a moment between two exchanges is *parked*: hyper
//! is asked to finish (its graceful shutdown, which on an idle connection ends it at
//! once), gives the stream back with any bytes it had read ahead, and is dropped. The
//! parked connection is the stream and a small task waiting for its next byte; that byte
//! starts a new hyper connection on the same stream. The client sees one keep-alive
//! connection throughout.

use super::gate::Gate;
use super::rewind::{Flushes, Rewound};
use super::service::{self, Exchanges};
use super::{idle::Activity, stopped, Handler, Peer, Server, Settings};
use crate::metrics::Counted;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;

/// How long a connection stays quiet between exchanges before it is parked. Short enough
/// that a crowd polling every few seconds is parked most of the time; long enough that a
/// page's burst of requests is served by one hyper connection.
pub(super) const PARK_AFTER: Duration = Duration::from_secs(1);

/// What an HTTP/2 client with prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl<H: Handler> Server<H> {
    /// Serves a connection that speaks HTTP/1 (or, on plain TCP, may turn out to speak
    /// HTTP/2 with prior knowledge, which is handed to the HTTP/2 server).
    pub(super) async fn serve_http1<I>(
        &self,
        settings: Arc<Settings>,
        mut io: I,
        peer: Peer,
        activity: Activity,
        mut shutdown: watch::Receiver<bool>,
        counted: &mut Counted,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addr = peer.addr;
        // A new connection must speak within the header timeout (hyper's header timer
        // starts with its first byte); a parked one within the idle timeout.
        let Some(mut unread) = next_bytes(&mut io, settings.handshake_timeout, &mut shutdown, true).await else {
            tracing::debug!(%addr, "closing a connection that sent nothing");
            return;
        };
        if unread.as_ref() == H2_PREFACE {
            let io = Rewound::new(io, unread, Arc::default());
            return Box::pin(self.drive(&settings, io, peer, activity, shutdown)).await;
        }
        let parked_for = settings.idle_timeout.saturating_sub(settings.park_after);
        loop {
            let episode = self.episode(&settings, io, unread, &peer, &activity, &mut shutdown);
            let Some((back, left)) = Box::pin(episode).await else { return };
            io = back;
            if left.is_empty() {
                counted.set_parked(true);
                let next = next_bytes(&mut io, parked_for, &mut shutdown, false).await;
                counted.set_parked(false);
                let Some(bytes) = next else {
                    tracing::debug!(%addr, "closing idle connection");
                    return;
                };
                unread = bytes;
            } else {
                unread = left;
            }
        }
    }

    /// One hyper connection on the stream, from the bytes in `unread` until the stream
    /// is parked (`Some`: the stream and what hyper had read ahead) or closed (`None`).
    async fn episode<I>(
        &self,
        settings: &Settings,
        io: I,
        unread: Bytes,
        peer: &Peer,
        activity: &Activity,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<(I, Bytes)>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let addr = peer.addr;
        let exchanges = Arc::new(Exchanges::default());
        let flushes = Arc::new(Flushes::default());
        let service = service::serve(self.handler.clone(), peer.clone(), Some(exchanges.clone()));
        let io = TokioIo::new(Rewound::new(io, unread, flushes.clone()));
        let mut conn = settings.http1.serve_connection(io, service).with_upgrades();
        let mut draining = *shutdown.borrow();
        if draining {
            Pin::new(&mut conn).graceful_shutdown();
        }
        let stop = stopped(shutdown);
        let idle = activity.idle_for(settings.idle_timeout);
        let quiet = async {
            loop {
                activity.idle_for(settings.park_after).await;
                if exchanges.between() && flushes.all_flushed() {
                    return;
                }
            }
        };
        tokio::pin!(stop, idle, quiet);
        // The watchers are polled only when one of them woke the task, not on every
        // wake-up the requests cause (see `gate`).
        let gate = Gate::new();
        let ended = loop {
            let watching_stop = !draining;
            let watching_quiet = !draining && !flushes.parking();
            let watched = std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    if watching_stop && stop.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Watched::Stop)
                    } else if idle.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Watched::Idle)
                    } else if watching_quiet && quiet.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Watched::Quiet)
                    } else {
                        Poll::Pending
                    }
                })
            });
            let watched = tokio::select! {
                biased;
                result = &mut conn => break result,
                watched = watched => watched,
            };
            match watched {
                Watched::Stop => {
                    draining = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
                Watched::Idle => {
                    tracing::debug!(%addr, "closing idle connection");
                    return None;
                }
                Watched::Quiet => {
                    // Idle now, so hyper ends at once and leaves the stream open.
                    flushes.park();
                    Pin::new(&mut conn).graceful_shutdown();
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(%addr, error = %e, "connection ended with an error");
            return None;
        }
        // Ended for another reason than parking (the client closed, asked to close, or
        // was upgraded), or with bytes hyper could not flush: done with the connection.
        if draining || !flushes.parking() || !flushes.all_flushed() {
            return None;
        }
        let parts = conn.into_parts()?;
        let (io, left) = parts.io.into_inner().into_parts();
        // Copied: hyper's read-ahead is a view of its whole read buffer, which would
        // otherwise stay allocated for as long as the connection is parked.
        let read_ahead = Bytes::from([&parts.read_buf[..], &left[..]].concat());
        tracing::trace!(%addr, read_ahead = read_ahead.len(), "connection parked");
        Some((io, read_ahead))
    }
}

/// What a connection's watchers saw.
enum Watched {
    /// The server drains.
    Stop,
    /// No byte moved for the idle timeout.
    Idle,
    /// Quiet between exchanges: time to park.
    Quiet,
}

/// Waits, holding no buffer but a few bytes, for the next bytes of a parked connection.
/// `None` when the client closes, fails, stays silent for `limit`, or the server drains.
///
/// On a new connection (`first`) it reads on while what came could still be the HTTP/2
/// preface, so the caller can tell the two protocols apart.
async fn next_bytes<I: AsyncRead + Unpin>(
    io: &mut I,
    limit: Duration,
    shutdown: &mut watch::Receiver<bool>,
    first: bool,
) -> Option<Bytes> {
    let read = async {
        let mut head = [0u8; H2_PREFACE.len()];
        let mut got = 0;
        loop {
            match io.read(&mut head[got..]).await {
                Ok(n) if n > 0 => got += n,
                _ => return None,
            }
            if !first || got == head.len() || head[..got] != H2_PREFACE[..got] {
                return Some(Bytes::copy_from_slice(&head[..got]));
            }
        }
    };
    tokio::select! {
        result = tokio::time::timeout(limit, read) => result.ok().flatten(),
        _ = stopped(shutdown) => None,
    }
}
