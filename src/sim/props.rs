//! The safety properties, checked at every step against the world's ground truth (issue 18,
//! design.md "Safety properties"). Each check names its property; the first violation ends the
//! run with the seed, the property and the trace.

use super::faults::Fault;
use super::setup::Setup;
use super::world::Sim;
use super::{Ms, Violation};
use crate::machine::dampen::DampenConfig;
use crate::machine::{CarpState, Outcome, Phase, Record, SuppressReason, Trigger};

pub const NO_PREMATURE_TAKEOVER: &str = "no_premature_takeover";
pub const NO_FALSE_DEMOTION: &str = "no_false_demotion";
pub const OPERATOR_WINS: &str = "operator_wins";
pub const NO_PING_PONG: &str = "no_ping_pong";
pub const LIVENESS: &str = "liveness";
pub const TELEMETRY_TRUTH: &str = "telemetry_truth";
pub const NEVER_BOTH_HELD: &str = "never_both_held";

/// Every property, for reports.
pub const ALL: [&str; 7] = [
    NO_PREMATURE_TAKEOVER,
    NO_FALSE_DEMOTION,
    OPERATOR_WINS,
    NO_PING_PONG,
    LIVENESS,
    TELEMETRY_TRUTH,
    NEVER_BOTH_HELD,
];

/// What the properties remember about one node.
#[derive(Debug, Default, Clone)]
pub(super) struct NodeProps {
    /// From power-on until every required target was healthy for rise x interval.
    booting: bool,
    daemon_this_boot: bool,
    /// The daemon that runs is the first one of this boot.
    first_daemon_of_boot: bool,
    daemon_started: Ms,
    /// The phase of the last daemon that stopped, and in which boot.
    stopped_phase: Option<Phase>,
    /// A `release --force` episode.
    forced_since: Option<Ms>,
    /// The same episode until the daemon's probes have certainly risen (tracking's liveness).
    forced_until_risen: Option<Ms>,
    /// When that last ended: tracking's liveness counts from there, not from before.
    forced_ended: Ms,
    /// Forced by an operator or by `max_hold_policy = "release"` since the boot.
    forced_this_boot: bool,
    operator_maintenance: bool,
    /// When an operator last left maintenance mode (the node released by the operator's hand).
    operator_left: Option<Ms>,
    backend_trouble: bool,
    backend_trouble_end: Ms,
    backend_trouble_start: Ms,
    peer_trouble: bool,
    peer_trouble_end: Ms,
    reloaded: Ms,
    /// When the node last left `failed` (an operator's hold or release starts a new clock).
    left_failed: Ms,
    /// The failback in progress as the world saw it start: id, trigger, when.
    failback: Option<(u64, Trigger, Ms)>,
    master_since_release: bool,
    carp_changed: Ms,
    master_since: Option<Ms>,
    track_demotions: Vec<Ms>,
    lever_touched: Option<Ms>,
    lever_clear_since: Option<Ms>,
    /// Since when something demotes the node (`None`: nothing does).
    lever_set_since: Option<Ms>,
    both_held_since: Option<Ms>,
    mismatch: [Option<Ms>; 4],
    /// When the last state file write landed (it records the demotions until then).
    recorded_until: Ms,
    /// A failback resumed from a stale state file on a lever failbackd cannot read (the
    /// no_false_demotion exemption): its reported hold is a belief until the failback ends.
    blind_stale_resume: bool,
}

impl NodeProps {
    /// The forced-release episode ends (an operator's hold, a reboot, a reinstall).
    fn end_forced(&mut self, now: Ms) {
        if self.forced_until_risen.take().is_some() {
            self.forced_ended = now;
        }
        self.forced_since = None;
    }
}

#[derive(Debug, Default)]
pub(super) struct Props {
    pub n: [NodeProps; 2],
}

impl Props {
    pub fn new(_setup: &Setup) -> Props {
        Props::default()
    }

    pub fn fault(&mut self, now: Ms, f: &Fault) {
        let p = &mut self.n[f.node()];
        match *f {
            Fault::OperatorHold { .. } => p.end_forced(now),
            // failbackd installed afresh (its state file gone): nothing on the node remembers
            // the old daemon's forced release any more than after a reboot (where the episode
            // ends too). The state file carries it across a restart; a reinstall is not one.
            Fault::FirstStart { .. } => p.end_forced(now),
            Fault::Backend { .. } => {
                p.backend_trouble = true;
                p.backend_trouble_end = now;
                p.backend_trouble_start = now;
            }
            Fault::Peer { .. } => {
                p.peer_trouble = true;
                p.peer_trouble_end = now;
            }
            Fault::OperatorRelease { .. } => p.booting = false,
            _ => {}
        }
    }
    /// `release --force`; `overrides` when the node's paths had not risen (a forced release of
    /// a node whose probes are up overrides nothing: a later outage is a new episode).
    pub fn forced(&mut self, n: usize, now: Ms, overrides: bool) {
        if overrides {
            self.n[n].forced_since = Some(now);
            self.n[n].forced_until_risen = Some(now);
        }
        self.n[n].forced_this_boot = true;
    }
    pub fn operator_maintenance(&mut self, n: usize, _now: Ms) {
        self.n[n].operator_maintenance = true;
    }
    pub fn operator_maintenance_ended(&mut self, n: usize, now: Ms) {
        self.n[n].operator_maintenance = false;
        self.n[n].operator_left = Some(now);
        self.n[n].lever_touched = Some(now);
    }
    pub fn backend_trouble_ended(&mut self, n: usize, now: Ms) {
        self.n[n].backend_trouble = false;
        self.n[n].backend_trouble_end = now;
    }
    pub fn peer_trouble_ended(&mut self, n: usize, now: Ms) {
        self.n[n].peer_trouble = false;
        self.n[n].peer_trouble_end = now;
    }
    pub fn lever_changed_by_world(&mut self, n: usize, now: Ms) {
        self.n[n].lever_touched = Some(now);
    }
    pub fn booted(&mut self, n: usize, now: Ms) {
        let p = &mut self.n[n];
        p.booting = true;
        p.daemon_this_boot = false;
        p.end_forced(now);
        p.forced_this_boot = false;
        p.stopped_phase = None;
        // A failback resumed at a boot is this boot's failback (its ids start again from the
        // state file, usually cleared: a coincidentally equal id is not the failback of before
        // the power loss). Keeping the old trigger made a tracking failback of the last boot
        // out of a `resume` that `max_hold` ends `failed` as designed (seeds 53, 378).
        p.failback = None;
        p.lever_touched = Some(now);
        p.mismatch = [None; 4];
    }
    /// Node `n`'s state file is gone (tmpfs at a boot, failbackd installed anew): the flap
    /// limit's history and a forced release's episode with it. Both count from here: nothing
    /// left on the node says what was before (README "Restart", docs/simulation.md).
    pub fn state_file_lost(&mut self, n: usize) {
        self.n[n].track_demotions.clear();
        self.n[n].forced_since = None;
    }
    /// A state file write landed at `now`: it records every tracking demotion until then.
    pub fn state_recorded(&mut self, n: usize, now: Ms) {
        self.n[n].recorded_until = now;
    }
    pub fn daemon_started(&mut self, n: usize, now: Ms) {
        // A demotion the state file never recorded (its writes failed until the daemon stopped)
        // is gone from the world like a tmpfs file at a boot: the new daemon cannot count it
        // (seed 4697; `failback_state_file_write_errors_total` and its alert say so).
        let recorded = self.n[n].recorded_until;
        self.n[n].track_demotions.retain(|t| *t <= recorded);
        self.n[n].first_daemon_of_boot = !self.n[n].daemon_this_boot;
        self.n[n].daemon_this_boot = true;
        self.n[n].daemon_started = now;
        self.n[n].mismatch = [None; 4];
    }
    pub fn daemon_stopped(&mut self, n: usize, phase: Phase) {
        self.n[n].stopped_phase = Some(phase);
    }
    pub fn reloaded(&mut self, n: usize, now: Ms) {
        self.n[n].reloaded = now;
    }
    pub fn carp_changed(&mut self, n: usize, _from: CarpState, to: CarpState, now: Ms) {
        let p = &mut self.n[n];
        p.carp_changed = now;
        if to == CarpState::Master {
            p.master_since_release = true;
            p.master_since = Some(now);
        } else {
            p.master_since = None;
        }
    }
}

impl Sim {
    fn violate(&mut self, property: &'static str, node: usize, detail: String) {
        if !(self.only.is_empty() || self.only.contains(&property)) || self.found.contains(&property) {
            return;
        }
        self.found.push(property);
        let v =
            Violation { seed: self.seed, property, node, at: self.now, detail, trace: self.trace.render() };
        if self.violation.is_none() {
            self.violation = Some(v);
        } else {
            self.later.push(v);
        }
    }

    /// Whether releasing `n` by force now overrides what its probes concluded: its paths have
    /// not risen, and did not die so recently (less than fall x interval) that the probes could
    /// not have fallen yet.
    pub(super) fn force_overrides(&self, n: usize) -> bool {
        let s = &self.setup;
        let risen = u64::from(s.rise.saturating_sub(1)) * s.interval;
        let fall = u64::from(s.fall) * s.interval;
        let fresh = self
            .probes_of(n)
            .iter()
            .filter(|d| d.required)
            .any(|d| self.down_since(n, d.target, self.now).is_some_and(|t| t + fall + 10 > self.now));
        !self.path_ok_for(n, risen) && !fresh
    }

    /// Every required target of `n` healthy for at least `d` (up to now).
    pub(super) fn path_ok_for(&self, n: usize, d: Ms) -> bool {
        self.path_ok_since(n).is_some_and(|s| s + d <= self.now)
    }

    /// Since when every required target of `n` has been healthy (`None`: one is down).
    pub(super) fn path_ok_since(&self, n: usize) -> Option<Ms> {
        let mut since = 0;
        for p in self.probes_of(n).iter().filter(|p| p.required) {
            since = since.max(self.healthy_since(n, p.target, self.now)?);
        }
        Some(since)
    }

    /// Every tracked required target of `n` healthy during the last `d`.
    fn tracked_ok_for(&self, n: usize, d: Ms) -> bool {
        let now = self.now;
        self.probes_of(n)
            .iter()
            .filter(|p| p.required && p.tracked)
            .all(|p| self.healthy_since(n, p.target, now).is_some_and(|s| s + d <= now))
    }

    fn fall_window(&self) -> Ms {
        u64::from(self.setup.fall) * self.setup.interval + self.setup.track_for
    }

    /// Whether node `o` could carry the traffic now (ground truth): up, CARP running, nothing
    /// demoting it, its required paths healthy.
    fn can_carry(&self, o: usize) -> bool {
        let node = &self.nodes[o];
        node.powered
            && node.if_up
            && node.lever.demotion(self.setup.lever) == 0
            && self.path_ok_for(o, self.setup.interval + 100)
    }

    /// Whether every required target of `n` was healthy for `d` up to the instant `at`.
    fn path_ok_until(&self, n: usize, at: Ms, d: Ms) -> bool {
        self.probes_of(n)
            .iter()
            .filter(|p| p.required)
            .all(|p| self.healthy_since(n, p.target, at).is_some_and(|s| s + d <= at))
    }

    // ---- record-based checks ----

    pub(super) fn on_record(&mut self, n: usize, r: &Record) {
        match r {
            Record::FailbackStarted { failback, trigger } => self.on_armed(n, *failback, trigger),
            Record::TrackDemoted { .. } => self.on_track_demoted(n),
            Record::TrackSuppressed { reason: SuppressReason::PeerUnhealthy, .. }
                if self.peer_able_since(1 - n).is_some_and(|t| t + 2 * self.setup.interval <= self.now)
                    && !self.setup.peer_is_self[n] =>
            {
                self.violate(
                    TELEMETRY_TRUTH,
                    n,
                    "tracking suppressed a demotion as peer_unhealthy while the peer could take the traffic"
                        .into(),
                );
            }
            Record::TrackSuppressed { reason: SuppressReason::PeerUnhealthy, .. }
                if self.setup.peer_is_self[n] =>
            {
                self.violate(
                    TELEMETRY_TRUTH,
                    n,
                    "tracking judged its own /status as the peer's (peer URL pointing at this node)".into(),
                );
            }
            Record::TrackSuppressed { reason, .. } => {
                let w = self.fall_window();
                if self.tracked_ok_for(n, w) {
                    self.violate(
                        TELEMETRY_TRUTH,
                        n,
                        format!(
                            "tracking reports a tracked probe down (suppressed: {}) while every tracked target was healthy for the last {} ms",
                            reason.as_str(),
                            w
                        ),
                    );
                }
            }
            Record::PeerLost { .. } => {
                let o = 1 - n;
                // peer_lost explains why CARP made this held node MASTER: it is about the
                // peer at that moment, not at the answer's arrival. A peer whose CARP left INIT
                // after this node became MASTER was not advertising when CARP chose (seed 898:
                // the peer powered up during the ask, BACKUP 6 ms after this node's MASTER).
                let running_then = self.nodes[o].carp_since <= self.nodes[n].carp_since;
                if self.nodes[o].powered && self.nodes[o].if_up && running_then {
                    self.violate(
                        TELEMETRY_TRUTH,
                        n,
                        format!(
                            "recorded peer_lost while the peer is up and running CARP ({}): MASTER while held was not the peer's loss",
                            self.nodes[o].carp
                        ),
                    );
                }
            }
            Record::BackendDrift { direction, .. } => {
                let window = 2 * self.setup.reconcile + self.setup.telemetry_slack();
                let touched = self.props.n[n].lever_touched.is_some_and(|t| t + window >= self.now);
                if !touched {
                    self.violate(
                        TELEMETRY_TRUTH,
                        n,
                        format!(
                            "reported drift ({}) of its hold, but nobody touched failbackd's own lever (demotion {})",
                            direction.as_str(),
                            self.nodes[n].lever.demotion(self.setup.lever)
                        ),
                    );
                }
            }
            Record::PhaseChanged { from: Phase::Releasing, to: Phase::Released, .. } => {
                self.props.n[n].master_since_release = self.nodes[n].carp == CarpState::Master;
            }
            Record::FailbackEnded { outcome: Outcome::Forced, .. } => {
                // Forced by an operator or by `max_hold_policy = "release"`: that decision stands
                // for its episode (operator_wins), and tracking's liveness does not apply in it.
                let overrides = self.force_overrides(n);
                self.props.forced(n, self.now, overrides);
            }
            Record::PhaseChanged { from: Phase::Failed, .. } => self.props.n[n].left_failed = self.now,
            _ => {}
        }
    }

    fn on_armed(&mut self, n: usize, id: u64, trigger: &Trigger) {
        let now = self.now;
        let p = &self.props.n[n];
        let same = p.failback.as_ref().is_some_and(|(i, _, _)| *i == id);
        if !(same && *trigger == Trigger::Resume) {
            self.props.n[n].failback = Some((id, trigger.clone(), now));
        }
        let p = &self.props.n[n];
        if p.forced_since.is_some() && matches!(trigger, Trigger::Track { .. } | Trigger::Resume) {
            self.violate(
                OPERATOR_WINS,
                n,
                format!("failback armed by {trigger} inside the episode of an operator's release --force"),
            );
            return;
        }
        match trigger {
            Trigger::Carp { .. } => {
                let recent = p.carp_changed + self.setup.telemetry_slack() >= now;
                if !recent && !p.master_since_release {
                    self.violate(
                        NO_FALSE_DEMOTION,
                        n,
                        format!(
                            "armed a failback by {trigger} on a released node whose CARP state has not changed for {} ms and which has not been MASTER since its release",
                            now - p.carp_changed
                        ),
                    );
                }
            }
            Trigger::Resume => {
                let in_failback = p.stopped_phase.is_some_and(|ph| ph.in_failback() || ph == Phase::Failed);
                let first_this_boot = p.daemon_started == now && p.first_daemon_of_boot;
                let held = self.nodes[n].lever.failbackd_holds(self.setup.lever);
                // A lever failbackd cannot measure (`command` without `state`) and a state file
                // that no longer says what the previous daemon did (its writes failed): nothing
                // the daemon can see tells a stale hold from a real one, and resuming is the
                // safe guess (docs/simulation.md, D17).
                let file_phase = self.nodes[n].state_file.as_ref().and_then(|f| f.phase());
                let blind_stale = self.setup.lever == super::setup::Lever::SysctlBlind
                    && file_phase.is_some_and(|ph| Some(ph) != p.stopped_phase && ph.in_failback());
                let stopped = p.stopped_phase;
                if blind_stale && !(in_failback || first_this_boot || held) {
                    // The resumed hold is the daemon's belief from the file; what it reports
                    // about it cannot be checked by anything it can read either (seed 743).
                    self.props.n[n].blind_stale_resume = true;
                }
                if !(in_failback || first_this_boot || held || blind_stale) {
                    self.violate(
                        NO_FALSE_DEMOTION,
                        n,
                        format!(
                            "resumed a hold that was not there: the previous daemon was {stopped:?}, failbackd's lever is off"
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    fn on_track_demoted(&mut self, n: usize) {
        let now = self.now;
        let window = self.setup.window;
        let p = &mut self.props.n[n];
        p.track_demotions.retain(|t| t + 2 * window > now);
        p.track_demotions.push(now);
        let count = p.track_demotions.iter().filter(|t| *t + window > now).count();
        let w = self.fall_window();
        if self.tracked_ok_for(n, w) {
            self.violate(
                NO_FALSE_DEMOTION,
                n,
                format!(
                    "tracking demoted the node while every tracked target was healthy for the last {w} ms"
                ),
            );
        }
        let o = 1 - n;
        // `track_without_peer = "demote"` with a peer that could not be asked: the operator's
        // policy, not a judgement of the peer.
        let by_policy = self.last_peer_answer[n] != Some(crate::machine::PeerHealth::Healthy);
        // A demotion of the peer younger than the telemetry slack is not in its /status yet
        // (its backend is measured every reconcile_interval; telemetry_truth allows the same
        // lag), and `judge` can only read that answer: an operator's maintenance or another
        // plugin's demotion that began seconds before the ask cannot be known. (The node's own
        // side is fixed: after a takeover it waits for an answer measured since, track.rs.)
        // Likewise a path that died less than a probe interval ago (seed 399: a 1 s shared
        // blip that began 1 ms before the ask): the peer's probes cannot have seen it.
        let iv = self.setup.interval + 100;
        let node = &self.nodes[o];
        let demotion_known = node.lever.demotion(self.setup.lever) == 0
            || self.props.n[o].lever_set_since.is_some_and(|t| t + self.setup.telemetry_slack() > now);
        let path_known = self.path_ok_for(o, iv) || self.path_ok_until(o, now.saturating_sub(iv), iv);
        let unknowable = node.powered && node.if_up && demotion_known && path_known;
        if !by_policy && !unknowable && !self.can_carry(o) {
            let node = &self.nodes[o];
            let detail = format!(
                "tracking demoted the node towards a peer that cannot carry the traffic (powered {}, CARP {}, demotion {}, path ok {})",
                node.powered,
                node.carp,
                node.lever.demotion(self.setup.lever),
                self.path_ok_since(o).is_some()
            );
            self.violate(NO_PING_PONG, n, detail);
        }
        // The flap limit applies without a peer; with one, flapping is dampened on the return
        // (issue 21), which the liveness bound allows for.
        if !self.setup.peer && count > self.setup.max_demotions as usize {
            self.violate(
                NO_PING_PONG,
                n,
                format!(
                    "{count} tracking demotions within one window, max_demotions is {}",
                    self.setup.max_demotions
                ),
            );
        }
    }

    pub(super) fn operator_maintenance_undone(&mut self, n: usize, _now: Ms) {
        self.violate(OPERATOR_WINS, n, "failbackd left the maintenance mode an operator entered".into());
    }

    /// A CARP transition: the no-premature-takeover check.
    pub(super) fn check_takeover(&mut self, n: usize, from: CarpState, to: CarpState) {
        if to != CarpState::Master || from == CarpState::Master {
            return;
        }
        let o = 1 - n;
        let p = &self.props.n[n];
        let took_from_serving_peer =
            self.nodes[o].carp == CarpState::Master && self.path_ok_since(o).is_some();
        // `rise` passes in a row span (rise - 1) intervals.
        let rise = u64::from(self.setup.rise.saturating_sub(1)) * self.setup.interval;
        let operator_released = p.operator_left.is_some_and(|t| t + self.setup.telemetry_slack() >= self.now);
        if p.booting
            && !operator_released
            && self.setup.hold_on_boot
            && self.setup.lever_works[n]
            && !p.forced_this_boot
            // Without the daemon only a lever with a boot hold of its own (OPNsense's early
            // `failbackd ready`, FreeBSD's sysctl.conf) can hold: not the command backend.
            && (p.daemon_this_boot || self.setup.lever != super::setup::Lever::SysctlBlind)
            && took_from_serving_peer
            && !self.path_ok_for(n, rise)
        {
            let since = self
                .path_ok_since(n)
                .map_or("down".to_string(), |s| format!("healthy for {} ms", self.now - s));
            self.violate(
                NO_PREMATURE_TAKEOVER,
                n,
                format!(
                    "took MASTER from a serving peer {} ms after power-on while its required path is {since} (rise x interval is {rise} ms)",
                    self.now - self.nodes[n].boot_at
                ),
            );
        }
    }

    // ---- state-based checks ----

    pub(super) fn check_state(&mut self) {
        for n in 0..2 {
            self.update_node(n);
        }
        for n in 0..2 {
            self.check_telemetry(n);
            self.check_release(n);
            self.check_tracking(n);
        }
        self.check_both_held();
    }

    fn update_node(&mut self, n: usize) {
        let rise = u64::from(self.setup.rise.saturating_sub(1)) * self.setup.interval;
        let ok = self.path_ok_for(n, rise);
        let clear = self.nodes[n].lever.demotion(self.setup.lever) == 0;
        let p = &mut self.props.n[n];
        if p.booting && ok {
            p.booting = false;
        }
        // The forced episode ends when the daemon's probes have risen: `rise` passes, which
        // take between (rise - 1) and rise intervals after the path came back, by the probes'
        // phase. operator_wins checks until the earliest (an arm after it may be legitimate),
        // tracking's liveness is exempt until the latest (seed 1520: ended a pass too early).
        let risen = self.path_ok_for(n, u64::from(self.setup.rise) * self.setup.interval + 100);
        let p = &mut self.props.n[n];
        if p.forced_since.is_some() && ok {
            p.forced_since = None;
        }
        if p.forced_until_risen.is_some() && risen {
            p.forced_until_risen = None;
            p.forced_ended = self.now;
        }
        if !clear {
            p.lever_clear_since = None;
            p.lever_set_since.get_or_insert(self.now);
        } else {
            p.lever_set_since = None;
            p.lever_clear_since.get_or_insert(self.now);
        }
    }

    /// telemetry_truth: held, foreign hold, phase and CARP agree with the world within one
    /// reconcile interval plus backend time.
    fn check_telemetry(&mut self, n: usize) {
        if self.nodes[n].proc.as_ref().is_some_and(|p| p.m.failback().is_none()) {
            self.props.n[n].blind_stale_resume = false; // that failback ended
        }
        let slack = self.setup.telemetry_slack();
        let lever = self.setup.lever;
        let now = self.now;
        let node = &self.nodes[n];
        let Some(proc) = &node.proc else { return };
        let p = &self.props.n[n];
        let m = &proc.m;
        // A start at rest that cannot see its own lever (failbackd reinstalled during a hold, a
        // stale state file with a blind backend or a set service bit) cannot tell its old hold
        // from someone else's: no reading can. It says so (`Machine::lever_unseen`) and lifts
        // that hold once the probes are up (liveness checks it); until its first call the
        // attribution is excused like backend trouble.
        let blind_belief = p.blind_stale_resume && m.failback().is_some();
        let trouble =
            p.backend_trouble || p.backend_trouble_end + slack > now || m.lever_unseen() || blind_belief;
        let truth_held = node.lever.failbackd_holds(lever);
        let truth_foreign = node.lever.foreign(lever);
        let reported_held = m.own_hold();
        let wants = m.phase().wants_demoted();
        let machine_carp = m.carp_states().next().map(|(_, s)| *s);
        let checks = [
            (reported_held != truth_held && lever != super::setup::Lever::SysctlBlind, "held"),
            (m.foreign_hold() != truth_foreign, "foreign hold"),
            (
                (wants == Some(false) && truth_held)
                    || (wants == Some(true) && !truth_held && !truth_foreign),
                "phase",
            ),
            (node.if_up && machine_carp.is_some_and(|s| s != node.carp), "CARP state"),
        ];
        let mut found = None;
        for (i, (bad, what)) in checks.into_iter().enumerate() {
            let slot = &mut self.props.n[n].mismatch[i];
            if !bad || trouble {
                *slot = None;
                continue;
            }
            let since = *slot.get_or_insert(now);
            if now > since + slack && found.is_none() {
                found = Some((what, since));
            }
        }
        if let Some((what, since)) = found {
            let detail = format!(
                "{what} disagrees with the world for {} ms: phase {}, reported held {reported_held} (truth {truth_held}), foreign {} (truth {truth_foreign}), CARP {:?} (truth {}), demotion {}",
                now - since,
                m.phase(),
                m.foreign_hold(),
                machine_carp,
                node.carp,
                node.lever.demotion(lever)
            );
            self.violate(TELEMETRY_TRUTH, n, detail);
        }
    }

    /// The deadline by which failbackd's hold on `n` must be gone (`None`: not due, path down).
    fn release_due(&self, n: usize) -> Option<Ms> {
        let node = &self.nodes[n];
        node.proc.as_ref()?; // no daemon, no hold of its own to release
        let p = &self.props.n[n];
        if p.backend_trouble {
            return None;
        }
        let path = self.path_ok_since(n)?;
        let armed = p.failback.as_ref().map_or(0, |f| f.2);
        let start = path
            .max(p.daemon_started)
            .max(armed)
            .max(p.reloaded)
            .max(self.backend_retried(n))
            .max(p.left_failed);
        // Dampening (issue 21): with a peer, the return after a tracking demotion may ask for up
        // to `max_stability` of proven health on top. The penalty is the node's, not the
        // failback's: any failback (a boot, a `resume` after a restart or a reboot with the
        // history carried over) whose path became stable while it was above `reuse` waits for
        // it, and it decays below `reuse` within `max_stability` of the last demotion.
        let max_stability = DampenConfig::default().max_stability.as_millis() as u64;
        let by_tracking = p.failback.as_ref().is_some_and(|f| matches!(f.1, Trigger::Track { .. }))
            || p.track_demotions.iter().any(|t| t + max_stability > path);
        let dampened = if by_tracking && self.setup.peer { max_stability } else { 0 };
        Some(start + self.setup.release_bound() + dampened)
    }

    /// liveness (1): healthy paths release failbackd's hold; a tracking-demoted node fails back.
    fn check_release(&mut self, n: usize) {
        let node = &self.nodes[n];
        if !node.lever.failbackd_holds(self.setup.lever) {
            return;
        }
        let Some(proc) = &node.proc else { return };
        // `failed` included: max_hold ends the wait on a timer, not the hold on a healthy path.
        let phase = proc.m.phase();
        let Some(due) = self.release_due(n) else { return };
        if self.now > due {
            let trigger = self.props.n[n].failback.as_ref().map(|f| f.1.to_string());
            self.violate(
                LIVENESS,
                n,
                format!(
                    "failbackd's hold is still on {} ms after the deadline (paths healthy since {:?}, phase {phase}, failback armed by {:?})",
                    self.now - due,
                    self.path_ok_since(n),
                    trigger
                ),
            );
        }
    }

    /// When a call that failed during the last backend trouble has certainly been retried: the
    /// machine backs off (1 s doubling, at most 30 s: `Backoff`), so the retry in force when
    /// the backend works again may come up to the trouble's length (+ the first second) later
    /// (seeds 710, 1445, 1933: a demotion 16-32 s after a 46-75 s backend outage).
    fn backend_retried(&self, n: usize) -> Ms {
        let p = &self.props.n[n];
        let backoff = crate::machine::Backoff::default();
        let length = p.backend_trouble_end.saturating_sub(p.backend_trouble_start) + 1_000;
        p.backend_trouble_end + length.min(backoff.max.as_millis() as u64)
    }

    /// liveness (2): a MASTER whose tracked path is down is demoted when the peer can take over.
    fn check_tracking(&mut self, n: usize) {
        let s = &self.setup;
        let node = &self.nodes[n];
        let o = 1 - n;
        let Some(proc) = &node.proc else { return };
        if node.carp != CarpState::Master || node.lever.failbackd_holds(s.lever) {
            return;
        }
        let now = self.now;
        let p = &self.props.n[n];
        if p.forced_until_risen.is_some() || p.backend_trouble {
            return;
        }
        let window = s.window;
        if !s.peer
            && p.track_demotions.iter().filter(|t| *t + window > now).count() >= s.max_demotions as usize
        {
            return;
        }
        let down = proc
            .probes
            .iter()
            .filter(|d| d.required && d.tracked)
            .filter_map(|d| self.down_since(n, d.target, now))
            .min();
        let Some(down) = down else { return };
        let peer = &self.nodes[o];
        // A `peer` URL that reaches this node itself cannot be asked either.
        let peer_answers = s.peer && !s.peer_is_self[n] && peer.peer_fault.is_none() && peer.proc.is_some();
        if !peer_answers && !s.demote_without_peer {
            return; // track_without_peer = "stay"
        }
        let Some(peer_able) = self.peer_able_since(o) else { return };
        // The flap limit frees up when a demotion leaves the window.
        let freed = p.track_demotions.iter().map(|t| t + window).filter(|t| *t <= now).max().unwrap_or(0);
        let start = [
            freed,
            down + self.fall_window(),
            peer_able,
            p.master_since.unwrap_or(now),
            p.forced_ended,
            p.daemon_started,
            p.reloaded,
            self.backend_retried(n),
        ]
        .into_iter()
        .max()
        .unwrap_or(now);
        let tol = s.interval + s.reconcile + 2_000 + 2 * s.backend_ms + super::setup::HOOK_LATE_MAX + 3_000;
        if now > start + tol {
            self.violate(
                LIVENESS,
                n,
                format!(
                    "MASTER with its tracked path down since {:.3}s and a peer able to take over since {:.3}s, not demoted after {} ms (phase {})",
                    down as f64 / 1000.0,
                    peer_able as f64 / 1000.0,
                    now - start,
                    proc.m.phase()
                ),
            );
        }
    }

    /// Since when node `o` could take the traffic and would say so when asked: it carries
    /// ([`Self::can_carry`]), is BACKUP, and its daemon has had rise x interval (and one more)
    /// to see its paths up since it started, reloaded, released or answered again.
    fn peer_able_since(&self, o: usize) -> Option<Ms> {
        let s = &self.setup;
        let peer = &self.nodes[o];
        // A peer whose daemon holds it (a failback until its paths prove themselves) refuses
        // the traffic by contract, whether or not its backend managed to apply the lever
        // (seeds 1691, 1946: the demotion kept failing, so the lever stayed clear while the
        // peer was holding); its hold is bounded by never_both_held and liveness, not here.
        if peer.proc.as_ref()?.m.phase().is_holding() {
            return None;
        }
        if !self.can_carry(o) || peer.carp != CarpState::Backup {
            return None;
        }
        let pp = &self.props.n[o];
        // A peer whose failbackd is holding it (a failback in progress) while its backend
        // fails has a clear lever only because the demote fails: its daemon pulls it the moment
        // the backend answers, and says "holding", not ready, meanwhile. Handing it the traffic
        // hands it to a node about to be demoted by its own daemon (seeds 2702, 2952: displaced
        // by the MASTER's release, the peer's demote failing for 88-114 s). Not able until its
        // retry has certainly landed; the lever tells from there.
        let holding = peer.proc.as_ref().is_some_and(|p| p.m.failback().is_some());
        if holding && (pp.backend_trouble || self.now < self.backend_retried(o)) {
            return None;
        }
        let rise = u64::from(s.rise + 1) * s.interval;
        let peer_path = self.path_ok_since(o)?;
        [
            peer_path + rise,
            pp.daemon_started + rise,
            pp.reloaded + rise,
            peer.carp_since,
            // The peer's daemon learns that a hold it did not lift itself (another check's
            // demotion, an operator's maintenance) went away at its next reading, on its
            // reconcile_interval grid; its /status says "held" until then (seeds 295, 429, 726:
            // asked 2 to 9 s after the other hold ended, before that reading). Its own release
            // is read right after the call; the bound covers both.
            pp.lever_clear_since.map_or(self.now, |t| t + s.reconcile + 2 * s.backend_ms + 100),
            pp.peer_trouble_end,
        ]
        .into_iter()
        .max()
    }

    /// never_both_held: both nodes held by failbackd past the release bound while either has
    /// a healthy path.
    /// "A: x, B: y" for a per-node fact that may be missing.
    fn describe(&self, fact: impl Fn(&Self, usize) -> Option<String>) -> String {
        let each =
            (0..2).map(|m| format!("{}: {}", ["A", "B"][m], fact(self, m).unwrap_or_else(|| "-".into())));
        each.collect::<Vec<_>>().join(", ")
    }

    fn check_both_held(&mut self) {
        let lever = self.setup.lever;
        let both = (0..2).all(|n| self.nodes[n].lever.failbackd_holds(lever));
        if !both {
            self.props.n[0].both_held_since = None;
            return;
        }
        let since = *self.props.n[0].both_held_since.get_or_insert(self.now);
        for n in 0..2 {
            let Some(due) = self.release_due(n) else { continue };
            let due = due.max(since + self.setup.release_bound());
            if self.now > due {
                self.violate(
                    NEVER_BOTH_HELD,
                    n,
                    format!(
                        "both nodes held by failbackd for {} ms while this one's paths are healthy since {:?} (phases {}, armed by {})",
                        self.now - since,
                        self.path_ok_since(n),
                        self.describe(|s, m| s.nodes[m].proc.as_ref().map(|p| p.m.phase().to_string())),
                        self.describe(|s, m| s.props.n[m].failback.as_ref().map(|f| f.1.to_string())),
                    ),
                );
                return;
            }
        }
    }
}
