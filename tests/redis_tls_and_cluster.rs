//! The Redis store over TLS (`rediss://` with a private CA) and on a Redis Cluster (every
//! key of a room under one hash tag, so each room's scripts run on one node).

mod support;

use anteroom::config::{Backend, ConfigBuilder, StoreConfig};
use support::origin::Origin;
use support::redis::{RedisCluster, RedisServer};
use support::tls::TestPki;
use support::visitor::Visitor;
use support::Gateway;

/// Rooms of these names, each on `/NAME`, one admission a minute, their store set by `set`.
fn rooms(origin: &Origin, names: &[&str], set: impl FnOnce(&mut StoreConfig)) -> ConfigBuilder {
    // One instance: its random key is the only one.
    let config = Gateway::config(&origin.url()).tokens(|tokens| tokens.allow_random_keys = true).store(|store| {
        store.backend = Backend::Redis;
        set(store);
    });
    names
        .iter()
        .fold(config, |config, name| config.room(name, &[&format!("/{name}")], |room| room.admit_per_minute = 1))
}

/// The first visitor walks in; the second queues. Returns the second's status.
async fn busy_room(gw: &Gateway, room: &str) -> serde_json::Value {
    let mut first = Visitor::new(gw.addr);
    assert_eq!(first.get(&format!("/{room}/1")).await.body_text(), "hello", "{room}: a quiet room admits");
    let mut second = Visitor::json(gw.addr);
    second.get(&format!("/{room}/1")).await;
    serde_json::from_slice(&second.get(&format!("/{room}/1")).await.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_speaks_tls_to_redis_with_a_private_ca() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let redis = RedisServer::start_tls(&pki.cert_pem, &pki.key_pem);
    let origin = Origin::start().await;
    let config = rooms(&origin, &["sale"], |store| {
        store.redis_url = format!("rediss://localhost:{}/", redis.tls_port.unwrap());
        store.redis_ca_file = Some(pki.ca_pem.clone());
    });
    let gw = Gateway::built(config).await;
    let status = busy_room(&gw, "sale").await;
    assert_eq!((status["state"].as_str(), status["position"].as_u64()), (Some("waiting"), Some(1)));
    assert_eq!(redis.cli(&["ZCARD", "anteroom:{sale}:waiting"]), "1", "the place is in Redis, written over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_with_an_untrusted_certificate_is_a_store_failure_not_a_hang() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = TestPki::new();
    let redis = RedisServer::start_tls(&pki.cert_pem, &pki.key_pem);
    let origin = Origin::start().await;
    let config =
        rooms(&origin, &["sale"], |store| store.redis_url = format!("rediss://localhost:{}/", redis.tls_port.unwrap()));
    let gw = Gateway::built(config).await;
    let answer = Visitor::json(gw.addr).get("/sale/1").await;
    let status: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(status["state"], "paused", "on_failure = closed");
    assert_eq!(origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_work_on_a_redis_cluster_each_on_the_node_of_its_hash_tag() {
    let cluster = RedisCluster::start(3);
    let origin = Origin::start().await;
    let names = ["sale", "vip", "late"];
    let gw = Gateway::built(rooms(&origin, &names, |store| store.redis_cluster = cluster.urls())).await;
    for room in names {
        let status = busy_room(&gw, room).await;
        assert_eq!(status["position"].as_u64(), Some(1), "{room}");
        let key = format!("anteroom:{{{room}}}:waiting");
        assert_eq!(cluster.node_of(&key).cli(&["ZCARD", &key]), "1", "{room}");
    }
    let used: std::collections::HashSet<u16> =
        names.iter().map(|r| cluster.node_of(&format!("anteroom:{{{r}}}:state")).port).collect();
    assert!(used.len() > 1, "the rooms should spread over the nodes");
}
