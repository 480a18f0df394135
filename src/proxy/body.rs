//! Body wrappers on the origin's side of the forwarding path: the stall timer and
//! first-frame priming. (The client's side is in `upload.rs`.)

use crate::response::{Body, BoxError};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The origin stopped sending in the middle of a body.
#[derive(Debug, thiserror::Error)]
#[error("origin sent nothing for {0:?} in the middle of a response body")]
pub(super) struct OriginStalled(Duration);

pin_project! {
    /// The origin's body, failed when the origin sends nothing for `timeout`: a hung
    /// origin must not pin a client connection forever.
    pub struct StallTimeout<B> {
        #[pin]
        inner: B,
        #[pin]
        timer: Sleep,
        timeout: Duration,
    }
}

impl<B> StallTimeout<B> {
    pub(super) fn new(inner: B, timeout: Duration) -> Self {
        Self { inner, timer: tokio::time::sleep(timeout), timeout }
    }
}

impl<B> http_body::Body for StallTimeout<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.as_mut().reset(Instant::now() + *this.timeout);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(OriginStalled(*this.timeout))))),
                Poll::Pending => Poll::Pending,
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

/// Waits for the first frame of `body` and returns a body that yields it first.
///
/// hyper's client hands over the body only when it is polled, so a response passed on
/// untouched leaves the gateway as two writes (head, then body) — two packets and two
/// wake-ups for the client. With the first frame in hand, head and body go out in one.
/// An origin that fails before its first byte still gets a clean `502`. What is left of
/// the body after the first frame, if anything, gets a `stall` timer.
pub(super) async fn primed(mut body: Body, stall: Duration) -> Result<Body, BoxError> {
    if http_body::Body::is_end_stream(&body) {
        return Ok(body);
    }
    match body.frame().await {
        None => Ok(http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => {
            // Most responses end with their first frame: no timer needed for them.
            let rest = if http_body::Body::is_end_stream(&body) {
                body
            } else {
                StallTimeout::new(body, stall).boxed_unsync()
            };
            Ok(Primed { first: Some(first), rest }.boxed_unsync())
        }
    }
}

pin_project! {
    struct Primed {
        first: Option<Frame<Bytes>>,
        #[pin]
        rest: Body,
    }
}

impl http_body::Body for Primed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.first.take() {
            Some(first) => Poll::Ready(Some(Ok(first))),
            None => this.rest.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().and_then(|f| f.data_ref()).map_or(0, |d| d.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}
