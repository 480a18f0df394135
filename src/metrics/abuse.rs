//! The per-room counters of the bot defences: challenges by what became of them.

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
    }
}
