//! The hyper service of one connection: hands each request to the handler with the peer,
//! and, on HTTP/1, keeps count of what its exchanges leave open, so the connection is
//! parked only between exchanges.

use super::{Handler, Peer};
use crate::response::Body;
use http::header::CONNECTION;
use http::{HeaderMap, Request, Response, Version};
use hyper::body::{Body as _, Incoming};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

pub(super) struct Serve<H> {
    handler: Arc<H>,
    peer: Peer,
    exchanges: Option<Arc<Exchanges>>,
}

impl<H> Serve<H> {
    pub(super) fn new(handler: Arc<H>, peer: Peer, exchanges: Option<Arc<Exchanges>>) -> Self {
        Self { handler, peer, exchanges }
    }
}

/// Boxed: hyper's HTTP/1 dispatcher keeps room for the service's future in every
/// connection, idle or not. A box costs one allocation per request instead of the whole
/// request's state machine per open connection.
type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<H: Handler> hyper::service::Service<Request<Incoming>> for Serve<H> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let (handler, peer) = (self.handler.clone(), self.peer.clone());
        let exchange = self.exchanges.as_ref().map(|exchanges| exchanges.started(&req));
        Box::pin(async move {
            let response = handler.handle(req, peer).await;
            if let Some(exchange) = exchange {
                exchange.answered(&response);
            }
            Ok(response)
        })
    }
}

/// What the requests of an HTTP/1 connection say about whether hyper can be taken off it.
#[derive(Debug, Default)]
pub(super) struct Exchanges {
    /// Requests handed to the handler and not answered yet.
    in_flight: AtomicU32,
    /// The last request came with a body: hyper may still be reading it, and only hyper
    /// knows where it ends. (The next request's head proves it was read.)
    body_open: AtomicBool,
    /// A request or answer asked to close the connection, or the client speaks HTTP/1.0:
    /// hyper closes it, and it must not be served again.
    closing: AtomicBool,
}

impl Exchanges {
    fn started(self: &Arc<Self>, req: &Request<Incoming>) -> Exchange {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.body_open.store(!req.body().is_end_stream(), Ordering::Relaxed);
        if req.version() < Version::HTTP_11 || asks_to_close(req.headers()) {
            self.closing.store(true, Ordering::Relaxed);
        }
        Exchange(self.clone())
    }

    /// Whether, as far as the requests go, the connection is between exchanges.
    pub(super) fn between(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && !self.body_open.load(Ordering::Relaxed)
            && !self.closing.load(Ordering::Relaxed)
    }
}

/// One request in flight; dropped when answered, or when hyper drops the handler's future.
struct Exchange(Arc<Exchanges>);

impl Exchange {
    fn answered(&self, response: &Response<Body>) {
        if asks_to_close(response.headers()) {
            self.0.closing.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn asks_to_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|value| {
        value.to_str().is_ok_and(|tokens| tokens.split(',').any(|token| token.trim().eq_ignore_ascii_case("close")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn close_is_found_among_the_connection_tokens() {
        let mut headers = HeaderMap::new();
        assert!(!asks_to_close(&headers));
        headers.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!asks_to_close(&headers));
        headers.append(CONNECTION, HeaderValue::from_static("Upgrade, CLOSE"));
        assert!(asks_to_close(&headers));
    }
}
