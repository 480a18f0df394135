//! A reload builds new rooms from the new config; what this instance had learned of the
//! rooms it keeps (by name) carries over, so that the new ones answer as the old would
//! have from the first request: paused stays paused, revoked sessions stay refused, the
//! ETA keeps its measured pace.

use super::{Room, WaitingRoom};
use std::sync::atomic::Ordering::Relaxed;

impl WaitingRoom {
    /// Takes over what `old` knows of the rooms both have, and its revocations.
    pub(crate) fn carry_over(&self, old: &WaitingRoom) {
        self.cache.inherit_revocations(&old.cache);
        for room in &self.rooms {
            if let Some(before) = old.room_by_name(&room.name) {
                room.carry_over(before);
            }
        }
    }
}

impl Room {
    fn carry_over(&self, old: &Room) {
        self.paused.store(old.paused.load(Relaxed), Relaxed);
        self.closed.store(old.closed.load(Relaxed), Relaxed);
        self.recounting.store(old.recounting.load(Relaxed), Relaxed);
        self.epoch.store(old.epoch.load(Relaxed), Relaxed);
        self.revocations_read_ms.store(old.revocations_read_ms.load(Relaxed), Relaxed);
        self.rate_bits.store(old.rate_bits.load(Relaxed), Relaxed);
        self.join_rate_bits.store(old.join_rate_bits.load(Relaxed), Relaxed);
        self.message.store(old.message.load_full());
        // The live overrides are what the store holds; the rate in force follows at the
        // first tick (the configured rate may have changed).
        self.admit_per_minute_override.store(old.admit_per_minute_override.load(Relaxed), Relaxed);
        self.max_active_users_override.store(old.max_active_users_override.load(Relaxed), Relaxed);
        if old.admit_per_minute_override.load(Relaxed) > 0 || self.control.adaptive {
            self.admit_per_minute.store(old.admit_per_minute.load(Relaxed), Relaxed);
        }
    }
}
