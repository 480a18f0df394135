//! The `anteroom` command line: parses arguments, loads config, sets up tracing and the
//! runtime, then hands over to the library.

mod cli;

use anteroom::config::{Config, DEFAULT_PATH};
use anteroom::token::TokenAlgorithm;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "anteroom", version, about = "A virtual waiting-room gateway in front of your shop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Config file [default: $ANTEROOM_CONFIG or config/anteroom.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the config and print the effective values (secrets masked).
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Exit 0 if the admin listener of the configured gateway answers /healthz (for
    /// container health checks, where no curl is installed).
    Healthcheck {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a new token signing key: a base64 secret (hs256) or a PKCS#8 PEM private key.
    Keygen {
        /// hs256, eddsa or es256
        #[arg(long, default_value = "hs256")]
        alg: String,
    },
    /// Talk to a running gateway's admin API: the one at --url (no config needed, e.g. from
    /// an ops laptop), or the listen.admin of the config file.
    Admin {
        /// The gateway's config, for listen.admin and admin.token (unless --url is given).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The admin listener, like http://10.0.0.5:9090 [env: ANTEROOM_ADMIN_URL]
        #[arg(long)]
        url: Option<String>,
        /// The admin token [env: ANTEROOM_ADMIN_TOKEN; else the config's admin.token]
        #[arg(long)]
        token: Option<String>,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Serve the built-in sample ticket shop alone (no gateway): an origin for trying
    /// anteroom in containers (deploy/docker-compose.yml).
    Shop {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// A fragile shop instead: every request slows down as more are in flight (50 ms
        /// idle, 1.4 s at 30 in flight, past 30 s beyond 90), and beyond 100 it answers 503.
        #[arg(long)]
        fragile: bool,
    },
    /// Play a crowd of simulated buyers against a gateway (or straight at a shop with
    /// --direct) and write a report: report.json and report.html in --out.
    Rehearse(cli::rehearse::RehearseArgs),
    /// Run the gateway in front of a built-in sample shop, on localhost.
    Demo {
        /// Where the demo gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the demo admin listener (metrics) listens.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
        /// Simulated buyers arriving in the first 20 s, so that there is a line to join
        /// (0: a quiet shop).
        #[arg(long, default_value_t = 30)]
        crowd: usize,
        /// The shop behind the gateway: "sample" (event pages and a small checkout) or
        /// "fragile" (slows down with every request in flight, 503 beyond 100).
        #[arg(long, default_value = "sample", value_parser = ["sample", "fragile"])]
        shop: String,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Live numbers of every room, or of one.
    Status { room: Option<String> },
    /// Stop admitting in a room (the line keeps its order; shoppers keep shopping).
    Pause { room: String },
    /// Admit again.
    Resume { room: String },
    /// End the sale: nobody new gets in, the line is told; shoppers inside finish.
    Close { room: String },
    /// Reopen a closed room.
    Open { room: String },
    /// Show a message to everyone waiting in a room (on the queue page within one poll).
    Message {
        room: String,
        /// One line of text, at most 280 characters.
        #[arg(required_unless_present = "clear")]
        text: Option<String>,
        /// Take the message down.
        #[arg(long, conflicts_with = "text")]
        clear: bool,
    },
    /// Change a room's admission rate and/or capacity, for every instance, until restart
    /// of the store's data or `--reset` (the config file is not changed). A rate pins it:
    /// closed-loop admission stands aside until `--auto`.
    Set {
        room: String,
        /// New admit_per_minute (pins the rate).
        #[arg(long)]
        rate: Option<u32>,
        /// Hand a pinned rate back to closed-loop admission (rooms with admission = "adaptive").
        #[arg(long, conflicts_with = "rate")]
        auto: bool,
        /// New max_active_users.
        #[arg(long)]
        capacity: Option<u32>,
        /// Drop the live rate and capacity: the config's values (as reloaded) apply again.
        #[arg(long, conflicts_with_all = ["rate", "auto", "capacity"])]
        reset: bool,
    },
}

fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("ANTEROOM_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

fn main() -> ExitCode {
    let result = run(Cli::parse());
    anteroom::telemetry::flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // One process-wide crypto provider, before anything touches TLS: rustls panics at
    // first use if two providers are compiled in and none was chosen.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::CheckConfig { config } => {
            let path = config_path(config);
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(problems) => {
                    eprintln!("{problems}");
                    return Ok(ExitCode::from(2));
                }
            };
            let masked = config.to_masked_toml();
            // The same objects `run` builds (files read, templates compiled), without a port.
            match runtime()?.block_on(async { anteroom::Prepared::build(config) }) {
                Ok(_) => {
                    println!("# {}: valid", path.display());
                    print!("{masked}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprintln!("{problems}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Run { config } => {
            let path = config_path(config);
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(problems) => {
                    eprintln!("{problems}");
                    return Ok(ExitCode::from(2));
                }
            };
            anteroom::telemetry::init(config.log.format);
            let runtime = runtime()?;
            let prepared = match runtime.block_on(async { anteroom::Prepared::build(config) }) {
                Ok(prepared) => prepared,
                Err(problems) => {
                    anteroom::telemetry::flush();
                    eprintln!("{problems}");
                    return Ok(ExitCode::from(2));
                }
            };
            runtime.block_on(async {
                // Before anything listens: SIGHUP's default action would end the process.
                let reloads = anteroom::Reloads { path, requests: reload_requests()? };
                let listeners = anteroom::Listeners::bind(prepared.config()).await?;
                anyhow::Ok(anteroom::run_reloading(prepared, listeners, shutdown_signal(), Some(reloads)).await?)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { config } => {
            let config = match Config::load(&config_path(config)) {
                Ok(config) => config,
                Err(problems) => {
                    eprintln!("{problems}");
                    return Ok(ExitCode::from(2));
                }
            };
            match anteroom::admin::client::probe_health(config.listen.admin) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Admin { config, url, token, action } => admin(config, url, token, &action),
        Command::Keygen { alg } => {
            let algorithm = match alg.to_ascii_lowercase().as_str() {
                "hs256" => TokenAlgorithm::Hs256,
                "eddsa" => TokenAlgorithm::EdDsa,
                "es256" => TokenAlgorithm::Es256,
                other => {
                    eprintln!("--alg: unknown algorithm `{other}` (use hs256, eddsa or es256)");
                    return Ok(ExitCode::from(2));
                }
            };
            let key = anteroom::token::generate_key(algorithm).map_err(anyhow::Error::msg)?;
            print!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Shop { listen, fragile } => {
            anteroom::telemetry::init(anteroom::config::LogFormat::Text);
            runtime()?.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("--listen: cannot listen on {listen}"))?;
                if fragile {
                    let shape = anteroom::demo::fragile::Shape::SEED;
                    anteroom::demo::fragile::FragileShop::serve(listener, shape)?;
                    tracing::info!(
                        %listen,
                        idle_ms = shape.base.as_millis(),
                        doubles_at = shape.knee,
                        overloaded_beyond = shape.limit,
                        "the fragile shop is serving"
                    );
                } else {
                    anteroom::demo::serve_shop(listener);
                    tracing::info!(%listen, "the sample shop is serving");
                }
                shutdown_signal().await;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rehearse(args) => cli::rehearse::run(args, runtime()?),
        Command::Demo { listen, admin, crowd, shop } => {
            let shop = if shop == "fragile" { anteroom::demo::Shop::Fragile } else { anteroom::demo::Shop::Sample };
            // The terminal shows a summary line; the access log goes to a file, unless
            // RUST_LOG asks for logs on the terminal.
            let log_file =
                std::env::var_os("RUST_LOG").is_none().then(|| std::env::temp_dir().join("anteroom-demo.log"));
            let format = anteroom::config::LogFormat::Text;
            match &log_file {
                Some(path) => anteroom::telemetry::init_to_file(format, path)
                    .with_context(|| format!("cannot write the demo's log to {}", path.display()))?,
                None => anteroom::telemetry::init(format),
            }
            runtime()?.block_on(anteroom::demo::run(listen, admin, crowd, shop, log_file, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `anteroom admin …`: one call to the admin API, its JSON answer printed.
fn admin(
    config: Option<PathBuf>,
    url: Option<String>,
    token: Option<String>,
    action: &AdminAction,
) -> anyhow::Result<ExitCode> {
    use anteroom::admin::client::{self, AdminTarget};
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let token = token.or_else(|| from_env("ANTEROOM_ADMIN_TOKEN"));
    // A URL needs no config file: that is what makes the CLI work from an ops laptop.
    let (target, token) = match url.or_else(|| from_env("ANTEROOM_ADMIN_URL")) {
        Some(url) => match AdminTarget::parse(&url) {
            Ok(target) => (target, token),
            Err(problem) => {
                eprintln!("--url: {problem}");
                return Ok(ExitCode::from(2));
            }
        },
        None => {
            let path = config_path(config);
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(problems) => {
                    eprintln!("{problems}");
                    eprintln!(
                        "(without the gateway's config, name its admin listener with --url or ANTEROOM_ADMIN_URL)"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let token = token.or_else(|| config.admin.token.as_ref().map(|t| t.expose().to_owned()));
            (AdminTarget::local(config.listen.admin), token)
        }
    };
    let (method, path, body) = match action {
        AdminAction::Status { room: None } => ("GET", "/admin/rooms".to_owned(), None),
        AdminAction::Status { room: Some(room) } => ("GET", format!("/admin/rooms/{room}"), None),
        AdminAction::Pause { room } => ("POST", format!("/admin/rooms/{room}/pause"), None),
        AdminAction::Resume { room } => ("POST", format!("/admin/rooms/{room}/resume"), None),
        AdminAction::Close { room } => ("POST", format!("/admin/rooms/{room}/close"), None),
        AdminAction::Open { room } => ("POST", format!("/admin/rooms/{room}/open"), None),
        AdminAction::Message { room, text, .. } => match text {
            Some(text) => (
                "PUT",
                format!("/admin/rooms/{room}/message"),
                Some(serde_json::json!({ "message": text }).to_string()),
            ),
            None => ("DELETE", format!("/admin/rooms/{room}/message"), None),
        },
        AdminAction::Set { room, reset: true, .. } => {
            ("PATCH", format!("/admin/rooms/{room}"), Some(serde_json::json!({ "reset": true }).to_string()))
        }
        AdminAction::Set { room, rate, auto, capacity, reset: false } => {
            let rate = if *auto { serde_json::json!("auto") } else { serde_json::json!(rate) };
            let body = serde_json::json!({ "admit_per_minute": rate, "max_active_users": capacity });
            ("PATCH", format!("/admin/rooms/{room}"), Some(body.to_string()))
        }
    };
    let (status, answer) = client::request(&target, method, &path, token.as_deref(), body.as_deref())
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot reach the admin listener at {target}"))?;
    let pretty = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(answer);
    if (200..300).contains(&status) {
        println!("{pretty}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("admin API at {target} answered {status}: {pretty}");
        Ok(ExitCode::FAILURE)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// One request per SIGHUP (what `systemctl reload` and `kill -HUP` send): reload the
/// config. Requests arriving during a reload fold into one more.
fn reload_requests() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let _ = tx.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    Ok(rx)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
