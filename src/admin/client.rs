//! The client side of the admin listener, for the CLI (`anteroom healthcheck`,
//! `anteroom admin …`): one HTTP/1.1 exchange through hyper, 2 s budget in all (container
//! images have no curl).

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

const BUDGET: Duration = Duration::from_secs(2);

/// Sends one request to the admin listener; returns the status and the body.
pub fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut target = admin;
    // An unspecified listen address (0.0.0.0) is reached through loopback.
    if target.ip().is_unspecified() {
        target.set_ip(if admin.is_ipv4() { [127, 0, 0, 1].into() } else { Ipv6Addr::LOCALHOST.into() });
    }
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("{method}: {e}"))?;
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, target.to_string());
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(send(target, req))
}

/// `GET path` from the admin listener, from async code (the demo's summary line).
pub async fn get(admin: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let req = Request::get(path)
        .header(header::HOST, admin.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    send(admin, req).await
}

async fn send(target: SocketAddr, req: Request<Full<Bytes>>) -> Result<(u16, String), String> {
    tokio::time::timeout(BUDGET, exchange(target, req))
        .await
        .unwrap_or_else(|_| Err(format!("{target}: no answer within {BUDGET:?}")))
}

async fn exchange(target: SocketAddr, req: Request<Full<Bytes>>) -> Result<(u16, String), String> {
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
    match request(admin, "GET", "/healthz", None, None)? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{admin} answered {status}: {}", body.trim())),
    }
}
