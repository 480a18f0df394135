//! The log: one line per request, the level from `RUST_LOG`, and an output that never
//! holds up a request.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::process::{field, serving_line, spawn_run, ConfigFrom, BIN};

#[test]
fn each_request_is_logged_as_one_json_line_with_its_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_run(dir.path(), "[log]\nformat = \"json\"\n", ConfigFrom::Flag);
    let serving: serde_json::Value = lines
        .by_ref()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).expect("every line is JSON"))
        .find(|v| v["message"] == "anteroom is serving")
        .expect("serving line");
    let addr = serving["http"].as_str().expect("http address").to_owned();

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /events/7?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "nothing listens on port 9: {answer}");

    let access: serde_json::Value = lines
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).expect("every line is JSON"))
        .find(|v| v["target"] == "anteroom::access")
        .expect("access line");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/events/7");
    assert_eq!(access["status"], 502);
    assert_eq!(access["decision"], "forwarded");
    assert_eq!(access["client"], "127.0.0.1");
    assert!(access["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{access}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn rust_log_sets_the_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anteroom.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:0\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Nothing at info level tells us it is up: wait for the port.
    let started = Instant::now();
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if started.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("never listened: {e}"),
        }
    };
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("WARN") && logs.contains("forwarding failed"), "warnings are kept: {logs}");
    assert!(!logs.contains("anteroom::access") && !logs.contains("INFO"), "info lines are filtered out: {logs}");
}

/// Sends `count` pipelined requests on one connection and counts the answers; gives up
/// (and says so) when no byte comes for `patience`.
const STATUS: &[u8] = b"HTTP/1.1 502";

fn pipelined(addr: &str, count: usize, patience: Duration) -> Result<usize, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(patience)).unwrap();
    let request = b"GET /events/1 HTTP/1.1\r\nHost: a\r\n\r\n".repeat(count);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let (mut answers, mut tail, mut buf) = (0, Vec::new(), vec![0u8; 64 * 1024]);
    while answers < count {
        let n = stream.read(&mut buf).map_err(|e| format!("after {answers} answers: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {answers} answers"));
        }
        // Count status lines; the last 11 bytes are kept for one cut in two by the read.
        tail.extend_from_slice(&buf[..n]);
        answers += tail.windows(STATUS.len()).filter(|w| *w == STATUS).count();
        tail.drain(..tail.len().saturating_sub(STATUS.len() - 1));
    }
    sender.join().unwrap().map_err(|e| e.to_string())?;
    Ok(answers)
}

/// Appended to `[origin]`: its default rate limit would make these tests slow.
const UNLIMITED: &str = "max_requests_per_second = 1000000\nburst = 1000000\n";

#[test]
fn a_stalled_stdout_holds_up_no_request_and_dropped_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_run(dir.path(), UNLIMITED, ConfigFrom::Flag);
    let serving = serving_line(&mut lines);
    let (http, admin) = (field(&serving, "http").to_owned(), field(&serving, "admin").to_owned());
    // From here on nobody reads the gateway's stdout: the pipe fills (64 KiB) and stays full.

    // Some 8 MB of log (an access line and a warning per request, the origin being dead)
    // against a 4 MiB backlog. Before the log had a writer of its own, the gateway stopped
    // answering after about 128 KiB.
    let started = Instant::now();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let http = http.clone();
            std::thread::spawn(move || pipelined(&http, 6_000, Duration::from_secs(20)))
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.join().unwrap(), Ok(6_000), "every request answered while stdout is stalled");
    }
    let took = started.elapsed();
    let metrics = get(&admin, "/metrics");
    let dropped = support::metric(&metrics, "anteroom_log_lines_dropped_total");
    assert!(dropped > 0, "24,000 requests' lines overflow the backlog (in {took:?}): {dropped}");

    // The output moves again: what was kept comes out, with warnings that count the
    // dropped lines (a warning that did not fit is counted and reported by the next).
    let (sent, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.try_for_each(|line| sent.send(line)));
    let (mut access, mut reported) = (0u64, 0u64);
    let caught_up = Instant::now();
    // Caught up once nothing more comes for a second.
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(1)) {
        assert!(caught_up.elapsed() < Duration::from_secs(60), "the log never caught up");
        access += u64::from(line.contains("anteroom::access"));
        if line.contains("log lines were dropped") {
            reported += field(&line, "dropped").parse::<u64>().expect("a count");
        }
    }
    let dropped = support::metric(&get(&admin, "/metrics"), "anteroom_log_lines_dropped_total");
    assert_eq!(reported, dropped, "the warnings count every dropped line, once");
    assert!(access > 0 && access < 24_000, "the kept lines are written: {access}");

    // And a new request is logged again.
    let answer = get(&http, "/after");
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let logged =
        std::iter::from_fn(|| seen.recv_timeout(Duration::from_secs(30)).ok()).any(|line| line.contains("path=/after"));
    assert!(logged, "the request after the stall is logged");
    let _ = child.kill();
    let _ = child.wait();
}

/// One request on its own connection; the raw answer.
fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn a_stalled_stdout_does_not_keep_the_process_from_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_run(dir.path(), UNLIMITED, ConfigFrom::Flag);
    let http = field(&serving_line(&mut lines), "http").to_owned();
    // Far more log than the pipe holds, and nobody reads it.
    assert_eq!(pipelined(&http, 2_000, Duration::from_secs(20)), Ok(2_000));

    // The exit waits a moment for the output, not forever.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM: the exit waits on the stalled output");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "drained and exited");
    drop(lines);
}
