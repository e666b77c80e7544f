//! Unit tests for tracking: a MASTER whose tracked probe dies is demoted when the peer can take
//! over, and left alone (once recorded) when it must not be.

use super::tests::*;
use super::track::PEER_RETRY;
use super::*;

fn tracked(demote_without_peer: bool, peer: bool) -> MachineConfig {
    let mut c = cfg();
    c.probes[0].track = Some(TrackSpec { demote_without_peer });
    c.tracking = TrackingConfig { peer, ..TrackingConfig::default() };
    c
}

/// The tracked probe fails `fall` (2) times.
fn path_dies(t: &mut T, at: f64) -> Vec<Action> {
    t.at(at).probe(0, false);
    t.at(at + 1.0).probe(0, false)
}

fn suppressed(a: &[Action]) -> Vec<SuppressReason> {
    a.iter()
        .filter_map(|a| match a {
            Action::Record(Record::TrackSuppressed { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_dead_path_on_the_master_asks_the_peer_and_demotes_when_it_is_ready() {
    let mut t = master(tracked(false, true));
    let a = path_dies(&mut t, 20.0);
    assert!(a.contains(&Action::AskPeer));
    assert!(!a.contains(&Action::Demote), "not before the peer answered");
    let a = t.ev(Event::PeerAnswer(PeerHealth::Healthy));
    assert!(a.contains(&Action::Record(Record::TrackDemoted { probe: 0 })));
    assert!(!a.contains(&Action::Record(Record::TrackCleared)), "the path did not come back");
    assert_eq!(started(&a), Some(Trigger::Track { probe: "gw".into() }));
    assert!(a.contains(&Action::Demote));
    // From here it is an ordinary failback: released only when the probe is up again.
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    assert_eq!(t.m.phase(), Phase::Probing);
}

#[test]
fn a_peer_that_is_not_ready_is_never_given_the_traffic_and_is_asked_again_later() {
    let mut t = master(tracked(false, true));
    path_dies(&mut t, 20.0);
    let a = t.ev(Event::PeerAnswer(PeerHealth::Unhealthy));
    assert_eq!(suppressed(&a), vec![SuppressReason::PeerUnhealthy]);
    assert!(!a.contains(&Action::Demote));
    assert!(t.m.track_suppressed());
    // Asked again soon (a peer finishing its own failback is ready seconds later), not 30 s on.
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(21) + PEER_RETRY));
    assert!(PEER_RETRY <= secs(5), "a short retry while the episode lasts");
    assert!(t.at(23.9).tick().is_empty(), "not before the retry");
    let a = t.at(24.0).tick();
    assert!(a.contains(&Action::AskPeer));
    let a = t.ev(Event::PeerAnswer(PeerHealth::Unhealthy));
    assert!(suppressed(&a).is_empty(), "recorded once per episode");
}

#[test]
fn without_a_peer_the_probe_decides() {
    let mut t = master(tracked(false, false));
    let a = path_dies(&mut t, 20.0);
    assert!(!a.contains(&Action::AskPeer));
    assert_eq!(suppressed(&a), vec![SuppressReason::PeerUnreachable]);
    let mut t = master(tracked(true, false));
    let a = path_dies(&mut t, 20.0);
    assert!(a.contains(&Action::Demote));
    let mut t = master(tracked(false, true));
    path_dies(&mut t, 20.0);
    let a = t.ev(Event::PeerAnswer(PeerHealth::Unreachable));
    assert_eq!(suppressed(&a), vec![SuppressReason::PeerUnreachable]);
}

#[test]
fn a_node_that_is_not_master_is_never_demoted_by_tracking() {
    let mut t = master(tracked(true, false));
    t.ev(carp(CarpState::Backup)); // arms a normal failback; finish it first
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(30.0).probe(0, true);
    t.at(31.0).probe(0, true);
    t.at(50.0).tick();
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
    let a = path_dies(&mut t, 60.0);
    assert!(a.contains(&Action::Measure), "not MASTER by a reading that may be old: measure first");
    assert!(suppressed(&a).is_empty());
    assert!(t.m.next_deadline().is_none(), "waits for the measurement, never spins");
    let poll = polled(&t, CarpState::Backup);
    let a = t.at(61.5).ev(poll);
    assert_eq!(suppressed(&a), vec![SuppressReason::NotMaster]);
    assert!(!a.contains(&Action::Demote));
    assert!(t.m.next_deadline().is_none(), "waits for an event, never spins");
    let a = t.ev(carp(CarpState::Master));
    assert!(a.contains(&Action::Demote), "MASTER with the path down: now it acts");
}

// The keepalived testbed's finding: the node became MASTER a moment ago, no hook, and the last
// poll still says BACKUP. Tracking measures before it calls the node "not MASTER".
#[test]
fn a_stale_backup_reading_is_measured_before_not_master_is_recorded() {
    let (mut t, _) = restarted(tracked(true, false));
    let poll = polled(&t, CarpState::Backup);
    t.ev(poll); // the last poll: BACKUP
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = path_dies(&mut t, 20.0);
    assert!(a.contains(&Action::Measure) && suppressed(&a).is_empty(), "{a:?}");
    let a = t.ev(Event::Tick);
    assert!(!a.contains(&Action::Measure), "one measurement at a time");
    // The measurement finds MASTER (preempted meanwhile): tracking acts at once.
    let poll = polled(&t, CarpState::Master);
    let a = t.at(21.5).ev(poll);
    assert!(a.contains(&Action::Demote), "{a:?}");
    assert!(suppressed(&a).is_empty(), "no not_master on record: {a:?}");
}

#[test]
fn track_for_delays_the_demotion() {
    let mut c = tracked(true, false);
    c.tracking.track_for = secs(10);
    let mut t = master(c);
    let a = path_dies(&mut t, 20.0);
    assert!(!a.contains(&Action::Demote));
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(31)));
    assert!(!t.at(30.9).tick().contains(&Action::Demote));
    assert!(t.at(31.0).tick().contains(&Action::Demote));
}

#[test]
fn a_path_that_comes_back_in_time_demotes_nothing() {
    let mut c = tracked(true, false);
    c.tracking.track_for = secs(10);
    let mut t = master(c);
    path_dies(&mut t, 20.0);
    t.at(22.0).probe(0, true);
    let a = t.at(23.0).probe(0, true);
    assert!(a.contains(&Action::Record(Record::TrackCleared)));
    assert!(!t.at(40.0).tick().contains(&Action::Demote));
}

#[test]
fn the_flap_limit_keeps_a_flapping_path_on_one_node() {
    let mut c = tracked(true, false);
    c.tracking.max_demotions = 2;
    c.tracking.window = secs(1000);
    let mut t = master(c);
    let mut now = 20.0;
    for round in 0..2 {
        let a = path_dies(&mut t, now);
        assert!(a.contains(&Action::Demote), "demotion {round}");
        t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
        t.ev(carp(CarpState::Backup)); // the peer took over
        t.at(now + 2.0).probe(0, true);
        t.at(now + 3.0).probe(0, true);
        t.at(now + 20.0).tick();
        t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
        t.ev(carp(CarpState::Master)); // preempted back
        assert_eq!(t.m.phase(), Phase::Released, "round {round}");
        now += 30.0;
    }
    let a = path_dies(&mut t, now);
    assert_eq!(suppressed(&a), vec![SuppressReason::FlapLimit]);
    assert!(!a.contains(&Action::Demote));
    // When the first demotion leaves the window, tracking acts again.
    assert_eq!(t.m.next_deadline(), Some(t.t0 + secs(21) + secs(1000)));
    assert!(t.at(1021.0).tick().contains(&Action::Demote));
}

#[test]
fn untracked_probes_and_stale_answers_do_nothing() {
    let mut t = master(cfg());
    assert!(path_dies(&mut t, 20.0).iter().all(|a| matches!(a, Action::Record(Record::ProbeChanged { .. }))));
    let mut t = master(tracked(false, true));
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Healthy)).is_empty(), "nobody asked");
}

/// A CARP state read by the OS poll (after a restart: a state learned, not a transition).
fn polled(t: &T, state: CarpState) -> Event {
    Event::Observed(Observed {
        backend_seq: t.m.backend_seq(),
        carp_seq: t.m.carp_seq(),
        held: Some(false),
        foreign: false,
        also_ours: false,
        carp: Some(vec![CarpReading { vhid: 1, iface: "em0".into(), state }]),
    })
}

/// A daemon restart of a node that was released: fresh tallies, nothing measured yet.
fn restarted(c: MachineConfig) -> (T, Vec<Action>) {
    let mut t = T::new(c);
    let a = t.ev(Event::Boot(Boot {
        backend_demoted: Some(false),
        previous: Some(Phase::Released),
        ..Default::default()
    }));
    assert_eq!(t.m.phase(), Phase::Released);
    (t, a)
}

// D2, D18: a probe that has not risen yet since the start is unknown, never down; before the
// first CARP reading "not MASTER" is unknown too.
#[test]
fn a_restart_of_a_healthy_tracked_master_does_not_demote_it() {
    for (demote_without_peer, peer) in [(false, true), (true, false)] {
        let (mut t, a) = restarted(tracked(demote_without_peer, peer));
        assert!(suppressed(&a).is_empty(), "no not_master before the first CARP reading: {a:?}");
        let a = t.ev(polled(&t, CarpState::Master));
        assert!(!a.contains(&Action::AskPeer) && !a.contains(&Action::Demote), "{a:?}");
        assert!(suppressed(&a).is_empty(), "{a:?}");
        assert_eq!(t.m.track_down(), None);
        // The first attempts pass: it rises, nothing happened.
        t.at(1.0).probe(0, true);
        let a = t.at(2.0).probe(0, true);
        assert!(!a.contains(&Action::Demote) && !a.contains(&Action::AskPeer));
        // A path that really dies (fall failures) is still tracked.
        let a = path_dies(&mut t, 3.0);
        assert!(a.contains(if peer { &Action::AskPeer } else { &Action::Demote }), "{a:?}");
    }
}

#[test]
fn after_a_restart_a_tracked_probe_that_fails_fall_times_is_down_without_rising_first() {
    let (mut t, _) = restarted(tracked(true, false));
    t.ev(polled(&t, CarpState::Master));
    assert!(!t.at(1.0).probe(0, false).contains(&Action::Demote), "one failure is not `fall`");
    let a = t.at(2.0).probe(0, false);
    assert_eq!(started(&a), Some(Trigger::Track { probe: "gw".into() }));
}

// D3: a probe added or re-pointed by a reload starts unknown.
#[test]
fn a_reload_adding_or_repointing_a_tracked_probe_does_not_demote_a_healthy_master() {
    let c = tracked(false, true);
    let mut added = c.clone();
    added.probes.push(ProbeSpec {
        name: "gw2".into(),
        identity: "icmp 192.0.2.9".into(),
        ..added.probes[0].clone()
    });
    let mut repointed = c.clone();
    repointed.probes[0].identity = "icmp 198.51.100.2".into();
    for (new, probe) in [(added, 2), (repointed, 0)] {
        let mut t = master(c.clone());
        let a = t.at(20.0).ev(Event::Reconfigure(Box::new(new)));
        assert!(!a.contains(&Action::AskPeer) && !a.contains(&Action::Demote), "{a:?}");
        assert!(suppressed(&a).is_empty());
        t.at(21.0).probe(probe, false);
        let a = t.at(22.0).probe(probe, false);
        assert!(a.contains(&Action::AskPeer), "once it fell, it is tracked: {a:?}");
    }
}

/// Booted with tracking; the tracked probe fell while held (the path is down).
fn held_with_the_path_down(c: MachineConfig) -> T {
    let mut t = T::booted(c);
    t.at(1.0).probe(0, false);
    t.at(2.0).probe(0, false);
    assert!(t.m.probe(0).is_some_and(|p| p.fell));
    t
}

// D5, D18: the operator's decision stands until the tracked probes have risen once.
#[test]
fn a_forced_release_is_not_undone_by_tracking() {
    let mut t = held_with_the_path_down(tracked(true, false));
    let mut a = t.at(5.0).ev(Event::ManualRelease { force: true });
    a.extend(t.ev(Event::Backend { op: BackendOp::Promote, ok: true }));
    assert_eq!(t.m.phase(), Phase::Released);
    a.extend(t.at(5.1).ev(carp(CarpState::Master)));
    assert!(!a.contains(&Action::Demote), "the operator's release stands: {a:?}");
    assert_eq!(suppressed(&a), vec![SuppressReason::ForcedRelease]);
    assert!(!suppressed(&a).contains(&SuppressReason::NotMaster));
    for s in 6..100 {
        assert!(!t.at(s as f64).probe(0, false).contains(&Action::Demote));
    }
    // Once the path rose, a new fall is tracked again.
    t.at(100.0).probe(0, true);
    let a = t.at(101.0).probe(0, true);
    assert!(a.contains(&Action::Record(Record::TrackCleared)));
    assert!(path_dies(&mut t, 102.0).contains(&Action::Demote));
}

#[test]
fn a_max_hold_release_is_not_undone_by_tracking() {
    let mut c = tracked(true, false);
    c.max_hold_policy = MaxHoldPolicy::Release;
    let mut t = held_with_the_path_down(c);
    let mut a = t.at(100.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Forced));
    a.extend(t.ev(Event::Backend { op: BackendOp::Promote, ok: true }));
    a.extend(t.at(100.1).ev(carp(CarpState::Master)));
    assert!(!a.contains(&Action::Demote), "{a:?}");
    assert_eq!(suppressed(&a), vec![SuppressReason::ForcedRelease]);
}

// D10: a tracking failback is not ended by max_hold (policy stay): the peer serves, and it
// releases when the path returns.
#[test]
fn a_tracking_failback_that_outlasts_max_hold_releases_when_the_path_returns() {
    let mut t = master(tracked(true, false)); // max_hold 100 s in cfg()
    path_dies(&mut t, 20.0);
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.ev(carp(CarpState::Backup));
    for s in 22..=300 {
        let a = t.at(s as f64).probe(0, false);
        assert!(outcome(&a).is_none(), "no outcome while the path is down (t={s})");
        assert!(t.m.next_deadline().is_none_or(|d| d > t.now), "never a deadline already due");
    }
    assert_eq!(t.m.phase(), Phase::Probing);
    assert_eq!(t.m.hold_deadline(), None);
    t.at(301.0).probe(0, true);
    t.at(302.0).probe(0, true);
    let a = t.at(310.0).tick();
    assert_eq!(outcome(&a), Some(Outcome::Released));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
    assert_eq!(t.m.backend_demoted(), Some(false));
}

#[test]
fn max_hold_still_ends_a_failback_that_tracking_did_not_start() {
    let mut t = T::booted(tracked(true, false));
    assert_eq!(outcome(&t.at(100.0).tick()), Some(Outcome::Failed));
}

// D12: tracking applies at rest, idle included (hold_on_boot = false).
#[test]
fn tracking_demotes_an_idle_master_too() {
    let mut c = tracked(true, false);
    c.hold_on_boot = false;
    let mut t = T::new(c);
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    t.ev(polled(&t, CarpState::Master));
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    assert_eq!(t.m.phase(), Phase::Idle);
    let a = path_dies(&mut t, 3.0);
    assert_eq!(started(&a), Some(Trigger::Track { probe: "gw".into() }));
    assert!(a.contains(&Action::Demote));
}

// D14: with a peer to ask, MASTER while held is concluded only after asking.
#[test]
fn master_while_held_asks_the_peer_before_calling_it_lost() {
    let mut t = T::booted(tracked(false, true));
    let a = t.ev(carp(CarpState::Master));
    assert!(a.contains(&Action::AskPeer), "{a:?}");
    assert!(!a.iter().any(|a| matches!(a, Action::Record(Record::PeerLost { .. }))));
    let a = t.ev(Event::PeerAnswer(PeerHealth::Healthy));
    assert_eq!(a, vec![Action::Record(Record::HoldIneffective { failback: 1 })]);
    assert!(!t.m.failback().is_some_and(|f| f.peer_lost));
    // Once per failback.
    t.ev(carp(CarpState::Backup));
    assert!(without_carp(t.ev(carp(CarpState::Master))).is_empty(), "concluded once per failback");

    for answer in [PeerHealth::Unreachable, PeerHealth::NotInCarp] {
        let mut t = T::booted(tracked(false, true));
        t.ev(carp(CarpState::Master));
        let a = t.ev(Event::PeerAnswer(answer));
        assert_eq!(a, vec![Action::Record(Record::PeerLost { failback: 1 })], "{answer:?}");
    }
    // A peer that lost MASTER moments ago and holds because of it: our hold did not stop us.
    let mut t = T::booted(tracked(false, true));
    t.ev(carp(CarpState::Master));
    let a = t.ev(Event::PeerAnswer(PeerHealth::Displaced));
    assert_eq!(a, vec![Action::Record(Record::HoldIneffective { failback: 1 })]);
    // No peer configured, or the URL is this node: nobody to ask, not a lost peer.
    let mut t = T::booted(tracked(false, false));
    let a = t.ev(carp(CarpState::Master));
    assert!(a.contains(&Action::Record(Record::PeerNotAsked { failback: 1 })));
    assert!(!a.contains(&Action::AskPeer));
    let mut t = T::booted(tracked(false, true));
    t.ev(carp(CarpState::Master));
    let a = t.ev(Event::PeerAnswer(PeerHealth::NotAsked));
    assert_eq!(a, vec![Action::Record(Record::PeerNotAsked { failback: 1 })]);
}

// D14: a peer that answers but is held too (a simultaneous boot) is neither lost nor a sign of an
// ineffective hold; it is recorded once per failback, and a later MASTER while held asks again.
#[test]
fn master_while_held_with_a_peer_held_too_is_not_peer_lost() {
    let mut t = T::booted(tracked(false, true));
    t.ev(carp(CarpState::Master));
    let a = t.ev(Event::PeerAnswer(PeerHealth::Unhealthy));
    assert_eq!(a, vec![Action::Record(Record::PeerNotReady { failback: 1 })]);
    assert!(!t.m.failback().is_some_and(|f| f.peer_lost));
    assert_eq!(t.m.not_lost(), Some(NotLost::PeerNotReady));
    t.ev(carp(CarpState::Backup));
    assert!(t.ev(carp(CarpState::Master)).contains(&Action::AskPeer), "asked again");
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Unhealthy)).is_empty(), "recorded once");
    t.ev(carp(CarpState::Backup));
    t.ev(carp(CarpState::Master));
    // This time the peer is gone.
    let a = t.ev(Event::PeerAnswer(PeerHealth::Unreachable));
    assert_eq!(a, vec![Action::Record(Record::PeerLost { failback: 1 })]);
}

// D15: the flap limit's history is handed over across a restart.
#[test]
fn the_flap_limit_survives_a_restart() {
    let mut c = tracked(true, false);
    c.tracking.max_demotions = 1;
    let mut t = master(c.clone());
    assert!(path_dies(&mut t, 20.0).contains(&Action::Demote));
    let history: Vec<Instant> = t.m.track_demotions().collect();
    assert_eq!(history, vec![t.t0 + secs(21)]);
    let t0 = t.t0;
    let (mut t, _) = restarted(c);
    t.t0 = t0;
    t.m.restore_track_demotions(history);
    let poll = polled(&t, CarpState::Master);
    t.at(50.0).ev(poll);
    let a = path_dies(&mut t, 51.0);
    assert!(!a.contains(&Action::Demote), "{a:?}");
    assert_eq!(suppressed(&a), vec![SuppressReason::FlapLimit]);
}

// D18: before any CARP reading the state is unknown: no `not_master` on record; the first
// reading that says MASTER acts.
#[test]
fn no_not_master_suppression_while_the_carp_state_is_unknown() {
    let mut c = tracked(true, false);
    c.hold_on_boot = false;
    let mut t = T::new(c);
    t.ev(Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    let a = path_dies(&mut t, 3.0);
    assert!(suppressed(&a).is_empty(), "{a:?}");
    assert_eq!(t.m.track_down(), Some(0), "the episode is known, only the CARP state is not");
    let poll = polled(&t, CarpState::Master);
    assert!(t.at(5.0).ev(poll).contains(&Action::Demote));
}

// D10 across a restart: the resumed failback is `resume` now, and still not ended by max_hold.
#[test]
fn a_resumed_tracking_failback_is_not_ended_by_max_hold_either() {
    for tracking in [true, false] {
        let mut t = T::new(tracked(true, false));
        if tracking {
            t.m.restore_tracking_failback(4);
        }
        let armed_at = t.now;
        let a = t.at(500.0).ev(Event::Boot(Boot {
            backend_demoted: Some(true),
            previous: Some(Phase::Probing),
            resumed: Some(Resumed { id: 4, armed_at, peer_lost: false }),
            last_failback: 4,
            lever_unseen: false,
        }));
        if !tracking {
            assert_eq!(outcome(&a), Some(Outcome::Failed), "any other failback ends at max_hold");
            continue;
        }
        assert_eq!(outcome(&a), None, "{a:?}");
        assert_eq!(t.m.phase(), Phase::Probing);
        t.at(501.0).probe(0, true);
        t.at(502.0).probe(0, true);
        assert_eq!(outcome(&t.at(510.0).tick()), Some(Outcome::Released));
    }
}

// The keepalived testbed's finding: no hook, a poll every few seconds that saw no state during
// a short tracking hold. After the release the first poll finds the BACKUP that failbackd's own
// hold caused (not preempted back yet): learned, not a MASTER lost; no second failback.
#[test]
fn the_backup_our_own_hold_caused_does_not_arm_a_second_failback() {
    let mut t = master(tracked(true, false));
    path_dies(&mut t, 20.0);
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.at(22.0).probe(0, true);
    t.at(23.0).probe(0, true);
    assert_eq!(outcome(&t.at(40.0).tick()), Some(Outcome::Released));
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
    let poll = polled(&t, CarpState::Backup);
    let a = t.at(41.0).ev(poll);
    assert_eq!(
        a,
        vec![Action::Record(Record::CarpChanged {
            vhid: 1,
            iface: "em0".into(),
            state: CarpState::Backup,
            transition: false
        })]
    );
    let poll = polled(&t, CarpState::Master);
    assert!(without_carp(t.at(42.0).ev(poll)).is_empty(), "preempted back");
    // From here a lost MASTER is a transition again, polled or hooked.
    let poll = polled(&t, CarpState::Backup);
    assert!(matches!(started(&t.at(50.0).ev(poll)), Some(Trigger::Carp { .. })));
}

// The pair simulator's finding n1: a fallen probe whose target answers again is on its way up;
// re-asking the peer during the rise must not demote a MASTER whose path is already back.
#[test]
fn a_fallen_probe_that_passes_again_is_not_demoted_for_while_it_rises() {
    let mut t = master(tracked(false, true));
    let a = path_dies(&mut t, 20.0);
    assert!(a.contains(&Action::AskPeer), "{a:?}");
    assert_eq!(
        suppressed(&t.ev(Event::PeerAnswer(PeerHealth::Unhealthy))),
        vec![SuppressReason::PeerUnhealthy]
    );
    // The target answers again (one pass: not risen yet), then the retry comes due.
    t.at(21.5).probe(0, true);
    let later = 21.5 + PEER_RETRY.as_secs_f64() + 0.5;
    t.at(later).tick();
    // Waiting for the next result is waiting for an event: no deadline stays due (a busy loop).
    assert!(t.m.next_deadline().is_none_or(|d| d > t.now), "{:?}", t.m.next_deadline());
    let a = t.at(later).tick();
    assert!(!a.contains(&Action::AskPeer) && !a.contains(&Action::Demote), "{a:?}");
    // The next failure alone does not act: after a pass the path needs `fall` (2) failures in a
    // row again (a shared outage starting again: the peer has not failed yet either).
    assert!(t.at(later + 1.0).probe(0, false).is_empty());
    assert!(t.m.next_deadline().is_none_or(|d| d > t.now), "{:?}", t.m.next_deadline());
    // The second one asks; a pass while that ask is on its way makes its "yes" demote nothing.
    assert!(t.at(later + 2.0).probe(0, false).contains(&Action::AskPeer));
    t.at(later + 2.5).probe(0, true);
    assert!(!t.ev(Event::PeerAnswer(PeerHealth::Healthy)).contains(&Action::Demote));
    // And `fall` failures after that ask again and demote on the peer's yes.
    assert!(t.at(later + 3.0).probe(0, false).is_empty());
    assert!(t.at(later + 4.0).probe(0, false).contains(&Action::AskPeer));
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Healthy)).contains(&Action::Demote));
}

// The pair simulator's seeds 3, 37, 241: CARP moved MASTER here because something demoted the
// peer, and the peer's answer 20 ms later still carried its measurement from before that. A
// node that just became MASTER asks once the peer has measured since (`peer_settle`).
#[test]
fn after_a_takeover_the_peer_is_asked_only_once_it_has_measured_since() {
    let mut c = tracked(false, true);
    c.tracking.peer_settle = secs(7);
    let mut t = T::booted(c);
    t.ev(carp(CarpState::Backup));
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    t.at(10.0).tick();
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    assert_eq!(t.m.phase(), Phase::Released);
    t.at(10.5).ev(carp(CarpState::Master));
    let a = path_dies(&mut t, 11.0);
    assert!(!a.contains(&Action::AskPeer), "{a:?}");
    assert!(suppressed(&a).is_empty(), "a short wait, not a suppression: {a:?}");
    assert_eq!(t.m.next_deadline(), Some(t.t0 + Duration::from_secs_f64(17.5)));
    assert!(t.at(17.0).tick().is_empty());
    assert!(t.at(17.5).tick().contains(&Action::AskPeer));
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Healthy)).contains(&Action::Demote));
    // A node that was MASTER all along (no takeover seen) asks at once.
    let mut t = master(tracked(false, true));
    assert!(path_dies(&mut t, 20.0).contains(&Action::AskPeer));
}

// The pair simulator's operator_wins seed 1000: a restart forgot the forced release. Restored
// from the state file (before Boot), it stands until the tracked probes have risen.
#[test]
fn a_forced_release_restored_at_a_restart_still_stands() {
    let mut t = T::new(tracked(false, true));
    t.m.restore_track_forced();
    assert!(t.m.track_forced());
    let boot = Boot { backend_demoted: Some(false), previous: Some(Phase::Released), ..Default::default() };
    t.ev(Event::Boot(boot));
    assert_eq!(t.m.phase(), Phase::Released);
    t.ev(carp(CarpState::Master));
    let a = path_dies(&mut t, 20.0);
    assert_eq!(suppressed(&a), vec![SuppressReason::ForcedRelease], "{a:?}");
    assert!(!a.contains(&Action::AskPeer));
    // Risen once, the exemption ends and a new fall is tracked.
    for s in [30.0, 31.0, 32.0] {
        t.at(s).probe(0, true);
    }
    assert!(!t.m.track_forced());
    assert!(path_dies(&mut t, 40.0).contains(&Action::AskPeer));
}
