//! Dampening through the machine: after a tracking demotion with a peer, the failback waits
//! for the stability dampen.rs asks for; without a peer, the current rules stand.

use super::tests::*;
use super::*;

fn tracked(peer: bool) -> MachineConfig {
    let mut c = cfg();
    c.probes[0].track = Some(TrackSpec { demote_without_peer: !peer });
    c.tracking = TrackingConfig { peer, ..TrackingConfig::default() };
    c.tracking.dampen.half_life = secs(60);
    c
}

/// Released and MASTER; then the path dies at 20 s and the node is demoted (the peer, when
/// there is one, answers healthy); the path is back and up (rise 2) at 24 s.
fn demoted_and_path_back(c: MachineConfig) -> T {
    let peer = c.tracking.peer;
    let mut t = master(c);
    t.at(20.0).probe(0, false);
    let mut a = t.at(21.0).probe(0, false);
    if peer {
        a = t.ev(Event::PeerAnswer(PeerHealth::Healthy));
    }
    assert!(a.contains(&Action::Demote), "{a:?}");
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t.ev(carp(CarpState::Backup));
    t.at(23.0).probe(0, true);
    t.at(24.0).probe(0, true);
    assert_eq!(t.m.phase(), Phase::Stabilizing);
    t
}

#[test]
fn with_a_peer_a_tracking_demotion_lengthens_the_stability_before_the_failback() {
    let mut t = demoted_and_path_back(tracked(true));
    // Penalty 1000 at 21 s, 966 at 24 s: 57 s to decay to 500, instead of stable_for (5 s).
    let required = t.m.track_required_stability(t.now);
    assert!(required.abs_diff(secs(57)) < secs(1), "{required:?}");
    assert!(t.m.track_penalty(t.now) > 900.0);
    let due = t.m.next_deadline().unwrap();
    assert!(due.duration_since(t.t0).abs_diff(secs(81)) < secs(1), "{:?}", due.duration_since(t.t0));
    assert!(!t.at(40.0).tick().contains(&Action::Promote));
    assert!(!t.at(80.0).tick().contains(&Action::Promote));
    assert!(t.at(81.5).tick().contains(&Action::Promote));
}

#[test]
fn without_a_peer_the_failback_needs_only_stable_for() {
    let mut t = demoted_and_path_back(tracked(false));
    assert_eq!(t.m.track_penalty(t.now), 0.0);
    assert_eq!(t.m.track_required_stability(t.now), secs(5));
    // max(stable since 24 s + 5 s, armed at 21 s + min_hold 10 s).
    assert!(t.at(31.0).tick().contains(&Action::Promote));
}

#[test]
fn with_a_peer_a_flapping_path_is_never_held_as_master_by_a_flap_limit() {
    // The flap limit would stop the third demotion; with a peer, the escape always happens.
    let mut c = tracked(true);
    c.tracking.max_demotions = 1;
    let mut t = demoted_and_path_back(c);
    t.at(82.0).tick();
    t.ev(Event::Backend { op: BackendOp::Promote, ok: true });
    t.ev(carp(CarpState::Master));
    assert_eq!(t.m.phase(), Phase::Released);
    t.at(90.0).probe(0, false);
    t.at(91.0).probe(0, false);
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Healthy)).contains(&Action::Demote));
}

/// Released MASTER (rise 2) whose path died at 20 s: demoted by tracking (the peer said yes),
/// the demote confirmed; no CARP reading since.
fn demoted_by_a_blip() -> T {
    let mut c = tracked(true);
    c.probes[0].rise = 2;
    let mut t = master(c);
    t.at(20.0).probe(0, false);
    t.at(20.25).probe(0, false);
    assert!(t.ev(Event::PeerAnswer(PeerHealth::Healthy)).contains(&Action::Demote));
    t.ev(Event::Backend { op: BackendOp::Demote, ok: true });
    t
}

#[test]
fn a_demotion_the_peer_has_not_acted_on_is_withdrawn_when_the_path_is_back() {
    // A blip: down (fall 2), demoted, and back (rise 2) while still MASTER.
    let mut t = demoted_by_a_blip();
    t.at(21.5).probe(0, true);
    let a = t.at(21.75).probe(0, true);
    // The last reading said MASTER, but it may predate the peer's takeover: measure first.
    assert!(a.contains(&Action::Measure) && !a.contains(&Action::Promote), "{a:?}");
    let poll = polled(&t, CarpState::Master);
    let a = t.at(21.8).ev(poll);
    // Neither stable_for, min_hold nor the dampened stability: the traffic never left.
    assert!(a.contains(&Action::Promote), "{a:?}");
    assert_eq!(outcome(&a), Some(Outcome::Released));
}

#[test]
fn a_demotion_is_not_withdrawn_when_the_fresh_reading_says_the_peer_took_over() {
    let mut t = demoted_by_a_blip();
    // No hook: the CARP map still says MASTER from before the peer's takeover.
    t.at(25.0).probe(0, true);
    assert!(t.at(25.25).probe(0, true).contains(&Action::Measure));
    let poll = polled(&t, CarpState::Backup);
    let a = t.at(25.3).ev(poll);
    assert!(!a.contains(&Action::Promote), "the peer took over: no early return: {a:?}");
    assert_eq!(t.m.phase(), Phase::Stabilizing);
}

/// A measurement during the hold: the hold as confirmed by the backend, the CARP state `state`.
fn polled(t: &T, state: CarpState) -> Event {
    Event::Observed(Observed {
        backend_seq: t.m.backend_seq(),
        carp_seq: t.m.carp_seq(),
        held: t.m.backend_demoted(),
        foreign: false,
        also_ours: false,
        carp: Some(vec![CarpReading { vhid: 1, iface: "em0".into(), state }]),
    })
}
