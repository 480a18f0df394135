//! An operator's search of the memory store: every visitor whose id starts with a prefix.

use super::super::types::{Found, StoreFault, Whereabouts};
use super::MemoryStore;

impl MemoryStore {
    pub async fn find_visitors(&self, room: &str, prefix: &str) -> Result<Vec<Found>, StoreFault> {
        self.with_room(room, |r, _, _| {
            let found = |visitor: &str, whereabouts| Found { visitor: visitor.to_owned(), whereabouts };
            let mut all = Vec::new();
            for (v, _) in r.waiting.members().filter(|(v, _)| v.starts_with(prefix)) {
                let position = r.waiting.rank(v).unwrap_or(0) + 1;
                let seen_ms = r.seen.score(v).unwrap_or(0);
                all.push(found(v, Whereabouts::Waiting { position, seen_ms }));
            }
            for (v, at_ms) in r.admitted.members().filter(|(v, _)| v.starts_with(prefix)) {
                all.push(found(v, Whereabouts::Admitted { at_ms }));
            }
            for (v, until_ms) in r.active.members().filter(|(v, _)| v.starts_with(prefix)) {
                all.push(found(v, Whereabouts::Shopping { until_ms }));
            }
            for (v, at_ms) in r.dropped.visitors().filter(|(v, _)| v.starts_with(prefix)) {
                all.push(found(v, Whereabouts::Dropped { at_ms }));
            }
            all
        })
    }
}
