//! A real `redis-server` on a free port, owned by one test: it can be killed, restarted
//! (with or without its data) and wiped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    /// The TLS port, when started with `start_tls`.
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    persistent: bool,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server that keeps nothing on disk.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A server with an fsync-always append-only file, so a kill loses nothing.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    /// Also listening with TLS (certificate from `cert`/`key`), on `tls_port`.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        let tls_port = free_port();
        let extra = [
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        Self::launch_with(false, extra.to_vec(), Some(tls_port))
    }

    /// A node for a Redis Cluster (see `RedisCluster`).
    fn start_cluster_node() -> Self {
        let extra =
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"];
        Self::launch_with(false, extra.iter().map(|s| s.to_string()).collect(), None)
    }

    fn launch(persistent: bool) -> Self {
        Self::launch_with(persistent, Vec::new(), None)
    }

    fn launch_with(persistent: bool, extra: Vec<String>, tls_port: Option<u16>) -> Self {
        let mut server =
            Self { port: free_port(), tls_port, dir: tempfile::tempdir().unwrap(), persistent, extra, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: no goodbye, as when a machine dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP / SIGCONT: a Redis that hangs (connections open, no answers) and comes back.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        }
    }

    /// Starts it again on the same port (with its data, if persistent).
    pub fn restart(&mut self) {
        self.kill();
        let dir: PathBuf = self.dir.path().into();
        let mut command = Command::new(binary());
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(&dir)
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command.args(&self.extra);
        if self.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        self.child = Some(command.spawn().expect("redis-server must be installed (apt-get install redis-server)"));
        self.wait_ready();
    }

    /// Deletes every key (a wipe, as after a failover to an empty replica).
    pub fn flushall(&self) {
        self.cli(&["FLUSHALL"]);
    }

    /// Runs a command with redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli must be installed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["PING"]) == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of `n` masters on free ports, slots spread evenly.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(n: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..n).map(|_| RedisServer::start_cluster_node()).collect();
        let addresses: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            while !node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster did not become ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node serving `key`'s slot.
    pub fn node_of(&self, key: &str) -> &RedisServer {
        let slot: u16 = self.nodes[0].cli(&["CLUSTER", "KEYSLOT", key]).parse().expect("slot");
        let serves = |node: &RedisServer| {
            let nodes = node.cli(&["CLUSTER", "NODES"]);
            let me = nodes.lines().find(|l| l.contains("myself")).unwrap_or_default().to_owned();
            // Fields 9 on: the slot ranges this node serves, as "0-5460" or "42".
            me.split_whitespace().skip(8).any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                matches!((start.parse::<u16>(), end.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
            })
        };
        self.nodes.iter().find(|n| serves(n)).unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }
}

fn free_port() -> u16 {
    // `--port 0` would disable TCP: take a free port from the kernel first.
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server"
    } else {
        "redis-server"
    }
}
