//! The client side of the admin listener, for the CLI (`anteroom healthcheck`,
//! `anteroom admin …`): one blocking HTTP/1.1 exchange, 2 s budget, no dependencies
//! (container images have no curl).

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

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
    let mut stream = TcpStream::connect_timeout(&target, BUDGET).map_err(|e| format!("{target}: {e}"))?;
    stream.set_read_timeout(Some(BUDGET)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(BUDGET)).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{target} answered {:?}", answer.lines().next().unwrap_or("")))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, decode_chunked_if_needed(&answer, body)))
}

/// hyper answers small bodies with a length, but be tolerant of chunked ones.
fn decode_chunked_if_needed(raw: &str, body: &str) -> String {
    let head = raw.split("\r\n\r\n").next().unwrap_or("").to_ascii_lowercase();
    if !head.contains("transfer-encoding: chunked") {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Asks a running gateway's admin listener for `/healthz`.
pub fn probe_health(admin: SocketAddr) -> Result<(), String> {
    match request(admin, "GET", "/healthz", None, None)? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{admin} answered {status}: {}", body.trim())),
    }
}
