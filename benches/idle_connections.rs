//! Memory per idle keep-alive connection, anteroom against nginx: each server is given N
//! client connections that make one request and then stay open, idle, as a crowd of
//! browsers on the queue page does between polls. The figure is the growth of the server's
//! resident memory (all its processes) divided by N, for plain HTTP/1.1, HTTP/1.1 over
//! TLS and HTTP/2 over TLS.
//!
//! ```sh
//! cargo bench --bench idle_connections     # args: PLAIN (15000) TLS (4000); needs an
//!                                          # open-files limit above the larger count
//! ANTEROOM_BIN=/tmp/anteroom-before cargo bench --bench idle_connections   # another build
//! ```
//!
//! anteroom's `header_read_timeout` is raised with its `idle_timeout`: before idle
//! connections were parked, hyper's header timer (which also runs while a connection waits
//! for its next request) closed them after it, and every connection is checked to be open
//! when the memory is read.
//!
//! The crowd arrives in batches of 500 connections, one batch every 2.5 s (200 new
//! connections a second, as a sale's opening minute brings them), and is measured 3 s
//! after the last batch: long enough for anteroom to park the last batch's connections
//! (an idle HTTP/1 connection is parked 1–2 s after its last exchange), so the figure is
//! what a crowd that has arrived costs, not the burst of its arrival.
//!
//! anteroom answers a cookie-less queue status (`/_anteroom/status?room=bench`), nginx a
//! `return 200`: both from the server itself, since a connection's cost does not depend
//! on the shop. nginx (Debian's `nginx-light`) is measured when it is installed.

#[path = "../tests/support/tls.rs"]
#[allow(dead_code, unreachable_pub)]
mod tls;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How the crowd arrives, and how long after its last batch it is measured.
const BATCH: usize = 500;
const BATCH_EVERY: Duration = Duration::from_millis(2500);
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Plain,
    TlsH1,
    TlsH2,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "HTTP/1.1",
            Kind::TlsH1 => "HTTP/1.1 over TLS",
            Kind::TlsH2 => "HTTP/2 over TLS",
        }
    }
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args().filter(|a| !a.starts_with("--")).nth(n).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let (plain, tls_count) = (arg(1, 15_000), arg(2, 4_000));
    // The client holds one end of each connection and the server the other.
    let needed = plain.max(tls_count) as u64 + 1_000;
    let limit = open_files_limit();
    if limit < needed {
        eprintln!(
            "the open-files limit is {limit}; {needed} are needed: run `ulimit -n {}` first",
            needed.max(300_000)
        );
        std::process::exit(2);
    }
    let pki = tls::TestPki::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("| server | connections | {} |", [Kind::Plain, Kind::TlsH1, Kind::TlsH2].map(Kind::label).join(" | "));
    println!("|---|---|---|---|---|");
    for server in ["anteroom", "nginx"] {
        if server == "nginx" && Command::new("nginx").arg("-v").stderr(Stdio::null()).status().is_err() {
            println!("(nginx is not installed: apt-get install nginx-light)");
            continue;
        }
        let mut cells = Vec::new();
        for kind in [Kind::Plain, Kind::TlsH1, Kind::TlsH2] {
            let n = if matches!(kind, Kind::Plain) { plain } else { tls_count };
            let per = runtime.block_on(measure(server, kind, n, &pki));
            cells.push(format!("{:.1} KiB", per / 1024.0));
        }
        println!("| {server} | {plain} plain / {tls_count} TLS | {} |", cells.join(" | "));
    }
}

/// Bytes of resident memory per idle connection.
async fn measure(server: &str, kind: Kind, n: usize, pki: &tls::TestPki) -> f64 {
    let running = Server::start(server, pki);
    let addr = if matches!(kind, Kind::Plain) { running.plain } else { running.tls };
    // One connection first, so that what every server sets up on its first request (TLS
    // session state, lazily built tables) is not counted as the crowd's.
    let warm = connect(addr, kind, pki).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = running.rss();
    let mut held = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(BATCH) {
        if chunk > 0 {
            tokio::time::sleep(BATCH_EVERY).await;
        }
        let batch = (chunk * BATCH..n.min((chunk + 1) * BATCH)).map(|_| connect(addr, kind, pki));
        held.extend(all_at_once(batch).await);
    }
    tokio::time::sleep(SETTLE).await;
    let after = running.rss();
    let per = after.saturating_sub(before) as f64 / n as f64;
    let open = held.iter().filter(|client| client.is_open()).count();
    eprintln!("{server} {}: {n} idle, {open} still open, RSS {} -> {} KiB", kind.label(), before / 1024, after / 1024);
    assert_eq!(open, n, "{server} closed idle connections: the figure would not be theirs");
    drop((held, warm));
    per
}

/// Runs the connections' futures at once, as tasks; their clients in order.
async fn all_at_once<F: std::future::Future<Output = Client> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Client> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("connection"));
    }
    out
}

/// A client connection kept open: dropping it closes the connection.
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Client {
    fn is_open(&self) -> bool {
        match self {
            Client::H1(sender) => !sender.is_closed(),
            Client::H2(sender) => !sender.is_closed(),
        }
    }
}

fn connect(
    addr: SocketAddr,
    kind: Kind,
    pki: &tls::TestPki,
) -> impl std::future::Future<Output = Client> + Send + 'static {
    let alpn: &[&[u8]] = if matches!(kind, Kind::TlsH2) { &[b"h2"] } else { &[b"http/1.1"] };
    let connector = TlsConnector::from(pki.client_config(alpn));
    async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let request = || {
            http::Request::get("/_anteroom/status?room=bench").header("host", "localhost").body(Empty::new()).unwrap()
        };
        match kind {
            Kind::Plain => Client::H1(h1(TokioIo::new(tcp), request()).await),
            Kind::TlsH1 => {
                let name = "localhost".try_into().expect("name");
                Client::H1(h1(TokioIo::new(connector.connect(name, tcp).await.expect("tls")), request()).await)
            }
            Kind::TlsH2 => {
                let name = "localhost".try_into().expect("name");
                let io = TokioIo::new(connector.connect(name, tcp).await.expect("tls"));
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.expect("h2 handshake");
                tokio::spawn(conn);
                let answer = sender.send_request(request()).await.expect("answer");
                answer.into_body().collect().await.expect("body");
                Client::H2(sender)
            }
        }
    }
}

async fn h1<I>(io: I, request: http::Request<Empty<Bytes>>) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshake");
    tokio::spawn(conn);
    let answer = sender.send_request(request).await.expect("answer");
    answer.into_body().collect().await.expect("body");
    sender
}

/// anteroom or nginx, listening on a plain and a TLS port.
struct Server {
    plain: SocketAddr,
    tls: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(which: &str, pki: &tls::TestPki) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let (plain, tls, admin) = (free_port(), free_port(), free_port());
        let (cert, key) = (pki.cert_pem.display(), pki.key_pem.display());
        let child = if which == "anteroom" {
            let config = format!(
                "[listen]\nhttp = \"127.0.0.1:{plain}\"\nhttps = \"127.0.0.1:{tls}\"\nadmin = \"127.0.0.1:{admin}\"\n\
                 tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n[limits]\nidle_timeout = \"10m\"\nheader_read_timeout = \"10m\"\n\
                 [origin]\nurl = \"http://127.0.0.1:9\"\n[tokens]\nallow_random_keys = true\n\
                 [[rooms]]\nname = \"bench\"\npaths = [\"/q\"]\n"
            );
            let path = dir.path().join("anteroom.toml");
            std::fs::write(&path, config).expect("config");
            // ANTEROOM_BIN: another build to compare (this one's by default).
            let bin = std::env::var_os("ANTEROOM_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_anteroom").into());
            Command::new(bin)
                .args(["run", "--config"])
                .arg(&path)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("anteroom")
        } else {
            let d = dir.path().display();
            let config = format!(
                "worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;\n\
                 events {{ worker_connections 20000; }}\n\
                 http {{ access_log off; keepalive_timeout 10m; keepalive_requests 1000000;\n\
                 server {{ listen 127.0.0.1:{plain}; listen 127.0.0.1:{tls} ssl http2;\n\
                 ssl_certificate {cert}; ssl_certificate_key {key};\n\
                 location / {{ default_type text/plain; return 200 \"hello\\n\"; }} }} }}\n"
            );
            let path = dir.path().join("nginx.conf");
            std::fs::write(&path, config).expect("config");
            Command::new("nginx").arg("-c").arg(&path).stderr(Stdio::null()).spawn().expect("nginx")
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok() {
                return Self {
                    plain: ([127, 0, 0, 1], plain).into(),
                    tls: ([127, 0, 0, 1], tls).into(),
                    child,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{which} did not start");
    }

    /// Resident bytes of the server and its children (nginx's workers).
    fn rss(&self) -> u64 {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid.to_string()).chain(children.split_whitespace().map(str::to_owned)).map(|p| rss_of(&p)).sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim().trim_end_matches(" kB").trim());
    kib.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024
}

fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}
