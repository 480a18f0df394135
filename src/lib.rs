//! anteroom: a virtual waiting-room gateway in front of an existing shop.
//!
//! # Layout
//!
//! - [`config`]   typed config, `ANTEROOM_*` overrides, validation; the only reader of files/env
//! - [`app`]      wires everything from a `Config` and runs it until shutdown
//! - [`server`]   accept loops: plain/TLS listeners, timeouts, idle cut-off, graceful drain
//! - [`gateway`]  the per-request pipeline: reserved paths → limits → room → protection → proxy
//! - [`room`]     the waiting room: routing, bypass, tokens and cookies, queue page, status API, tick
//! - [`store`]    where the lines live: the memory store and the Redis store (Lua scripts)
//! - [`proxy`]    forwarding to the origin: upstream client, header hygiene, tunnels
//! - [`protect`]  origin protection: GCRA rate limit with smoothing, in-flight cap
//! - [`admin`]    admin listener: `/healthz`, `/readyz`, `/metrics`, `/admin/rooms`; the CLI's client
//! - [`metrics`]  counters and histograms, rendered as Prometheus text
//! - [`blame`]    who caused a failure: client, origin, store or anteroom
//! - [`response`] the body type and small builders for anteroom's own answers
//! - [`telemetry`] tracing subscriber set-up (text or JSON)
//! - [`time`]     the clock, RFC 3339 in and out, times as the page and log show them
//! - [`token`]    admission tokens: JWT issue/verify, key rotation by kid, JWKS, keygen
//! - [`demo`]     `anteroom demo`: a built-in sample shop behind the gateway, and a simulated crowd

// Public: what the binary, the integration tests and the benchmarks use. Everything
// else is the crate's own (`pub(crate)`), so the compiler reports what nobody uses.
mod adaptive;
pub mod admin;
pub mod app;
mod blame;
pub mod config;
pub mod demo;
mod gateway;
mod metrics;
mod problem;
mod protect;
mod proxy;
pub mod rehearse;
mod response;
mod room;
mod server;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod token;

pub use app::{run, run_reloading, serve, Listeners, Prepared, Reloads};
pub use config::Config;

/// Parts the benchmarks and the browser test exercise on their own.
#[doc(hidden)]
pub use room::cache::VerifiedTokens;
/// Solves a proof-of-work challenge (`prefix`, `difficulty`) by brute force: the tests'
/// and the benchmarks' clients, which have no browser to do it.
#[doc(hidden)]
pub use room::challenge::solve as solve_challenge;
