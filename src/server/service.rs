//! The hyper service of one connection: hands each request to the handler with the peer,
//! and, on HTTP/1, keeps count of what its exchanges leave open, so the connection is
//! parked only between exchanges.

use super::{Handler, Peer};
use crate::response::Body;
use http::{Request, Response};
use hyper::body::{Body as _, Incoming};
use hyper::service::{service_fn, Service};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// The service of one connection: each request to the handler, with the peer.
///
/// The handler's future is not boxed: hyper keeps one allocation per connection for the
/// request in hand and moves each request's future into it, so a box of our own would
/// be a second allocation (of some kilobytes) on every request. An idle HTTP/1
/// connection holds neither: it is parked without hyper.
pub(super) fn serve<H: Handler>(
    handler: Arc<H>,
    peer: Peer,
    exchanges: Option<Arc<Exchanges>>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send + 'static> + Send + 'static
{
    service_fn(move |req: Request<Incoming>| {
        let (handler, peer) = (handler.clone(), peer.clone());
        let exchange = exchanges.as_ref().map(|exchanges| exchanges.started(&req));
        async move {
            let response = handler.handle(req, peer).await;
            drop(exchange);
            Ok(response)
        }
    })
}

/// [`serve`] with each request's future boxed, for HTTP/2: there every stream is a task
/// of its own, which hyper builds and tokio moves into place before it runs. Moving a
/// pointer is cheaper than moving the request's state machine (some kilobytes) each time:
/// unboxed, HTTP/2 copied twice the bytes per request.
pub(super) fn boxed<S>(
    service: S,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send + 'static> + Send + 'static
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
        + Send
        + 'static,
{
    service_fn(move |req: Request<Incoming>| Box::pin(service.call(req)))
}

/// What the requests of an HTTP/1 connection say about whether hyper can be taken off it.
#[derive(Debug, Default)]
pub(super) struct Exchanges {
    /// Requests handed to the handler and not answered yet.
    in_flight: AtomicU32,
    /// The last request came with a body: hyper may still be reading it, and only hyper
    /// knows where it ends. (The next request's head proves it was read.)
    body_open: AtomicBool,
}

impl Exchanges {
    fn started(self: &Arc<Self>, req: &Request<Incoming>) -> Exchange {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.body_open.store(!req.body().is_end_stream(), Ordering::Relaxed);
        Exchange(self.clone())
    }

    /// Whether, as far as the requests go, the connection is between exchanges.
    ///
    /// A connection that is to close (`Connection: close`, HTTP/1.0, an error) needs no
    /// check here: hyper ends it as soon as its answer is flushed, and the episode ends
    /// with it, long before a quiet second could ask for parking.
    pub(super) fn between(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && !self.body_open.load(Ordering::Relaxed)
    }
}

/// One request in flight; dropped when answered, or when hyper drops the handler's future.
struct Exchange(Arc<Exchanges>);

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
