//! Test harness: a real gateway on port 0, a recording origin, and plain clients.
// Each test binary uses a different part of the harness, and none of it is an API.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod client;
pub mod jar;
pub mod origin;
pub mod process;
pub mod redis;
pub mod sale;
pub mod stores;
pub mod tls;
pub mod visitor;

use anteroom::config::Config;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A gateway running in this test process.
pub struct Gateway {
    pub addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), anteroom::app::AppError>>,
    /// For a gateway started from a file: asks it to reload the file (as SIGHUP does).
    reloads: Option<tokio::sync::mpsc::Sender<()>>,
}

impl Gateway {
    /// Starts a gateway in front of `origin` with default settings.
    pub async fn start(origin: &str) -> Self {
        Self::with_config(origin, "", "").await
    }

    /// `origin_keys` go into `[origin]`; `more` is appended as whole sections.
    pub async fn with_config(origin: &str, origin_keys: &str, more: &str) -> Self {
        // Protection stays out of the way unless a test sets it.
        let mut origin_keys = origin_keys.to_owned();
        for (key, default) in [("max_requests_per_second", "100000"), ("burst", "100000")] {
            if !origin_keys.contains(key) {
                origin_keys.push_str(&format!("\n{key} = {default}"));
            }
        }
        let text = format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
             [origin]\nurl = \"{origin}\"\n{origin_keys}\n{more}"
        );
        let config = Config::from_toml(&text, []).unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{text}"));
        Self::from_config(config).await
    }

    /// A config in front of `origin` for a gateway on port 0, with origin protection out
    /// of the way unless the test sets it: the typed way to write a test's settings.
    pub fn config(origin: &str) -> anteroom::config::ConfigBuilder {
        Config::builder(origin)
            .listen(|listen| {
                listen.http = Some(([127, 0, 0, 1], 0).into());
                listen.admin = ([127, 0, 0, 1], 0).into();
            })
            .origin(|origin| {
                origin.max_requests_per_second = 100_000;
                origin.burst = 100_000;
            })
    }

    /// A gateway whose admin API takes `token`, with one room `sale` on `/tickets` at the
    /// default limits.
    pub async fn with_admin_token(origin: &str, token: &str) -> Self {
        let config = Self::config(origin).admin(|admin| admin.token = Some(anteroom::config::Secret::new(token))).room(
            "sale",
            &["/tickets"],
            |_| {},
        );
        Self::built(config).await
    }

    /// Starts a gateway from a built config (see [`Gateway::config`]).
    pub async fn built(config: anteroom::config::ConfigBuilder) -> Self {
        let config = config.build().unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        Self::from_config(config).await
    }

    pub async fn from_config(config: Config) -> Self {
        Self::launch(config, None).await
    }

    /// Starts a gateway from a config file that [`Gateway::reload`] reads again.
    pub async fn from_file(path: &std::path::Path) -> Self {
        let config = Config::load(path).unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        Self::launch(config, Some(path.to_owned())).await
    }

    /// Reloads the config file, as SIGHUP does; returns whether it was applied.
    pub async fn reload(&self) -> bool {
        let count = |text: &str, result: &str| {
            let line = format!("anteroom_config_reloads_total{{result=\"{result}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(line.as_str())).map_or(0, |n| n.parse::<u64>().unwrap())
        };
        let before = self.metrics().await;
        let (applied, refused) = (count(&before, "success"), count(&before, "failure"));
        self.reloads.as_ref().expect("a gateway started from_file").send(()).await.expect("gateway running");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = self.metrics().await;
            if count(&now, "success") > applied {
                return true;
            }
            if count(&now, "failure") > refused {
                return false;
            }
            assert!(std::time::Instant::now() < deadline, "the reload did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn launch(config: Config, file: Option<std::path::PathBuf>) -> Self {
        let listeners = anteroom::Listeners::bind(&config).await.expect("bind");
        let addr = listeners.http.as_ref().expect("http listener").local_addr().expect("addr");
        let https_addr = listeners.https.as_ref().map(|l| l.local_addr().expect("addr"));
        let admin = listeners.admin.local_addr().expect("admin addr");
        let (stop, stopped) = oneshot::channel();
        let (reloads, requests) = tokio::sync::mpsc::channel(1);
        let reloading = file.map(|path| anteroom::Reloads { path, requests });
        let task = tokio::spawn(async move {
            let prepared = anteroom::Prepared::build(config)?;
            let stopped = async {
                let _ = stopped.await;
            };
            anteroom::run_reloading(prepared, listeners, stopped, reloading).await
        });
        // Tests start once the gateway says it is ready (it has read its rooms' state).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while client::try_send(admin, ready_probe()).await.map(|a| a.status) != Ok(http::StatusCode::OK) {
            assert!(std::time::Instant::now() < deadline, "the gateway did not become ready");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Self { addr, https_addr, admin, stop: Some(stop), task, reloads: Some(reloads) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks the gateway to shut down (as SIGTERM would) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for `serve` to return.
    pub async fn shutdown(mut self) -> Result<(), anteroom::app::AppError> {
        self.begin_shutdown();
        (&mut self.task).await.expect("serve task panicked")
    }

    /// A call to the admin API: the status and the JSON answer (`null` if not JSON).
    pub async fn admin_api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut req = http::Request::builder().method(method).uri(path).header("host", "admin");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = http_body_util::Full::new(bytes::Bytes::from(body.to_owned()));
        let answer = client::send(self.admin, req.body(body).expect("request")).await;
        let json = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        (answer.status.as_u16(), json)
    }

    /// Someone takes the room's first slot (a quiet room lets the first visitor in at
    /// once), so that everyone after them queues. `path` is in the room.
    pub async fn take_first_slot(&self, path: &str) -> visitor::Visitor {
        let mut first = visitor::Visitor::new(self.addr);
        assert_eq!(first.get(path).await.body_text(), "hello", "the first visitor walks in");
        first
    }

    pub async fn metrics(&self) -> String {
        client::get(self.admin, "/metrics").await.body_text()
    }
}

fn ready_probe() -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get("/readyz").header("host", "admin").body(Default::default()).expect("request")
}

/// The value of a metric line such as `name{label="x"} 3`, or 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .map(|v| v as u64)
        .unwrap_or(0)
}
