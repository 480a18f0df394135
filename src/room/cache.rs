//! What this instance remembers about tokens: verified tokens, so a busy buyer's token is
//! checked once rather than on every request (EdDSA and ES256 cost 50–80 µs per
//! verification), and revoked sessions, so that a revoked token is refused at once.
//!
//! The two are kept apart on purpose. Verified tokens are a cache: bounded, concurrent
//! (sharded, no process-wide lock on the buyer's hot path), evicting the least useful
//! entry when full — a miss costs one verification and one store check. Revocations are
//! not a cache: they are never evicted for room, only when the revoked session's last
//! token has expired, because forgetting one would let that token back in.

use crate::token::Claims;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Verified tokens kept at most; beyond it the cache evicts (it never clears at once).
pub(crate) const CAPACITY: usize = 200_000;

/// A verified token.
#[derive(Debug)]
pub struct Verified {
    pub claims: Claims,
    /// Unix seconds: the token's expiry plus leeway.
    pub until: u64,
    /// The store epoch in which this instance last made sure the session is counted (0:
    /// not yet), so that after the store lost its data the session is counted again.
    counted_in_epoch: AtomicU64,
}

impl Verified {
    pub fn counted_in(&self, epoch: u64) -> bool {
        self.counted_in_epoch.load(Relaxed) == epoch
    }

    pub fn mark_counted(&self, epoch: u64) {
        self.counted_in_epoch.store(epoch, Relaxed);
    }
}

#[derive(Debug)]
pub struct VerifiedTokens {
    tokens: quick_cache::sync::Cache<Box<str>, Arc<Verified>>,
    /// Session id → unix seconds until which its tokens are refused.
    revoked: DashMap<Box<str>, u64>,
    /// How many entries `revoked` holds: lets the hot path skip the map while it is empty.
    revoked_len: AtomicUsize,
    /// When expired revocations were last swept out (unix seconds).
    swept_at: AtomicU64,
}

/// Expired revocations are swept out at most this often (seconds).
const SWEEP_EVERY: u64 = 10;

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl VerifiedTokens {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            tokens: quick_cache::sync::Cache::new(capacity),
            revoked: DashMap::new(),
            revoked_len: AtomicUsize::new(0),
            swept_at: AtomicU64::new(0),
        }
    }

    /// The verified token, unless it has expired (`now`: unix seconds).
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Verified>> {
        self.tokens.get(token).filter(|verified| now < verified.until)
    }

    /// Remembers a verified token until `until` (unix seconds).
    pub fn put(&self, token: &str, claims: Claims, until: u64) -> Arc<Verified> {
        let verified = Arc::new(Verified { claims, until, counted_in_epoch: AtomicU64::new(0) });
        self.tokens.insert(token.into(), verified.clone());
        verified
    }

    /// Refuses every token of `session` until `until` (unix seconds).
    pub fn revoke(&self, session: &str, until: u64) {
        let previous = self.revoked.insert(session.into(), until);
        if previous.is_none() {
            self.revoked_len.fetch_add(1, Relaxed);
        }
    }

    /// Takes on another cache's revocations (a reload's new rooms refuse what the old
    /// ones refused). Verified tokens are not taken: the keys may have changed.
    pub fn inherit_revocations(&self, from: &VerifiedTokens) {
        for entry in &from.revoked {
            self.revoke(entry.key(), *entry.value());
        }
    }

    pub fn is_revoked(&self, session: &str, now: u64) -> bool {
        self.revoked_len.load(Relaxed) > 0 && self.revoked.get(session).is_some_and(|until| now < *until)
    }

    /// Forgets revocations whose tokens have all expired (at most every few seconds).
    pub fn sweep(&self, now: u64) {
        let last = self.swept_at.load(Relaxed);
        if now < last + SWEEP_EVERY || self.swept_at.compare_exchange(last, now, Relaxed, Relaxed).is_err() {
            return;
        }
        self.revoked.retain(|_, until| {
            let keep = now < *until;
            if !keep {
                self.revoked_len.fetch_sub(1, Relaxed);
            }
            keep
        });
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sid: &str) -> Claims {
        Claims {
            iss: "a".into(),
            aud: "a".into(),
            sub: sid.into(),
            room: "r".into(),
            sid: sid.into(),
            iat: 0,
            nbf: 0,
            exp: 100,
        }
    }

    #[test]
    fn entries_expire_with_their_token_and_the_cache_stays_bounded() {
        let cache = VerifiedTokens::with_capacity(1_000);
        cache.put("t", claims("s"), 100);
        assert!(cache.get("t", 99).is_some());
        assert!(cache.get("t", 100).is_none());
        for i in 0..5_000 {
            cache.put(&format!("token-{i}"), claims("x"), 200);
        }
        assert!(cache.len() <= 1_100, "bounded: {}", cache.len());
        assert!(cache.len() >= 500, "evicts some, never clears everything: {}", cache.len());
    }

    #[test]
    fn a_revocation_is_never_forgotten_for_room_only_when_it_has_expired() {
        let cache = VerifiedTokens::with_capacity(1_000);
        cache.revoke("gone", 500);
        for i in 0..20_000 {
            cache.put(&format!("token-{i}"), claims(&format!("s{i}")), 1_000);
        }
        assert!(cache.is_revoked("gone", 10), "still refused after the cache filled many times over");
        assert!(!cache.is_revoked("s1", 10));
        cache.sweep(499);
        assert!(cache.is_revoked("gone", 499));
        cache.sweep(505);
        assert!(cache.is_revoked("gone", 499), "swept at most every few seconds");
        cache.sweep(510);
        assert!(!cache.is_revoked("gone", 510));
        assert_eq!(cache.revoked_len.load(Relaxed), 0);
    }
}
