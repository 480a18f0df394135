//! What a scalper tries besides solving challenges: handing one admission to many
//! clients. Each gets a clear answer, and nothing more than one buyer's worth gets in.

mod support;

use support::origin::Origin;
use support::visitor::Visitor;
use support::{metric, Gateway};

/// `sale` (one admission a minute) and the buyer who was let in, with the queue cookie.
async fn admitted_buyer() -> (Origin, Gateway, Visitor, String) {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    let mut buyer = Visitor::json(gw.addr);
    assert_eq!(buyer.join("/tickets/1").await["state"], "admitted");
    let queue_cookie = buyer.cookie("anteroom_q_sale").expect("queue cookie").to_owned();
    (origin, gw, buyer, queue_cookie)
}

#[tokio::test]
async fn a_queue_cookie_handed_to_many_clients_lets_in_one_session() {
    let (origin, gw, mut buyer, queue_cookie) = admitted_buyer().await;
    assert_eq!(buyer.get("/tickets/2").await.status, 200, "the buyer shops on their token");

    // The queue cookie alone (no token), copied to twenty clients.
    let mut let_in = Vec::new();
    for i in 0..20 {
        let mut copy = Visitor::json(gw.addr);
        copy.cookies.insert("anteroom_q_sale".into(), queue_cookie.clone());
        let answer = copy.get(&format!("/tickets/copy-{i}")).await;
        match answer.header("x-anteroom-state") {
            None => let_in.push(i),
            Some(state) => assert_eq!(state, "claimed", "copy {i}: {}", answer.body_text()),
        }
        let status = copy.status("sale").await;
        assert!(matches!(status["state"].as_str(), Some("claimed" | "admitted")), "{status}");
    }
    // One more claim is allowed shortly after the first (the answer carrying the token may
    // have been lost); it names the same session.
    assert!(let_in.len() <= 1, "{let_in:?}");
    let sessions: std::collections::BTreeSet<String> = origin
        .seen()
        .iter()
        .filter_map(|seen| seen.headers.get("x-anteroom-session")?.to_str().ok().map(str::to_owned))
        .collect();
    assert_eq!(sessions.len(), 1, "the shop saw one session: {sessions:?}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // a tick reads the store's count
    let text = gw.metrics().await;
    assert_eq!(metric(&text, "anteroom_active_sessions{room=\"sale\"}"), 1, "{text}");
    assert_eq!(buyer.get("/tickets/3").await.status, 200, "the buyer who holds the token goes on");
}

#[tokio::test]
async fn a_claimed_admission_answers_a_page_that_says_so() {
    let (_origin, gw, _buyer, queue_cookie) = admitted_buyer().await;
    let mut first_copy = Visitor::json(gw.addr);
    first_copy.cookies.insert("anteroom_q_sale".into(), queue_cookie.clone());
    first_copy.status("sale").await; // the one re-claim
    let mut browser = Visitor::new(gw.addr);
    browser.cookies.insert("anteroom_q_sale".into(), queue_cookie);
    let page = browser.get("/tickets/1").await;
    assert_eq!(page.header("x-anteroom-state"), Some("claimed"));
    assert!(page.body_text().contains("one turn lets one browser into the shop"), "{}", page.body_text());
}

/// `sale` (one admission a minute) capped at `cap` places per client; `trusted` lists the
/// proxies allowed to name the client.
async fn capped_gateway(cap: u32, trusted: &[&str]) -> (Origin, Gateway) {
    let origin = Origin::start().await;
    let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|net| net.parse().unwrap()).collect();
    let config = Gateway::config(&origin.url()).listen(|listen| listen.trusted_proxies = trusted).room(
        "sale",
        &["/tickets"],
        |room| {
            room.admit_per_minute = 1;
            room.max_places_per_client = Some(cap);
        },
    );
    let gw = Gateway::built(config).await;
    assert_eq!(Visitor::json(gw.addr).join("/tickets/0").await["state"], "admitted", "the room is busy from here");
    (origin, gw)
}

/// Joins from behind `forwarded_for` (or directly); the state and refusal reason.
async fn join_from(gw: &Gateway, forwarded_for: Option<&str>) -> (String, Option<String>) {
    let mut visitor = Visitor::json(gw.addr);
    visitor.forwarded_for = forwarded_for.map(str::to_owned);
    let status = visitor.join("/tickets/1").await;
    (status["state"].as_str().unwrap().to_owned(), status["refused_reason"].as_str().map(str::to_owned))
}

async fn places_taken(gw: &Gateway) -> u64 {
    metric(&gw.metrics().await, "anteroom_joins_total{room=\"sale\"}")
}

#[tokio::test]
async fn a_flood_of_joins_from_one_address_gets_its_share_and_clear_refusals() {
    let (_origin, gw) = capped_gateway(3, &[]).await;
    let mut refused = 0;
    for i in 0..20 {
        let (state, reason) = join_from(&gw, None).await;
        if i < 3 {
            assert_eq!(state, "waiting", "join {i}");
        } else {
            assert_eq!((state.as_str(), reason.as_deref()), ("refused", Some("too_many_places")), "join {i}");
            refused += 1;
        }
    }
    // An X-Forwarded-For from a client no proxy vouches for changes nothing.
    assert_eq!(join_from(&gw, Some("198.51.100.9")).await.0, "refused");
    let text = gw.metrics().await;
    let counted = metric(&text, "anteroom_places_refused_total{room=\"sale\",reason=\"too_many_places\"}");
    assert_eq!(counted, refused + 1, "{text}");
    assert_eq!(places_taken(&gw).await, 3, "three places, no more");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_counted_by_its_own_address() {
    let (_origin, gw) = capped_gateway(1, &["127.0.0.1/32"]).await;
    for i in 1..=10 {
        let (state, _) = join_from(&gw, Some(&format!("198.51.100.{i}"))).await;
        assert_eq!(state, "waiting", "client {i} has its own share");
    }
    assert_eq!(join_from(&gw, Some("198.51.100.1")).await.0, "refused", "one place each");
    // A client cannot pick a new address for each place inside its IPv6 /64.
    assert_eq!(join_from(&gw, Some("2001:db8:1:2::1")).await.0, "waiting");
    assert_eq!(join_from(&gw, Some("2001:db8:1:2::beef")).await.0, "refused");
    assert_eq!(join_from(&gw, Some("2001:db8:1:3::1")).await.0, "waiting", "another network");
    // The chain's last untrusted hop is the client: a forged first hop does not help.
    assert_eq!(join_from(&gw, Some("203.0.113.50, 198.51.100.1")).await.0, "refused");
    assert_eq!(places_taken(&gw).await, 12);
}

#[tokio::test]
async fn a_refused_browser_gets_a_page_that_says_why_and_retries_by_itself() {
    let (_origin, gw) = capped_gateway(1, &[]).await;
    join_from(&gw, None).await;
    // The first answer hands out the queue cookie; the next one would take the place.
    let mut browser = Visitor::new(gw.addr);
    browser.get("/tickets/1").await;
    let page = browser.get("/tickets/1").await;
    let html = page.body_text();
    assert_eq!(page.header("x-anteroom-state"), Some("refused"), "{html}");
    assert!(html.contains("Too many places in this line are already held from your network"), "{html}");
    assert!(html.contains("http-equiv=\"refresh\""), "without scripts it tries again by itself");
}
