//! The memory store's sorted set, as Redis's: member → score, ordered by (score, member).

use std::collections::{BTreeSet, HashMap};

/// A sorted set: member → score, and the same ordered by (score, member).
#[derive(Default)]
pub(super) struct ZSet {
    scores: HashMap<String, u64>,
    order: BTreeSet<(u64, String)>,
}

impl ZSet {
    pub(super) fn add(&mut self, member: &str, score: u64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(old, member.to_owned()));
        }
        self.order.insert((score, member.to_owned()));
    }

    /// Like `ZADD GT`: adds, or raises the score, never lowers it.
    pub(super) fn raise(&mut self, member: &str, score: u64) {
        if self.score(member).is_none_or(|old| score > old) {
            self.add(member, score);
        }
    }

    pub(super) fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => self.order.remove(&(score, member.to_owned())),
            None => false,
        }
    }

    pub(super) fn score(&self, member: &str) -> Option<u64> {
        self.scores.get(member).copied()
    }

    pub(super) fn len(&self) -> u64 {
        self.scores.len() as u64
    }

    /// Every member with its score, in no particular order.
    pub(super) fn members(&self) -> impl Iterator<Item = (&str, u64)> {
        self.scores.iter().map(|(m, s)| (m.as_str(), *s))
    }

    /// Members with score ≤ max, lowest first, at most `limit`.
    pub(super) fn up_to(&self, max: u64, limit: u64) -> Vec<String> {
        self.order.iter().take_while(|(s, _)| *s <= max).take(limit as usize).map(|(_, m)| m.clone()).collect()
    }

    /// Members with score ≥ min, lowest first, at most `limit`, with their scores.
    pub(super) fn from(&self, min: u64, limit: u64) -> Vec<(String, u64)> {
        self.order.range((min, String::new())..).take(limit as usize).map(|(s, m)| (m.clone(), *s)).collect()
    }
}
