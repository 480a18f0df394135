//! The admission tick: every instance runs one per room, a few times a second. The store
//! makes concurrent ticks safe; each reports the room's numbers, which feed the gauges,
//! the admission-rate estimate behind the ETA, and `/readyz`.

use super::{Room, WaitingRoom};
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often each instance ticks each room (with ±20 % jitter so instances interleave).
pub(crate) const TICK_PERIOD: Duration = Duration::from_millis(250);

/// Time constant of the admission-rate moving average.
const RATE_WINDOW_SECS: f64 = 30.0;

/// Time constant of the join-rate moving average: short, so that an `auto` challenge
/// difficulty rises within seconds of a flood.
const JOIN_RATE_WINDOW_SECS: f64 = 5.0;

/// The store's running totals at the last tick, to measure rates from.
#[derive(Clone, Copy)]
struct Totals {
    at: Instant,
    admitted: u64,
    joins: u64,
}

impl WaitingRoom {
    /// Sessions revoked through any instance: their tokens are refused here too, from now
    /// until the last of them has expired.
    fn learn_revocations(&self, room: &Room, revocations: &[(String, u64)]) {
        let keep_secs = room.token_ttl_secs() + self.tokens.leeway_secs();
        let mut read_up_to = room.revocations_read_ms.load(Relaxed);
        for (session, revoked_ms) in revocations {
            self.cache.revoke(session, revoked_ms / 1000 + keep_secs);
            read_up_to = read_up_to.max(*revoked_ms);
        }
        room.revocations_read_ms.store(read_up_to, Relaxed);
        self.cache.sweep(self.now_secs());
    }

    /// Starts one ticker per room; abort the handles to stop them. The second half
    /// resolves once every room has had its first tick (answered or failed), so that the
    /// instance knows each room's state before it calls itself ready.
    pub fn spawn_tickers(self: &Arc<Self>) -> (Vec<JoinHandle<()>>, impl Future<Output = ()>) {
        let (handles, first_ticks): (Vec<_>, Vec<_>) = (0..self.rooms.len())
            .map(|index| {
                let waiting = self.clone();
                let (ticked, first_tick) = oneshot::channel();
                (tokio::spawn(async move { waiting.run_ticker(index, ticked).await }), first_tick)
            })
            .unzip();
        let all_ticked = async move {
            for first_tick in first_ticks {
                let _ = first_tick.await;
            }
        };
        (handles, all_ticked)
    }

    async fn run_ticker(&self, index: usize, ticked: oneshot::Sender<()>) {
        let room = &self.rooms[index];
        let mut last: Option<Totals> = None;
        let mut ticked = Some(ticked);
        let mut floods = super::proof::FloodWatch::default();
        loop {
            self.watch_floods(room, &mut floods);
            if self.tick_once(room, &mut last).await {
                self.steer(room).await;
            } else {
                // The store is away: what the shop did meanwhile is no evidence for later.
                room.signals.take();
            }
            if let Some(ticked) = ticked.take() {
                let _ = ticked.send(());
            }
            let jittered = TICK_PERIOD.mul_f64(0.8 + 0.4 * super::jitter());
            tokio::time::sleep(jittered).await;
        }
    }

    /// One tick; `false` when the store did not answer.
    async fn tick_once(&self, room: &Room, last: &mut Option<Totals>) -> bool {
        let revoked_since = room.revocations_read_ms.load(Relaxed);
        let report = match self.store.tick(&room.name, &room.policy(), revoked_since).await {
            Ok(report) => report,
            Err(e) => {
                self.store_failed(&e);
                return false;
            }
        };
        if self.metrics.set_store_up(true) {
            tracing::info!("store reachable again");
        }
        let metrics = room.metrics();
        let stats = &report.stats;
        metrics.queue_length.store(stats.queue_length, Relaxed);
        metrics.active_sessions.store(stats.active_sessions, Relaxed);
        metrics.max_active_users.store(u64::from(stats.max_active_users), Relaxed);
        metrics.admitted.fetch_add(report.admitted, Relaxed);
        metrics.abandoned.fetch_add(report.abandoned, Relaxed);
        room.note_stats(stats);
        self.note_admission(room, stats);
        self.learn_revocations(room, &report.revocations);
        if report.admitted > 0 || report.abandoned > 0 {
            tracing::info!(
                target: "anteroom::admission",
                room = %room.name,
                admitted = report.admitted,
                abandoned = report.abandoned,
                expired_sessions = report.expired_sessions,
                queue_length = stats.queue_length,
                active_sessions = stats.active_sessions,
                "tick"
            );
        }
        let now = Instant::now();
        if let Some(Totals { at: then, admitted: total, joins }) = *last {
            let elapsed = now.duration_since(then).as_secs_f64();
            if elapsed > 0.0 && stats.joins_total >= joins {
                let instant_rate = (stats.joins_total - joins) as f64 / elapsed;
                let old = f64::from_bits(room.join_rate_bits.load(Relaxed));
                let weight = 1.0 - (-elapsed / JOIN_RATE_WINDOW_SECS).exp();
                room.join_rate_bits.store((old + weight * (instant_rate - old)).to_bits(), Relaxed);
            }
            if elapsed > 0.0 && stats.admitted_total >= total {
                let instant_rate = (stats.admitted_total - total) as f64 / elapsed;
                // The average starts from the rate in force, not from the first quarter
                // second: one admission just after the start is not "four a second", and a
                // buyer is not told a wait of seconds in a room that admits one a minute.
                let old = f64::from_bits(room.rate_bits.load(Relaxed));
                let old = if old.is_finite() { old } else { f64::from(room.admit_per_minute()) / 60.0 };
                let weight = 1.0 - (-elapsed / RATE_WINDOW_SECS).exp();
                let rate = old + weight * (instant_rate - old);
                room.rate_bits.store(rate.to_bits(), Relaxed);
            }
        }
        *last = Some(Totals { at: now, admitted: stats.admitted_total, joins: stats.joins_total });
        true
    }
}
