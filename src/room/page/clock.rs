//! Times as the page shows them. UTC on the server; the script shows local time.

use jiff::Timestamp;

fn at(unix: u64) -> Timestamp {
    Timestamp::from_second(i64::try_from(unix).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `2026-11-26T15:04:05Z`.
pub fn rfc3339(unix: u64) -> String {
    at(unix).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `15:04:05 UTC`.
pub(crate) fn wall_clock(unix: u64) -> String {
    at(unix).strftime("%H:%M:%S UTC").to_string()
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
    }
}
