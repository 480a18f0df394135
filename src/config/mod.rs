//! Typed configuration: the TOML file, `ANTEROOM_SECTION__KEY` overrides, validation.
//!
//! This is the only module that reads the config file, TLS files or the environment, so
//! that every problem an operator can make is reported here, before anything listens,
//! as `key: problem` lines.

mod abuse;
mod builder;
mod bypass;
mod env;
mod restart;
mod rooms;
mod tls;
mod tokens;
mod units;
mod validate;

pub use abuse::{ChallengeMode, Difficulty, EnqueueKey, EnqueueMode, MAX_DIFFICULTY, MIN_DIFFICULTY};
pub use builder::ConfigBuilder;
pub use bypass::{BypassList, BypassRule};
pub(crate) use restart::changes_needing_restart;
pub use rooms::{mask_url_password, AdmissionMode, Backend, OnFailure, OpensAt, RoomConfig, StoreConfig};
pub use tls::TlsFiles;
pub use tokens::{TokenKey, Tokens};
pub use units::{format_duration, parse_duration, ByteSize, HumanDuration, Secret};

use http::Uri;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Shortest admin token accepted: anything shorter is guessable, and an empty one usually
/// comes from an unset variable (`ANTEROOM_ADMIN_TOKEN=`).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Default location of the config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/anteroom.toml";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub listen: Listen,
    pub origin: Origin,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub store: StoreConfig,
    /// The waiting rooms; paths no room covers are proxied straight through.
    #[serde(default)]
    pub rooms: Vec<RoomConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Plain HTTP listener (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub http: Option<SocketAddr>,
    /// TLS listener; HTTP/2 is negotiated by ALPN.
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Admin listener (health, readiness, metrics). Keep it off the public network.
    pub admin: SocketAddr,
    /// Peers allowed to tell us the client address (`X-Forwarded-For`, `Forwarded`).
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            http: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            https: None,
            tls_cert: None,
            tls_key: None,
            admin: SocketAddr::from(([127, 0, 0, 1], 9090)),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// Where the shop lives: `http://host:port` or `https://host:port`.
    #[serde(with = "uri_text")]
    pub url: Uri,
    #[serde(default = "defaults::max_requests_per_second")]
    pub max_requests_per_second: u32,
    /// Requests allowed above the steady rate after a quiet period.
    #[serde(default = "defaults::burst")]
    pub burst: u32,
    /// Requests at the origin at once, at most.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: u32,
    /// Find the origin's own in-flight limit below `max_in_flight` (from how its response
    /// time grows with what is in flight). Default: on when a room's admission is
    /// adaptive — without it a shop whose throughput collapses past some load can be
    /// tipped over by the rate's probing before any signal shows.
    #[serde(default)]
    pub adaptive_in_flight: Option<bool>,
    /// How long a request may wait for its slot before it is shed with `503`.
    #[serde(default = "defaults::max_wait")]
    pub max_wait: HumanDuration,
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Time allowed for the response headers, and for each gap between body chunks.
    #[serde(default = "defaults::response_timeout")]
    pub response_timeout: HumanDuration,
    #[serde(default)]
    pub host_header: HostHeader,
    /// Keep below the origin's own keep-alive timeout (see docs/ARCHITECTURE.md).
    #[serde(default = "defaults::pool_idle_timeout")]
    pub pool_idle_timeout: HumanDuration,
    #[serde(default = "defaults::pool_max_idle")]
    pub pool_max_idle: usize,
    /// Extra CA certificates (PEM) trusted for an `https://` origin.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostHeader {
    /// Forward the client's `Host` (the shop sees its public name).
    #[default]
    Preserve,
    /// Send the origin's own authority as `Host`.
    Origin,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: ByteSize,
    pub max_body_bytes: ByteSize,
    /// Request bodies up to this size are read whole before the request takes an origin
    /// slot, so a client trickling a small body holds no slot while it does.
    pub body_buffer_bytes: ByteSize,
    /// Longest pause allowed between two pieces of a request body.
    pub body_read_timeout: HumanDuration,
    /// Slowest average upload accepted (bytes per second) for a body streamed to the
    /// origin (one larger than `body_buffer_bytes`); 0 turns the check off.
    pub min_upload_rate: ByteSize,
    pub header_read_timeout: HumanDuration,
    pub idle_timeout: HumanDuration,
    pub shutdown_grace: HumanDuration,
    pub allow_upgrade: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: ByteSize(64 << 10),
            max_body_bytes: ByteSize(100 << 20),
            body_buffer_bytes: ByteSize(64 << 10),
            body_read_timeout: HumanDuration::secs(10),
            min_upload_rate: ByteSize(8 << 10),
            header_read_timeout: HumanDuration::secs(10),
            idle_timeout: HumanDuration::secs(60),
            shutdown_grace: HumanDuration::secs(30),
            allow_upgrade: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Bearer token for the admin API; also `ANTEROOM_ADMIN_TOKEN`.
    pub token: Option<Secret>,
}

mod defaults {
    use super::HumanDuration;
    pub(super) fn max_requests_per_second() -> u32 {
        100
    }
    pub(super) fn burst() -> u32 {
        20
    }
    pub(super) fn max_in_flight() -> u32 {
        64
    }
    pub(super) fn max_wait() -> HumanDuration {
        HumanDuration::secs(2)
    }
    pub(super) fn connect_timeout() -> HumanDuration {
        HumanDuration::secs(3)
    }
    pub(super) fn response_timeout() -> HumanDuration {
        HumanDuration::secs(30)
    }
    pub(super) fn pool_idle_timeout() -> HumanDuration {
        HumanDuration::secs(20)
    }
    pub(super) fn pool_max_idle() -> usize {
        256
    }
}

mod uri_text {
    use http::Uri;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uri, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e| de::Error::custom(format!("`{text}` is not a URL: {e}")))
    }

    pub(super) fn serialize<S: Serializer>(uri: &Uri, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(uri)
    }
}

/// Everything wrong with a config, one `key: problem` line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, line) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What the files named by the config hold, parsed.
#[derive(Debug)]
pub struct Files {
    pub tokens: crate::token::TokenKeys,
    /// The `https` listener's certificate chain and key, if it is on.
    pub tls: Option<TlsFiles>,
}

impl Config {
    /// Reads `path`, applies the process environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("config: cannot read {}: {e}", path.display())]))?;
        Self::from_toml(&text, std::env::vars())
    }

    /// Parses TOML text with the given environment (`ANTEROOM_SECTION__KEY` overrides).
    pub fn from_toml(text: &str, vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigErrors> {
        let mut table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| ConfigErrors(vec![describe_syntax_error(text, &e)]))?;
        let from_env = env::apply_overrides(&mut table, vars)?;
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigErrors(vec![describe_type_error(&e, &from_env)]))?;
        config.validate().map_err(|e| name_variables(e, &from_env))?;
        Ok(config)
    }

    /// Reads and parses the files the config names, once: the token keys and the TLS
    /// certificate. Every problem of both is reported.
    pub fn files(&self) -> Result<Files, ConfigErrors> {
        self.files_with(&Tokens::random_secret()?)
    }

    /// As `files`, signing with `random` when no token keys are configured (a reload
    /// keeps the process's random key).
    pub(crate) fn files_with(&self, random: &Secret) -> Result<Files, ConfigErrors> {
        let tokens = self.tokens.load_with(random);
        let tls = self.tls_files();
        match (tokens, tls) {
            (Ok(tokens), Ok(tls)) => Ok(Files { tokens, tls }),
            (tokens, tls) => {
                let mut problems = tokens.err().map(|e| e.0).unwrap_or_default();
                problems.extend(tls.err().map(|e| e.0).unwrap_or_default());
                Err(ConfigErrors(problems))
            }
        }
    }

    /// Loads the TLS certificate chain and key of the `https` listener, if configured.
    fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigErrors> {
        match (&self.listen.https, &self.listen.tls_cert, &self.listen.tls_key) {
            (Some(_), Some(cert), Some(key)) => TlsFiles::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// The effective config as TOML, with secrets masked.
    pub fn to_masked_toml(&self) -> String {
        // Keys whose default follows another key are printed with the value they take.
        let mut effective = self.clone();
        for room in &mut effective.rooms {
            room.rejoin_grace = Some(room.rejoin_grace());
        }
        toml::to_string_pretty(&effective).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

/// Appends `(set by VARIABLE)` to the problems of keys that came from the environment.
fn name_variables(errors: ConfigErrors, from_env: &[(String, String)]) -> ConfigErrors {
    let lines = errors
        .0
        .into_iter()
        .map(|line| {
            let key = line.split(':').next().unwrap_or("");
            match from_env.iter().find(|(k, _)| k == key) {
                Some((_, var)) => format!("{line} (set by {var})"),
                None => line,
            }
        })
        .collect();
    ConfigErrors(lines)
}

fn describe_syntax_error(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
    let message = e.message().trim();
    match line {
        Some(line) => format!("config: TOML syntax error on line {line}: {message}"),
        None => format!("config: TOML syntax error: {message}"),
    }
}

fn describe_type_error(e: &serde_path_to_error::Error<toml::de::Error>, from_env: &[(String, String)]) -> String {
    let path = e.path().to_string();
    let message = e.inner().message().trim().to_owned();
    // serde reports an unknown key at its parent: name the key itself.
    let (key, problem) = match message.strip_prefix("unknown field `") {
        Some(rest) => {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            // The path usually names the unknown key already; at the top level it does not.
            let key = if path == "." { name.to_owned() } else { path };
            (key, format!("unknown key ({})", expected.trim_start_matches(", ")))
        }
        None => match message.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.trim_end_matches('`');
                let key = if path == "." { name.to_owned() } else { format!("{path}.{name}") };
                (key, "missing (required)".to_owned())
            }
            None => (path, message),
        },
    };
    match from_env.iter().find(|(k, _)| *k == key) {
        Some((_, var)) => format!("{key}: {problem} (set by {var})"),
        None => format!("{key}: {problem}"),
    }
}

#[cfg(test)]
mod tests;
