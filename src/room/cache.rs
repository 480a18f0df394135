//! A bounded cache of verified tokens, so a busy buyer's token is checked once rather than
//! on every request (EdDSA and ES256 cost 50–80 µs per verification).
//!
//! An entry is trusted until the token's own `exp` (plus leeway); a revoked token is kept
//! as revoked so this instance refuses it at once. When full, expired entries go first,
//! then everything: a miss only costs one verification.

use crate::token::Claims;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const CAPACITY: usize = 16_384;

#[derive(Clone)]
pub enum Cached {
    Valid(Arc<Claims>),
    Revoked,
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, (Cached, u64)>>,
}

impl VerifiedTokens {
    /// The cached verdict on `token`, unless it has expired (`now`, `exp`: Unix seconds).
    pub fn get(&self, token: &str, now: u64) -> Option<Cached> {
        let entries = self.entries.lock().ok()?;
        let (verdict, until) = entries.get(token)?;
        (now < *until).then(|| verdict.clone())
    }

    /// Remembers a verdict until `until` (Unix seconds).
    pub fn put(&self, token: &str, verdict: Cached, until: u64, now: u64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.into(), (verdict, until));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Arc<Claims> {
        Arc::new(Claims {
            iss: "a".into(),
            aud: "a".into(),
            sub: "v".into(),
            room: "r".into(),
            sid: "v".into(),
            iat: 0,
            nbf: 0,
            exp: 100,
        })
    }

    #[test]
    fn entries_expire_with_their_token_and_the_cache_stays_bounded() {
        let cache = VerifiedTokens::default();
        cache.put("t", Cached::Valid(claims()), 100, 0);
        assert!(matches!(cache.get("t", 99), Some(Cached::Valid(_))));
        assert!(cache.get("t", 100).is_none());
        for i in 0..CAPACITY + 10 {
            cache.put(&format!("token-{i}"), Cached::Revoked, 200, 150);
        }
        assert!(cache.len() <= CAPACITY);
    }
}
