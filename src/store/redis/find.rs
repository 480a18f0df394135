//! An operator's search of a room in Redis: ZSCAN steps of the `find` script until every
//! set is walked.

use super::super::reply::{text, Rows};
use super::super::types::{Found, StoreFault, Whereabouts};
use super::{keyed, RedisStore};

/// Members of each set looked at per step (a few milliseconds of Redis's time).
const STEP: u32 = 2_000;

impl RedisStore {
    pub async fn find_visitors(&self, room: &str, prefix: &str) -> Result<Vec<Found>, StoreFault> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(StoreFault::Protocol(format!("find: {prefix:?} is not a visitor id prefix")));
        }
        let mut cursors = vec!["0".to_owned(); 4];
        let mut found = Vec::new();
        while cursors.iter().any(|c| c != "done") {
            let mut call = keyed(&self.inner.scripts.find, room);
            call.arg(prefix).arg(STEP);
            for cursor in &cursors {
                call.arg(cursor);
            }
            let rows = Rows::parse("find", self.inner.run(&call).await?)?;
            let mut next = Vec::new();
            for row in rows.rows() {
                let place = text(row.value("place")?).unwrap_or_default();
                let visitor = text(row.value("visitor")?).unwrap_or_default();
                let at = row.count("at")?;
                let whereabouts = match place.as_str() {
                    "next" => {
                        next.push(visitor);
                        continue;
                    }
                    "waiting" => Whereabouts::Waiting { position: row.count("position")?, seen_ms: at },
                    "admitted" => Whereabouts::Admitted { at_ms: at },
                    "active" => Whereabouts::Shopping { until_ms: at },
                    "dropped" => Whereabouts::Dropped { at_ms: at },
                    other => return Err(StoreFault::Protocol(format!("find: unknown place {other:?}"))),
                };
                // A cursor step may return a member twice; the walk reports it once.
                if !found.iter().any(|f: &Found| f.visitor == visitor && f.whereabouts == whereabouts) {
                    found.push(Found { visitor, whereabouts });
                }
            }
            if next.len() != cursors.len() {
                return Err(StoreFault::Protocol(format!("find: {} cursors for {} sets", next.len(), cursors.len())));
            }
            cursors = next;
        }
        Ok(found)
    }
}
