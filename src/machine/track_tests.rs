//! Unit tests for tracking: a MASTER whose tracked probe dies is demoted when the peer can take
//! over, and left alone (once recorded) when it must not be.

use super::tests::*;
use super::*;

fn tracked(demote_without_peer: bool, peer: bool) -> MachineConfig {
    let mut c = cfg();
    c.probes[0].track = Some(TrackSpec { demote_without_peer });
    c.tracking = TrackingConfig { peer, ..TrackingConfig::default() };
    c
}

/// Released and MASTER, with tracking as given.
fn master(c: MachineConfig) -> T {
    let mut t = T::booted(c);
    t.at(1.0).probe(0, true);
    t.at(2.0).probe(0, true);
    t.at(10.0).tick();
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    t.ev(carp(CarpState::Master));
    assert_eq!(t.m.phase(), Phase::Released);
    t
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
    assert!(t.at(30.0).tick().is_empty(), "not before the retry");
    let a = t.at(51.0).tick();
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
    assert_eq!(suppressed(&a), vec![SuppressReason::NotMaster]);
    assert!(!a.contains(&Action::Demote));
    assert!(t.m.next_deadline().is_none(), "waits for an event, never spins");
    let a = t.ev(carp(CarpState::Master));
    assert!(a.contains(&Action::Demote), "MASTER with the path down: now it acts");
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
