//! Nobody walks around the line: spellings of a path, hosts, methods and client
//! addresses that could reach a protected page without a place. Every room here is
//! scheduled far in the future, so any request the room sees is queued, and the only way
//! to the shop is a bypass rule.

mod support;

use anteroom::config::{BypassList, ConfigBuilder, OpensAt, RoomConfig};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use support::client::{raw, send, status_of, Answer};
use support::origin::Origin;
use support::Gateway;

/// Far in the future: every request a room sees is queued.
fn later() -> Option<OpensAt> {
    Some(OpensAt::parse("2099-01-01T00:00:00Z").unwrap())
}

/// The room `sale` on `/tickets`, opening later; `set` changes its keys.
fn rooms(origin: &Origin, set: impl FnOnce(&mut RoomConfig)) -> ConfigBuilder {
    Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| {
        room.opens_at = later();
        set(room);
    })
}

fn request(method: &str, path: &str, host: &str) -> Request<Full<Bytes>> {
    Request::builder().method(method).uri(path).header("host", host).body(Full::new(Bytes::new())).unwrap()
}

fn queued(answer: &Answer) -> bool {
    answer.header("x-anteroom-state").is_some()
}

#[tokio::test]
async fn extension_bypass_rules_let_static_reads_through_and_nothing_else() {
    let origin = Origin::start().await;
    let bypass = BypassList::parse(&[".css", "/tickets/static/*.js"]);
    let gw = Gateway::built(rooms(&origin, |room| room.bypass = bypass)).await;
    let answer = send(gw.addr, request("GET", "/tickets/static/site.css", "shop.example")).await;
    assert_eq!(answer.body_text(), "hello", "a stylesheet is read without a place");
    let answer = send(gw.addr, request("HEAD", "/tickets/static/app.js", "shop.example")).await;
    assert_eq!(answer.status, 200, "HEAD is a read too");
    let before = origin.count();
    for (method, path) in [
        ("POST", "/tickets/checkout/pay.css"),
        ("PUT", "/tickets/static/app.js"),
        ("DELETE", "/tickets/42.css"),
        ("GET", "/tickets/buy.js"), // .js is only bypassed under /tickets/static/
        ("GET", "/tickets/static/../buy.js"),
    ] {
        let answer = send(gw.addr, request(method, path, "shop.example")).await;
        assert!(queued(&answer), "{method} {path} must queue, got {} {}", answer.status, answer.body_text());
    }
    assert_eq!(origin.count(), before, "none of them reached the shop");
}

#[tokio::test]
async fn a_path_is_protected_when_either_its_raw_or_normalized_form_is_in_a_room() {
    let origin = Origin::start().await;
    let gw = Gateway::built(rooms(&origin, |_| {})).await;
    // Each of these an Express, Flask or Tomcat origin routes into /tickets/… while a
    // normalizer that decodes and resolves first would call it /buy.
    for path in [
        "/tickets/%2e%2e/buy",
        "/tickets/%2E%2E/buy",
        "/tickets/..;x/buy",
        "/tickets/42%2F..%2F..%2Fbuy",
        "/TICKETS/%2e%2e/buy",
        "//tickets//..%2fbuy",
        // …and these the other way round.
        "/x/../tickets/buy",
        "/x/%2e%2e/tickets/buy",
        "/tick%65ts/buy",
        "/tickets;jsessionid=1/buy",
    ] {
        let answer = send(gw.addr, request("GET", path, "shop.example")).await;
        assert!(queued(&answer), "{path}: {} {}", answer.status, answer.body_text());
    }
    assert_eq!(origin.count(), 0, "none of them reached the shop");
    assert_eq!(send(gw.addr, request("GET", "/buy", "shop.example")).await.body_text(), "hello", "outside: open");
}

#[tokio::test]
async fn a_path_whose_forms_fall_in_two_rooms_is_refused() {
    let origin = Origin::start().await;
    let config = rooms(&origin, |_| {}).room("vip", &["/vip"], |room| room.opens_at = later());
    let gw = Gateway::built(config).await;
    for path in ["/tickets/%2e%2e/vip/buy", "/tickets/..;x/vip", "/vip/%2E%2E/tickets/1"] {
        let answer = send(gw.addr, request("GET", path, "shop.example")).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body_text());
        assert!(answer.body_text().contains("ambiguous path"), "{}", answer.body_text());
    }
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn a_bypass_prefix_must_hold_for_every_form_of_the_path() {
    let origin = Origin::start().await;
    let gw = Gateway::built(rooms(&origin, |room| room.bypass = BypassList::parse(&["/tickets/static/"]))).await;
    assert_eq!(send(gw.addr, request("GET", "/tickets/static/a.png", "x")).await.body_text(), "hello");
    // The literal form is under the bypass prefix; the normalized one is the checkout.
    for path in ["/tickets/static/%2e%2e/checkout", "/tickets/static/..%2Fcheckout", "/tickets/static/..;/checkout"] {
        let answer = send(gw.addr, request("POST", path, "shop.example")).await;
        assert!(queued(&answer), "{path}: {} {}", answer.status, answer.body_text());
    }
    assert_eq!(origin.count(), 1);
}

#[tokio::test]
async fn a_host_scoped_room_cannot_be_skipped_by_spelling_the_host() {
    let origin = Origin::start().await;
    let gw = Gateway::built(rooms(&origin, |room| room.hosts = vec!["shop.example".into()])).await;
    for host in ["shop.example", "SHOP.Example", "shop.example.", "shop.example.:8080", "shop.example:443"] {
        let answer = send(gw.addr, request("GET", "/tickets/1", host)).await;
        assert!(queued(&answer), "Host: {host}: {} {}", answer.status, answer.body_text());
    }
    // Another host is not this room's.
    assert_eq!(send(gw.addr, request("GET", "/tickets/1", "other.example")).await.body_text(), "hello");
    let seen_before = origin.count();

    // No Host at all, two of them, or a request target naming another host: refused.
    let wait = Duration::from_millis(500);
    for bad in [
        &b"GET /tickets/1 HTTP/1.1\r\n\r\n"[..],
        b"GET /tickets/1 HTTP/1.0\r\n\r\n",
        b"GET /tickets/1 HTTP/1.1\r\nHost: other.example\r\nHost: shop.example\r\n\r\n",
        b"GET http://other.example/tickets/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n",
        b"GET http://shop.example/tickets/1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
    ] {
        let answer = raw(gw.addr, bad, wait).await;
        let status = answer.strip_prefix("HTTP/1.0 ").and_then(|rest| rest.get(..3)).map(|s| s.parse().unwrap());
        assert_eq!(status_of(&answer).or(status), Some(400), "{}: {answer}", String::from_utf8_lossy(bad));
    }
    assert_eq!(origin.count(), seen_before, "none of them reached the shop");
}

#[tokio::test]
async fn an_http2_host_header_that_differs_from_the_authority_is_refused() {
    let origin = Origin::start().await;
    let gw = Gateway::built(rooms(&origin, |room| room.hosts = vec!["shop.example".into()])).await;
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
    tokio::spawn(conn);
    let mut ask = async |authority: &str, host: Option<&str>| {
        let mut req = Request::get(format!("http://{authority}/tickets/1"));
        if let Some(host) = host {
            req = req.header("host", host);
        }
        let response = sender.send_request(req.body(Full::new(Bytes::new())).unwrap()).await.expect("answer");
        (response.status().as_u16(), response.headers().contains_key("x-anteroom-state"))
    };
    assert_eq!(ask("shop.example", None).await, (200, true), "the room's host: queued");
    assert_eq!(ask("shop.example.", None).await, (200, true), "a trailing dot is the same host");
    assert_eq!(ask("other.example", Some("shop.example")).await.0, 400, "host and :authority disagree");
    assert_eq!(ask("shop.example", Some("other.example")).await.0, 400);
    assert_eq!(origin.count(), 0);
}

#[tokio::test]
async fn ipv4_clients_of_a_dual_stack_listener_match_ipv4_rules() {
    let origin = Origin::start().await;
    let config = rooms(&origin, |room| room.bypass = BypassList::parse(&["127.0.0.0/8"]))
        .listen(|listen| listen.http = Some((std::net::Ipv6Addr::UNSPECIFIED, 0).into()));
    let gw = Gateway::built(config).await;
    // Connecting to 127.0.0.1 through a [::] listener, the peer is ::ffff:127.0.0.1.
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], gw.addr.port()));
    let answer = send(v4, request("GET", "/tickets/1", "shop.example")).await;
    assert_eq!(answer.body_text(), "hello", "127.0.0.0/8 covers ::ffff:127.0.0.1");
    let forwarded_for = origin.seen()[0].headers["x-forwarded-for"].to_str().unwrap().to_owned();
    assert_eq!(forwarded_for, "127.0.0.1", "the client address is shown in its IPv4 form");
}
