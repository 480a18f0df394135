//! What the demo's terminal shows: the URLs to open once the line has formed, then one
//! line about the sale, refreshed every second (every ten when stdout is not a
//! terminal), read from the gateway's own `/metrics`. The access log goes elsewhere.

use crate::admin::client;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The numbers the summary line is made of, from one `/metrics` read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Sample {
    pub queue_length: f64,
    pub admitted: f64,
    pub inside: f64,
    pub shop_requests: f64,
    pub latency_sum: f64,
    pub latency_count: f64,
}

impl Sample {
    /// Reads the room's and the origin's series from Prometheus text.
    pub(super) fn parse(metrics: &str, room: &str) -> Self {
        let mut sample = Self::default();
        for series in crate::metrics::read::series(metrics) {
            let ours = series.label("room") == Some(room);
            match series.name {
                "anteroom_queue_length" if ours => sample.queue_length = series.value,
                "anteroom_admitted_total" if ours => sample.admitted = series.value,
                "anteroom_active_sessions" if ours => sample.inside = series.value,
                "anteroom_origin_requests_total" => sample.shop_requests += series.value,
                "anteroom_origin_latency_seconds_sum" => sample.latency_sum = series.value,
                "anteroom_origin_latency_seconds_count" => sample.latency_count = series.value,
                _ => {}
            }
        }
        sample
    }
}

/// One line: the line, admissions (and their rate over the last minute), sessions inside,
/// and what the shop sees.
pub(super) fn line(now: &Sample, second_ago: &Sample, minute_ago: &Sample, minute: f64, capacity: u32) -> String {
    let per_minute = (now.admitted - minute_ago.admitted) * 60.0 / minute.max(1.0);
    let requests = now.shop_requests - second_ago.shop_requests;
    let answered = now.latency_count - second_ago.latency_count;
    let latency = if answered > 0.0 {
        format!("{:.0} ms", 1000.0 * (now.latency_sum - second_ago.latency_sum) / answered)
    } else {
        "-".to_owned()
    };
    format!(
        "line {:.0} waiting | admitted {:.0} ({per_minute:.0}/min) | inside {:.0}/{capacity} | shop {requests:.0} req/s, {latency}",
        now.queue_length, now.admitted, now.inside
    )
}

pub(super) struct Presenter {
    pub gateway: SocketAddr,
    pub admin: SocketAddr,
    pub shop: SocketAddr,
    pub crowd: usize,
    pub room: &'static str,
    pub limits: super::Limits,
    /// Lines to print above the summary line (the crowd's before and after).
    pub news: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The access log's file, when it is not on the terminal.
    pub log_file: Option<PathBuf>,
    /// The demo's admin token (random per run), for the console's login.
    pub admin_token: String,
}

impl Presenter {
    /// Prints the banner once the crowd has made a line (so that the first URL shows the
    /// queue), then the summary line until the process ends.
    pub(super) async fn run(mut self) {
        let metrics = || async {
            match client::get(self.admin, "/metrics").await {
                Ok((200, text)) => Some(Sample::parse(&text, self.room)),
                _ => None,
            }
        };
        if self.crowd > 0 {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && metrics().await.is_none_or(|s| s.queue_length < 1.0) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        print(&self.banner());
        let terminal = std::io::stdout().is_terminal();
        let every = if terminal { 1 } else { 10 };
        let mut history: Vec<(Instant, Sample)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for second in 0u64.. {
            tick.tick().await;
            let Some(now) = metrics().await else { continue };
            let at = Instant::now();
            history.retain(|(t, _)| at.duration_since(*t) <= Duration::from_secs(61));
            history.push((at, now));
            while let Ok(news) = self.news.try_recv() {
                print(&if terminal { format!("\r\x1b[2K{news}\n") } else { format!("{news}\n") });
            }
            if second % every != 0 {
                continue;
            }
            let (minute_at, minute_ago) = history[0];
            let second_ago = history.len().checked_sub(2).map_or(now, |i| history[i].1);
            let minute = at.duration_since(minute_at).as_secs_f64();
            let text = line(&now, &second_ago, &minute_ago, minute, self.limits.capacity);
            if terminal {
                print(&format!("\r\x1b[2K{text}"));
            } else {
                print(&format!("{text}\n"));
            }
        }
    }

    fn banner(&self) -> String {
        let (gateway, admin, shop, token) = (self.gateway, self.admin, self.shop, &self.admin_token);
        let super::Limits { capacity, admit_per_minute, adaptive } = self.limits;
        let rate = if adaptive {
            format!("up to {admit_per_minute} a minute as the shop's health allows")
        } else {
            format!("{admit_per_minute} a minute")
        };
        let crowd = if self.crowd > 0 {
            format!(
                "  {} simulated buyers are in line before you; the shop lets {capacity} in at once, {rate}.\n  \
                 the same {} buyers also go straight at a twin of the shop: the before and after show here.\n",
                self.crowd, self.crowd
            )
        } else {
            String::new()
        };
        let log = match &self.log_file {
            Some(path) => {
                format!("  access log:                       {} (or run with RUST_LOG=info)\n", path.display())
            }
            None => String::new(),
        };
        format!(
            "anteroom demo is running.\n  open this page to join the line:  http://{gateway}/events/1\n{crowd}  \
             the whole shop through anteroom:  http://{gateway}/\n  \
             metrics:                          http://{admin}/metrics\n  \
             the console:                      http://{admin}/admin/console (admin token: {token})\n{log}  \
             (the shop itself listens on http://{shop}/)\nPress Ctrl-C to stop.\n"
        )
    }
}

/// One write, and a closed stdout is no reason to stop serving (print! would panic).
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "anteroom_origin_requests_total{status=\"200\"} 40\n\
        anteroom_origin_requests_total{status=\"503\"} 2\n\
        anteroom_origin_latency_seconds_sum 4.2\nanteroom_origin_latency_seconds_count 42\n\
        anteroom_queue_length{room=\"show\"} 27\nanteroom_active_sessions{room=\"show\"} 3\n\
        anteroom_admitted_total{room=\"show\"} 14\nanteroom_admitted_total{room=\"other\"} 99\n";

    #[test]
    fn the_summary_reads_the_room_and_the_shop_from_metrics() {
        let now = Sample::parse(METRICS, "show");
        assert_eq!((now.queue_length, now.admitted, now.inside, now.shop_requests), (27.0, 14.0, 3.0, 42.0));
        let second_ago = Sample { shop_requests: 38.0, latency_sum: 3.8, latency_count: 38.0, ..now };
        let minute_ago = Sample { admitted: 4.0, ..now };
        assert_eq!(
            line(&now, &second_ago, &minute_ago, 30.0, 3),
            "line 27 waiting | admitted 14 (20/min) | inside 3/3 | shop 4 req/s, 100 ms"
        );
    }
}
