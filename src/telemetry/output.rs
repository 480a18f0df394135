//! Where the formatted lines go: gathered in memory and written out by a thread of their
//! own, so that no request ever waits on stdout. A full pipe or a stalled log collector
//! must not stop a gateway from serving: while the output does not move, the backlog is
//! bounded, lines past it are dropped and counted (`anteroom_log_lines_dropped_total`),
//! and a warning says how many once the output moves again.
//!
//! Lines are written in batches (at least every 100 ms, at once for warnings and errors,
//! and at exit through [`flush`]): one `write` syscall per access-log line would cost a
//! busy gateway a large share of its CPU. This is what nginx's `access_log ... buffer=`
//! does.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Written out when this much is gathered, without waiting for the timer.
const WRITE_AT: usize = 64 * 1024;
/// Written out at least this often.
const WRITE_EVERY: Duration = Duration::from_millis(100);
/// Unwritten lines beyond this are dropped: some 20,000 access lines, a few seconds of a
/// busy gateway's log, while the output is stalled.
const BACKLOG_LIMIT: usize = 4 * 1024 * 1024;
/// How long the exit waits for the lines still unwritten.
const EXIT_WAIT: Duration = Duration::from_secs(2);

static OUTPUT: Output = Output {
    backlog: Mutex::new(Backlog::new()),
    wake: Condvar::new(),
    written: Condvar::new(),
    writer: AtomicBool::new(false),
};
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Where the lines go: stdout unless [`to_file`] chose a file.
static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Log lines dropped since the start because the output did not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Relaxed)
}

pub(super) fn to_file(file: std::fs::File) {
    let _ = FILE.set(Mutex::new(file));
}

/// Starts the writer thread. Without it (it could not start), lines are written by
/// whoever logs them, as a last resort.
pub(super) fn start_writer() {
    let started = std::thread::Builder::new().name("anteroom-log-writer".into()).spawn(write_forever);
    match started {
        Ok(_) => OUTPUT.writer.store(true, Relaxed),
        Err(e) => eprintln!("cannot start the log writer ({e}); requests will write their own log lines"),
    }
}

/// Adds one formatted line (tracing-subscriber hands over each event in one call);
/// `urgent` lines (warnings, errors) are written out at once.
pub(super) fn push(line: &[u8], urgent: bool) {
    if !OUTPUT.writer.load(Relaxed) {
        write_out(line);
        return;
    }
    let mut backlog = OUTPUT.lock();
    let before = backlog.lines.len();
    if !backlog.push(line, BACKLOG_LIMIT) {
        DROPPED.fetch_add(1, Relaxed);
        return;
    }
    // A wake-up is a syscall: only when the batch fills or the line cannot wait.
    if urgent || (before < WRITE_AT && backlog.lines.len() >= WRITE_AT) {
        backlog.urgent |= urgent;
        OUTPUT.wake.notify_one();
    }
}

/// Writes out whatever is gathered and waits for it, at most two seconds (the output may
/// be the thing that is stuck). Call before the process exits.
pub fn flush() {
    if !OUTPUT.writer.load(Relaxed) {
        return;
    }
    let deadline = Instant::now() + EXIT_WAIT;
    let mut backlog = OUTPUT.lock();
    backlog.urgent = true;
    OUTPUT.wake.notify_one();
    while !backlog.lines.is_empty() || backlog.writing {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        backlog = OUTPUT.written.wait_timeout(backlog, left).unwrap_or_else(PoisonError::into_inner).0;
    }
}

struct Output {
    backlog: Mutex<Backlog>,
    /// Wakes the writer: a batch is full, or a line cannot wait.
    wake: Condvar,
    /// Tells [`flush`] that a write ended.
    written: Condvar,
    /// The writer thread runs.
    writer: AtomicBool,
}

impl Output {
    /// A panic while logging must not silence the logs: a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lines not yet written, and what the writer is asked.
#[derive(Debug)]
struct Backlog {
    lines: Vec<u8>,
    /// Write out now, without waiting for the batch or the timer.
    urgent: bool,
    /// Lines dropped since the writer last said so.
    dropped: u64,
    /// The writer is writing out what it took.
    writing: bool,
}

impl Backlog {
    const fn new() -> Self {
        Self { lines: Vec::new(), urgent: false, dropped: 0, writing: false }
    }

    /// Adds a line; false when it does not fit in `limit` (the line is dropped).
    fn push(&mut self, line: &[u8], limit: usize) -> bool {
        if self.lines.len() + line.len() > limit {
            self.dropped += 1;
            return false;
        }
        self.lines.extend_from_slice(line);
        true
    }

    fn due(&self) -> bool {
        self.urgent || self.lines.len() >= WRITE_AT
    }

    /// Hands the gathered lines to the writer, leaving `spare` (empty) in their place.
    fn take(&mut self, spare: &mut Vec<u8>) -> u64 {
        std::mem::swap(&mut self.lines, spare);
        self.urgent = false;
        self.writing = true;
        std::mem::take(&mut self.dropped)
    }
}

fn write_forever() {
    let mut batch = Vec::with_capacity(WRITE_AT);
    loop {
        let mut backlog = OUTPUT.lock();
        let deadline = Instant::now() + WRITE_EVERY;
        while !backlog.due() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            backlog = OUTPUT.wake.wait_timeout(backlog, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        let dropped = backlog.take(&mut batch);
        drop(backlog);

        write_out(&batch);
        batch.clear();
        // A stall's backlog is not kept as the batch's size for good.
        batch.shrink_to(WRITE_AT);
        if dropped > 0 {
            tracing::warn!(
                target: "anteroom::log",
                dropped,
                "log lines were dropped: the log output did not keep up (see anteroom_log_lines_dropped_total)"
            );
        }

        OUTPUT.lock().writing = false;
        OUTPUT.written.notify_all();
    }
}

fn write_out(lines: &[u8]) {
    if lines.is_empty() {
        return;
    }
    match FILE.get() {
        Some(file) => {
            let _ = file.lock().unwrap_or_else(PoisonError::into_inner).write_all(lines);
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(lines);
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_drops_whole_lines_and_counts_them() {
        let mut backlog = Backlog::new();
        assert!(backlog.push(b"0123456789\n", 30));
        assert!(backlog.push(b"0123456789\n", 30));
        assert!(!backlog.push(b"0123456789\n", 30), "33 bytes do not fit in 30");
        assert!(backlog.push(b"short\n", 30), "a line that fits still goes in");
        assert!(!backlog.push(b"xyz\n", 30), "nor does 32");
        assert_eq!(backlog.lines, b"0123456789\n0123456789\nshort\n");

        let mut batch = Vec::new();
        assert_eq!(backlog.take(&mut batch), 2, "the writer is told how many were dropped");
        assert_eq!(batch, b"0123456789\n0123456789\nshort\n");
        assert!(backlog.lines.is_empty() && backlog.writing);
        assert_eq!(backlog.take(&mut Vec::new()), 0, "and told once");
    }

    #[test]
    fn a_batch_is_due_when_full_or_urgent() {
        let mut backlog = Backlog::new();
        assert!(!backlog.due());
        backlog.push(&[b'x'; WRITE_AT - 1], BACKLOG_LIMIT);
        assert!(!backlog.due());
        backlog.push(b"\n", BACKLOG_LIMIT);
        assert!(backlog.due());
        backlog.take(&mut Vec::new());
        backlog.urgent = true;
        assert!(backlog.due());
    }
}
