//! A lean text line format: `TIMESTAMP LEVEL target: message key=value ...`.
//!
//! tracing-subscriber's default formatter styles every field name and escapes every
//! string; on the access log of a busy gateway that was a fifth of all user-space CPU.
//! This one writes the same information plainly: strings are quoted only when they hold
//! spaces, quotes, `=` or control characters, so lines still split cleanly on spaces.

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write_timestamp(&mut w, SystemTime::now())?;
        let meta = event.metadata();
        write!(w, " {:>5} {}:", meta.level().as_str(), meta.target())?;
        let mut message = MessageOnly { w: &mut w, result: Ok(()) };
        event.record(&mut message);
        message.result?;
        let mut fields = Fields { w: &mut w, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

struct MessageOnly<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for MessageOnly<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && self.result.is_ok() {
            self.result = write!(self.w, " {value:?}");
        }
    }
}

struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() != "message" && self.result.is_ok() {
            self.result = write!(self.w, " {}={value}", field.name());
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let plain = !value.is_empty() && !value.chars().any(|c| c == ' ' || c == '"' || c == '=' || c.is_control());
        if plain {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // Three decimals through integer formatting: shortest-float printing is slow.
        if value.is_finite() && value.abs() < 1e12 {
            let thousandths = (value * 1000.0).round() as i64;
            let sign = if thousandths < 0 { "-" } else { "" };
            let abs = thousandths.unsigned_abs();
            self.write(field, format_args!("{sign}{}.{:03}", abs / 1000, abs % 1000));
        } else {
            self.write(field, format_args!("{value}"));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T12:39:53.660Z`. The part up to
/// the second is formatted once per second per thread.
fn write_timestamp(w: &mut impl Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let in_day = secs % 86_400;
            let (h, m, s) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
            cached.1 = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
            cached.0 = secs;
        }
        let millis = since_epoch.subsec_millis();
        w.write_str(&cached.1)?;
        w.write_char('.')?;
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            w.write_char(char::from(b'0' + digit as u8))?;
        }
        w.write_char('Z')
    })
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        write_timestamp(&mut out, UNIX_EPOCH + Duration::from_millis(1_795_696_793_660)).unwrap();
        assert_eq!(out, "2026-11-26T12:39:53.660Z"); // date -u -d @1795696793
        out.clear();
        write_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(951_782_400)).unwrap();
        assert_eq!(out, "2000-02-29T00:00:00.000Z", "leap day");
    }
}
