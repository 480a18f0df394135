//! Tracing set-up: text (see [`text`]) or JSON lines on stdout (or into a file, for the
//! demo's quiet terminal), level from `RUST_LOG` (default `info`).
//!
//! Lines are written by a thread of their own (see [`output`]): logging never waits on
//! the output. The access log's line skips tracing's machinery (see [`access`]).

mod access;
mod output;
mod text;

pub(crate) use access::Access;
pub use output::{dropped_lines, flush};

use crate::config::LogFormat;
use std::io::Write;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Logs into `path` (created or appended to) instead of stdout.
pub fn init_to_file(format: LogFormat, path: &std::path::Path) -> std::io::Result<()> {
    output::to_file(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
    init(format);
    Ok(())
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(LogOutput);
    let result = match format {
        LogFormat::Text => builder.event_format(text::TextLine).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if result.is_ok() {
        output::start_writer();
        access::set_format(format);
    }
}

struct LogOutput;

/// One formatted event; tracing-subscriber writes each event in a single call.
struct LineWriter {
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        output::push(data, self.urgent);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter { urgent: *meta.level() <= Level::WARN }
    }
}
