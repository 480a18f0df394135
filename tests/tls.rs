//! TLS termination with HTTP/2 by ALPN, and https origins.

mod support;

use anteroom::config::Limits;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::time::Duration;
use support::client::get;
use support::origin::Origin;
use support::tls::TestPki;
use support::Gateway;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A gateway with an https listener for the test PKI; `more` is appended as sections.
/// A gateway with an https listener on `pki`'s certificate; `set` changes the limits.
async fn tls_gateway(origin: &Origin, pki: &TestPki, set: impl FnOnce(&mut Limits)) -> Gateway {
    let config = Gateway::config(&origin.url())
        .listen(|listen| {
            listen.https = Some(([127, 0, 0, 1], 0).into());
            listen.tls_cert = Some(pki.cert_pem.clone());
            listen.tls_key = Some(pki.key_pem.clone());
        })
        .limits(set);
    Gateway::built(config).await
}

async fn connect_tls(addr: SocketAddr, pki: &TestPki, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let connector = TlsConnector::from(pki.client_config(alpn));
    connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("handshake")
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_forwarded_as_http11() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let origin = Origin::start().await;
    let gw = tls_gateway(&origin, &pki, |_| {}).await;
    let tls = connect_tls(gw.https_addr.unwrap(), &pki, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("h2");
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = Request::get("https://shop.example/events/1?x=1").body(Empty::<Bytes>::new()).unwrap();
        let response = sender.send_request(req).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello", "connection-specific headers must not break h2");
    }
    let seen = &origin.seen()[0];
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.uri, "/events/1?x=1");
    assert_eq!(seen.headers["host"], "shop.example", ":authority becomes Host");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn http11_over_tls_works_too() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let origin = Origin::start().await;
    let gw = tls_gateway(&origin, &pki, |_| {}).await;
    let tls = connect_tls(gw.https_addr.unwrap(), &pki, &[b"http/1.1"]).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("h1");
    tokio::spawn(conn);
    let req = Request::get("/").header("host", "shop.example").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(origin.seen()[0].headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let origin = Origin::start().await;
    let gw = tls_gateway(&origin, &pki, |l| l.header_read_timeout = Duration::from_millis(300).into()).await;
    let mut silent = TcpStream::connect(gw.https_addr.unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    let rest = support::client::read_until_closed(&mut silent, std::time::Duration::from_secs(5)).await;
    assert!(rest.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "closed by the handshake timeout");
}

#[tokio::test]
async fn an_https_origin_is_verified_against_the_configured_ca() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let origin = Origin::start_tls(pki.acceptor()).await;
    let trusted =
        Gateway::built(Gateway::config(&origin.https_url()).origin(|o| o.ca_file = Some(pki.ca_pem.clone()))).await;
    assert_eq!(get(trusted.addr, "/").await.status, 200);
    assert_eq!(origin.count(), 1);

    // Without the CA, the origin's certificate is not trusted: 502, nothing sent.
    let untrusted = Gateway::start(&origin.https_url()).await;
    assert_eq!(get(untrusted.addr, "/").await.status, 502);
    assert_eq!(origin.count(), 1);
}
