//! The `anteroom` binary run as ops run it: `anteroom run` as a child process, its log
//! read from its stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_anteroom");

/// How `spawn_run` tells the gateway where its config is.
pub enum ConfigFrom {
    Flag,
    Env,
}

/// The child's stdout, line by line.
pub type Lines =
    std::iter::MapWhile<std::io::Lines<BufReader<ChildStdout>>, fn(std::io::Result<String>) -> Option<String>>;

/// Starts `anteroom run` on port 0 in front of a dead origin, with `extra` TOML appended;
/// returns the child and its stdout lines.
pub fn spawn_run(dir: &Path, extra: &str, from: ConfigFrom) -> (Child, Lines) {
    let path = dir.join("anteroom.toml");
    let text = "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[origin]\nurl = \"http://127.0.0.1:9\"\n";
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("run").env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(Stdio::null());
    match from {
        ConfigFrom::Flag => cmd.arg("--config").arg(&path),
        ConfigFrom::Env => cmd.env("ANTEROOM_CONFIG", &path),
    };
    let mut child = cmd.spawn().unwrap();
    let lines: Lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    (child, lines)
}

/// The "anteroom is serving" log line (text format), which names the listeners.
pub fn serving_line(lines: &mut impl Iterator<Item = String>) -> String {
    lines.find(|l| l.contains("anteroom is serving")).expect("started")
}

/// The value of `name=` on a text-format log line ("" when absent).
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    line.split_whitespace().find_map(|f| f.strip_prefix(prefix.as_str())).unwrap_or("")
}

/// The admin listener's address, from the "anteroom is serving" log line.
pub fn admin_address(lines: &mut impl Iterator<Item = String>) -> String {
    let address = field(&serving_line(lines), "admin").to_owned();
    assert!(!address.is_empty(), "admin address");
    address
}

/// SIGTERM, then waits for the exit.
pub fn terminate(child: &mut Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}
