//! One suite, two stores: every test runs against the memory store and against a real
//! `redis-server` started for it. The stores must agree on every rule of the queue.

mod support;

use anteroom::store::{LimitOverrides, MemoryStore, Policy, QueueState, RedisStore, Restore, Standing, Store};
use std::time::Duration;
use support::redis::RedisServer;

struct Harness {
    store: std::sync::Arc<Store>,
    redis: Option<RedisServer>,
}

impl Harness {
    fn memory() -> Self {
        Self { store: Store::Memory(MemoryStore::default()).into(), redis: None }
    }

    fn redis() -> Self {
        let server = RedisServer::start();
        let store = Store::Redis(Box::new(RedisStore::connect(&server.url(), &[], None).unwrap()));
        Self { store: store.into(), redis: Some(server) }
    }

    /// The store loses everything: a Redis FLUSHALL, a memory store's process restart.
    fn wipe(&mut self) {
        match &self.redis {
            Some(server) => server.flushall(),
            None => self.store = Store::Memory(MemoryStore::default()).into(),
        }
    }

    async fn visit(&self, visitor: &str, policy: &Policy) -> Standing {
        self.store.visit(ROOM, &plain(visitor), policy).await.unwrap()
    }
}

const ROOM: &str = "sale";

fn policy() -> Policy {
    Policy {
        admit_per_minute: 6_000,
        max_active_users: 1_000,
        session_ms: 60_000,
        abandon_ms: 60_000,
        opens_at_ms: None,
    }
}

/// A room that admits one visitor a minute: the first gets in, the rest queue.
fn slow() -> Policy {
    Policy { admit_per_minute: 1, ..policy() }
}

fn plain(visitor: &str) -> anteroom::store::Visit<'_> {
    anteroom::store::Visit { visitor, restore: None, prequeue_score: 0, join: true }
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("visitor-{i:04}")).collect()
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(super::Harness::memory()).await } )*
        }
        mod redis {
            $( #[tokio::test] async fn $name() { super::$name(super::Harness::redis()).await } )*
        }
    };
}

conformance!(
    a_quiet_room_admits_at_once,
    immediate_admissions_are_spaced_by_the_rate,
    a_visitor_who_joins_again_keeps_their_place,
    positions_follow_join_order_and_only_go_down,
    the_tick_admits_from_the_head_of_the_line_at_the_rate,
    capacity_caps_sessions_and_leaving_frees_a_place,
    abandoned_visitors_are_dropped_before_anyone_is_admitted,
    a_paused_room_admits_nobody_until_resumed,
    the_prequeue_is_reordered_at_opening,
    an_ended_session_frees_capacity_and_is_never_renewed,
    a_session_the_store_lost_is_renewed_back,
    after_a_wipe_a_signed_cookie_restores_the_place,
    without_a_wipe_an_old_cookie_does_not_jump_the_line,
    live_limits_override_the_configured_ones,
    ticks_running_at_once_admit_no_more_than_one_would,
    a_visit_without_joining_holds_no_place,
    many_visits_at_once_each_get_one_place,
    a_closed_room_admits_nobody_and_shoppers_keep_their_session,
);

async fn a_quiet_room_admits_at_once(h: Harness) {
    let standing = h.visit("alice", &policy()).await;
    assert_eq!(standing.state, QueueState::Admitted);
    assert!(standing.immediate);
    let stats = h.store.stats(ROOM, &policy()).await.unwrap();
    assert_eq!((stats.active_sessions, stats.queue_length, stats.admitted_total), (1, 0, 1));
}

async fn immediate_admissions_are_spaced_by_the_rate(h: Harness) {
    assert_eq!(h.visit("first", &slow()).await.state, QueueState::Admitted);
    let second = h.visit("second", &slow()).await;
    assert_eq!(second.state, QueueState::Waiting, "one a minute: the second must wait");
    assert_eq!((second.position, second.queue_length), (Some(1), 1));
    assert!(!second.immediate);
}

async fn a_visitor_who_joins_again_keeps_their_place(h: Harness) {
    h.visit("ahead", &slow()).await; // admitted at once
    let first = h.visit("tabs", &slow()).await;
    h.visit("behind", &slow()).await;
    for _ in 0..10 {
        let again = h.visit("tabs", &slow()).await;
        assert_eq!((again.position, again.seq, again.epoch), (Some(1), first.seq, first.epoch));
    }
    let stats = h.store.stats(ROOM, &slow()).await.unwrap();
    assert_eq!(stats.queue_length, 2, "ten tabs, one place");
}

async fn positions_follow_join_order_and_only_go_down(h: Harness) {
    h.visit("ahead", &slow()).await;
    let visitors = names(0..20);
    for (i, v) in visitors.iter().enumerate() {
        assert_eq!(h.visit(v, &slow()).await.position, Some(i as u64 + 1));
    }
    h.store.leave(ROOM, &visitors[4], 0).await.unwrap();
    for (i, v) in visitors.iter().enumerate() {
        let expected = match i {
            0..4 => i as u64 + 1,
            4 => 20, // came back: the back of the line
            _ => i as u64,
        };
        assert_eq!(h.visit(v, &slow()).await.position, Some(expected), "{v}");
    }
}

async fn the_tick_admits_from_the_head_of_the_line_at_the_rate(h: Harness) {
    let policy = Policy { admit_per_minute: 600, ..policy() }; // ten a second
    h.store.set_paused(ROOM, true).await.unwrap();
    let visitors = names(0..40);
    for v in &visitors {
        h.visit(v, &policy).await;
    }
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut given = 0;
    for _ in 0..6 {
        given += h.store.tick(ROOM, &policy).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // 1.5 s of ticks plus the 1 s look-ahead: about 25 slots at ten a second.
    assert!((20..=27).contains(&given), "slots given: {given}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut admitted = Vec::new();
    for v in &visitors {
        if h.visit(v, &policy).await.state == QueueState::Admitted {
            admitted.push(v.clone());
        }
    }
    assert_eq!(admitted, visitors[..given as usize].to_vec(), "admitted in join order");
    let behind = h.visit(&visitors[given as usize], &policy).await;
    assert_eq!(behind.position, Some(1));
}

async fn capacity_caps_sessions_and_leaving_frees_a_place(h: Harness) {
    let policy = Policy { max_active_users: 2, ..policy() };
    for v in ["a", "b"] {
        assert_eq!(h.visit(v, &policy).await.state, QueueState::Admitted);
        tokio::time::sleep(Duration::from_millis(20)).await; // past the 10 ms spacing
    }
    assert_eq!(h.visit("c", &policy).await.state, QueueState::Waiting);
    assert_eq!(h.store.tick(ROOM, &policy).await.unwrap().admitted, 0, "the house is full");
    h.store.leave(ROOM, "a", 0).await.unwrap();
    assert_eq!(h.store.tick(ROOM, &policy).await.unwrap().admitted, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(h.visit("c", &policy).await.state, QueueState::Admitted);
    assert_eq!(h.visit("d", &policy).await.state, QueueState::Waiting);
}

async fn abandoned_visitors_are_dropped_before_anyone_is_admitted(h: Harness) {
    let policy = Policy { abandon_ms: 300, ..policy() };
    h.store.set_paused(ROOM, true).await.unwrap();
    let visitors = names(0..10);
    for v in &visitors {
        h.visit(v, &policy).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for v in &visitors[5..] {
        h.visit(v, &policy).await; // the heartbeat
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = h.store.tick(ROOM, &policy).await.unwrap();
    assert_eq!((report.abandoned, report.stats.queue_length), (5, 5));
    assert_eq!(h.visit(&visitors[5], &policy).await.position, Some(1));
    h.store.set_paused(ROOM, false).await.unwrap();
    let report = h.store.tick(ROOM, &policy).await.unwrap();
    assert_eq!(report.admitted, 5);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.visit(&visitors[5], &policy).await.state, QueueState::Admitted);
}

async fn a_paused_room_admits_nobody_until_resumed(h: Harness) {
    h.store.set_paused(ROOM, true).await.unwrap();
    let standing = h.visit("a", &policy()).await;
    assert_eq!((standing.state, standing.position), (QueueState::Paused, Some(1)));
    assert_eq!(h.store.tick(ROOM, &policy()).await.unwrap().admitted, 0);
    assert!(h.store.stats(ROOM, &policy()).await.unwrap().paused);
    h.store.set_paused(ROOM, false).await.unwrap();
    assert_eq!(h.store.tick(ROOM, &policy()).await.unwrap().admitted, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(h.visit("a", &policy()).await.state, QueueState::Admitted);
}

async fn the_prequeue_is_reordered_at_opening(h: Harness) {
    let opens_at = anteroom::store::unix_ms() + 500;
    let policy = Policy { opens_at_ms: Some(opens_at), ..policy() };
    let visitors = names(0..10);
    for (i, v) in visitors.iter().enumerate() {
        // The caller draws the random score; reversed here so the order is checkable.
        let visit = anteroom::store::Visit { visitor: v, restore: None, prequeue_score: 100 - i as u64, join: true };
        let standing = h.store.visit(ROOM, &visit, &policy).await.unwrap();
        assert_eq!((standing.state, standing.position), (QueueState::Scheduled, None), "nobody is let in early");
    }
    assert_eq!(h.store.tick(ROOM, &policy).await.unwrap().admitted, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    h.store.set_paused(ROOM, true).await.unwrap();
    for (i, v) in visitors.iter().enumerate() {
        assert_eq!(h.visit(v, &policy).await.position, Some(10 - i as u64));
    }
    // Joiners after the opening go behind everyone who pre-queued.
    assert_eq!(h.visit("late", &policy).await.position, Some(11));
}

async fn an_ended_session_frees_capacity_and_is_never_renewed(h: Harness) {
    let policy = Policy { max_active_users: 1, ..policy() };
    assert_eq!(h.visit("a", &policy).await.state, QueueState::Admitted);
    assert_eq!(h.visit("b", &policy).await.state, QueueState::Waiting);
    let until = anteroom::store::unix_ms() + 60_000;
    h.store.end_session(ROOM, "a", until).await.unwrap();
    assert!(!h.store.renew(ROOM, "a", until).await.unwrap(), "a revoked session stays ended");
    assert_eq!(h.store.tick(ROOM, &policy).await.unwrap().admitted, 1);
}

async fn a_session_the_store_lost_is_renewed_back(h: Harness) {
    let until = anteroom::store::unix_ms() + 60_000;
    assert!(h.store.renew(ROOM, "shopper", until).await.unwrap());
    assert_eq!(h.store.stats(ROOM, &policy()).await.unwrap().active_sessions, 1);
}

async fn after_a_wipe_a_signed_cookie_restores_the_place(mut h: Harness) {
    h.visit("x", &slow()).await;
    let a = h.visit("a", &slow()).await;
    let b = h.visit("b", &slow()).await;
    h.wipe();
    assert_eq!(h.visit("first-after", &slow()).await.state, QueueState::Admitted);
    let newcomer = h.visit("newcomer", &slow()).await;
    assert_ne!(newcomer.epoch, a.epoch, "a wipe starts a new epoch");
    let back = |s: &Standing, v: &'static str| anteroom::store::Visit {
        visitor: v,
        restore: Some(Restore { epoch: s.epoch, seq: s.seq }),
        prequeue_score: 0,
        join: true,
    };
    assert_eq!(h.store.visit(ROOM, &back(&b, "b"), &slow()).await.unwrap().position, Some(1));
    assert_eq!(h.store.visit(ROOM, &back(&a, "a"), &slow()).await.unwrap().position, Some(1));
    assert_eq!(h.visit("b", &slow()).await.position, Some(2));
    assert_eq!(h.visit("newcomer", &slow()).await.position, Some(3));
}

async fn without_a_wipe_an_old_cookie_does_not_jump_the_line(h: Harness) {
    h.visit("x", &slow()).await;
    let a = h.visit("a", &slow()).await;
    h.visit("b", &slow()).await;
    h.store.leave(ROOM, "a", 0).await.unwrap();
    let visit = anteroom::store::Visit {
        visitor: "a",
        restore: Some(Restore { epoch: a.epoch, seq: a.seq }),
        prequeue_score: 0,
        join: true,
    };
    assert_eq!(h.store.visit(ROOM, &visit, &slow()).await.unwrap().position, Some(2));
}

async fn live_limits_override_the_configured_ones(h: Harness) {
    let limits = LimitOverrides { admit_per_minute: Some(42), max_active_users: Some(3) };
    h.store.set_limits(ROOM, limits).await.unwrap();
    let stats = h.store.stats(ROOM, &policy()).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.max_active_users), (42, 3));
    h.store.set_limits(ROOM, LimitOverrides { admit_per_minute: Some(7), max_active_users: None }).await.unwrap();
    let stats = h.store.stats(ROOM, &policy()).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.max_active_users), (7, 3));
}

async fn ticks_running_at_once_admit_no_more_than_one_would(h: Harness) {
    let policy = Policy { admit_per_minute: 600, ..policy() };
    h.store.set_paused(ROOM, true).await.unwrap();
    for v in names(0..100) {
        h.visit(&v, &policy).await;
    }
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut given = 0;
    for _ in 0..10 {
        let (x, y) = tokio::join!(h.store.tick(ROOM, &policy), h.store.tick(ROOM, &policy));
        given += x.unwrap().admitted + y.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 1 s of ticking plus the 1 s look-ahead, at ten a second: about 20, never 40.
    assert!((15..=22).contains(&given), "slots given: {given}");
}

async fn a_visit_without_joining_holds_no_place(h: Harness) {
    fn probe(visitor: &str) -> anteroom::store::Visit<'_> {
        anteroom::store::Visit { visitor, restore: None, prequeue_score: 0, join: false }
    }
    let first = h.store.visit(ROOM, &probe("first"), &slow()).await.unwrap();
    assert_eq!(first.state, QueueState::Admitted, "an open room still admits at once");
    for i in 0..50 {
        let v = format!("cookieless-{i}");
        let standing = h.store.visit(ROOM, &probe(&v), &slow()).await.unwrap();
        assert_eq!((standing.state, standing.position), (QueueState::Waiting, None));
    }
    assert_eq!(h.store.stats(ROOM, &slow()).await.unwrap().queue_length, 0, "nobody took a place");
}

/// Visits that arrive together (the Redis store sends them as one script call) still
/// each get one place, in the right room, and a second tab gets the same one.
async fn many_visits_at_once_each_get_one_place(h: Harness) {
    for room in ["sale", "other"] {
        h.store.set_paused(room, true).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..300 {
        let room = if i % 2 == 0 { "sale" } else { "other" };
        for _tab in 0..(if i < 40 { 2 } else { 1 }) {
            let store = h.store.clone();
            tasks.push(tokio::spawn(async move {
                let visitor = format!("visitor-{i:04}");
                let visit = anteroom::store::Visit { visitor: &visitor, restore: None, prequeue_score: 0, join: true };
                (i, store.visit(room, &visit, &policy()).await.unwrap().seq)
            }));
        }
    }
    let mut seqs = std::collections::HashMap::new();
    for task in tasks {
        let (i, seq) = task.await.unwrap();
        let first = *seqs.entry(i).or_insert(seq);
        assert_eq!(first, seq, "visitor {i}: two tabs, two places");
    }
    for room in ["sale", "other"] {
        assert_eq!(h.store.stats(room, &policy()).await.unwrap().queue_length, 150, "{room}");
        let mut positions = Vec::new();
        for i in (if room == "sale" { 0 } else { 1 }..300).step_by(2) {
            let visitor = format!("visitor-{i:04}");
            positions.push(h.store.visit(room, &plain(&visitor), &policy()).await.unwrap().position.unwrap());
        }
        positions.sort();
        assert_eq!(positions, (1..=150).collect::<Vec<u64>>(), "{room}: one place each");
    }
}

async fn a_closed_room_admits_nobody_and_shoppers_keep_their_session(h: Harness) {
    assert_eq!(h.visit("shopper", &slow()).await.state, QueueState::Admitted);
    assert_eq!(h.visit("waiter", &slow()).await.position, Some(1));
    h.store.set_closed(ROOM, true).await.unwrap();
    for v in ["waiter", "newcomer"] {
        let standing = h.visit(v, &slow()).await;
        assert_eq!((standing.state, standing.position), (QueueState::Closed, None), "{v}");
    }
    assert_eq!(h.visit("shopper", &slow()).await.state, QueueState::Admitted, "shoppers inside finish");
    let report = h.store.tick(ROOM, &policy()).await.unwrap();
    assert_eq!(report.admitted, 0);
    assert!(report.stats.closed);
    assert_eq!(report.stats.queue_length, 1, "the newcomer took no place");
    h.store.set_closed(ROOM, false).await.unwrap();
    assert_eq!(h.visit("waiter", &slow()).await.position, Some(1), "reopened: the place was kept");
}
