//! `SIGHUP`: the config file read again and swapped in whole, or refused whole.
//!
//! The new gateway is built beside the running one, on the same store (so no place is
//! lost) and the same metrics; its rooms take over what this instance knew of the old
//! ones (paused, revoked sessions, the measured pace) and tick once before the swap. The
//! swap is one pointer: a request is answered wholly by the old config or wholly by the
//! new; connections accepted from then on get the new limits and certificate, open ones
//! keep going. Listen addresses, the store and the log format need a restart: a file that
//! changes them is refused, with one `key: problem` line each.

use super::Prepared;
use crate::admin::Admin;
use crate::config::{changes_needing_restart, Config, ConfigErrors};
use crate::gateway::Gateway;
use crate::server::Server;
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the new rooms' first ticks may take before the swap goes ahead anyway (the
/// state they carry over is the old rooms' own).
const FIRST_TICK_BUDGET: Duration = Duration::from_secs(2);

/// Where a reload reads the config from, and the requests to do it (one per `SIGHUP`).
#[derive(Debug)]
pub struct Reloads {
    pub path: PathBuf,
    pub requests: mpsc::Receiver<()>,
}

/// What runs now, and the places a reload swaps it in.
pub(super) struct Serving {
    pub(super) running: Prepared,
    pub(super) tickers: Vec<JoinHandle<()>>,
    pub(super) current: Arc<ArcSwap<Gateway>>,
    pub(super) servers: Vec<Arc<Server<ArcSwap<Gateway>>>>,
    pub(super) admin: Arc<Admin>,
}

impl Serving {
    /// Reads `path` and swaps its config in, or keeps the running one and says why.
    pub(super) async fn reload(&mut self, path: &Path) {
        let metrics = self.running.metrics.clone();
        match self.prepare(path) {
            Ok(next) => {
                self.swap(next).await;
                metrics.config_reloaded(true);
                let config = &self.running.config;
                tracing::info!(
                    target: "anteroom::reload",
                    file = %path.display(),
                    rooms = config.rooms.len(),
                    "config reloaded"
                );
            }
            Err(problems) => {
                metrics.config_reloaded(false);
                for problem in &problems.0 {
                    tracing::error!(target: "anteroom::reload", file = %path.display(), "{problem}");
                }
                tracing::warn!(
                    target: "anteroom::reload",
                    file = %path.display(),
                    problems = problems.0.len(),
                    "config reload refused: the running config stays in force"
                );
            }
        }
    }

    fn prepare(&self, path: &Path) -> Result<Prepared, ConfigErrors> {
        let config = Config::load(path)?;
        let problems = changes_needing_restart(&self.running.config, &config);
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        let running = &self.running;
        Prepared::assemble(config, running.store.clone(), running.metrics.clone(), Some(running))
            .map_err(|e| ConfigErrors(e.to_string().lines().map(str::to_owned).collect()))
    }

    async fn swap(&mut self, next: Prepared) {
        next.waiting.carry_over(&self.running.waiting);
        let (tickers, first_ticks) = next.waiting.spawn_tickers();
        let _ = tokio::time::timeout(FIRST_TICK_BUDGET, first_ticks).await;
        self.current.store(next.gateway.clone());
        for server in &self.servers {
            let tls = if server.is_tls() { next.tls.clone() } else { None };
            server.reconfigure(&next.config.limits, tls);
        }
        self.admin.reload(next.waiting.clone(), next.config.admin.token.clone());
        next.metrics.keep_rooms(next.config.rooms.iter().map(|r| r.name.as_str()));
        for ticker in std::mem::replace(&mut self.tickers, tickers) {
            ticker.abort();
        }
        self.running = next;
    }
}
