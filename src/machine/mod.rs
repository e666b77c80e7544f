//! The failback state machine: pure, sans-IO, given the time.
//!
//! `Machine::step(now, event)` returns the actions the driver must carry out (demote, promote,
//! restart probes, record something for metrics/traces/logs). It never reads a clock, touches
//! the network or spawns anything, so every rule below is unit- and property-tested in isolation
//! (`tests.rs`, `tests/machine_props.rs`). The driver (`crate::daemon`) owns the I/O.
//!
//! The backend is reconciled, not toggled: each phase implies a *desired* demotion, and the
//! machine issues `Demote`/`Promote` only when the last confirmed backend state differs from it
//! and no call is in flight. That is what keeps it from repeating the forum script's toggle bug
//! (design.md, point 1): no two demotes or promotes in a row, whatever the event order.

pub mod dampen;
#[cfg(test)]
mod dampen_tests;
mod observe;
#[cfg(test)]
mod observe_tests;
mod probes;
#[cfg(test)]
mod tests;
mod track;
#[cfg(test)]
mod track_tests;
mod types;

pub use observe::attribute_shared_hold;
pub use probes::ProbeTally;
pub use track::PEER_MEASURE_MARGIN;
pub use types::*;

use std::time::{Duration, Instant};

/// The failback state machine. Construct it with [`Machine::new`], feed it [`Event::Boot`] first.
#[derive(Debug, Clone)]
pub struct Machine {
    cfg: MachineConfig,
    phase: Phase,
    phase_since: Instant,
    failback: Option<Failback>,
    probes: Vec<ProbeTally>,
    backend: BackendView,
    /// When the stability window started (all required probes up, no failure since).
    stable_since: Option<Instant>,
    drain: Option<Drain>,
    /// Last seen CARP state per watched `(vhid, iface)`; bounded by what the driver lets through.
    carp: std::collections::BTreeMap<(u16, String), CarpState>,
    /// Counts hook events, so a CARP poll that a hook overtook is recognised as stale.
    carp_seq: u64,
    /// Watched instances whose next polled state is learned, not a transition: after a
    /// release, the state on record dates from before the hold (a MASTER, say), and the first
    /// poll may find the BACKUP that failbackd's own hold caused, not yet preempted back.
    carp_relearn: std::collections::BTreeSet<(u16, String)>,
    last_outcome: Option<Outcome>,
    /// Id of the last failback that ended, so ids keep counting up.
    ended_failbacks: u64,
    /// Started idle on a backend that cannot show failbackd's hold (a `command` backend without
    /// `state`; OPNsense `service_status` with the shared bit set): a hold left by a previous
    /// installation may be in place. It is lifted (the idempotent promote) once every required
    /// probe is up, as a failback would; a running MASTER is never demoted for it.
    unseen_hold: bool,
    track: track::Track,
}

/// The failback in progress (from arm to outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failback {
    /// Monotonic id, 1 for the first failback since start.
    pub id: u64,
    pub trigger: Trigger,
    pub armed_at: Instant,
    pub peer_lost: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct BackendView {
    /// Last confirmed state: `Some(true)` demoted, `Some(false)` promoted, `None` unknown.
    demoted: Option<bool>,
    in_flight: Option<BackendOp>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Counts calls issued and results applied, so a measurement that a call overtook is stale.
    seq: u64,
    /// Drifts in a row without a measurement that agreed: the re-apply backs off after the first.
    drifts: u32,
    /// A new backend's state is unknown: no call until it has been measured.
    awaiting_observation: bool,
    /// The last measurement found a hold that is not failbackd's.
    foreign: bool,
    /// With `foreign`: failbackd's own part of a shared lever is in place too.
    also_ours: bool,
    /// The last measurement failed (it could not be read).
    unreadable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Drain {
    until: Instant,
    reported: bool,
}

impl Machine {
    /// A machine in `Idle`, waiting for [`Event::Boot`].
    pub fn new(cfg: MachineConfig, now: Instant) -> Machine {
        let probes = cfg.probes.iter().map(|_| ProbeTally::default()).collect();
        Machine {
            cfg,
            phase: Phase::Idle,
            phase_since: now,
            failback: None,
            probes,
            backend: BackendView::default(),
            stable_since: None,
            drain: None,
            carp: Default::default(),
            carp_seq: 0,
            carp_relearn: Default::default(),
            last_outcome: None,
            ended_failbacks: 0,
            unseen_hold: false,
            track: track::Track::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn phase_since(&self) -> Instant {
        self.phase_since
    }
    pub fn failback(&self) -> Option<&Failback> {
        self.failback.as_ref()
    }
    /// The failback in progress became MASTER while held, and that was neither a lost peer nor
    /// an ineffective hold ([`Record::PeerNotReady`], [`Record::PeerNotAsked`]).
    pub fn not_lost(&self) -> Option<NotLost> {
        let id = self.failback.as_ref()?.id;
        self.track.not_lost.filter(|(f, _)| *f == id).map(|(_, why)| why)
    }
    pub fn probe(&self, id: usize) -> Option<&ProbeTally> {
        self.probes.get(id)
    }
    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }
    /// How many failbacks have ended (the id of the last one that did).
    pub fn ended_failbacks(&self) -> u64 {
        self.ended_failbacks
    }
    pub fn last_outcome(&self) -> Option<Outcome> {
        self.last_outcome
    }
    /// The backend state last confirmed by a backend result (`None` = unknown).
    pub fn backend_demoted(&self) -> Option<bool> {
        self.backend.demoted
    }
    /// The last CARP state seen per watched `(vhid, iface)`.
    pub fn carp_states(&self) -> impl Iterator<Item = (&(u16, String), &CarpState)> {
        self.carp.iter()
    }
    /// When the node will be released or failed at the latest (while a failback runs);
    /// `None` also when the deadline lies beyond what `Instant` can represent, and for a
    /// tracking failback under `max_hold_policy = "stay"`, which holds until the path returns.
    pub fn hold_deadline(&self) -> Option<Instant> {
        if !self.max_hold_applies() {
            return None;
        }
        self.failback.as_ref().and_then(|f| f.armed_at.checked_add(self.cfg.max_hold))
    }
    /// The counter a measurement must carry to be current (see [`Observed`]).
    pub fn backend_seq(&self) -> u64 {
        self.backend.seq
    }
    /// The counter a CARP poll must carry to be current (see [`Observed`]).
    pub fn carp_seq(&self) -> u64 {
        self.carp_seq
    }
    /// Whether the last measurement found a hold that is not failbackd's.
    pub fn foreign_hold(&self) -> bool {
        self.backend.foreign
    }
    /// Whether failbackd's own hold is in place, as far as the machine knows: confirmed, and
    /// not merely someone else's hold on the same lever (unless the measurement found both).
    pub fn own_hold(&self) -> bool {
        self.backend.demoted == Some(true) && (!self.backend.foreign || self.backend.also_ours)
    }
    /// The backend call in flight, if any.
    pub fn backend_in_flight(&self) -> Option<BackendOp> {
        self.backend.in_flight
    }

    /// Names of the required probes that are not up: what blocks a release right now.
    pub fn release_blockers(&self) -> Vec<&str> {
        self.cfg
            .probes
            .iter()
            .zip(&self.probes)
            .filter(|(spec, tally)| spec.required && !tally.up)
            .map(|(spec, _)| spec.name.as_str())
            .collect()
    }

    /// The release gate, without building the list of blockers (it runs on every probe result).
    fn all_required_up(&self) -> bool {
        self.cfg.probes.iter().zip(&self.probes).all(|(spec, tally)| !spec.required || tally.up)
    }

    /// The earliest instant at which [`Event::Tick`] must be delivered, if any.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut deadlines = Vec::with_capacity(4);
        if self.backend.in_flight.is_none() {
            deadlines.extend(self.backend.retry_at);
        }
        if let Some(fb) = &self.failback {
            if self.phase.is_holding() {
                deadlines.extend(self.hold_deadline());
            }
            if self.phase == Phase::Stabilizing {
                deadlines.extend(self.release_at(fb));
            }
        }
        if self.phase == Phase::Failed {
            deadlines.extend(self.recovery_at());
        }
        if let Some(drain) = self.drain.filter(|d| !d.reported) {
            deadlines.push(drain.until);
        }
        deadlines.extend(self.track_deadline());
        deadlines.into_iter().min()
    }

    fn release_at(&self, fb: &Failback) -> Option<Instant> {
        let since = self.stable_since?;
        if self.withdraws(fb) {
            return Some(since);
        }
        Some(self.recovery_at()?.max(fb.armed_at.checked_add(self.cfg.min_hold)?))
    }

    /// When the required probes, all up since `stable_since`, have been proven for as long as a
    /// release asks (`stable_for`, dampened). A failback also waits out `min_hold`; a `failed`
    /// node is released at this instant: `failed` is "late", never "for ever". An
    /// upstream that comes back at 3 a.m. must not leave the primary demoted until someone
    /// wakes up, and both nodes must never stay held while a path is healthy (issue 18,
    /// never_both_held). `max_hold_policy = "stay"` means "do not release on a timer", not
    /// "ignore the probes".
    fn recovery_at(&self) -> Option<Instant> {
        let since = self.stable_since?;
        since.checked_add(self.required_stability(since))
    }

    /// Whether this run started at rest without seeing its own lever and has not made a backend
    /// call yet (see `on_boot`): until then a set lever may be failbackd's old hold or someone
    /// else's, and what is reported about it is a guess.
    pub fn lever_unseen(&self) -> bool {
        self.unseen_hold
    }

    /// Applies one event at `now` and returns the actions to carry out, in order.
    #[must_use]
    pub fn step(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(event, Event::Observed(_)) {
            self.track_saw_measurement();
        }
        match event {
            Event::Boot(boot) => self.on_boot(now, boot, &mut out),
            Event::Carp { vhid, iface, state } => self.on_carp(now, vhid, iface, state, &mut out),
            Event::Probe { probe, ok } => self.on_probe(now, probe, ok, &mut out),
            Event::ManualHold => self.on_manual_hold(now, &mut out),
            Event::ManualRelease { force } => self.on_manual_release(now, force, &mut out),
            Event::Drain { timeout } => self.on_drain(now, timeout, &mut out),
            Event::Backend { op, ok } => self.on_backend(now, op, ok, &mut out),
            Event::Tick => {}
            Event::Reconfigure(cfg) => self.reconfigure(now, *cfg, &mut out),
            Event::Observed(obs) => self.on_observed(now, obs, &mut out),
            Event::BackendReplaced => self.on_backend_replaced(),
            Event::PeerAnswer(answer) => self.on_peer_answer(now, answer, &mut out),
        }
        self.track_check_withdrawal(&mut out);
        // A phase change can make the next one due at once (stable_for = 0, backend already in
        // place); a few rounds settle it. Each round changes the phase or stops.
        for _ in 0..PHASES.len() {
            let before = self.phase;
            self.on_deadlines(now, &mut out);
            self.settle(now, &mut out);
            if self.phase == before {
                break;
            }
        }
        self.track_step(now, &mut out);
        self.reconcile_backend(now, &mut out);
        out
    }

    fn reconfigure(&mut self, now: Instant, cfg: MachineConfig, out: &mut Vec<Action>) {
        let tallies: Vec<ProbeTally> = cfg
            .probes
            .iter()
            .map(|new| {
                let old =
                    self.cfg.probes.iter().position(|p| p.name == new.name && p.identity == new.identity);
                old.and_then(|i| self.probes.get(i).copied()).unwrap_or_default()
            })
            .collect();
        self.probes = tallies;
        self.cfg = cfg;
        // The gate may have changed (a probe added or removed): re-evaluate it now.
        self.advance_probing(now, out);
    }

    fn on_boot(&mut self, now: Instant, boot: Boot, out: &mut Vec<Action>) {
        self.backend.demoted = boot.backend_demoted;
        self.ended_failbacks = boot.last_failback;
        // A start at rest (a boot, a first start, or a restart whose file says idle or
        // released) that cannot see its own lever: the CARP hook's fail-safe demote at boot
        // (the interfaces come up before the daemon does, `hook_fallback = "demote"`),
        // failbackd reinstalled during a hold, or a state file whose writes failed leaves a
        // hold nobody would lift. Once every required probe is up the (idempotent) promote is
        // issued once: on OPNsense `service_status` it re-evaluates the checks, which drops
        // failbackd's stale answer and keeps every other check's bit.
        self.unseen_hold = (boot.lever_unseen || boot.backend_demoted.is_none())
            && matches!(boot.previous, None | Some(Phase::Idle) | Some(Phase::Released));
        let resume = match boot.previous {
            Some(Phase::Failed) if boot.backend_demoted != Some(false) => {
                // The failback already ended as failed; stay loud and demoted.
                self.set_phase(now, Phase::Failed, out);
                self.last_outcome = Some(Outcome::Failed);
                return;
            }
            Some(Phase::Releasing) if boot.backend_demoted == Some(false) => {
                // The promote went through just before the restart: finish, do not re-hold.
                self.set_phase(now, Phase::Released, out);
                return;
            }
            Some(Phase::Releasing) if boot.backend_demoted.is_none() => {
                // A backend that cannot tell: the promote may have failed or never run. The gate
                // was passed; issue the (idempotent) promote again rather than assume it.
                self.set_phase(now, Phase::Releasing, out);
                return;
            }
            // The file says the demote had landed (probing, stabilizing) but failbackd's own
            // lever is measured off: the file is stale (its writes failed after this phase, the
            // previous run may well have released) or someone (an operator) removed the hold.
            // Either way it is not ours to put back: the node is released (D17). A `holding`
            // file had its demote in flight or failing: that one is resumed.
            Some(prev @ (Phase::Probing | Phase::Stabilizing)) if boot.backend_demoted == Some(false) => {
                out.push(Action::Record(Record::HoldNotResumed { previous: prev }));
                self.set_phase(now, Phase::Released, out);
                return;
            }
            Some(prev) if prev.in_failback() => true,
            // Demoted by us with no failback on record (crash between demote and persist, or
            // `hold_on_boot = false`): resume, so the node is never left demoted silently.
            _ => boot.backend_demoted == Some(true),
        };
        if let Some(r) = boot.resumed.filter(|_| boot.previous.is_some_and(Phase::is_holding)) {
            // The same failback as before the restart: its id, arm time and max_hold deadline.
            self.ended_failbacks = r.id.saturating_sub(1);
            self.arm_at(now, r.armed_at, Trigger::Resume, out);
            if let Some(fb) = self.failback.as_mut() {
                fb.peer_lost = r.peer_lost;
            }
        } else if resume {
            self.arm(now, Trigger::Resume, out);
        } else if boot.previous.is_none() && self.cfg.hold_on_boot {
            self.arm(now, Trigger::Boot, out);
        } else if boot.previous == Some(Phase::Released) {
            self.set_phase(now, Phase::Released, out);
        }
    }

    fn on_carp(&mut self, now: Instant, vhid: u16, iface: String, state: CarpState, out: &mut Vec<Action>) {
        // A poll that started before this hook must not undo it.
        self.carp_seq = self.carp_seq.wrapping_add(1);
        self.carp_changed(now, vhid, iface, state, true, out);
    }

    /// A CARP state from a hook (`hooked`) or the OS poll. Only a change does anything: a repeat
    /// of the same state is not a transition (CARP hooks and polls repeat themselves).
    fn carp_changed(
        &mut self,
        now: Instant,
        vhid: u16,
        iface: String,
        state: CarpState,
        hooked: bool,
        out: &mut Vec<Action>,
    ) {
        let key = (vhid, iface.clone());
        let relearn = self.carp_relearn.remove(&key);
        let previous = self.carp.insert(key, state);
        if previous == Some(state) {
            return;
        }
        let transition = hooked || (previous.is_some() && !relearn);
        out.push(Action::Record(Record::CarpChanged { vhid, iface: iface.clone(), state, transition }));
        if state == CarpState::Master && self.phase.is_holding() {
            self.master_while_held(out);
            return;
        }
        let arms = match self.phase {
            // A state learned by the first poll after a restart is not an event (the BACKUP of
            // a restarted secondary is where it belongs, not a MASTER lost).
            Phase::Idle => transition,
            // Once released we are MASTER by design; only losing it arms a new failback.
            Phase::Released => transition && state != CarpState::Master,
            _ => false,
        };
        if arms {
            self.arm(now, Trigger::Carp { vhid, iface, state }, out);
        }
        self.check_drain(now, out);
    }

    pub(super) fn mark_peer_lost(&mut self, out: &mut Vec<Action>) {
        if let Some(fb) = self.failback.as_mut() {
            if !fb.peer_lost {
                fb.peer_lost = true;
                out.push(Action::Record(Record::PeerLost { failback: fb.id }));
            }
        }
    }

    fn on_probe(&mut self, now: Instant, id: usize, ok: bool, out: &mut Vec<Action>) {
        let Some(spec) = self.cfg.probes.get(id) else { return };
        let Some(tally) = self.probes.get_mut(id) else { return };
        let (rise, fall, required) = (spec.rise, spec.fall, spec.required);
        if let Some(up) = tally.observe(ok, rise, fall) {
            out.push(Action::Record(Record::ProbeChanged { probe: id, up }));
        }
        if required && !ok && matches!(self.phase, Phase::Stabilizing | Phase::Failed) {
            // Any failure restarts the stability window; `fall` of them drops back to Probing.
            self.stable_since = None;
        }
        self.advance_probing(now, out);
    }

    /// Moves between Probing and Stabilizing as the required probes come and go.
    fn advance_probing(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Probing if self.all_required_up() => {
                self.stable_since = Some(now);
                self.set_phase(now, Phase::Stabilizing, out);
            }
            Phase::Stabilizing if !self.all_required_up() => {
                self.stable_since = None;
                self.set_phase(now, Phase::Probing, out);
            }
            Phase::Stabilizing if self.stable_since.is_none() => self.stable_since = Some(now),
            Phase::Failed if !self.all_required_up() => self.stable_since = None,
            Phase::Failed if self.stable_since.is_none() => self.stable_since = Some(now),
            _ => {}
        }
    }

    fn on_manual_hold(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.phase.is_holding() {
            return; // already held: a second failback is never started
        }
        self.supersede_drain(out);
        self.arm(now, Trigger::Manual, out);
    }

    fn on_manual_release(&mut self, now: Instant, force: bool, out: &mut Vec<Action>) {
        let releasable = self.phase.is_holding() || matches!(self.phase, Phase::Failed | Phase::Draining);
        if !releasable {
            return; // at rest already: nothing to release
        }
        if !force && !self.all_required_up() {
            let blockers = self.release_blockers().iter().map(|s| s.to_string()).collect();
            out.push(Action::Record(Record::ReleaseRefused { blockers }));
            return;
        }
        if force {
            self.track_forced_release();
        }
        if self.phase.is_holding() {
            self.finish(now, Outcome::Forced, out);
        } else {
            self.supersede_drain(out);
            self.set_phase(now, Phase::Releasing, out);
        }
    }

    fn on_drain(&mut self, now: Instant, timeout: Duration, out: &mut Vec<Action>) {
        if self.failback.is_some() {
            self.end_failback(now, Outcome::Aborted, out);
        }
        // A drain timeout is clamped by the driver; a far one never overflows here.
        let until = now.checked_add(timeout).unwrap_or(now);
        self.drain = Some(Drain { until, reported: false });
        if self.phase != Phase::Draining {
            self.set_phase(now, Phase::Draining, out);
        }
        self.check_drain(now, out);
    }

    /// A hold or release ends a drain in progress; whoever waits for it gets an answer.
    fn supersede_drain(&mut self, out: &mut Vec<Action>) {
        if self.drain.take().is_some_and(|d| !d.reported) {
            out.push(Action::Record(Record::DrainSuperseded));
        }
    }

    /// A drain is complete when the node is demoted and no watched VHID is MASTER any more.
    fn check_drain(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(drain) = self.drain else { return };
        if drain.reported || self.phase != Phase::Draining {
            return;
        }
        let handed_over = self.backend.demoted == Some(true)
            && !self.carp.is_empty()
            && self.carp.values().all(|s| *s != CarpState::Master);
        if handed_over || now >= drain.until {
            self.drain = Some(Drain { reported: true, ..drain });
            out.push(Action::Record(Record::DrainFinished { handed_over }));
        }
    }

    fn on_backend(&mut self, now: Instant, op: BackendOp, ok: bool, out: &mut Vec<Action>) {
        if self.backend.in_flight != Some(op) {
            return; // a result for a call we did not make (or a duplicate): ignore it
        }
        self.backend.in_flight = None;
        self.backend.seq = self.backend.seq.wrapping_add(1);
        if ok {
            self.backend.demoted = Some(op == BackendOp::Demote);
            self.unseen_hold = false; // a call in either direction put the lever where we know it
            self.backend.failures = 0;
            self.backend.retry_at = None;
        } else {
            self.backend.failures = self.backend.failures.saturating_add(1);
            let backoff = self.cfg.backoff.delay(self.backend.failures);
            self.backend.retry_at = now.checked_add(backoff);
            out.push(Action::Record(Record::BackendFailed { op, attempt: self.backend.failures }));
        }
    }

    /// Leaves the phases that only wait for the backend once it is in place.
    fn settle(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.backend.in_flight.is_some() {
            return;
        }
        match (self.phase, self.backend.demoted) {
            (Phase::Holding, Some(true)) => {
                self.set_phase(now, Phase::Probing, out);
                self.advance_probing(now, out);
            }
            (Phase::Releasing, Some(false)) => {
                self.carp_relearn = self.carp.keys().cloned().collect();
                self.set_phase(now, Phase::Released, out);
            }
            (Phase::Draining, _) => self.check_drain(now, out),
            _ => {}
        }
    }

    fn on_deadlines(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(fb) = self.failback.clone() {
            if self.phase.is_holding() && self.hold_deadline().is_some_and(|at| now >= at) {
                match self.cfg.max_hold_policy {
                    MaxHoldPolicy::Stay => {
                        // Stability proven while stabilizing stays proven: the late release
                        // counts from it (seed 4219: max_hold 6 ms before stable_for was up
                        // restarted a 12 s wait).
                        let stable = self.stable_since;
                        self.end_failback(now, Outcome::Failed, out);
                        self.set_phase(now, Phase::Failed, out);
                        self.stable_since = stable;
                        self.advance_probing(now, out); // the recovery clock, if all are up
                    }
                    MaxHoldPolicy::Release => {
                        self.track_forced_release();
                        self.finish(now, Outcome::Forced, out);
                    }
                }
            } else if self.phase == Phase::Stabilizing
                && self.all_required_up()
                && self.release_at(&fb).is_some_and(|at| now >= at)
            {
                self.finish(now, Outcome::Released, out);
            }
        }
        if self.phase == Phase::Failed
            && self.all_required_up()
            && self.recovery_at().is_some_and(|at| now >= at)
        {
            let failed_for = now.saturating_duration_since(self.phase_since);
            out.push(Action::Record(Record::RecoveredAfterFailure { failed_for }));
            self.stable_since = None;
            self.set_phase(now, Phase::Releasing, out);
        }
        self.check_drain(now, out);
    }

    /// Issues the backend call the current phase needs, if it is not already in place.
    fn reconcile_backend(&mut self, now: Instant, out: &mut Vec<Action>) {
        let at_rest = matches!(self.phase, Phase::Idle | Phase::Released);
        let lift_unseen = self.unseen_hold && at_rest && self.all_required_up();
        let want = if lift_unseen { Some(false) } else { self.phase.wants_demoted() };
        let b = &mut self.backend;
        if want.is_none() || (b.demoted == want && !lift_unseen) {
            // Nothing to (re)try: a retry left armed would be a deadline that is always due.
            b.retry_at = None;
            return;
        }
        let Some(want_demoted) = want else { return };
        if b.in_flight.is_some() || b.awaiting_observation {
            return;
        }
        if b.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let op = if want_demoted { BackendOp::Demote } else { BackendOp::Promote };
        b.in_flight = Some(op);
        b.retry_at = None;
        b.seq = b.seq.wrapping_add(1);
        out.push(match op {
            BackendOp::Demote => Action::Demote,
            BackendOp::Promote => Action::Promote,
        });
    }

    fn arm(&mut self, now: Instant, trigger: Trigger, out: &mut Vec<Action>) {
        self.arm_at(now, now, trigger, out);
    }

    /// Arms a failback that began at `armed_at` (earlier than `now` when resumed after a restart).
    fn arm_at(&mut self, now: Instant, armed_at: Instant, trigger: Trigger, out: &mut Vec<Action>) {
        let id = self.last_failback_id() + 1;
        self.failback = Some(Failback { id, trigger: trigger.clone(), armed_at, peer_lost: false });
        // Every probe starts down at each arm; say so for those that were up, so that metrics
        // and logs agree with the gate.
        for (probe, tally) in self.probes.iter_mut().enumerate() {
            if tally.up {
                out.push(Action::Record(Record::ProbeChanged { probe, up: false }));
            }
            *tally = ProbeTally::default();
        }
        self.stable_since = None;
        self.backend.failures = 0;
        self.backend.retry_at = None;
        out.push(Action::Record(Record::FailbackStarted { failback: id, trigger }));
        out.push(Action::RestartProbes);
        // Already demoted (restart, resume)? `settle` moves on without a second demote.
        self.set_phase(now, Phase::Holding, out);
    }

    fn last_failback_id(&self) -> u64 {
        self.failback.as_ref().map_or(self.ended_failbacks, |f| f.id)
    }

    /// Ends the failback with a releasing outcome and starts the promote.
    fn finish(&mut self, now: Instant, outcome: Outcome, out: &mut Vec<Action>) {
        self.end_failback(now, outcome, out);
        self.set_phase(now, Phase::Releasing, out);
    }

    fn end_failback(&mut self, now: Instant, outcome: Outcome, out: &mut Vec<Action>) {
        let Some(fb) = self.failback.take() else { return };
        self.ended_failbacks = fb.id;
        self.last_outcome = Some(outcome);
        self.stable_since = None;
        out.push(Action::Record(Record::FailbackEnded {
            failback: fb.id,
            outcome,
            duration: now.saturating_duration_since(fb.armed_at),
            peer_lost: fb.peer_lost,
        }));
    }

    fn set_phase(&mut self, now: Instant, to: Phase, out: &mut Vec<Action>) {
        if self.phase == to {
            return;
        }
        let from = self.phase;
        let held_for = now.saturating_duration_since(self.phase_since);
        self.phase = to;
        self.phase_since = now;
        out.push(Action::Record(Record::PhaseChanged { from, to, held_for }));
    }
}
