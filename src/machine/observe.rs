//! Measurements: what the backend and the OS report, compared with what the machine believes.
//!
//! failbackd reports what it measured. The driver reads the backend every `reconcile_interval`
//! (and after every call and reload) and hands the reading over as [`Event::Observed`]. A reading
//! that differs from the confirmed state is drift — someone changed the hold behind failbackd's
//! back (an operator leaving OPNsense maintenance resets the demotion; `sysctl` by hand; a
//! tunable re-applied at boot): it is recorded and the wanted state re-applied, backing off when
//! it keeps happening. A hold that is not failbackd's is reported and never undone. CARP states
//! from the OS correct the hooks: a lost hook is a transition found by the next poll.

use super::*;

/// OPNsense's `service_status` lever, the 2^20 bit of `net.inet.carp.demotion`, is shared by
/// every check in `rc.carp_service_status.d` (opnsense/core src/sbin/carp_service_status sets it
/// when *any* check fails). failbackd's own check (`failbackd ready`) fails exactly while its
/// phase wants the node held, so the bit is failbackd's hold only then; set while failbackd wants
/// no hold (released, idle) it is another check's: a foreign hold, reported and never fought.
/// `maintenance` (an operator's CARP maintenance) is foreign in every phase; the bit can be
/// failbackd's at the same time (two facts: `also_ours`).
/// Returns `(held, foreign, also_ours)` for [`Observed`].
pub fn attribute_shared_hold(bit: bool, maintenance: bool, phase: Phase) -> (Option<bool>, bool, bool) {
    let own_check_fails = phase.wants_demoted() == Some(true);
    let ours = bit && own_check_fails;
    let foreign = maintenance || (bit && !own_check_fails);
    (Some(bit || maintenance), foreign, foreign && ours)
}

impl Machine {
    pub(super) fn on_observed(&mut self, now: Instant, obs: Observed, out: &mut Vec<Action>) {
        // A reading that failed carries nothing; one that worked carries at least the CARP
        // states, even from a lever that cannot tell whether it is held (`sysctl` without the
        // failbackd bit, seed 710: its recovery was never seen, the hold waited out its backoff).
        let answered = obs.held.is_some() || obs.carp.is_some();
        if obs.carp_seq == self.carp_seq {
            for r in obs.carp.into_iter().flatten() {
                self.carp_changed(now, r.vhid, r.iface, r.state, false, out);
            }
        }
        if obs.backend_seq != self.backend.seq || self.backend.in_flight.is_some() {
            return; // a call overtook this reading: its result is the newer fact
        }
        self.backend.awaiting_observation = false;
        if !answered {
            self.backend.unreadable = true;
            return;
        }
        if std::mem::take(&mut self.backend.unreadable) && self.backend.failures > 0 {
            // The backend answers again after failing calls and failing readings: retry now,
            // not at the end of a backoff that grew while it was away (at most one call per
            // reading, so a backend that reads but still cannot act is not hammered).
            self.backend.retry_at = None;
        }
        let Some(held) = obs.held else { return };
        // On a shared lever a set bit failbackd's own calls have not put in place (its last
        // confirmed call released) is someone else's, whatever the phase: another check's, or
        // failbackd's check counted by someone else's evaluation. Not drift; failbackd's demote
        // (an evaluation that counts its check) makes it its own (seed 5432: another plugin's
        // bit during a hold whose demotes failed was reported as drift "added").
        let unconfirmed = self.cfg.shared_lever && self.backend.demoted == Some(false);
        let foreign = held && (obs.foreign || unconfirmed);
        // The hold last measured was someone else's alone: its going away is theirs, not drift.
        let was_foreign_only = self.backend.foreign && !self.backend.also_ours;
        self.backend.also_ours = foreign && obs.also_ours;
        if foreign != self.backend.foreign {
            self.backend.foreign = foreign;
            out.push(Action::Record(Record::ForeignHold { held: foreign }));
        }
        let wanted = self.phase.wants_demoted();
        let Some(known) = self.backend.demoted else {
            // The first reading of a state nobody knew (a backend that could not tell at start,
            // or a new one after a reload): a fact learned, not a change. On a shared lever
            // someone else's part alone is not failbackd's hold: a failback armed later demotes
            // (an evaluation that counts failbackd's check) instead of taking it for its own.
            let others_only = self.cfg.shared_lever && foreign && !obs.also_ours;
            self.backend.demoted = Some(held && !others_only);
            self.adopt_found_hold(now, held, foreign, out);
            return;
        };
        if known == held {
            if wanted == Some(held) {
                self.backend.drifts = 0;
            }
            return;
        }
        if foreign {
            // Someone else's hold: relied upon while holding, left alone after the release. On a
            // shared lever only when failbackd's own part is measured in place too: another
            // check's bit is not failbackd's hold (and was attributed by the phase of the
            // reading's start), so failbackd demotes (an evaluation with its check failing).
            if wanted == Some(true) && (!self.cfg.shared_lever || obs.also_ours) {
                self.backend.demoted = Some(true);
            }
            return;
        }
        if was_foreign_only && !held {
            self.backend.demoted = Some(false);
            return;
        }
        if self.cfg.shared_lever && !held && wanted == Some(false) {
            // Someone else's evaluation of the service checks counted failbackd's own check,
            // which passes once the phase wants no hold: that is failbackd's release landing,
            // not a drift (seed 5034: another plugin's check passed while the promote failed).
            self.backend.demoted = Some(false);
            return;
        }
        let direction = if held { Drift::Added } else { Drift::Removed };
        self.backend.demoted = Some(held);
        self.backend.drifts = self.backend.drifts.saturating_add(1);
        out.push(Action::Record(Record::BackendDrift { direction, wanted }));
        if self.backend.drifts > 1 && wanted.is_some_and(|w| w != held) {
            // Something keeps undoing us: re-apply with the usual backoff, not in a tight loop.
            let delay = self.cfg.backoff.delay(self.backend.drifts - 1);
            self.backend.retry_at = now.checked_add(delay);
        }
        self.adopt_found_hold(now, held, foreign, out);
    }

    /// failbackd's hold in place with no failback on record (idle): pick it up, so the node is
    /// never left demoted silently (the same rule as at boot).
    fn adopt_found_hold(&mut self, now: Instant, held: bool, foreign: bool, out: &mut Vec<Action>) {
        if held && !foreign && self.phase == Phase::Idle {
            self.arm(now, Trigger::Resume, out);
        }
    }

    pub(super) fn on_backend_replaced(&mut self) {
        self.backend = BackendView {
            awaiting_observation: true,
            seq: self.backend.seq.wrapping_add(1),
            ..BackendView::default()
        };
    }
}
