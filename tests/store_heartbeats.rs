//! Heartbeats: a waiter who stops polling is dropped, wherever in a long line they stand,
//! and never admitted; one who polls keeps the place. Redis keeps the heartbeats packed by
//! place (not a sorted-set entry each) and looks at a stretch of the line per tick: these
//! tests hold both stores to the same answers, and look into Redis for the packing.

mod support;

use anteroom::store::{Departure, Joining, Policy, QueueState, Visit};
use std::time::Duration;
use support::stores::{conformance, names, policy, Harness, ROOM};

conformance!(
    silent_waiters_anywhere_in_a_long_line_are_dropped_and_pollers_keep_their_places,
    silent_heads_are_dropped_not_admitted_even_before_the_sweep_reaches_them,
    pre_queue_places_keep_heartbeats_too,
    places_brought_back_after_a_data_loss_are_swept_too,
);

/// Silence after 600 ms; paused until a test lets people in.
fn quick() -> Policy {
    Policy { abandon_ms: 600, rejoin_ms: 0, ..policy() }
}

/// The visitors `polling` poll (all at once) every 100 ms for `for_ms`; nobody ticks.
async fn poll(h: &Harness, polling: &[String], for_ms: u64, policy: &Policy) {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(for_ms) {
        let mut tasks = Vec::new();
        for visitor in polling {
            let (store, policy, visitor) = (h.store.clone(), policy.clone(), visitor.clone());
            tasks.push(tokio::spawn(async move {
                let visit =
                    Visit { visitor: &visitor, restore: None, prequeue_score: 0, joining: Joining::Keep, client: None };
                store.visit(ROOM, &visit, &policy).await.unwrap()
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().seq > 0, "a poller keeps a place");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` visitors in line, in order, in a paused room.
async fn paused_line(h: &Harness, n: usize, policy: &Policy) -> Vec<String> {
    h.store.set_paused(ROOM, true).await.unwrap();
    let visitors = names(0..n);
    for v in &visitors {
        h.visit(v, policy).await;
    }
    visitors
}

/// Every `nth` visitor polls for longer than the patience of the others, then ticks run
/// back to back (enough for Redis's sweep to pass the whole line): how many were dropped.
async fn only_every_nth_polls(h: &Harness, visitors: &[String], nth: usize, policy: &Policy) -> u64 {
    let pollers: Vec<String> = visitors.iter().step_by(nth).cloned().collect();
    poll(h, &pollers, 800, policy).await;
    let mut abandoned = 0;
    for _ in 0..30 {
        abandoned += h.store.tick(ROOM, policy, 0).await.unwrap().abandoned;
    }
    abandoned
}

async fn position(h: &Harness, visitor: &str, policy: &Policy) -> Option<u64> {
    let visit = Visit { visitor, restore: None, prequeue_score: 0, joining: Joining::Keep, client: None };
    h.store.visit(ROOM, &visit, policy).await.unwrap().position
}

async fn silent_waiters_anywhere_in_a_long_line_are_dropped_and_pollers_keep_their_places(h: Harness) {
    let policy = quick();
    // Longer than a tick's stretch on Redis (twice the line per 600 ms since the last tick,
    // and at least 64: with ticks back to back, 64).
    let visitors = paused_line(&h, 1_200, &policy).await;
    let abandoned = only_every_nth_polls(&h, &visitors, 2, &policy).await;
    assert_eq!(abandoned, 600, "every silent one, wherever they stood");
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!((report.abandoned, report.stats.queue_length), (0, 600), "and nobody else: {report:?}");
    for (i, v) in visitors.iter().enumerate().step_by(97) {
        let kept = (i % 2 == 0).then_some(i as u64 / 2 + 1);
        assert_eq!(position(&h, v, &policy).await, kept, "{v}");
    }
    if let Some(redis) = h.redis_server() {
        assert_eq!(redis.cli(&["ZCARD", "anteroom:{sale}:seen"]), "0", "no heartbeat in a sorted set");
        let counts = redis.cli(&["HVALS", "anteroom:{sale}:beats"]);
        let counted: u64 = counts.lines().map(|c| c.parse::<u64>().unwrap()).sum();
        assert_eq!(counted, 600, "each place still in line counted in its chunk");
    }
}

async fn silent_heads_are_dropped_not_admitted_even_before_the_sweep_reaches_them(h: Harness) {
    let policy = quick();
    let visitors = paused_line(&h, 1_000, &policy).await;
    // A tick while everyone is fresh moves Redis's sweep past the head of the line.
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().abandoned, 0);
    // Then the first ten fall silent while the others poll.
    poll(&h, &visitors[10..], 800, &policy).await;
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut admitted = 0;
    while admitted < 5 {
        admitted += h.store.tick(ROOM, &policy, 0).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for v in &visitors[..10] {
        let standing = h.visit_as(v, None, Joining::Keep, &policy).await;
        assert_eq!((standing.state, standing.position), (QueueState::Waiting, None), "{v} was dropped, not let in");
    }
    assert_eq!(h.visit(&visitors[10], &policy).await.state, QueueState::Admitted, "the first one still polling");
}

async fn pre_queue_places_keep_heartbeats_too(h: Harness) {
    let opens = anteroom::time::unix_ms() + 3_600_000;
    let policy = Policy { opens_at_ms: Some(opens), ..quick() };
    // In random order, so that a tick's stretch of the line is scattered over the slots.
    let visitors = names(0..1_500);
    for (i, v) in visitors.iter().enumerate() {
        let prequeue_score = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
        let visit = Visit { visitor: v, restore: None, prequeue_score, joining: Joining::Place, client: None };
        assert_eq!(h.store.visit(ROOM, &visit, &policy).await.unwrap().state, QueueState::Scheduled);
    }
    let abandoned = only_every_nth_polls(&h, &visitors, 3, &policy).await;
    assert_eq!(abandoned, 1_000, "every silent one");
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().stats.queue_length, 500);
    if let Some(redis) = h.redis_server() {
        assert_eq!(redis.cli(&["ZCARD", "anteroom:{sale}:seen"]), "0", "pre-queue heartbeats are packed too");
    }
    // Everyone leaves: nothing of the heartbeats is left behind.
    for v in &visitors {
        h.store.leave(ROOM, &Departure { visitor: v, seq: 0, session: None }).await.unwrap();
    }
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().stats.queue_length, 0);
    if let Some(redis) = h.redis_server() {
        assert_eq!(redis.cli(&["EXISTS", "anteroom:{sale}:beats"]), "0");
        assert_eq!(redis.cli(&["--scan", "--pattern", "anteroom:{sale}:beats:*"]), "", "no chunk left");
    }
}

/// After a data loss the line is what came back with the buyers' cookies, at their old
/// order scores, and nobody new has joined yet: the silent among them still go.
async fn places_brought_back_after_a_data_loss_are_swept_too(mut h: Harness) {
    let policy = quick();
    // Longer than a tick's stretch (64), short enough to come back within the restore grace.
    let visitors = paused_line(&h, 100, &policy).await;
    let mut held = Vec::new();
    for v in &visitors {
        held.push(h.visit_as(v, None, Joining::Keep, &policy).await);
    }
    h.wipe();
    h.store.set_paused(ROOM, true).await.unwrap();
    for (v, before) in visitors.iter().zip(&held) {
        assert_eq!(h.visit_with_cookie(v, before, &policy).await.seq, before.seq, "{v} is back at the old place");
    }
    let abandoned = only_every_nth_polls(&h, &visitors, 2, &policy).await;
    assert_eq!(abandoned, 50, "every silent one");
    assert_eq!(position(&h, &visitors[98], &policy).await, Some(50));
}

/// Places an older version wrote (their order scores µs join times, their heartbeats in
/// `seen`) keep working beside new ones: polled, they stay, in order; silent, they go. A
/// poll of one never leaves a heartbeat chunk behind.
#[tokio::test]
async fn places_of_an_older_version_keep_their_heartbeats_in_seen() {
    let h = Harness::redis();
    let redis = h.redis_server().unwrap();
    let policy = quick();
    h.store.set_paused(ROOM, true).await.unwrap();
    h.visit("new-one", &policy).await;
    h.visit("new-silent", &policy).await;
    let now_ms = anteroom::time::unix_ms();
    // One joined an hour ago (a chunk of its own), two just after the new one (its chunk).
    let older = [("old-far", now_ms - 3_600_000), ("old-polling", now_ms + 1), ("old-silent", now_ms + 2)];
    for (v, at_ms) in older {
        redis.cli(&["ZADD", "anteroom:{sale}:waiting", &(at_ms * 1000).to_string(), v]);
        redis.cli(&["ZADD", "anteroom:{sale}:seen", &now_ms.to_string(), v]);
    }
    let polling = ["old-far", "new-one", "old-polling"].map(str::to_owned);
    poll(&h, &polling, 800, &policy).await;
    // One tick finds both silent ones: the old one by `seen`, the new one behind a gap in
    // the slots (the old place an hour back has no chunk).
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!((report.abandoned, report.stats.queue_length), (2, 3), "{report:?}");
    for (i, v) in polling.iter().enumerate() {
        assert_eq!(position(&h, v, &policy).await, Some(i as u64 + 1), "{v}");
    }
    assert_eq!(position(&h, "old-silent", &policy).await, None);
    assert_eq!(position(&h, "new-silent", &policy).await, None);
    assert_eq!(redis.cli(&["ZRANGE", "anteroom:{sale}:seen", "0", "-1"]), "old-far\nold-polling");
    let chunks = redis.cli(&["--scan", "--pattern", "anteroom:{sale}:beats:*"]);
    assert_eq!(chunks.lines().count(), 1, "only the new place's chunk: {chunks}");
}
