//! Wires the gateway from a `Config` and runs its listeners until shutdown, then drains;
//! [`reload`] swaps in a new config file's gateway while it runs.

mod reload;

use crate::admin::{Admin, Health};
use crate::config::{Backend, Config, ConfigErrors, Secret, Tokens};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::protect::Protection;
use crate::proxy::{ClientError, Proxy};
use crate::room::WaitingRoom;
use crate::server::{threads, tls, Server, ServingThreads};
use crate::store::{MemoryStore, RedisStore, Store, StoreFault};
use arc_swap::ArcSwap;
pub use reload::Reloads;
use reload::Serving;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The sockets the gateway serves on, bound before `serve` so that callers (and tests on
/// port 0) know the addresses.
#[derive(Debug)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &Config) -> Result<Self, AppError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| AppError::Bind { key, addr, source: e })
        };
        Ok(Self {
            http: match config.listen.http {
                Some(addr) => Some(bind(addr, "listen.http").await?),
                None => None,
            },
            https: match config.listen.https {
                Some(addr) => Some(bind(addr, "listen.https").await?),
                None => None,
            },
            admin: bind(config.listen.admin, "listen.admin").await?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("listen.tls_cert: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Store(#[from] StoreFault),
    #[error("cannot start the serving threads: {0}")]
    Threads(std::io::Error),
}

/// The store the config names. Redis is connected lazily: the gateway starts, and answers
/// per `store.on_failure`, while Redis is still away.
pub fn open_store(config: &Config) -> Result<Store, StoreFault> {
    Ok(match config.store.backend {
        Backend::Memory => Store::Memory(MemoryStore::default()),
        Backend::Redis => {
            let ca_pem = match &config.store.redis_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    StoreFault::Setup(format!("store.redis_ca_file: cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
            let store = RedisStore::connect(&config.store.redis_url, &config.store.redis_cluster, ca_pem)?;
            Store::Redis(Box::new(store))
        }
    })
}

/// Everything the gateway runs with, built from a `Config` without binding a port: the
/// files read and parsed, the queue pages compiled, the store and origin client set up.
/// `check-config` builds exactly this to prove a config; `serve` runs it; a reload builds
/// another on the running store.
pub struct Prepared {
    config: Config,
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    waiting: Arc<WaitingRoom>,
    gateway: Arc<Gateway>,
    proxy: Arc<Proxy>,
    protection: Arc<Protection>,
    adaptive_in_flight: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The key tokens and cookies are signed with when `tokens.keys` is empty, kept for
    /// the life of the process.
    random_key: Secret,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("store", &self.store).field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

impl Prepared {
    pub fn build(config: Config) -> Result<Self, AppError> {
        let metrics = Arc::new(Metrics::with_rooms(config.rooms.iter().map(|r| r.name.as_str())));
        let store = Arc::new(open_store(&config)?);
        Self::assemble(config, store, metrics, None)
    }

    /// Builds on a store and metrics; a reload passes what runs now, whose origin pool
    /// and origin budget carry on when `[origin]` (and for the pool `[limits]`) did not
    /// change, so a reload neither reconnects to the shop nor lets a second budget in.
    fn assemble(
        config: Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        running: Option<&Prepared>,
    ) -> Result<Self, AppError> {
        let random_key = match running {
            Some(running) => running.random_key.clone(),
            None => Tokens::random_secret()?,
        };
        let files = config.files_with(&random_key)?;
        let adaptive_in_flight =
            config.origin.adaptive_in_flight.unwrap_or_else(|| config.rooms.iter().any(|room| room.is_adaptive()));
        let same_origin = running.filter(|r| same(&r.config.origin, &config.origin));
        let proxy = match same_origin.filter(|r| same(&r.config.limits, &config.limits)) {
            Some(running) => running.proxy.clone(),
            None => Arc::new(Proxy::new(&config)?),
        };
        let protection = match same_origin.filter(|r| r.adaptive_in_flight == adaptive_in_flight) {
            Some(running) => running.protection.clone(),
            None => Arc::new(Protection::new(&config.origin, adaptive_in_flight)),
        };
        let waiting = Arc::new(WaitingRoom::new(&config, store.clone(), files.tokens, metrics.clone())?);
        let gateway = Arc::new(Gateway::new(
            proxy.clone(),
            protection.clone(),
            metrics.clone(),
            waiting.clone(),
            config.listen.trusted_proxies.clone(),
            &config.limits,
        ));
        let tls = match files.tls {
            Some(files) => Some(tls::acceptor(files)?),
            None => None,
        };
        Ok(Self { config, metrics, store, waiting, gateway, proxy, protection, adaptive_in_flight, tls, random_key })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Two config sections are the same when they print the same.
fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    toml::to_string(a).ok() == toml::to_string(b).ok()
}

/// Builds the gateway from `config` and runs it until `shutdown` resolves (see [`run`]).
pub async fn serve(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    run(Prepared::build(config)?, listeners, shutdown).await
}

/// Runs the gateway until `shutdown` resolves, then drains (see [`run_reloading`]).
pub async fn run(prepared: Prepared, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    run_reloading(prepared, listeners, shutdown, None).await
}

/// Runs the gateway until `shutdown` resolves, reloading the config file at each of
/// `reloads`' requests (`SIGHUP`); then drains: readiness turns false, the public
/// listeners close, in-flight requests get `limits.shutdown_grace` to finish.
pub async fn run_reloading(
    prepared: Prepared,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    reloads: Option<Reloads>,
) -> Result<(), AppError> {
    if prepared.config.tokens.keys.is_empty() {
        tracing::warn!("tokens.keys is empty: signing with a random key; tokens will not survive a restart or be shared with other instances");
    }
    if prepared.config.rooms.is_empty() {
        tracing::warn!("no [[rooms]] configured: every request goes straight to the shop, with no line");
    }
    let health = Arc::new(Health::default());
    let (tickers, first_ticks) = prepared.waiting.spawn_tickers();
    let config = prepared.config.clone();

    let address = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
    let (http_addr, https_addr) = (address(&listeners.http), address(&listeners.https));
    let admin_addr = listeners.admin.local_addr().ok();
    let (stop_public, public_stopped) = watch::channel(false);
    let current = Arc::new(ArcSwap::new(prepared.gateway.clone()));
    let mut servers = Vec::new();
    let mut public = Vec::new();
    for (listener, tls) in [(listeners.http, None), (listeners.https, prepared.tls.clone())] {
        if let Some(listener) = listener {
            let server =
                Arc::new(Server::new(current.clone(), &config.limits, tls, prepared.metrics.client_connections()));
            servers.push(server.clone());
            let serving = ServingThreads::start(server, listener, threads::count(), public_stopped.clone());
            public.push(serving.map_err(AppError::Threads)?);
        }
    }
    let (stop_admin, admin_stopped) = watch::channel(false);
    let admin = Arc::new(Admin::new(
        prepared.metrics.clone(),
        health.clone(),
        prepared.waiting.clone(),
        config.admin.token.clone(),
    ));
    let history = admin.spawn_history();
    let admin_server = Arc::new(Server::new(admin.clone(), &config.limits, None, Arc::default()));
    let admin_task = tokio::spawn(admin_server.run(listeners.admin, admin_stopped));
    tracing::info!(
        http = http_addr.as_deref().unwrap_or("off"),
        https = https_addr.as_deref().unwrap_or("off"),
        admin = %admin_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        origin = %config.origin.url,
        store = prepared.store.backend(),
        rooms = config.rooms.len(),
        "anteroom is serving"
    );
    // Ready once every room's state (paused, closed, live limits) has been read; the first
    // ticks are bounded by the store's call timeout, so an unreachable store delays this
    // by under a second.
    first_ticks.await;
    health.mark_started();

    let mut serving = Serving { running: prepared, tickers, current, servers, admin };
    tokio::pin!(shutdown);
    match reloads {
        Some(mut reloads) => loop {
            tokio::select! {
                () = &mut shutdown => break,
                request = reloads.requests.recv() => match request {
                    Some(()) => serving.reload(&reloads.path).await,
                    None => {
                        shutdown.as_mut().await;
                        break;
                    }
                },
            }
        },
        None => shutdown.await,
    }
    let grace = serving.running.config.limits.shutdown_grace.0;
    tracing::info!(?grace, "shutting down: draining connections");
    health.start_draining();
    let _ = stop_public.send(true);
    let drained = tokio::time::timeout(grace, async {
        for threads in &mut public {
            threads.finished().await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over: cutting the connections still open");
        for threads in &mut public {
            threads.cut();
            threads.finished().await;
        }
    }
    for ticker in &serving.tickers {
        ticker.abort();
    }
    history.abort();
    let _ = stop_admin.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), admin_task).await;
    tracing::info!("stopped");
    Ok(())
}
