//! Property tests of the state machine's invariants over random event sequences, with a
//! simulated backend that answers (or fails) the calls the machine makes.
//!
//! Invariants:
//! 1. never promote with a failing required probe unless forced (policy release or `--force`);
//! 2. exactly one failback at a time: started/ended strictly alternate, ids count up by one;
//! 3. every arm ends in exactly one outcome (and a held failback always ends by max_hold);
//! 4. demote/promote are never issued twice in a row (unless the first one failed), and never
//!    while another call is in flight;
//! 5. the reported phase matches the last phase change, and phase/failback agree;
//! 6. a stale or duplicate input (a backend result nobody waits for, a reading that a call or a
//!    hook overtook) changes neither the confirmed backend state nor the CARP states;
//! 7. every drain is answered: finished, timed out or superseded, never left waiting;
//! 8. after a step, no deadline is due (the driver would spin).
//!
//! The simulated backend has a real state; "someone" may change it behind the machine's back
//! (drift) and readings report it, current or stale.

use failbackd::machine::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Input {
    Carp(u16, CarpState),
    Probe(usize, bool),
    Hold,
    Release(bool),
    Drain(u64),
    /// The backend answers the call in flight (if any) with ok or failure.
    Answer(bool),
    Advance(u64),
    /// SIGHUP: reload with probe `b` dropped or restored.
    Reload(bool),
    /// A reading of the real backend state, current.
    Observe,
    /// Someone sets the real backend state behind the machine's back, then a reading comes.
    Tamper(bool),
    /// A reading taken before the last call or hook (stale), claiming `held`.
    StaleObserve(bool),
    /// The last backend result delivered a second time.
    Duplicate,
    /// A reload replaced the backend.
    Replace,
    /// The OS poll reports a CARP state, current or stale.
    Poll(u16, CarpState, bool),
    /// The peer answers a tracking question (asked or not).
    Peer(u8),
}

fn input() -> impl Strategy<Value = Input> {
    let state = prop_oneof![Just(CarpState::Master), Just(CarpState::Backup), Just(CarpState::Init)];
    prop_oneof![
        2 => (1u16..3, state.clone()).prop_map(|(v, s)| Input::Carp(v, s)),
        6 => (0usize..3, any::<bool>()).prop_map(|(p, ok)| Input::Probe(p, ok)),
        1 => Just(Input::Hold),
        1 => any::<bool>().prop_map(Input::Release),
        1 => (1u64..40).prop_map(Input::Drain),
        5 => prop_oneof![4 => Just(true), 1 => Just(false)].prop_map(Input::Answer),
        4 => (0u64..30_000).prop_map(Input::Advance),
        1 => any::<bool>().prop_map(Input::Reload),
        2 => Just(Input::Observe),
        1 => any::<bool>().prop_map(Input::Tamper),
        1 => any::<bool>().prop_map(Input::StaleObserve),
        1 => Just(Input::Duplicate),
        1 => Just(Input::Replace),
        2 => (1u16..3, state, any::<bool>()).prop_map(|(v, s, stale)| Input::Poll(v, s, stale)),
        1 => (0u8..3).prop_map(Input::Peer),
    ]
}

fn config(policy: MaxHoldPolicy, hold_on_boot: bool) -> MachineConfig {
    MachineConfig {
        hold_on_boot,
        min_hold: Duration::from_secs(5),
        max_hold: Duration::from_secs(60),
        max_hold_policy: policy,
        stable_for: Duration::from_secs(3),
        probes: vec![
            // "a" is tracked: tracking demotions arm failbacks like any other trigger.
            ProbeSpec {
                name: "a".into(),
                identity: String::new(),
                rise: 2,
                fall: 2,
                required: true,
                track: Some(TrackSpec { demote_without_peer: true }),
            },
            ProbeSpec {
                name: "b".into(),
                identity: String::new(),
                rise: 3,
                fall: 1,
                required: true,
                track: None,
            },
            ProbeSpec {
                name: "c".into(),
                identity: String::new(),
                rise: 1,
                fall: 1,
                required: false,
                track: None,
            },
        ],
        backoff: Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(4) },
        tracking: TrackingConfig { peer: true, max_demotions: 2, ..TrackingConfig::default() },
        shared_lever: false,
    }
}

/// Checks the invariants step by step.
#[derive(Default)]
struct Checker {
    open_failback: Option<u64>,
    last_id: u64,
    in_flight: Option<BackendOp>,
    /// The last call and whether it failed.
    last_call: Option<(BackendOp, bool)>,
    phase: Option<Phase>,
    arms: u64,
    outcomes: u64,
    /// A drain was asked for and not answered yet.
    drain_pending: bool,
}

impl Checker {
    fn observe(&mut self, m: &Machine, event: &Event, actions: &[Action]) -> Result<(), TestCaseError> {
        // A restart that finds `releasing` on record resumes a release whose gate the previous run
        // passed (and, with a backend that cannot tell, re-issues its promote: D8).
        let resumed_release = matches!(event, Event::Boot(b) if b.previous == Some(Phase::Releasing));
        let mut forced = matches!(event, Event::ManualRelease { force: true }) || resumed_release;
        if matches!(event, Event::Drain { .. }) {
            self.drain_pending = true;
        }
        if matches!(event, Event::BackendReplaced) {
            // The old backend's call is forgotten; the new one starts with a clean slate.
            self.in_flight = None;
            self.last_call = None;
        }
        for a in actions {
            match a {
                Action::Demote | Action::Promote => {
                    let op = if *a == Action::Demote { BackendOp::Demote } else { BackendOp::Promote };
                    prop_assert!(
                        self.in_flight.is_none(),
                        "{op:?} issued while {:?} in flight",
                        self.in_flight
                    );
                    if let Some((last, failed)) = self.last_call {
                        prop_assert!(last != op || failed, "{op:?} issued twice in a row");
                    }
                    self.in_flight = Some(op);
                }
                Action::Record(Record::FailbackStarted { failback, .. }) => {
                    prop_assert!(self.open_failback.is_none(), "second failback while one is open");
                    prop_assert_eq!(*failback, self.last_id + 1);
                    self.open_failback = Some(*failback);
                    self.last_id = *failback;
                    self.arms += 1;
                }
                Action::Record(Record::FailbackEnded { failback, outcome, .. }) => {
                    prop_assert_eq!(self.open_failback, Some(*failback), "ended a failback that is not open");
                    self.open_failback = None;
                    self.outcomes += 1;
                    forced |= *outcome == Outcome::Forced;
                }
                Action::Record(Record::PhaseChanged { from, to, .. }) => {
                    if let Some(p) = self.phase {
                        prop_assert_eq!(p, *from);
                    }
                    if *to == Phase::Releasing {
                        // Invariant 1: the gate passed, or someone forced it.
                        prop_assert!(
                            forced || m.release_blockers().is_empty(),
                            "released with required probes down"
                        );
                    }
                    self.phase = Some(*to);
                }
                Action::Record(Record::BackendDrift { .. }) => {
                    // Re-applying after someone undid it is not a repeat of the same call.
                    self.last_call = None;
                }
                Action::Record(Record::DrainFinished { .. } | Record::DrainSuperseded) => {
                    self.drain_pending = false;
                }
                _ => {}
            }
        }
        if let Some(p) = self.phase {
            prop_assert_eq!(p, m.phase());
        }
        prop_assert_eq!(m.failback().is_some(), m.phase().is_holding(), "phase {} vs failback", m.phase());
        prop_assert_eq!(m.failback().map(|f| f.id), self.open_failback);
        Ok(())
    }

    fn answered(&mut self, op: BackendOp, ok: bool) {
        self.in_flight = None;
        self.last_call = Some((op, !ok));
    }
}

fn run(
    policy: MaxHoldPolicy,
    hold_on_boot: bool,
    boot: Boot,
    inputs: Vec<Input>,
) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut m = Machine::new(config(policy, hold_on_boot), t0);
    let mut c = Checker::default();
    // The simulated backend's real state, and the last result delivered (for duplicates).
    let mut real = boot.backend_demoted;
    let mut last_result: Option<(BackendOp, bool)> = None;
    let mut old_seqs = (0u64, 0u64);
    let boot_event = Event::Boot(boot);
    let a = m.step(now, boot_event.clone());
    c.observe(&m, &boot_event, &a)?;
    for input in inputs {
        let duplicate = matches!(input, Input::Duplicate);
        let event = match input {
            Input::Carp(vhid, state) => Event::Carp { vhid, iface: "em0".into(), state },
            Input::Probe(probe, ok) => Event::Probe { probe, ok },
            Input::Hold => Event::ManualHold,
            Input::Release(force) => Event::ManualRelease { force },
            Input::Drain(s) => Event::Drain { timeout: Duration::from_secs(s) },
            Input::Answer(ok) => match c.in_flight {
                Some(op) => {
                    c.answered(op, ok);
                    if ok {
                        real = Some(op == BackendOp::Demote);
                    }
                    last_result = Some((op, ok));
                    Event::Backend { op, ok }
                }
                None => Event::Tick,
            },
            Input::Observe | Input::Tamper(_) => {
                if let Input::Tamper(v) = input {
                    real = Some(v);
                }
                Event::Observed(Observed {
                    backend_seq: m.backend_seq(),
                    carp_seq: m.carp_seq(),
                    held: real,
                    foreign: false,
                    also_ours: false,
                    carp: None,
                })
            }
            Input::StaleObserve(held) => stale(&m, old_seqs, Some(held), None),
            Input::Poll(vhid, state, is_stale) => {
                let carp = Some(vec![CarpReading { vhid, iface: "em0".into(), state }]);
                if is_stale {
                    stale(&m, old_seqs, None, carp)
                } else {
                    Event::Observed(Observed {
                        backend_seq: m.backend_seq(),
                        carp_seq: m.carp_seq(),
                        held: None,
                        foreign: false,
                        also_ours: false,
                        carp,
                    })
                }
            }
            Input::Duplicate => match last_result {
                Some((op, ok)) if c.in_flight != Some(op) => Event::Backend { op, ok },
                _ => Event::Tick,
            },
            Input::Replace => Event::BackendReplaced,
            Input::Peer(h) => Event::PeerAnswer(match h {
                0 => PeerHealth::Healthy,
                1 => PeerHealth::Unhealthy,
                _ => PeerHealth::Unreachable,
            }),
            Input::Reload(without_b) => {
                let mut cfg = config(policy, hold_on_boot);
                if without_b {
                    cfg.probes.retain(|p| p.name != "b");
                }
                Event::Reconfigure(Box::new(cfg))
            }
            Input::Advance(ms) => {
                now += Duration::from_millis(ms);
                Event::Tick
            }
        };
        let before = (m.backend_demoted(), m.carp_states().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
        let is_stale = matches!(event, Event::Observed(ref o) if o.backend_seq != m.backend_seq() && o.carp_seq != m.carp_seq())
            || (duplicate && matches!(event, Event::Backend { .. }));
        old_seqs = (m.backend_seq(), m.carp_seq());
        let a = m.step(now, event.clone());
        c.observe(&m, &event, &a)?;
        if is_stale {
            // Invariant 6 (deadlines and retries may still act in the same step, so only the
            // facts are compared, and only when no call was made by this step).
            if !a.iter().any(|a| matches!(a, Action::Demote | Action::Promote)) {
                let after =
                    (m.backend_demoted(), m.carp_states().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
                prop_assert_eq!(before, after, "a stale input changed a fact: {:?}", event);
            }
        }
        if let Some(d) = m.next_deadline() {
            prop_assert!(d >= t0, "deadline before start");
            // Invariant 8: after a step nothing is due any more. A deadline at or before `now`
            // would wake the driver at once, forever: a busy loop (a retry left armed when no
            // call is needed any more was one).
            prop_assert!(d > now, "deadline {:?} not after now after {:?}", d - t0, event);
        }
    }
    // Invariant 3: a failback still open ends by max_hold at the latest, whatever the probes do,
    // as long as the backend answers. A tracking failback under policy `stay` has no max_hold
    // (the peer serves; it ends when the path returns): the path returns here.
    if m.failback().is_some() && m.hold_deadline().is_none() {
        // The driver measures the backend every reconcile_interval (a replaced backend waits for
        // that before any call), and answers the call in flight.
        run_on(&mut m, &mut c, &mut now, 1, |_| false)?;
        let ev = Event::Observed(Observed {
            backend_seq: m.backend_seq(),
            carp_seq: m.carp_seq(),
            held: None,
            foreign: false,
            also_ours: false,
            carp: None,
        });
        let a = m.step(now, ev.clone());
        c.observe(&m, &ev, &a)?;
        for _ in 0..3 {
            for probe in 0..m.config().probes.len() {
                let ev = Event::Probe { probe, ok: true };
                let a = m.step(now, ev.clone());
                c.observe(&m, &ev, &a)?;
            }
        }
    }
    run_on(&mut m, &mut c, &mut now, 50, |c| c.open_failback.is_none())?;
    prop_assert!(c.open_failback.is_none(), "failback never ended (phase {})", m.phase());
    prop_assert_eq!(c.arms, c.outcomes, "every arm ends in exactly one outcome");
    // Invariant 7: once the drain's timeout has passed (the flush above advanced by minutes),
    // every drain has had its answer.
    run_on(&mut m, &mut c, &mut now, 3, |_| false)?;
    prop_assert!(!c.drain_pending, "a drain was never answered (phase {})", m.phase());
    Ok(())
}

/// Lets time pass (61 s a round, at most `rounds`) with the backend answering every call, until
/// `done`.
fn run_on(
    m: &mut Machine,
    c: &mut Checker,
    now: &mut Instant,
    rounds: usize,
    done: impl Fn(&Checker) -> bool,
) -> Result<(), TestCaseError> {
    for _ in 0..rounds {
        if done(c) {
            break;
        }
        if let Some(op) = c.in_flight {
            c.answered(op, true);
            let ev = Event::Backend { op, ok: true };
            let a = m.step(*now, ev.clone());
            c.observe(m, &ev, &a)?;
        }
        *now += Duration::from_secs(61);
        let a = m.step(*now, Event::Tick);
        c.observe(m, &Event::Tick, &a)?;
    }
    Ok(())
}

/// A reading that started before the step that came before this one: stale on both counters
/// unless nothing happened in between.
fn stale(m: &Machine, old: (u64, u64), held: Option<bool>, carp: Option<Vec<CarpReading>>) -> Event {
    let backend_seq = if old.0 == m.backend_seq() { m.backend_seq().wrapping_sub(1) } else { old.0 };
    let carp_seq = if old.1 == m.carp_seq() { m.carp_seq().wrapping_sub(1) } else { old.1 };
    Event::Observed(Observed { backend_seq, carp_seq, held, foreign: false, also_ours: false, carp })
}

fn boot() -> impl Strategy<Value = Boot> {
    let phase = proptest::sample::select(PHASES.to_vec());
    (proptest::option::of(any::<bool>()), proptest::option::of(phase))
        .prop_map(|(backend_demoted, previous)| Boot { backend_demoted, previous, ..Default::default() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_with_policy_stay(hold in any::<bool>(), boot in boot(), inputs in prop::collection::vec(input(), 0..120)) {
        run(MaxHoldPolicy::Stay, hold, boot, inputs)?;
    }

    #[test]
    fn invariants_hold_with_policy_release(hold in any::<bool>(), boot in boot(), inputs in prop::collection::vec(input(), 0..120)) {
        run(MaxHoldPolicy::Release, hold, boot, inputs)?;
    }
}
