//! Unit tests: one per transition rule. `tests/machine_props.rs` checks the invariants over
//! random event sequences.

use super::*;
use std::time::{Duration, Instant};

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn cfg() -> MachineConfig {
    MachineConfig {
        hold_on_boot: true,
        min_hold: secs(10),
        max_hold: secs(100),
        max_hold_policy: MaxHoldPolicy::Stay,
        stable_for: secs(5),
        probes: vec![
            ProbeSpec {
                name: "gw".into(),
                identity: String::new(),
                rise: 2,
                fall: 2,
                required: true,
                track: None,
            },
            ProbeSpec {
                name: "extra".into(),
                identity: String::new(),
                rise: 1,
                fall: 1,
                required: false,
                track: None,
            },
        ],
        backoff: Backoff { initial: secs(1), max: secs(8) },
        tracking: TrackingConfig::default(),
        shared_lever: false,
    }
}

/// A machine with a fake clock: `at(s)` sets the time to t0 + s.
pub(super) struct T {
    pub(super) m: Machine,
    pub(super) t0: Instant,
    pub(super) now: Instant,
}

impl T {
    pub(super) fn new(cfg: MachineConfig) -> T {
        let t0 = Instant::now();
        T { m: Machine::new(cfg, t0), t0, now: t0 }
    }
    pub(super) fn at(&mut self, s: f64) -> &mut T {
        self.now = self.t0 + Duration::from_secs_f64(s);
        self
    }
    pub(super) fn ev(&mut self, e: Event) -> Vec<Action> {
        self.m.step(self.now, e)
    }
    /// Boots with the backend not demoted and no previous run, and confirms the demote.
    pub(super) fn booted(cfg: MachineConfig) -> T {
        let mut t = T::new(cfg);
        let a =
            t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
        assert!(a.contains(&Action::Demote));
        t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
        assert_eq!(t.m.phase(), Phase::Probing);
        t
    }
    pub(super) fn probe(&mut self, probe: usize, ok: bool) -> Vec<Action> {
        self.ev(Event::Probe { probe, ok })
    }
    pub(super) fn tick(&mut self) -> Vec<Action> {
        self.ev(Event::Tick)
    }
}

/// A current reading of the backend (the counters as the machine has them now).
pub(super) fn reading(t: &T, held: Option<bool>) -> Event {
    Event::Observed(Observed {
        backend_seq: t.m.backend_seq(),
        carp_seq: t.m.carp_seq(),
        held,
        foreign: false,
        also_ours: false,
        carp: None,
    })
}

pub(super) fn phases(actions: &[Action]) -> Vec<Phase> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(Record::PhaseChanged { to, .. }) => Some(*to),
            _ => None,
        })
        .collect()
}

pub(super) fn outcome(actions: &[Action]) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        Action::Record(Record::FailbackEnded { outcome, .. }) => Some(*outcome),
        _ => None,
    })
}

pub(super) fn started(actions: &[Action]) -> Option<Trigger> {
    actions.iter().find_map(|a| match a {
        Action::Record(Record::FailbackStarted { trigger, .. }) => Some(trigger.clone()),
        _ => None,
    })
}

/// The actions without the CARP state records (which every new state produces).
pub(super) fn without_carp(actions: Vec<Action>) -> Vec<Action> {
    actions.into_iter().filter(|a| !matches!(a, Action::Record(Record::CarpChanged { .. }))).collect()
}

pub(super) fn carp(state: CarpState) -> Event {
    Event::Carp { vhid: 1, iface: "em0".into(), state }
}

/// Drives a booted machine to Released with the probes passing.
pub(super) fn released() -> T {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = t.at(10.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Released));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
    t
}

// --- boot and restart reconciliation ---

#[test]
fn boot_with_hold_on_boot_demotes_before_anything_else() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    assert_eq!(started(&a), Some(Trigger::Boot));
    assert!(a.contains(&Action::RestartProbes));
    assert_eq!(a.last(), Some(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Holding);
}

#[test]
fn boot_already_demoted_does_not_demote_twice() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot { backend_demoted: Some(true), previous: None, ..Default::default() }));
    assert!(!a.contains(&Action::Demote));
    assert_eq!(phases(&a), vec![Phase::Holding, Phase::Probing]);
}

#[test]
fn boot_with_unknown_backend_state_demotes() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot { backend_demoted: None, previous: None, ..Default::default() }));
    assert!(a.contains(&Action::Demote));
}

#[test]
fn boot_without_hold_on_boot_stays_idle() {
    let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
    let a = t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    assert!(a.is_empty());
    assert_eq!(t.m.phase(), Phase::Idle);
}

#[test]
fn restart_after_release_does_not_hold_a_live_master() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Released),
        ..Default::default()
    }));
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Released);
}

#[test]
fn restart_during_a_hold_resumes_without_demoting_again() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(true),
        previous: Some(Phase::Stabilizing),
        ..Default::default()
    }));
    assert_eq!(started(&a), Some(Trigger::Resume));
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Probing);
}

#[test]
fn restart_during_a_hold_with_the_demotion_gone_demotes_again() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Holding),
        ..Default::default()
    }));
    assert_eq!(started(&a), Some(Trigger::Resume));
    assert!(a.contains(&Action::Demote));
}

// D17: a state file whose writes failed after the hold landed says `probing`/`stabilizing` while
// the previous run released; or an operator removed the hold while failbackd was stopped. The
// lever measured off says so: the hold is not put back, and the reason is recorded.
#[test]
fn restart_from_a_landed_hold_with_our_lever_off_does_not_put_it_back() {
    for previous in [Phase::Probing, Phase::Stabilizing] {
        let mut t = T::new(cfg());
        let a = t.ev(Event::Boot(Boot {
            backend_demoted: Some(false),
            previous: Some(previous),
            resumed: Some(Resumed { id: 3, armed_at: t.now, peer_lost: false }),
            last_failback: 3,
            lever_unseen: false,
        }));
        assert_eq!(started(&a), None, "{previous:?}");
        assert!(!a.contains(&Action::Demote), "{previous:?}");
        assert!(a.contains(&Action::Record(Record::HoldNotResumed { previous })), "{previous:?}");
        assert_eq!(t.m.phase(), Phase::Released);
        assert_eq!(t.m.ended_failbacks(), 3, "ids keep counting up");
    }
}

#[test]
fn restart_from_a_landed_hold_the_backend_cannot_measure_resumes_it() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: None,
        previous: Some(Phase::Probing),
        ..Default::default()
    }));
    assert_eq!(started(&a), Some(Trigger::Resume));
}

// Liveness (issue 18): failbackd reinstalled during a hold (no state file) on a backend that
// cannot show its hold: nobody would ever lift it. The idempotent promote lifts it once the
// required probes are up, as a failback would; the node is never demoted for it.
#[test]
fn a_first_start_that_cannot_see_its_lever_promotes_once_the_probes_are_up() {
    let mut t = T::new(cfg());
    let a =
        t.ev(Event::Boot(Boot { backend_demoted: None, previous: Some(Phase::Idle), ..Default::default() }));
    assert!(a.is_empty(), "{a:?}");
    assert!(!t.at(1.0).probe(0, true).contains(&Action::Promote), "not up yet");
    let a = t.at(2.0).probe(0, true);
    assert!(a.contains(&Action::Promote), "{a:?}");
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Idle);
    t.at(2.1).ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert!(t.at(3.0).probe(0, true).is_empty(), "once is enough");
}

#[test]
fn a_first_start_that_sees_its_lever_off_promotes_nothing() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Idle),
        ..Default::default()
    }));
    t.at(1.0).probe(0, true);
    assert!(!t.at(2.0).probe(0, true).contains(&Action::Promote));
}

#[test]
fn restart_after_failed_stays_failed_and_demoted() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(true),
        previous: Some(Phase::Failed),
        ..Default::default()
    }));
    assert_eq!(t.m.phase(), Phase::Failed);
    assert!(t.m.failback().is_none());
    assert!(!a.contains(&Action::Demote) && !a.contains(&Action::Promote));
}

#[test]
fn restart_after_a_completed_promote_finishes_the_release() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Releasing),
        ..Default::default()
    }));
    assert_eq!(t.m.phase(), Phase::Released);
    assert!(a.iter().all(|a| matches!(a, Action::Record(_))));
}

#[test]
fn restart_finding_our_demotion_with_no_failback_on_record_resumes() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(true),
        previous: Some(Phase::Idle),
        ..Default::default()
    }));
    assert_eq!(started(&a), Some(Trigger::Resume));
    assert_eq!(t.m.phase(), Phase::Probing);
}

// --- holding and the backend ---

#[test]
fn demote_failure_is_retried_after_backoff_not_before() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    let a = t.at(0.1).ev(Event::Backend { op: BackendOp::Demote, ok: false });
    assert!(a.contains(&Action::Record(Record::BackendFailed { op: BackendOp::Demote, attempt: 1 })));
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.next_deadline(), Some(t.t0 + Duration::from_secs_f64(1.1)));
    assert!(!t.at(0.5).tick().contains(&Action::Demote));
    assert!(t.at(1.1).tick().contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Holding);
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert_eq!(t.m.phase(), Phase::Probing);
}

// Issue 18 (telemetry_truth after backend trouble): a backend that could not be read and now
// answers again is retried at once, not at the end of the backoff that grew while it was away;
// a reading that still fails changes nothing.
#[test]
fn a_backend_read_again_after_failures_is_retried_at_once() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    for at in [0.1, 1.2, 3.3, 7.4] {
        t.at(at).tick();
        t.ev(Event::Backend { op: BackendOp::Demote, ok: false });
    }
    t.at(8.0);
    let unreadable = reading(&t, None);
    assert!(!t.ev(unreadable).contains(&Action::Demote), "still unreadable");
    assert!(t.m.next_deadline().is_some_and(|d| d > t.now), "backing off");
    t.at(9.0);
    let back = reading(&t, Some(false));
    let a = t.ev(back);
    assert!(a.contains(&Action::Demote), "{a:?}");
}

// Seed 710: a lever that cannot tell whether it is held (`sysctl` without the failbackd bit)
// never reads `held`; a reading that works still carries the CARP states, and that is the
// backend answering again: the hold is retried at once, not after the grown backoff.
#[test]
fn a_blind_backend_read_again_after_failures_is_retried_at_once() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    for at in [0.1, 1.2, 3.3, 7.4] {
        t.at(at).tick();
        t.ev(Event::Backend { op: BackendOp::Demote, ok: false });
    }
    let reading = |t: &T, carp| {
        Event::Observed(Observed {
            backend_seq: t.m.backend_seq(),
            carp_seq: t.m.carp_seq(),
            held: None,
            foreign: false,
            also_ours: false,
            carp,
        })
    };
    t.at(8.0);
    let failed = reading(&t, None);
    assert!(!t.ev(failed).contains(&Action::Demote), "still failing");
    assert!(t.m.next_deadline().is_some_and(|d| d > t.now), "backing off");
    t.at(9.0);
    let blind = reading(&t, Some(Vec::new()));
    let a = t.ev(blind);
    assert!(a.contains(&Action::Demote), "{a:?}");
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let b = Backoff { initial: secs(1), max: secs(8) };
    let delays: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
    assert_eq!(delays, vec![1, 2, 4, 8, 8, 8]);
}

#[test]
fn a_result_for_a_call_not_in_flight_is_ignored() {
    let mut t = T::booted(cfg());
    let a = t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert!(a.is_empty());
    assert_eq!(t.m.backend_demoted(), Some(true));
}

// --- probing, stabilizing, release ---

#[test]
fn required_probes_passing_rise_times_start_the_stability_window() {
    let mut t = T::booted(cfg());
    assert!(phases(&t.at(1.0).probe(0, true)).is_empty());
    let a = t.at(2.0).probe(0, true);
    assert!(a.contains(&Action::Record(Record::ProbeChanged { probe: 0, up: true })));
    assert_eq!(phases(&a), vec![Phase::Stabilizing]);
}

#[test]
fn optional_probes_do_not_gate_the_release() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(1, false);
    t.probe(0, true);
    t.at(2.0).probe(0, true);
    assert_eq!(t.m.phase(), Phase::Stabilizing);
    assert!(t.m.release_blockers().is_empty());
}

#[test]
fn release_waits_for_min_hold_and_stable_for() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true); // stable from t=2, stable_for 5 -> 7, min_hold 10 -> 10
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(10)));
    assert!(outcome(&t.at(7.0).tick()).is_none());
    let a = t.at(10.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Released));
    assert!(a.contains(&Action::Promote));
    assert_eq!(t.m.phase(), Phase::Releasing);
    let a = t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(phases(&a), vec![Phase::Released]);
    assert!(t.m.failback().is_none());
}

#[test]
fn stable_for_counts_from_the_last_failure() {
    let mut t = T::booted(MachineConfig { min_hold: Duration::ZERO, ..cfg() });
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    t.at(4.0).probe(0, false); // one failure: still up (fall 2), window restarts at the next pass
    assert_eq!(t.m.phase(), Phase::Stabilizing);
    t.at(5.0).probe(0, true);
    assert!(outcome(&t.at(7.5).tick()).is_none());
    assert_eq!(outcome(&t.at(10.0).tick()), Some(Outcome::Released));
}

#[test]
fn fall_failures_drop_back_to_probing() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    t.at(3.0).probe(0, false);
    let a = t.at(4.0).probe(0, false);
    assert_eq!(phases(&a), vec![Phase::Probing]);
    assert!(outcome(&t.at(20.0).tick()).is_none());
}

#[test]
fn no_probes_and_no_waits_release_at_once() {
    let cfg = MachineConfig { probes: vec![], min_hold: Duration::ZERO, stable_for: Duration::ZERO, ..cfg() };
    let mut t = T::new(cfg);
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    let a = t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert_eq!(phases(&a), vec![Phase::Probing, Phase::Stabilizing, Phase::Releasing]);
    assert!(a.contains(&Action::Promote));
}

#[test]
fn promote_failure_stays_releasing_and_retries() {
    let mut t = released();
    t.ev(Event::ManualHold);
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(20.0).probe(0, true);
    t.at(21.0).probe(0, true);
    assert!(t.at(40.0).tick().contains(&Action::Promote));
    let a = t.ev(Event::Backend { op: BackendOp::Promote, ok: false });
    assert!(a.contains(&Action::Record(Record::BackendFailed { op: BackendOp::Promote, attempt: 1 })));
    assert_eq!(t.m.phase(), Phase::Releasing);
    assert!(t.at(41.0).tick().contains(&Action::Promote));
}

// --- max hold ---

#[test]
fn max_hold_with_policy_stay_fails_and_keeps_the_node_demoted() {
    let mut t = T::booted(cfg());
    t.at(5.0).probe(0, false);
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(100)));
    let a = t.at(100.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Failed));
    assert_eq!(phases(&a), vec![Phase::Failed]);
    assert!(!a.contains(&Action::Promote));
    assert_eq!(t.m.next_deadline(), None, "nothing is due while the path stays down");
    assert!(t.at(500.0).tick().is_empty());
    assert_eq!(t.m.phase(), Phase::Failed);
}

#[test]
fn a_failed_node_whose_probes_pass_for_stable_for_is_released_late() {
    let mut t = T::booted(cfg());
    t.at(100.0).tick();
    assert_eq!(t.m.phase(), Phase::Failed);
    t.at(101.0).probe(0, true);
    t.at(102.0).probe(0, true); // rose (rise 2): the stability clock starts
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(107)));
    assert!(t.at(106.9).tick().is_empty(), "not before stable_for");
    let a = t.at(107.0).tick();
    assert!(a.iter().any(|a| matches!(a, Action::Record(Record::RecoveredAfterFailure { .. }))));
    assert_eq!(outcome(&a), None, "the failback ended as failed already; no second outcome");
    assert!(a.contains(&Action::Promote));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
}

#[test]
fn max_hold_while_stabilizing_keeps_the_stability_already_proven() {
    let mut t = T::booted(cfg()); // stable_for 5 s, max_hold 100 s
    t.at(96.0).probe(0, true);
    t.at(97.0).probe(0, true); // rose: stabilizing since 97 s
    let a = t.at(100.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Failed));
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(102)), "97 s + stable_for, not 100 s + stable_for");
    assert!(t.at(102.0).tick().contains(&Action::Promote));
}

#[test]
fn a_failure_while_failed_restarts_the_recovery_clock() {
    let mut t = T::booted(cfg());
    t.at(100.0).tick();
    t.at(101.0).probe(0, true);
    t.at(102.0).probe(0, true);
    t.at(104.0).probe(0, false); // one failure: not fallen (fall 2), but the window restarts
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(109)));
    assert!(t.at(107.0).tick().is_empty());
    t.at(108.0).probe(0, false); // fallen: no clock at all
    assert_eq!(t.m.next_deadline(), None);
    t.at(109.0).probe(0, true);
    t.at(110.0).probe(0, true);
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(115)));
    assert!(t.at(115.0).tick().contains(&Action::Promote));
}

#[test]
fn a_failed_node_after_a_restart_is_released_once_its_probes_pass() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot {
        backend_demoted: Some(true),
        previous: Some(Phase::Failed),
        ..Default::default()
    }));
    assert_eq!(t.m.phase(), Phase::Failed);
    t.at(1.0).probe(0, true);
    assert!(t.at(30.0).tick().is_empty(), "one pass is not a rise");
    t.at(31.0).probe(0, true);
    assert!(t.at(36.0).tick().contains(&Action::Promote));
}

#[test]
fn max_hold_with_policy_release_forces_the_release() {
    let mut t = T::booted(MachineConfig { max_hold_policy: MaxHoldPolicy::Release, ..cfg() });
    let a = t.at(100.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Forced));
    assert!(a.contains(&Action::Promote));
}

// --- CARP events ---

// Without a peer to ask, MASTER while held is the peer gone or held too (a simultaneous boot):
// not a lost peer (unknown is not "lost"); recorded once, never fought.
#[test]
fn master_while_held_without_a_peer_is_not_asked_recorded_once_not_fought() {
    let mut t = T::booted(cfg());
    let a = t.ev(carp(CarpState::Master));
    assert_eq!(without_carp(a), vec![Action::Record(Record::PeerNotAsked { failback: 1 })]);
    assert!(t.ev(carp(CarpState::Master)).is_empty());
    assert_eq!(t.m.phase(), Phase::Probing);
    assert_eq!(t.m.not_lost(), Some(NotLost::PeerNotAsked));
    t.at(100.0);
    let a = t.tick();
    assert!(a.iter().any(|a| matches!(a, Action::Record(Record::FailbackEnded { peer_lost: false, .. }))));
}

#[test]
fn carp_events_during_a_failback_never_start_a_second_one() {
    let mut t = T::booted(cfg());
    for s in [CarpState::Init, CarpState::Backup, CarpState::Init] {
        assert!(started(&t.ev(carp(s))).is_none());
    }
    assert_eq!(t.m.failback().map(|f| f.id), Some(1));
}

#[test]
fn leaving_master_after_a_release_arms_a_new_failback() {
    for state in [CarpState::Init, CarpState::Backup] {
        let mut t = released();
        let a = t.ev(carp(state));
        assert_eq!(started(&a), Some(Trigger::Carp { vhid: 1, iface: "em0".into(), state }));
        assert!(a.contains(&Action::Demote));
        assert_eq!(t.m.failback().map(|f| f.id), Some(2));
    }
}

// D11: after a restart, the first poll's BACKUP is a state learned (the secondary where it
// belongs), not a MASTER lost; a later change still arms.
#[test]
fn a_restart_of_the_backup_node_does_not_arm_a_failback() {
    for state in [CarpState::Backup, CarpState::Init] {
        let mut t = T::new(cfg());
        t.ev(Event::Boot(Boot {
            backend_demoted: Some(false),
            previous: Some(Phase::Released),
            ..Default::default()
        }));
        let poll = Event::Observed(Observed {
            backend_seq: t.m.backend_seq(),
            carp_seq: t.m.carp_seq(),
            held: Some(false),
            foreign: false,
            also_ours: false,
            carp: Some(vec![CarpReading { vhid: 1, iface: "em0".into(), state }]),
        });
        let a = t.ev(poll);
        assert_eq!(
            a,
            vec![Action::Record(Record::CarpChanged {
                vhid: 1,
                iface: "em0".into(),
                state,
                transition: false
            })]
        );
        assert_eq!(t.m.phase(), Phase::Released);
        t.ev(carp(CarpState::Master));
        let a = t.ev(carp(state));
        assert!(matches!(started(&a), Some(Trigger::Carp { .. })), "a change seen arms: {a:?}");
    }
}

#[test]
fn becoming_master_after_our_own_release_does_not_arm() {
    let mut t = released();
    assert!(without_carp(t.ev(carp(CarpState::Master))).is_empty());
    assert_eq!(t.m.phase(), Phase::Released);
}

#[test]
fn any_carp_event_arms_from_idle() {
    for state in CarpState::ALL {
        let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
        t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
        assert!(started(&t.ev(carp(state))).is_some(), "{state}");
    }
}

// --- manual hold and release ---

#[test]
fn manual_hold_arms_from_rest_and_is_a_no_op_while_held() {
    let mut t = released();
    assert_eq!(started(&t.ev(Event::ManualHold)), Some(Trigger::Manual));
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert!(t.ev(Event::ManualHold).is_empty());
}

#[test]
fn manual_hold_after_failed_retries_the_failback() {
    let mut t = T::booted(cfg());
    t.at(100.0).tick();
    assert_eq!(t.m.phase(), Phase::Failed);
    let a = t.ev(Event::ManualHold);
    assert_eq!(started(&a), Some(Trigger::Manual));
    assert!(!a.contains(&Action::Demote), "already demoted");
    assert_eq!(t.m.phase(), Phase::Probing);
}

#[test]
fn release_without_force_is_refused_while_required_probes_are_down() {
    let mut t = T::booted(cfg());
    let a = t.ev(Event::ManualRelease { force: false });
    assert_eq!(a, vec![Action::Record(Record::ReleaseRefused { blockers: vec!["gw".into()] })]);
    assert_eq!(t.m.phase(), Phase::Probing);
}

#[test]
fn forced_release_wins_over_failing_probes() {
    let mut t = T::booted(cfg());
    let a = t.ev(Event::ManualRelease { force: true });
    assert_eq!(outcome(&a), Some(Outcome::Forced));
    assert!(a.contains(&Action::Promote));
}

#[test]
fn release_with_probes_up_skips_the_remaining_wait() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = t.ev(Event::ManualRelease { force: false });
    assert_eq!(outcome(&a), Some(Outcome::Forced));
    assert!(a.contains(&Action::Promote));
}

#[test]
fn release_from_failed_promotes_without_a_second_outcome() {
    let mut t = T::booted(cfg());
    t.at(100.0).tick();
    let a = t.ev(Event::ManualRelease { force: true });
    assert_eq!(outcome(&a), None);
    assert!(a.contains(&Action::Promote));
    assert_eq!(t.m.phase(), Phase::Releasing);
}

#[test]
fn release_while_the_demote_is_in_flight_waits_for_it() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    let a = t.ev(Event::ManualRelease { force: true });
    assert!(!a.contains(&Action::Promote));
    let a = t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert!(a.contains(&Action::Promote));
}

#[test]
fn release_at_rest_does_nothing() {
    let mut t = released();
    assert!(t.ev(Event::ManualRelease { force: true }).is_empty());
}

// --- drain ---

#[test]
fn drain_demotes_and_reports_when_every_watched_vhid_is_backup() {
    let mut t = released();
    t.ev(carp(CarpState::Master));
    let a = t.ev(Event::Drain { timeout: secs(30) });
    assert_eq!(phases(&a), vec![Phase::Draining]);
    assert!(a.contains(&Action::Demote));
    assert!(t.ev(Event::Backend { op: BackendOp::Demote, ok: true }).is_empty());
    let a = t.ev(carp(CarpState::Backup));
    assert!(a.contains(&Action::Record(Record::DrainFinished { handed_over: true })));
    assert!(started(&a).is_none(), "a drain is not a failback");
}

#[test]
fn drain_times_out_when_the_peer_does_not_take_over() {
    let mut t = released();
    t.ev(carp(CarpState::Master));
    t.at(20.0).ev(Event::Drain { timeout: secs(30) });
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(50)));
    let a = t.at(50.0).tick();
    assert!(a.contains(&Action::Record(Record::DrainFinished { handed_over: false })));
    assert_eq!(t.m.phase(), Phase::Draining);
}

#[test]
fn drain_during_a_failback_aborts_it() {
    let mut t = T::booted(cfg());
    let a = t.ev(Event::Drain { timeout: secs(30) });
    assert_eq!(outcome(&a), Some(Outcome::Aborted));
    assert!(!a.contains(&Action::Demote), "already demoted");
}

#[test]
fn release_cancels_a_drain() {
    let mut t = released();
    t.ev(Event::Drain { timeout: secs(30) });
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = t.ev(Event::ManualRelease { force: false });
    assert!(a.contains(&Action::Promote));
}

#[test]
fn release_at_rest_is_not_refused_even_with_probes_down() {
    let mut t = released();
    t.at(30.0).probe(0, false);
    t.at(31.0).probe(0, false);
    assert!(t.ev(Event::ManualRelease { force: false }).is_empty());
}

// --- reload ---

#[test]
fn reload_keeps_the_hold_and_carries_probe_counters_by_name() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    assert_eq!(t.m.phase(), Phase::Stabilizing);
    let mut new = cfg();
    new.probes.push(ProbeSpec {
        name: "tunnel".into(),
        identity: String::new(),
        rise: 1,
        fall: 1,
        required: true,
        track: None,
    });
    let a = t.at(3.0).ev(Event::Reconfigure(Box::new(new)));
    assert_eq!(phases(&a), vec![Phase::Probing], "a new required probe starts down");
    assert!(!a.contains(&Action::Demote) && !a.contains(&Action::Promote));
    assert!(t.m.probe(0).unwrap().up, "gw kept its state");
    assert_eq!(t.m.failback().map(|f| f.id), Some(1));
    let a = t.at(4.0).probe(2, true);
    assert_eq!(phases(&a), vec![Phase::Stabilizing]);
}

#[test]
fn reload_with_a_shorter_max_hold_applies_it() {
    let mut t = T::booted(cfg());
    let a = t.at(50.0).ev(Event::Reconfigure(Box::new(MachineConfig { max_hold: secs(40), ..cfg() })));
    assert_eq!(outcome(&a), Some(Outcome::Failed));
}

#[test]
fn arming_reports_every_probe_that_was_up_as_down() {
    let mut t = released();
    assert!(t.m.probe(0).unwrap().up);
    let a = t.ev(carp(CarpState::Backup));
    assert!(a.contains(&Action::Record(Record::ProbeChanged { probe: 0, up: false })));
    assert!(
        !a.contains(&Action::Record(Record::ProbeChanged { probe: 1, up: false })),
        "probe 1 was never up"
    );
    assert!(!t.m.probe(0).unwrap().up);
}

/// Released and MASTER, with the config as given (rise 2 or less).
pub(super) fn master(c: MachineConfig) -> T {
    let mut t = T::booted(c);
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    t.at(10.0).tick();
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    t.ev(carp(CarpState::Master));
    assert_eq!(t.m.phase(), Phase::Released);
    t
}

#[test]
fn a_start_at_rest_that_cannot_see_its_lever_promotes_once_when_the_probes_are_up() {
    // A stale file says `released` (or failbackd was reinstalled: idle) and the backend cannot
    // show failbackd's hold: the idempotent promote lifts a hold that may be left, but only once
    // every required probe is up, and only once.
    let mut t = T::new(cfg());
    let boot = Boot {
        backend_demoted: Some(false), // inferred from the file, not measured
        previous: Some(Phase::Released),
        lever_unseen: true,
        ..Default::default()
    };
    assert!(!t.ev(Event::Boot(boot)).contains(&Action::Promote));
    assert!(t.m.lever_unseen());
    assert!(!t.at(1.0).probe(0, true).contains(&Action::Promote), "not risen yet");
    assert!(t.at(2.0).probe(0, true).contains(&Action::Promote));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert!(!t.m.lever_unseen());
    assert!(!t.at(3.0).probe(0, true).contains(&Action::Promote), "once");
    assert_eq!(t.m.phase(), Phase::Released);
}

#[test]
fn a_start_that_sees_its_lever_promotes_nothing() {
    let mut t = T::new(cfg());
    let boot = Boot { backend_demoted: Some(false), previous: Some(Phase::Released), ..Default::default() };
    t.ev(Event::Boot(boot));
    t.at(1.0).probe(0, true);
    assert!(!t.at(2.0).probe(0, true).contains(&Action::Promote));
}
