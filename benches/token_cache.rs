//! The buyer's hot path, token checks: 100,000 distinct sessions, each request looking its
//! token up in the verified-token cache and verifying (then remembering) it on a miss,
//! from two threads at once. Compares, in the same run:
//!
//! - before: one process-wide `Mutex<HashMap>` of 16,384 entries, cleared when full (the
//!   earlier design, rebuilt here for the comparison);
//! - after: `room::cache::VerifiedTokens` (quick_cache, sharded, evicting one entry at a
//!   time, with revocations kept apart).
//!
//! Run: `cargo bench --bench token_cache` (optional args: SESSIONS SECONDS).

use anteroom::token::{generate_key, Claims, KeyMaterial, KeySpec, TokenAlgorithm, TokenKeys};
use anteroom::VerifiedTokens;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 2;
const OLD_CAPACITY: usize = 16_384;

trait Cache: Send + Sync {
    /// Whether the token was already known; a miss remembers it.
    fn check(&self, token: &str, keys: &TokenKeys, now: u64) -> bool;
}

/// A verified token and until when it is trusted.
type Entry = (Arc<Claims>, u64);

/// The earlier design: one lock for everyone, and everything forgotten when full.
#[derive(Default)]
struct MutexMap(Mutex<HashMap<Box<str>, Entry>>);

impl Cache for MutexMap {
    fn check(&self, token: &str, keys: &TokenKeys, now: u64) -> bool {
        if let Some((_, until)) = self.0.lock().unwrap().get(token) {
            if now < *until {
                return true;
            }
        }
        let claims = Arc::new(keys.verify(token, "sale").expect("valid"));
        let mut map = self.0.lock().unwrap();
        if map.len() >= OLD_CAPACITY {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= OLD_CAPACITY {
                map.clear();
            }
        }
        let until = claims.exp;
        map.insert(token.into(), (claims, until));
        false
    }
}

impl Cache for VerifiedTokens {
    fn check(&self, token: &str, keys: &TokenKeys, now: u64) -> bool {
        if let Some(verified) = self.get(token, now) {
            return !self.is_revoked(&verified.claims.sid, now);
        }
        let claims = keys.verify(token, "sale").expect("valid");
        let until = claims.exp;
        self.put(token, claims, until);
        false
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let sessions: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("{sessions} distinct sessions, {THREADS} threads, {seconds} s per run");
    for (algorithm, name) in [(TokenAlgorithm::Hs256, "HS256"), (TokenAlgorithm::EdDsa, "EdDSA")] {
        let key = generate_key(algorithm).expect("key");
        let material = match algorithm {
            TokenAlgorithm::Hs256 => KeyMaterial::Secret(key.trim().as_bytes().to_vec()),
            _ => KeyMaterial::PrivateKeyPem(key.into_bytes()),
        };
        let keys = Arc::new(
            TokenKeys::new(algorithm, &[KeySpec { kid: "k".into(), material }], "anteroom", "anteroom", 5)
                .expect("keys"),
        );
        let now = anteroom::time::unix_secs();
        let tokens: Arc<Vec<String>> = Arc::new(
            (0..sessions).map(|i| keys.issue(&format!("v{i}"), "sale", &format!("v{i}.1"), now, 900)).collect(),
        );
        let before = run(Arc::new(MutexMap::default()), &keys, &tokens, seconds);
        let after = run(Arc::new(VerifiedTokens::default()), &keys, &tokens, seconds);
        println!(
            "{name}: before {:>9.0} checks/s ({:>5.1} % hits) | after {:>9.0} checks/s ({:>5.1} % hits) | {:.1}x",
            before.0,
            before.1 * 100.0,
            after.0,
            after.1 * 100.0,
            after.0 / before.0
        );
    }
}

/// Checks random tokens from `THREADS` threads for `seconds`; returns checks/s and the
/// hit rate, after one warm-up pass over every token.
fn run(cache: Arc<dyn Cache>, keys: &Arc<TokenKeys>, tokens: &Arc<Vec<String>>, seconds: u64) -> (f64, f64) {
    let now = anteroom::time::unix_secs();
    for token in tokens.iter() {
        cache.check(token, keys, now);
    }
    let (checks, hits) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, keys, tokens) = (cache.clone(), keys.clone(), tokens.clone());
            let (checks, hits) = (checks.clone(), hits.clone());
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ t as u64;
                let (mut n, mut h) = (0u64, 0u64);
                while started.elapsed() < Duration::from_secs(seconds) {
                    for _ in 0..256 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let token = &tokens[(seed % tokens.len() as u64) as usize];
                        h += u64::from(cache.check(token, &keys, now));
                        n += 1;
                    }
                }
                checks.fetch_add(n, Relaxed);
                hits.fetch_add(h, Relaxed);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (n, h) = (checks.load(Relaxed) as f64, hits.load(Relaxed) as f64);
    (n / elapsed, h / n)
}
