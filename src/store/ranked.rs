//! An ordered set with fast rank: the memory store's line.
//!
//! Positions are asked on every poll, so rank must not walk the line. Members are kept
//! sorted by (score, member) in chunks of at most `2 * CHUNK`; the rank of a member is
//! the sizes of the chunks before its own plus its index inside it. With joins arriving in
//! score order, inserts land at the end; removals shift one chunk only.

use std::collections::HashMap;
use std::sync::Arc;

const CHUNK: usize = 256;

type Entry = (u64, Arc<str>);

#[derive(Default)]
pub(super) struct RankedSet {
    chunks: Vec<Vec<Entry>>,
    scores: HashMap<Arc<str>, u64>,
}

impl RankedSet {
    pub(super) fn len(&self) -> u64 {
        self.scores.len() as u64
    }

    pub(super) fn score(&self, member: &str) -> Option<u64> {
        self.scores.get(member).copied()
    }

    /// The chunk that holds, or would hold, `entry`.
    fn chunk_of(&self, score: u64, member: &str) -> usize {
        // The first chunk whose last entry is not below the entry.
        let i = self.chunks.partition_point(|c| c.last().is_some_and(|(s, m)| (*s, &**m) < (score, member)));
        i.min(self.chunks.len().saturating_sub(1))
    }

    pub(super) fn add(&mut self, member: &str, score: u64) {
        self.remove(member);
        let member: Arc<str> = member.into();
        self.scores.insert(member.clone(), score);
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let i = self.chunk_of(score, &member);
        let chunk = &mut self.chunks[i];
        let at = chunk.partition_point(|(s, m)| (*s, &**m) < (score, &*member));
        chunk.insert(at, (score, member));
        if chunk.len() > 2 * CHUNK {
            let tail = chunk.split_off(CHUNK);
            self.chunks.insert(i + 1, tail);
        }
    }

    pub(super) fn remove(&mut self, member: &str) -> bool {
        let Some(score) = self.scores.remove(member) else { return false };
        let i = self.chunk_of(score, member);
        let chunk = &mut self.chunks[i];
        if let Ok(at) = chunk.binary_search_by(|(s, m)| (*s, &**m).cmp(&(score, member))) {
            chunk.remove(at);
        }
        if chunk.is_empty() {
            self.chunks.remove(i);
        }
        true
    }

    /// 0-based rank.
    pub(super) fn rank(&self, member: &str) -> Option<u64> {
        let score = self.score(member)?;
        let i = self.chunk_of(score, member);
        let before: usize = self.chunks[..i].iter().map(Vec::len).sum();
        let within = self.chunks[i].partition_point(|(s, m)| (*s, &**m) < (score, member));
        Some((before + within) as u64)
    }

    /// Every member with its score, in no particular order.
    pub(super) fn members(&self) -> impl Iterator<Item = (&str, u64)> {
        self.scores.iter().map(|(m, s)| (&**m, *s))
    }

    /// The first `n` members, lowest score first.
    pub(super) fn first(&self, n: u64) -> Vec<String> {
        self.chunks.iter().flatten().take(n as usize).map(|(_, m)| m.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_scores_through_inserts_and_removals() {
        let mut set = RankedSet::default();
        // Out of order, and enough to split chunks several times.
        let n = 5 * CHUNK as u64;
        for i in (0..n).rev() {
            set.add(&format!("m{i}"), i * 10);
        }
        assert_eq!(set.len(), n);
        assert_eq!(set.rank("m0"), Some(0));
        assert_eq!(set.rank(&format!("m{}", n - 1)), Some(n - 1));
        for i in (0..n).step_by(3) {
            assert!(set.remove(&format!("m{i}")));
        }
        assert!(!set.remove("m0"));
        let mut expected = 0;
        for i in 0..n {
            if i % 3 != 0 {
                assert_eq!(set.rank(&format!("m{i}")), Some(expected), "m{i}");
                expected += 1;
            }
        }
        set.add("m1", 5_000_000); // re-added with a new score: to the back
        assert_eq!(set.rank("m1"), Some(set.len() - 1));
        assert_eq!(set.first(2), ["m2", "m4"]);
    }
}
