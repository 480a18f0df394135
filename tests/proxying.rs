//! Forwarding: what the origin receives and what the client gets back.

mod support;

use anteroom::config::HostHeader;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::time::Duration;
use support::client::{get, send};
use support::origin::Origin;
use support::Gateway;

fn request(method: &str, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(path).header("host", "shop.example")
}

#[tokio::test]
async fn a_request_reaches_the_origin_with_method_path_query_and_body() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let answer =
        send(gw.addr, request("POST", "/upload?x=1&y=%20").body(Full::new(Bytes::from("twelve bytes"))).unwrap()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body_text(), "12");
    let seen = &origin.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/upload?x=1&y=%20");
    assert_eq!(seen.version, http::Version::HTTP_11);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    let answer = send(
        gw.addr,
        request("GET", "/")
            .header("connection", "x-client-private")
            .header("x-client-private", "secret")
            .header("keep-alive", "timeout=100")
            .header("proxy-authorization", "Basic abc")
            .header("te", "trailers")
            .header("x-anteroom-session", "forged")
            .header("accept", "text/html")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let seen = &origin.seen()[0].headers;
    for name in ["x-client-private", "keep-alive", "proxy-authorization", "te", "x-anteroom-session"] {
        assert!(!seen.contains_key(name), "origin saw {name}: {seen:?}");
    }
    assert_eq!(seen["accept"], "text/html", "end-to-end headers pass");
    // The origin's response names x-origin-private in Connection and sends Keep-Alive.
    assert!(answer.header("x-origin-private").is_none(), "{:?}", answer.headers);
    assert!(answer.header("keep-alive").is_none());
    assert_eq!(answer.body_text(), "hello");
}

#[tokio::test]
async fn forwarding_headers_are_set_and_a_spoofed_client_address_is_replaced() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    send(
        gw.addr,
        request("GET", "/")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "for=6.6.6.6")
            .header("x-real-ip", "6.6.6.6")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let seen = &origin.seen()[0].headers;
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "shop.example");
    assert!(!seen.contains_key("forwarded"));
    assert!(!seen.contains_key("x-real-ip"));
    // The gateway keeps serving.
    assert_eq!(get(gw.addr, "/").await.status, 200);
}

#[tokio::test]
async fn a_trusted_proxy_may_tell_the_client_address() {
    let origin = Origin::start().await;
    let config =
        Gateway::config(&origin.url()).listen(|listen| listen.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]);
    let gw = Gateway::built(config).await;
    send(
        gw.addr,
        request("GET", "/")
            .header("x-forwarded-for", "198.51.100.7")
            .header("x-forwarded-proto", "https")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let seen = &origin.seen()[0].headers;
    assert_eq!(seen["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn the_host_header_is_preserved_or_set_to_the_origin() {
    let origin = Origin::start().await;
    let preserve = Gateway::start(&origin.url()).await;
    get(preserve.addr, "/").await;
    assert_eq!(origin.seen()[0].headers["host"], "shop.example");

    let rewrite = Gateway::built(Gateway::config(&origin.url()).origin(|o| o.host_header = HostHeader::Origin)).await;
    get(rewrite.addr, "/").await;
    let expected = origin.addr.unwrap().to_string();
    assert_eq!(origin.seen()[1].headers["host"], expected.as_str());
    assert_eq!(origin.seen()[1].headers["x-forwarded-host"], "shop.example");
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let origin = Origin::start().await;
    let gw = Gateway::start(&origin.url()).await;
    for _ in 0..20 {
        assert_eq!(get(gw.addr, "/").await.status, 200);
    }
    assert_eq!(origin.count(), 20);
    assert_eq!(origin.connections(), 1, "one pooled connection serves sequential requests");
}

#[tokio::test]
async fn idle_upstream_connections_are_retired_after_pool_idle_timeout() {
    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).origin(|o| o.pool_idle_timeout = Duration::from_millis(200).into()),
    )
    .await;
    assert_eq!(get(gw.addr, "/").await.status, 200);
    assert_eq!(get(gw.addr, "/").await.status, 200);
    assert_eq!(origin.connections(), 1, "reused while fresh");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(get(gw.addr, "/").await.status, 200);
    assert_eq!(origin.connections(), 2, "a connection idle past the timeout is not reused");
}
