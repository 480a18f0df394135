//! The memory store's places per client (the `clients` and `owners` hashes of the Redis
//! scripts): how many places each client address holds in line, and whose place is whose,
//! so that a place leaving (admitted, dropped, left) counts its client down.

use std::collections::HashMap;

#[derive(Default)]
pub(super) struct ClientPlaces {
    held: HashMap<String, u32>,
    owners: HashMap<String, String>,
}

impl ClientPlaces {
    pub(super) fn held_by(&self, client: &str) -> u32 {
        self.held.get(client).copied().unwrap_or(0)
    }

    pub(super) fn hold(&mut self, visitor: &str, client: &str) {
        *self.held.entry(client.to_owned()).or_default() += 1;
        self.owners.insert(visitor.to_owned(), client.to_owned());
    }

    pub(super) fn release(&mut self, visitor: &str) {
        let Some(client) = self.owners.remove(visitor) else { return };
        if let Some(count) = self.held.get_mut(&client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held.remove(&client);
            }
        }
    }
}
