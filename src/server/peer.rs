//! What the accept loop knows about the connection a request came in on.

use http::HeaderValue;
use std::net::SocketAddr;

/// What the server knows about the connection a request came in on.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
    /// The peer's IP as text, made once per connection rather than once per request.
    ip_text: HeaderValue,
}

impl Peer {
    /// A listener on `[::]` sees IPv4 clients as `::ffff:a.b.c.d`: the address is kept in
    /// its IPv4 form, so IPv4 CIDR rules (bypass, trusted proxies) match it.
    pub(crate) fn new(addr: SocketAddr, tls: bool) -> Self {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let text = addr.ip().to_string();
        let ip_text = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"));
        Self { addr, tls, ip_text }
    }

    /// The address as a header value (`X-Forwarded-For` of a direct client).
    pub(crate) fn ip_header(&self) -> &HeaderValue {
        &self.ip_text
    }

    pub(crate) fn ip_text(&self) -> &str {
        self.ip_text.to_str().unwrap_or("unknown")
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}
