//! Time, in one place and on one well-kept crate (jiff): the clock (unix time, injectable
//! for the store's tests), RFC 3339 in and out, and times as the page and the log show
//! them. Nothing else in the crate reads the system clock or formats a date.

use jiff::Timestamp;
use std::sync::Arc;

/// A clock in unix µs: the system's, or a test's hand-driven one.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(unix_us)
}

/// Unix time in µs.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Unix time in ms.
pub fn unix_ms() -> u64 {
    unix_us() / 1000
}

/// Unix time in seconds.
pub fn unix_secs() -> u64 {
    unix_us() / 1_000_000
}

fn at(unix_secs: u64) -> Timestamp {
    Timestamp::from_second(i64::try_from(unix_secs).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2026-11-26T15:04:05Z`.
pub fn rfc3339(unix_secs: u64) -> String {
    at(unix_secs).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-11-26T15:04:05`: the part of a log timestamp up to the second, in UTC.
pub(crate) fn utc_second(unix_secs: u64) -> String {
    at(unix_secs).strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `15:04:05 UTC`, as the page shows the time of its last update.
pub(crate) fn wall_clock(unix_secs: u64) -> String {
    at(unix_secs).strftime("%H:%M:%S UTC").to_string()
}

/// A room's time zone (IANA name) for the times its page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub name: String,
    zone: jiff::tz::TimeZone,
}

impl Zone {
    /// `Europe/Paris`, `America/New_York`, `UTC`: from the time zone database built into
    /// the binary (the container image has none of its own).
    pub fn named(name: &str) -> Result<Self, String> {
        let zone = jiff::tz::TimeZone::get(name)
            .map_err(|_| format!("`{name}` is not an IANA time zone name like Europe/Paris or America/New_York"))?;
        Ok(Self { name: name.to_owned(), zone })
    }

    /// `2026-12-24 18:00 CET`: a time as the page writes it before its script does.
    pub fn date_time(&self, unix_ms: u64) -> String {
        self.at_ms(unix_ms).strftime("%Y-%m-%d %H:%M %Z").to_string()
    }

    /// `18:00:05 CET`, as the page shows the time of its last update.
    pub fn wall_clock(&self, unix_secs: u64) -> String {
        at(unix_secs).to_zoned(self.zone.clone()).strftime("%H:%M:%S %Z").to_string()
    }

    fn at_ms(&self, unix_ms: u64) -> jiff::Zoned {
        let at = Timestamp::from_millisecond(i64::try_from(unix_ms).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH);
        at.to_zoned(self.zone.clone())
    }
}

/// An instant written in RFC 3339 with an offset, as a config gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub unix_ms: u64,
    /// As written, in its own offset: `2026-12-01 11:00 +01:00`, or `… 10:00 UTC`.
    pub display: String,
}

/// RFC 3339 with an offset: `2026-12-01T10:00:00Z`, `2026-12-01T11:00:00+01:00`.
/// Impossible dates (`2026-02-31`), times without an offset and zone names in brackets
/// are refused.
pub fn parse_rfc3339(text: &str) -> Result<Written, String> {
    let bad = |why: String| format!("`{text}` is not an RFC 3339 time like 2026-12-01T10:00:00Z ({why})");
    let pieces = jiff::fmt::temporal::Pieces::parse(text).map_err(|e| bad(e.to_string()))?;
    let time = pieces.time().ok_or_else(|| bad("no time of day".into()))?;
    let offset = pieces.to_numeric_offset().ok_or_else(|| bad("no offset: end it with Z or +01:00".into()))?;
    if pieces.time_zone_annotation().is_some() {
        return Err(bad("a time zone name in brackets is not RFC 3339".into()));
    }
    let civil = pieces.date().to_datetime(time);
    let at = offset.to_timestamp(civil).map_err(|e| bad(e.to_string()))?;
    let zone = match offset.seconds() {
        0 => "UTC".to_owned(),
        seconds => {
            let sign = if seconds < 0 { '-' } else { '+' };
            let minutes = seconds.unsigned_abs() / 60;
            format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
        }
    };
    let display = format!("{} {zone}", civil.strftime("%Y-%m-%d %H:%M"));
    Ok(Written { unix_ms: u64::try_from(at.as_millisecond()).unwrap_or(0), display })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_the_page_shows_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_119_200), "2026-12-01T10:00:00Z");
        assert_eq!(wall_clock(1_796_119_205), "10:00:05 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_second(1_796_119_205), "2026-12-01T10:00:05");
    }

    #[test]
    fn a_zone_shows_local_time_with_its_abbreviation() {
        let paris = Zone::named("Europe/Paris").unwrap();
        assert_eq!(paris.wall_clock(1_796_119_205), "11:00:05 CET");
        assert_eq!(paris.date_time(1_796_119_200_000), "2026-12-01 11:00 CET");
        let summer = 1_782_900_000_000; // 2026-07-01
        assert!(paris.date_time(summer).ends_with("CEST"), "{}", paris.date_time(summer));
        assert_eq!(Zone::named("America/New_York").unwrap().wall_clock(1_796_119_205), "05:00:05 EST");
        for bad in ["Europe/Pariss", "", "CET+1", "../../etc/passwd"] {
            assert!(Zone::named(bad).is_err(), "{bad}");
        }
    }
}
