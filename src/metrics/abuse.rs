//! The per-room counters of the bot defences: challenges by what became of them, and
//! places refused by why.

use super::{header, Metrics, RoomMetrics};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What became of a proof-of-work challenge (`anteroom_challenges_total{result}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeResult {
    /// A new challenge handed out (one handed out again is not counted).
    Issued,
    /// A solution that bought a place.
    Solved,
    /// A solution refused: wrong, malformed, forged, or for another visitor or room.
    Failed,
    Expired,
    /// A solution that had bought a place before.
    Replayed,
}

impl ChallengeResult {
    pub const ALL: [ChallengeResult; 5] = [
        ChallengeResult::Issued,
        ChallengeResult::Solved,
        ChallengeResult::Failed,
        ChallengeResult::Expired,
        ChallengeResult::Replayed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ChallengeResult::Issued => "issued",
            ChallengeResult::Solved => "solved",
            ChallengeResult::Failed => "failed",
            ChallengeResult::Expired => "expired",
            ChallengeResult::Replayed => "replayed",
        }
    }
}

/// Why a visitor got no place (`anteroom_places_refused_total{reason}`, and the status
/// object's `refused_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceRefusal {
    /// Their client (address) holds `max_places_per_client` already.
    TooManyPlaces,
    /// The room takes enqueue tokens, and none came.
    EnqueueTokenMissing,
    /// The enqueue token is forged, expired, for another room or signed with another key.
    EnqueueTokenInvalid,
}

impl PlaceRefusal {
    pub const ALL: [PlaceRefusal; 3] =
        [PlaceRefusal::TooManyPlaces, PlaceRefusal::EnqueueTokenMissing, PlaceRefusal::EnqueueTokenInvalid];

    pub fn label(self) -> &'static str {
        match self {
            PlaceRefusal::TooManyPlaces => "too_many_places",
            PlaceRefusal::EnqueueTokenMissing => "enqueue_token_missing",
            PlaceRefusal::EnqueueTokenInvalid => "enqueue_token_invalid",
        }
    }
}

impl serde::Serialize for PlaceRefusal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// One room's places refused, by reason.
#[derive(Debug, Default)]
pub struct PlacesRefused([AtomicU64; PlaceRefusal::ALL.len()]);

impl PlacesRefused {
    pub fn count(&self, reason: PlaceRefusal) {
        self.0[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, reason: PlaceRefusal) -> u64 {
        self.0[reason as usize].load(Relaxed)
    }
}

/// One room's counters, by result.
#[derive(Debug, Default)]
pub struct Challenges([AtomicU64; ChallengeResult::ALL.len()]);

impl Challenges {
    pub fn count(&self, result: ChallengeResult) {
        self.0[result as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, result: ChallengeResult) -> u64 {
        self.0[result as usize].load(Relaxed)
    }
}

impl Metrics {
    pub(super) fn render_abuse(&self, out: &mut String) {
        let help = "Proof-of-work challenges, by what became of them.";
        self.render_labeled(out, ("anteroom_challenges_total", "result", help), |m| {
            ChallengeResult::ALL.map(|r| (r.label(), m.challenges.get(r))).to_vec()
        });
        let help = "Visitors given no place, by reason.";
        self.render_labeled(out, ("anteroom_places_refused_total", "reason", help), |m| {
            PlaceRefusal::ALL.map(|r| (r.label(), m.places_refused.get(r))).to_vec()
        });
    }

    /// A per-room counter family with one more label, (name, label, help); `counts` reads
    /// each label value's count of a room. Zero counts are left out.
    fn render_labeled(
        &self,
        out: &mut String,
        (name, label, help): (&str, &str, &str),
        counts: impl Fn(&RoomMetrics) -> Vec<(&'static str, u64)>,
    ) {
        header(out, name, "counter", help);
        for (room, m) in &self.rooms() {
            for (value, count) in counts(m).into_iter().filter(|(_, count)| *count > 0) {
                let _ = writeln!(out, "{name}{{room=\"{room}\",{label}=\"{value}\"}} {count}");
            }
        }
    }
}
