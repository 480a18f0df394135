//! anteroom's own error answers (503 shed, 502, 504, 431, 413): a page in the queue page's
//! style and the buyer's language for a browser, JSON with a machine-readable `error` code
//! for an app, one line of text for curl — and never the shop's business.

mod support;

use anteroom::config::ByteSize;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::time::Duration;
use support::client::{get, send, Answer};
use support::origin::Origin;
use support::Gateway;

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// `path` asked as a browser in `lang` would, as an app would, and as curl would.
async fn ask_three_ways(gw: &Gateway, method: &str, path: &str, lang: &str, extra: &[(&str, &str)]) -> [Answer; 3] {
    let mut answers = Vec::new();
    for accept in [BROWSER, "application/json", "*/*"] {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "shop.example")
            .header("accept", accept)
            .header("accept-language", lang);
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        answers.push(send(gw.addr, req.body(Full::new(Bytes::new())).unwrap()).await);
    }
    answers.try_into().unwrap()
}

/// The three answers are `status` with `code`: a page in `lang` (containing `words`), the
/// JSON object, and a line of text.
fn check(answers: &[Answer; 3], status: u16, code: &str, lang: &str, words: &str) {
    let [page, json, text] = answers;
    for answer in answers {
        assert_eq!(answer.status, status, "{answer:?}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(answer.header("x-anteroom-error"), Some(code), "anteroom's own answer, not the shop's");
    }
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.body_text();
    assert!(html.contains(&format!(r#"<html lang="{lang}">"#)), "{html}");
    assert!(html.contains(&format!("<code>{code}</code> ({status})")), "{html}");
    assert!(html.contains(words), "{lang}: {words}\n{html}");
    assert!(html.contains("/_anteroom/assets/queue.css"), "the queue page's style");
    let body: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(documented_codes().contains(&code.to_owned()), "{code} is in docs/openapi.yaml");
    assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(!text.body_text().contains('<'), "{}", text.body_text());
}

/// The `error` codes docs/openapi.yaml lists for the Problem object.
fn documented_codes() -> Vec<String> {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    let problem = &spec[spec.find("    Problem:\n      type: object").expect("a Problem schema")..];
    let line = problem.lines().find_map(|l| l.trim().strip_prefix("enum: [")).expect("the codes");
    line.trim_end_matches(']').split(", ").map(str::to_owned).collect()
}

#[tokio::test]
async fn a_shop_at_capacity_gets_a_page_that_retries_by_itself() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_in_flight = 1;
        o.max_wait = Duration::from_millis(100).into();
    }))
    .await;
    let slow = tokio::spawn(get(gw.addr, "/slow/1500"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answers = ask_three_ways(&gw, "GET", "/tickets", "pl-PL,pl;q=0.9", &[]).await;
    check(&answers, 503, "shop_at_capacity", "pl", "W sklepie jest teraz bardzo tłoczno");
    let retry: u64 = answers[0].header("retry-after").expect("Retry-After").parse().unwrap();
    let html = answers[0].body_text();
    let refresh: u64 = html
        .split(r#"<meta http-equiv="refresh" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("retries by itself: {html}"));
    assert!((retry..=retry + retry / 2).contains(&refresh), "after Retry-After, spread: {refresh} for {retry}");
    let json: serde_json::Value = serde_json::from_slice(&answers[1].body).unwrap();
    assert_eq!(json["retry_after"], retry);
    // A POST is not repeated behind the buyer's back: the page asks them to.
    let posted = ask_three_ways(&gw, "POST", "/checkout", "fr", &[]).await;
    let html = posted[0].body_text();
    assert!(!html.contains("http-equiv=\"refresh\"") && html.contains("Veuillez réessayer dans"), "{html}");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(origin.count(), 1, "nothing shed reached the shop");
}

#[tokio::test]
async fn a_shop_over_its_rate_is_busy() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).origin(|o| {
        o.max_requests_per_second = 1;
        o.burst = 1;
        o.max_wait = Duration::from_millis(10).into();
    }))
    .await;
    assert_eq!(get(gw.addr, "/").await.status, 200);
    let answers = ask_three_ways(&gw, "GET", "/", "es-ES", &[]).await;
    check(&answers, 503, "shop_busy", "es", "La tienda está muy concurrida");
}

#[tokio::test]
async fn an_unreachable_shop_and_a_slow_one_are_told_apart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gw = Gateway::start(&dead).await;
    let answers = ask_three_ways(&gw, "GET", "/", "it", &[]).await;
    check(&answers, 502, "shop_unreachable", "it", "Il negozio non è raggiungibile");

    let origin = Origin::start().await;
    let gw = Gateway::built(
        Gateway::config(&origin.url()).origin(|o| o.response_timeout = Duration::from_millis(300).into()),
    )
    .await;
    let answers = ask_three_ways(&gw, "GET", "/hang", "nl-BE", &[]).await;
    check(&answers, 504, "shop_timeout", "nl", "De winkel reageerde te traag");
    assert!(answers[0].header("retry-after").is_none(), "a timeout promises no time");
}

#[tokio::test]
async fn oversized_headers_and_bodies_get_pages_and_never_reach_the_shop() {
    let origin = Origin::start().await;
    let gw = Gateway::built(Gateway::config(&origin.url()).limits(|l| {
        l.max_header_bytes = ByteSize(16 << 10);
        l.max_body_bytes = ByteSize(1000);
    }))
    .await;
    let cookie = format!("bloat={}", "a".repeat(20 << 10));
    let answers = ask_three_ways(&gw, "GET", "/", "pt-BR", &[("cookie", &cookie)]).await;
    check(&answers, 431, "headers_too_large", "pt", "Seu navegador enviou dados demais");
    // The limit is the same for anteroom's own paths.
    let answers = ask_three_ways(&gw, "GET", "/_anteroom/status?room=x", "pt", &[("cookie", &cookie)]).await;
    check(&answers, 431, "headers_too_large", "pt", "Seu navegador enviou dados demais");
    let answers = ask_three_ways(&gw, "POST", "/upload", "de", &[("content-length", "1001")]).await;
    check(&answers, 413, "body_too_large", "de", "Die gesendeten Daten sind zu groß");
    // A body that turns out too large on the way (no length declared) gets the same.
    let chunked = Request::post("/upload")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(vec![b'x'; 5000])))
        .unwrap();
    let mut chunked = chunked;
    chunked.headers_mut().remove("content-length");
    let answer = send(gw.addr, chunked).await;
    assert_eq!(answer.status, 413);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap()["error"], "body_too_large");
    assert_eq!(origin.count(), 0, "none of it reached the shop");
    // Far beyond the limit, the HTTP parser itself refuses (still 431, without a page).
    let huge = format!("bloat={}", "a".repeat(40 << 10));
    let answer = support::client::raw(
        gw.addr,
        format!("GET / HTTP/1.1\r\nHost: a\r\nCookie: {huge}\r\n\r\n").as_bytes(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(support::client::status_of(&answer), Some(431), "{answer}");
}
