//! `anteroom rehearse …`: the arguments, checked and turned into a [`Plan`].

use anteroom::rehearse::{self, Arrival, Plan, RehearseError, Script};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct RehearseArgs {
    /// The gateway, like http://127.0.0.1:8080
    #[arg(required_unless_present = "direct")]
    url: Option<String>,
    /// Send the crowd straight at this shop instead (the "before" of a before/after).
    #[arg(long, conflicts_with = "url")]
    direct: Option<String>,
    /// Buyers in the crowd.
    #[arg(long, default_value_t = 1000)]
    crowd: usize,
    /// How they arrive: at-once, ramp (ever more per second) or spread (evenly).
    /// Default: spread; ramp with --find-capacity.
    #[arg(long, value_parser = ["at-once", "ramp", "spread"])]
    arrival: Option<String>,
    /// Over how many seconds they arrive.
    #[arg(long, default_value_t = 60.0)]
    arrival_s: f64,
    /// The rehearsal ends after this long, whoever is still waiting or shopping.
    #[arg(long, default_value = "15m")]
    duration: String,
    /// Connections to the target, shared by the whole crowd.
    #[arg(long, default_value_t = 512)]
    connections: usize,
    /// What a buyer does once inside: a TOML list of [[step]] (method, path, body, think).
    #[arg(long)]
    script: Option<PathBuf>,
    /// The share of buyers who give up while waiting (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    abandon: f64,
    /// Where the report goes.
    #[arg(long, default_value = "rehearsal")]
    out: PathBuf,
    /// Allow a target that is not on this machine (a staging host).
    #[arg(long)]
    allow_remote: bool,
    /// The gateway's admin listener, like http://127.0.0.1:9090: the report adds the rate
    /// in force, the whole line and the shop as the gateway timed it.
    #[arg(long)]
    admin: Option<String>,
    /// The admin token (or ANTEROOM_ADMIN_TOKEN).
    #[arg(long)]
    admin_token: Option<String>,
    /// Ramp the crowd and report where the shop's p90 crossed the target, with the
    /// settings to put in the config.
    #[arg(long)]
    find_capacity: bool,
    /// The p90 the shop should stay under (default: the room's target_origin_latency,
    /// read through --admin).
    #[arg(long)]
    target: Option<String>,
}

/// A mistake in the arguments: said, and exit 2.
fn refuse(problem: impl std::fmt::Display) -> ExitCode {
    eprintln!("{problem}");
    ExitCode::from(2)
}

pub(crate) fn run(args: RehearseArgs, runtime: tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let script = match &args.script {
        None => Script::sample(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match Script::parse(&text) {
                Ok(script) => script,
                Err(problem) => return Ok(refuse(format!("--script {}: {problem}", path.display()))),
            },
            Err(e) => return Ok(refuse(format!("--script: cannot read {}: {e}", path.display()))),
        },
    };
    let duration = match anteroom::config::parse_duration(&args.duration) {
        Ok(duration) => duration,
        Err(e) => return Ok(refuse(format!("--duration: {e}"))),
    };
    let latency_target = match args.target.as_deref().map(anteroom::config::parse_duration) {
        None => None,
        Some(Ok(target)) if !target.is_zero() => Some(target),
        Some(Ok(_)) => return Ok(refuse("--target: more than 0")),
        Some(Err(e)) => return Ok(refuse(format!("--target: {e}"))),
    };
    if !(0.0..=86_400.0).contains(&args.arrival_s) {
        return Ok(refuse("--arrival-s: between 0 and 86400"));
    }
    let default_arrival = if args.find_capacity { Arrival::Ramp } else { Arrival::Spread };
    let admin_token = args.admin_token.or_else(|| std::env::var("ANTEROOM_ADMIN_TOKEN").ok().filter(|v| !v.is_empty()));
    let plan = Plan {
        direct: args.direct.is_some(),
        target: args.direct.or(args.url).unwrap_or_default(),
        crowd: args.crowd,
        arrival: args.arrival.as_deref().and_then(Arrival::parse).unwrap_or(default_arrival),
        arrival_s: std::time::Duration::from_secs_f64(args.arrival_s),
        duration,
        connections: args.connections.clamp(1, 10_000),
        script,
        abandon: args.abandon,
        allow_remote: args.allow_remote,
        out: args.out,
        admin: args.admin,
        admin_token,
        find_capacity: args.find_capacity,
        latency_target,
    };
    match runtime.block_on(rehearse::run(&plan, |line| eprintln!("{line}"))) {
        Ok(report) => {
            for sentence in &report.summary.sentences {
                println!("{sentence}");
            }
            if let Some(settings) = report.capacity.as_ref().and_then(|c| c.settings.as_ref()) {
                println!("\n{settings}");
            }
            println!("report: {}", plan.out.join("report.html").display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ RehearseError::Plan(_)) => Ok(refuse(e)),
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
