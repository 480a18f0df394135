//! Bodies stream through in both directions: a 1 GiB upload and a 1 GiB download pass
//! without the gateway ever holding them.

mod support;

use anteroom::config::ByteSize;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use support::origin::{Origin, Repeat};
use support::Gateway;
use tokio::net::TcpStream;

const GIB: u64 = 1 << 30;

/// Peak resident memory of this process so far, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_streams_up_and_down_in_bounded_memory() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| l.max_body_bytes = ByteSize(2 << 30))).await;
    let before = peak_rss();

    // Upload: the origin counts what arrives.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let upload = Request::post("/upload").header("host", "a").header("content-length", GIB).body(Repeat::new(GIB));
    let response = sender.send_request(upload.unwrap()).await.expect("upload answered");
    assert_eq!(response.status(), 200);
    let counted = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&counted), GIB.to_string());

    // Download: count frames as they come, never collect.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let download =
        Request::get(format!("/bytes/{GIB}")).header("host", "a").body(http_body_util::Empty::<bytes::Bytes>::new());
    let response = sender.send_request(download.unwrap()).await.expect("download answered");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.expect("frame").data_ref() {
            received += data.len() as u64;
        }
    }
    assert_eq!(received, GIB);

    // Client, gateway and origin all live in this process: together they must stay far
    // below the 2 GiB that moved.
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 64 << 20, "peak memory grew by {} MiB", grown >> 20);
}
