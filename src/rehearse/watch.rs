//! What the gateway itself said while the crowd ran: its admin listener read every 2 s
//! (`GET /admin/rooms/ROOM` and `/metrics`). The buyers measure what they went through;
//! this adds what only the gateway knows — the rate in force and the configured one, the
//! whole line (not only this crowd's share), the shop's latency as the gateway timed it,
//! and how many requests it forwarded, to set against the buyers' own count.

use super::RehearseError;
use crate::admin::client::{call, AdminTarget};
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How often the gateway is read.
const EVERY: Duration = Duration::from_secs(2);

/// The gateway's admin listener, and the room the crowd goes to.
#[derive(Debug)]
pub(crate) struct Watch {
    admin: AdminTarget,
    token: Option<String>,
    room: String,
    /// The room's configured `target_origin_latency`, when it has one.
    pub target_ms: Option<f64>,
    admission: String,
}

/// One reading.
#[derive(Debug, Default, Serialize)]
pub struct Sample {
    /// Seconds since the rehearsal began.
    pub t: f64,
    pub admit_per_minute: Option<f64>,
    pub configured_admit_per_minute: Option<f64>,
    pub queue_length: Option<f64>,
    pub active_sessions: Option<f64>,
    pub origin_health: Option<String>,
    /// The shop's latency as the gateway timed it over the last 2 s (slot wait included).
    pub shop_p90_ms: Option<f64>,
    /// The gateway's in-flight cap towards the shop.
    pub in_flight_limit: Option<f64>,
}

/// Everything read, for the report.
#[derive(Debug, Serialize)]
pub struct GatewayView {
    pub admin: String,
    pub room: String,
    pub admission: String,
    pub target_origin_latency_ms: Option<f64>,
    /// Requests the gateway forwarded to the shop while the crowd ran (every status, and
    /// none), counted by its `anteroom_origin_requests_total`.
    pub shop_requests: Option<u64>,
    /// Readings that failed (the admin listener did not answer in time).
    pub missed: u64,
    pub samples: Vec<Sample>,
}

impl Watch {
    /// Finds the room whose paths hold `path` (the script's first page) and checks the
    /// token; a wrong token or an admin API that is off stops the rehearsal before it starts.
    pub(crate) async fn connect(url: &str, token: Option<String>, path: &str) -> Result<Self, RehearseError> {
        let admin = AdminTarget::parse(url).map_err(|e| RehearseError::Plan(format!("--admin: {e}")))?;
        let (status, body) = call(&admin, "GET", "/admin/rooms", token.as_deref(), None)
            .await
            .map_err(|why| RehearseError::Unreachable { target: admin.to_string(), why })?;
        match status {
            200 => {}
            401 => return Err(RehearseError::Plan(format!("--admin {admin}: the admin token was refused"))),
            403 => return Err(RehearseError::Plan(format!("--admin {admin}: the admin API is off (no admin.token)"))),
            other => return Err(RehearseError::Plan(format!("--admin {admin}: answered {other}: {}", body.trim()))),
        }
        let listing: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| RehearseError::Plan(format!("--admin {admin}: not an anteroom admin listener ({e})")))?;
        let rooms = listing["rooms"].as_array().cloned().unwrap_or_default();
        let holds = |room: &serde_json::Value| {
            room["paths"].as_array().is_some_and(|paths| {
                paths.iter().filter_map(|p| p.as_str()).any(|p| path.starts_with(p.trim_end_matches('*')))
            })
        };
        let Some(room) = rooms.iter().find(|r| holds(r)).or(rooms.first()) else {
            return Err(RehearseError::Plan(format!("--admin {admin}: the gateway has no rooms")));
        };
        let target_ms = room["target_origin_latency"]
            .as_str()
            .and_then(|t| crate::config::parse_duration(t).ok())
            .map(|t| t.as_secs_f64() * 1000.0);
        Ok(Self {
            admin,
            token,
            room: room["room"].as_str().unwrap_or_default().to_owned(),
            target_ms,
            admission: room["admission"].as_str().unwrap_or("fixed").to_owned(),
        })
    }

    /// Reads the gateway every 2 s until `stop` fires, then once more.
    pub(crate) async fn follow(self, started: Instant, mut stop: tokio::sync::oneshot::Receiver<()>) -> GatewayView {
        let mut view = GatewayView {
            admin: self.admin.to_string(),
            room: self.room.clone(),
            admission: self.admission.clone(),
            target_origin_latency_ms: self.target_ms,
            shop_requests: None,
            missed: 0,
            samples: Vec::new(),
        };
        let first = self.metrics().await;
        let mut before = first.clone();
        let mut every = tokio::time::interval(EVERY);
        every.tick().await;
        loop {
            let last = tokio::select! {
                _ = every.tick() => false,
                _ = &mut stop => true,
            };
            let (room, metrics) = tokio::join!(self.room(), self.metrics());
            let (Some(room), Some(metrics)) = (room, metrics) else {
                view.missed += 1;
                if last {
                    break;
                }
                continue;
            };
            let number = |key: &str| room[key].as_f64();
            let latency = before.as_ref().map(|b| metrics.latency_since(b));
            view.samples.push(Sample {
                t: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                admit_per_minute: number("effective_admit_per_minute"),
                configured_admit_per_minute: number("configured_admit_per_minute"),
                queue_length: number("queue_length"),
                active_sessions: number("active_sessions"),
                origin_health: room["origin_health"].as_str().map(str::to_owned),
                shop_p90_ms: latency.and_then(|counts| quantile_ms(&metrics.bounds, &counts, 0.9)),
                in_flight_limit: metrics.in_flight_limit,
            });
            if let Some(first) = &first {
                view.shop_requests = Some(metrics.forwarded.saturating_sub(first.forwarded));
            }
            before = Some(metrics);
            if last {
                break;
            }
        }
        view
    }

    async fn room(&self) -> Option<serde_json::Value> {
        let path = format!("/admin/rooms/{}", self.room);
        match call(&self.admin, "GET", &path, self.token.as_deref(), None).await {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    async fn metrics(&self) -> Option<Scrape> {
        match call(&self.admin, "GET", "/metrics", None, None).await {
            Ok((200, body)) => Some(Scrape::of(&body)),
            _ => None,
        }
    }
}

fn quantile_ms(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    crate::metrics::quantile(bounds, counts, q).map(|s| (s * 10_000.0).round() / 10.0)
}

/// The few series of `/metrics` the report uses.
#[derive(Clone, Debug, Default, PartialEq)]
struct Scrape {
    /// `anteroom_origin_latency_seconds`: bucket bounds, and cumulative counts with `+Inf` last.
    bounds: Vec<f64>,
    cumulative: Vec<u64>,
    forwarded: u64,
    in_flight_limit: Option<f64>,
}

impl Scrape {
    fn of(text: &str) -> Self {
        let mut scrape = Scrape::default();
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for series in crate::metrics::read::series(text) {
            match series.name {
                "anteroom_origin_latency_seconds_bucket" => {
                    let bound = match series.label("le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(bound) => bound.parse().unwrap_or(f64::NAN),
                        None => continue,
                    };
                    if !bound.is_nan() {
                        buckets.push((bound, series.value as u64));
                    }
                }
                "anteroom_origin_requests_total" => scrape.forwarded += series.value as u64,
                "anteroom_origin_in_flight_limit" => scrape.in_flight_limit = Some(series.value),
                _ => {}
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        scrape.bounds = buckets.iter().map(|b| b.0).filter(|b| b.is_finite()).collect();
        scrape.cumulative = buckets.iter().map(|b| b.1).collect();
        scrape
    }

    /// Observations per bucket since `before` (the last entry: above the last bound).
    fn latency_since(&self, before: &Scrape) -> Vec<u64> {
        let now = per_bucket(&self.cumulative);
        let then = per_bucket(&before.cumulative);
        if now.len() != then.len() {
            return now;
        }
        now.iter().zip(then).map(|(n, t)| n.saturating_sub(t)).collect()
    }
}

fn per_bucket(cumulative: &[u64]) -> Vec<u64> {
    let mut below = 0;
    cumulative
        .iter()
        .map(|&c| {
            let here = c.saturating_sub(below);
            below = c.max(below);
            here
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n# TYPE anteroom_origin_latency_seconds histogram\n\
        anteroom_origin_latency_seconds_bucket{le=\"0.1\"} 10\n\
        anteroom_origin_latency_seconds_bucket{le=\"0.25\"} 18\n\
        anteroom_origin_latency_seconds_bucket{le=\"+Inf\"} 20\n\
        anteroom_origin_latency_seconds_sum 3.5\nanteroom_origin_latency_seconds_count 20\n\
        anteroom_origin_requests_total{status=\"200\"} 19\nanteroom_origin_requests_total{status=\"none\"} 1\n\
        anteroom_origin_in_flight_limit 12\nanteroom_queue_length{room=\"sale\"} 400\n";

    #[test]
    fn the_gateways_metrics_are_read_and_differenced() {
        let scrape = Scrape::of(TEXT);
        assert_eq!(scrape.bounds, vec![0.1, 0.25]);
        assert_eq!(scrape.cumulative, vec![10, 18, 20]);
        assert_eq!((scrape.forwarded, scrape.in_flight_limit), (20, Some(12.0)));
        let before = Scrape { cumulative: vec![5, 8, 8], ..scrape.clone() };
        let since = scrape.latency_since(&before);
        assert_eq!(since, vec![5, 5, 2]);
        // 12 since: the 90th percentile (10.8th) lies above the last bound.
        assert_eq!(quantile_ms(&scrape.bounds, &since, 0.9), Some(250.0));
        assert_eq!(quantile_ms(&scrape.bounds, &since, 0.25), Some(60.0));
        // Junk lines are skipped.
        assert_eq!(Scrape::of("garbage\nanteroom_origin_requests_total{status=\"200\"} x\n"), Scrape::default());
    }
}
