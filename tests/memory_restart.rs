//! The memory store across a gateway restart: its data is gone, but the visitors' signed
//! cookies and tokens are not. The line comes back in its order, shoppers are counted
//! again, and nobody walks in ahead while that happens.

mod support;

use anteroom::config::{ConfigBuilder, HumanDuration, Secret, TokenKey};
use std::time::Duration;
use support::origin::Origin;
use support::visitor::Visitor;
use support::Gateway;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn room(origin: &Origin) -> ConfigBuilder {
    Gateway::config(&origin.url())
        .tokens(|tokens| {
            tokens.keys =
                vec![TokenKey { kid: "k1".into(), secret: Some(Secret::new(SECRET)), private_key_file: None }];
        })
        .room("sale", &["/tickets"], |room| {
            room.admit_per_minute = 600;
            room.max_active_users = 1;
            // The recount after the restart lasts about 3 s.
            room.abandon_after = HumanDuration::secs(3);
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_line_comes_back_in_order_and_the_shopper_still_counts() {
    let origin = Origin::start().await;
    let before = Gateway::built(room(&origin)).await;
    let mut shopper = Visitor::new(before.addr);
    assert_eq!(shopper.get("/tickets/1").await.body_text(), "hello");
    let mut line = Vec::new();
    for _ in 0..3 {
        let mut v = Visitor::json(before.addr);
        assert_eq!(v.join("/tickets/1").await["state"], "waiting");
        line.push(v);
    }
    before.shutdown().await.expect("clean stop");

    let after = Gateway::built(room(&origin)).await;
    let mut shopper = shopper.moved_to(after.addr);
    let mut line: Vec<Visitor> = line.iter().map(|v| v.moved_to(after.addr)).collect();
    // The shopper's token predates the new store: proof that a line existed.
    assert_eq!(shopper.get("/tickets/2").await.body_text(), "hello", "token holders keep shopping");
    let mut newcomer = Visitor::json(after.addr);
    assert_eq!(newcomer.join("/tickets/1").await["state"], "waiting", "nobody walks into the emptied room");
    // They come back in reverse order. (Positions shown never go up, so the first back
    // keeps seeing 1: the order shows in who is let in.)
    for v in line.iter_mut().rev() {
        assert_eq!(v.status("sale").await["state"], "waiting");
    }
    // Counted again, the shopper still holds the room's one place: nobody goes in until
    // they are done; then the old line goes in, in its order, and the newcomer last.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(line[0].status("sale").await["state"], "waiting");
    assert_eq!(shopper.get("/tickets/checkout/revoke").await.status, 200);
    for i in 0..line.len() {
        let (head, behind) = line[i..].split_first_mut().unwrap();
        assert_eq!(head.wait_until_admitted("sale", Duration::from_secs(5)).await["state"], "admitted");
        for v in behind.iter_mut().chain(std::iter::once(&mut newcomer)) {
            assert_eq!(v.status("sale").await["state"], "waiting", "visitor {i} goes in first");
        }
        assert_eq!(head.get("/tickets/checkout/revoke").await.status, 200);
    }
    assert_eq!(newcomer.wait_until_admitted("sale", Duration::from_secs(5)).await["state"], "admitted");
}
