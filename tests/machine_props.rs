//! Property tests of the state machine's invariants over random event sequences, with a
//! simulated backend that answers (or fails) the calls the machine makes.
//!
//! Invariants:
//! 1. never promote with a failing required probe unless forced (policy release or `--force`);
//! 2. exactly one failback at a time: started/ended strictly alternate, ids count up by one;
//! 3. every arm ends in exactly one outcome (and a held failback always ends by max_hold);
//! 4. demote/promote are never issued twice in a row (unless the first one failed), and never
//!    while another call is in flight;
//! 5. the reported phase matches the last phase change, and phase/failback agree.

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
}

fn input() -> impl Strategy<Value = Input> {
    let state = prop_oneof![Just(CarpState::Master), Just(CarpState::Backup), Just(CarpState::Init)];
    prop_oneof![
        2 => (1u16..3, state).prop_map(|(v, s)| Input::Carp(v, s)),
        6 => (0usize..3, any::<bool>()).prop_map(|(p, ok)| Input::Probe(p, ok)),
        1 => Just(Input::Hold),
        1 => any::<bool>().prop_map(Input::Release),
        1 => (1u64..40).prop_map(Input::Drain),
        5 => prop_oneof![4 => Just(true), 1 => Just(false)].prop_map(Input::Answer),
        4 => (0u64..30_000).prop_map(Input::Advance),
        1 => any::<bool>().prop_map(Input::Reload),
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
            ProbeSpec { name: "a".into(), rise: 2, fall: 2, required: true },
            ProbeSpec { name: "b".into(), rise: 3, fall: 1, required: true },
            ProbeSpec { name: "c".into(), rise: 1, fall: 1, required: false },
        ],
        backoff: Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(4) },
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
}

impl Checker {
    fn observe(&mut self, m: &Machine, event: &Event, actions: &[Action]) -> Result<(), TestCaseError> {
        let mut forced = matches!(event, Event::ManualRelease { force: true });
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
    let boot_event = Event::Boot(boot);
    let a = m.step(now, boot_event.clone());
    c.observe(&m, &boot_event, &a)?;
    for input in inputs {
        let event = match input {
            Input::Carp(vhid, state) => Event::Carp { vhid, iface: "em0".into(), state },
            Input::Probe(probe, ok) => Event::Probe { probe, ok },
            Input::Hold => Event::ManualHold,
            Input::Release(force) => Event::ManualRelease { force },
            Input::Drain(s) => Event::Drain { timeout: Duration::from_secs(s) },
            Input::Answer(ok) => match c.in_flight {
                Some(op) => {
                    c.answered(op, ok);
                    Event::Backend { op, ok }
                }
                None => Event::Tick,
            },
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
        let a = m.step(now, event.clone());
        c.observe(&m, &event, &a)?;
        if let Some(d) = m.next_deadline() {
            prop_assert!(d >= t0, "deadline before start");
        }
    }
    // Invariant 3: a failback still open ends by max_hold at the latest, whatever the probes do,
    // as long as the backend answers.
    for _ in 0..50 {
        if c.open_failback.is_none() {
            break;
        }
        if let Some(op) = c.in_flight {
            c.answered(op, true);
            let ev = Event::Backend { op, ok: true };
            let a = m.step(now, ev.clone());
            c.observe(&m, &ev, &a)?;
        }
        now += Duration::from_secs(61);
        let a = m.step(now, Event::Tick);
        c.observe(&m, &Event::Tick, &a)?;
    }
    prop_assert!(c.open_failback.is_none(), "failback never ended (phase {})", m.phase());
    prop_assert_eq!(c.arms, c.outcomes, "every arm ends in exactly one outcome");
    Ok(())
}

fn boot() -> impl Strategy<Value = Boot> {
    let phase = proptest::sample::select(PHASES.to_vec());
    (proptest::option::of(any::<bool>()), proptest::option::of(phase))
        .prop_map(|(backend_demoted, previous)| Boot { backend_demoted, previous })
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
