//! The crowd's HTTP client: one pool of at most `connections` keep-alive HTTP/1.1
//! connections to the target, shared by every buyer (thousands of buyers per core need no
//! connection each: a buyer waits between requests).

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Longest one request may take, connection included: a shop slower than this has failed
/// the buyer (as a browser gives up).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    Connect,
    Timeout,
    /// The connection broke mid-exchange.
    Broken,
    /// The gateway shed the request before the shop (`503` with `X-Anteroom-Error`), as
    /// often as `Retry-After` was honoured.
    HeldBack,
}

impl Failure {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Broken => "broken",
            Failure::HeldBack => "held back by the gateway",
        }
    }
}

pub(crate) struct Pool {
    target: SocketAddr,
    host: String,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    permits: Semaphore,
}

impl Pool {
    pub(crate) fn new(target: SocketAddr, host: String, connections: usize) -> Self {
        Self { target, host, idle: Mutex::new(Vec::new()), permits: Semaphore::new(connections.max(1)) }
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Sends one request on an idle connection (or a new one) and reads the whole answer.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, Failure> {
        let Ok(_permit) = self.permits.acquire().await else { return Err(Failure::Broken) };
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, Failure> {
        let mut sender = match self.idle_connection() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = sender.send_request(req).await.map_err(|_| Failure::Broken)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|_| Failure::Broken)?.to_bytes();
        if !sender.is_closed() {
            self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sender);
        }
        Ok(Response::from_parts(parts, body))
    }

    fn idle_connection(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = TcpStream::connect(self.target).await.map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| Failure::Connect)?;
        tokio::spawn(connection);
        Ok(sender)
    }
}
