//! The per-room counters of the bot defences: challenges by what became of them, and
//! places refused by why.

use super::{header, Metrics};
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
}

impl PlaceRefusal {
    pub const ALL: [PlaceRefusal; 1] = [PlaceRefusal::TooManyPlaces];

    pub fn label(self) -> &'static str {
        match self {
            PlaceRefusal::TooManyPlaces => "too_many_places",
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
        header(out, "anteroom_challenges_total", "counter", "Proof-of-work challenges, by what became of them.");
        for (room, m) in &self.rooms {
            for result in ChallengeResult::ALL {
                let count = m.challenges.get(result);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "anteroom_challenges_total{{room=\"{room}\",result=\"{}\"}} {count}",
                        result.label()
                    );
                }
            }
        }
        header(out, "anteroom_places_refused_total", "counter", "Visitors given no place, by reason.");
        for (room, m) in &self.rooms {
            for reason in PlaceRefusal::ALL {
                let count = m.places_refused.get(reason);
                if count > 0 {
                    let label = reason.label();
                    let _ =
                        writeln!(out, "anteroom_places_refused_total{{room=\"{room}\",reason=\"{label}\"}} {count}");
                }
            }
        }
    }
}
