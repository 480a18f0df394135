//! The status object (docs/API.md) and the plain arithmetic behind it: how often to poll,
//! the wait estimate, and where to send the visitor back to.

use crate::store::QueueState;
use serde::{Deserialize, Serialize};

/// Where a visitor stands, as the page, the API and `X-Anteroom-State` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VisitorState {
    /// In line.
    Waiting,
    /// Their turn has come (or they hold a valid token).
    Admitted,
    /// Nobody is waiting: the next request goes straight in.
    Open,
    /// Admissions are stopped (by an operator, or while the store is away).
    Paused,
    /// Before `opens_at`: in the pre-queue, order not yet drawn.
    Scheduled,
    /// The sale is over.
    Closed,
    /// The room asks for a proof of work before a place: the `challenge` object.
    Challenge,
    /// No place for this visitor: `refused_reason` says why.
    Refused,
    /// The visitor's admission was claimed already (with the same queue cookie, by
    /// another browser, or long ago) and is not handed out again.
    Claimed,
}

impl VisitorState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VisitorState::Waiting => "waiting",
            VisitorState::Admitted => "admitted",
            VisitorState::Open => "open",
            VisitorState::Paused => "paused",
            VisitorState::Scheduled => "scheduled",
            VisitorState::Closed => "closed",
            VisitorState::Challenge => "challenge",
            VisitorState::Claimed => "claimed",
            VisitorState::Refused => "refused",
        }
    }
}

impl From<QueueState> for VisitorState {
    fn from(state: QueueState) -> Self {
        match state {
            QueueState::Waiting => VisitorState::Waiting,
            QueueState::Admitted => VisitorState::Admitted,
            QueueState::Scheduled => VisitorState::Scheduled,
            QueueState::Paused => VisitorState::Paused,
            QueueState::Closed => VisitorState::Closed,
            QueueState::Claimed => VisitorState::Claimed,
        }
    }
}

/// `GET /_anteroom/status` and the body of a queued JSON request.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct StatusBody {
    pub room: String,
    pub state: VisitorState,
    pub position: Option<u64>,
    pub queue_length: u64,
    pub eta_seconds: Option<u64>,
    pub poll_after_ms: u64,
    pub opens_at: Option<String>,
    pub return_to: String,
    /// The short id the buyer gives support (`null` before the visitor has a cookie).
    pub queue_id: Option<String>,
    /// The visitor's place was lost (they were away longer than `abandon_after` and the
    /// rejoin grace): this answer is a new place at the end of the line.
    pub place_lost: bool,
    /// An operator's message to the line (`null`: none).
    pub message: Option<String>,
    /// State `challenge`: what to solve before a place is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<super::challenge::Challenge>,
    /// A solution was sent and bought no place: `wrong`, `malformed`, `forged`,
    /// `expired` or `replayed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_refused: Option<super::proof::Refused>,
    /// State `refused`: why (`too_many_places`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_reason: Option<crate::metrics::PlaceRefusal>,
}

/// Polls come at least every second and at most every 30 s, and always well inside
/// `abandon_after` (a poll is the heartbeat). Far back in line, polling rarely costs
/// nothing: the next poll comes at half the estimated wait, so the interval shrinks as
/// the turn nears and an admitted visitor hears of it within about a second. Without an
/// estimate it grows with the position.
pub(crate) fn poll_after_ms(
    position: Option<u64>,
    eta_seconds: Option<u64>,
    abandon_after_ms: u64,
    jitter: f64,
) -> u64 {
    let base = match (eta_seconds, position) {
        (Some(eta), _) => eta.saturating_mul(500).max(1_000),
        (None, Some(p)) => 1_000 + p.saturating_mul(10),
        (None, None) => 1_000,
    };
    let base = base.min(poll_ceiling_ms(abandon_after_ms)) as f64;
    // ±20 %, so that a crowd that arrived together does not poll together.
    (base * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))).round() as u64
}

/// The longest interval between two polls, before jitter (±20 %).
pub(crate) fn poll_ceiling_ms(abandon_after_ms: u64) -> u64 {
    (abandon_after_ms / 3).clamp(300, 30_000)
}

/// How long admissions wait after the store lost a room's data: long enough for every
/// waiter to poll once more (the longest interval, its jitter, and a margin), so that
/// the line is restored in its old order before anyone is let in.
pub(crate) fn recount_ms(abandon_after_ms: u64) -> u64 {
    poll_ceiling_ms(abandon_after_ms) * 6 / 5 + 2_000
}

/// Seconds until a visitor at `position` is admitted, at `rate_per_second`.
pub(crate) fn eta_seconds(position: Option<u64>, rate_per_second: Option<f64>) -> Option<u64> {
    let (position, rate) = (position?, rate_per_second?);
    (rate > 0.0).then(|| (position as f64 / rate).ceil() as u64)
}

/// The estimate as a range of whole minutes, ±20 %: `(0, 0)` under a minute. The page's
/// script (`assets/queue.js`) applies the same rule to its updates.
pub(crate) fn eta_minutes_range(eta_seconds: Option<u64>) -> Option<(u64, u64)> {
    let seconds = eta_seconds?;
    if seconds < 60 {
        return Some((0, 0));
    }
    let low = (seconds * 8 / 600).max(1);
    let high = (seconds * 12).div_ceil(600).max(low + 1);
    Some((low, high))
}

/// Where to send the visitor when admitted: only a same-site relative path. Anything else
/// (`//evil.example`, `/\evil`, `https:evil`, control characters, spaces) falls back to
/// `/`: browsers read `/\x` and `/<TAB>/x` as other hosts. Paths with dot segments
/// (`/.//evil.example`) are refused too: the browser resolves them, and what is left may
/// start with `//`.
/// Order scores of cookies from before `joined` was kept: below this, pre-queue scores
/// (random, before `opens_at`); above it, join times in unix µs (2001 onwards).
const JOIN_TIMES_FROM_US: u64 = 1_000_000_000_000_000;

/// How long a place waited for its turn: from when it was taken (`joined_ms`, from the
/// cookie), or from the opening for a place taken before it. Cookies from before `joined`
/// was kept (0) fall back to the order score, which was then the join time in µs. `None`
/// when nothing usable is known.
pub(crate) fn waited(seq: u64, joined_ms: u64, now_ms: u64, opens_at_ms: Option<u64>) -> Option<std::time::Duration> {
    let now_us = now_ms.saturating_mul(1000);
    let from_us = if joined_ms > 0 {
        joined_ms.max(opens_at_ms.unwrap_or(0)).saturating_mul(1000)
    } else if seq >= JOIN_TIMES_FROM_US {
        seq
    } else {
        opens_at_ms?.saturating_mul(1000)
    };
    let waited = std::time::Duration::from_micros(now_us.saturating_sub(from_us));
    // A day in line is no wait anyone had: a clock far off, not a measurement.
    (waited < std::time::Duration::from_secs(86_400)).then_some(waited)
}

pub(crate) fn sanitize_return_to(raw: Option<&str>) -> String {
    let Some(path) = raw else { return "/".to_owned() };
    let lower = path.to_ascii_lowercase();
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !lower.contains("%5c")
        && !lower[1..].starts_with("%2f")
        && !has_dot_segment(&lower);
    if safe {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Whether the path part holds a `.` or `..` segment, spelled plainly or percent-encoded
/// (once or twice: `%2e`, `%252e`).
fn has_dot_segment(lower: &str) -> bool {
    let path = lower.split(['?', '#']).next().unwrap_or("");
    let dots = path.replace("%252e", ".").replace("%2e", ".");
    dots.replace("%2f", "/").split('/').any(|segment| segment == "." || segment == "..")
}

/// The value of query parameter `name`, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode_component(value))
    })
}

fn decode_component(value: &str) -> String {
    super::routing::percent_decode(&value.replace('+', " "))
}

#[cfg(test)]
mod waited_tests {
    use super::waited;
    use std::time::Duration;

    #[test]
    fn the_wait_runs_from_the_join_or_for_the_pre_queue_from_the_opening() {
        let now_ms = 1_800_000_000_000;
        // The sequence is no clock: a dense score in the µs range says nothing of the wait.
        let dense = JOIN + 5;
        assert_eq!(waited(dense, now_ms - 90_000, now_ms, None), Some(Duration::from_secs(90)));
        let opening = Some(now_ms - 30_000);
        assert_eq!(waited(123_456, now_ms - 90_000, now_ms, opening), Some(Duration::from_secs(30)), "pre-queue");
        assert_eq!(waited(dense, now_ms + 5_000, now_ms, None), Some(Duration::ZERO), "clocks apart: no negative wait");
        assert_eq!(waited(dense, 1, now_ms, None), None, "a wait of years is a broken clock");
    }

    #[test]
    fn a_cookie_from_before_the_join_time_was_kept_reads_it_from_the_score() {
        let now_ms = 1_800_000_000_000;
        let joined_us = (now_ms - 90_000) * 1000;
        assert_eq!(waited(joined_us, 0, now_ms, None), Some(Duration::from_secs(90)));
        assert_eq!(waited(123_456, 0, now_ms, Some(now_ms - 30_000)), Some(Duration::from_secs(30)));
        assert_eq!(waited(123_456, 0, now_ms, None), None, "a pre-queue score without an opening says nothing");
        assert_eq!(waited(joined_us, 0, now_ms - 100_000, None), Some(Duration::ZERO));
        assert_eq!(waited(JOIN, 0, now_ms, None), None);
    }

    const JOIN: u64 = super::JOIN_TIMES_FROM_US;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_redirect_falls_back_to_the_root() {
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "https:evil.example",
            "https://evil.example/",
            "/x\r\nLocation: //evil",
            "/\t/evil.example",
            "/%2F/evil.example",
            "/%5Cevil",
            "/.//evil.example",
            "/./%2Fevil.example",
            "/%2e%2e//evil.example",
            "/a/../..//evil.example",
            "evil",
            "",
        ] {
            assert_eq!(sanitize_return_to(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(sanitize_return_to(None), "/");
        assert_eq!(sanitize_return_to(Some("/tickets/42?seat=A%2012")), "/tickets/42?seat=A%2012");
        assert_eq!(
            sanitize_return_to(Some("/tickets/v1.2/x?q=../a")),
            "/tickets/v1.2/x?q=../a",
            "dots in names are fine"
        );
    }

    #[test]
    fn polling_slows_with_the_position_but_keeps_the_heartbeat() {
        assert_eq!(poll_after_ms(Some(1), None, 60_000, 0.5), 1_010);
        assert_eq!(poll_after_ms(Some(1_000), None, 60_000, 0.5), 11_000);
        assert_eq!(poll_after_ms(Some(1_000_000), None, 60_000, 0.5), 20_000, "a third of abandon_after");
        assert_eq!(poll_after_ms(Some(1_000_000), None, 600_000, 0.5), 30_000);
        let (low, high) = (poll_after_ms(Some(100), None, 60_000, 0.0), poll_after_ms(Some(100), None, 60_000, 1.0));
        assert_eq!((low, high), (1_600, 2_400), "±20 % jitter");
        assert_eq!(poll_after_ms(Some(1_000), Some(10), 60_000, 0.5), 5_000, "half the estimated wait");
        assert_eq!(poll_after_ms(Some(3), Some(1), 60_000, 0.5), 1_000, "at least a second");
    }

    #[test]
    fn the_estimate_is_position_over_rate() {
        assert_eq!(eta_seconds(Some(100), Some(10.0)), Some(10));
        assert_eq!(eta_seconds(Some(1), Some(0.5)), Some(2));
        assert_eq!(eta_seconds(None, Some(10.0)), None);
        assert_eq!(eta_seconds(Some(5), Some(0.0)), None);
    }

    #[test]
    fn the_estimate_is_shown_as_an_honest_range() {
        assert_eq!(eta_minutes_range(None), None);
        assert_eq!(eta_minutes_range(Some(30)), Some((0, 0)));
        assert_eq!(eta_minutes_range(Some(300)), Some((4, 6)));
        assert_eq!(eta_minutes_range(Some(60)), Some((1, 2)));
        assert_eq!(eta_minutes_range(Some(3_600)), Some((48, 72)));
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("room=sale&return_to=%2Ftickets%3Fa%3D1"), "return_to").as_deref(),
            Some("/tickets?a=1")
        );
        assert_eq!(query_param(Some("room=sale"), "return_to"), None);
        assert_eq!(query_param(None, "room"), None);
    }
}
