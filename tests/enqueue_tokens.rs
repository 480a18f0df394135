//! One account, one place (`enqueue = "token"`): a place only with a JWT the shop signed
//! for an account and this room; a second browser of the account finds the same place;
//! forged, expired, other-room and other-key tokens buy nothing.

mod support;

use anteroom::config::{EnqueueKey, EnqueueMode, Secret};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use support::origin::Origin;
use support::visitor::Visitor;
use support::{metric, Gateway};

const SECRET: &str = "the shop's enqueue secret, 32+ bytes";

fn token(secret: &str, kid: Option<&str>, sub: &str, room: &str, exp_in: i64) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    let exp = anteroom::time::unix_secs() as i64 + exp_in;
    let claims = serde_json::json!({ "sub": sub, "room": room, "exp": exp });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn fan(sub: &str) -> String {
    token(SECRET, Some("shop-1"), sub, "presale", 600)
}

/// `presale` on `/tickets`, one admission a minute, places by enqueue token only; the
/// first fan took the one admission.
async fn presale() -> (Origin, Gateway) {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("presale", &["/tickets"], |room| {
        room.admit_per_minute = 1;
        room.enqueue = EnqueueMode::Token;
        room.enqueue_key =
            Some(EnqueueKey { kid: "shop-1".into(), secret: Some(Secret::new(SECRET)), public_key_file: None });
    });
    let gw = Gateway::built(config).await;
    let first = Visitor::json(gw.addr).get(&format!("/tickets/0?enqueue_token={}", fan("opener"))).await;
    assert_eq!(first.header("x-anteroom-state"), None, "the first fan walked in");
    (origin, gw)
}

async fn status_with_link(visitor: &mut Visitor, token: &str) -> serde_json::Value {
    let answer = visitor.get(&format!("/tickets/1?seat=A&enqueue_token={token}")).await;
    serde_json::from_slice(&answer.body).unwrap_or_else(|_| panic!("{}", answer.body_text()))
}

async fn places(gw: &Gateway) -> u64 {
    metric(&gw.metrics().await, "anteroom_joins_total{room=\"presale\"}")
}

#[tokio::test]
async fn a_fans_link_takes_a_place_and_a_second_browser_finds_the_same_one() {
    let (_origin, gw) = presale().await;
    let mut laptop = Visitor::json(gw.addr);
    let placed = status_with_link(&mut laptop, &fan("fan-1")).await;
    assert_eq!((placed["state"].as_str(), placed["position"].as_u64()), (Some("waiting"), Some(1)), "{placed}");
    assert_eq!(placed["return_to"], "/tickets/1?seat=A", "the token is not kept as the page to return to");
    assert_eq!(laptop.status("presale").await["position"], 1, "the page's polls keep it without the token");

    let mut phone = Visitor::json(gw.addr);
    let same = status_with_link(&mut phone, &fan("fan-1")).await;
    assert_eq!((same["position"].as_u64(), &same["queue_id"]), (Some(1), &placed["queue_id"]), "{same}");
    let other = status_with_link(&mut Visitor::json(gw.addr), &fan("fan-2")).await;
    assert_eq!(other["position"], 2, "another account, another place");
    // An app: the header, then the join call with the token in its body.
    let mut app = Visitor::json(gw.addr);
    app.get("/_anteroom/status?room=presale").await;
    let joined = app.join_with("presale", &format!("enqueue_token={}", fan("fan-3"))).await;
    assert!(joined.body_text().contains("\"position\":3"), "{}", joined.body_text());
    let again = app.join_with("presale", &format!("enqueue_token={}", fan("fan-1"))).await;
    assert!(again.body_text().contains("\"position\":1"), "fan-1's token on another device: fan-1's place");
    assert_eq!(places(&gw).await, 3, "three accounts, three places, however many browsers");
}

#[tokio::test]
async fn without_a_token_nobody_gets_a_place() {
    let (_origin, gw) = presale().await;
    let mut visitor = Visitor::json(gw.addr);
    for _ in 0..3 {
        let answer = visitor.get("/tickets/1").await;
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            (body["state"].as_str(), body["refused_reason"].as_str()),
            (Some("refused"), Some("enqueue_token_missing"))
        );
    }
    let page = Visitor::new(gw.addr).get("/tickets/1").await.body_text();
    assert!(page.contains("This line is for registered fans"), "{page}");
    assert_eq!(places(&gw).await, 0);
}

#[tokio::test]
async fn forged_expired_other_room_and_other_key_tokens_buy_nothing() {
    let (_origin, gw) = presale().await;
    let cases = [
        ("forged", token("another secret that is long enough!!", Some("shop-1"), "fan", "presale", 600)),
        ("expired", token(SECRET, Some("shop-1"), "fan", "presale", -600)),
        ("another room", token(SECRET, Some("shop-1"), "fan", "sale", 600)),
        ("another key", token(SECRET, Some("shop-2"), "fan", "presale", 600)),
        ("not a token", "garbage".to_owned()),
    ];
    for (case, bad) in cases {
        let mut visitor = Visitor::json(gw.addr);
        let body = status_with_link(&mut visitor, &bad).await;
        assert_eq!(
            (body["state"].as_str(), body["refused_reason"].as_str()),
            (Some("refused"), Some("enqueue_token_invalid")),
            "{case}"
        );
        let join = visitor.join_with("presale", &format!("enqueue_token={bad}")).await;
        assert_eq!(join.status, 403, "{case}: {}", join.body_text());
    }
    assert_eq!(places(&gw).await, 0, "no place for any of them");
    let text = gw.metrics().await;
    assert!(metric(&text, "anteroom_places_refused_total{room=\"presale\",reason=\"enqueue_token_invalid\"}") >= 10);
}

#[tokio::test]
async fn a_room_that_takes_tokens_needs_a_usable_key() {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url())
        .room("presale", &["/tickets"], |room| room.enqueue = EnqueueMode::Token)
        .build()
        .expect_err("no key");
    assert!(config.to_string().contains("rooms[presale].enqueue_key: required with enqueue = \"token\""), "{config}");
    let short = Gateway::config(&origin.url())
        .room("presale", &["/tickets"], |room| {
            room.enqueue = EnqueueMode::Token;
            room.enqueue_key =
                Some(EnqueueKey { kid: "k".into(), secret: Some(Secret::new("short")), public_key_file: None });
        })
        .build()
        .expect_err("a short secret");
    assert!(
        short.to_string().contains("rooms[presale].enqueue_key: an HS256 secret must be at least 32 bytes"),
        "{short}"
    );
}

/// An Ed25519 key pair: the shop's signing key, and its public key as a PEM file.
fn shop_ed25519_key(dir: &std::path::Path) -> (EncodingKey, std::path::PathBuf) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use rustls::pki_types::pem::PemObject;
    let pem = anteroom::token::generate_key(anteroom::token::TokenAlgorithm::EdDsa).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(der.secret_der()).unwrap().public_key().as_ref().to_vec();
    // SubjectPublicKeyInfo of an Ed25519 key: a fixed prefix, then the 32 bytes.
    let spki = [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &public].concat();
    let body = base64::engine::general_purpose::STANDARD.encode(spki);
    let path = dir.join("shop-enqueue.pub.pem");
    std::fs::write(&path, format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")).unwrap();
    (EncodingKey::from_ed_der(der.secret_der()), path)
}

#[tokio::test]
async fn a_shop_signing_with_eddsa_is_checked_with_its_public_key_and_a_challenge_goes_along() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public_file) = shop_ed25519_key(dir.path());
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("presale", &["/tickets"], |room| {
        room.admit_per_minute = 1;
        room.enqueue = EnqueueMode::Token;
        room.enqueue_key = Some(EnqueueKey { kid: "shop-ed".into(), secret: None, public_key_file: Some(public_file) });
        room.challenge = anteroom::config::ChallengeMode::ProofOfWork;
        room.challenge_difficulty = anteroom::config::Difficulty::Bits(8);
    });
    let gw = Gateway::built(config).await;
    let sign = |sub: &str| {
        let claims = serde_json::json!({ "sub": sub, "room": "presale", "exp": anteroom::time::unix_secs() + 600 });
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &private).unwrap()
    };
    let hs256 = token(SECRET, None, "fan-1", "presale", 600);
    let refused = status_with_link(&mut Visitor::json(gw.addr), &hs256).await;
    assert_eq!(refused["refused_reason"], "enqueue_token_invalid", "only the key's algorithm: {refused}");

    // The link: a challenge for the account (the token comes before the proof), then the
    // join with the solution and the token, as the queue page sends them.
    let mut fan = Visitor::json(gw.addr);
    let link = sign("fan-1");
    let status = status_with_link(&mut fan, &link).await;
    assert_eq!(status["state"], "challenge", "{status}");
    let (prefix, bits) = support::visitor::challenge_of(&status);
    let nonce = anteroom::solve_challenge(&prefix, bits);
    let joined = fan.join_with("presale", &format!("pow={nonce}&enqueue_token={link}")).await;
    assert_eq!(joined.status, 200, "{}", joined.body_text());
    assert!(joined.body_text().contains("\"state\":\"admitted\""), "the first fan walks in: {}", joined.body_text());
}
