//! When the origin is down, slow, or breaks: bounded answers, no hangs, and the gateway
//! keeps serving.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::client::{get, send, try_send};
use support::origin::Origin;
use support::{metric, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An address where nothing listens.
async fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A raw origin: for each accepted connection, runs `script` on it.
async fn raw_origin<F, Fut>(script: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            let script = script.clone();
            let _ = &counter;
            tokio::spawn(async move { script(stream, n).await });
        }
    });
    (url, requests)
}

/// Reads one request head (up to the blank line).
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test]
async fn an_origin_that_is_down_gives_502_quickly() {
    let gw = Gateway::start(&dead_address().await).await;
    let started = Instant::now();
    let answer = get(gw.addr, "/").await;
    assert_eq!(answer.status, 502);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(metric(&gw.metrics().await, "anteroom_origin_requests_total{status=\"none\"}"), 1);
}

#[tokio::test]
async fn an_origin_that_does_not_accept_in_time_gives_502() {
    // A listener whose accept queue is full drops new SYNs, so the handshake never
    // completes (a non-routable address would send traffic off this machine).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let gw = Gateway::built(Gateway::config(&format!("http://{addr}")).origin(|o| {
        o.connect_timeout = Duration::from_millis(300).into();
        o.response_timeout = Duration::from_secs(3).into();
    }))
    .await;
    let started = Instant::now();
    let answer = get(gw.addr, "/").await;
    assert!(answer.status == 502, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by connect_timeout");
    drop(listener);
}

#[tokio::test]
async fn an_origin_that_hangs_gives_504_after_the_response_timeout() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).origin(|o| o.response_timeout = Duration::from_millis(400).into()),
    )
    .await;
    let started = Instant::now();
    let answer = get(gw.addr, "/hang").await;
    assert_eq!(answer.status, 504);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(get(gw.addr, "/").await.status, 200, "still serving");
}

#[tokio::test]
async fn an_origin_that_stalls_mid_body_is_cut_off() {
    let (url, _) = raw_origin(|mut s, _| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part").await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await;
    let gw =
        Gateway::built(Gateway::config(&url).origin(|o| o.response_timeout = Duration::from_millis(400).into())).await;
    let started = Instant::now();
    let result = try_send(gw.addr, Request::get("/").body(Full::new(Bytes::new())).unwrap()).await;
    assert!(result.is_err(), "the client sees a broken body, not a complete one: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_origin_that_resets_mid_response_breaks_only_that_response() {
    let (url, _) = raw_origin(|mut s, _| async move {
        if read_head(&mut s).await.is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial body").await;
            let _ = s.set_zero_linger(); // close with RST
            drop(s);
        }
    })
    .await;
    let gw = Gateway::start(&url).await;
    let result = try_send(gw.addr, Request::get("/").body(Full::new(Bytes::new())).unwrap()).await;
    assert!(result.is_err(), "a truncated body must not look complete: {result:?}");
    // A fresh request is still answered (the origin resets every time: a clean 200 or
    // a 502 both prove the gateway is alive; it must not hang).
    let again = tokio::time::timeout(
        Duration::from_secs(5),
        try_send(gw.addr, Request::get("/").body(Full::new(Bytes::new())).unwrap()),
    )
    .await;
    assert!(again.is_ok(), "the gateway still answers");
    assert_eq!(get(gw.admin, "/healthz").await.status, 200);
}

/// An origin that answers the first request on a connection with keep-alive, then
/// closes the connection as soon as the next request arrives, without answering.
async fn origin_closing_reused_connections() -> (String, Arc<AtomicUsize>) {
    let heads = Arc::new(AtomicUsize::new(0));
    let counter = heads.clone();
    let (url, _) = raw_origin(move |mut s, _| {
        let counter = counter.clone();
        async move {
            if read_head(&mut s).await.is_some() {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            }
            if read_head(&mut s).await.is_some() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        }
    })
    .await;
    (url, heads)
}

#[tokio::test]
async fn an_idempotent_request_is_retried_once_when_a_pooled_connection_was_closed() {
    let (url, heads) = origin_closing_reused_connections().await;
    let gw = Gateway::start(&url).await;
    assert_eq!(get(gw.addr, "/").await.status, 200);
    // The pooled connection is reused, closed by the origin, and the GET is replayed on
    // a fresh connection.
    assert_eq!(get(gw.addr, "/").await.status, 200);
    assert_eq!(heads.load(Ordering::SeqCst), 3, "first GET, the dropped attempt, the retry");
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let (url, heads) = origin_closing_reused_connections().await;
    let gw = Gateway::start(&url).await;
    assert_eq!(get(gw.addr, "/").await.status, 200);
    let post = Request::post("/checkout").body(Full::new(Bytes::from("buy=1"))).unwrap();
    assert_eq!(send(gw.addr, post).await.status, 502);
    assert_eq!(heads.load(Ordering::SeqCst), 2, "the POST reached the origin exactly once");
}
