//! Times as the page shows them. UTC on the server; the script shows local time.

/// `2026-11-26T15:04:05Z`.
pub fn rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `15:04:05 UTC`.
pub fn wall_clock(unix: u64) -> String {
    let secs = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// An RFC 3339 time as configured, shown as `2026-12-01 10:00 UTC`.
pub fn display_time(text: &str) -> String {
    match crate::config::parse_rfc3339_ms(text) {
        Ok(ms) => {
            let full = rfc3339(ms / 1000);
            format!("{} {} UTC", &full[..10], &full[11..16])
        }
        Err(_) => text.to_owned(),
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_the_page_shows_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_119_200), "2026-12-01T10:00:00Z");
        assert_eq!(wall_clock(1_796_119_205), "10:00:05 UTC");
        assert_eq!(display_time("2026-12-01T11:00:00+01:00"), "2026-12-01 10:00 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
