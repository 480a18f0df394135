//! The visitor's side of the waiting room, on the memory store: a quiet shop shows no
//! queue, a busy one queues fairly, tokens and cookies are handled as docs/API.md says.

mod support;

use anteroom::config::{BypassList, ConfigBuilder, HumanDuration, RoomConfig, Secret, TokenKey};
use anteroom::token::{KeyMaterial, KeySpec, TokenAlgorithm, TokenKeys};
use std::time::Duration;
use support::origin::Origin;
use support::visitor::Visitor;
use support::{metric, Gateway};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Tokens signed with a known key, and one room `sale` on `/tickets`; `set` changes the
/// room's keys from their defaults.
fn room(origin: &Origin, set: impl FnOnce(&mut RoomConfig)) -> ConfigBuilder {
    Gateway::config(&origin.url())
        .tokens(|tokens| {
            tokens.keys =
                vec![TokenKey { kid: "k1".into(), secret: Some(Secret::new(SECRET)), private_key_file: None }];
        })
        .room("sale", &["/tickets"], |room| {
            room.title = Some("The Big Show".into());
            set(room);
        })
}

/// A room that lets one visitor in per minute: after the first, everyone queues.
fn one_a_minute(origin: &Origin) -> ConfigBuilder {
    room(origin, |room| {
        room.admit_per_minute = 1;
        room.bypass = BypassList::parse(&["/tickets/static/", ".css"]);
    })
}

fn keys() -> TokenKeys {
    let spec = KeySpec { kid: "k1".into(), material: KeyMaterial::Secret(SECRET.as_bytes().to_vec()) };
    TokenKeys::new(TokenAlgorithm::Hs256, &[spec], "anteroom", "anteroom", 5).unwrap()
}

fn now() -> u64 {
    anteroom::time::unix_ms() / 1000
}

/// Lets the first visitor in, so that the room has a line from now on.
#[tokio::test]
async fn a_quiet_shop_shows_no_queue_and_the_origin_never_sees_our_cookies() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |_| {})).await;
    let mut buyer = Visitor::new(gw.addr);
    buyer.cookies.insert("shop_session".into(), "abc".into());
    let answer = buyer.get("/tickets/42").await;
    assert_eq!((answer.status.as_u16(), answer.body_text().as_str()), (200, "hello"));
    assert!(buyer.cookie("anteroom_t_sale").is_some(), "admitted: the token cookie is set");
    let set_cookie = answer.header("set-cookie").unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax") && set_cookie.contains("Path=/"));

    assert_eq!(buyer.get("/tickets/43").await.body_text(), "hello");
    let seen = origin.seen();
    let last = &seen.last().unwrap().headers;
    assert_eq!(last.get("cookie").unwrap(), "shop_session=abc", "anteroom's cookies are stripped");
    assert_eq!(last.get("x-anteroom-room").unwrap(), "sale");
    let claims = keys().verify(buyer.cookie("anteroom_t_sale").unwrap(), "sale").unwrap();
    assert_eq!(last.get("x-anteroom-session").unwrap().to_str().unwrap(), claims.sid);
    assert!(gw.metrics().await.contains("anteroom_admitted_total{room=\"sale\"} 1"));
}

#[tokio::test]
async fn paths_outside_every_room_and_bypassed_paths_skip_the_queue() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    for path in ["/", "/about", "/ticketsx", "/tickets/static/app.js", "/tickets/site.css"] {
        let answer = Visitor::new(gw.addr).get(path).await;
        assert_eq!(answer.body_text(), "hello", "{path}");
    }
    for path in [
        "/tickets/2",
        "/Tickets/2",
        "//tickets/2",
        "/x/../tickets/2",
        "/tick%65ts/2",
        "/tickets;x=1/2",
        "/tickets/buy;.css",
    ] {
        let answer = Visitor::new(gw.addr).get(path).await;
        assert_eq!(answer.header("x-anteroom-state"), Some("waiting"), "{path} must be queued");
    }
}

#[tokio::test]
async fn a_queued_buyer_sees_the_page_then_returns_to_the_page_they_asked_for() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| room.admit_per_minute = 30)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut buyer = Visitor::new(gw.addr);
    let page = buyer.get("/tickets/7?seat=A12").await;
    assert_eq!(page.status.as_u16(), 200);
    assert_eq!(page.header("x-anteroom-state"), Some("waiting"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let html = page.body_text();
    assert!(html.contains("The Big Show") && html.contains("You are in line"), "{html}");
    assert!(html.contains(r#"data-anteroom-return-to="/tickets/7?seat=A12""#));
    assert!(buyer.cookie("anteroom_q_sale").is_some());
    let before = origin.count();

    // The page's script polls; the first poll with the cookie takes the place.
    buyer.json = true;
    let status = buyer.get("/_anteroom/status?room=sale&return_to=%2Ftickets%2F7%3Fseat%3DA12").await;
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!((status["state"].as_str(), status["position"].as_u64()), (Some("waiting"), Some(1)));
    assert_eq!(status["room"], "sale");
    assert!(status["eta_seconds"].as_u64().is_some() && status["poll_after_ms"].as_u64().unwrap() >= 800);
    for field in ["queue_length", "opens_at", "return_to"] {
        assert!(status.get(field).is_some(), "{field} missing");
    }

    let mut last_position = 1;
    let admitted = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = buyer.get("/_anteroom/status?room=sale&return_to=%2Ftickets%2F7%3Fseat%3DA12").await;
        let s: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        if s["state"] == "admitted" {
            break s;
        }
        let position = s["position"].as_u64().unwrap();
        assert!(position <= last_position, "positions never go up");
        last_position = position;
    };
    assert_eq!(admitted["return_to"], "/tickets/7?seat=A12");
    assert!(buyer.cookie("anteroom_t_sale").is_some());
    assert_eq!(origin.count(), before, "nothing reached the shop while waiting");
    buyer.json = false;
    assert_eq!(buyer.get("/tickets/7?seat=A12").await.body_text(), "hello");
}

#[tokio::test]
async fn ten_tabs_hold_one_place() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    Visitor::json(gw.addr).join("/tickets/1").await;
    let mut tabs = Visitor::json(gw.addr);
    tabs.get("/tickets/1").await; // the cookie
    for _ in 0..10 {
        let answer: serde_json::Value = serde_json::from_slice(&tabs.get("/tickets/1").await.body).unwrap();
        assert_eq!((answer["position"].as_u64(), answer["queue_length"].as_u64()), (Some(2), Some(2)));
    }
}

#[tokio::test]
async fn a_cookieless_client_hammering_a_protected_path_does_not_grow_the_queue() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    for _ in 0..300 {
        let answer = support::client::get(gw.addr, "/tickets/1").await;
        assert_eq!(answer.header("x-anteroom-state"), Some("waiting"));
    }
    let mut real = Visitor::json(gw.addr);
    real.get("/tickets/1").await;
    let status: serde_json::Value = serde_json::from_slice(&real.get("/tickets/1").await.body).unwrap();
    assert_eq!(status["position"].as_u64(), Some(1), "300 cookie-less hits hold no place");
    assert_eq!(status["queue_length"].as_u64(), Some(1));
}

#[tokio::test]
async fn forged_and_broken_tokens_are_treated_as_no_token_and_counted() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let real = keys().issue("visitor-1", "sale", "visitor-1", now(), 600);
    let (head, rest) = real.split_once('.').unwrap();
    let (_payload, signature) = rest.split_once('.').unwrap();
    let b64 = |json: &str| base64_url(json.as_bytes());
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#), b64(&claims_json("sale", 600)));
    let other_key = {
        let spec =
            KeySpec { kid: "k1".into(), material: KeyMaterial::Secret(b"another-secret-another-secret-32".to_vec()) };
        TokenKeys::new(TokenAlgorithm::Hs256, &[spec], "anteroom", "anteroom", 5).unwrap().issue(
            "v",
            "sale",
            "v",
            now(),
            600,
        )
    };
    let tampered = format!("{head}.{}.{signature}", b64(&claims_json("sale", 6000)));
    let cases = [
        ("alg none", alg_none, "algorithm"),
        ("wrong key", other_key, "signature"),
        ("other room", keys().issue("v", "vip", "v", now(), 600), "other_room"),
        ("expired beyond the leeway", keys().issue("v", "sale", "v", now() - 700, 600), "expired"),
        ("tampered payload", tampered, "signature"),
        ("truncated", real[..real.len() - 10].to_owned(), "signature"),
        ("garbage", "not-a-token".to_owned(), "malformed"),
    ];
    for (what, token, reason) in cases {
        let mut forger = Visitor::new(gw.addr);
        forger.cookies.insert("anteroom_t_sale".into(), token);
        let before = origin.count();
        let answer = forger.get("/tickets/1").await;
        assert_eq!(answer.header("x-anteroom-state"), Some("waiting"), "{what}: must be queued");
        assert_eq!(origin.count(), before, "{what}: nothing reached the origin");
        assert!(forger.cookie("anteroom_t_sale").is_none(), "{what}: the bad cookie is cleared");
        let series = format!("anteroom_tokens_rejected_total{{room=\"sale\",reason=\"{reason}\"}}");
        assert!(metric(&gw.metrics().await, &series) >= 1, "{what}: {series} not counted");
    }

    // A valid token in the URL is not a token.
    let answer = Visitor::new(gw.addr).get(&format!("/tickets/1?anteroom_t_sale={real}")).await;
    assert_eq!(answer.header("x-anteroom-state"), Some("waiting"));
    assert_eq!(metric(&gw.metrics().await, "anteroom_tokens_rejected_total{room=\"sale\",reason=\"in_url\"}"), 1);

    // And the real one works.
    let mut holder = Visitor::new(gw.addr);
    holder.cookies.insert("anteroom_t_sale".into(), real);
    assert_eq!(holder.get("/tickets/1").await.body_text(), "hello");
}

#[tokio::test]
async fn an_hs256_token_made_with_an_asymmetric_public_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("ed25519.pem");
    std::fs::write(&key_path, anteroom::token::generate_key(TokenAlgorithm::EdDsa).unwrap()).unwrap();
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url())
        .tokens(|tokens| {
            tokens.algorithm = TokenAlgorithm::EdDsa;
            tokens.keys = vec![TokenKey { kid: "ed".into(), secret: None, private_key_file: Some(key_path.clone()) }];
        })
        .room("sale", &["/tickets"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    gw.take_first_slot("/tickets/1").await;
    let jwks: serde_json::Value =
        serde_json::from_slice(&Visitor::new(gw.addr).get("/_anteroom/jwks.json").await.body).unwrap();
    let public = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let spec = KeySpec { kid: "ed".into(), material: KeyMaterial::Secret(public.into_bytes()) };
    let forged = TokenKeys::new(TokenAlgorithm::Hs256, &[spec], "anteroom", "anteroom", 5).unwrap().issue(
        "v",
        "sale",
        "v",
        now(),
        600,
    );
    let mut forger = Visitor::new(gw.addr);
    forger.cookies.insert("anteroom_t_sale".into(), forged);
    assert_eq!(forger.get("/tickets/1").await.header("x-anteroom-state"), Some("waiting"));
    assert_eq!(metric(&gw.metrics().await, "anteroom_tokens_rejected_total{room=\"sale\",reason=\"algorithm\"}"), 1);
}

#[tokio::test]
async fn a_token_past_half_its_life_is_renewed_on_a_forwarded_request() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| room.session_duration = HumanDuration::secs(60))).await;
    let old = keys().issue("visitor-9", "sale", "visitor-9", now() - 40, 60);
    let mut buyer = Visitor::new(gw.addr);
    buyer.cookies.insert("anteroom_t_sale".into(), old.clone());
    assert_eq!(buyer.get("/tickets/1").await.body_text(), "hello");
    let renewed = buyer.cookie("anteroom_t_sale").unwrap().to_owned();
    assert_ne!(renewed, old);
    let claims = keys().verify(&renewed, "sale").unwrap();
    assert!(claims.exp >= now() + 59 && claims.sid == "visitor-9");

    // A young token is left alone (no store write per request).
    let answer = buyer.get("/tickets/2").await;
    assert!(answer.header("set-cookie").is_none());
}

#[tokio::test]
async fn the_origin_ends_a_session_with_a_revoke_command() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| room.max_active_users = 1)).await;
    let mut buyer = gw.take_first_slot("/tickets/1").await;
    let token = buyer.cookie("anteroom_t_sale").unwrap().to_owned();
    let mut next = Visitor::json(gw.addr);
    assert_eq!(next.join("/tickets/1").await["state"], "waiting", "the house is full");

    let answer = buyer.get("/tickets/revoke").await;
    assert_eq!(answer.body_text(), "thank you for your order");
    assert!(answer.header("x-anteroom-command").is_none(), "the command is for anteroom only");
    assert!(buyer.cookie("anteroom_t_sale").is_none(), "the token cookie is cleared");

    let mut replay = Visitor::new(gw.addr);
    replay.cookies.insert("anteroom_t_sale".into(), token);
    assert_eq!(
        replay.get("/tickets/1").await.header("x-anteroom-state"),
        Some("waiting"),
        "a revoked token is refused"
    );
    assert_eq!(metric(&gw.metrics().await, "anteroom_tokens_rejected_total{room=\"sale\",reason=\"revoked\"}"), 1);

    next.wait_until_admitted("sale", Duration::from_secs(5)).await; // the freed place goes to the next in line
}

#[tokio::test]
async fn leaving_gives_the_place_up() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut first = Visitor::json(gw.addr);
    first.join("/tickets/1").await;
    let mut second = Visitor::json(gw.addr);
    second.get("/tickets/1").await; // the cookie; the status call takes the place
    assert_eq!(second.status("sale").await["position"].as_u64(), Some(2));
    let left = first.post("/_anteroom/leave?room=sale").await;
    assert_eq!(left.status.as_u16(), 200);
    assert!(first.cookie("anteroom_q_sale").is_none());
    assert_eq!(second.status("sale").await["position"].as_u64(), Some(1));
}

#[tokio::test]
async fn the_api_refuses_what_it_does_not_know() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |_| {})).await;
    let mut v = Visitor::json(gw.addr);
    assert_eq!(v.get("/_anteroom/status").await.status.as_u16(), 400);
    assert_eq!(v.get("/_anteroom/status?room=nope").await.status.as_u16(), 404);
    assert_eq!(v.get("/_anteroom/join?room=sale").await.status.as_u16(), 405);
    assert_eq!(v.get("/_anteroom/other").await.status.as_u16(), 404);
    assert_eq!(origin.count(), 0);
    // An app joins with POST: in a quiet room that is an admission at once.
    let joined: serde_json::Value = serde_json::from_slice(&v.post("/_anteroom/join?room=sale").await.body).unwrap();
    assert_eq!(joined["state"], "admitted");
}

#[tokio::test]
async fn every_open_redirect_variant_falls_back_to_the_root() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut v = Visitor::json(gw.addr);
    for evil in [
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "https%3Aevil.example",
        "https%3A%2F%2Fevil.example",
        "%2Fx%0D%0ALocation%3A%20%2F%2Fevil",
        "%2F%09%2Fevil.example",
        "evil.example",
        // Browsers resolve dot segments: /.//evil.example becomes //evil.example.
        "%2F.%2F%2Fevil.example",
        "%2F..%2F%2Fevil.example",
        "%2F%252e%2F%2Fevil.example",
        "%2Fa%2F..%2F%2Fevil.example",
    ] {
        let s: serde_json::Value =
            serde_json::from_slice(&v.get(&format!("/_anteroom/status?room=sale&return_to={evil}")).await.body)
                .unwrap();
        assert_eq!(s["return_to"], "/", "{evil}");
    }
    let s: serde_json::Value =
        serde_json::from_slice(&v.get("/_anteroom/status?room=sale&return_to=%2Ftickets%2F9").await.body).unwrap();
    assert_eq!(s["return_to"], "/tickets/9");
}

#[tokio::test]
async fn the_queue_remembers_the_page_first_asked_for() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut v = Visitor::json(gw.addr);
    assert_eq!(v.join("/tickets/42?seat=A12").await["state"], "waiting");
    // An app polling without return_to is told the page the visitor first asked for…
    assert_eq!(v.status("sale").await["return_to"], "/tickets/42?seat=A12");
    // …not a later one, and the caller's own return_to still wins.
    v.get("/tickets/99").await;
    assert_eq!(v.status("sale").await["return_to"], "/tickets/42?seat=A12");
    let named = v.get("/_anteroom/status?room=sale&return_to=%2Ftickets%2F7").await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&named.body).unwrap()["return_to"], "/tickets/7");
    // A visitor who asked for nothing in particular goes back to the root.
    let mut plain = Visitor::json(gw.addr);
    assert_eq!(plain.status("sale").await["return_to"], "/");
}

#[tokio::test]
async fn the_queue_status_and_json_are_configurable() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| {
        room.admit_per_minute = 1;
        room.queueing_status = 503;
    }))
    .await;
    gw.take_first_slot("/tickets/1").await;
    let answer = Visitor::json(gw.addr).get("/tickets/1").await;
    assert_eq!(answer.status.as_u16(), 503);
    assert!(answer.header("retry-after").is_some());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!((body["state"].as_str(), body["position"].as_u64()), (Some("waiting"), None));
}

fn claims_json(room: &str, ttl: u64) -> String {
    let now = now();
    format!(
        r#"{{"iss":"anteroom","aud":"anteroom","sub":"v","room":"{room}","sid":"v","iat":{now},"nbf":{now},"exp":{}}}"#,
        now + ttl
    )
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_forged_queue_cookie_buys_no_better_place() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    Visitor::json(gw.addr).join("/tickets/1").await;
    let mut cheat = Visitor::json(gw.addr);
    assert_eq!(cheat.join("/tickets/1").await["position"].as_u64(), Some(2));
    // Claim an earlier sequence: v1.{visitor}.{epoch}.{seq}.{shown}.{mac}
    let cookie = cheat.cookie("anteroom_q_sale").unwrap().to_owned();
    let mut parts: Vec<&str> = cookie.split('.').collect();
    parts[3] = "1";
    let forged = parts.join(".");
    cheat.cookies.insert("anteroom_q_sale".into(), forged.clone());
    let answer: serde_json::Value = serde_json::from_slice(&cheat.get("/tickets/1").await.body).unwrap();
    assert_eq!(answer["position"], serde_json::Value::Null, "a forged cookie is no cookie: no place at all");
    assert_ne!(cheat.cookie("anteroom_q_sale"), Some(forged.as_str()), "a fresh cookie replaces it");
    let status = cheat.status("sale").await;
    assert_eq!(status["position"].as_u64(), Some(3), "back of the line, never ahead");
    assert_eq!(origin.count(), 1, "only the first visitor ever reached the shop");
}

#[tokio::test]
async fn the_page_speaks_the_visitors_language_and_loads_nothing_from_elsewhere() {
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let page = |accept: &'static str, path: &'static str| {
        let addr = gw.addr;
        async move {
            let req = http::Request::get(path)
                .header("host", "shop.example")
                .header("accept-language", accept)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            support::client::send(addr, req).await
        }
    };
    let german = page("de-DE,de;q=0.9,en;q=0.5", "/tickets/1").await.body_text();
    assert!(german.contains(r#"<html lang="de">"#) && german.contains("Sie sind in der Warteschlange"), "{german}");
    let english = page("de-DE", "/tickets/1?lang=en").await.body_text();
    assert!(english.contains(r#"<html lang="en">"#) && english.contains("You are in line"));
    let fallback = page("sv-SE", "/tickets/1").await.body_text();
    assert!(fallback.contains(r#"<html lang="en">"#));

    // Everything the page loads is ours, versioned, and cacheable.
    let mut weight = english.len();
    for asset in ["queue.css", "queue.js"] {
        let marker = format!("/_anteroom/assets/{asset}?v=");
        let start = english.find(&marker).unwrap_or_else(|| panic!("{asset} is linked"));
        let url: String = english[start..].chars().take_while(|c| *c != '"').collect();
        let answer = Visitor::new(gw.addr).get(&url).await;
        assert_eq!(answer.status.as_u16(), 200);
        assert_eq!(answer.header("cache-control"), Some("public, max-age=31536000, immutable"));
        let etag = answer.header("etag").unwrap().to_owned();
        let req = http::Request::get(&url)
            .header("host", "shop.example")
            .header("if-none-match", &etag)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(support::client::send(gw.addr, req).await.status.as_u16(), 304);
        weight += answer.body.len();
        let text = answer.body_text();
        assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "{asset}");
    }
    for external in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!english.contains(external), "the page refers to another host: {external}");
    }
    assert!(weight < 50 * 1024, "page weight {weight} bytes");
    assert_eq!(origin.count(), 1, "assets and pages never touch the shop");
}

#[tokio::test]
async fn a_room_can_have_its_own_page() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("sale.html");
    std::fs::write(
        &template,
        "<!doctype html><html lang=\"{{ lang }}\"><head>{{ head|safe }}</head><body><main {{ hooks|safe }}>\
         <h1>Welcome to {{ title }}</h1><p>Place <b data-anteroom=\"position\">{{ position }}</b> of {{ queue_length }}, \
         {{ eta_text }}</p><p>{{ t.calm }}</p></main>{{ scripts|safe }}</body></html>",
    )
    .unwrap();
    let origin = Origin::start().await;
    let config = room(&origin, |room| {
        room.admit_per_minute = 1;
        room.template = Some(template.clone());
    });
    let gw = Gateway::built(config).await;
    gw.take_first_slot("/tickets/1").await;
    let mut buyer = Visitor::new(gw.addr);
    buyer.get("/tickets/1").await;
    let html = buyer.get("/tickets/1?lang=de").await.body_text();
    assert!(html.contains("Welcome to The Big Show"), "{html}");
    assert!(html.contains("Place <b data-anteroom=\"position\">1</b> of 1"), "{html}");
    assert!(html.contains("Ihr Platz bleibt erhalten"), "the texts follow the language");
    assert!(html.contains("/_anteroom/assets/queue.js?v="), "the updater script comes with `scripts`");
}

#[tokio::test]
async fn the_status_object_matches_the_openapi_description() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    let status_schema = &spec[spec.find("    Status:").expect("a Status schema")..];
    let required: Vec<&str> = status_schema
        .lines()
        .find_map(|l| l.trim().strip_prefix("required: ["))
        .and_then(|l| l.strip_suffix(']'))
        .expect("the required fields")
        .split(", ")
        .collect();
    let origin = Origin::start().await;
    let gw = Gateway::built(one_a_minute(&origin)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut v = Visitor::json(gw.addr);
    let status = v.join("/tickets/1").await;
    let mut fields: Vec<&str> = status.as_object().unwrap().keys().map(String::as_str).collect();
    let mut documented = required.clone();
    fields.sort();
    documented.sort();
    assert_eq!(fields, documented, "docs/openapi.yaml and the status object differ");
}

#[tokio::test]
async fn a_room_can_cover_one_host_only() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| {
        room.admit_per_minute = 1;
        room.hosts = vec!["VIP.example".into()];
    }))
    .await;
    let get = |host: &'static str| {
        let addr = gw.addr;
        async move {
            let req = http::Request::get("/tickets/1")
                .header("host", host)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            support::client::send(addr, req).await
        }
    };
    assert_eq!(get("vip.example:8080").await.body_text(), "hello", "the first walks in");
    assert_eq!(get("vip.example").await.header("x-anteroom-state"), Some("waiting"), "then the room is busy");
    assert_eq!(get("shop.example").await.body_text(), "hello", "other hosts are not this room's");
}

#[tokio::test]
async fn metrics_count_requests_by_decision_time_in_line_and_store_calls() {
    let origin = Origin::start().await;
    let gw = Gateway::built(room(&origin, |room| room.admit_per_minute = 60)).await;
    gw.take_first_slot("/tickets/1").await;
    let mut waiter = Visitor::new(gw.addr);
    assert_eq!(waiter.join("/tickets/1").await["state"], "waiting");
    tokio::time::sleep(Duration::from_millis(600)).await;
    waiter.wait_until_admitted("sale", Duration::from_secs(10)).await;
    assert_eq!(waiter.get("/tickets/1").await.body_text(), "hello");

    let text = gw.metrics().await;
    // The first walked in (0 s); the second waited for the next admission.
    assert_eq!(metric(&text, "anteroom_wait_seconds_count{room=\"sale\"}"), 2, "{text}");
    assert_eq!(metric(&text, "anteroom_wait_seconds_bucket{room=\"sale\",le=\"1\"}"), 1, "{text}");
    assert_eq!(metric(&text, "anteroom_wait_seconds_bucket{room=\"sale\",le=\"10\"}"), 2, "{text}");
    let sum = text.lines().find_map(|l| l.strip_prefix("anteroom_wait_seconds_sum{room=\"sale\"} ")).unwrap();
    assert!(sum.parse::<f64>().unwrap() >= 0.5, "the waiter's wait is counted: {sum}");
    for (decision, at_least) in [("admitted", 1), ("queued", 1), ("reserved", 1), ("forwarded", 1)] {
        let series = format!("anteroom_requests_total{{decision=\"{decision}\"}}");
        assert!(metric(&text, &series) >= at_least, "{series} in {text}");
    }
    assert_eq!(metric(&text, "anteroom_requests_total{decision=\"shed\"}"), 0);
    for op in ["visit", "tick"] {
        let series = format!("anteroom_store_latency_seconds_count{{op=\"{op}\"}}");
        assert!(metric(&text, &series) >= 1, "{series} in {text}");
    }
    let version = format!("anteroom_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");
    assert!(text.contains("anteroom_config_reloads_total{result=\"failure\"} 0"), "{text}");
}
