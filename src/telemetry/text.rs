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

    fn digits(&mut self, negative: bool, mut value: u64, decimals: usize) {
        let mut buf = [0u8; 24];
        let mut at = buf.len();
        let mut written = 0;
        loop {
            at -= 1;
            buf[at] = b'0' + (value % 10) as u8;
            value /= 10;
            written += 1;
            if written == decimals {
                at -= 1;
                buf[at] = b'.';
            }
            if value == 0 && written > decimals {
                break;
            }
        }
        if negative {
            at -= 1;
            buf[at] = b'-';
        }
        // Only ASCII digits, '.' and '-' were written.
        self.result = self.w.write_str(std::str::from_utf8(&buf[at..]).unwrap_or("?"));
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        let plain =
            !value.is_empty() && !value.bytes().any(|b| b == b' ' || b == b'"' || b == b'=' || b.is_ascii_control());
        self.result = if plain { self.w.write_str(value) } else { write!(self.w, "{value:?}") };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.digits(false, value, 0);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.digits(value < 0, value.unsigned_abs(), 0);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.key(field) {
            return;
        }
        // Three decimals through integer formatting: shortest-float printing is slow.
        if value.is_finite() && value.abs() < 1e12 {
            let thousandths = (value * 1000.0).round() as i64;
            self.digits(thousandths < 0, thousandths.unsigned_abs(), 3);
        } else {
            self.result = write!(self.w, "{value}");
        }
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

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T12:39:53.660Z`. The part up to
/// the second is formatted once per second per thread.
fn write_timestamp(w: &mut impl Write, now_us: u64) -> fmt::Result {
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
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        write_timestamp(&mut out, 1_795_696_793_660_000).unwrap();
        assert_eq!(out, "2026-11-26T12:39:53.660Z"); // date -u -d @1795696793
        out.clear();
        write_timestamp(&mut out, 951_782_400_000_000).unwrap();
        assert_eq!(out, "2000-02-29T00:00:00.000Z", "leap day");
    }
}
