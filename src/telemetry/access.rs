//! The access-log line, written straight into the output.
//!
//! One line per request is the log's bulk. As a tracing event it went through the
//! dispatcher, two field visitors and the formatter's writer: some 3,700 instructions a
//! request, a twelfth of a proxied request's whole cost. Here the line is formatted from
//! its typed fields into a buffer of the thread's and handed to the output, in the same
//! shape the text and JSON formats give any event. The level filter (`RUST_LOG`, e.g.
//! `anteroom::access=off`) is still asked first.
//!
//! Without [`super::init`] (the library used on its own, a test's subscriber), the line
//! is an ordinary tracing event, so whoever set up tracing still sees it.

use super::text::{write_integer, write_text, write_thousandths, write_timestamp};
use crate::config::LogFormat;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt::{self, Write};
use std::sync::OnceLock;

pub(super) const TARGET: &str = "anteroom::access";

/// The format chosen by [`super::init`]; unset, lines go through tracing.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub(super) fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
}

/// One request as the access log tells it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Access<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    /// From the request's arrival to its answer's head.
    pub(crate) latency_us: u64,
    pub(crate) decision: &'a str,
    pub(crate) client: &'a str,
}

impl Access<'_> {
    pub(crate) fn log(&self) {
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return;
        }
        let Some(&format) = FORMAT.get() else {
            tracing::info!(
                target: TARGET,
                method = self.method,
                path = self.path,
                status = self.status,
                latency_ms = self.latency_ms(),
                decision = self.decision,
                client = self.client,
            );
            return;
        };
        thread_local! {
            static LINE: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
        }
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else { return };
            let (text, json) = &mut *line;
            text.clear();
            let written = match format {
                LogFormat::Text => self.text(text, crate::time::unix_us()).map(|()| text.as_bytes()),
                LogFormat::Json => self.json(text, json, crate::time::unix_us()).map(|()| json.as_slice()),
            };
            if let Ok(bytes) = written {
                super::output::push(bytes, false);
            }
        });
    }

    fn latency_ms(&self) -> f64 {
        self.latency_us as f64 / 1000.0
    }

    /// `TIMESTAMP  INFO anteroom::access: method=GET path=/ status=200 latency_ms=0.412
    /// decision=forwarded client=192.0.2.1`, as the text format writes any event.
    pub(super) fn text(&self, w: &mut String, now_us: u64) -> fmt::Result {
        write_timestamp(w, now_us)?;
        w.write_str("  INFO ")?;
        w.write_str(TARGET)?;
        w.write_str(": method=")?;
        write_text(w, self.method)?;
        w.write_str(" path=")?;
        write_text(w, self.path)?;
        w.write_str(" status=")?;
        write_integer(w, false, self.status.into())?;
        w.write_str(" latency_ms=")?;
        write_thousandths(w, self.latency_ms())?;
        w.write_str(" decision=")?;
        write_text(w, self.decision)?;
        w.write_str(" client=")?;
        write_text(w, self.client)?;
        w.write_char('\n')
    }

    /// The fields flat beside `timestamp`, `level` and `target`, as the JSON format
    /// writes any event.
    fn json(&self, scratch: &mut String, out: &mut Vec<u8>, now_us: u64) -> fmt::Result {
        #[derive(Serialize)]
        struct Line<'a> {
            timestamp: &'a str,
            level: &'static str,
            method: &'a str,
            path: &'a str,
            status: u16,
            latency_ms: f64,
            decision: &'a str,
            client: &'a str,
            target: &'static str,
        }
        write_timestamp(scratch, now_us)?;
        let line = Line {
            timestamp: scratch,
            level: "INFO",
            method: self.method,
            path: self.path,
            status: self.status,
            latency_ms: self.latency_ms(),
            decision: self.decision,
            client: self.client,
            target: TARGET,
        };
        out.clear();
        serde_json::to_writer(&mut *out, &line).map_err(|_| fmt::Error)?;
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_795_696_793_660_000; // 2026-11-26T12:39:53.660Z

    fn access<'a>(path: &'a str, client: &'a str) -> Access<'a> {
        Access { method: "GET", path, status: 200, latency_us: 1_234, decision: "forwarded", client }
    }

    #[test]
    fn the_text_line_carries_every_field_in_the_text_formats_order() {
        let mut line = String::new();
        access("/events/7", "192.0.2.1").text(&mut line, AT).unwrap();
        assert_eq!(
            line,
            "2026-11-26T12:39:53.660Z  INFO anteroom::access: method=GET path=/events/7 status=200 \
             latency_ms=1.234 decision=forwarded client=192.0.2.1\n"
        );
    }

    #[test]
    fn a_path_that_would_break_the_line_is_quoted() {
        let mut line = String::new();
        access("/a b\"c=d\n", "192.0.2.1").text(&mut line, AT).unwrap();
        assert!(line.contains(r#" path="/a b\"c=d\n" status=200"#), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
    }

    #[test]
    fn the_json_line_is_one_object_with_the_fields_flat() {
        let (mut scratch, mut out) = (String::new(), Vec::new());
        access("/q\"uote\\", "2001:db8::1").json(&mut scratch, &mut out, AT).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["timestamp"], "2026-11-26T12:39:53.660Z");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "anteroom::access");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["path"], "/q\"uote\\");
        assert_eq!(line["status"], 200);
        assert_eq!(line["latency_ms"], 1.234);
        assert_eq!(line["decision"], "forwarded");
        assert_eq!(line["client"], "2001:db8::1");
    }
}
