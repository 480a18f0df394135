//! The `[store]` section and the `[[rooms]]` list: where queues live, and what each room
//! protects with which limits.

use super::{BypassList, ChallengeMode, Difficulty, EnqueueKey, EnqueueMode, HumanDuration, Secret};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: Backend,
    /// `redis://[:password@]host:port/db`, or `rediss://` for TLS. The password is
    /// masked when printed.
    #[serde(serialize_with = "masked_url")]
    pub redis_url: String,
    /// Node URLs of a Redis Cluster; when set, used instead of `redis_url`.
    #[serde(serialize_with = "masked_urls")]
    pub redis_cluster: Vec<String>,
    /// CA certificates (PEM) to trust for `rediss://`, instead of the system's.
    pub redis_ca_file: Option<PathBuf>,
    pub on_failure: OnFailure,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            redis_url: "redis://127.0.0.1:6379/".into(),
            redis_cluster: Vec::new(),
            redis_ca_file: None,
            on_failure: OnFailure::Closed,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-process: one instance only (several would each keep their own line).
    #[default]
    Memory,
    Redis,
}

/// How a room's admission rate is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionMode {
    /// `admit_per_minute`, as configured (or as an operator sets it live).
    #[default]
    Fixed,
    /// Steered by the origin's health, within a floor and a ceiling.
    Adaptive,
}

impl AdmissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionMode::Fixed => "fixed",
            AdmissionMode::Adaptive => "adaptive",
        }
    }
}

/// What new visitors get while the store is unreachable (token holders are unaffected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The queue page in state `paused`: nobody new reaches the shop.
    #[default]
    Closed,
    /// Forwarded, within origin protection.
    Open,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// Lowercase letters, digits, `-` and `_`: it names cookies, keys and metrics.
    pub name: String,
    /// Shown to buyers on the queue page; defaults to the name.
    #[serde(default)]
    pub title: Option<String>,
    /// Path prefixes this room protects (segment-wise: `/tickets` covers `/tickets/1`,
    /// not `/ticketsX`). The most specific prefix over all rooms wins.
    pub paths: Vec<String>,
    /// Only for these `Host` values (any host when empty).
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default = "defaults::max_active_users")]
    pub max_active_users: u32,
    /// The admission rate; with `admission = "adaptive"` its ceiling.
    #[serde(default = "defaults::admit_per_minute")]
    pub admit_per_minute: u32,
    /// `fixed`: admit at `admit_per_minute`. `adaptive`: follow the origin's health
    /// (latency, errors, shedding) between `min_admit_per_minute` and `admit_per_minute`.
    #[serde(default)]
    pub admission: AdmissionMode,
    /// Adaptive: the floor (the line never stops entirely); default 1 % of the ceiling.
    #[serde(default)]
    pub min_admit_per_minute: Option<u32>,
    /// The p90 of the origin's response time the room's traffic should stay under
    /// (required when adaptive; judges `anteroom_origin_health` in any room).
    #[serde(default)]
    pub target_origin_latency: Option<HumanDuration>,
    /// The share of the room's forwarded requests that may fail (origin 502, 503, 504,
    /// connect failures, timeouts) before the origin counts as unhealthy.
    #[serde(default = "defaults::max_origin_error_rate")]
    pub max_origin_error_rate: f64,
    /// A session ends after this long without a request (sliding).
    #[serde(default = "defaults::session_duration")]
    pub session_duration: HumanDuration,
    /// A waiter whose page stopped polling this long ago loses their place. Long enough
    /// for a tab in the background (browsers run its timers about once a minute) or a
    /// phone answering a message.
    #[serde(default = "defaults::abandon_after")]
    pub abandon_after: HumanDuration,
    /// An admitted visitor has this long to come back for the token before the turn goes
    /// to the next in line.
    #[serde(default = "defaults::claim_within")]
    pub claim_within: HumanDuration,
    /// A waiter dropped for silence who comes back within this long with the signed queue
    /// cookie of the place gets it back (not after leaving or being admitted). Default:
    /// `abandon_after`; `"0s"` turns it off.
    #[serde(default)]
    pub rejoin_grace: Option<HumanDuration>,
    /// HTTP status of the queue page: 200, 202, 429 or 503.
    #[serde(default = "defaults::queueing_status")]
    pub queueing_status: u16,
    /// RFC 3339; before it visitors pre-queue, and their order is drawn at random.
    #[serde(default)]
    pub opens_at: Option<OpensAt>,
    /// IANA time zone name (`Europe/Paris`) for the times the queue page shows: the
    /// opening time and "last updated". Default: UTC on the page as served, the buyer's
    /// own zone once the page's script runs.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `"proof-of-work"`: a visitor solves a challenge (the queue page does it in the
    /// background) before they get a place. Default `"none"`.
    #[serde(default)]
    pub challenge: ChallengeMode,
    /// The challenge's leading zero bits, or `"auto"` (default): rising with the room's
    /// join rate, from a fraction of a second on a phone in a calm sale.
    #[serde(default)]
    pub challenge_difficulty: Difficulty,
    /// Places one client may hold in line at once (IPv4 address, or IPv6 /64, after
    /// `trusted_proxies`), counted in the store so every instance agrees. Default: no cap.
    #[serde(default)]
    pub max_places_per_client: Option<u32>,
    /// `"token"`: a place only with an enqueue token the shop signed (`enqueue_key`), whose
    /// `sub` (the account) holds at most one place. For presales to registered fans.
    #[serde(default)]
    pub enqueue: EnqueueMode,
    #[serde(default)]
    pub enqueue_key: Option<EnqueueKey>,
    /// Skip the queue for: path prefixes (`/static/`), extensions (`.css`, `*.js`), client
    /// networks (`10.0.0.0/8`, `192.0.2.7`).
    #[serde(default)]
    pub bypass: BypassList,
    /// Requests carrying `X-Anteroom-Bypass: <this>` skip the queue (monitoring).
    #[serde(default)]
    pub bypass_secret: Option<Secret>,
    /// A custom queue page template.
    #[serde(default)]
    pub template: Option<PathBuf>,
}

mod defaults {
    use super::HumanDuration;
    pub(super) fn max_active_users() -> u32 {
        1_000
    }
    pub(super) fn admit_per_minute() -> u32 {
        600
    }
    pub(super) fn session_duration() -> HumanDuration {
        HumanDuration::secs(15 * 60)
    }
    pub(super) fn abandon_after() -> HumanDuration {
        HumanDuration::secs(5 * 60)
    }
    pub(super) fn claim_within() -> HumanDuration {
        HumanDuration::secs(2 * 60)
    }
    pub(super) fn queueing_status() -> u16 {
        200
    }
    pub(super) fn max_origin_error_rate() -> f64 {
        0.01
    }
}

/// `redis://user:secret@host/` → `redis://user:********@host/`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    let user = credentials.split_once(':').map_or("", |(user, _)| user);
    format!("{scheme}://{user}:********@{host}")
}

fn masked_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mask_url_password(url))
}

fn masked_urls<S: serde::Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|url| mask_url_password(url)))
}

impl StoreConfig {
    pub fn validate(&self, problems: &mut Vec<String>) {
        let scheme_ok = |url: &str| ["redis://", "rediss://", "unix://"].iter().any(|s| url.starts_with(s));
        if self.backend == Backend::Redis {
            if !scheme_ok(&self.redis_url) {
                problems.push(format!(
                    "store.redis_url: `{}` must start with redis://, rediss:// or unix://",
                    mask_url_password(&self.redis_url)
                ));
            }
            if let Some(ca) = &self.redis_ca_file {
                if !ca.is_file() {
                    problems.push(format!("store.redis_ca_file: {} is not a readable file", ca.display()));
                }
            }
            for url in &self.redis_cluster {
                if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                    problems.push(format!(
                        "store.redis_cluster: `{}` must start with redis:// or rediss://",
                        mask_url_password(url)
                    ));
                }
            }
        }
    }
}

impl RoomConfig {
    pub fn is_adaptive(&self) -> bool {
        self.admission == AdmissionMode::Adaptive
    }

    pub fn display_title(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }

    /// Adaptive admission's floor: as configured, or 1 % of the ceiling.
    pub fn min_admit_per_minute(&self) -> u32 {
        self.min_admit_per_minute.unwrap_or(self.admit_per_minute / 100).max(1)
    }

    /// The rejoin grace: as configured, or `abandon_after`.
    pub fn rejoin_grace(&self) -> HumanDuration {
        self.rejoin_grace.unwrap_or(self.abandon_after)
    }

    /// The room's time zone, if it names a valid one (`validate` reports one that does not).
    pub fn zone(&self) -> Option<crate::time::Zone> {
        self.time_zone.as_deref().and_then(|name| crate::time::Zone::named(name).ok())
    }

    /// `opens_at` as unix ms.
    pub fn opens_at_ms(&self) -> Option<u64> {
        self.opens_at.as_ref().map(OpensAt::unix_ms)
    }
}

/// A room's opening time, parsed once at load: the instant, and the offset it was written
/// with (so the page shows `11:00 +01:00` as configured, not a converted time).
#[derive(Clone, Debug, PartialEq)]
pub struct OpensAt {
    text: String,
    unix_ms: u64,
    display: String,
}

impl OpensAt {
    /// RFC 3339 with an offset (see `time::parse_rfc3339`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let written = crate::time::parse_rfc3339(text)?;
        Ok(Self { text: text.to_owned(), unix_ms: written.unix_ms, display: written.display })
    }

    pub fn unix_ms(&self) -> u64 {
        self.unix_ms
    }

    /// As configured, for the status object.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// As the page shows it: `2026-12-01 11:00 +01:00`, or `… 10:00 UTC`.
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl<'de> Deserialize<'de> for OpensAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OpensAt::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for OpensAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Every problem of the rooms, as `rooms[NAME].key: problem` lines. `response_timeout`:
/// the origin's, which a latency target must stay under.
pub(super) fn validate(
    rooms: &[RoomConfig],
    response_timeout: Duration,
    leeway: HumanDuration,
    problems: &mut Vec<String>,
) {
    let mut names = HashSet::new();
    let mut prefixes = HashSet::new();
    for (i, room) in rooms.iter().enumerate() {
        let at = if room.name.is_empty() { format!("rooms[{i}]") } else { format!("rooms[{}]", room.name) };
        let mut check = |ok: bool, line: String| {
            if !ok {
                problems.push(line);
            }
        };
        let name_ok = !room.name.is_empty()
            && room.name.len() <= 64
            && room.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        check(name_ok, format!("{at}.name: use 1 to 64 lowercase letters, digits, - or _"));
        check(names.insert(room.name.clone()), format!("{at}.name: another room has this name"));
        check(!room.paths.is_empty(), format!("{at}.paths: list at least one path prefix"));
        for path in &room.paths {
            check(path.starts_with('/'), format!("{at}.paths: `{path}` must start with /"));
            for host in if room.hosts.is_empty() { vec![String::new()] } else { room.hosts.clone() } {
                let key = (host.to_ascii_lowercase(), path.trim_end_matches('/').to_owned());
                check(prefixes.insert(key), format!("{at}.paths: `{path}` is already covered by another room"));
            }
        }
        check(room.max_active_users > 0, format!("{at}.max_active_users: must be at least 1"));
        check(room.admit_per_minute > 0, format!("{at}.admit_per_minute: must be at least 1"));
        check(
            room.session_duration.0.as_secs() >= 10,
            format!("{at}.session_duration: must be at least 10s (tokens are renewed at half their life)"),
        );
        check(room.abandon_after.0.as_secs() >= 1, format!("{at}.abandon_after: must be at least 1s"));
        check(room.claim_within.0.as_secs() >= 1, format!("{at}.claim_within: must be at least 1s"));
        check(
            room.rejoin_grace().0.as_secs() <= 3600,
            format!("{at}.rejoin_grace: at most 1h (a place kept longer for someone gone is taken from those waiting)"),
        );
        if let Some(Err(problem)) = room.time_zone.as_deref().map(crate::time::Zone::named) {
            check(false, format!("{at}.time_zone: {problem}"));
        }
        check(
            matches!(room.queueing_status, 200 | 202 | 429 | 503),
            format!("{at}.queueing_status: must be 200, 202, 429 or 503"),
        );
        for problem in room.bypass.problems() {
            check(false, format!("{at}.bypass: {problem}"));
        }
        if let Some(secret) = &room.bypass_secret {
            check(secret.expose().len() >= 16, format!("{at}.bypass_secret: use at least 16 characters"));
        }
        validate_admission(room, &at, response_timeout, problems);
        super::abuse::validate(room, &at, leeway, problems);
        // Templates are read and compiled once, with the queue pages (`room::page`).
    }
}

/// The closed-loop keys. They are checked in a fixed room too: an operator may keep them
/// set and switch `admission` on the day.
fn validate_admission(room: &RoomConfig, at: &str, response_timeout: Duration, problems: &mut Vec<String>) {
    let adaptive = room.admission == AdmissionMode::Adaptive;
    if let Some(floor) = room.min_admit_per_minute {
        if floor == 0 {
            problems.push(format!("{at}.min_admit_per_minute: must be at least 1 (pause the room to stop the line)"));
        } else if floor > room.admit_per_minute {
            problems.push(format!(
                "{at}.min_admit_per_minute: {floor} is above admit_per_minute ({}), which is the ceiling",
                room.admit_per_minute
            ));
        }
    }
    match room.target_origin_latency.as_ref().map(|t| t.0) {
        None if adaptive => problems.push(format!(
            "{at}.target_origin_latency: required with admission = \"adaptive\" (the p90 response time the shop \
             should stay under, e.g. \"300ms\")"
        )),
        None => {}
        Some(target) if target < Duration::from_millis(1) || target > Duration::from_secs(60) => {
            problems.push(format!("{at}.target_origin_latency: must be between 1ms and 60s"));
        }
        Some(target) if target >= response_timeout => problems.push(format!(
            "{at}.target_origin_latency: must be shorter than origin.response_timeout ({}), or slow requests \
             time out before they count as slow",
            super::format_duration(response_timeout)
        )),
        Some(_) => {}
    }
    let rate = room.max_origin_error_rate;
    if !(0.0..1.0).contains(&rate) {
        problems
            .push(format!("{at}.max_origin_error_rate: must be a fraction from 0 up to (not including) 1, like 0.01"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_times_are_rfc3339_with_an_offset_and_a_real_date() {
        let ms = |text: &str| OpensAt::parse(text).map(|at| at.unix_ms());
        assert_eq!(ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(ms("2026-12-01T10:00:00Z"), Ok(1_796_119_200_000));
        assert_eq!(ms("2026-12-01T11:00:00.250+01:00"), Ok(1_796_119_200_250));
        assert_eq!(ms("2028-02-29T00:00:00Z"), Ok(1_835_395_200_000), "a leap day");
        for bad in [
            "2026-02-31T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-12-01",
            "2026-13-01T10:00:00Z",
            "2026-12-01T25:00:00Z",
            "2026-12-01T10:00:00",
            "tomorrow",
            "2026-12-01T10:00:00+1",
            "2026-12-01T10:00:00+01:00[Europe/Berlin]",
        ] {
            let problem = OpensAt::parse(bad).expect_err(bad);
            assert!(problem.contains("is not an RFC 3339 time"), "{problem}");
        }
    }

    #[test]
    fn an_opening_time_keeps_its_offset() {
        let at = OpensAt::parse("2026-12-01T11:00:00+01:00").unwrap();
        assert_eq!(at.display(), "2026-12-01 11:00 +01:00");
        assert_eq!(at.as_str(), "2026-12-01T11:00:00+01:00");
        assert_eq!(OpensAt::parse("2026-12-01T10:00:00Z").unwrap().display(), "2026-12-01 10:00 UTC");
    }

    #[test]
    fn passwords_in_redis_urls_are_masked() {
        assert_eq!(mask_url_password("redis://:hunter2@cache:6379/0"), "redis://:********@cache:6379/0");
        assert_eq!(mask_url_password("rediss://app:pw@cache/"), "rediss://app:********@cache/");
        assert_eq!(mask_url_password("redis://cache:6379/"), "redis://cache:6379/");
    }
}
