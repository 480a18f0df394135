//! One suite, two stores: every test runs against the memory store and against a real
//! `redis-server` started for it. The stores must agree on every rule of the queue.

mod support;

use anteroom::store::{Joining, LimitOverrides, Policy, QueueState, Remembered, Restore, Standing, Visit};
use std::time::Duration;
use support::stores::{conformance, names, plain, policy, renewal, slow, Harness, ROOM};

conformance!(
    a_quiet_room_admits_at_once,
    immediate_admissions_are_spaced_by_the_rate,
    a_visitor_who_joins_again_keeps_their_place,
    positions_follow_join_order_and_only_go_down,
    the_tick_admits_from_the_head_of_the_line_at_the_rate,
    capacity_caps_sessions_and_leaving_frees_a_place,
    abandoned_visitors_are_dropped_before_anyone_is_admitted,
    an_admission_nobody_claims_goes_after_claim_ms_while_waiters_keep_their_place,
    a_paused_room_admits_nobody_until_resumed,
    the_prequeue_is_reordered_at_opening,
    an_ended_session_frees_capacity_and_is_never_renewed,
    a_session_the_store_lost_is_renewed_back,
    after_a_wipe_the_line_comes_back_in_order_and_admissions_wait_for_the_recount,
    a_restored_cookie_starts_the_recount_even_when_no_instance_remembers,
    a_token_from_before_the_data_began_starts_the_recount,
    after_a_wipe_a_place_given_up_long_ago_is_not_restored,
    after_a_wipe_the_operators_settings_come_back,
    without_a_wipe_an_old_cookie_does_not_jump_the_line,
    no_ten_seconds_of_grants_exceed_a_sixth_of_the_rate,
    live_limits_override_the_configured_ones,
    a_message_to_the_line_reaches_every_instance_and_is_cleared,
    ticks_running_at_once_admit_no_more_than_one_would,
    a_visit_without_joining_holds_no_place,
    many_visits_at_once_each_get_one_place,
    waiters_polling_together_see_their_places_and_stay_in_line,
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
    h.leave(&visitors[4]).await;
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
        given += h.store.tick(ROOM, &policy, 0).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // 1.25 s between the first tick and the last, at ten a second, granted only once
    // their time has come (nothing ahead): about 13.
    assert!((11..=16).contains(&given), "admissions granted: {given}");
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
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 0, "the house is full");
    h.leave("a").await;
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 1);
    assert_eq!(h.visit("c", &policy).await.state, QueueState::Admitted);
    assert_eq!(h.visit("d", &policy).await.state, QueueState::Waiting);
}

async fn an_admission_nobody_claims_goes_after_claim_ms_while_waiters_keep_their_place(h: Harness) {
    // One admission a minute; an admission is claimable for 300 ms, a place kept 60 s.
    let policy = Policy { claim_ms: 300, ..slow() };
    h.store.set_paused(ROOM, true).await.unwrap();
    h.visit("first", &policy).await;
    h.visit("second", &policy).await;
    h.store.set_paused(ROOM, false).await.unwrap();
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!((report.abandoned, report.stats.admitted_unclaimed), (1, 0), "the unclaimed turn is gone");
    assert_eq!(report.stats.queue_length, 1, "the one still waiting keeps the place: {report:?}");
    assert_eq!(h.visit("second", &policy).await.position, Some(1));
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
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!((report.abandoned, report.stats.queue_length), (5, 5));
    assert_eq!(h.visit(&visitors[5], &policy).await.position, Some(1));
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut admitted = 0;
    while admitted == 0 {
        admitted = h.store.tick(ROOM, &policy, 0).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.visit(&visitors[5], &policy).await.state, QueueState::Admitted, "the head is admitted first");
}

async fn a_paused_room_admits_nobody_until_resumed(h: Harness) {
    h.store.set_paused(ROOM, true).await.unwrap();
    let standing = h.visit("a", &policy()).await;
    assert_eq!((standing.state, standing.position), (QueueState::Paused, Some(1)));
    assert_eq!(h.store.tick(ROOM, &policy(), 0).await.unwrap().admitted, 0);
    assert!(h.store.stats(ROOM, &policy()).await.unwrap().paused);
    h.store.set_paused(ROOM, false).await.unwrap();
    assert_eq!(h.store.tick(ROOM, &policy(), 0).await.unwrap().admitted, 1);
    assert_eq!(h.visit("a", &policy()).await.state, QueueState::Admitted);
}

async fn the_prequeue_is_reordered_at_opening(h: Harness) {
    let opens_at = anteroom::time::unix_ms() + 500;
    let policy = Policy { opens_at_ms: Some(opens_at), ..policy() };
    let visitors = names(0..10);
    for (i, v) in visitors.iter().enumerate() {
        // The caller draws the random score; reversed here so the order is checkable.
        let visit = anteroom::store::Visit {
            visitor: v,
            restore: None,
            prequeue_score: 100 - i as u64,
            joining: anteroom::store::Joining::Place,
            client: None,
        };
        let standing = h.store.visit(ROOM, &visit, &policy).await.unwrap();
        assert_eq!((standing.state, standing.position), (QueueState::Scheduled, None), "nobody is let in early");
    }
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 0);
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
    let until = anteroom::time::unix_ms() + 60_000;
    let before = anteroom::time::unix_ms() - 1;
    h.store.end_session(ROOM, "a.1").await.unwrap();
    assert!(!h.store.renew(ROOM, &renewal("a.1", until, 0), &policy).await.unwrap(), "a revoked session stays ended");
    tokio::time::sleep(Duration::from_millis(20)).await; // past the 10 ms spacing
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!(report.admitted, 1);
    // Every instance learns of it at its next tick.
    assert_eq!(report.revocations.len(), 1);
    assert_eq!(report.revocations[0].0, "a.1");
    assert!(report.revocations[0].1 >= before);
    let later = h.store.tick(ROOM, &policy, report.revocations[0].1 + 1).await.unwrap();
    assert!(later.revocations.is_empty(), "read past it");
    // The visitor's next admission is a new session, not refused.
    assert!(h.store.renew(ROOM, &renewal("a.2", until, 0), &policy).await.unwrap());
}

async fn a_session_the_store_lost_is_renewed_back(h: Harness) {
    let until = anteroom::time::unix_ms() + 60_000;
    assert!(h.store.renew(ROOM, &renewal("shopper", until, anteroom::time::unix_ms()), &policy()).await.unwrap());
    assert_eq!(h.store.stats(ROOM, &policy()).await.unwrap().active_sessions, 1);
}

/// A visitor's cookie after a visit: where they stand, and that the store saw them now.
fn restore_from(s: &Standing) -> Restore {
    Restore { epoch: s.epoch, seq: s.seq, seen_ms: s.now_ms }
}

fn returning<'a>(visitor: &'a str, restore: Restore) -> anteroom::store::Visit<'a> {
    anteroom::store::Visit {
        visitor,
        restore: Some(restore),
        prequeue_score: 0,
        joining: anteroom::store::Joining::Place,
        client: None,
    }
}

/// What an instance that saw the room before the wipe remembers of it.
fn remembering(epoch: u64, policy: Policy) -> Policy {
    Policy { remembered: Remembered { epoch, ..Remembered::default() }, ..policy }
}

async fn after_a_wipe_the_line_comes_back_in_order_and_admissions_wait_for_the_recount(mut h: Harness) {
    h.visit("x", &policy()).await; // admitted at once: the room is open
    h.store.set_paused(ROOM, true).await.unwrap();
    let a = h.visit("a", &policy()).await;
    let b = h.visit("b", &policy()).await;
    let c = h.visit("c", &policy()).await;
    h.store.set_paused(ROOM, false).await.unwrap();
    h.wipe();
    let policy = remembering(a.epoch, policy());
    // The first call after the wipe, from an instance that knew the room, starts the
    // recount: a newcomer is not let in through the open-room path.
    let newcomer = h.visit("newcomer", &policy).await;
    assert_eq!(newcomer.state, QueueState::Waiting, "no one is let in ahead of the restored line");
    assert_ne!(newcomer.epoch, a.epoch, "a wipe starts a new epoch");
    assert!(h.store.stats(ROOM, &policy).await.unwrap().recounting);
    // They come back in reverse order; the line is their old order, ahead of the newcomer.
    for (v, s) in [("c", &c), ("b", &b), ("a", &a)] {
        h.store.visit(ROOM, &returning(v, restore_from(s)), &policy).await.unwrap();
    }
    for (v, expected) in [("a", 1), ("b", 2), ("c", 3), ("newcomer", 4)] {
        assert_eq!(h.visit(v, &policy).await.position, Some(expected), "{v}");
    }
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 0, "nobody admitted during the recount");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut admitted = 0;
    while admitted == 0 {
        admitted = h.store.tick(ROOM, &policy, 0).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.visit("a", &policy).await.state, QueueState::Admitted, "the head of the old line first");
}

async fn a_token_from_before_the_data_began_starts_the_recount(mut h: Harness) {
    assert_eq!(h.visit("shopper", &slow()).await.state, QueueState::Admitted);
    let issued = anteroom::time::unix_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.wipe();
    // The shopper's next request counts the session again; its token predates the room.
    let until = issued + 60_000;
    assert!(h.store.renew(ROOM, &renewal("shopper.1", until, issued), &slow()).await.unwrap());
    let stats = h.store.stats(ROOM, &slow()).await.unwrap();
    assert_eq!(stats.active_sessions, 1, "counted again");
    assert!(stats.recounting, "and the recount started");
    assert_eq!(h.visit("newcomer", &slow()).await.state, QueueState::Waiting, "no newcomer walks in meanwhile");
}

async fn a_restored_cookie_starts_the_recount_even_when_no_instance_remembers(mut h: Harness) {
    h.visit("x", &slow()).await;
    let a = h.visit("a", &slow()).await;
    h.wipe();
    // A restarted memory store: nobody remembers the room, but a fresh cookie says a line
    // was there.
    let back = h.store.visit(ROOM, &returning("a", restore_from(&a)), &slow()).await.unwrap();
    assert_eq!(back.position, Some(1));
    assert!(h.store.stats(ROOM, &slow()).await.unwrap().recounting);
    assert_eq!(h.visit("newcomer", &slow()).await.state, QueueState::Waiting);
}

async fn after_a_wipe_a_place_given_up_long_ago_is_not_restored(mut h: Harness) {
    h.visit("x", &slow()).await;
    let stale = h.visit("farmed", &slow()).await;
    let fresh = h.visit("polling", &slow()).await;
    h.wipe();
    let policy = remembering(fresh.epoch, slow());
    // The farmed cookie's place was last confirmed longer ago than abandon_after (plus
    // the cookie's refresh interval): it was left or dropped, and earns nothing.
    let long_ago = Restore { seen_ms: stale.now_ms - slow().abandon_ms - 10_001, ..restore_from(&stale) };
    h.store.visit(ROOM, &returning("farmed", long_ago), &policy).await.unwrap();
    h.store.visit(ROOM, &returning("polling", restore_from(&fresh)), &policy).await.unwrap();
    assert_eq!(h.visit("polling", &policy).await.position, Some(1));
    assert_eq!(h.visit("farmed", &policy).await.position, Some(2), "to the back of the line");
    // A cookie that never said when it was seen (an old one) restores nothing either.
    let unknown = Restore { seen_ms: 0, ..restore_from(&fresh) };
    h.store.visit(ROOM, &returning("old-cookie", unknown), &policy).await.unwrap();
    assert_eq!(h.visit("old-cookie", &policy).await.position, Some(3));
}

async fn after_a_wipe_the_operators_settings_come_back(mut h: Harness) {
    h.visit("x", &policy()).await;
    let epoch = h.visit("x", &policy()).await.epoch;
    h.wipe();
    let remembered =
        Remembered { epoch, paused: true, closed: false, admit_per_minute: Some(42), max_active_users: Some(7) };
    let policy = Policy { remembered, ..policy() };
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    let stats = report.stats;
    assert!(stats.paused, "a paused room stays paused");
    assert_eq!((stats.admit_per_minute, stats.max_active_users), (42, 7), "live limits stay");
    assert_eq!(h.visit("newcomer", &policy).await.state, QueueState::Paused);
    // Only once: resuming after the recovery is not undone by an instance's memory.
    h.store.set_paused(ROOM, false).await.unwrap();
    assert!(!h.store.tick(ROOM, &policy, 0).await.unwrap().stats.paused);
    let closed = Policy { remembered: Remembered { closed: true, ..remembered }, ..policy };
    h.wipe();
    let fresh_epoch = h.store.tick(ROOM, &closed, 0).await.unwrap().stats;
    assert!(fresh_epoch.closed, "a closed room stays closed");
}

async fn without_a_wipe_an_old_cookie_does_not_jump_the_line(h: Harness) {
    h.visit("x", &slow()).await;
    let a = h.visit("a", &slow()).await;
    h.visit("b", &slow()).await;
    h.leave("a").await;
    let visit = returning("a", restore_from(&a));
    assert_eq!(h.store.visit(ROOM, &visit, &slow()).await.unwrap().position, Some(2));
}

async fn a_message_to_the_line_reaches_every_instance_and_is_cleared(h: Harness) {
    assert_eq!(h.store.stats(ROOM, &policy()).await.unwrap().message, "");
    h.store.set_message(ROOM, "Doors open at 10:05 — 5 minutes late, sorry").await.unwrap();
    // Every instance reads it at its tick; the admin API in the stats.
    let ticked = h.store.tick(ROOM, &policy(), 0).await.unwrap().stats;
    assert_eq!(ticked.message, "Doors open at 10:05 — 5 minutes late, sorry");
    assert_eq!(h.store.stats(ROOM, &policy()).await.unwrap().message, ticked.message);
    h.store.set_message(ROOM, "").await.unwrap();
    assert_eq!(h.store.tick(ROOM, &policy(), 0).await.unwrap().stats.message, "");
}

async fn live_limits_override_the_configured_ones(h: Harness) {
    let limits = LimitOverrides { admit_per_minute: Some(42), max_active_users: Some(3), reset: false };
    h.store.set_limits(ROOM, limits).await.unwrap();
    let stats = h.store.stats(ROOM, &policy()).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.max_active_users), (42, 3));
    let rate = LimitOverrides { admit_per_minute: Some(7), ..LimitOverrides::default() };
    h.store.set_limits(ROOM, rate).await.unwrap();
    let stats = h.store.stats(ROOM, &policy()).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.max_active_users), (7, 3));
    // A reset hands the room back to its configured limits, which a reload may have changed.
    h.store.set_limits(ROOM, LimitOverrides { reset: true, ..LimitOverrides::default() }).await.unwrap();
    let reloaded = Policy { admit_per_minute: 61, max_active_users: 9, ..policy() };
    let stats = h.store.stats(ROOM, &reloaded).await.unwrap();
    assert_eq!((stats.admit_per_minute, stats.max_active_users, stats.rate_pinned), (61, 9, false));
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
        let (x, y) = tokio::join!(h.store.tick(ROOM, &policy, 0), h.store.tick(ROOM, &policy, 0));
        given += x.unwrap().admitted + y.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 0.9 s of ticking at ten a second: about 10, never 20.
    assert!((8..=12).contains(&given), "admissions granted: {given}");
}

/// Any 10 s of grants holds at most a sixth of the minute's rate, whoever granted them:
/// after a burst at a high rate, lowering the rate admits nobody until the window clears.
async fn no_ten_seconds_of_grants_exceed_a_sixth_of_the_rate(h: Harness) {
    let fast = Policy { admit_per_minute: 1_200, ..policy() };
    h.store.set_paused(ROOM, true).await.unwrap();
    for v in names(0..100) {
        h.visit(&v, &fast).await;
    }
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut given = 0;
    while given < 10 {
        given += h.store.tick(ROOM, &fast, 0).await.unwrap().admitted;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Now one a second: by spacing alone a tick would grant one, but the last 10 s
    // already hold 10 = 60 / 6.
    let slow = Policy { admit_per_minute: 60, ..policy() };
    let mut later = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        later += h.store.tick(ROOM, &slow, 0).await.unwrap().admitted;
    }
    assert_eq!(later, 0, "the window is full");
}

async fn a_visit_without_joining_holds_no_place(h: Harness) {
    fn probe(visitor: &str) -> anteroom::store::Visit<'_> {
        anteroom::store::Visit {
            visitor,
            restore: None,
            prequeue_score: 0,
            joining: anteroom::store::Joining::AtOnce,
            client: None,
        }
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
                let visit = anteroom::store::Visit {
                    visitor: &visitor,
                    restore: None,
                    prequeue_score: 0,
                    joining: anteroom::store::Joining::Place,
                    client: None,
                };
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

/// Polls that arrive together (one script call on the Redis store, which finds the
/// waiters among them and writes their heartbeats in bulk) each see their own place and
/// keep it alive, while a newcomer and a second tab in the same call are answered as alone.
async fn waiters_polling_together_see_their_places_and_stay_in_line(h: Harness) {
    let policy = Policy { abandon_ms: 600, rejoin_ms: 0, ..policy() };
    h.store.set_paused(ROOM, true).await.unwrap();
    let visitors = names(0..60);
    for v in &visitors {
        h.visit(v, &policy).await;
    }
    // For longer than a waiter's patience the even ones poll (each from two tabs, all at
    // once, with a newcomer); the odd ones are silent. No tick runs meanwhile.
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_millis(1_200) {
        let mut tasks = Vec::new();
        let newcomer = format!("newcomer-{round}");
        let polls = visitors.iter().enumerate().step_by(2).flat_map(|(i, v)| [(i, v.clone()), (i, v.clone())]);
        for (i, visitor) in polls.chain([(60 + round, newcomer)]) {
            let (store, policy) = (h.store.clone(), policy.clone());
            tasks.push(tokio::spawn(async move {
                let joining = if i < 60 { Joining::Keep } else { Joining::Place };
                let visit = Visit { visitor: &visitor, restore: None, prequeue_score: 0, joining, client: None };
                (i, store.visit(ROOM, &visit, &policy).await.unwrap())
            }));
        }
        for task in tasks {
            let (i, standing) = task.await.unwrap();
            assert_eq!((standing.state, standing.position), (QueueState::Paused, Some(i as u64 + 1)), "visitor {i}");
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The silent ones are dropped (and the early newcomers, silent since); the pollers kept
    // their places, now one after the other at the head.
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert!(report.abandoned >= 30, "{report:?}");
    for (i, v) in visitors.iter().enumerate() {
        let visit = Visit { visitor: v, restore: None, prequeue_score: 0, joining: Joining::Keep, client: None };
        let kept = (i % 2 == 0).then_some(i as u64 / 2 + 1);
        assert_eq!(h.store.visit(ROOM, &visit, &policy).await.unwrap().position, kept, "{v}");
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
    let report = h.store.tick(ROOM, &policy(), 0).await.unwrap();
    assert_eq!(report.admitted, 0);
    assert!(report.stats.closed);
    assert_eq!(report.stats.queue_length, 1, "the newcomer took no place");
    h.store.set_closed(ROOM, false).await.unwrap();
    assert_eq!(h.visit("waiter", &slow()).await.position, Some(1), "reopened: the place was kept");
}
