//! The proof-of-work challenge a room with `challenge = "proof-of-work"` asks of a visitor
//! before it gives them a place: find a decimal `NONCE` such that SHA-256 of
//! `prefix + NONCE` starts with `difficulty` zero bits.
//!
//! The prefix is `c1:{expires_ms}:{difficulty}:{mac}:`; the MAC (HMAC-SHA256, 128 bits)
//! covers the room, the visitor id, the expiry and the difficulty. So a solution is worth
//! one visitor in one room until the expiry, the difficulty cannot be lowered, and the
//! gateway keeps no state per challenge: checking costs one HMAC and one hash. The MAC is
//! also the solution's id, which the store records so that it buys one place only.
//! The visitor id stays out of the prefix (the page's script sees the prefix).

use crate::config::{MAX_DIFFICULTY, MIN_DIFFICULTY};
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::time::Duration;

/// How long a challenge may be solved: long enough for a slow phone at the highest
/// difficulty, short enough that solutions banked before a sale are soon worthless.
pub(crate) const CHALLENGE_TTL: Duration = Duration::from_secs(10 * 60);

/// A challenge still this fresh is handed out again rather than replaced, so that a reload
/// or a poll does not throw away the work a page has begun.
const REUSE_MIN_LEFT_MS: u64 = 2 * 60 * 1000;

/// `auto`: this many bits while the room takes up to [`AUTO_CALM_JOINS_PER_SEC`] new
/// places a second…
pub(crate) const AUTO_BASE_BITS: u8 = 12;
pub(crate) const AUTO_CALM_JOINS_PER_SEC: f64 = 10.0;
/// …one more bit (twice the work) for every doubling of the join rate, up to this.
pub(crate) const AUTO_MAX_BITS: u8 = 20;

/// Longest nonce accepted: a u64 in decimal.
const MAX_NONCE_DIGITS: usize = 20;

const VERSION: &str = "c1";

/// The challenge as the status object carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Challenge {
    pub algorithm: &'static str,
    pub prefix: String,
    pub difficulty: u8,
    pub expires_at: u64,
}

/// A solution that holds: its id (recorded by the store, so it is used once) and until
/// when the id must be remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proof {
    pub id: String,
    pub expires_ms: u64,
}

/// Why a solution was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a challenge of this gateway's shape, or a nonce that is not a short decimal.
    Malformed,
    /// The MAC does not hold: made up, altered, or issued to another visitor or room.
    Forged,
    Expired,
    /// The hash does not start with enough zero bits.
    Wrong,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Forged => "forged",
            Refusal::Expired => "expired",
            Refusal::Wrong => "wrong",
        }
    }
}

/// Issues and checks challenges with secrets derived from the token keys (the first
/// issues; all check, so a key rotation does not void challenges being solved).
#[derive(Debug)]
pub(crate) struct ChallengeSigner {
    keys: Vec<hmac::Key>,
}

impl ChallengeSigner {
    pub(crate) fn new(secrets: &[[u8; 32]]) -> Self {
        // A key of its own (not the queue cookie's): a challenge's MAC can never pass as a
        // cookie's, nor the other way round.
        let keys = secrets
            .iter()
            .map(|secret| {
                let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
                hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&derive, b"anteroom proof-of-work").as_ref())
            })
            .collect();
        Self { keys }
    }

    fn mac(key: &hmac::Key, room: &str, visitor: &str, expires_ms: u64, difficulty: u8) -> String {
        let mut context = hmac::Context::with_key(key);
        for part in [room, visitor, &expires_ms.to_string(), &difficulty.to_string()] {
            context.update(part.as_bytes());
            context.update(b"|");
        }
        URL_SAFE_NO_PAD.encode(&context.sign().as_ref()[..16])
    }

    /// A new challenge for `visitor` in `room`.
    pub(crate) fn issue(&self, room: &str, visitor: &str, difficulty: u8, now_ms: u64) -> Challenge {
        let expires_ms = now_ms + CHALLENGE_TTL.as_millis() as u64;
        let mac = self.keys.first().map(|k| Self::mac(k, room, visitor, expires_ms, difficulty)).unwrap_or_default();
        Challenge {
            algorithm: "sha256",
            prefix: format!("{VERSION}:{expires_ms}:{difficulty}:{mac}:"),
            difficulty,
            expires_at: expires_ms,
        }
    }

    /// The challenge `prefix` (from the visitor's challenge cookie), if it is this
    /// visitor's, in this room, and fresh enough to go on solving.
    pub(crate) fn reusable(&self, room: &str, visitor: &str, prefix: &str, now_ms: u64) -> Option<Challenge> {
        let parsed = self.genuine(room, visitor, prefix).ok()?;
        (parsed.expires_ms >= now_ms + REUSE_MIN_LEFT_MS).then(|| Challenge {
            algorithm: "sha256",
            prefix: prefix.to_owned(),
            difficulty: parsed.difficulty,
            expires_at: parsed.expires_ms,
        })
    }

    /// Checks a solution: the prefix is this gateway's, for this visitor and room, not
    /// expired, and `prefix + nonce` hashes to enough leading zero bits.
    pub(crate) fn check(
        &self,
        room: &str,
        visitor: &str,
        prefix: &str,
        nonce: &str,
        now_ms: u64,
    ) -> Result<Proof, Refusal> {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_DIGITS || !nonce.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::Malformed);
        }
        let parsed = self.genuine(room, visitor, prefix)?;
        if parsed.expires_ms < now_ms {
            return Err(Refusal::Expired);
        }
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(prefix.as_bytes());
        hash.update(nonce.as_bytes());
        if leading_zero_bits(hash.finish().as_ref()) < u32::from(parsed.difficulty) {
            return Err(Refusal::Wrong);
        }
        Ok(Proof { id: parsed.mac.to_owned(), expires_ms: parsed.expires_ms })
    }

    fn genuine<'p>(&self, room: &str, visitor: &str, prefix: &'p str) -> Result<Parsed<'p>, Refusal> {
        let parsed = Parsed::of(prefix).ok_or(Refusal::Malformed)?;
        let holds = self.keys.iter().any(|key| {
            let expected = Self::mac(key, room, visitor, parsed.expires_ms, parsed.difficulty);
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), parsed.mac.as_bytes()).is_ok()
        });
        if holds {
            Ok(parsed)
        } else {
            Err(Refusal::Forged)
        }
    }
}

/// A prefix taken apart (not yet known to be genuine).
struct Parsed<'p> {
    expires_ms: u64,
    difficulty: u8,
    mac: &'p str,
}

impl<'p> Parsed<'p> {
    fn of(prefix: &'p str) -> Option<Self> {
        let mut parts = prefix.strip_suffix(':')?.split(':');
        if parts.next()? != VERSION {
            return None;
        }
        let expires_ms = parts.next()?.parse().ok()?;
        let difficulty = parts.next()?.parse().ok().filter(|d| (MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(d))?;
        let mac = parts.next()?;
        (mac.len() == 22 && parts.next().is_none()).then_some(Self { expires_ms, difficulty, mac })
    }
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// The `auto` difficulty for a room taking `joins_per_second` new places: a calm sale
/// costs a phone a fraction of a second; every doubling of the rate doubles each
/// place's price, up to [`AUTO_MAX_BITS`].
pub(crate) fn auto_difficulty(joins_per_second: f64) -> u8 {
    // NaN (no measure yet) is calm too.
    if joins_per_second.is_nan() || joins_per_second <= AUTO_CALM_JOINS_PER_SEC {
        return AUTO_BASE_BITS;
    }
    let doublings = (joins_per_second / AUTO_CALM_JOINS_PER_SEC).log2().floor() as u8;
    AUTO_BASE_BITS.saturating_add(doublings).min(AUTO_MAX_BITS)
}

/// Solves a challenge by brute force (tests, the rehearsal's bots and the benchmark):
/// the first nonce from 0 that works.
pub fn solve(prefix: &str, difficulty: u8) -> u64 {
    let mut base = digest::Context::new(&digest::SHA256);
    base.update(prefix.as_bytes());
    let mut text = itoa_buffer();
    (0..)
        .find(|nonce: &u64| {
            let mut hash = base.clone();
            hash.update(format_nonce(&mut text, *nonce));
            leading_zero_bits(hash.finish().as_ref()) >= u32::from(difficulty)
        })
        .unwrap_or(0)
}

fn itoa_buffer() -> [u8; MAX_NONCE_DIGITS] {
    [0; MAX_NONCE_DIGITS]
}

/// `nonce` in decimal, in `buffer` (no allocation in the solver's loop).
fn format_nonce(buffer: &mut [u8; MAX_NONCE_DIGITS], mut nonce: u64) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (nonce % 10) as u8;
        nonce /= 10;
        if nonce == 0 {
            return &buffer[at..];
        }
    }
}

#[cfg(test)]
mod tests;
