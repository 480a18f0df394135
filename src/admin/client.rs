//! The client side of the admin listener, for the CLI (`anteroom healthcheck`,
//! `anteroom admin …`): one HTTP/1.1 exchange through hyper, 2 s budget in all (container
//! images have no curl). The listener is found from the gateway's config, or named by URL
//! from an ops laptop that has no config at all.

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

const BUDGET: Duration = Duration::from_secs(2);

/// Where the admin listener is: a host and port, and the path it is mounted under (an
/// ops proxy may serve it below a prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTarget {
    host: String,
    port: u16,
    prefix: String,
}

impl AdminTarget {
    /// The listener a config names; an unspecified address (0.0.0.0) is reached through
    /// loopback.
    pub fn local(mut admin: SocketAddr) -> Self {
        if admin.ip().is_unspecified() {
            admin.set_ip(if admin.is_ipv4() { [127, 0, 0, 1].into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        let host = match admin.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        Self { host, port: admin.port(), prefix: String::new() }
    }

    /// `http://host:port[/prefix]`, as `--url` or `ANTEROOM_ADMIN_URL` give it. The admin
    /// listener speaks plain HTTP: reach a remote one over a private network or a tunnel.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "`{url}`: the admin listener speaks plain HTTP; reach it over a private network or an SSH \
                     tunnel (ssh -L 9090:127.0.0.1:9090 host, then --url http://127.0.0.1:9090)"
                ))
            }
            _ => return Err(format!("`{url}`: give an http:// URL, like http://10.0.0.5:9090")),
        }
        if uri.query().is_some() {
            return Err(format!("`{url}`: a query has no place in the admin URL"));
        }
        let authority = uri.authority().ok_or_else(|| format!("`{url}`: no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{url}`: give the token with --token or ANTEROOM_ADMIN_TOKEN, not in the URL"));
        }
        Ok(Self {
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for AdminTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.prefix)
    }
}

/// Sends one request to the admin listener; returns the status and the body.
pub fn request(
    target: &AdminTarget,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(call(target, method, path, token, body))
}

/// [`request`], from async code (`anteroom rehearse` watching the gateway).
pub async fn call(
    target: &AdminTarget,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("{method}: {e}"))?;
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.prefix))
        .header(header::HOST, target.authority());
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    send(&target.authority(), req).await
}

/// `GET path` from the admin listener, from async code (the demo's summary line).
pub async fn get(admin: SocketAddr, path: &str) -> Result<(u16, String), String> {
    call(&AdminTarget::local(admin), "GET", path, None, None).await
}

async fn send(target: &str, req: Request<Full<Bytes>>) -> Result<(u16, String), String> {
    tokio::time::timeout(BUDGET, exchange(target, req))
        .await
        .unwrap_or_else(|_| Err(format!("{target}: no answer within {BUDGET:?}")))
}

async fn exchange(target: &str, req: Request<Full<Bytes>>) -> Result<(u16, String), String> {
    let stream = TcpStream::connect(target).await.map_err(|e| format!("{target}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("{target}: {e}"))?;
    tokio::spawn(connection);
    let response = sender.send_request(req).await.map_err(|e| format!("{target}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| format!("{target}: {e}"))?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Asks a running gateway's admin listener for `/healthz`.
pub fn probe_health(admin: SocketAddr) -> Result<(), String> {
    match request(&AdminTarget::local(admin), "GET", "/healthz", None, None)? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{admin} answered {status}: {}", body.trim())),
    }
}
