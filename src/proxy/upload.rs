//! The client's request body on its way to the origin.
//!
//! A client that trickles its body must not hold what the origin has little of: its
//! in-flight slots. So a body up to `limits.body_buffer_bytes` is read whole *before* the
//! request takes a slot, and a larger one is streamed only while it keeps coming: no pause
//! longer than `limits.body_read_timeout`, and no slower on average than
//! `limits.min_upload_rate` once it streams. Every failure of the body is the client's
//! (a stall, a malformed chunked encoding, a body past `max_body_bytes`), and says so, so
//! that the client gets `408`/`400`/`413` rather than a `502` that blames the origin.

use crate::config::Limits;
use crate::response::{Body, BoxError};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What the upload limits allow, from `[limits]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UploadLimits {
    pub buffer_bytes: u64,
    pub max_bytes: u64,
    pub read_timeout: Duration,
    /// Bytes per second; 0: no floor.
    pub min_rate: u64,
}

impl UploadLimits {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            buffer_bytes: limits.body_buffer_bytes.0,
            max_bytes: limits.max_body_bytes.0,
            read_timeout: limits.body_read_timeout.0,
            min_rate: limits.min_upload_rate.0,
        }
    }
}

/// Why a request body could not be read; all of them are the client's doing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("the client sent nothing for {0:?} in the middle of its request body")]
    Stalled(Duration),
    #[error("the client sent its request body slower than {0} bytes/s")]
    TooSlow(u64),
    #[error("the client's request body is malformed or was cut off: {0}")]
    Malformed(#[source] hyper::Error),
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
}

impl UploadError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UploadError::Stalled(_) | UploadError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            UploadError::Malformed(_) => StatusCode::BAD_REQUEST,
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The answer's kind, when it is one anteroom renders as a page or JSON.
    pub(crate) fn problem(&self) -> Option<crate::problem::Problem> {
        matches!(self, UploadError::TooLarge(_)).then_some(crate::problem::Problem::BodyTooLarge)
    }

    /// What the client is told.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            UploadError::Stalled(_) | UploadError::TooSlow(_) => "the request body came too slowly",
            UploadError::Malformed(_) => "malformed request body",
            UploadError::TooLarge(_) => crate::problem::Problem::BodyTooLarge.message(),
        }
    }

    /// The error behind a failed exchange with the origin, if the client's body caused it.
    pub(crate) fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a UploadError> {
        let mut source = Some(error);
        while let Some(err) = source {
            if let Some(upload) = err.downcast_ref::<UploadError>() {
                return Some(upload);
            }
            source = err.source();
        }
        None
    }
}

/// A request without a body (most of them): nothing to read, nothing to watch.
pub(crate) fn without_body(req: Request<Incoming>) -> Request<Body> {
    req.map(|body| body.map_err(BoxError::from).boxed_unsync())
}

/// Reads a small body whole (or the first `buffer_bytes` of a large one) before the
/// request goes on; the body handed back yields what was read, then the rest.
pub(crate) async fn read_ahead(req: Request<Incoming>, limits: UploadLimits) -> Result<Request<Body>, UploadError> {
    let (parts, body) = req.into_parts();
    let mut body = Watched::new(body, limits);
    let mut read = VecDeque::new();
    let mut buffered = 0u64;
    while buffered <= limits.buffer_bytes {
        match body.frame().await {
            None => {
                let whole = Replay { read, rest: None }.boxed_unsync();
                return Ok(Request::from_parts(parts, whole));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                buffered += frame.data_ref().map_or(0, |d| d.len() as u64);
                read.push_back(frame);
            }
        }
    }
    // Larger than the buffer: the rest streams while the request holds a slot.
    Ok(Request::from_parts(parts, Replay { read, rest: Some(body) }.boxed_unsync()))
}

pin_project! {
    /// The client's body with its pause timer, rate floor and size cap.
    struct Watched {
        #[pin]
        inner: Incoming,
        // Boxed: the body moves (into the request) after it has been polled.
        timer: Pin<Box<Sleep>>,
        limits: UploadLimits,
        received: u64,
        started: Instant,
    }
}

impl Watched {
    fn new(inner: Incoming, limits: UploadLimits) -> Self {
        let timer = Box::pin(tokio::time::sleep(limits.read_timeout));
        Self { inner, timer, limits, received: 0, started: Instant::now() }
    }

    /// The next deadline, and whether it is the rate floor's (else the pause limit's): the
    /// floor is the moment the average since the start would fall under `min_rate`, with
    /// one pause's grace.
    fn deadline(limits: &UploadLimits, received: u64, started: Instant) -> (Instant, bool) {
        let pause = Instant::now() + limits.read_timeout;
        if limits.min_rate == 0 {
            return (pause, false);
        }
        let earned = Duration::from_secs_f64(received as f64 / limits.min_rate as f64);
        let floor = started + limits.read_timeout + earned;
        if floor < pause {
            (floor, true)
        } else {
            (pause, false)
        }
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = UploadError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, UploadError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.received += frame.data_ref().map_or(0, |d| d.len() as u64);
                if *this.received > this.limits.max_bytes {
                    return Poll::Ready(Some(Err(UploadError::TooLarge(this.limits.max_bytes))));
                }
                let (deadline, _) = Self::deadline(this.limits, *this.received, *this.started);
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(UploadError::Malformed(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    let (_, floor) = Self::deadline(this.limits, *this.received, *this.started);
                    Poll::Ready(Some(Err(if floor {
                        UploadError::TooSlow(this.limits.min_rate)
                    } else {
                        UploadError::Stalled(this.limits.read_timeout)
                    })))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// What was read ahead, then (for a large body) the rest of it.
    struct Replay {
        read: VecDeque<Frame<Bytes>>,
        #[pin]
        rest: Option<Watched>,
    }
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(frame) = this.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match this.rest.as_pin_mut() {
            Some(rest) => rest.poll_frame(cx).map_err(BoxError::from),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.read.iter().filter_map(|f| f.data_ref()).map(|d| d.len() as u64).sum();
        match &self.rest {
            None => SizeHint::with_exact(read),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + read);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + read);
                }
                hint
            }
        }
    }
}
