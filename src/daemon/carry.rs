//! What the state file carries from one run to the next (pure, on the clocks the caller read):
//! the record a run writes ([`record`]) and what the next run takes back from it
//! ([`carry_over`]). The daemon and the pair simulator (src/sim/) both call these.
//!
//! The flap limit's history (`max_demotions` per `window`, and with a peer the dampening penalty
//! rebuilt from it) is recorded on two clocks: the system's monotonic clock, which a restart in
//! the same boot uses (a wall-clock step changes nothing), and the wall clock, which is all a
//! reboot has left (a persistent state file after a power loss). A state file on tmpfs is gone
//! after a reboot, and the history with it (README "Restart").

use super::boot::StartKind;
use crate::machine::{Machine, Trigger};
use crate::statefile::{Persisted, PersistedFailback};
use std::time::{Duration, Instant};

/// The clocks read at one moment: the machine's (`now`), CLOCK_MONOTONIC
/// ([`crate::statefile::monotonic_now`]) and the wall clock (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub now: Instant,
    pub mono: Duration,
    pub unix: f64,
}

impl Clocks {
    fn mono_ms_of(&self, at: Instant) -> u64 {
        self.mono.saturating_sub(self.now.saturating_duration_since(at)).as_millis() as u64
    }

    fn unix_of(&self, at: Instant) -> f64 {
        self.unix - self.now.saturating_duration_since(at).as_secs_f64()
    }
}

/// The record a run writes: `None` when it says nothing new since `last` (the record written
/// last). A resumed failback keeps its recorded arm time and trigger (they are the original ones).
pub fn record(m: &Machine, last: Option<&Persisted>, boot_id: Option<&str>, c: Clocks) -> Option<Persisted> {
    let failback = m.failback().map(|f| {
        let kept = last.and_then(|p| p.failback.clone()).filter(|p| p.id == f.id);
        PersistedFailback {
            id: f.id,
            armed_mono_ms: kept.as_ref().map_or_else(|| c.mono_ms_of(f.armed_at), |k| k.armed_mono_ms),
            armed_unix: kept.as_ref().map_or_else(|| c.unix_of(f.armed_at), |k| k.armed_unix),
            // Tracking's trigger matters to the next run (max_hold does not end it).
            trigger: kept
                .as_ref()
                .filter(|_| f.trigger == Trigger::Resume)
                .map_or_else(|| f.trigger.to_string(), |k| k.trigger.clone()),
            peer_lost: f.peer_lost,
        }
    });
    let state = Persisted {
        track_demotions_mono_ms: m.track_demotions().map(|at| c.mono_ms_of(at)).collect(),
        track_demotions_unix: m.track_demotions().map(|at| c.unix_of(at)).collect(),
        track_forced: m.track_forced(),
        failback,
        last_failback: m.failback().map_or(m.ended_failbacks(), |f| f.id),
        boot_id: boot_id.map(str::to_string),
        ..Persisted::new(m.phase())
    };
    let same = last.is_some_and(|p| {
        p.phase == state.phase
            && p.last_failback == state.last_failback
            && p.track_forced == state.track_forced
            && p.track_demotions_mono_ms.len() == state.track_demotions_mono_ms.len()
            && p.failback.as_ref().map(|f| (f.id, f.peer_lost))
                == state.failback.as_ref().map(|f| (f.id, f.peer_lost))
    });
    (!same).then_some(state)
}

/// Hands the previous run's record to the machine before its first step (which rewrites the
/// file): the flap limit's history, whether the failback in progress was started by tracking
/// (it resumes as `resume`, and `max_hold` must not end it either) and a forced release's
/// exemption from tracking.
///
/// A restart (same boot) reads the history on the monotonic clock: a time after now cannot be
/// from this boot and is dropped. A boot or first start with a file of another boot (persistent
/// storage) reads it on the wall clock: a time after now (a clock set back, or not set yet at
/// boot) counts as now, so the limit errs on the side of fewer demotions; a file without wall
/// times (before 0.3) carries nothing across a reboot.
pub fn carry_over(machine: &mut Machine, p: &Persisted, kind: StartKind, c: Clocks) {
    match kind {
        StartKind::Restart => {
            let at = |ms: u64| c.now.checked_sub(c.mono.checked_sub(Duration::from_millis(ms))?);
            // A demotion of an earlier boot, carried into this boot's file, was recorded as
            // monotonic 0 (`mono_ms_of` saturates: it predates this boot's clock); read as
            // "when this boot began" it held the flap limit up to the boot's age too long (the
            // pair simulator's seeds 2184, 2519: a power loss, then a restart). Its wall time
            // is the only reading of when it was, as at a boot.
            let mut this_boot = Vec::new();
            let mut earlier = Vec::new();
            for (i, ms) in p.track_demotions_mono_ms.iter().enumerate() {
                match (*ms, p.track_demotions_unix.get(i)) {
                    (0, Some(unix)) => earlier.push(*unix),
                    (ms, _) => this_boot.extend(at(ms)),
                }
            }
            let window = machine.config().tracking.window;
            this_boot.extend(by_wall_clock(&earlier, window, c));
            machine.restore_track_demotions(this_boot);
            if let Some(f) = p.failback.as_ref().filter(|f| f.trigger.starts_with("track ")) {
                machine.restore_tracking_failback(f.id);
            }
            // The operator's forced release stands across a restart (a reboot ends it, as the
            // boot failback's own probes decide then).
            if p.track_forced {
                machine.restore_track_forced();
            }
        }
        StartKind::Boot | StartKind::FirstStart => {
            let window = machine.config().tracking.window;
            machine.restore_track_demotions(by_wall_clock(&p.track_demotions_unix, window, c));
        }
    }
}

/// The demotions at these wall times that are still inside `window`, on this process's clock.
fn by_wall_clock(unix: &[f64], window: Duration, c: Clocks) -> Vec<Instant> {
    // Before this process's clock can represent (a young process): counted as now.
    let at = |unix: f64| {
        let age = Duration::try_from_secs_f64((c.unix - unix).max(0.0)).unwrap_or(Duration::ZERO);
        c.now.checked_sub(age).unwrap_or(c.now)
    };
    unix.iter().filter(|u| c.unix - **u < window.as_secs_f64()).map(|u| at(*u)).collect()
}

#[cfg(test)]
mod tests;
