//! A lean text line format: `TIMESTAMP LEVEL target: message key=value ...`.
//!
//! tracing-subscriber's default formatter styles every field name and escapes every
//! string; on the access log of a busy gateway that was a fifth of all user-space CPU.
//! This one writes the same information plainly: strings are quoted only when they hold
//! spaces, quotes, `=` or control characters, so lines still split cleanly on spaces.

use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(super) struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write_timestamp(&mut w, crate::time::unix_us())?;
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
    /// Writes ` name=` and returns whether the value should follow. Pieces are written
    /// directly: `write!` costs hundreds of instructions per call, and a busy access log
    /// makes millions of them.
    fn key(&mut self, field: &Field) -> bool {
        if field.name() == "message" || self.result.is_err() {
            return false;
        }
        self.result =
            self.w.write_char(' ').and_then(|()| self.w.write_str(field.name())).and_then(|()| self.w.write_char('='));
        self.result.is_ok()
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        self.result = write_text(self.w, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.result = write_integer(self.w, false, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.result = write_integer(self.w, value < 0, value.unsigned_abs());
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.key(field) {
            return;
        }
        self.result = write_thousandths(self.w, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.result = self.w.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.result = write!(self.w, "{value:?}");
        }
    }
}

/// A string value: as it is, or quoted (Rust's escaping) when it holds spaces, quotes,
/// `=` or control characters, or is empty, so that a line still splits on spaces.
pub(super) fn write_text(w: &mut impl Write, value: &str) -> fmt::Result {
    let plain =
        !value.is_empty() && !value.bytes().any(|b| b == b' ' || b == b'"' || b == b'=' || b.is_ascii_control());
    if plain {
        w.write_str(value)
    } else {
        write!(w, "{value:?}")
    }
}

/// A number with three decimals, through integer formatting: shortest-float printing is
/// slow.
pub(super) fn write_thousandths(w: &mut impl Write, value: f64) -> fmt::Result {
    if !(value.is_finite() && value.abs() < 1e12) {
        return write!(w, "{value}");
    }
    let thousandths = (value * 1000.0).round() as i64;
    let (whole, fraction) = (thousandths.unsigned_abs() / 1000, thousandths.unsigned_abs() % 1000);
    write_integer(w, thousandths < 0, whole)?;
    w.write_char('.')?;
    for digit in [fraction / 100, fraction / 10 % 10, fraction % 10] {
        w.write_char(char::from(b'0' + digit as u8))?;
    }
    Ok(())
}

/// An integer. Written directly (`itoa`): `write!` costs hundreds of instructions per
/// call, and a busy access log makes millions of them.
pub(super) fn write_integer(w: &mut impl Write, negative: bool, value: u64) -> fmt::Result {
    if negative {
        w.write_char('-')?;
    }
    w.write_str(itoa::Buffer::new().format(value))
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T12:39:53.660Z`. The part up to
/// the second is formatted once per second per thread.
pub(super) fn write_timestamp(w: &mut impl Write, now_us: u64) -> fmt::Result {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = now_us / 1_000_000;
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            cached.1 = crate::time::utc_second(secs);
            cached.0 = secs;
        }
        let millis = (now_us / 1000 % 1000) as u32;
        w.write_str(&cached.1)?;
        w.write_char('.')?;
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            w.write_char(char::from(b'0' + digit as u8))?;
        }
        w.write_char('Z')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: impl FnOnce()) -> String {
        use tracing_subscriber::fmt::MakeWriter;
        #[derive(Clone)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Shared {
            type Writer = Shared;
            fn make_writer(&'a self) -> Shared {
                self.clone()
            }
        }
        let out = Shared(Default::default());
        let subscriber = tracing_subscriber::fmt().event_format(TextLine).with_writer(out.clone()).finish();
        tracing::subscriber::with_default(subscriber, record);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn fields_are_written_plainly_and_quoted_only_when_needed() {
        let text = line(|| {
            tracing::info!(target: "t", method = "GET", path = "/a b", status = 200u16, latency_ms = 1.5f64, neg = -42i64, small = 0.0004f64, ok = true, "hello");
        });
        let (_, rest) = text.split_once(" INFO t: ").expect("prefix");
        assert_eq!(rest, "hello method=GET path=\"/a b\" status=200 latency_ms=1.500 neg=-42 small=0.000 ok=true\n");
    }

    #[test]
    fn the_access_line_is_what_this_format_writes_for_the_same_event() {
        let access = super::super::Access {
            method: "POST",
            path: "/a b",
            status: 503,
            latency_us: 2_500,
            decision: "shed",
            client: "192.0.2.1",
        };
        let event = line(|| {
            tracing::info!(target: "anteroom::access", method = access.method, path = access.path,
                status = access.status, latency_ms = 2.5f64, decision = access.decision, client = access.client);
        });
        let mut direct = String::new();
        access.text(&mut direct, crate::time::unix_us()).unwrap();
        let after_time = |l: &str| l.split_once(' ').expect("a timestamp").1.to_owned();
        assert_eq!(after_time(&direct), after_time(&event));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        write_timestamp(&mut out, 1_795_696_793_660_000).unwrap();
        assert_eq!(out, "2026-11-26T12:39:53.660Z"); // date -u -d @1795696793
        out.clear();
        write_timestamp(&mut out, 951_782_400_000_000).unwrap();
        assert_eq!(out, "2000-02-29T00:00:00.000Z", "leap day");
    }
}
