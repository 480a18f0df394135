//! Admission through a real `redis-server` (started per test on a free port): order, rate
//! and capacity under a burst, two gateways sharing one line, abandonment, and what
//! happens when Redis dies, restarts or loses its data.

mod support;

use anteroom::config::{Backend, ConfigBuilder, HumanDuration, OnFailure, RoomConfig, Secret, TokenKey};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::origin::Origin;
use support::redis::RedisServer;
use support::visitor::Visitor;
use support::{client, metric, Gateway};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// One room `sale` on `/tickets` (`set` changes its keys), tokens signed with a known
/// key, the store on `redis`.
fn config(origin: &Origin, redis: &RedisServer, on_failure: OnFailure, set: impl Fn(&mut RoomConfig)) -> ConfigBuilder {
    Gateway::config(&origin.url())
        .store(|store| {
            store.backend = Backend::Redis;
            store.redis_url = redis.url();
            store.on_failure = on_failure;
        })
        .tokens(|tokens| {
            tokens.keys =
                vec![TokenKey { kid: "k1".into(), secret: Some(Secret::new(SECRET)), private_key_file: None }];
        })
        .room("sale", &["/tickets"], set)
}

/// A gateway on `redis` in front of `origin`, with one room `sale` (`set` changes its
/// keys) and `store.on_failure = "closed"`.
async fn on_redis(origin: &Origin, redis: &RedisServer, set: impl Fn(&mut RoomConfig)) -> Gateway {
    Gateway::built(config(origin, redis, OnFailure::Closed, set)).await
}

/// Polls the status until admitted, as the queue page does (faster near the head, so the
/// moment of admission is seen within ~200 ms). Returns when, and the positions seen.
async fn wait_for_turn(v: &mut Visitor, started: Instant) -> (Duration, Vec<u64>) {
    let mut positions = Vec::new();
    loop {
        let s = v.status("sale").await;
        match s["state"].as_str() {
            Some("admitted") => return (started.elapsed(), positions),
            Some("waiting") => {}
            other => panic!("unexpected state {other:?}: {s}"),
        }
        let position = s["position"].as_u64();
        if let Some(p) = position {
            positions.push(p);
        }
        let advised = s["poll_after_ms"].as_u64().unwrap();
        let wait = if position.is_none_or(|p| p <= 30) { advised.min(200) } else { advised };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(started.elapsed() < Duration::from_secs(90), "never admitted");
    }
}

async fn join(v: &mut Visitor) -> serde_json::Value {
    v.join("/tickets/1").await
}

/// One visitor let in (the room is busy from then on), then `n` in line behind them.
async fn busy_line(gw: &Gateway, n: usize) -> Vec<Visitor> {
    join(&mut Visitor::json(gw.addr)).await;
    let mut line = Vec::new();
    for _ in 0..n {
        let mut v = Visitor::json(gw.addr);
        join(&mut v).await;
        line.push(v);
    }
    line
}

fn assert_positions_never_rise(positions: &[u64], who: usize) {
    assert!(positions.windows(2).all(|w| w[1] <= w[0]), "visitor {who}: positions rose: {positions:?}");
}

/// Admission times, in join order, may be out of order only by the polling lag.
fn assert_join_order(admitted_at: &[Duration], lag: Duration) {
    let mut latest = Duration::ZERO;
    for (i, at) in admitted_at.iter().enumerate() {
        assert!(*at + lag >= latest, "visitor {i} admitted at {at:?}, after someone behind them at {latest:?}");
        latest = latest.max(*at);
    }
}

/// The most admissions in any window of `window`.
fn busiest(admitted_at: &[Duration], window: Duration) -> usize {
    let mut sorted = admitted_at.to_vec();
    sorted.sort();
    (0..sorted.len()).map(|i| sorted[i..].iter().take_while(|t| **t < sorted[i] + window).count()).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_is_admitted_in_join_order_at_the_rate_never_above_capacity() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 6000;
        room.max_active_users = 40;
        room.abandon_after = HumanDuration::secs(30);
    };
    let gw = on_redis(&origin, &redis, room).await;
    let started = Instant::now();
    let mut visitors = Vec::new();
    for i in 0..1000 {
        let mut v = Visitor::json(gw.addr);
        let joined = join(&mut v).await;
        visitors.push((i, v, joined));
    }
    let joined_in = started.elapsed();

    let shopping = Arc::new(AtomicUsize::new(0));
    let most_shopping = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, mut v, joined) in visitors {
        let (shopping, most_shopping) = (shopping.clone(), most_shopping.clone());
        tasks.push(tokio::spawn(async move {
            let (at, mut positions) = if joined["state"] == "admitted" {
                (started.elapsed(), Vec::new())
            } else {
                let first = joined["position"].as_u64().expect("a position");
                let (at, mut seen) = wait_for_turn(&mut v, started).await;
                seen.insert(0, first);
                (at, seen)
            };
            let now = shopping.fetch_add(1, Ordering::SeqCst) + 1;
            most_shopping.fetch_max(now, Ordering::SeqCst);
            // Shop a little, then check out: the shop ends the session.
            tokio::time::sleep(Duration::from_millis(300)).await;
            shopping.fetch_sub(1, Ordering::SeqCst);
            let bought = v.get("/tickets/revoke").await;
            assert_eq!(bought.body_text(), "thank you for your order", "visitor {i}");
            positions.dedup();
            (i, at, positions)
        }));
    }
    let mut admitted_at = vec![Duration::ZERO; 1000];
    for task in tasks {
        let (i, at, positions) = task.await.unwrap();
        assert_positions_never_rise(&positions, i);
        admitted_at[i] = at;
    }
    let total = started.elapsed();
    println!(
        "joined in {joined_in:?}, all admitted by {total:?}, at most {} shopping",
        most_shopping.load(Ordering::SeqCst)
    );

    assert!(most_shopping.load(Ordering::SeqCst) <= 40, "never more active than max_active_users");
    assert_join_order(&admitted_at, Duration::from_millis(2_000));
    // 100 a second: 1,000 take about 10 s; never much faster.
    let last = admitted_at.iter().max().unwrap();
    assert!(*last >= Duration::from_millis(9_000), "1,000 admitted in {last:?}: faster than the rate");
    assert!(
        busiest(&admitted_at, Duration::from_secs(2)) <= 260,
        "a burst: {}",
        busiest(&admitted_at, Duration::from_secs(2))
    );
    let text = gw.metrics().await;
    assert_eq!(metric(&text, "anteroom_admitted_total{room=\"sale\"}"), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_keep_one_line_and_one_rate() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 1200;
        room.max_active_users = 10000;
    };
    let a = on_redis(&origin, &redis, room).await;
    let b = on_redis(&origin, &redis, room).await;
    // Hold the room busy so that everyone below queues.
    let mut first = Visitor::json(a.addr);
    join(&mut first).await;

    let started = Instant::now();
    let mut visitors = Vec::new();
    for i in 0..200 {
        let (here, there) = if i % 2 == 0 { (a.addr, b.addr) } else { (b.addr, a.addr) };
        let mut v = Visitor::json(here);
        let joined = join(&mut v).await;
        // Joined on one instance, polls the other: the line is one.
        visitors.push((i, v.moved_to(there), joined));
    }
    // The join sequence each got, from their signed queue cookies (v3.visitor.epoch.seq…).
    let sequence = |v: &Visitor| -> Option<u64> { v.cookie("anteroom_q_sale")?.split('.').nth(3)?.parse().ok() };
    let numbered: Vec<u64> = visitors.iter().filter_map(|(_, v, _)| sequence(v)).filter(|seq| *seq > 0).collect();
    let mut tasks = Vec::new();
    for (i, mut v, joined) in visitors {
        tasks.push(tokio::spawn(async move {
            if joined["state"] == "admitted" {
                return (i, started.elapsed());
            }
            let (at, seen) = wait_for_turn(&mut v, started).await;
            assert_positions_never_rise(&seen, i);
            (i, at)
        }));
    }
    let mut admitted_at = vec![Duration::ZERO; 200];
    for task in tasks {
        let (i, at) = task.await.unwrap();
        admitted_at[i] = at;
    }
    // One global order: places handed out by either instance count up together.
    assert!(numbered.len() >= 190, "nearly everyone queued: {}", numbered.len());
    assert!(numbered.windows(2).all(|w| w[1] > w[0]), "one line across both instances: {numbered:?}");
    assert_join_order(&admitted_at, Duration::from_millis(2_000));
    // One global rate: 20 a second for both together, so ~10 s for 200 (two separate
    // rates would take ~5 s).
    let last = *admitted_at.iter().max().unwrap();
    assert!(last >= Duration::from_millis(8_500), "200 admitted in {last:?}: more than one rate");
    let sum = metric(&a.metrics().await, "anteroom_admitted_total{room=\"sale\"}")
        + metric(&b.metrics().await, "anteroom_admitted_total{room=\"sale\"}");
    assert_eq!(sum, 201, "both instances' admissions add up to everyone, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_who_stop_polling_do_not_hold_up_the_line() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 600;
        room.max_active_users = 10000;
        room.abandon_after = HumanDuration::secs(2);
    };
    let gw = on_redis(&origin, &redis, room).await;
    let mut queued = Vec::new();
    while queued.len() < 120 {
        let mut v = Visitor::json(gw.addr);
        if join(&mut v).await["state"] == "waiting" {
            queued.push(v);
        }
    }
    let started = Instant::now();
    let behind = queued.split_off(100);
    drop(queued); // the first 100 close their tabs
    let mut tasks = Vec::new();
    for (i, mut v) in behind.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move { (i, wait_for_turn(&mut v, started).await.0) }));
    }
    let mut last = Duration::ZERO;
    for task in tasks {
        last = last.max(task.await.unwrap().1);
    }
    // Waiting out 100 people at 10 a second would take 10 s; dropping them takes
    // abandon_after (2 s) plus the 20 slots (2 s).
    println!("the 20 behind were all admitted after {last:?}");
    assert!(last < Duration::from_secs(9), "the 20 behind waited {last:?}");
    let abandoned = metric(&gw.metrics().await, "anteroom_abandoned_total{room=\"sale\"}");
    assert!(abandoned >= 70, "abandoned: {abandoned}");
}

async fn readyz(gw: &Gateway) -> (u16, String) {
    let answer = client::get(gw.admin, "/readyz").await;
    (answer.status.as_u16(), answer.body_text())
}

async fn store_up(gw: &Gateway) -> u64 {
    metric(&gw.metrics().await, "anteroom_store_up")
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_under_load_buyers_keep_shopping_newcomers_get_a_fast_paused_page_and_all_recovers() {
    let mut redis = RedisServer::start();
    let origin = Origin::start().await;
    // Redis comes back empty, so admissions wait for the recount, which follows the
    // longest poll interval: a short abandon_after keeps it to a few seconds here.
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 60000;
        room.max_active_users = 100000;
        room.abandon_after = HumanDuration::secs(3);
    };
    let gw = on_redis(&origin, &redis, room).await;
    // At 1,000 a second, admissions at once are spaced 1 ms apart: a newcomer
    // within the same millisecond as the one before is told to wait (and holds no place),
    // so the 20 buyers are whoever got in.
    let mut buyers = Vec::new();
    for _ in 0..200 {
        let mut buyer = Visitor::new(gw.addr);
        if buyer.get("/tickets/1").await.body_text() == "hello" {
            buyers.push(buyer);
        }
        if buyers.len() == 20 {
            break;
        }
    }
    assert_eq!(buyers.len(), 20, "twenty buyers got in at once");
    assert_eq!(readyz(&gw).await.0, 200);
    assert_eq!(store_up(&gw).await, 1);

    // Load while Redis dies: 20 buyers shopping, 10 newcomers arriving, for 3 s.
    let killed_at = Instant::now() + Duration::from_millis(1_000);
    let until = killed_at + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for mut buyer in buyers {
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let asked = Instant::now();
                assert_eq!(buyer.get("/tickets/2").await.body_text(), "hello", "a token holder keeps shopping");
                assert!(asked.elapsed() < Duration::from_secs(3), "no request hangs on a dead store");
            }
        }));
    }
    let newcomers_forwarded_after_kill = std::sync::Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let (addr, forwarded) = (gw.addr, newcomers_forwarded_after_kill.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let asked = Instant::now();
                let answer = Visitor::json(addr).get("/tickets/3").await;
                assert!(asked.elapsed() < Duration::from_secs(3), "no request hangs on a dead store");
                let took_store_down = asked > killed_at + Duration::from_millis(100);
                match answer.header("x-anteroom-state") {
                    Some(state) if took_store_down => assert_eq!(state, "paused", "on_failure = closed"),
                    Some(_) => {}
                    None if took_store_down => {
                        forwarded.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {}
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep_until(killed_at.into()).await;
    redis.kill();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(newcomers_forwarded_after_kill.load(Ordering::SeqCst), 0, "no newcomer reached the shop");
    // The store's outage is reported, but the instance stays ready: every instance shares
    // the store, and taking them all out of the load balancer would stop the shoppers too.
    eventually("the store reported down", async || store_up(&gw).await == 0).await;
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 200, "a store outage does not make the instance unready: {body}");
    assert!(body.contains("store: redis, unreachable"), "{body}");
    assert!(metric(&gw.metrics().await, "anteroom_store_errors_total") > 0);

    redis.restart();
    eventually("the store reported up again", async || store_up(&gw).await == 1).await;
    assert!(readyz(&gw).await.1.contains("store: redis, reachable"));
    let mut newcomer = Visitor::new(gw.addr);
    eventually("newcomers admitted again", async || newcomer.get("/tickets/3").await.body_text() == "hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_failure_open_newcomers_are_forwarded_while_redis_is_away() {
    let mut redis = RedisServer::start();
    let origin = Origin::start().await;
    let gw = Gateway::built(config(&origin, &redis, OnFailure::Open, |room| room.admit_per_minute = 1)).await;
    redis.kill();
    let answer = Visitor::new(gw.addr).get("/tickets/3").await;
    assert_eq!(answer.body_text(), "hello", "on_failure = open forwards, within origin protection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_with_persistence_nobody_loses_their_place() {
    let mut redis = RedisServer::start_persistent();
    let origin = Origin::start().await;
    let gw = on_redis(&origin, &redis, |room| room.admit_per_minute = 1).await;
    let mut line = busy_line(&gw, 4).await;
    redis.kill();
    redis.restart();
    for (i, v) in line.iter_mut().enumerate() {
        let mut position = None;
        eventually("the store answering again", async || {
            position = v.status("sale").await["position"].as_u64();
            position.is_some()
        })
        .await;
        assert_eq!(position, Some(i as u64 + 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_wipe_the_line_comes_back_in_order_and_nobody_jumps_it() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 600;
        room.max_active_users = 1;
        room.abandon_after = HumanDuration::secs(3);
    };
    let gw = on_redis(&origin, &redis, room).await;
    // One shopper inside (the room's capacity), one who left, one who went quiet, then
    // the line that keeps polling.
    let mut shopper = Visitor::new(gw.addr);
    assert_eq!(shopper.get("/tickets/1").await.body_text(), "hello");
    let mut left = Visitor::json(gw.addr);
    join(&mut left).await;
    let left_copy = left.moved_to(gw.addr); // a scalper keeps the cookie...
    assert_eq!(left.post("/_anteroom/leave?room=sale").await.status, 200); // ...and leaves
    let mut dropped = Visitor::json(gw.addr);
    join(&mut dropped).await;
    let mut line = Vec::new();
    for _ in 0..4 {
        let mut v = Visitor::json(gw.addr);
        join(&mut v).await;
        line.push(v);
    }
    // The quiet one is dropped for silence (3 s) while the line keeps polling.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for v in &mut line {
            v.status("sale").await;
        }
    }
    let visitor_of = |v: &Visitor| v.cookie("anteroom_q_sale").unwrap().split('.').nth(1).unwrap().to_owned();

    redis.flushall();
    // The room is empty now, but nobody is told it is open while it is being recounted.
    tokio::time::sleep(Duration::from_millis(400)).await; // a tick has found the wipe
    let looking = Visitor::json(gw.addr).status("sale").await;
    assert_eq!(looking["state"], "waiting", "{looking}");
    // The first arrival after the wipe is not let in through the empty room.
    let mut newcomer = Visitor::json(gw.addr);
    let first = join(&mut newcomer).await;
    assert_eq!(first["state"], "waiting", "not admitted ahead of the restored line: {first}");
    // Farmed cookies come back first: the one who left and the one dropped get nothing.
    let mut farmers = [left_copy, dropped];
    for farmer in &mut farmers {
        farmer.status("sale").await;
    }
    // The line comes back in reverse order, and ends up in its original order.
    for v in line.iter_mut().rev() {
        v.status("sale").await;
    }
    let mut expected: Vec<String> = line.iter().map(visitor_of).collect();
    expected.push(visitor_of(&newcomer));
    let order: Vec<String> =
        redis.cli(&["ZRANGE", "anteroom:{sale}:waiting", "0", "-1"]).lines().map(str::to_owned).collect();
    assert_eq!(&order[..5], &expected[..], "the original order, the newcomer behind it");
    let farmed: Vec<String> = farmers.iter().map(visitor_of).collect();
    assert!(order[5..].iter().all(|v| farmed.contains(v)), "farmed cookies go to the back: {order:?}");
    // Positions shown never go up: the first back (the fourth) saw 1 and keeps it.
    let mut shown = Vec::new();
    for v in &mut line {
        shown.push(v.status("sale").await["position"].as_u64());
    }
    assert_eq!(shown, [Some(1), Some(1), Some(1), Some(1)]);

    // The shopper inside is counted again by their next request, so the room stays full:
    // the head of the line waits for them, not for the recount alone.
    assert_eq!(shopper.get("/tickets/2").await.body_text(), "hello");
    assert_eq!(redis.cli(&["ZCARD", "anteroom:{sale}:active"]).trim(), "1", "the shopper is counted again");
    tokio::time::sleep(Duration::from_secs(5)).await; // past the recount
    assert_eq!(line[0].status("sale").await["state"], "waiting", "capacity 1: still the shopper's");
    assert_eq!(shopper.get("/tickets/checkout/revoke").await.status, 200); // the shopper is done
    let admitted = line[0].wait_until_admitted("sale", Duration::from_secs(5)).await;
    assert_eq!(admitted["state"], "admitted", "the head of the old line goes in first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_wipe_a_paused_room_stays_paused() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let token = "admin-token-for-the-wipe-test";
    let config = config(&origin, &redis, OnFailure::Closed, |room| room.abandon_after = HumanDuration::secs(3));
    let gw = Gateway::built(config.admin(|admin| admin.token = Some(Secret::new(token)))).await;
    let pause = http::Request::post("/admin/rooms/sale/pause")
        .header("authorization", format!("Bearer {token}"))
        .body(Default::default())
        .unwrap();
    assert_eq!(client::send(gw.admin, pause).await.status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await; // every instance has ticked since
    redis.flushall();
    let mut newcomer = Visitor::json(gw.addr);
    let status = join(&mut newcomer).await;
    assert_eq!(status["state"], "paused", "the wipe did not undo the pause: {status}");
    assert_eq!(redis.cli(&["HGET", "anteroom:{sale}:state", "paused"]).trim(), "1");
    assert_eq!(origin.count(), 0, "nobody reached the shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_through_one_instance_is_refused_by_every_instance() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 6000;
        room.max_active_users = 100;
    };
    let a = on_redis(&origin, &redis, room).await;
    let b = on_redis(&origin, &redis, room).await;
    let mut buyer = Visitor::new(a.addr);
    assert_eq!(buyer.get("/tickets/1").await.body_text(), "hello");
    let token = buyer.cookie("anteroom_t_sale").unwrap().to_owned();
    let session = origin.seen().last().unwrap().headers["x-anteroom-session"].to_str().unwrap().to_owned();
    // Shopping through both instances: B has verified and cached the token.
    assert_eq!(buyer.moved_to(b.addr).get("/tickets/2").await.body_text(), "hello");
    // The shop ends the session through A (checkout done).
    assert_eq!(buyer.get("/tickets/checkout/revoke").await.status, 200);
    // B learns of it at its next tick (every ~250 ms), without restarting or forgetting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let revoked_at = origin.count();

    let with_old_token = |addr| {
        let mut v = Visitor::new(addr);
        v.cookies.insert("anteroom_t_sale".into(), token.clone());
        v
    };
    let rejected = |text: &str| metric(text, "anteroom_tokens_rejected_total{room=\"sale\",reason=\"revoked\"}");
    with_old_token(b.addr).get("/tickets/3").await;
    assert_eq!(rejected(&b.metrics().await), 1, "B refuses the token A revoked");
    // An instance started after the revocation refuses it on first sight.
    let c = on_redis(&origin, &redis, room).await;
    with_old_token(c.addr).get("/tickets/4").await;
    assert!(rejected(&c.metrics().await) > 0, "a new instance asks the store about a token it has not seen");
    let after: Vec<_> = origin.seen().into_iter().skip(revoked_at).collect();
    assert!(
        after.iter().all(|s| s.headers.get("x-anteroom-session").is_none_or(|v| v != session.as_str())),
        "no request reached the shop on the revoked session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ten_seconds_of_grants_hold_more_than_a_sixth_of_the_minute_rate_across_instances() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let room = |room: &mut RoomConfig| {
        room.admit_per_minute = 300;
        room.max_active_users = 10000;
    };
    let a = on_redis(&origin, &redis, room).await;
    let b = on_redis(&origin, &redis, room).await;
    let mut line = Vec::new();
    for i in 0..90 {
        let mut v = Visitor::json(if i % 2 == 0 { a.addr } else { b.addr });
        join(&mut v).await;
        line.push(v);
    }
    let started = Instant::now();
    let polling = tokio::spawn(async move {
        while started.elapsed() < Duration::from_secs(15) {
            for v in &mut line {
                v.status("sale").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    // anteroom_admitted_total summed over both instances, every 100 ms.
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(14) {
        let (ma, mb) = tokio::join!(a.metrics(), b.metrics());
        let total = metric(&ma, "anteroom_admitted_total{room=\"sale\"}")
            + metric(&mb, "anteroom_admitted_total{room=\"sale\"}");
        samples.push((Instant::now(), total));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    polling.await.unwrap();
    let mut busiest = 0;
    for (i, (from, before)) in samples.iter().enumerate() {
        for (to, after) in &samples[i..] {
            if to.duration_since(*from) < Duration::from_secs(10) {
                busiest = busiest.max(after - before);
            }
        }
    }
    println!("busiest 10 s of grants: {busiest}");
    assert!(busiest <= 50, "{busiest} admissions granted within 10 s at 300 a minute (at most 50)");
    assert!(busiest >= 45, "the rate is reached, not just capped: {busiest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_due_for_renewal_does_not_wait_on_a_hung_store() {
    let redis = RedisServer::start();
    let origin = Origin::start().await;
    let gw = on_redis(&origin, &redis, |room| {
        room.admit_per_minute = 6000;
        room.session_duration = HumanDuration::secs(10);
    })
    .await;
    let mut buyer = Visitor::new(gw.addr);
    assert_eq!(buyer.get("/tickets/1").await.body_text(), "hello");
    tokio::time::sleep(Duration::from_millis(5_300)).await; // past half the token's life
    redis.freeze(true);
    eventually("the hung store noticed", async || store_up(&gw).await == 0).await;
    for _ in 0..5 {
        let asked = Instant::now();
        assert_eq!(buyer.get("/tickets/2").await.body_text(), "hello", "the token is still good");
        let took = asked.elapsed();
        assert!(took < Duration::from_millis(500), "a renewal waited on the hung store: {took:?}");
    }
    redis.freeze(false);
    eventually("the store back", async || store_up(&gw).await == 1).await;
    let renewed = buyer.get("/tickets/3").await;
    assert!(renewed.header("set-cookie").is_some_and(|c| c.starts_with("anteroom_t_sale=")), "renewed once it is back");
}
