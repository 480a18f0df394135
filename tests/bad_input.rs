//! Bad input from clients: each gets a clear status, never reaches the origin as
//! something else, and the gateway keeps serving afterwards.

mod support;

use anteroom::config::ByteSize;
use std::time::{Duration, Instant};
use support::client::{get, raw, read_until_closed, status_of};
use support::origin::Origin;
use support::Gateway;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

async fn still_serving(gw: &Gateway) {
    assert_eq!(get(gw.addr, "/").await.status, 200, "the gateway keeps serving");
}

#[tokio::test]
async fn a_malformed_request_line_gets_400_and_never_reaches_the_origin() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    for bad in [&b"GARBAGE\r\n\r\n"[..], b"GET / HTTP/9.9\r\n\r\n", b"GET /\x01path HTTP/1.1\r\nHost: a\r\n\r\n"] {
        let answer = raw(gw.addr, bad, WAIT).await;
        assert_eq!(status_of(&answer), Some(400), "for {bad:?}: {answer}");
    }
    assert_eq!(origin.count(), 0);
    still_serving(&gw).await;
}

#[tokio::test]
async fn connect_is_answered_405_and_never_forwarded() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    for target in ["shop.example:443", "internal.example:22", "127.0.0.1:6379"] {
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let answer = raw(gw.addr, request.as_bytes(), Duration::from_millis(500)).await;
        assert_eq!(status_of(&answer), Some(405), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("allow: get"), "{answer}");
    }
    assert_eq!(origin.count(), 0, "the origin never sees a CONNECT");
    still_serving(&gw).await;
}

#[tokio::test]
async fn content_length_together_with_transfer_encoding_cannot_smuggle_a_request() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    // The classic request-smuggling shape: the two framings disagree. hyper frames the
    // message by Transfer-Encoding alone and closes the connection after answering
    // (RFC 9112 §6.3), so the tail is never read as a second request.
    let smuggle = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
                    0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let answer = raw(gw.addr, smuggle, WAIT).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "one answer, then the connection closes: {answer}");
    assert!(origin.seen().iter().all(|s| s.uri != "/smuggled"), "nothing smuggled through");
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body_len, 0, "framed by the chunked encoding, not by Content-Length");
    assert!(!seen[0].headers.contains_key("content-length"));
    still_serving(&gw).await;
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let answer =
        raw(gw.addr, b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", WAIT)
            .await;
    assert_eq!(status_of(&answer), Some(400), "{answer}");
    assert_eq!(origin.count(), 0);
    still_serving(&gw).await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_header_bytes = ByteSize(16 << 10))).await;
    let big = "a".repeat(20 * 1024);
    let answer = raw(gw.addr, format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(), WAIT).await;
    assert_eq!(status_of(&answer), Some(431), "{answer}");
    assert_eq!(origin.count(), 0);
    // Just under the limit still passes.
    let fits = "a".repeat(8 * 1024);
    let answer = raw(
        gw.addr,
        format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: {fits}\r\n\r\n").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
}

#[tokio::test]
async fn an_oversized_declared_body_gets_413_before_the_origin_sees_anything() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_body_bytes = ByteSize(1000))).await;
    let answer = raw(gw.addr, b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", WAIT).await;
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    assert_eq!(origin.count(), 0);
    still_serving(&gw).await;
}

#[tokio::test]
async fn an_oversized_chunked_body_gets_413_and_the_origin_never_gets_it_whole() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_body_bytes = ByteSize(1000))).await;
    let chunk = "x".repeat(600);
    let body = format!("258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n");
    let answer = raw(
        gw.addr,
        format!("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    // The origin may have started reading, but never received a complete 1200-byte body.
    assert!(origin.seen().iter().all(|s| s.body_len <= 1000), "{:?}", origin.seen());
    still_serving(&gw).await;
}

#[tokio::test]
async fn a_client_sending_headers_too_slowly_is_cut_off() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).limits(|l| l.header_read_timeout = Duration::from_millis(500).into()),
    )
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    let request =
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = false;
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let rest = read_until_closed(&mut stream, WAIT).await;
    assert!(cut_off || status_of(&rest) == Some(408) || rest.is_empty(), "got {rest:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "the slow client was cut off");
    assert_eq!(origin.count(), 0, "a half-sent request never reaches the origin");
    still_serving(&gw).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url())
            .origin(|o| {
                o.response_timeout = Duration::from_millis(200).into();
                o.max_wait = Duration::from_millis(100).into();
            })
            .limits(|l| {
                l.idle_timeout = Duration::from_secs(1).into();
                l.header_read_timeout = Duration::from_secs(30).into();
            }),
    )
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let text = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(status_of(&text), Some(200));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "closed only once idle: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "closed by the idle timer: {elapsed:?}");
}

#[tokio::test]
async fn a_websocket_upgrade_is_refused_unless_allowed() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let upgrade = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let answer = raw(gw.addr, upgrade, WAIT).await;
    assert_eq!(status_of(&answer), Some(501), "{answer}");
    assert_eq!(origin.count(), 0);

    // An h2c upgrade offer is simply answered in HTTP/1.1 (the header is hop-by-hop).
    let answer =
        raw(gw.addr, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", WAIT).await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(!origin.seen()[0].headers.contains_key("upgrade"));
}

#[tokio::test]
async fn an_allowed_upgrade_is_tunnelled_both_ways() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.allow_upgrade = true)).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        use tokio::io::AsyncReadExt;
        stream.read_exact(&mut buf).await.unwrap();
        head.push(buf[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert_eq!(status_of(&head), Some(101), "{head}");
    assert_eq!(origin.seen()[0].headers["upgrade"], "websocket");
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut echo = [0u8; 23];
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(WAIT, stream.read_exact(&mut echo)).await.expect("echo in time").unwrap();
    assert_eq!(&echo, b"ping through the tunnel");
}
