//! `anteroom rehearse`: the day, before the day. A crowd of simulated buyers, driven from
//! one connection pool, against a gateway (or straight at the shop, `--direct`), and a
//! report of what the buyers and the shop went through.
//!
//! - [`script`] what a buyer does once inside (a TOML list of requests)
//! - [`client`] the crowd's connection pool
//! - [`buyer`]  one buyer's visit, written down request by request
//! - [`report`] the records summed up: `report.json`
//! - [`watch`]  what the gateway itself said meanwhile, read from its admin listener
//! - [`capacity`] `--find-capacity`: where the shop's p90 crossed the target
//! - [`page`]   the report as a self-contained `report.html`

mod buyer;
pub mod capacity;
mod client;
mod page;
pub mod report;
pub mod script;
pub mod watch;

use buyer::Crowd;
pub use report::Report;
pub use script::Script;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// The largest crowd one rehearsal plays.
pub const MAX_CROWD: usize = 1_000_000;
/// The longest a rehearsal runs.
pub const MAX_DURATION: Duration = Duration::from_secs(4 * 3600);

/// How the crowd arrives over `arrival_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Everyone at the start (the sale opens and the link goes out).
    AtOnce,
    /// Ever more per second, up to the end.
    Ramp,
    /// Evenly.
    Spread,
}

impl Arrival {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "at-once" => Some(Arrival::AtOnce),
            "ramp" => Some(Arrival::Ramp),
            "spread" => Some(Arrival::Spread),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Arrival::AtOnce => "at-once",
            Arrival::Ramp => "ramp",
            Arrival::Spread => "spread",
        }
    }

    /// When buyer `i` of `n` is due.
    fn due(self, i: usize, n: usize, over: Duration) -> Duration {
        let share = i as f64 / n.max(1) as f64;
        match self {
            Arrival::AtOnce => Duration::ZERO,
            // The arrival rate grows linearly: the i-th of n comes at over × √(i/n).
            Arrival::Ramp => over.mul_f64(share.sqrt()),
            Arrival::Spread => over.mul_f64(share),
        }
    }
}

/// A rehearsal, as asked for on the command line.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: String,
    pub direct: bool,
    pub crowd: usize,
    pub arrival: Arrival,
    pub arrival_s: Duration,
    pub duration: Duration,
    pub connections: usize,
    pub script: Script,
    /// The share of buyers who give up while waiting (each after 10 s to 2 min).
    pub abandon: f64,
    pub allow_remote: bool,
    pub out: PathBuf,
    /// The gateway's admin listener (`http://host:port`), read every 2 s for the report.
    pub admin: Option<String>,
    pub admin_token: Option<String>,
    /// Ramp the crowd and find where the shop's p90 crossed the target.
    pub find_capacity: bool,
    /// The p90 the shop should stay under; otherwise the room's `target_origin_latency`,
    /// read through `admin`.
    pub latency_target: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// The plan itself is wrong (exit 2).
    #[error("{0}")]
    Plan(String),
    /// The target cannot be reached.
    #[error("cannot reach {target}: {why}")]
    Unreachable { target: String, why: String },
    #[error("cannot write the report to {path}: {why}")]
    Write { path: String, why: String },
}

/// Where the crowd goes: resolved, and checked to be loopback unless remote is allowed.
async fn resolve(plan: &Plan) -> Result<(SocketAddr, String), RehearseError> {
    let uri: http::Uri = plan.target.parse().map_err(|e| RehearseError::Plan(format!("`{}`: {e}", plan.target)))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(RehearseError::Plan(format!(
                "`{}`: rehearse over plain HTTP (the gateway's http listener, or a port-forward to it)",
                plan.target
            )))
        }
        _ => return Err(RehearseError::Plan(format!("`{}`: give an http:// URL", plan.target))),
    }
    let authority = uri.authority().ok_or_else(|| RehearseError::Plan(format!("`{}`: no host", plan.target)))?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = authority.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| RehearseError::Unreachable { target: plan.target.clone(), why: e.to_string() })?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(RehearseError::Unreachable { target: plan.target.clone(), why: "no address".into() });
    };
    if !plan.allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(RehearseError::Plan(format!(
            "`{}` is not on this machine: a crowd against a real host must never start by accident — pass \
             --allow-remote when it is your staging shop",
            plan.target
        )));
    }
    tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| RehearseError::Unreachable { target: plan.target.clone(), why: "no answer within 3 s".into() })?
        .map_err(|e| RehearseError::Unreachable { target: plan.target.clone(), why: e.to_string() })?;
    Ok((addr, authority.as_str().to_owned()))
}

/// Plays the crowd and writes the report into `plan.out`; `progress` gets a line every
/// two seconds.
pub async fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Report, RehearseError> {
    if plan.crowd == 0 || plan.crowd > MAX_CROWD {
        return Err(RehearseError::Plan(format!("--crowd: 1 to {MAX_CROWD} buyers")));
    }
    if plan.duration.is_zero() || plan.duration > MAX_DURATION || plan.arrival_s > plan.duration {
        return Err(RehearseError::Plan("--duration: up to 4h, and at least --arrival-s".to_owned()));
    }
    if !(0.0..=1.0).contains(&plan.abandon) {
        return Err(RehearseError::Plan("--abandon: a share between 0 and 1".to_owned()));
    }
    if plan.find_capacity && plan.arrival != Arrival::Ramp {
        return Err(RehearseError::Plan("--find-capacity ramps the crowd: leave --arrival out".to_owned()));
    }
    let (addr, host) = resolve(plan).await?;
    let watch = match &plan.admin {
        Some(url) => Some(watch::Watch::connect(url, plan.admin_token.clone(), &plan.script.steps[0].path).await?),
        None => None,
    };
    let latency_target =
        plan.latency_target.map(|t| t.as_secs_f64() * 1000.0).or_else(|| watch.as_ref().and_then(|w| w.target_ms));
    if plan.find_capacity && latency_target.is_none() {
        return Err(RehearseError::Plan(
            "--find-capacity needs the p90 the shop should stay under: --target 300ms, or --admin URL of a \
             gateway whose room has target_origin_latency"
                .to_owned(),
        ));
    }
    std::fs::create_dir_all(&plan.out)
        .map_err(|e| RehearseError::Write { path: plan.out.display().to_string(), why: e.to_string() })?;
    let started_at = crate::time::rfc3339(crate::time::unix_ms() / 1000);
    let started = tokio::time::Instant::now();
    let crowd = Arc::new(Crowd {
        pool: client::Pool::new(addr, host, plan.connections),
        script: plan.script.clone(),
        started,
        deadline: started + plan.duration,
        now: buyer::Progress::default(),
    });
    let mut seed = crate::time::unix_us() | 1;
    let mut random = move || {
        // xorshift: the crowd's own dice, nothing to secure.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (stop_watching, stop) = tokio::sync::oneshot::channel();
    let watching = watch.map(|watch| tokio::spawn(watch.follow(started, stop)));
    let mut buyers = tokio::task::JoinSet::new();
    for i in 0..plan.crowd {
        let due = plan.arrival.due(i, plan.crowd, plan.arrival_s);
        let patience = (random() < plan.abandon).then(|| Duration::from_secs_f64(10.0 + random() * 110.0));
        let crowd = crowd.clone();
        buyers.spawn(async move { buyer::live(&crowd, due, patience).await });
    }
    let mut records = Vec::with_capacity(plan.crowd);
    let mut every = tokio::time::interval(Duration::from_secs(2));
    let mut shop_before = 0;
    every.tick().await;
    loop {
        tokio::select! {
            done = buyers.join_next() => match done {
                Some(Ok(record)) => records.push(record),
                Some(Err(_)) => {}
                None => break,
            },
            _ = every.tick() => {
                let now = &crowd.now;
                let shop = now.shop_requests.load(Relaxed);
                progress(&format!(
                    "{:>5.0} s: {} of {} arrived | {} in line | {} inside | {} done, {} did not finish | shop {:.0} req/s",
                    started.elapsed().as_secs_f64(),
                    now.arrived.load(Relaxed),
                    plan.crowd,
                    now.in_line.load(Relaxed),
                    now.inside.load(Relaxed),
                    now.done.load(Relaxed),
                    now.failed.load(Relaxed),
                    (shop - shop_before) as f64 / 2.0,
                ));
                shop_before = shop;
            }
        }
    }
    let setting = report::Setting {
        target: &plan.target,
        direct: plan.direct,
        arrival: plan.arrival.as_str(),
        arrival_s: plan.arrival_s.as_secs_f64(),
        started_at,
        ran_s: started.elapsed().as_secs_f64(),
    };
    let _ = stop_watching.send(());
    let gateway = match watching {
        Some(task) => task.await.ok(),
        None => None,
    };
    let capacity = latency_target.filter(|_| plan.find_capacity).map(|t| capacity::find(&records, setting.ran_s, t));
    let report = Report::of(&records, &setting).with(gateway, capacity);
    let write = |name: &str, text: String| {
        let path = plan.out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| RehearseError::Write { path: path.display().to_string(), why: e.to_string() })
    };
    write("report.json", serde_json::to_string_pretty(&report).unwrap_or_default() + "\n")?;
    write("report.html", page::html(&report))?;
    Ok(report)
}
