//! Buyers keep their place over HTTP: a buyer whose tab went quiet for longer than
//! `abandon_after` but came back within `rejoin_grace` is where they were; after the grace,
//! or after leaving, they are at the end of the line and told so; support finds a buyer by
//! the queue id their page shows.

mod support;

use anteroom::config::{ConfigBuilder, HumanDuration, Secret};
use std::time::Duration;
use support::origin::Origin;
use support::visitor::Visitor;
use support::{metric, Gateway};

const TOKEN: &str = "admin-secret-for-tests";

/// One admission a minute (the first visitor gets in, everyone else waits); a silent
/// waiter is dropped after 1 s and may come back within `grace_ms`.
fn config(origin: &Origin, grace_ms: u64) -> ConfigBuilder {
    Gateway::config(&origin.url()).admin(|admin| admin.token = Some(Secret::new(TOKEN))).room(
        "sale",
        &["/tickets"],
        |room| {
            room.admit_per_minute = 1;
            room.abandon_after = HumanDuration(Duration::from_secs(1));
            room.rejoin_grace = Some(HumanDuration(Duration::from_millis(grace_ms)));
        },
    )
}

/// The shopper who takes the one admission, then `a`, `b`, `c` in line.
async fn line_of_three(gw: &Gateway) -> [Visitor; 3] {
    assert_eq!(Visitor::json(gw.addr).join("/tickets/1").await["state"], "admitted");
    let mut line = [Visitor::json(gw.addr), Visitor::json(gw.addr), Visitor::json(gw.addr)];
    for (i, buyer) in line.iter_mut().enumerate() {
        assert_eq!(buyer.join("/tickets/1").await["position"], i as u64 + 1);
    }
    line
}

/// `b` and `c` poll while `a` is silent for `silence`.
async fn a_goes_quiet(line: &mut [Visitor; 3], silence: Duration) {
    let until = std::time::Instant::now() + silence;
    while std::time::Instant::now() < until {
        for buyer in &mut line[1..] {
            buyer.status("sale").await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_slow_line_polls_rarely_but_well_inside_abandon_after_from_the_first_admission_on() {
    let origin = Origin::start().await;
    // One admission a minute, the default abandon_after (5 minutes).
    let config = Gateway::config(&origin.url()).room("sale", &["/tickets"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    assert_eq!(Visitor::json(gw.addr).join("/tickets/1").await["state"], "admitted");
    tokio::time::sleep(Duration::from_millis(600)).await; // a few ticks measure that admission
    let mut buyer = Visitor::json(gw.addr);
    buyer.join("/tickets/1").await;
    let status = buyer.status("sale").await;
    // One admission just after the start is not "four a second": the wait is about a minute.
    let eta = status["eta_seconds"].as_u64().unwrap();
    assert!((45..=75).contains(&eta), "an honest wait: {status}");
    let poll = status["poll_after_ms"].as_u64().unwrap();
    assert!((20_000..=36_000).contains(&poll), "rare polls for the store: {status}");
    // A background tab runs its timers about once a minute: even a late poll keeps the place.
    assert!(poll + 60_000 < 300_000, "{poll}");
}

#[tokio::test]
async fn a_buyer_away_longer_than_abandon_after_comes_back_to_the_same_place() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, 30_000)).await;
    let [mut a, mut b, mut c] = line_of_three(&gw).await;
    let mut line = [a, b, c];
    a_goes_quiet(&mut line, Duration::from_millis(2_000)).await;
    [a, b, c] = line;
    assert_eq!(b.status("sale").await["position"], 1, "a was dropped meanwhile");

    let back = a.status("sale").await;
    assert_eq!((back["state"].as_str(), back["position"].as_u64()), (Some("waiting"), Some(1)), "{back}");
    assert_eq!((back["place_lost"].as_bool(), back["queue_length"].as_u64()), (Some(false), Some(3)));
    // b and c are behind a again; the positions they were shown never go up, so they wait
    // for the line to catch up with what they saw.
    assert_eq!(b.status("sale").await["position"], 1);
    assert_eq!(c.status("sale").await["position"], 2);
    assert_eq!(metric(&gw.metrics().await, "anteroom_rejoins_total{room=\"sale\"}"), 1);
}

#[tokio::test]
async fn after_the_grace_the_buyer_is_at_the_end_of_the_line_and_told_so() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, 300)).await;
    let mut line = line_of_three(&gw).await;
    a_goes_quiet(&mut line, Duration::from_millis(2_500)).await;
    let [mut a, _, _] = line;
    let back = a.status("sale").await;
    assert_eq!(back["position"], 3, "{back}");
    assert_eq!(back["place_lost"], true, "said plainly, not just a larger number: {back}");
    let page = {
        a.json = false;
        a.get("/tickets/1").await.body_text()
    };
    assert!(
        page.contains(r#"data-anteroom="place-lost" role="alert" hidden>"#),
        "said once, on the answer that re-placed them"
    );
    assert_eq!(a.status("sale").await["place_lost"], false);
}

#[tokio::test]
async fn a_buyer_who_left_is_not_given_the_place_back_even_with_the_old_cookie() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, 30_000)).await;
    let [mut a, mut b, _] = line_of_three(&gw).await;
    let kept = a.cookies.clone();
    let left = a.post("/_anteroom/leave?room=sale").await;
    assert_eq!(left.status, 200);
    assert!(a.cookies.is_empty(), "both cookies deleted: {:?}", a.cookies);
    assert_eq!(b.status("sale").await["position"], 1);
    a.cookies = kept; // a script that ignores the deletion
    let back = a.status("sale").await;
    assert_eq!((back["position"].as_u64(), back["place_lost"].as_bool()), (Some(3), Some(true)), "{back}");
}

#[tokio::test]
async fn a_place_dropped_in_one_room_is_not_taken_back_in_another() {
    let origin = Origin::start().await;
    let config = config(&origin, 30_000).room("vip", &["/vip"], |room| room.admit_per_minute = 1);
    let gw = Gateway::built(config).await;
    assert_eq!(Visitor::json(gw.addr).join("/vip/1").await["state"], "admitted");
    let mut in_vip = Visitor::json(gw.addr);
    assert_eq!(in_vip.join("/vip/1").await["position"], 1);
    let mut line = line_of_three(&gw).await;
    a_goes_quiet(&mut line, Duration::from_millis(2_000)).await;
    let [a, _, _] = line;
    // a's sale cookie, renamed as the vip room's: its signature names the sale room.
    let mut elsewhere = Visitor::json(gw.addr);
    let sale_cookie = a.cookie("anteroom_q_sale").unwrap().to_owned();
    elsewhere.cookies.insert("anteroom_q_vip".into(), sale_cookie);
    let status = elsewhere.status("vip").await;
    assert_eq!(status["position"], serde_json::Value::Null, "no place from another room's cookie: {status}");
    let joined = elsewhere.join("/vip/1").await;
    assert_eq!((joined["position"].as_u64(), joined["place_lost"].as_bool()), (Some(2), Some(false)), "{joined}");
    assert_eq!(in_vip.status("vip").await["position"], 1, "nobody jumped ahead in vip");
}

#[tokio::test]
async fn leaving_from_a_page_without_its_script_answers_with_a_page() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, 30_000)).await;
    let [_, b, mut c] = line_of_three(&gw).await;
    let req = http::Request::post("/_anteroom/leave?room=sale")
        .header("host", "shop.example")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("accept-language", "it-IT")
        .header("cookie", format!("anteroom_q_sale={}", b.cookie("anteroom_q_sale").unwrap()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = support::client::send(gw.addr, req).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(answer.body_text().contains("Hai lasciato la coda"), "{}", answer.body_text());
    let cleared: Vec<&str> = answer.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("anteroom_q_sale=;") && c.contains("Max-Age=0")), "{cleared:?}");
    assert_eq!(c.status("sale").await["queue_length"], 2, "b's place is gone");
}

#[tokio::test]
async fn support_finds_a_buyer_by_the_queue_id_the_page_shows() {
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, 30_000)).await;
    let [_, mut b, _] = line_of_three(&gw).await;
    let status = b.status("sale").await;
    let id = status["queue_id"].as_str().expect("a queue id").to_owned();
    assert_eq!(id.len(), 9, "{id}");

    let (code, found) = gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{id}"), Some(TOKEN), "").await;
    assert_eq!(code, 200, "{found}");
    assert_eq!(found["queue_id"], id);
    assert_eq!(found["visitors"][0]["state"], "waiting");
    assert_eq!(found["visitors"][0]["position"], 2);
    // As a person types it down the phone.
    let typed = id.to_lowercase().replace('-', "");
    let (code, again) = gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{typed}"), Some(TOKEN), "").await;
    assert_eq!((code, &again["visitors"]), (200, &found["visitors"]));

    let (code, body) = gw.admin_api("GET", "/admin/rooms/sale/visitors/0000-0000", Some(TOKEN), "").await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("no visitor with queue id 0000-0000"), "{body}");
    for junk in ["nope", "ABCD-EFGH-JKMN", "%2A%2A%2A%2A%2A%2A%2A%2A", "ABCU-0000"] {
        let (code, body) = gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{junk}"), Some(TOKEN), "").await;
        assert_eq!(code, 400, "{junk}: {body}");
    }
    assert_eq!(gw.admin_api("GET", &format!("/admin/rooms/sale/visitors/{id}"), None, "").await.0, 401);
    assert_eq!(gw.admin_api("GET", &format!("/admin/rooms/nope/visitors/{id}"), Some(TOKEN), "").await.0, 404);
    assert_eq!(gw.admin_api("POST", &format!("/admin/rooms/sale/visitors/{id}"), Some(TOKEN), "").await.0, 405);
}
