//! What the queue benchmarks share: their own `redis-server`, the release `anteroom` run
//! from a config, and HTTP/1.1 clients that collect signed queue cookies.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        let redis = Self { port, child };
        for _ in 0..200 {
            if redis.cli(&["PING"]) == "PONG" {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out =
            Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Seconds of CPU (user and system) the server has used since it started.
    pub fn cpu_seconds(&self) -> f64 {
        let info = self.cli(&["INFO", "cpu"]);
        let field = |name: &str| -> f64 {
            info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).expect("used_cpu")
        };
        field("used_cpu_user:") + field("used_cpu_sys:")
    }

    /// Calls and microseconds of one command since the last `CONFIG RESETSTAT`.
    pub fn command_stats(&self, command: &str) -> (u64, u64) {
        (self.command_stat(command, "calls="), self.command_stat(command, "usec="))
    }

    /// Calls of one command that ended in an error reply.
    pub fn failed_calls(&self, command: &str) -> u64 {
        self.command_stat(command, "failed_calls=")
    }

    fn command_stat(&self, command: &str, field: &str) -> u64 {
        let info = self.cli(&["INFO", "commandstats"]);
        let line = info.lines().find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:"))).unwrap_or_default();
        line.split(',').find_map(|kv| kv.strip_prefix(field)).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn used_memory(&self) -> u64 {
        self.cli(&["INFO", "memory"])
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// A gateway on free ports whose config is `rest` after the listeners and an origin
    /// nobody asks (`[tokens]`, `[store]`, `[[rooms]]`).
    pub fn start(rest: &str) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let (http, admin) = (free_port(), free_port());
        let config = format!(
            "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n\
             [origin]\nurl = \"http://127.0.0.1:9\"\n{rest}\n"
        );
        let path = dir.path().join("anteroom.toml");
        std::fs::write(&path, config).expect("config");
        // ANTEROOM_BIN runs another build (an earlier commit's, for before and after).
        let bin = std::env::var("ANTEROOM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_anteroom").to_owned());
        let mut child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("anteroom");
        let addr = SocketAddr::from(([127, 0, 0, 1], http));
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Self { addr, child, _dir: dir };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("anteroom did not start");
    }

    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").to_owned()))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cookie-less status calls: each hands out a signed queue cookie and touches no store.
pub async fn fetch_cookies(addr: SocketAddr, n: usize, connections: usize) -> (Arc<Vec<String>>, f64) {
    let cookies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (cookies, next) = (cookies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let req = Request::get("/_anteroom/status?room=bench")
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())
                    .expect("req");
                let response = sender.send_request(req).await.expect("response");
                let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie");
                let pair = cookie.split(';').next().expect("pair").to_owned();
                response.into_body().collect().await.expect("body");
                cookies.lock().expect("lock").push(pair);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let cookies = std::mem::take(&mut *cookies.lock().expect("lock"));
    (Arc::new(cookies), rate)
}

pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}
