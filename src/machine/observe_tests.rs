//! Unit tests for measurements (drift, foreign holds, CARP polls, stale readings), restarts that
//! resume the same failback, and drains superseded by a hold or release.

use super::tests::*;
use super::*;

fn foreign(t: &T) -> Event {
    Event::Observed(Observed { foreign: true, ..observed(t, Some(true)) })
}

fn observed(t: &T, held: Option<bool>) -> Observed {
    match reading(t, held) {
        Event::Observed(o) => o,
        _ => unreachable!(),
    }
}

fn polled(t: &T, state: CarpState) -> Event {
    Event::Observed(Observed {
        carp: Some(vec![CarpReading { vhid: 1, iface: "em0".into(), state }]),
        ..observed(t, None)
    })
}

fn drifts(actions: &[Action]) -> Vec<Drift> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(Record::BackendDrift { direction, .. }) => Some(*direction),
            _ => None,
        })
        .collect()
}

// --- drift ---

#[test]
fn a_hold_removed_behind_our_back_is_drift_and_is_put_back() {
    for phase_setup in [0.0, 1.0] {
        let mut t = T::booted(cfg());
        if phase_setup > 0.0 {
            t.at(1.0).probe(0, true);
            t.at(2.0).probe(0, true);
            assert_eq!(t.m.phase(), Phase::Stabilizing);
        }
        t.at(3.0);
        let a = t.ev(reading(&t, Some(false)));
        assert_eq!(drifts(&a), vec![Drift::Removed]);
        assert!(a.contains(&Action::Demote), "the wanted hold is re-applied at once");
        assert_eq!(t.m.backend_demoted(), Some(false));
    }
}

#[test]
fn a_hold_added_behind_our_back_after_the_release_is_drift_and_is_removed() {
    let mut t = released();
    let a = t.ev(reading(&t, Some(true)));
    assert_eq!(drifts(&a), vec![Drift::Added]);
    assert!(a.contains(&Action::Promote));
    assert_eq!(t.m.phase(), Phase::Released, "drift re-applies the phase, it arms nothing");
}

#[test]
fn a_reading_that_agrees_is_not_drift() {
    let mut t = T::booted(cfg());
    assert!(t.ev(reading(&t, Some(true))).is_empty());
    assert!(t.ev(reading(&t, None)).is_empty(), "unknown is not a change");
}

#[test]
fn drift_that_keeps_coming_back_is_re_applied_with_backoff() {
    let mut t = T::booted(cfg());
    t.at(1.0);
    let a = t.ev(reading(&t, Some(false)));
    assert!(a.contains(&Action::Demote));
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    // Undone again: the second re-apply waits (backoff 1 s for the second drift in a row).
    t.at(2.0);
    let a = t.ev(reading(&t, Some(false)));
    assert_eq!(drifts(&a), vec![Drift::Removed]);
    assert!(!a.contains(&Action::Demote));
    assert!(t.at(3.0).tick().contains(&Action::Demote));
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    // A reading that agrees resets the count: the next drift is re-applied at once.
    t.at(4.0);
    assert!(t.ev(reading(&t, Some(true))).is_empty());
    t.at(5.0);
    assert!(t.ev(reading(&t, Some(false))).contains(&Action::Demote));
}

#[test]
fn a_reading_overtaken_by_a_call_is_stale_and_ignored() {
    let mut t = T::booted(cfg());
    let stale = reading(&t, Some(false));
    // A drift re-apply is in flight: a reading taken before it is ignored, and so is one that
    // arrives while the call runs.
    assert!(t.ev(reading(&t, Some(false))).contains(&Action::Demote));
    assert!(t.ev(stale.clone()).is_empty());
    assert!(t.ev(reading(&t, Some(false))).is_empty(), "a call in flight makes any reading stale");
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert!(t.ev(stale).is_empty(), "taken before the call finished");
    assert_eq!(t.m.backend_demoted(), Some(true));
}

#[test]
fn the_first_reading_of_an_unknown_state_is_learned_not_drift() {
    let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
    t.ev(Event::Boot(Boot { backend_demoted: None, previous: Some(Phase::Released), ..Default::default() }));
    let a = t.ev(reading(&t, Some(false)));
    assert!(drifts(&a).is_empty());
    assert!(a.is_empty());
}

#[test]
fn our_hold_found_while_idle_is_picked_up_as_a_failback() {
    let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    assert_eq!(t.m.phase(), Phase::Idle);
    let a = t.ev(reading(&t, Some(true)));
    assert_eq!(started(&a), Some(Trigger::Resume));
    assert!(!a.contains(&Action::Demote), "already in place");
    assert_eq!(t.m.phase(), Phase::Probing);
}

// --- foreign holds ---

#[test]
fn a_foreign_hold_after_the_release_is_reported_once_and_never_undone() {
    let mut t = released();
    let a = t.ev(foreign(&t));
    assert_eq!(a, vec![Action::Record(Record::ForeignHold { held: true })]);
    assert!(t.ev(foreign(&t)).is_empty(), "reported once");
    assert_eq!(t.m.backend_demoted(), Some(false));
    let a = t.ev(reading(&t, Some(false)));
    assert_eq!(a, vec![Action::Record(Record::ForeignHold { held: false })]);
}

#[test]
fn a_foreign_hold_is_relied_upon_while_holding() {
    let mut t = T::new(cfg());
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    assert_eq!(t.m.backend_in_flight(), Some(BackendOp::Demote));
    // The demote answers "ok" (the operator's maintenance holds the node); readings agree.
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    let a = t.ev(foreign(&t));
    assert!(drifts(&a).is_empty());
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Probing);
}

// --- a new backend ---

#[test]
fn a_replaced_backend_is_measured_before_any_call() {
    let mut t = T::booted(cfg());
    assert!(t.ev(Event::BackendReplaced).is_empty());
    assert_eq!(t.m.backend_demoted(), None);
    assert!(t.at(50.0).tick().is_empty(), "no call on an unknown new backend");
    // The old backend's result is ignored.
    assert!(t.ev(Event::Backend { op: BackendOp::Demote, ok: true }).is_empty());
    let a = t.ev(reading(&t, Some(false)));
    assert!(drifts(&a).is_empty(), "learned, not drift");
    assert!(a.contains(&Action::Demote));
}

#[test]
fn a_new_backend_that_cannot_be_read_is_called_after_the_failed_reading() {
    let mut t = T::booted(cfg());
    t.ev(Event::BackendReplaced);
    assert!(t.ev(reading(&t, None)).contains(&Action::Demote));
}

// --- CARP polls ---

#[test]
fn the_first_poll_after_a_restart_learns_states_and_arms_nothing() {
    let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    let a = t.ev(polled(&t, CarpState::Master));
    assert_eq!(
        a,
        vec![Action::Record(Record::CarpChanged {
            vhid: 1,
            iface: "em0".into(),
            state: CarpState::Master,
            transition: false
        })]
    );
    assert_eq!(t.m.phase(), Phase::Idle);
}

#[test]
fn a_transition_found_by_the_poll_acts_like_a_hook() {
    let mut t = released();
    t.ev(polled(&t, CarpState::Master));
    let a = t.ev(polled(&t, CarpState::Backup));
    assert!(a.contains(&Action::Record(Record::CarpChanged {
        vhid: 1,
        iface: "em0".into(),
        state: CarpState::Backup,
        transition: true
    })));
    assert!(matches!(started(&a), Some(Trigger::Carp { .. })), "a lost hook, found by the poll");
}

#[test]
fn a_repeated_state_is_not_a_transition() {
    let mut t = released();
    t.ev(carp(CarpState::Master));
    assert!(t.ev(carp(CarpState::Master)).is_empty());
    assert!(t.ev(polled(&t, CarpState::Master)).is_empty());
}

#[test]
fn a_poll_overtaken_by_a_hook_is_stale() {
    let mut t = released();
    t.ev(carp(CarpState::Master));
    let stale = polled(&t, CarpState::Backup);
    t.ev(carp(CarpState::Master)); // a hook after the poll started (same state: still counts)
    assert!(t.ev(stale).is_empty(), "an old BACKUP must not arm a failback on a live master");
    assert_eq!(t.m.phase(), Phase::Released);
}

#[test]
fn master_seen_by_the_poll_while_held_is_concluded() {
    let mut t = T::booted(cfg());
    let a = t.ev(polled(&t, CarpState::Master));
    assert!(a.contains(&Action::Record(Record::PeerNotAsked { failback: 1 })), "{a:?}");
}

// --- restarts resume the same failback ---

fn resumed_boot(t: &T, armed_ago: u64, previous: Phase) -> Event {
    Event::Boot(Boot {
        backend_demoted: Some(true),
        previous: Some(previous),
        resumed: Some(Resumed { id: 4, armed_at: t.now - secs(armed_ago), peer_lost: true }),
        last_failback: 4,
        lever_unseen: false,
    })
}

#[test]
fn a_restart_resumes_the_same_failback_with_its_deadline() {
    let mut t = T::new(cfg());
    t.at(1000.0);
    let a = t.ev(resumed_boot(&t, 30, Phase::Probing));
    assert!(a.iter().any(|a| matches!(a, Action::Record(Record::FailbackStarted { failback: 4, .. }))));
    let fb = t.m.failback().unwrap().clone();
    assert_eq!((fb.id, fb.peer_lost), (4, true));
    assert_eq!(t.m.hold_deadline(), Some(t.now - secs(30) + secs(100)));
    // max_hold (100 s) ends 70 s after the restart, not 100 s.
    assert!(outcome(&t.at(1069.0).tick()).is_none());
    assert_eq!(outcome(&t.at(1070.0).tick()), Some(Outcome::Failed));
}

#[test]
fn a_crash_loop_past_the_deadline_ends_in_failed_at_once() {
    let mut t = T::new(cfg());
    t.at(1000.0);
    let a = t.ev(resumed_boot(&t, 150, Phase::Stabilizing));
    assert_eq!(outcome(&a), Some(Outcome::Failed));
    assert_eq!(t.m.phase(), Phase::Failed);
}

#[test]
fn ids_keep_counting_across_restarts() {
    let mut t = T::new(MachineConfig { hold_on_boot: false, ..cfg() });
    t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Released),
        resumed: None,
        last_failback: 9,
        lever_unseen: false,
    }));
    t.ev(Event::ManualHold);
    assert_eq!(t.m.failback().map(|f| f.id), Some(10));
}

#[test]
fn a_huge_max_hold_never_overflows() {
    let mut t = T::booted(MachineConfig { max_hold: Duration::MAX, ..cfg() });
    assert_eq!(t.m.hold_deadline(), None);
    assert!(outcome(&t.at(1e9).tick()).is_none());
    let _ = t.ev(Event::Drain { timeout: Duration::MAX });
}

// --- drains ---

#[test]
fn a_hold_or_release_that_supersedes_a_drain_answers_it() {
    for event in [Event::ManualHold, Event::ManualRelease { force: true }] {
        let mut t = released();
        t.ev(Event::Drain { timeout: secs(60) });
        let a = t.ev(event);
        assert!(a.contains(&Action::Record(Record::DrainSuperseded)));
    }
}

// --- reloads ---

#[test]
fn a_probe_re_pointed_by_a_reload_starts_down() {
    let mut t = T::booted(cfg());
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let mut new = cfg();
    new.probes[0].identity = "icmp 198.51.100.2".into();
    let a = t.at(3.0).ev(Event::Reconfigure(Box::new(new)));
    assert!(!t.m.probe(0).unwrap().up);
    assert_eq!(phases(&a), vec![Phase::Probing]);
}

#[test]
fn a_retry_that_is_no_longer_needed_is_disarmed_never_a_busy_loop() {
    // Found by the soak benchmark: a drift re-apply waiting out its backoff, then the reading
    // agrees with what the phase wants; the armed retry was a deadline in the past for ever.
    let mut t = T::booted(cfg());
    t.at(1.0);
    assert!(t.ev(reading(&t, Some(false))).contains(&Action::Demote));
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(2.0);
    t.ev(reading(&t, Some(false))); // second drift: the re-apply waits (backoff)
    t.at(2.5);
    t.ev(reading(&t, Some(true))); // it came back by itself: no call needed any more
    t.at(3.0);
    assert!(t.tick().is_empty());
    assert!(t.m.next_deadline().is_none_or(|d| d > t.now), "{:?}", t.m.next_deadline());
}

// --- restarts with a backend that cannot be measured (D8) ---

/// D8: `command` backend without `state`, restarted in `releasing`: the promote may have failed
/// before the restart; it is issued again (idempotent) and the node is not re-held.
#[test]
fn a_restart_in_releasing_with_an_unknown_backend_promotes_again() {
    let mut t = T::new(cfg());
    let a = t.ev(Event::Boot(Boot {
        previous: Some(Phase::Releasing),
        backend_demoted: None,
        ..Default::default()
    }));
    assert!(a.contains(&Action::Promote), "{a:?}");
    assert!(!a.contains(&Action::Demote));
    assert_eq!((t.m.phase(), started(&a)), (Phase::Releasing, None));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: false });
    assert_eq!(t.m.phase(), Phase::Releasing, "a failed promote is retried, never declared done");
    let a = t.at(60.0).tick();
    assert!(a.contains(&Action::Promote));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
}

// --- the shared service_status bit (D9) ---

fn shared(t: &T, bit: bool, maintenance: bool) -> Event {
    let (held, foreign, also_ours) = attribute_shared_hold(bit, maintenance, t.m.phase());
    Event::Observed(Observed { held, foreign, also_ours, ..observed(t, None) })
}

fn foreign_records(actions: &[Action]) -> Vec<bool> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(Record::ForeignHold { held }) => Some(*held),
            _ => None,
        })
        .collect()
}

/// D9: another check's 2^20 bit while released is foreign: reported, never fought, and its
/// going away is no drift either.
#[test]
fn another_checks_bit_while_released_is_foreign_and_left_alone() {
    let mut t = released();
    for s in 0..5 {
        t.at(20.0 + f64::from(s));
        let a = t.ev(shared(&t, true, false));
        assert_eq!(drifts(&a), vec![], "{a:?}");
        assert!(!a.contains(&Action::Promote) && !a.contains(&Action::Demote));
        assert_eq!(foreign_records(&a), if s == 0 { vec![true] } else { vec![] });
    }
    assert!(t.m.foreign_hold());
    t.at(30.0);
    let a = t.ev(shared(&t, false, false));
    assert_eq!((drifts(&a), foreign_records(&a)), (vec![], vec![false]));
    assert_eq!(t.m.phase(), Phase::Released);
}

/// D9: while idle the bit is never failbackd's (its check passes): not adopted as a hold; and
/// when it goes away (the other check passes again), that is no drift of failbackd's hold (the
/// first reading after the start found only the other check's bit).
#[test]
fn another_checks_bit_while_idle_is_not_adopted() {
    let mut c = cfg();
    c.hold_on_boot = false;
    let mut t = T::new(c);
    t.ev(Event::Boot(Boot { previous: None, backend_demoted: None, ..Default::default() }));
    let a = t.ev(shared(&t, true, false));
    assert_eq!((t.m.phase(), started(&a)), (Phase::Idle, None), "{a:?}");
    assert!(t.m.foreign_hold());
    t.at(30.0);
    let a = t.ev(shared(&t, false, false));
    assert_eq!((drifts(&a), foreign_records(&a)), (vec![], vec![false]));
    assert_eq!(t.m.backend_demoted(), Some(false));
}

/// D9: while failbackd holds, the bit is its own (its check fails); an operator's maintenance
/// is foreign in any phase.
#[test]
fn the_bit_is_ours_while_holding_and_maintenance_is_always_foreign() {
    let mut t = T::booted(cfg());
    let a = t.ev(shared(&t, true, false));
    assert_eq!(foreign_records(&a), Vec::<bool>::new());
    assert!(!t.m.foreign_hold());
    assert!(t.m.own_hold());
    let a = t.ev(shared(&t, true, true));
    assert_eq!(foreign_records(&a), vec![true]);
    let mut t = released();
    t.at(20.0);
    let a = t.ev(shared(&t, false, true));
    assert_eq!((drifts(&a), foreign_records(&a)), (vec![], vec![true]));
}

/// On a shared lever, another check's bit found while the phase wants the hold (read before the
/// arm: attributed as foreign) is not failbackd's hold: it demotes (an evaluation that counts its
/// own failing check) instead of relying on it. A lever with one flag (maintenance mode) relies.
#[test]
fn a_shared_lever_does_not_rely_on_another_checks_bit() {
    for shared_lever in [true, false] {
        let mut t = T::booted(MachineConfig { shared_lever, ..cfg() });
        t.at(1.0).probe(0, true);
        t.at(2.0).probe(0, true);
        t.at(10.0).tick();
        t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
        assert_eq!(t.m.phase(), Phase::Released);
        t.ev(carp(CarpState::Master));
        // The reading that finds the BACKUP (it arms) was attributed in `released`: the bit is
        // another check's.
        let Event::Observed(o) = shared(&t, true, false) else { unreachable!() };
        let carp = Some(vec![CarpReading { vhid: 1, iface: "em0".into(), state: CarpState::Backup }]);
        let a = t.at(20.0).ev(Event::Observed(Observed { carp, ..o }));
        assert!(t.m.phase().is_holding());
        assert_eq!(a.contains(&Action::Demote), shared_lever, "shared {shared_lever}: {a:?}");
        assert!(!t.m.own_hold() || !shared_lever);
    }
}

/// On a shared lever, the first reading after a start that finds only another check's bit does
/// not make failbackd's hold "in place": a failback armed later demotes (seed 720).
#[test]
fn a_shared_lever_first_reading_of_another_checks_bit_is_not_our_hold() {
    for shared_lever in [true, false] {
        let mut t = T::new(MachineConfig { hold_on_boot: false, shared_lever, ..cfg() });
        t.ev(Event::Boot(Boot { previous: None, backend_demoted: None, ..Default::default() }));
        t.ev(shared(&t, true, false));
        assert!(t.m.foreign_hold());
        let a = t.at(30.0).ev(Event::ManualHold);
        assert_eq!(a.contains(&Action::Demote), shared_lever, "shared {shared_lever}: {a:?}");
    }
}

/// An operator's maintenance on top of failbackd's own hold (the bit, its check failing): two
/// facts, both reported: the hold is failbackd's and a foreign one is there as well. The
/// operator leaving maintenance leaves failbackd's hold in place (no drift); without the bit,
/// maintenance alone is not failbackd's hold.
#[test]
fn maintenance_on_top_of_our_bit_reports_both_holds() {
    let mut t = T::booted(cfg());
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    let a = t.ev(shared(&t, true, true));
    assert_eq!((drifts(&a), foreign_records(&a)), (vec![], vec![true]));
    assert!(t.m.foreign_hold() && t.m.own_hold(), "both holds are there");
    let a = t.ev(shared(&t, true, false));
    assert_eq!((drifts(&a), foreign_records(&a)), (vec![], vec![false]));
    assert!(!t.m.foreign_hold() && t.m.own_hold());
    // Maintenance alone while holding: relied upon, but not failbackd's hold.
    let a = t.ev(shared(&t, false, true));
    assert_eq!(foreign_records(&a), vec![true]);
    assert!(t.m.foreign_hold() && !t.m.own_hold());
}

/// Seed 5432: on a shared lever, another plugin's bit read during a hold whose demotes all
/// failed is not failbackd's hold being added behind its back (no drift), and the demote (an
/// evaluation that counts failbackd's check) still goes out.
#[test]
fn a_shared_bit_failbackd_never_put_in_place_is_no_drift_during_a_hold() {
    let mut t = T::new(MachineConfig { shared_lever: true, ..cfg() });
    t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Released),
        ..Default::default()
    }));
    let a = t.ev(Event::Carp { vhid: 1, iface: "em0".into(), state: CarpState::Master });
    assert_eq!(started(&a), None);
    let a = t.at(1.0).ev(Event::Carp { vhid: 1, iface: "em0".into(), state: CarpState::Backup });
    assert!(a.contains(&Action::Demote), "{a:?}");
    t.ev(Event::Backend { op: BackendOp::Demote, ok: false });
    t.at(1.5);
    let a = t.ev(shared(&t, true, false));
    assert_eq!(drifts(&a), vec![], "{a:?}");
    assert!(t.m.foreign_hold() && !t.m.own_hold());
    assert!(t.at(2.0).tick().contains(&Action::Demote), "the retry still demotes");
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(3.0);
    let a = t.ev(shared(&t, true, false));
    assert_eq!(drifts(&a), vec![]);
    assert!(t.m.own_hold(), "failbackd's own call confirmed it");
}

/// Seed 5034: on a shared lever, someone else's evaluation drops the bit while failbackd's
/// promote is failing (its own check passes once the phase wants no hold): the release landed,
/// no drift, and nothing re-demotes.
#[test]
fn a_shared_bit_cleared_by_another_evaluation_while_releasing_is_the_release() {
    let mut t = T::booted(MachineConfig { shared_lever: true, ..cfg() });
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = t.at(10.0).tick();
    assert!(a.contains(&Action::Promote));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: false });
    t.at(10.5);
    let a = t.ev(shared(&t, false, false));
    assert_eq!(drifts(&a), vec![], "{a:?}");
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.phase(), Phase::Released);
}
