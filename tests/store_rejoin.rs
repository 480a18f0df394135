//! A waiter dropped for silence (a throttled background tab, a frozen phone) who comes
//! back within the rejoin grace with the cookie of that place gets it back; nobody else
//! does. Both stores, one suite.

mod support;

use anteroom::store::{Departure, Found, Joining, Policy, QueueState, Restore, Standing, Visit, Whereabouts};
use std::time::Duration;
use support::stores::{conformance, policy, Harness, ROOM};

conformance!(
    a_waiter_dropped_for_silence_comes_back_to_the_old_place,
    after_the_grace_the_place_is_gone,
    a_place_given_up_with_leave_is_not_given_back,
    only_the_cookie_of_that_very_place_brings_it_back,
    a_turn_dropped_unclaimed_is_not_given_back,
    a_grace_of_zero_gives_nothing_back,
    a_place_dropped_in_one_room_is_not_taken_in_another,
    support_finds_visitors_wherever_they_are,
);

/// Silence after 300 ms; a dropped place kept for `rejoin_ms`. Paused, so nobody is
/// admitted meanwhile.
fn quick(rejoin_ms: u64) -> Policy {
    Policy { abandon_ms: 300, rejoin_ms, ..policy() }
}

/// `a`, `b`, `c` in line; `a` falls silent while the others poll, and the tick drops it.
async fn drop_a(h: &Harness, policy: &Policy) -> Standing {
    h.store.set_paused(ROOM, true).await.unwrap();
    let a = h.visit("a", policy).await;
    h.visit("b", policy).await;
    h.visit("c", policy).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(110)).await;
        h.visit("b", policy).await;
        h.visit("c", policy).await;
    }
    let report = h.store.tick(ROOM, policy, 0).await.unwrap();
    assert_eq!((report.abandoned, report.stats.queue_length), (1, 2), "a was dropped: {report:?}");
    a
}

async fn a_waiter_dropped_for_silence_comes_back_to_the_old_place(h: Harness) {
    let policy = quick(60_000);
    let a = drop_a(&h, &policy).await;
    assert_eq!(h.visit("b", &policy).await.position, Some(1), "while a is away, b is first");
    let back = h.visit_with_cookie("a", &a, &policy).await;
    assert!(back.rejoined);
    assert_eq!((back.position, back.seq, back.epoch), (Some(1), a.seq, a.epoch), "{back:?}");
    assert_eq!(h.visit("b", &policy).await.position, Some(2));
    let again = h.visit_with_cookie("a", &a, &policy).await;
    assert!(!again.rejoined, "rejoined once; now simply in line");
    assert_eq!(again.position, Some(1));
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().queue_length, 3, "one place each, no copy");
}

async fn after_the_grace_the_place_is_gone(h: Harness) {
    let policy = quick(200);
    let a = drop_a(&h, &policy).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.visit("b", &policy).await;
    h.visit("c", &policy).await;
    h.store.tick(ROOM, &policy, 0).await.unwrap();
    let back = h.visit_with_cookie("a", &a, &policy).await;
    assert!(!back.rejoined);
    assert_eq!(back.position, Some(3), "the end of the line: {back:?}");
    assert_ne!(back.seq, a.seq);
}

async fn a_place_given_up_with_leave_is_not_given_back(h: Harness) {
    let policy = quick(60_000);
    let a = drop_a(&h, &policy).await;
    h.store.leave(ROOM, &Departure { visitor: "a", seq: a.seq, session: None }).await.unwrap();
    let back = h.visit_with_cookie("a", &a, &policy).await;
    assert_eq!((back.rejoined, back.position), (false, Some(3)), "{back:?}");
}

async fn only_the_cookie_of_that_very_place_brings_it_back(h: Harness) {
    let policy = quick(60_000);
    let a = drop_a(&h, &policy).await;
    // An older cookie of the same visitor (an earlier, better place) earns nothing.
    let older = Standing { seq: a.seq - 1, ..a.clone() };
    let back = h.visit_with_cookie("a", &older, &policy).await;
    assert_eq!((back.rejoined, back.position), (false, Some(3)), "{back:?}");
    // Another visitor presenting a's sequence is not a.
    let impostor = h.visit_with_cookie("z", &a, &policy).await;
    assert!(!impostor.rejoined);
    assert_eq!(impostor.position, Some(4));
    // Without a cookie, a is simply new.
    h.leave("a").await;
    assert_eq!(h.visit("a", &policy).await.position, Some(4));
}

async fn a_turn_dropped_unclaimed_is_not_given_back(h: Harness) {
    let policy = quick(60_000);
    h.store.set_paused(ROOM, true).await.unwrap();
    let a = h.visit("a", &policy).await;
    h.visit("b", &policy).await;
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut admitted = 0;
    while admitted == 0 {
        admitted = h.store.tick(ROOM, &Policy { admit_per_minute: 1, ..policy.clone() }, 0).await.unwrap().admitted;
    }
    h.store.set_paused(ROOM, true).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(110)).await;
        h.visit("b", &policy).await;
    }
    let report = h.store.tick(ROOM, &policy, 0).await.unwrap();
    assert_eq!(report.abandoned, 1, "a's turn went unclaimed: {report:?}");
    let back = h.visit_with_cookie("a", &a, &policy).await;
    assert_eq!((back.rejoined, back.position), (false, Some(2)), "{back:?}");
}

async fn a_grace_of_zero_gives_nothing_back(h: Harness) {
    let policy = quick(0);
    let a = drop_a(&h, &policy).await;
    let back = h.visit_with_cookie("a", &a, &policy).await;
    assert_eq!((back.rejoined, back.position), (false, Some(3)), "{back:?}");
}

async fn a_place_dropped_in_one_room_is_not_taken_in_another(h: Harness) {
    let policy = quick(60_000);
    let a = drop_a(&h, &policy).await;
    let restore = Restore { epoch: a.epoch, seq: a.seq, seen_ms: a.now_ms };
    let visit =
        Visit { visitor: "a", restore: Some(restore), prequeue_score: 0, joining: Joining::Place, client: None };
    h.store.set_paused("other", true).await.unwrap();
    h.store
        .visit(
            "other",
            &Visit { visitor: "o", restore: None, prequeue_score: 0, joining: Joining::Place, client: None },
            &policy,
        )
        .await
        .unwrap();
    // (The gateway never gets this far: a queue cookie's signature names its room.)
    let elsewhere = h.store.visit("other", &visit, &policy).await.unwrap();
    assert!(!elsewhere.rejoined);
    assert_eq!(elsewhere.state, QueueState::Paused);
    let home = h.visit_with_cookie("a", &a, &policy).await;
    assert!(home.rejoined, "still there for the room it was dropped from");
}

async fn support_finds_visitors_wherever_they_are(h: Harness) {
    drop_a(&h, &quick(60_000)).await; // a dropped; b, c waiting (paused)
    let policy = Policy { abandon_ms: 60_000, ..quick(60_000) }; // nobody else is dropped from now on
    for i in 0..3000 {
        h.visit(&format!("x{i}"), &policy).await; // a long line to walk in steps
    }
    h.store.set_paused(ROOM, false).await.unwrap();
    let mut admitted = 0;
    while admitted == 0 {
        admitted = h.store.tick(ROOM, &Policy { admit_per_minute: 1, ..policy.clone() }, 0).await.unwrap().admitted;
    }
    let shopper = h.visit("b", &policy).await;
    assert_eq!(shopper.state, QueueState::Admitted);

    let sorted = |mut found: Vec<Found>| {
        found.sort_by(|x, y| x.visitor.cmp(&y.visitor));
        found
    };
    let find = |prefix: &'static str| {
        let store = h.store.clone();
        async move { sorted(store.find_visitors(ROOM, prefix).await.unwrap()) }
    };
    let a = find("a").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(matches!(a[0].whereabouts, Whereabouts::Dropped { .. }), "{a:?}");
    let b = find("b").await;
    assert!(matches!(b[..], [Found { whereabouts: Whereabouts::Shopping { .. }, .. }]), "{b:?}");
    let c = find("c").await;
    assert!(matches!(c[..], [Found { whereabouts: Whereabouts::Waiting { position: 1, .. }, .. }]), "{c:?}");
    let x29 = find("x29").await;
    let names: Vec<&str> = x29.iter().map(|f| f.visitor.as_str()).collect();
    assert_eq!(names.len(), 111, "x29, x290..x299 and x2900..x2999: {names:?}");
    assert!(x29.iter().all(|f| matches!(f.whereabouts, Whereabouts::Waiting { position, .. } if position > 1)));
    assert!(find("nobody").await.is_empty());
}
