//! Clients that are slow, sloppy or hostile on the wire: trickled bodies, early answers,
//! malformed chunking, silent connections. Each gets a clear answer, holds nothing the
//! shop needs, and hands the origin nothing truncated.

mod support;

use anteroom::config::ByteSize;
use std::time::{Duration, Instant};
use support::client::{get, read_until_closed, status_of};
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head`, then `piece` `pieces` times, one every `every` (ignoring write errors:
/// the gateway may close on us), keeping the connection open afterwards; returns what the
/// gateway answered until it closed the connection (or 20 s passed).
async fn trickle(addr: std::net::SocketAddr, head: String, piece: Vec<u8>, pieces: usize, every: Duration) -> String {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..pieces {
            tokio::time::sleep(every).await;
            if writer.write_all(&piece).await.is_err() {
                return;
            }
        }
        // Open but silent, not closed: a closed body would be a different case.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dozens_of_trickled_uploads_never_keep_token_holders_from_the_shop() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url())
            .origin(|o| {
                o.max_in_flight = 4;
                o.max_wait = Duration::from_millis(500).into();
            })
            .limits(|l| l.body_read_timeout = Duration::from_secs(4).into())
            .room("sale", &["/tickets"], |_| {}),
    )
    .await;
    let mut buyer = Visitor::new(gw.addr);
    assert_eq!(buyer.get("/tickets/1").await.body_text(), "hello", "admitted");

    // 40 uploads, 13 bytes a second between them, on any path, with no token.
    let mut tricklers = Vec::new();
    for i in 0..40 {
        let head = format!("POST /upload/{i} HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 1000\r\n\r\n");
        tricklers.push(tokio::spawn(trickle(gw.addr, head, b"x".to_vec(), 20, Duration::from_secs(3))));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..10 {
        let asked = Instant::now();
        let answer = buyer.get("/tickets/2").await;
        assert_eq!((answer.status.as_u16(), answer.body_text().as_str()), (200, "hello"), "the buyer is served");
        assert!(asked.elapsed() < Duration::from_millis(450), "at once, not after waiting for a slot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for trickler in tricklers {
        let answer = trickler.await.unwrap();
        assert_eq!(status_of(&answer), Some(408), "a trickled body is cut off: {answer}");
    }
    assert!(origin.seen().iter().all(|s| !s.uri.starts_with("/upload")), "no trickled upload reached the shop");
}

#[tokio::test]
async fn a_body_that_pauses_or_crawls_gets_408() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| {
        l.body_read_timeout = Duration::from_secs(1).into();
        l.min_upload_rate = ByteSize(1 << 10);
    }))
    .await;
    let head = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789".to_owned();
    let started = Instant::now();
    let answer = trickle(gw.addr, head, Vec::new(), 0, Duration::ZERO).await;
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Never pausing long, but 5 bytes a second: under the floor.
    let head = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".to_owned();
    let answer = trickle(gw.addr, head, b"x".to_vec(), 100, Duration::from_millis(200)).await;
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert_eq!(origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_answers_early_does_not_hand_out_a_busy_connection() {
    let origin = Origin::start().await;
    let gw =
        Gateway::built(Gateway::config(&origin.url()).origin(|o| o.response_timeout = Duration::from_secs(3).into()))
            .await;
    // An upload larger than the gateway reads ahead: the origin gets it streamed, answers
    // 403 before reading it, and the rest keeps coming for about five seconds.
    let total = 300 * 1024;
    let head = format!("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: {total}\r\n\r\n{}", "x".repeat(100 * 1024));
    let uploader = tokio::spawn(trickle(gw.addr, head, vec![b'y'; 4096], 50, Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !origin.seen().iter().any(|s| s.uri == "/early") {
        assert!(Instant::now() < deadline, "the upload never reached the origin");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The next request must not be handed the connection still carrying that upload.
    let asked = Instant::now();
    let answer = get(gw.addr, "/").await;
    assert_eq!(answer.status, 200, "{}", answer.body_text());
    assert!(asked.elapsed() < Duration::from_secs(1), "answered at once, took {:?}", asked.elapsed());
    let answer = uploader.await.unwrap();
    assert_eq!(status_of(&answer), Some(403), "{answer}");
}

/// Writes all of `request` (as simple clients do, reading only afterwards), then reads
/// the answer. The gateway answers long before the end; if it then closed with input
/// unread, the kernel would reset the connection: the client's send fails and the answer
/// is lost to it. (The requests are larger than loopback's socket buffers, so that the
/// client is still sending when the answer comes.)
async fn write_all_then_read(addr: std::net::SocketAddr, request: Vec<u8>) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let sent = stream.write_all(&request).await;
    assert!(sent.is_ok(), "the client could send its request to the end: {sent:?}");
    read_until_closed(&mut stream, Duration::from_secs(5)).await
}

#[tokio::test]
async fn an_early_431_reaches_a_client_still_sending_its_header() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_header_bytes = ByteSize(16 << 10))).await;
    for _ in 0..3 {
        let request = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(8 << 20));
        let answer = write_all_then_read(gw.addr, request.into_bytes()).await;
        assert_eq!(status_of(&answer), Some(431), "the answer arrives, not a reset: {answer:?}");
    }
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn an_early_413_reaches_a_client_still_sending_its_body() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_body_bytes = ByteSize(1 << 20))).await;
    for _ in 0..3 {
        let mut request = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 68719476736\r\n\r\n".to_vec();
        request.extend(std::iter::repeat_n(b'b', 8 << 20));
        let answer = write_all_then_read(gw.addr, request).await;
        assert_eq!(status_of(&answer), Some(413), "the answer arrives, not a reset: {answer:?}");
    }
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_error_and_the_origin_keeps_nothing_of_it() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let head = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Small: read whole before anything is forwarded.
    let answer = trickle(gw.addr, format!("{head}5\r\nhello\r\nzz\r\nbad\r\n"), Vec::new(), 0, Duration::ZERO).await;
    assert_eq!(status_of(&answer), Some(400), "{answer}");
    assert_eq!(origin.count(), 0);
    // Large: the encoding breaks after 100 KiB has been streamed on.
    let chunk = format!("1000\r\n{}\r\n", "c".repeat(4096));
    let good = chunk.repeat(25);
    let answer = trickle(gw.addr, format!("{head}{good}zz\r\nbroken\r\n"), Vec::new(), 0, Duration::ZERO).await;
    assert_eq!(status_of(&answer), Some(400), "a client error, not a 502 blamed on the shop: {answer}");
    assert!(origin.seen().iter().all(|s| !s.body_complete), "the origin saw no complete body");
    assert_eq!(get(gw.addr, "/").await.status, 200, "still serving");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_timeout() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).limits(|l| l.header_read_timeout = Duration::from_secs(1).into()),
    )
    .await;
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    let out = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(out.is_empty(), "{out}");
    let closed_after = started.elapsed();
    assert!(closed_after < Duration::from_secs(4), "closed after {closed_after:?}, not at the idle timeout");
    assert!(closed_after >= Duration::from_millis(900), "{closed_after:?}");
}
