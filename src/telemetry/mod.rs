//! Tracing set-up: text (see [`text`]) or JSON lines on stdout (or into a file, for the
//! demo's quiet terminal), level from `RUST_LOG` (default `info`).
//!
//! Log lines are collected in a buffer and written out in batches (at least every
//! 100 ms, at once for warnings and errors, and at exit through [`flush`]): one `write`
//! syscall per access-log line would cost a busy gateway a large share of its CPU. This
//! is what nginx's `access_log ... buffer=` does.

mod text;

use crate::config::LogFormat;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Flushed when it grows past this, without waiting for the timer.
const BUFFER_LIMIT: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

static BUFFER: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

/// Where the lines go: stdout unless [`init_to_file`] chose a file.
static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Logs into `path` (created or appended to) instead of stdout.
pub fn init_to_file(format: LogFormat, path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let _ = FILE.set(Mutex::new(file));
    init(format);
    Ok(())
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(BufferedStdout);
    let result = match format {
        LogFormat::Text => builder.event_format(text::TextLine).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if result.is_ok() {
        std::thread::Builder::new()
            .name("anteroom-log-flush".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            })
            .map(drop)
            .unwrap_or_else(|e| eprintln!("cannot start the log flusher ({e}); logs may be delayed"));
    }
}

/// Writes out whatever is buffered. Call before the process exits.
pub fn flush() {
    let Some(buffer) = BUFFER.get() else { return };
    let pending = match buffer.lock() {
        Ok(mut b) if !b.is_empty() => std::mem::take(&mut *b),
        _ => return,
    };
    match FILE.get().map(Mutex::lock) {
        Some(Ok(mut file)) => {
            let _ = file.write_all(&pending);
        }
        _ => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&pending);
            let _ = out.flush();
        }
    }
}

struct BufferedStdout;

/// One formatted event; tracing-subscriber writes each event in a single call.
struct LineWriter {
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let buffer = BUFFER.get_or_init(|| Mutex::new(Vec::with_capacity(BUFFER_LIMIT)));
        let full = match buffer.lock() {
            Ok(mut b) => {
                b.extend_from_slice(data);
                b.len() >= BUFFER_LIMIT
            }
            // A panic while logging must not silence the logs: write directly.
            Err(_) => return std::io::stdout().write(data),
        };
        if full || self.urgent {
            flush();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter { urgent: *meta.level() <= Level::WARN }
    }
}
