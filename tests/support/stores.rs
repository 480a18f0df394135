//! The store suites' harness: each test runs against the memory store and against a real
//! `redis-server` started for it.

use super::redis::RedisServer;
use anteroom::store::{
    Departure, Joining, MemoryStore, Policy, RedisStore, Remembered, Renewal, Restore, Standing, Store,
};

pub struct Harness {
    pub store: std::sync::Arc<Store>,
    redis: Option<RedisServer>,
}

impl Harness {
    pub fn memory() -> Self {
        Self { store: Store::Memory(MemoryStore::default()).into(), redis: None }
    }

    pub fn redis() -> Self {
        let server = RedisServer::start();
        let store = Store::Redis(Box::new(RedisStore::connect(&server.url(), &[], None).unwrap()));
        Self { store: store.into(), redis: Some(server) }
    }

    /// The Redis server behind the store (none for the memory store), to look inside.
    pub fn redis_server(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// The store loses everything: a Redis FLUSHALL, a memory store's process restart.
    pub fn wipe(&mut self) {
        match &self.redis {
            Some(server) => server.flushall(),
            None => self.store = Store::Memory(MemoryStore::default()).into(),
        }
    }

    pub async fn visit(&self, visitor: &str, policy: &Policy) -> Standing {
        self.store.visit(ROOM, &plain(visitor), policy).await.unwrap()
    }

    /// A visit with the queue cookie of the place `before` (same visitor).
    pub async fn visit_with_cookie(&self, visitor: &str, before: &Standing, policy: &Policy) -> Standing {
        let restore = Restore { epoch: before.epoch, seq: before.seq, seen_ms: before.now_ms };
        self.visit_as(visitor, Some(restore), Joining::Place, policy).await
    }

    /// A visit that may take what `joining` allows.
    pub async fn visit_as(
        &self,
        visitor: &str,
        restore: Option<Restore>,
        joining: Joining<'_>,
        policy: &Policy,
    ) -> Standing {
        let visit = anteroom::store::Visit { visitor, restore, prequeue_score: 0, joining, client: None };
        self.store.visit(ROOM, &visit, policy).await.unwrap()
    }

    /// A visit taking a place from the client `client` (as the room counts clients).
    pub async fn visit_from(&self, visitor: &str, client: &str, policy: &Policy) -> Standing {
        self.visit_from_with_cookie(visitor, client, None, policy).await
    }

    /// As `visit_from`, with the queue cookie's place.
    pub async fn visit_from_with_cookie(
        &self,
        visitor: &str,
        client: &str,
        restore: Option<Restore>,
        policy: &Policy,
    ) -> Standing {
        let visit = anteroom::store::Visit {
            visitor,
            restore,
            prequeue_score: 0,
            joining: Joining::Place,
            client: Some(client),
        };
        self.store.visit(ROOM, &visit, policy).await.unwrap()
    }

    /// The visitor leaves, with no cookie naming a place and no session.
    pub async fn leave(&self, visitor: &str) {
        self.store.leave(ROOM, &Departure { visitor, seq: 0, session: None }).await.unwrap();
    }
}

pub const ROOM: &str = "sale";

pub fn policy() -> Policy {
    Policy {
        admit_per_minute: 6_000,
        max_active_users: 1_000,
        session_ms: 60_000,
        abandon_ms: 60_000,
        claim_ms: 60_000,
        rejoin_ms: 60_000,
        reclaim_ms: anteroom::store::RECLAIM_MS,
        max_places_per_client: 0,
        opens_at_ms: None,
        recount_ms: 500,
        adaptive_start: None,
        remembered: Remembered::default(),
    }
}

/// A room that admits one visitor a minute: the first gets in, the rest queue.
pub fn slow() -> Policy {
    Policy { admit_per_minute: 1, ..policy() }
}

pub fn plain(visitor: &str) -> anteroom::store::Visit<'_> {
    anteroom::store::Visit { visitor, restore: None, prequeue_score: 0, joining: Joining::Place, client: None }
}

/// A renewal until `expires_at_ms` of a token issued at `issued_at_ms` (unix ms), told to
/// the store as durations from now.
pub fn renewal(session: &str, expires_at_ms: u64, issued_at_ms: u64) -> Renewal<'_> {
    let now = anteroom::time::unix_ms();
    Renewal { session, ttl_ms: expires_at_ms.saturating_sub(now), age_ms: now.saturating_sub(issued_at_ms) }
}

pub fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("visitor-{i:04}")).collect()
}

/// One test per store for each name: `mod memory { … }` and `mod redis { … }`.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(crate::support::stores::Harness::memory()).await } )*
        }
        mod redis {
            $( #[tokio::test] async fn $name() { super::$name(crate::support::stores::Harness::redis()).await } )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use conformance;
