//! The gate of a room with `challenge = "proof-of-work"`: the solution a visitor shows on
//! the join call, checked without the store (a bad one costs one hash and writes nothing),
//! and the challenge they are asked to solve instead.

use super::challenge::{self, Challenge, Proof, Refusal};
use super::cookies::Jar;
use super::params::JoinParams;
use super::status::{StatusBody, VisitorState};
use super::{queue_id, Room, WaitingRoom};
use crate::config::Difficulty;
use crate::metrics::{ChallengeResult, PlaceRefusal};
use std::sync::atomic::Ordering::Relaxed;

/// A solution as the join call carries it: `pow=NONCE`, and the challenge's prefix as
/// `challenge=PREFIX` (or else from the challenge cookie the challenge came with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Solution {
    pub nonce: String,
    pub prefix: Option<String>,
}

impl Solution {
    /// From the join call's `pow` and `challenge`.
    pub(super) fn of(params: &JoinParams) -> Option<Self> {
        params.get("pow").map(|nonce| Solution { nonce, prefix: params.get("challenge") })
    }
}

/// Why no place was bought with a solution, as the status object's `challenge_refused`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Checked(Refusal),
    /// The solution had bought a place before.
    Replayed,
}

impl Refused {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refused::Checked(refusal) => refusal.as_str(),
            Refused::Replayed => "replayed",
        }
    }

    /// A solution an honest page can come to send (a slow phone, a retried call) is not
    /// an error; one that could never have held is.
    pub(crate) fn is_client_error(self) -> bool {
        matches!(self, Refused::Checked(Refusal::Malformed | Refusal::Forged | Refusal::Wrong))
    }

    pub(crate) fn result(self) -> ChallengeResult {
        match self {
            Refused::Checked(Refusal::Expired) => ChallengeResult::Expired,
            Refused::Checked(_) => ChallengeResult::Failed,
            Refused::Replayed => ChallengeResult::Replayed,
        }
    }
}

impl serde::Serialize for Refused {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl WaitingRoom {
    /// Checks a visitor's solution. Counts a refusal; a proof is counted when it buys a
    /// place (the store may still find it spent).
    pub(super) fn check_solution(
        &self,
        room: &Room,
        visitor: &str,
        solution: &Solution,
        challenge_cookie: Option<&str>,
    ) -> Result<Proof, Refused> {
        let prefix = solution.prefix.as_deref().or(challenge_cookie).unwrap_or_default();
        let checked = self.challenges.check(&room.name, visitor, prefix, &solution.nonce, self.now_ms());
        checked.map_err(|refusal| {
            let refused = Refused::Checked(refusal);
            self.challenge_counted(room, refused.result());
            refused
        })
    }

    pub(super) fn solution_refused(&self, room: &Room, refused: Refused) {
        self.challenge_counted(room, refused.result());
    }

    pub(super) fn solution_spent(&self, room: &Room, jar: &mut Jar) {
        self.challenge_counted(room, ChallengeResult::Solved);
        jar.clear(&room.challenge_cookie);
    }

    /// The status of a visitor given no place (counted, and in the flood watch).
    pub(super) fn refused_status(
        &self,
        room: &Room,
        visitor: &str,
        reason: PlaceRefusal,
        client: std::net::IpAddr,
        return_to: String,
    ) -> StatusBody {
        room.metrics().places_refused.count(reason);
        tracing::debug!(target: "anteroom::abuse", room = %room.name, reason = reason.label(), %client, "no place");
        let mut status = self.status_body(room, None, Some(VisitorState::Refused), return_to);
        status.queue_id = queue_id::of(visitor);
        status.refused_reason = Some(reason);
        status
    }

    fn challenge_counted(&self, room: &Room, result: ChallengeResult) {
        room.metrics().challenges.count(result);
    }

    /// The challenge for `visitor`: the one they are solving if it is still fresh (a
    /// reload or a poll does not throw away the page's work), else a new one, kept in the
    /// challenge cookie.
    pub(super) fn challenge(&self, room: &Room, visitor: &str, cookie: Option<&str>, jar: &mut Jar) -> Challenge {
        let now = self.now_ms();
        if let Some(challenge) = cookie.and_then(|prefix| self.challenges.reusable(&room.name, visitor, prefix, now)) {
            return challenge;
        }
        let challenge = self.challenges.issue(&room.name, visitor, self.difficulty(room), now);
        jar.set(&room.challenge_cookie, &challenge.prefix);
        self.challenge_counted(room, ChallengeResult::Issued);
        challenge
    }

    /// The status of a visitor who holds no place in a room with a challenge: the
    /// challenge to solve, and why a solution they sent bought nothing.
    pub(super) fn challenge_status(
        &self,
        room: &Room,
        visitor: &str,
        cookie: Option<&str>,
        refused: Option<Refused>,
        return_to: String,
        jar: &mut Jar,
    ) -> StatusBody {
        let mut status = self.status_body(room, None, Some(VisitorState::Challenge), return_to);
        status.queue_id = queue_id::of(visitor);
        // A refused solution names a challenge that is spent, expired or not this
        // visitor's: a new one, rather than the cookie's again.
        let cookie = if refused.is_some() { None } else { cookie };
        status.challenge = Some(self.challenge(room, visitor, cookie, jar));
        status.challenge_refused = refused;
        status
    }

    /// The room's difficulty now: as configured, or from the join rate (`auto`).
    pub(super) fn difficulty(&self, room: &Room) -> u8 {
        match room.config.challenge_difficulty {
            Difficulty::Bits(bits) => bits,
            Difficulty::Auto => challenge::auto_difficulty(f64::from_bits(room.join_rate_bits.load(Relaxed))),
        }
    }
}

/// How often the ticker looks for a flood of bad solutions.
const FLOOD_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Refused solutions per second (on this instance) that make a flood worth a log line.
const FLOOD_PER_SEC: u64 = 5;

/// What the ticker last saw of a room's challenges, to tell an operator about floods of
/// bad solutions and about the `auto` difficulty rising and falling.
#[derive(Debug)]
pub(super) struct FloodWatch {
    since: std::time::Instant,
    refused: u64,
    difficulty: u8,
}

impl Default for FloodWatch {
    fn default() -> Self {
        Self { since: std::time::Instant::now(), refused: 0, difficulty: challenge::AUTO_BASE_BITS }
    }
}

impl WaitingRoom {
    /// One log line per window with a flood of refused solutions or places, and one per
    /// change of a challenge's difficulty (called at every tick).
    pub(super) fn watch_floods(&self, room: &Room, watch: &mut FloodWatch) {
        let difficulty = self.difficulty(room);
        if room.asks_proof() && difficulty != watch.difficulty {
            let joins_per_second = f64::from_bits(room.join_rate_bits.load(Relaxed));
            tracing::info!(
                target: "anteroom::abuse",
                room = %room.name,
                difficulty,
                joins_per_second = format!("{joins_per_second:.1}"),
                "challenge difficulty changed"
            );
            watch.difficulty = difficulty;
        }
        let elapsed = watch.since.elapsed();
        if elapsed < FLOOD_WINDOW {
            return;
        }
        let metrics = room.metrics();
        let refused: u64 = [ChallengeResult::Failed, ChallengeResult::Expired, ChallengeResult::Replayed]
            .into_iter()
            .map(|result| metrics.challenges.get(result))
            .chain(PlaceRefusal::ALL.into_iter().map(|reason| metrics.places_refused.get(reason)))
            .sum();
        let new = refused.saturating_sub(watch.refused);
        if new >= FLOOD_PER_SEC * elapsed.as_secs() {
            tracing::warn!(
                target: "anteroom::abuse",
                room = %room.name,
                refused = new,
                seconds = elapsed.as_secs(),
                difficulty,
                "a flood of refused solutions or places (scripts at the door?); none got a place"
            );
        }
        *watch = FloodWatch { since: std::time::Instant::now(), refused, difficulty };
    }
}

#[cfg(test)]
mod tests;
