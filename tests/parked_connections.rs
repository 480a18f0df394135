//! Idle HTTP/1 connections are parked: after a quiet moment between exchanges the gateway
//! drops its HTTP state and keeps only the socket, then serves the next request on the
//! same connection. The client must not notice, and nothing it sends may be lost, merged
//! or let through differently because of it.

mod support;

use std::time::{Duration, Instant};
use support::client::{read_until_closed, status_of};
use support::origin::Origin;
use support::tls::TestPki;
use support::{metric, Gateway};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const PARKED: &str = "anteroom_client_connections{state=\"parked\"}";
const SERVING: &str = "anteroom_client_connections{state=\"serving\"}";

/// Reads one answer (head and a `content-length` body) off a keep-alive connection.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let read = async {
        let mut bytes = Vec::new();
        let mut byte = [0u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.expect("read head"), 1, "closed mid-head: {bytes:?}");
            bytes.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse::<usize>().expect("length"));
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.expect("read body");
        bytes.extend_from_slice(&body);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("an answer in time")
}

/// Waits until the gateway reports `parked` parked connections.
async fn until_parked(gw: &Gateway, parked: u64) {
    until(gw, &format!("{parked} parked"), |text| metric(text, PARKED) == parked).await;
}

/// Waits until the gateway's metrics show `what` (`holds`), at most ten seconds.
async fn until(gw: &Gateway, what: &str, holds: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let text = gw.metrics().await;
        if holds(&text) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never {what}: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_answer(stream).await
}

#[tokio::test]
async fn an_idle_connection_is_parked_and_serves_its_next_request() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(status_of(&exchange(&mut stream, "/one").await), Some(200));
    assert_eq!(metric(&gw.metrics().await, SERVING), 1);

    until_parked(&gw, 1).await;
    assert_eq!(metric(&gw.metrics().await, SERVING), 0);
    // The same connection, woken by its next request, then parked again.
    for path in ["/two", "/three"] {
        let answer = exchange(&mut stream, path).await;
        assert_eq!(status_of(&answer), Some(200), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        until_parked(&gw, 1).await;
    }
    let paths: Vec<String> = origin.seen().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(paths, ["/one", "/two", "/three"]);

    drop(stream);
    until_parked(&gw, 0).await;
    let text = gw.metrics().await;
    assert_eq!(metric(&text, SERVING), 0, "{text}");
}

#[tokio::test]
async fn a_request_split_across_the_parking_is_read_whole() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    // A pipelined second request, its head cut short: hyper has read it ahead when the
    // connection goes quiet, and the parking must hand those bytes on.
    stream.write_all(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\n").await.unwrap();
    assert_eq!(status_of(&read_answer(&mut stream).await), Some(200));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stream.write_all(b"Host: a\r\nX-Part: rest\r\n\r\n").await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].uri, "/second");
    assert_eq!(seen[1].headers["x-part"], "rest");
}

#[tokio::test]
async fn a_body_that_pauses_past_the_parking_time_is_never_read_as_a_request() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    // The body, sent after a pause longer than the parking time, holds a request a bot
    // would like forwarded on its own: it must stay the body it is.
    let hidden = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", hidden.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stream.write_all(hidden).await.unwrap();
    assert_eq!(status_of(&read_answer(&mut stream).await), Some(200));
    let after = exchange(&mut stream, "/after").await;
    assert!(after.ends_with("hello"), "{after}");
    let seen = origin.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(paths, ["/upload", "/after"]);
    assert!(seen[0].body_complete);
    assert_eq!(seen[0].body_len, hidden.len() as u64);
}

#[tokio::test]
async fn a_connection_that_asks_to_close_is_closed_not_parked() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let mut old = TcpStream::connect(gw.addr).await.unwrap();
    old.write_all(b"GET /old HTTP/1.0\r\nHost: a\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut old, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let mut closing = TcpStream::connect(gw.addr).await.unwrap();
    closing.write_all(b"GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut closing, Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    // The client sees the close a moment before the gateway's task counts it; a parked
    // connection would stay counted until the idle timeout (a minute).
    until(&gw, "none serving or parked", |text| (metric(text, SERVING), metric(text, PARKED)) == (0, 0)).await;
}

#[tokio::test]
async fn parked_connections_are_closed_by_the_drain_and_by_the_idle_timeout() {
    let origin = Origin::start().await;
    let mut gw = Gateway::built(
        Gateway::config(&origin.url())
            .origin(|o| {
                o.response_timeout = Duration::from_millis(200).into();
                o.max_wait = Duration::from_millis(100).into();
            })
            .limits(|l| l.idle_timeout = Duration::from_secs(4).into()),
    )
    .await;
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(status_of(&exchange(&mut idle, "/").await), Some(200));
    let since = Instant::now();
    until_parked(&gw, 1).await;
    assert!(read_until_closed(&mut idle, Duration::from_secs(10)).await.is_empty());
    let closed_after = since.elapsed();
    assert!(closed_after >= Duration::from_millis(3900), "closed at the idle timeout, not {closed_after:?}");
    assert!(closed_after < Duration::from_secs(9), "{closed_after:?}");

    let mut parked = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(status_of(&exchange(&mut parked, "/").await), Some(200));
    until_parked(&gw, 1).await;
    let started = Instant::now();
    gw.begin_shutdown();
    assert!(read_until_closed(&mut parked, Duration::from_secs(10)).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(3), "closed by the drain: {:?}", started.elapsed());
    gw.shutdown().await.expect("drained");
}

#[tokio::test]
async fn a_new_connection_that_stops_inside_the_http2_preface_is_cut_at_the_header_timeout() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).limits(|l| l.header_read_timeout = Duration::from_secs(1).into()),
    )
    .await;
    let mut stalled = TcpStream::connect(gw.addr).await.unwrap();
    stalled.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let started = Instant::now();
    let out = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
    assert!(out.is_empty(), "{out}");
    assert!(started.elapsed() < Duration::from_secs(4), "cut after {:?}", started.elapsed());
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn a_tls_connection_is_parked_and_resumed_in_the_same_session() {
    let origin = Origin::start().await;
    let pki = TestPki::new();
    let gw = Gateway::built(Gateway::config(&origin.url()).listen(|listen| {
        listen.https = Some(([127, 0, 0, 1], 0).into());
        listen.tls_cert = Some(pki.cert_pem.clone());
        listen.tls_key = Some(pki.key_pem.clone());
    }))
    .await;
    let https = gw.https_addr.expect("an https listener");
    let tcp = TcpStream::connect(https).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(&[b"http/1.1"]));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(status_of(&exchange(&mut tls, "/one").await), Some(200));
    until_parked(&gw, 1).await;
    let answer = exchange(&mut tls, "/two").await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert_eq!(origin.count(), 2);
}

#[tokio::test]
async fn a_parked_connection_that_trickles_its_next_head_is_cut_at_the_header_timeout() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).limits(|l| l.header_read_timeout = Duration::from_secs(3).into()),
    )
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(status_of(&exchange(&mut stream, "/").await), Some(200));
    until_parked(&gw, 1).await;
    // Its first byte wakes it; the rest of the head comes a line every half second.
    let started = Instant::now();
    let _ = stream.write_all(b"GET /slow HTTP/1.1\r\n").await;
    let (mut reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(b"X-Slow: a\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut rest)).await;
    let cut_after = started.elapsed();
    assert!(read.is_ok(), "still open after {cut_after:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.is_empty() || status_of(&rest) == Some(408), "{rest}");
    assert!(cut_after < Duration::from_secs(8), "cut at the header timeout, not after {cut_after:?}");
    assert_eq!(origin.count(), 1, "the trickled request never reached the shop");
}

#[tokio::test]
async fn a_parked_connection_outlives_the_header_timeout_until_the_idle_timeout() {
    // hyper's header timer also runs while a connection waits for its next request: an
    // unparked connection would be closed 1.5 s after its answer. A browser polling its
    // place every few seconds keeps its connection (and its TLS session) instead.
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).limits(|l| l.header_read_timeout = Duration::from_millis(1500).into()),
    )
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    for path in ["/one", "/two", "/three"] {
        let answer = exchange(&mut stream, path).await;
        assert_eq!(status_of(&answer), Some(200), "{answer}");
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert_eq!(origin.count(), 3);
}
