//! The simulated world: two nodes, their paths, their CARP, their levers, their daemons, on one
//! simulated clock driven by a queue of timed events (time jumps from one event to the next).

use super::driver::{self, Measured};
use super::faults::{Change, Fault, Outage, PeerFault};
use super::lever::{LeverState, Owner};
use super::props::Props;
use super::rng::Rng;
use super::setup::{Lever, ProbeDef, Setup, ALT, HOOK_LATE_MAX, SLOW_BACKEND_MAX, TARGETS, V6};
use super::trace::{Entry, Trace};
use super::{Ms, Violation};
use crate::daemon::boot::{self, Found, StartMode, SystemBoot};
use crate::daemon::carry;
use crate::machine::{
    Action, BackendOp, CarpReading, CarpState, Event, Machine, Observed, PeerHealth, Phase,
};
use crate::statefile::Persisted;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// CARP's advertisement interval (advbase 1).
const ADVBASE: Ms = 1_000;
/// A better BACKUP preempts at the master's next advertisement.
const PREEMPT_DELAY: Ms = ADVBASE / 2;
const ADVSKEW: [i64; 2] = [0, 100];
const MAX_SKEW: i64 = 240;
/// failbackd's timeout for the peer's /status (`daemon::peer::PEER_TIMEOUT`).
const PEER_TIMEOUT: Ms = 2_000;
const VHID: u16 = 1;
/// The world's wall clock at its time 0 (Unix seconds).
const SIM_EPOCH: f64 = 1_800_000_000.0;
/// The properties are checked after every event and at least this often.
const CHECK_EVERY: Ms = 1_000;
const IFACE: &str = "em0";

#[derive(Debug, Clone)]
pub(super) enum Ev {
    Fault(Fault),
    EndMaintenance(usize),
    EndOther(usize),
    EndBackend(usize),
    EndPeer(usize),
    EndReadOnly(usize),
    EndStop(usize),
    PowerOn(usize),
    EarlyEval(usize, u64),
    InterfacesUp(usize, u64),
    PreemptOn(usize, u64),
    DaemonStart(usize, u64),
    ProbeAttempt {
        node: usize,
        gen: u64,
        pgen: u64,
        idx: usize,
    },
    ProbeResult {
        node: usize,
        gen: u64,
        pgen: u64,
        idx: usize,
        ok: bool,
        attempt: Ms,
    },
    Reconcile {
        node: usize,
        gen: u64,
        rgen: u64,
    },
    /// Time passes: the properties are checked at least this often.
    Check,
    Measured {
        node: usize,
        gen: u64,
        backend_seq: u64,
        carp_seq: u64,
    },
    BackendDone {
        node: usize,
        gen: u64,
        boot: u64,
        op: BackendOp,
        fails: bool,
    },
    PeerAnswer {
        node: usize,
        gen: u64,
        lost: bool,
    },
    Deadline {
        node: usize,
        gen: u64,
        at: Ms,
    },
    Hook {
        node: usize,
        gen: u64,
        state: CarpState,
    },
    /// The syshook ran while no daemon was there (`hook_fallback = "demote"`, cli.rs `hook`).
    FallbackHook {
        node: usize,
        boot: u64,
    },
    Carp,
}

struct Queued(Ms, u64, Ev);
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

/// A running failbackd process.
pub(super) struct Proc {
    pub gen: u64,
    pub m: Machine,
    pub probes: Vec<ProbeDef>,
    pub pgen: u64,
    pub observing: bool,
    pub last_measured: Option<Measured>,
    pub persisted: Option<Persisted>,
    pub deadline: Option<Ms>,
    /// The reconcile timer's origin and generation.
    pub reconcile_origin: Ms,
    pub rgen: u64,
    /// The last measurement changed nothing: (world fingerprint, backend_seq, carp_seq) then.
    pub quiet: Option<(u64, u64, u64)>,
    /// The reconcile timer sleeps while measuring could change nothing (see `Sim::wake`).
    pub sleeping: bool,
}

pub(super) struct Node {
    pub powered: bool,
    pub boot_no: u64,
    pub boot_at: Ms,
    pub if_up: bool,
    pub preempt: bool,
    pub carp: CarpState,
    pub carp_since: Ms,
    pub better_since: Option<Ms>,
    pub lever: LeverState,
    pub state_file: Option<Persisted>,
    pub state_ro: bool,
    /// The installed configuration's probes (what a restart runs).
    pub probes: Vec<ProbeDef>,
    pub proc: Option<Proc>,
    pub backend_slow: bool,
    pub backend_failing: bool,
    pub peer_fault: Option<PeerFault>,
    /// The daemon does not run before this (stopped, or failing to start).
    pub stopped_until: Ms,
}

pub(super) struct Sim {
    pub seed: u64,
    pub setup: Setup,
    pub now: Ms,
    pub t0: Instant,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    pub rng: Rng,
    pub nodes: [Node; 2],
    /// Per node and target, when it does not answer: merged, sorted `from..to` intervals.
    down: [[Vec<(Ms, Ms)>; TARGETS]; 2],
    pub trace: Trace,
    pub props: Props,
    pub violation: Option<Violation>,
    /// The first violation of each other property (when the run goes on after the first).
    pub later: Vec<Violation>,
    pub found: Vec<&'static str>,
    /// Stop at the first violation (CI) or go on and collect the first of each property.
    pub stop_at_first: bool,
    /// The last answer each node had from its peer (a demotion without one is by policy).
    pub last_peer_answer: [Option<PeerHealth>; 2],
    /// Properties checked (empty: all).
    pub only: Vec<&'static str>,
    next_gen: u64,
    carp_timer: Option<Ms>,
    pub events: u64,
}

impl Sim {
    pub fn new(seed: u64, setup: Setup, faults: &[(Ms, Fault)], outages: Vec<Outage>) -> Sim {
        let node = |setup: &Setup| Node {
            powered: false,
            boot_no: 0,
            boot_at: 0,
            if_up: false,
            preempt: false,
            carp: CarpState::Init,
            carp_since: 0,
            better_since: None,
            lever: LeverState::default(),
            state_file: None,
            state_ro: false,
            probes: setup.probes(),
            proc: None,
            backend_slow: false,
            backend_failing: false,
            peer_fault: None,
            stopped_until: 0,
        };
        let setup_v6_dead = setup.v6_dead;
        let mut sim = Sim {
            seed,
            nodes: [node(&setup), node(&setup)],
            props: Props::new(&setup),
            setup,
            now: 0,
            t0: Instant::now(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(17)),
            down: merge(&outages, setup_v6_dead),
            trace: Trace { print: std::env::var_os("FAILBACKD_SIM_PRINT").is_some(), ..Trace::default() },
            violation: None,
            later: Vec::new(),
            found: Vec::new(),
            stop_at_first: true,
            only: Vec::new(),
            last_peer_answer: [None; 2],
            next_gen: 0,
            carp_timer: None,
            events: 0,
        };
        sim.at(CHECK_EVERY, Ev::Check);
        sim.at(sim.setup.stagger, Ev::PowerOn(0));
        sim.at(0, Ev::PowerOn(1));
        for (t, f) in faults {
            sim.at(*t, Ev::Fault(*f));
        }
        sim
    }

    pub fn at(&mut self, t: Ms, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued(t, self.seq, ev)));
    }

    fn after(&mut self, d: Ms, ev: Ev) {
        self.at(self.now + d, ev);
    }

    pub fn instant(&self, t: Ms) -> Instant {
        self.t0 + Duration::from_millis(t)
    }

    fn ms(&self, i: Instant) -> Ms {
        let d = i.saturating_duration_since(self.t0);
        // Round up: a deadline is due at, not before, its instant.
        let ms = d.as_millis() as u64;
        if Duration::from_millis(ms) < d {
            ms + 1
        } else {
            ms
        }
    }

    pub fn world(&mut self, node: usize, what: String) {
        self.trace.push(self.now, node, Entry::World(what));
    }

    /// Runs until `end` or the first violation.
    pub fn run(&mut self, end: Ms) {
        while self.queue.peek().is_some_and(|Reverse(q)| q.0 <= end) {
            let Some(Reverse(Queued(t, _, ev))) = self.queue.pop() else { break };
            self.now = t;
            self.events += 1;
            self.handle(ev);
            self.carp_settle();
            for n in 0..2 {
                let fp = self.fingerprint(n);
                if self.nodes[n]
                    .proc
                    .as_ref()
                    .is_some_and(|p| p.sleeping && p.quiet.is_none_or(|q| q.0 != fp))
                {
                    self.wake(n);
                }
            }
            self.check_state();
            if self.stop_at_first && self.violation.is_some() {
                return;
            }
        }
        self.now = end;
    }

    // ---- ground truth about paths ----

    pub fn healthy(&self, node: usize, target: usize, t: Ms) -> bool {
        self.covering(node, target, t).is_none()
    }

    /// The merged outage covering `t`, if any.
    fn covering(&self, node: usize, target: usize, t: Ms) -> Option<(Ms, Ms)> {
        let down = &self.down[node][target];
        let i = down.partition_point(|iv| iv.0 <= t);
        down.get(i.checked_sub(1)?).copied().filter(|iv| t < iv.1)
    }

    /// Since when `target` has been healthy without a break (`None`: down now).
    pub fn healthy_since(&self, node: usize, target: usize, t: Ms) -> Option<Ms> {
        if self.covering(node, target, t).is_some() {
            return None;
        }
        let down = &self.down[node][target];
        let i = down.partition_point(|iv| iv.1 <= t);
        Some(i.checked_sub(1).map_or(0, |i| down[i].1))
    }

    /// Since when `target` has been down without a break (`None`: up now).
    pub fn down_since(&self, node: usize, target: usize, t: Ms) -> Option<Ms> {
        self.covering(node, target, t).map(|iv| iv.0)
    }

    fn next_change(&self, node: usize, target: usize, after: Ms) -> Option<Ms> {
        let down = &self.down[node][target];
        let i = down.partition_point(|iv| iv.1 <= after);
        let iv = down.get(i)?;
        Some(if iv.0 > after { iv.0 } else { iv.1 })
    }

    /// The probes a node runs now (its daemon's, else the installed config's).
    pub fn probes_of(&self, node: usize) -> &[ProbeDef] {
        match &self.nodes[node].proc {
            Some(p) => &p.probes,
            None => &self.nodes[node].probes,
        }
    }

    // ---- events ----

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Fault(f) => self.fault(f),
            Ev::EndMaintenance(n) => {
                let lever = self.setup.lever;
                let l = &mut self.nodes[n].lever;
                match lever {
                    Lever::Sysctl | Lever::SysctlBlind => l.operator_extra = false,
                    _ => {
                        if l.maintenance == Some(Owner::Operator) {
                            // The GUI's toggle: leaving resets the demotion to the baseline.
                            l.maintenance = None;
                            l.service_bit = false;
                            l.service_failbackd_failed = false;
                        }
                    }
                }
                self.props.operator_maintenance_ended(n, self.now);
                self.world(n, "operator leaves maintenance mode".into());
            }
            Ev::EndOther(n) => {
                self.nodes[n].lever.other_failing = false;
                self.world(n, "the other plugin's check passes again".into());
                self.evaluate(n);
            }
            Ev::EndBackend(n) => {
                self.nodes[n].backend_slow = false;
                self.nodes[n].backend_failing = false;
                self.props.backend_trouble_ended(n, self.now);
                self.world(n, "backend calls work again".into());
            }
            Ev::EndPeer(n) => {
                self.nodes[n].peer_fault = None;
                self.props.peer_trouble_ended(n, self.now);
                self.world(n, "its /status answers again".into());
            }
            Ev::EndReadOnly(n) => {
                self.nodes[n].state_ro = false;
                // The daemon steps at least once a probe interval (every result persists); the
                // simulation skips steady results, so it writes the record here.
                self.persist(n);
            }
            Ev::PowerOn(n) => self.power_on(n),
            Ev::EarlyEval(n, b) if self.nodes[n].boot_no == b && self.nodes[n].powered => {
                self.world(n, "early boot: rc.syshook.d/early/90-carp evaluates the service checks".into());
                self.evaluate(n);
            }
            Ev::InterfacesUp(n, b) if self.nodes[n].boot_no == b && self.nodes[n].powered => {
                self.nodes[n].if_up = true;
            }
            Ev::PreemptOn(n, b) if self.nodes[n].boot_no == b && self.nodes[n].powered => {
                self.nodes[n].preempt = true;
                self.world(n, "end of boot: CARP preempt on".into());
            }
            Ev::DaemonStart(n, b) if self.nodes[n].boot_no == b && self.nodes[n].powered => {
                if self.nodes[n].stopped_until <= self.now {
                    self.start_daemon(n);
                }
            }
            Ev::EndStop(n) => {
                let b = self.nodes[n].boot_no;
                if self.nodes[n].powered {
                    self.handle(Ev::DaemonStart(n, b));
                }
            }
            Ev::EarlyEval(..) | Ev::InterfacesUp(..) | Ev::PreemptOn(..) | Ev::DaemonStart(..) => {}
            Ev::ProbeAttempt { node, gen, pgen, idx } => {
                let Some(p) = self.current(node, gen) else { return };
                if p.pgen != pgen {
                    return;
                }
                let Some(def) = p.probes.get(idx) else { return };
                let ok = self.healthy(node, def.target, self.now);
                self.after(5, Ev::ProbeResult { node, gen, pgen, idx, ok, attempt: self.now });
            }
            Ev::ProbeResult { node, gen, pgen, idx, ok, attempt } => {
                self.probe_result(node, gen, pgen, idx, ok, attempt)
            }
            Ev::Reconcile { node, gen, rgen } => {
                let fp = self.fingerprint(node);
                let Some(p) = self.nodes[node].proc.as_mut().filter(|p| p.gen == gen && p.rgen == rgen)
                else {
                    return;
                };
                if p.quiet == Some((fp, p.m.backend_seq(), p.m.carp_seq())) {
                    // The same measurement again would change nothing: sleep until the world
                    // or the machine moves (an optimisation that leaves every step as it was).
                    p.sleeping = true;
                    return;
                }
                self.observe(node);
                let r = self.setup.reconcile;
                self.after(r, Ev::Reconcile { node, gen, rgen });
            }
            Ev::Check => self.after(CHECK_EVERY, Ev::Check),
            Ev::Measured { node, gen, backend_seq, carp_seq } => {
                if self.current(node, gen).is_none() {
                    return;
                }
                if let Some(p) = self.nodes[node].proc.as_mut() {
                    p.observing = false;
                }
                let obs = self.reading(node, backend_seq, carp_seq);
                let quiet = self.step(node, Event::Observed(obs));
                let fp = self.fingerprint(node);
                if let Some(p) = self.nodes[node].proc.as_mut() {
                    // Only a current reading that changed nothing may put the timer to sleep: a
                    // stale one (a call or a hook overtook it) was ignored, the next one is not.
                    let current = (backend_seq, carp_seq) == (p.m.backend_seq(), p.m.carp_seq());
                    p.quiet = (quiet && current).then(|| (fp, p.m.backend_seq(), p.m.carp_seq()));
                }
            }
            Ev::BackendDone { node, gen, boot, op, fails } => self.backend_done(node, gen, boot, op, fails),
            Ev::PeerAnswer { node, gen, lost } => {
                if self.current(node, gen).is_none() {
                    return;
                }
                let health = if lost { PeerHealth::Unreachable } else { self.peer_health(node) };
                self.last_peer_answer[node] = Some(health);
                self.step(node, Event::PeerAnswer(health));
            }
            Ev::Deadline { node, gen, at } => {
                let Some(p) = self.current(node, gen) else { return };
                if p.deadline != Some(at) {
                    return;
                }
                if let Some(p) = self.nodes[node].proc.as_mut() {
                    p.deadline = None;
                }
                self.step(node, Event::Tick);
            }
            Ev::Hook { node, gen, state } => {
                if self.current(node, gen).is_none() {
                    return;
                }
                let _ = self.step(node, Event::Carp { vhid: VHID, iface: IFACE.into(), state });
            }
            Ev::FallbackHook { node, boot } => {
                let up = self.nodes[node].powered && self.nodes[node].boot_no == boot;
                if !up || self.nodes[node].proc.is_some() || self.nodes[node].backend_failing {
                    return; // a daemon answers the next hook; a failing backend fails the demote
                }
                let ready_holds = self.ready_holds(node);
                let lever = self.setup.lever;
                let r = driver::call(lever, &mut self.nodes[node].lever, true, ready_holds);
                let now = self.nodes[node].lever.demotion(lever);
                self.world(
                    node,
                    format!("hook fail-safe demote (no daemon): ok {}, demotion now {now}", r.ok),
                );
                self.props.lever_changed_by_world(node, self.now);
            }
            Ev::Carp => self.carp_timer = None,
        }
    }

    fn current(&self, node: usize, gen: u64) -> Option<&Proc> {
        self.nodes[node].proc.as_ref().filter(|p| p.gen == gen)
    }

    fn fault(&mut self, f: Fault) {
        let n = f.node();
        self.world(n, format!("FAULT {f:?}"));
        self.props.fault(self.now, &f);
        match f {
            // A power loss of a node that is off already changes nothing: its power comes back
            // when the first outage ends (seed 3520: a second power-on event booted a running
            // node again, setting failbackd's sysctl.conf bit under a released daemon).
            Fault::PowerLoss { down_for, .. } if self.nodes[n].powered => {
                self.power_off(n);
                self.after(down_for, Ev::PowerOn(n));
            }
            Fault::PowerLoss { .. } => {}
            Fault::Crash { restart_after, .. } => {
                if self.kill(n) {
                    let b = self.nodes[n].boot_no;
                    self.after(restart_after, Ev::DaemonStart(n, b));
                }
            }
            Fault::Stop { for_ms, .. } => {
                self.kill(n);
                self.nodes[n].stopped_until = self.now + for_ms;
                self.after(for_ms, Ev::EndStop(n));
            }
            Fault::FirstStart { .. } => {
                // Installing failbackd on a running node: no state file, no daemon before.
                self.kill(n);
                self.nodes[n].state_file = None;
                self.props.state_file_lost(n);
                let b = self.nodes[n].boot_no;
                self.after(500, Ev::DaemonStart(n, b));
            }
            Fault::Restart { .. } => {
                if self.kill(n) {
                    let b = self.nodes[n].boot_no;
                    self.after(500, Ev::DaemonStart(n, b));
                }
            }
            Fault::Reload { change, .. } => self.reload(n, change),
            Fault::Peer { fault, for_ms, .. } => {
                self.nodes[n].peer_fault = Some(fault);
                self.after(for_ms, Ev::EndPeer(n));
            }
            Fault::OperatorHold { .. } => {
                if self.nodes[n].proc.is_some() {
                    self.step(n, Event::ManualHold);
                }
            }
            Fault::OperatorRelease { force, .. } => {
                if let Some(p) = &self.nodes[n].proc {
                    let phase = p.m.phase();
                    if force && (phase.is_holding() || matches!(phase, Phase::Failed | Phase::Draining)) {
                        let overrides = self.force_overrides(n);
                        self.props.forced(n, self.now, overrides);
                    }
                    self.step(n, Event::ManualRelease { force });
                }
            }
            Fault::OperatorMaintenance { for_ms, .. } => {
                if !self.nodes[n].powered {
                    return;
                }
                let lever = self.setup.lever;
                let l = &mut self.nodes[n].lever;
                match lever {
                    Lever::Sysctl | Lever::SysctlBlind => l.operator_extra = true,
                    _ if l.maintenance.is_none() => l.maintenance = Some(Owner::Operator),
                    _ => return, // already in maintenance: the operator leaves it alone
                }
                self.props.operator_maintenance(n, self.now);
                self.after(for_ms, Ev::EndMaintenance(n));
            }
            Fault::OtherDemotion { for_ms, .. } => {
                self.nodes[n].lever.other_failing = true;
                self.after(for_ms, Ev::EndOther(n));
                self.evaluate(n);
            }
            Fault::Backend { slow, for_ms, .. } => {
                self.nodes[n].backend_slow = slow;
                self.nodes[n].backend_failing = !slow;
                self.after(for_ms, Ev::EndBackend(n));
            }
            Fault::StateReadOnly { for_ms, .. } => {
                self.nodes[n].state_ro = true;
                self.after(for_ms, Ev::EndReadOnly(n));
            }
        }
    }

    // ---- node lifecycle ----

    fn power_on(&mut self, n: usize) {
        let persistent = self.setup.persistent_state;
        let node = &mut self.nodes[n];
        node.powered = true;
        node.boot_no += 1;
        node.boot_at = self.now;
        // The maintenance marker is on persistent storage (carp::opnsense::marker_path).
        node.lever.reboot(true);
        if self.setup.lever == Lever::Sysctl && self.setup.hold_on_boot {
            // rc.d/failbackd: plain FreeBSD puts failbackd's bit in /etc/sysctl.conf, applied
            // before netif creates the VHIDs; the daemon resumes that hold.
            node.lever.ours = true;
        }
        if !persistent {
            node.state_file = None; // /var/run is cleared at boot
            self.props.state_file_lost(n);
        }
        let b = node.boot_no;
        self.world(n, "power on".into());
        self.props.booted(n, self.now);
        if matches!(self.setup.lever, Lever::ServiceStatus | Lever::Maintenance) {
            self.after(1_000, Ev::EarlyEval(n, b));
        }
        self.after(2_000, Ev::InterfacesUp(n, b));
        self.after(3_000, Ev::DaemonStart(n, b));
        self.after(5_000, Ev::PreemptOn(n, b));
    }

    fn power_off(&mut self, n: usize) {
        self.kill(n);
        let node = &mut self.nodes[n];
        node.powered = false;
        node.if_up = false;
        node.preempt = false;
        self.props.lever_changed_by_world(n, self.now);
    }

    /// Stops the daemon; false when none ran.
    fn kill(&mut self, n: usize) -> bool {
        match self.nodes[n].proc.take() {
            Some(p) => {
                self.props.daemon_stopped(n, p.m.phase());
                true
            }
            None => false,
        }
    }

    /// Mirrors `daemon::start`: read the state file, measure, `Boot`, the first reading.
    fn start_daemon(&mut self, n: usize) {
        if self.nodes[n].proc.is_some() {
            return;
        }
        self.next_gen += 1;
        let gen = self.next_gen;
        let now = self.instant(self.now);
        let mono = self.clocks(n).mono;
        let lever = self.setup.lever;
        let measured = driver::measure(lever, &mut self.nodes[n].lever);
        let measured = if self.nodes[n].backend_failing { None } else { Some(measured) };
        let found = self.nodes[n].state_file.clone().map_or(Found::Missing, Found::File);
        let system = self.system(n);
        // failbackd's own hold, as daemon::boot_facts judges it.
        let shared = lever == Lever::ServiceStatus;
        let held = measured.and_then(|m| boot::own_hold(m.held, m.foreign, shared));
        let (boot, decision) = boot::boot_event(&found, &system, StartMode::Auto, held, now, mono);
        let probes = self.nodes[n].probes.clone();
        let mut m = Machine::new(self.setup.machine(n, &probes), now);
        // daemon::boot_facts: a restart starts from the record on disk (`carry::record` keeps a
        // resumed failback's trigger from it).
        let mut persisted = None;
        if let Found::File(p) = &found {
            carry::carry_over(&mut m, p, decision.kind, self.clocks(n));
            if decision.kind == boot::StartKind::Restart {
                persisted = Some(p.clone());
            }
        }
        self.nodes[n].proc = Some(Proc {
            gen,
            m,
            probes,
            pgen: 0,
            observing: false,
            last_measured: measured,
            persisted,
            deadline: None,
            reconcile_origin: self.now,
            rgen: 0,
            quiet: None,
            sleeping: false,
        });
        self.world(n, format!("failbackd starts: {} ({})", decision.kind.as_str(), decision.why));
        self.props.daemon_started(n, self.now);
        self.step(n, Event::Boot(boot));
        let obs = self.reading_from(n, measured, 0, 0);
        self.step(n, Event::Observed(obs));
        self.restart_probes(n);
        let r = self.setup.reconcile;
        self.after(r, Ev::Reconcile { node: n, gen, rgen: 0 });
    }

    /// What a measurement of node `n` reads, packed (the lever and CARP).
    fn fingerprint(&self, n: usize) -> u64 {
        let node = &self.nodes[n];
        let l = &node.lever;
        let owner = match l.maintenance {
            None => 0,
            Some(Owner::Failbackd) => 1,
            Some(Owner::Operator) => 2,
        };
        (node.lever.demotion(self.setup.lever) as u64) << 16
            | owner << 8
            | u64::from(l.marker) << 7
            // A failing backend measures nothing: its recovery must wake a sleeping reconcile
            // (seed 1638: the peer's /status kept a measurement from before the operator left
            // maintenance mode for ever, and the peer was judged unhealthy).
            | u64::from(node.backend_failing) << 15
            | u64::from(node.if_up) << 6
            | u64::from(node.powered) << 5
            // A reading during backend trouble fails: its end changes what a reading says (the
            // real daemon reads every reconcile_interval; a timer asleep past it was a sim
            // artefact that kept a stale view after the trouble, seeds 166 and 723).
            | u64::from(node.backend_failing) << 4
            | u64::from(node.backend_slow) << 3
            | node.carp as u64
    }

    /// Node `n`'s clocks as the daemon reads them: its monotonic clock starts a minute before
    /// the boot's first instant (never zero), the wall clock is the world's, from [`SIM_EPOCH`].
    pub fn clocks(&self, n: usize) -> carry::Clocks {
        carry::Clocks {
            now: self.instant(self.now),
            mono: Duration::from_millis(self.now - self.nodes[n].boot_at + 60_000),
            unix: SIM_EPOCH + self.now as f64 / 1000.0,
        }
    }

    /// Node `n`'s boot identity and uptime, as `SystemBoot::read` reports them.
    pub fn system(&self, n: usize) -> SystemBoot {
        let node = &self.nodes[n];
        SystemBoot {
            id: Some(format!("boot-{n}-{}", node.boot_no)),
            uptime: Some(Duration::from_millis(self.now - node.boot_at)),
        }
    }

    /// Restarts a sleeping reconcile timer on its grid.
    fn wake(&mut self, n: usize) {
        let r = self.setup.reconcile;
        let now = self.now;
        let Some(p) = self.nodes[n].proc.as_mut() else { return };
        p.quiet = None;
        if !p.sleeping {
            return;
        }
        p.sleeping = false;
        p.rgen += 1;
        let next = p.reconcile_origin + (now - p.reconcile_origin).div_ceil(r).max(1) * r;
        let (gen, rgen) = (p.gen, p.rgen);
        self.at(next, Ev::Reconcile { node: n, gen, rgen });
    }

    /// Mirrors `Daemon::reload` for a changed probe list.
    fn reload(&mut self, n: usize, change: Change) {
        let probes = &mut self.nodes[n].probes;
        match change {
            Change::Add { tracked } => {
                if !probes.iter().any(|p| p.name == "wan2") {
                    probes.push(ProbeDef {
                        name: "wan2".into(),
                        target: ALT,
                        required: true,
                        tracked: tracked || self.setup.tracking == super::setup::Tracking::All,
                    });
                }
            }
            Change::Remove => probes.retain(|p| p.name != "wan2"),
            Change::Repoint { target } => {
                if let Some(p) = probes.iter_mut().find(|p| p.name == "wan") {
                    p.target = target;
                }
            }
            Change::ToggleTrack => {
                if let Some(p) = probes.iter_mut().find(|p| p.name == "wan") {
                    p.tracked = !p.tracked;
                }
            }
        }
        let probes = self.nodes[n].probes.clone();
        if self.nodes[n].proc.is_none() {
            return;
        }
        let cfg = self.setup.machine(n, &probes);
        if let Some(p) = self.nodes[n].proc.as_mut() {
            p.probes = probes;
        }
        self.props.reloaded(n, self.now);
        self.step(n, Event::Reconfigure(Box::new(cfg)));
        self.restart_probes(n);
        self.observe(n);
    }

    fn restart_probes(&mut self, n: usize) {
        let Some(p) = self.nodes[n].proc.as_mut() else { return };
        p.pgen += 1;
        let (gen, pgen, count) = (p.gen, p.pgen, p.probes.len());
        for idx in 0..count {
            // Probes start a few ms apart, as tasks do.
            self.after(1 + idx as u64, Ev::ProbeAttempt { node: n, gen, pgen, idx });
        }
    }

    fn probe_result(&mut self, n: usize, gen: u64, pgen: u64, idx: usize, ok: bool, attempt: Ms) {
        let Some(p) = self.current(n, gen) else { return };
        if p.pgen != pgen {
            return;
        }
        self.step(n, Event::Probe { probe: idx, ok });
        let Some(p) = self.nodes[n].proc.as_ref().filter(|p| p.gen == gen && p.pgen == pgen) else { return };
        let Some(def) = p.probes.get(idx) else { return };
        // Saturated: one more identical result changes nothing. A pass once up with two passes
        // in a row (`judge` vouches only then); a failure once it fell *and* `fall` failures
        // are in a row (a fallen probe that passed again counts its failures anew before
        // tracking acts, and a tally that has not risen yet is not down until it fell).
        let fall = p.m.config().probes.get(idx).map_or(1, |s| s.fall.max(1));
        let saturated =
            p.m.probe(idx)
                .is_some_and(|t| if ok { t.up && t.passes >= 2 } else { t.fell && t.fails >= fall });
        let iv = self.setup.interval;
        let mut next = attempt + iv;
        if saturated && self.healthy(n, def.target, next) == ok {
            // Nothing can change until the path does: jump to the first attempt after that
            // (an arm, a restart or a reload reschedules the probes anyway).
            match self.next_change(n, def.target, attempt).filter(|c| *c != Ms::MAX) {
                Some(c) => {
                    next = attempt
                        .saturating_add(c.saturating_sub(attempt).div_ceil(iv).max(1).saturating_mul(iv))
                }
                None => return,
            }
        }
        self.at(next, Ev::ProbeAttempt { node: n, gen, pgen, idx });
    }

    // ---- the driver's I/O ----

    /// Steps node `n`'s machine and carries out its actions (mirrors `Daemon::step`); true when
    /// it was a measurement or probe result that asked for nothing.
    pub fn step(&mut self, n: usize, event: Event) -> bool {
        let now = self.instant(self.now);
        let Some(p) = self.nodes[n].proc.as_mut() else { return false };
        let actions = p.m.step(now, event.clone());
        let quiet = actions.is_empty() && matches!(event, Event::Observed(_) | Event::Probe { .. });
        let mut restart = false;
        let mut measure = false;
        for a in &actions {
            match a {
                Action::Demote => self.call_backend(n, BackendOp::Demote),
                Action::Promote => self.call_backend(n, BackendOp::Promote),
                Action::AskPeer => self.ask_peer(n),
                Action::Measure => measure = true,
                Action::RestartProbes => restart = true,
                Action::Record(r) => self.on_record(n, r),
            }
        }
        self.trace.push(self.now, n, Entry::Step { event, actions });
        if restart {
            self.restart_probes(n);
        }
        if measure {
            self.observe(n);
        }
        self.persist(n);
        self.reschedule_deadline(n);
        if !quiet {
            self.wake(n);
        }
        quiet
    }

    fn persist(&mut self, n: usize) {
        let clocks = self.clocks(n);
        let boot_id = self.system(n).id;
        let node = &mut self.nodes[n];
        let Some(p) = node.proc.as_mut() else { return };
        if let Some(state) = carry::record(&p.m, p.persisted.as_ref(), boot_id.as_deref(), clocks) {
            if !node.state_ro {
                node.state_file = Some(state.clone());
                p.persisted = Some(state);
                self.props.state_recorded(n, self.now);
            }
        }
    }

    fn reschedule_deadline(&mut self, n: usize) {
        let Some(p) = self.nodes[n].proc.as_ref() else { return };
        let at = p.m.next_deadline().map(|i| self.ms(i).max(self.now));
        if at != p.deadline {
            let gen = p.gen;
            if let Some(p) = self.nodes[n].proc.as_mut() {
                p.deadline = at;
            }
            if let Some(at) = at {
                self.at(at, Ev::Deadline { node: n, gen, at });
            }
        }
    }

    fn backend_time(&mut self, n: usize) -> Ms {
        if self.nodes[n].backend_slow {
            self.rng.range(2_000, SLOW_BACKEND_MAX)
        } else {
            self.setup.backend_ms
        }
    }

    fn call_backend(&mut self, n: usize, op: BackendOp) {
        let Some(p) = self.nodes[n].proc.as_ref() else { return };
        let gen = p.gen;
        let boot = self.nodes[n].boot_no;
        let fails = self.nodes[n].backend_failing;
        let d = self.backend_time(n);
        self.after(d, Ev::BackendDone { node: n, gen, boot, op, fails });
    }

    fn backend_done(&mut self, n: usize, gen: u64, boot: u64, op: BackendOp, fails: bool) {
        // The call's effect happens even if the daemon died meanwhile (the child process runs
        // on), but not across a reboot.
        let mut ok = false;
        if !fails && self.nodes[n].powered && self.nodes[n].boot_no == boot {
            let ready_holds = op == BackendOp::Demote || self.ready_holds(n);
            let lever = self.setup.lever;
            let r = driver::call(lever, &mut self.nodes[n].lever, op == BackendOp::Demote, ready_holds);
            ok = r.ok;
            self.world(
                n,
                format!(
                    "backend {} done (ok {ok}), demotion now {}",
                    op.as_str(),
                    self.nodes[n].lever.demotion(lever)
                ),
            );
            if r.left_operator {
                self.operator_maintenance_undone(n, self.now);
            }
        }
        if self.current(n, gen).is_none() {
            return;
        }
        self.step(n, Event::Backend { op, ok });
        self.observe(n);
    }

    fn ready_holds(&self, n: usize) -> bool {
        match &self.nodes[n].proc {
            Some(p) => matches!(
                crate::ready::from_phase(p.m.phase().as_str(), "daemon"),
                crate::ready::Verdict::Hold(_)
            ),
            None => driver::ready_holds_without_daemon(
                self.nodes[n].state_file.as_ref(),
                &self.system(n),
                self.setup.hold_on_boot,
            ),
        }
    }

    /// `configctl interface update carp service_status`.
    fn evaluate(&mut self, n: usize) {
        if !self.nodes[n].powered {
            return;
        }
        let lever = self.setup.lever;
        match lever {
            Lever::ServiceStatus | Lever::Maintenance => {
                let holds = self.ready_holds(n);
                self.nodes[n].lever.evaluate(lever, holds);
            }
            _ => {}
        }
    }

    fn observe(&mut self, n: usize) {
        let Some(p) = self.nodes[n].proc.as_mut() else { return };
        if p.observing {
            return;
        }
        p.observing = true;
        let (gen, bs, cs) = (p.gen, p.m.backend_seq(), p.m.carp_seq());
        let d = self.backend_time(n) / 2 + 5;
        self.after(d, Ev::Measured { node: n, gen, backend_seq: bs, carp_seq: cs });
    }

    fn reading(&mut self, n: usize, backend_seq: u64, carp_seq: u64) -> Observed {
        let measured = if self.nodes[n].backend_failing {
            None
        } else {
            let lever = self.setup.lever;
            Some(driver::measure(lever, &mut self.nodes[n].lever))
        };
        if let Some(p) = self.nodes[n].proc.as_mut() {
            if measured.is_some() {
                p.last_measured = measured;
            }
        }
        self.reading_from(n, measured, backend_seq, carp_seq)
    }

    fn reading_from(
        &self,
        n: usize,
        measured: Option<Measured>,
        backend_seq: u64,
        carp_seq: u64,
    ) -> Observed {
        let node = &self.nodes[n];
        let carp = measured.map(|_| {
            if node.if_up {
                vec![CarpReading { vhid: VHID, iface: IFACE.into(), state: node.carp }]
            } else {
                Vec::new()
            }
        });
        let (held, foreign, also_ours) = match (measured, &node.proc) {
            // daemon::observe::on_reading: the shared bit is attributed by the phase.
            (Some(m), Some(p)) if self.setup.lever == Lever::ServiceStatus => {
                crate::machine::attribute_shared_hold(m.held == Some(true), m.foreign, p.m.phase())
            }
            (m, _) => (m.and_then(|m| m.held), m.is_some_and(|m| m.foreign), false),
        };
        Observed { backend_seq, carp_seq, held, foreign, also_ours, carp }
    }

    fn ask_peer(&mut self, n: usize) {
        let Some(p) = self.nodes[n].proc.as_ref() else { return };
        let gen = p.gen;
        let peer = if self.setup.peer_is_self[n] { n } else { 1 - n };
        let (delay, lost) = if !self.setup.peer {
            (1, true)
        } else if !self.nodes[peer].powered {
            (PEER_TIMEOUT, true)
        } else {
            match self.nodes[peer].peer_fault {
                Some(PeerFault::Slow) => (PEER_TIMEOUT, true),
                Some(_) => (10, true),
                None => (self.rng.range(2, 40), false),
            }
        };
        self.after(delay, Ev::PeerAnswer { node: n, gen, lost });
    }

    /// The peer's /status now, judged by the real `judge`.
    fn peer_health(&self, n: usize) -> PeerHealth {
        let peer = if self.setup.peer_is_self[n] { n } else { 1 - n };
        let node = &self.nodes[peer];
        match (&node.proc, node.powered, node.peer_fault) {
            (Some(p), true, None) => {
                let st = driver::status(
                    peer,
                    &format!("node-{peer}-{}", p.gen),
                    &p.m,
                    &p.probes,
                    p.last_measured,
                    self.instant(self.now),
                );
                // daemon::peer::ask: an answer carrying this node's own id is no peer to ask.
                let own = self.nodes[n].proc.as_ref().map(|p| format!("node-{n}-{}", p.gen));
                if own.as_deref() == Some(st.node.as_str()) {
                    return PeerHealth::NotAsked;
                }
                crate::daemon::peer::judge(&st)
            }
            _ => PeerHealth::Unreachable,
        }
    }

    // ---- CARP ----

    pub fn skew(&self, n: usize) -> i64 {
        let node = &self.nodes[n];
        let lever = self.setup.lever;
        let d = if self.setup.lever_works[n] {
            node.lever.demotion(lever)
        } else {
            node.lever.demotion_without_failbackd(lever)
        };
        (ADVSKEW[n] + d).min(MAX_SKEW)
    }

    fn set_carp(&mut self, n: usize, state: CarpState) {
        let from = self.nodes[n].carp;
        if from == state {
            return;
        }
        self.nodes[n].carp = state;
        self.nodes[n].carp_since = self.now;
        self.nodes[n].better_since = None;
        self.world(n, format!("CARP {} -> {}", from.as_str(), state.as_str()));
        self.props.carp_changed(n, from, state, self.now);
        self.check_takeover(n, from, state);
        // The syshook: lost, late or duplicated now and then.
        let Some(p) = self.nodes[n].proc.as_ref() else {
            // No daemon to tell: the hook's fail-safe demotes through the backend itself
            // (seed 9562: a daemon stopped during the boot; without this the simulated node
            // preempted unchecked where the real one is held by its hook).
            if self.nodes[n].powered && !self.rng.chance(self.setup.hook_loss) {
                let boot = self.nodes[n].boot_no;
                self.after(20, Ev::FallbackHook { node: n, boot });
            }
            return;
        };
        let gen = p.gen;
        if self.rng.chance(self.setup.hook_loss) {
            return;
        }
        let d = if self.rng.chance(self.setup.hook_late) { self.rng.range(500, HOOK_LATE_MAX) } else { 20 };
        self.after(d, Ev::Hook { node: n, gen, state });
        if self.rng.chance(self.setup.hook_dup) {
            self.after(d + 30, Ev::Hook { node: n, gen, state });
        }
    }

    fn schedule_carp(&mut self, at: Ms) {
        if self.carp_timer.is_none_or(|t| at < t || t < self.now) {
            self.carp_timer = Some(at);
            self.at(at, Ev::Carp);
        }
    }

    /// CARP's rules (FreeBSD carp(4)): the advertised skew is advskew + demotion clamped to
    /// 240; a BACKUP with preempt takes over from a MASTER advertising a higher skew; a BACKUP
    /// that hears no MASTER takes over after the master-down timer, 3 x advbase + skew/256; a
    /// MASTER hearing a better or equal advertisement steps down; a dead node stops advertising.
    fn carp_settle(&mut self) {
        for _ in 0..4 {
            let mut changed = false;
            for n in 0..2 {
                let alive = self.nodes[n].powered && self.nodes[n].if_up;
                if !alive && self.nodes[n].carp != CarpState::Init {
                    self.set_carp(n, CarpState::Init);
                    changed = true;
                } else if alive && self.nodes[n].carp == CarpState::Init {
                    self.set_carp(n, CarpState::Backup);
                    changed = true;
                }
            }
            if self.nodes[0].carp == CarpState::Master && self.nodes[1].carp == CarpState::Master {
                let (s0, s1) = (self.skew(0), self.skew(1));
                let loser = if s0 != s1 {
                    usize::from(s1 > s0)
                } else {
                    usize::from(self.nodes[1].carp_since > self.nodes[0].carp_since)
                };
                self.set_carp(loser, CarpState::Backup);
                changed = true;
            }
            for n in 0..2 {
                if self.nodes[n].carp != CarpState::Backup {
                    continue;
                }
                let o = 1 - n;
                if self.nodes[o].carp == CarpState::Master {
                    if self.nodes[n].preempt && self.skew(n) < self.skew(o) {
                        let since = *self.nodes[n].better_since.get_or_insert(self.now);
                        let due = since + PREEMPT_DELAY;
                        if self.now >= due {
                            self.set_carp(n, CarpState::Master);
                            self.set_carp(o, CarpState::Backup);
                            changed = true;
                        } else {
                            self.schedule_carp(due);
                        }
                    } else {
                        self.nodes[n].better_since = None;
                    }
                } else {
                    self.nodes[n].better_since = None;
                    let from = self.nodes[n].carp_since.max(self.nodes[o].carp_since);
                    let due = from + 3 * ADVBASE + (self.skew(n) as u64) * ADVBASE / 256;
                    if self.now >= due {
                        self.set_carp(n, CarpState::Master);
                        changed = true;
                    } else {
                        self.schedule_carp(due);
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }
}

/// The outages per node and target as merged, sorted intervals (a site without IPv6 never
/// reaches its v6 target).
fn merge(outages: &[Outage], v6_dead: bool) -> [[Vec<(Ms, Ms)>; TARGETS]; 2] {
    let mut down: [[Vec<(Ms, Ms)>; TARGETS]; 2] = Default::default();
    for (n, per_node) in down.iter_mut().enumerate() {
        for (t, list) in per_node.iter_mut().enumerate() {
            if t == V6 && v6_dead {
                list.push((0, Ms::MAX));
                continue;
            }
            let mut ivs: Vec<(Ms, Ms)> =
                outages.iter().filter(|o| o.touches(n, t) && o.from < o.to).map(|o| (o.from, o.to)).collect();
            ivs.sort_unstable();
            for iv in ivs {
                match list.last_mut() {
                    Some(last) if iv.0 <= last.1 => last.1 = last.1.max(iv.1),
                    _ => list.push(iv),
                }
            }
        }
    }
    down
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::faults::Fault;

    fn pair(setup: Setup, faults: &[(Ms, Fault)]) -> Sim {
        Sim::new(1, setup, faults, Vec::new())
    }

    #[test]
    fn the_primary_serves_once_both_are_released_and_a_dead_master_is_replaced_on_time() {
        let mut sim = pair(Setup::default(), &[(60_000, Fault::PowerLoss { node: 0, down_for: 600_000 })]);
        sim.run(59_000);
        assert_eq!((sim.nodes[0].carp, sim.nodes[1].carp), (CarpState::Master, CarpState::Backup));
        // master-down timer of B: 3 x advbase + 100/256 s after A stopped advertising.
        sim.run(63_300);
        assert_eq!(sim.nodes[1].carp, CarpState::Backup);
        sim.run(63_400);
        assert_eq!((sim.nodes[0].carp, sim.nodes[1].carp), (CarpState::Init, CarpState::Master));
    }

    #[test]
    fn a_power_loss_of_a_node_that_is_off_changes_nothing() {
        let faults = [
            (60_000, Fault::PowerLoss { node: 0, down_for: 30_000 }),
            (70_000, Fault::PowerLoss { node: 0, down_for: 200_000 }),
        ];
        let mut sim = pair(Setup::default(), &faults);
        sim.run(89_000);
        assert!(!sim.nodes[0].powered);
        sim.run(91_000);
        let boots = sim.nodes[0].boot_no;
        assert!(sim.nodes[0].powered, "on again when the first outage ends");
        sim.run(300_000);
        assert_eq!(sim.nodes[0].boot_no, boots, "no second boot of a running node");
    }

    #[test]
    fn skews_are_clamped_at_240_so_equal_demotions_keep_the_master() {
        let mut sim = pair(Setup::default(), &[]);
        sim.run(59_000);
        // An operator's +240 on B and failbackd's 2^19 on A: both advertise 240.
        sim.nodes[0].lever.ours = true;
        sim.nodes[1].lever.operator_extra = true;
        assert_eq!((sim.skew(0), sim.skew(1)), (240, 240));
        sim.carp_settle();
        assert_eq!(sim.nodes[0].carp, CarpState::Master);
        // A demoted alone: B (100) preempts at A's next advertisement.
        sim.nodes[1].lever.operator_extra = false;
        sim.carp_settle();
        sim.run(61_000);
        assert_eq!((sim.nodes[0].carp, sim.nodes[1].carp), (CarpState::Backup, CarpState::Master));
    }

    #[test]
    fn merged_outages_answer_health_questions() {
        let outages = vec![
            Outage { nodes: [true, false], target: Some(0), from: 10, to: 20 },
            Outage { nodes: [true, true], target: None, from: 20, to: 30 },
            Outage { nodes: [true, false], target: Some(0), from: 50, to: 60 },
        ];
        let sim = Sim::new(1, Setup::default(), &[], outages);
        assert!(
            sim.healthy(0, 0, 9) && !sim.healthy(0, 0, 10) && !sim.healthy(0, 0, 29) && sim.healthy(0, 0, 30)
        );
        assert_eq!(sim.down_since(0, 0, 25), Some(10), "touching outages are one");
        assert_eq!(sim.healthy_since(0, 0, 40), Some(30));
        assert_eq!(sim.healthy_since(1, 0, 40), Some(30));
        assert_eq!(sim.healthy_since(1, 1, 15), Some(0));
        assert_eq!(sim.next_change(0, 0, 30), Some(50));
        assert_eq!(sim.next_change(0, 0, 55), Some(60));
        assert_eq!(sim.next_change(0, 0, 60), None);
    }
}
