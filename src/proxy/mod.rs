//! Forwarding to the origin: builds the upstream request, sends it through the pooled
//! client, and turns the origin's answer (or failure) into the client's response.

mod body;
mod client;
pub(crate) mod headers;
mod pool;
mod tunnel;
pub(crate) mod upload;

pub(crate) use client::ClientError;

use crate::blame::Blame;
use crate::config::{Config, HostHeader};
use crate::problem::Problem;
use crate::response::{empty, Body, BoxError};
use crate::server::Peer;
use body::primed;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use pool::{Pool, Released};
use std::time::Duration;
use upload::{UploadError, UploadLimits};

pub(crate) struct Proxy {
    pool: Pool,
    origin_host: HeaderValue,
    host_header: HostHeader,
    response_timeout: Duration,
    uploads: UploadLimits,
}

/// Why a forwarded request got no usable answer; each maps to one status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("cannot connect to the origin: {0}")]
    Connect(#[source] BoxError),
    #[error("the origin did not answer within {0:?}")]
    Timeout(Duration),
    /// The client's request body failed (too slow, malformed, too large) while it was
    /// being sent on: the origin never got a whole request.
    #[error("{detail}")]
    Upload { status: StatusCode, message: &'static str, detail: String },
    #[error("the origin broke the exchange: {0}")]
    Broken(#[source] BoxError),
}

impl ProxyError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::Connect(_) | ProxyError::Broken(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upload { status, .. } => *status,
        }
    }

    /// The answer's kind, when it is one anteroom renders as a page or JSON.
    pub(crate) fn problem(&self) -> Option<Problem> {
        match self {
            ProxyError::Connect(_) | ProxyError::Broken(_) => Some(Problem::ShopUnreachable),
            ProxyError::Timeout(_) => Some(Problem::ShopTimeout),
            ProxyError::Upload { status, .. } => {
                (*status == StatusCode::PAYLOAD_TOO_LARGE).then_some(Problem::BodyTooLarge)
            }
        }
    }

    /// What the client is told; details stay in the log.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) | ProxyError::Broken(_) => Problem::ShopUnreachable.message(),
            ProxyError::Timeout(_) => Problem::ShopTimeout.message(),
            ProxyError::Upload { message, .. } => message,
        }
    }

    /// Who caused it: the client (fix the request) or the origin (try later).
    pub(crate) fn blame(&self) -> Blame {
        match self {
            ProxyError::Upload { .. } => Blame::Client,
            _ => Blame::Origin,
        }
    }
}

impl From<&UploadError> for ProxyError {
    fn from(e: &UploadError) -> Self {
        ProxyError::Upload { status: e.status(), message: e.public_message(), detail: e.to_string() }
    }
}

impl Proxy {
    pub(crate) fn new(config: &Config) -> Result<Self, ClientError> {
        let url = &config.origin.url;
        // validate() guarantees an authority; fall back to something inert regardless.
        let authority = url.authority().map_or("localhost", |a| a.as_str());
        let origin_host = HeaderValue::from_str(authority).unwrap_or(HeaderValue::from_static("localhost"));
        Ok(Self {
            pool: client::build(&config.origin)?,
            origin_host,
            host_header: config.origin.host_header,
            response_timeout: config.origin.response_timeout.0,
            uploads: UploadLimits::new(&config.limits),
        })
    }

    pub(crate) fn uploads(&self) -> UploadLimits {
        self.uploads
    }

    /// Forwards `req` to the origin. `trusted`: the peer is one of `listen.trusted_proxies`
    /// (its forwarding headers are kept). `tunnel` allows `Upgrade` (WebSocket) passthrough.
    /// `prepare` adds what the layers above want the origin to see, once the client's
    /// hop-by-hop headers are gone (so that none of them can name the added ones).
    pub(crate) async fn forward(
        &self,
        mut req: Request<Body>,
        peer: &Peer,
        trusted: bool,
        tunnel: bool,
        prepare: impl FnOnce(&mut http::HeaderMap),
    ) -> Result<Response<Body>, ProxyError> {
        let client_upgrade = tunnel.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
        let client_host = client_host(&parts.uri, &parts.headers);

        headers::strip_hop_by_hop(&mut parts.headers);
        prepare(&mut parts.headers);
        headers::set_forwarding(&mut parts.headers, peer, trusted, client_host.as_ref());
        let host = match (self.host_header, client_host) {
            (HostHeader::Preserve, Some(host)) => host,
            _ => self.origin_host.clone(),
        };
        parts.headers.insert(header::HOST, host);
        if let (Some(_), Some(proto)) = (&client_upgrade, upgrade_value) {
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto);
        }
        // Origin-form request target; the upstream connection is HTTP/1.1 whatever the
        // client spoke.
        parts.uri = origin_form(&parts.uri);
        parts.version = Version::HTTP_11;

        let replayable = is_idempotent(&parts.method) && http_body::Body::is_end_stream(&body);
        let upstream = Request::from_parts(parts, body);
        let failed = SendError::into_proxy_error;
        // Pinned in place rather than moved into a Timeout: the exchange future is large,
        // and moving it costs a memcpy on every request.
        let exchange = self.exchange(upstream, replayable);
        tokio::pin!(exchange);
        let deadline = tokio::time::sleep(self.response_timeout);
        tokio::pin!(deadline);
        let mut response = tokio::select! {
            biased;
            result = &mut exchange => result.map_err(failed)?,
            () = &mut deadline => return Err(ProxyError::Timeout(self.response_timeout)),
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return match client_upgrade {
                Some(client_upgrade) => Ok(tunnel::splice(client_upgrade, response)),
                // The client did not ask for a tunnel we allow: never pass a 101 through.
                None => Err(ProxyError::Broken("origin switched protocols unasked".into())),
            };
        }
        headers::strip_hop_by_hop(response.headers_mut());
        let (parts, body) = response.into_parts();
        // The first frame still falls under the response deadline.
        let body = tokio::select! {
            biased;
            primed = primed(body.boxed_unsync(), self.response_timeout) => primed.map_err(ProxyError::Broken)?,
            () = &mut deadline => return Err(ProxyError::Timeout(self.response_timeout)),
        };
        Ok(Response::from_parts(parts, body))
    }

    /// One exchange with the origin. A request with no body and an idempotent method is
    /// sent once more on a fresh connection if a reused one turns out to have been closed
    /// by the origin under our feet (its keep-alive timer raced ours).
    async fn exchange(&self, req: Request<Body>, replayable: bool) -> Result<Response<Released>, SendError> {
        let conn = self.pool.checkout().await.map_err(|e| SendError::Connect(e.into()))?;
        let reused = conn.reused;
        let replay = (replayable && reused).then(|| (req.method().clone(), req.uri().clone(), req.headers().clone()));
        match conn.send(req).await {
            Ok(response) => Ok(response),
            Err(e) => match (classify(e, reused), replay) {
                // Boxed, as rare: room for a second exchange in every request's future
                // would be allocated and moved on each request.
                (SendError::Closed(_), Some(replay)) => Box::pin(self.replay(replay)).await,
                (error, _) => Err(error),
            },
        }
    }

    /// The idempotent request sent again on a fresh connection.
    async fn replay(
        &self,
        (method, uri, headers): (Method, Uri, http::HeaderMap),
    ) -> Result<Response<Released>, SendError> {
        tracing::debug!("origin closed a pooled connection; replaying the idempotent request once");
        let mut again = Request::new(empty());
        *again.method_mut() = method;
        *again.uri_mut() = uri;
        *again.headers_mut() = headers;
        let conn = self.pool.checkout().await.map_err(|e| SendError::Connect(e.into()))?;
        conn.send(again).await.map_err(|e| classify(e, false))
    }
}

enum SendError {
    Connect(BoxError),
    /// The client's body failed while it was being sent.
    Upload(ProxyError),
    /// A reused connection closed before any response: safe to replay an idempotent request.
    Closed(BoxError),
    Other(BoxError),
}

impl SendError {
    fn into_proxy_error(self) -> ProxyError {
        match self {
            SendError::Connect(e) => ProxyError::Connect(e),
            SendError::Upload(e) => e,
            SendError::Closed(e) | SendError::Other(e) => ProxyError::Broken(e),
        }
    }
}

fn classify(e: hyper::Error, reused: bool) -> SendError {
    if let Some(upload) = UploadError::find(&e) {
        return SendError::Upload(upload.into());
    }
    let connection_gone = e.is_incomplete_message() || e.is_canceled() || e.is_closed();
    if reused && connection_gone {
        SendError::Closed(Box::new(e))
    } else {
        SendError::Other(Box::new(e))
    }
}

/// The path and query alone: what an HTTP/1.1 request line to the origin carries.
fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query().map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()))
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// The host the client addressed: `Host`, or the URI authority (HTTP/2 `:authority`).
fn client_host(uri: &Uri, headers: &http::HeaderMap) -> Option<HeaderValue> {
    headers.get(header::HOST).cloned().or_else(|| uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
}
