//! What a visit may take in a room with a proof-of-work challenge: without a proof only
//! the place the visitor already holds; with one, one place, once. Both stores, one suite.

mod support;

use anteroom::store::{Departure, Joining, Policy, QueueState, Restore};
use support::stores::{conformance, policy, slow, Harness, ROOM};

conformance!(
    without_a_proof_a_visitor_keeps_a_place_but_takes_none,
    without_a_proof_nobody_walks_into_an_open_room,
    a_proof_buys_one_place_and_is_refused_the_second_time,
    a_proof_admitted_at_once_is_spent_too,
    a_proof_is_not_spent_by_a_visitor_who_already_holds_a_place,
    a_visitor_dropped_for_silence_takes_the_place_back_without_a_proof,
    a_waiter_polling_without_a_proof_is_restored_after_a_data_loss,
    spent_proofs_are_forgotten_when_their_challenge_expires,
    the_join_count_follows_new_places,
);

fn proof(id: &str) -> Joining<'_> {
    Joining::Proof { id, until_ms: anteroom::time::unix_ms() + 60_000 }
}

async fn queue_length(h: &Harness, policy: &Policy) -> u64 {
    h.store.stats(ROOM, policy).await.unwrap().queue_length
}

async fn without_a_proof_a_visitor_keeps_a_place_but_takes_none(h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await; // admitted at once: the room is busy from here
    let placed = h.visit_as("a", None, proof("p-a"), &policy).await;
    assert_eq!((placed.state, placed.position), (QueueState::Waiting, Some(1)));
    let kept = h.visit_as("a", None, Joining::Keep, &policy).await;
    assert_eq!((kept.position, kept.seq), (Some(1), placed.seq), "the place held is kept");
    let none = h.visit_as("b", None, Joining::Keep, &policy).await;
    assert_eq!((none.state, none.position, none.seq, none.replayed), (QueueState::Waiting, None, 0, false));
    assert_eq!(queue_length(&h, &policy).await, 1, "b took nothing");
}

async fn without_a_proof_nobody_walks_into_an_open_room(h: Harness) {
    let policy = policy();
    let kept = h.visit_as("a", None, Joining::Keep, &policy).await;
    assert_eq!((kept.state, kept.immediate, kept.seq), (QueueState::Waiting, false, 0));
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().active_sessions, 0);
    let proved = h.visit_as("a", None, proof("p-a"), &policy).await;
    assert_eq!((proved.state, proved.immediate), (QueueState::Admitted, true));
}

async fn a_proof_buys_one_place_and_is_refused_the_second_time(h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await;
    let placed = h.visit_as("a", None, proof("p-1"), &policy).await;
    assert_eq!(placed.position, Some(1));
    h.store.leave(ROOM, &Departure { visitor: "a", seq: placed.seq, session: None }).await.unwrap();
    let replayed = h.visit_as("a", None, proof("p-1"), &policy).await;
    assert_eq!((replayed.replayed, replayed.position, replayed.seq), (true, None, 0), "{replayed:?}");
    let other = h.visit_as("b", None, proof("p-1"), &policy).await;
    assert!(other.replayed, "nor for anyone else");
    assert_eq!(queue_length(&h, &policy).await, 0, "nothing was let in");
    let fresh = h.visit_as("a", None, proof("p-2"), &policy).await;
    assert_eq!((fresh.replayed, fresh.position), (false, Some(1)), "a new proof buys a new place");
}

async fn a_proof_admitted_at_once_is_spent_too(h: Harness) {
    let policy = policy();
    let admitted = h.visit_as("a", None, proof("p-1"), &policy).await;
    assert!(admitted.immediate);
    h.store.leave(ROOM, &Departure { visitor: "a", seq: 0, session: None }).await.unwrap();
    let again = h.visit_as("a", None, proof("p-1"), &policy).await;
    assert_eq!((again.replayed, again.state, again.immediate), (true, QueueState::Waiting, false), "{again:?}");
    assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().active_sessions, 0);
}

async fn a_proof_is_not_spent_by_a_visitor_who_already_holds_a_place(h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await;
    let placed = h.visit_as("a", None, proof("p-1"), &policy).await;
    // A retried join with another proof: the place is reported, the proof stays unspent.
    let retried = h.visit_as("a", None, proof("p-2"), &policy).await;
    assert_eq!((retried.seq, retried.replayed), (placed.seq, false));
    h.store.leave(ROOM, &Departure { visitor: "a", seq: placed.seq, session: None }).await.unwrap();
    let later = h.visit_as("a", None, proof("p-2"), &policy).await;
    assert_eq!((later.replayed, later.position), (false, Some(1)), "p-2 was never spent");
}

async fn a_visitor_dropped_for_silence_takes_the_place_back_without_a_proof(h: Harness) {
    let policy = Policy { abandon_ms: 200, ..slow() };
    h.visit("first", &policy).await;
    let placed = h.visit_as("a", None, proof("p-1"), &policy).await;
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().abandoned, 1);
    let restore = Restore { epoch: placed.epoch, seq: placed.seq, seen_ms: placed.now_ms };
    let back = h.visit_as("a", Some(restore), Joining::Keep, &policy).await;
    assert_eq!((back.rejoined, back.seq, back.position), (true, placed.seq, Some(1)), "{back:?}");
}

async fn a_waiter_polling_without_a_proof_is_restored_after_a_data_loss(mut h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await;
    let placed = h.visit_as("a", None, proof("p-1"), &policy).await;
    h.wipe();
    let restore = Restore { epoch: placed.epoch, seq: placed.seq, seen_ms: placed.now_ms };
    let back = h.visit_as("a", Some(restore), Joining::Keep, &policy).await;
    assert_eq!((back.seq, back.position), (placed.seq, Some(1)), "the signed cookie brings the place back: {back:?}");
}

async fn spent_proofs_are_forgotten_when_their_challenge_expires(h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await;
    let short = Joining::Proof { id: "p-1", until_ms: anteroom::time::unix_ms() + 100 };
    let placed = h.visit_as("a", None, short, &policy).await;
    h.store.leave(ROOM, &Departure { visitor: "a", seq: placed.seq, session: None }).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    h.store.tick(ROOM, &policy, 0).await.unwrap();
    // The gateway refuses an expired challenge before the store sees it; the store only
    // has to keep the id as long as the challenge could be sent.
    let again = h.visit_as("a", None, short, &policy).await;
    assert!(!again.replayed, "the id is no longer kept: {again:?}");
}

async fn the_join_count_follows_new_places(h: Harness) {
    let policy = slow();
    h.visit("first", &policy).await;
    for visitor in ["a", "b", "c"] {
        h.visit(visitor, &policy).await;
        h.visit(visitor, &policy).await;
    }
    h.visit_as("d", None, Joining::Keep, &policy).await;
    let stats = h.store.stats(ROOM, &policy).await.unwrap();
    assert_eq!(stats.joins_total, 3, "three places; polls and the first admission at once are no joins");
    assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().stats.joins_total, 3);
}

mod claims {
    //! An admission is claimed once, plus once more shortly after (a lost answer), with
    //! the same claim time (so one session); after that a queue cookie handed around
    //! gets nothing.

    use super::*;
    use support::stores::plain;

    conformance!(
        an_admission_is_claimed_once_and_once_more_for_a_lost_answer,
        after_the_reclaim_window_the_admission_is_not_handed_out_again,
        leaving_ends_the_claim,
    );

    async fn an_admission_is_claimed_once_and_once_more_for_a_lost_answer(h: Harness) {
        let policy = policy();
        let first = h.visit("a", &policy).await;
        assert_eq!((first.state, first.immediate), (QueueState::Admitted, true));
        assert!(first.claimed_ms > 0);
        let again = h.visit("a", &policy).await;
        assert_eq!((again.state, again.claimed_ms), (QueueState::Admitted, first.claimed_ms), "the same session");
        for _ in 0..3 {
            let shared = h.visit("a", &policy).await;
            assert_eq!((shared.state, shared.claimed_ms), (QueueState::Claimed, 0), "{shared:?}");
        }
        assert_eq!(h.store.stats(ROOM, &policy).await.unwrap().active_sessions, 1, "one session all along");
    }

    async fn after_the_reclaim_window_the_admission_is_not_handed_out_again(h: Harness) {
        let policy = Policy { reclaim_ms: 100, ..slow() };
        assert!(h.visit("first", &policy).await.immediate);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        h.store.tick(ROOM, &policy, 0).await.unwrap();
        let late = h.store.visit(ROOM, &plain("first"), &policy).await.unwrap();
        assert_eq!(late.state, QueueState::Claimed, "{late:?}");
    }

    async fn leaving_ends_the_claim(h: Harness) {
        let policy = policy();
        h.visit("a", &policy).await;
        h.store.leave(ROOM, &Departure { visitor: "a", seq: 0, session: None }).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // the next admission slot
        let back = h.visit("a", &policy).await;
        assert_eq!((back.state, back.immediate), (QueueState::Admitted, true), "a new admission, not a re-claim");
    }
}

mod caps {
    //! `max_places_per_client`: places one client holds in line at once, counted in the
    //! store; a place leaving (admitted, dropped, left) counts its client down.

    use super::*;

    conformance!(
        a_client_holds_no_more_places_than_its_share,
        a_place_let_in_or_left_frees_the_clients_share,
        a_place_dropped_for_silence_frees_the_share_and_comes_back_counted,
        without_a_cap_nothing_is_counted,
    );

    fn capped(n: u32) -> Policy {
        Policy { max_places_per_client: n, ..slow() }
    }

    async fn a_client_holds_no_more_places_than_its_share(h: Harness) {
        let policy = capped(2);
        h.visit("first", &policy).await;
        assert_eq!(h.visit_from("a", "203.0.113.7", &policy).await.position, Some(1));
        assert_eq!(h.visit_from("b", "203.0.113.7", &policy).await.position, Some(2));
        let third = h.visit_from("c", "203.0.113.7", &policy).await;
        assert_eq!((third.capped, third.position, third.seq), (true, None, 0), "{third:?}");
        assert_eq!(h.visit_from("a", "203.0.113.7", &policy).await.position, Some(1), "a place held is kept");
        assert_eq!(h.visit_from("d", "198.51.100.1", &policy).await.position, Some(3), "another client");
        assert_eq!(queue_length(&h, &policy).await, 3);
    }

    async fn a_place_let_in_or_left_frees_the_clients_share(h: Harness) {
        let policy = Policy { admit_per_minute: 6_000, ..capped(1) };
        h.store.set_paused(ROOM, true).await.unwrap();
        let a = h.visit_from("a", "203.0.113.7", &policy).await;
        assert!(h.visit_from("b", "203.0.113.7", &policy).await.capped);
        h.store.leave(ROOM, &Departure { visitor: "a", seq: a.seq, session: None }).await.unwrap();
        assert_eq!(h.visit_from("b", "203.0.113.7", &policy).await.position, Some(1), "a left: b's turn to hold one");
        assert!(h.visit_from("c", "203.0.113.7", &policy).await.capped);
        h.store.set_paused(ROOM, false).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().admitted, 1, "b is let in");
        assert!(!h.visit_from("c", "203.0.113.7", &policy).await.capped, "b's place is used up");
    }

    async fn a_place_dropped_for_silence_frees_the_share_and_comes_back_counted(h: Harness) {
        let policy = Policy { abandon_ms: 200, ..capped(1) };
        h.visit("first", &policy).await;
        let a = h.visit_from("a", "203.0.113.7", &policy).await;
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert_eq!(h.store.tick(ROOM, &policy, 0).await.unwrap().abandoned, 1);
        assert_eq!(h.visit_from("b", "203.0.113.7", &policy).await.position, Some(1), "a's place was freed");
        // a comes back within the grace: the old place, counted again (not refused: it is
        // the client's own place, not a new one).
        let restore = Restore { epoch: a.epoch, seq: a.seq, seen_ms: a.now_ms };
        let back = h.visit_from_with_cookie("a", "203.0.113.7", Some(restore), &policy).await;
        assert!(back.rejoined && !back.capped, "{back:?}");
        h.leave("b").await;
        assert!(h.visit_from("c", "203.0.113.7", &policy).await.capped, "a's place counts again");
    }

    async fn without_a_cap_nothing_is_counted(h: Harness) {
        let policy = slow();
        h.visit("first", &policy).await;
        for visitor in ["a", "b", "c", "d"] {
            assert!(!h.visit_from(visitor, "203.0.113.7", &policy).await.capped);
        }
        assert_eq!(queue_length(&h, &policy).await, 4);
    }
}
