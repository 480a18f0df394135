//! Closed-loop admission, per room and tick: this instance's sample of the origin traffic
//! goes to the store; the one call that ends a control window decides for every instance
//! (see `adaptive`). The rate itself lives in the store, where ticks and ETAs read it.

use super::{Room, WaitingRoom};
use crate::adaptive::{self, WINDOW};
use crate::metrics::ADMISSION_MODES;
use crate::store::{HealthWindow, RoomStats};

impl WaitingRoom {
    /// Reports the sample and, if that ended a window, decides. A failed call loses the
    /// sample: the store keeps the last rate, so nothing moves while it is away.
    pub(super) async fn steer(&self, room: &Room) {
        let sample = room.signals.take();
        let window = WINDOW.as_millis() as u64;
        let ended = match self.store.report_health(&room.name, &room.policy(), &sample, window).await {
            Ok(Some(ended)) => ended,
            Ok(None) => return,
            Err(e) => return self.store_failed(&e),
        };
        let update = adaptive::decide(&ended, &room.control);
        match self.store.adapt(&room.name, ended.id, &update).await {
            Ok(true) if update.rate != Some(ended.control.rate) => log_change(room, &ended, update.rate, update.reason),
            Ok(_) => {}
            Err(e) => self.store_failed(&e),
        }
    }

    /// The rate gauges, from what the store said at a tick.
    pub(super) fn note_admission(&self, room: &Room, stats: &RoomStats) {
        let mode = match (stats.rate_pinned, room.control.adaptive) {
            (true, _) => ADMISSION_MODES[2],
            (false, true) => ADMISSION_MODES[1],
            (false, false) => ADMISSION_MODES[0],
        };
        room.metrics().set_admission(stats.admit_per_minute, mode, stats.origin_health.gauge());
    }
}

fn log_change(room: &Room, ended: &HealthWindow, rate: Option<u32>, reason: crate::store::ControlReason) {
    let s = &ended.sample;
    tracing::info!(
        target: "anteroom::admission",
        room = %room.name,
        from = ended.control.rate,
        to = rate.unwrap_or(ended.control.rate),
        reason = reason.as_str(),
        p90_ms = s.latency_quantile_ms(0.9).map(|ms| ms.round()),
        requests = s.requests,
        errors = s.errors,
        delayed = s.delayed,
        shed = s.shed,
        admitted = ended.admitted,
        queue_length = ended.queue_length,
        "admission rate changed"
    );
}
