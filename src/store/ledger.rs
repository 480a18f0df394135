//! The memory store's side of closed-loop admission: the current control window's sums
//! and the controller's state, with the same rules as `health.lua`, `adapt.lua` and
//! `unpin.lua`.

use super::health::*;

/// One room's control window and controller state.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// The id of the last window ended.
    window: u64,
    /// When the current window started (ms); `None` before the first sample.
    started: Option<u64>,
    /// The room's admission count when it started.
    admitted_from: u64,
    sums: HealthSample,
    /// The controller's rate, once it has decided (else the room's starting rate).
    pub(super) adaptive_apm: Option<u32>,
    phase: Phase,
    reason: Option<ControlReason>,
    pub(super) health: OriginHealth,
    baseline_us: u32,
    cliff: u32,
}

/// What the room is like as a window ends.
pub(super) struct RoomNow {
    pub(super) now: u64,
    pub(super) admitted_total: u64,
    pub(super) queue_length: u64,
    pub(super) pinned: bool,
    pub(super) rate: u32,
}

impl Ledger {
    /// Adds a sample; ends the window if it is over (see `Store::report_health`).
    pub(super) fn report(&mut self, room: &RoomNow, sample: &HealthSample, window_ms: u64) -> Option<HealthWindow> {
        let started = *self.started.get_or_insert_with(|| {
            self.admitted_from = room.admitted_total;
            room.now
        });
        self.sums.add(sample);
        if room.now.saturating_sub(started) < window_ms {
            return None;
        }
        self.window += 1;
        let ended = HealthWindow {
            id: self.window,
            elapsed_ms: room.now - started,
            sample: std::mem::take(&mut self.sums),
            admitted: room.admitted_total.saturating_sub(self.admitted_from),
            queue_length: room.queue_length,
            pinned: room.pinned,
            control: Control {
                rate: room.rate,
                phase: self.phase,
                reason: self.reason(room.pinned),
                health: self.health,
                baseline_us: self.baseline_us,
                cliff: self.cliff,
            },
        };
        self.started = Some(room.now);
        self.admitted_from = room.admitted_total;
        Some(ended)
    }

    /// Why the rate last changed, as the stats report it.
    pub(super) fn reason(&self, pinned: bool) -> ControlReason {
        if pinned {
            ControlReason::Manual
        } else {
            self.reason.unwrap_or_default()
        }
    }

    /// A decision on window `window_id` (see `Store::adapt`).
    pub(super) fn adapt(&mut self, window_id: u64, update: &ControlUpdate, pinned: bool) -> bool {
        if window_id != self.window || self.started.is_none() {
            return false;
        }
        self.health = update.health;
        self.baseline_us = update.baseline_us;
        let Some(rate) = update.rate.filter(|_| !pinned) else { return false };
        self.adaptive_apm = Some(rate);
        self.phase = update.phase;
        self.cliff = update.cliff;
        self.reason = Some(update.reason);
        true
    }

    /// The operator's pinned rate goes back to the controller, which goes on from it.
    pub(super) fn unpin(&mut self, pinned: u32) {
        self.adaptive_apm = Some(pinned);
        self.phase = Phase::Steady;
        self.reason = Some(ControlReason::Manual);
    }
}
