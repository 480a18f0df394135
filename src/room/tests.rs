//! The room's decision for a request, without sockets: a memory store, a request value,
//! and the answer or ticket it gets.

use super::ticket::Ticket;
use super::*;
use crate::config::OnFailure;
use crate::response::{self, Body};
use crate::store::faulty::Faulty;
use crate::store::MemoryStore;
use http::{HeaderMap, Request, Response};
use std::net::Ipv4Addr;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// One room, `sale`, on `/tickets` with its static files bypassed.
fn config(on_failure: OnFailure) -> Config {
    Config::builder("http://shop:1")
        .room("sale", &["/tickets"], |room| room.bypass = crate::config::BypassList::parse(&["/tickets/static/"]))
        .store(|store| store.on_failure = on_failure)
        .build()
        .expect("valid config")
}

fn room_on(config: &Config, store: Store) -> WaitingRoom {
    let metrics = Arc::new(Metrics::with_rooms(["sale"]));
    WaitingRoom::new(config, Arc::new(store), config.tokens.load().expect("keys"), metrics).expect("rooms")
}

fn waiting() -> WaitingRoom {
    room_on(&config(OnFailure::Closed), Store::Memory(MemoryStore::default()))
}

/// A room whose store can be taken down.
fn faulty(on_failure: OnFailure) -> WaitingRoom {
    room_on(&config(on_failure), Store::Faulty(Faulty::default()))
}

fn set_store_down(room: &WaitingRoom, down: bool) {
    let Store::Faulty(store) = &*room.store else { panic!("not a faulty store") };
    store.set_down(down);
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut req = Request::get(path).header("host", "shop.example");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(()).expect("request")
}

/// The `name=value` parts of the `Set-Cookie` lines, joined as a `Cookie` header.
fn cookie_header(answer: &HeaderMap) -> String {
    let pairs = answer.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    pairs.collect::<Vec<_>>().join("; ")
}

fn forwarded(admission: Admission<'_>) -> Ticket<'_> {
    match admission {
        Admission::Forward(ticket) => ticket,
        Admission::Answer(answer, why) => panic!("answered ({why:?}, {}) instead of forwarded", answer.status()),
    }
}

#[tokio::test]
async fn outside_the_rooms_the_ticket_only_cleans_the_request() {
    let room = waiting();
    let forged = [("cookie", "anteroom_t_sale=forged; theme=dark"), ("x-anteroom-session", "forged")];
    let ticket = forwarded(room.admission(&get("/about", &forged), CLIENT, false).await);
    assert!(!ticket.admitted_now());
    let mut headers = get("/about", &forged).into_parts().0.headers;
    ticket.prepare(&mut headers);
    assert_eq!(headers.get("cookie").unwrap(), "theme=dark", "anteroom's cookies never reach the shop");
    assert!(headers.get("x-anteroom-session").is_none(), "nor a session a client made up");
}

#[tokio::test]
async fn a_request_the_room_cannot_place_is_refused() {
    let room = waiting();
    let no_host = Request::get("/tickets/1").body(()).unwrap();
    match room.admission(&no_host, CLIENT, false).await {
        Admission::Answer(answer, Answered::Rejected) => assert_eq!(answer.status(), 400),
        _ => panic!("a request without a host must be refused"),
    }
}

#[tokio::test]
async fn a_bypass_rule_forwards_without_a_session() {
    let room = waiting();
    let ticket = forwarded(room.admission(&get("/tickets/static/app.css", &[]), CLIENT, false).await);
    let mut headers = HeaderMap::new();
    ticket.prepare(&mut headers);
    assert!(headers.get("x-anteroom-session").is_none());
}

#[tokio::test]
async fn a_paused_room_queues_a_new_visitor_with_a_cookie() {
    let room = waiting();
    room.store.set_paused("sale", true).await.unwrap();
    room.rooms[0].note_paused(true);
    let json = [("accept", "application/json")];
    match room.admission(&get("/tickets/1", &json), CLIENT, false).await {
        Admission::Answer(answer, Answered::Queued) => {
            assert_eq!(answer.headers()["x-anteroom-state"], "paused");
            assert!(cookie_header(answer.headers()).starts_with("anteroom_q_sale="), "the visitor gets a queue cookie");
        }
        _ => panic!("a paused room lets nobody new in"),
    }
}

#[tokio::test]
async fn an_admitted_visitor_is_named_to_the_origin_and_a_revoke_ends_it() {
    let room = waiting();
    // An empty room lets the first visitor in at once.
    let ticket = forwarded(room.admission(&get("/tickets/1", &[]), CLIENT, true).await);
    assert!(ticket.admitted_now());
    let mut headers = get("/tickets/1", &[("x-anteroom-room", "vip")]).into_parts().0.headers;
    ticket.prepare(&mut headers);
    assert_eq!(headers["x-anteroom-room"], "sale", "the room anteroom admitted to, not the client's word");
    let session = headers["x-anteroom-session"].to_str().unwrap().to_owned();
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "ok");
    ticket.finish(&mut answer).await;
    let cookies = cookie_header(answer.headers());
    assert!(cookies.contains("anteroom_t_sale="), "{cookies}");

    // With its token, the next request carries the same session.
    let with_token = [("cookie", cookies.as_str())];
    let ticket = forwarded(room.admission(&get("/tickets/2", &with_token), CLIENT, true).await);
    assert!(!ticket.admitted_now());
    let mut headers = HeaderMap::new();
    ticket.prepare(&mut headers);
    assert_eq!(headers["x-anteroom-session"].to_str().unwrap(), session);

    // The origin revokes it: the command is not passed on, and the cookie is cleared as
    // it was set (Secure, over TLS).
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "booked");
    answer.headers_mut().insert("x-anteroom-command", http::HeaderValue::from_static("revoke"));
    ticket.finish(&mut answer).await;
    assert!(answer.headers().get("x-anteroom-command").is_none());
    let cleared = answer.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("anteroom_t_sale=;") && cleared.contains("Max-Age=0") && cleared.contains("Secure"));
    let revoked = room.admission(&get("/tickets/3", &with_token), CLIENT, true).await;
    if let Admission::Forward(ticket) = &revoked {
        let mut headers = HeaderMap::new();
        ticket.prepare(&mut headers);
        assert_ne!(
            headers.get("x-anteroom-session").and_then(|v| v.to_str().ok()),
            Some(session.as_str()),
            "a revoked token carries no session"
        );
    }
}

#[tokio::test]
async fn with_the_store_away_a_closed_room_shows_paused_and_lets_nobody_new_in() {
    let room = faulty(OnFailure::Closed);
    set_store_down(&room, true);
    match room.admission(&get("/tickets/1", &[("accept", "application/json")]), CLIENT, false).await {
        Admission::Answer(answer, Answered::Queued) => assert_eq!(answer.headers()["x-anteroom-state"], "paused"),
        _ => panic!("on_failure = closed: nobody new reaches the shop"),
    }
    assert!(!room.metrics.is_store_up(), "the outage is noted");
}

#[tokio::test]
async fn with_the_store_away_an_open_room_forwards_without_a_session() {
    let room = faulty(OnFailure::Open);
    set_store_down(&room, true);
    let ticket = forwarded(room.admission(&get("/tickets/1", &[]), CLIENT, false).await);
    assert!(!ticket.admitted_now());
    let mut headers = HeaderMap::new();
    ticket.prepare(&mut headers);
    assert!(headers.get("x-anteroom-session").is_none(), "nobody was admitted: there is no session to name");
}

#[tokio::test]
async fn a_token_holder_shops_on_while_the_store_is_away() {
    let room = faulty(OnFailure::Closed);
    let ticket = forwarded(room.admission(&get("/tickets/1", &[]), CLIENT, false).await);
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "ok");
    ticket.finish(&mut answer).await;
    let cookies = cookie_header(answer.headers());
    set_store_down(&room, true);
    let ticket = forwarded(room.admission(&get("/tickets/2", &[("cookie", cookies.as_str())]), CLIENT, false).await);
    let mut headers = HeaderMap::new();
    ticket.prepare(&mut headers);
    assert!(headers.get("x-anteroom-session").is_some(), "the admitted buyer is not sent back to the line");
}

#[tokio::test]
async fn a_token_past_half_its_life_is_renewed_without_waiting_for_it() {
    // The room's clock is moved by hand: half a session (15 min) passes in an instant.
    let now_us = Arc::new(std::sync::atomic::AtomicU64::new(crate::time::unix_us()));
    let read = now_us.clone();
    let clock: crate::time::Clock = Arc::new(move || read.load(std::sync::atomic::Ordering::Relaxed));
    let config = config(OnFailure::Closed);
    let metrics = Arc::new(Metrics::with_rooms(["sale"]));
    let store = Arc::new(Store::Memory(MemoryStore::default()));
    let room = WaitingRoom::with_clock(&config, store, config.tokens.load().unwrap(), metrics, clock).unwrap();
    let ticket = forwarded(room.admission(&get("/tickets/1", &[]), CLIENT, false).await);
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "ok");
    ticket.finish(&mut answer).await;
    let first = cookie_header(answer.headers());

    let renew_after = |minutes: u64| now_us.fetch_add(minutes * 60_000_000, std::sync::atomic::Ordering::Relaxed);
    renew_after(5);
    let ticket = forwarded(room.admission(&get("/tickets/2", &[("cookie", first.as_str())]), CLIENT, false).await);
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "ok");
    ticket.finish(&mut answer).await;
    assert!(answer.headers().get("set-cookie").is_none(), "a third of its life: kept as it is");

    renew_after(3);
    let ticket = forwarded(room.admission(&get("/tickets/3", &[("cookie", first.as_str())]), CLIENT, false).await);
    let mut headers = HeaderMap::new();
    ticket.prepare(&mut headers);
    assert!(headers.get("x-anteroom-session").is_some(), "the same session goes on");
    let mut answer: Response<Body> = response::text(http::StatusCode::OK, "ok");
    ticket.finish(&mut answer).await;
    let renewed = cookie_header(answer.headers());
    assert!(renewed.starts_with("anteroom_t_sale=") && renewed != first, "past half its life: a new token");
}
