//! What a scalper tries besides solving challenges: handing one admission to many
//! clients. Each gets a clear answer, and nothing more than one buyer's worth gets in.

mod support;

use support::origin::Origin;
use support::visitor::Visitor;
use support::{metric, Gateway};

#[tokio::test]
async fn a_queue_cookie_handed_to_many_clients_lets_in_one_session() {
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    let mut buyer = Visitor::json(gw.addr);
    assert_eq!(buyer.join("/tickets/1").await["state"], "admitted");
    let queue_cookie = buyer.cookie("anteroom_q_sale").expect("queue cookie").to_owned();
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
    let origin = Origin::start().await;
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    let mut buyer = Visitor::json(gw.addr);
    assert_eq!(buyer.join("/tickets/1").await["state"], "admitted");
    let queue_cookie = buyer.cookie("anteroom_q_sale").unwrap().to_owned();
    let mut first_copy = Visitor::json(gw.addr);
    first_copy.cookies.insert("anteroom_q_sale".into(), queue_cookie.clone());
    first_copy.status("sale").await; // the one re-claim
    let mut browser = Visitor::new(gw.addr);
    browser.cookies.insert("anteroom_q_sale".into(), queue_cookie);
    let page = browser.get("/tickets/1").await;
    assert_eq!(page.header("x-anteroom-state"), Some("claimed"));
    assert!(page.body_text().contains("one turn lets one browser into the shop"), "{}", page.body_text());
}
