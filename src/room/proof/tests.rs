use super::*;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{MemoryStore, Store};
use http::Request;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

fn solution(nonce: &str, prefix: Option<&str>) -> Option<Solution> {
    Some(Solution { nonce: nonce.into(), prefix: prefix.map(str::to_owned) })
}

fn read(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Option<Solution> {
    Solution::of(&crate::room::params::JoinParams::read(query, content_type, body))
}

#[test]
fn a_solution_is_read_from_the_query_a_form_or_json() {
    assert_eq!(read(Some("room=sale&pow=42"), None, b""), solution("42", None));
    let form = b"challenge=c1%3A9%3A12%3Amac%3A&pow=7";
    assert_eq!(
        read(Some("room=sale"), Some("application/x-www-form-urlencoded"), form),
        solution("7", Some("c1:9:12:mac:"))
    );
    let json = br#"{"pow": 99, "challenge": "c1:9:12:mac:"}"#;
    assert_eq!(read(None, Some("application/json"), json), solution("99", Some("c1:9:12:mac:")));
    assert_eq!(read(None, Some("application/json"), br#"{"pow":"5"}"#), solution("5", None));
    assert_eq!(read(Some("room=sale"), None, b""), None);
    assert_eq!(read(None, Some("application/json"), b"{not json"), None);
    assert_eq!(read(None, None, &[0xff, 0xfe]), None);
}

/// A room `sale` asking an 8-bit proof, on a clock the test moves by hand.
fn gated() -> (WaitingRoom, Arc<AtomicU64>) {
    let now_us = Arc::new(AtomicU64::new(crate::time::unix_us()));
    let read = now_us.clone();
    let clock: crate::time::Clock = Arc::new(move || read.load(Relaxed));
    let config = Config::builder("http://shop:1")
        .room("sale", &["/tickets"], |room| {
            room.admit_per_minute = 1;
            room.challenge = crate::config::ChallengeMode::ProofOfWork;
            room.challenge_difficulty = Difficulty::Bits(8);
        })
        .build()
        .expect("valid config");
    let metrics = Arc::new(Metrics::with_rooms(["sale"]));
    let store = Arc::new(Store::Memory(MemoryStore::default()));
    (WaitingRoom::with_clock(&config, store, config.tokens.load().unwrap(), metrics, clock).unwrap(), now_us)
}

async fn call(room: &WaitingRoom, path: &str, cookies: &str, body: &str) -> (u16, serde_json::Value, String) {
    let method = if path.contains("join") { http::Method::POST } else { http::Method::GET };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .unwrap();
    let answer = room.reserved(req, false, std::net::Ipv4Addr::LOCALHOST.into()).await;
    let status = answer.status().as_u16();
    let set: Vec<String> = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let bytes = http_body_util::BodyExt::collect(answer.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap(), set.join("; "))
}

#[tokio::test]
async fn an_expired_challenge_buys_nothing_and_a_new_one_is_handed_out() {
    let (room, now_us) = gated();
    let (_, status, cookies) = call(&room, "/_anteroom/status?room=sale", "", "").await;
    let prefix = status["challenge"]["prefix"].as_str().unwrap().to_owned();
    let nonce = challenge::solve(&prefix, 8);
    now_us.fetch_add(challenge::CHALLENGE_TTL.as_micros() as u64 + 1_000_000, Relaxed);
    let (code, body, _) = call(&room, "/_anteroom/join?room=sale", &cookies, &format!("pow={nonce}")).await;
    assert_eq!(code, 200, "a slow phone is no error: {body}");
    assert_eq!((body["state"].as_str(), body["challenge_refused"].as_str()), (Some("challenge"), Some("expired")));
    assert_ne!(body["challenge"]["prefix"].as_str(), Some(prefix.as_str()), "a new challenge: {body}");
    let stats = room.store.stats("sale", &room.rooms[0].policy()).await.unwrap();
    assert_eq!((stats.queue_length, stats.active_sessions), (0, 0), "no place, no admission");
    assert_eq!(room.metrics.room(0).challenges.get(ChallengeResult::Expired), 1);
}

#[tokio::test]
async fn a_fresh_challenge_is_handed_out_again_until_it_nears_its_expiry() {
    let (room, now_us) = gated();
    let (_, first, cookies) = call(&room, "/_anteroom/status?room=sale", "", "").await;
    let (_, again, _) = call(&room, "/_anteroom/status?room=sale", &cookies, "").await;
    assert_eq!(first["challenge"], again["challenge"]);
    now_us.fetch_add(9 * 60 * 1_000_000, Relaxed);
    let (_, later, _) = call(&room, "/_anteroom/status?room=sale", &cookies, "").await;
    assert_ne!(first["challenge"]["prefix"], later["challenge"]["prefix"], "too little time left to solve it");
    assert_eq!(room.metrics.room(0).challenges.get(ChallengeResult::Issued), 2);
}
