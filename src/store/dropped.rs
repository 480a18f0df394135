//! The memory store's places dropped for silence, kept for the rejoin grace (the
//! `dropped` sorted set of the Redis scripts): `visitor:seq` → when dropped (ms). Keyed by
//! the sequence too, so that only the cookie of that very place brings it back.

use super::zset::ZSet;

#[derive(Default)]
pub(super) struct Dropped {
    places: ZSet,
}

fn member(visitor: &str, seq: u64) -> String {
    format!("{visitor}:{seq}")
}

impl Dropped {
    pub(super) fn remember(&mut self, visitor: &str, seq: u64, now: u64) {
        self.places.add(&member(visitor, seq), now);
    }

    /// Takes the place back if it was dropped within `grace_ms`; a place asked for after
    /// the grace is forgotten.
    pub(super) fn take(&mut self, visitor: &str, seq: u64, now: u64, grace_ms: u64) -> bool {
        let member = member(visitor, seq);
        let Some(at) = self.places.score(&member) else { return false };
        self.places.remove(&member);
        at >= now.saturating_sub(grace_ms)
    }

    pub(super) fn forget(&mut self, visitor: &str, seq: u64) {
        self.places.remove(&member(visitor, seq));
    }

    /// Every dropped place's visitor, with when it was dropped.
    pub(super) fn visitors(&self) -> impl Iterator<Item = (&str, u64)> {
        self.places.members().map(|(member, at)| (member.rsplit_once(':').map_or(member, |(v, _)| v), at))
    }

    /// Forgets places dropped longer than `grace_ms` ago.
    pub(super) fn trim(&mut self, now: u64, grace_ms: u64) {
        for old in self.places.up_to(now.saturating_sub(grace_ms + 1), u64::MAX) {
            self.places.remove(&old);
        }
    }
}
