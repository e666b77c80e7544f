use super::*;
use crate::machine::{Backoff, MachineConfig, MaxHoldPolicy, TrackingConfig};

fn machine(now: Instant, peer: bool) -> Machine {
    let cfg = MachineConfig {
        hold_on_boot: true,
        min_hold: Duration::from_secs(10),
        max_hold: Duration::from_secs(600),
        max_hold_policy: MaxHoldPolicy::Stay,
        stable_for: Duration::from_secs(5),
        probes: Vec::new(),
        backoff: Backoff::default(),
        tracking: TrackingConfig { peer, ..TrackingConfig::default() },
        shared_lever: false,
    };
    Machine::new(cfg, now)
}

fn file(mono_ms: Vec<u64>, unix: Vec<f64>) -> Persisted {
    Persisted {
        track_demotions_mono_ms: mono_ms,
        track_demotions_unix: unix,
        ..Persisted::new(crate::machine::Phase::Released)
    }
}

const HOUR: f64 = 3600.0;

// D15: a power loss with the state file on persistent storage: the monotonic times mean nothing
// in the new boot, the wall-clock ones still say when the demotions were.
#[test]
fn a_reboot_carries_the_flap_history_by_the_wall_clock() {
    let now = Instant::now();
    let c = Clocks { now, mono: Duration::from_secs(5), unix: 2e9 };
    let p = file(vec![7_200_000, 7_300_000], vec![2e9 - 1.5 * HOUR, 2e9 - 600.0, 2e9 - 60.0]);
    for kind in [StartKind::Boot, StartKind::FirstStart] {
        let mut m = machine(now, false);
        carry_over(&mut m, &p, kind, c);
        let got: Vec<Instant> = m.track_demotions().collect();
        // The one older than the window (an hour) is gone; the others keep their age.
        assert_eq!(got, vec![now - Duration::from_secs(600), now - Duration::from_secs(60)], "{kind:?}");
    }
}

#[test]
fn a_restart_carries_the_flap_history_by_the_monotonic_clock() {
    let now = Instant::now();
    // The wall clock was stepped a day forward since: nothing changes for a restart.
    let c = Clocks { now, mono: Duration::from_secs(1000), unix: 2e9 + 24.0 * HOUR };
    let p = file(vec![900_000, 2_000_000], vec![2e9 - 100.0, 2e9]);
    let mut m = machine(now, false);
    carry_over(&mut m, &p, StartKind::Restart, c);
    let got: Vec<Instant> = m.track_demotions().collect();
    assert_eq!(got, vec![now - Duration::from_secs(100)], "a time after now is not from this boot");
}

// Seeds 2184, 2519: a demotion of the boot before, carried across a power loss into this boot's
// file (monotonic 0: before this boot's clock), then a restart. Its wall time says when it was;
// read as this boot's start it held the flap limit until an hour after the boot instead.
#[test]
fn a_restart_reads_a_demotion_of_an_earlier_boot_by_the_wall_clock() {
    let now = Instant::now() + Duration::from_secs(5000);
    let c = Clocks { now, mono: Duration::from_secs(1000), unix: 2e9 };
    let p = file(vec![0, 0, 900_000], vec![2e9 - 1.5 * HOUR, 2e9 - 3000.0, 2e9 - 100.0]);
    let mut m = machine(now, false);
    carry_over(&mut m, &p, StartKind::Restart, c);
    let mut got: Vec<Instant> = m.track_demotions().collect();
    got.sort();
    // The one older than the window (an hour) is gone; the others keep their age.
    assert_eq!(got, vec![now - Duration::from_secs(3000), now - Duration::from_secs(100)]);
}

#[test]
fn a_wall_clock_behind_the_file_counts_the_demotion_as_now() {
    let now = Instant::now();
    let c = Clocks { now, mono: Duration::from_secs(5), unix: 1e9 };
    let mut m = machine(now, false);
    carry_over(&mut m, &file(vec![], vec![2e9]), StartKind::Boot, c);
    assert_eq!(m.track_demotions().collect::<Vec<_>>(), vec![now]);
}

#[test]
fn a_record_says_when_on_both_clocks_and_round_trips_across_a_reboot() {
    let t0 = Instant::now();
    let mut m = machine(t0, false);
    m.restore_track_demotions([t0]);
    let later = t0 + Duration::from_secs(30);
    let c = Clocks { now: later, mono: Duration::from_secs(1000), unix: 2e9 };
    let p = record(&m, None, Some("b1"), c).expect("a first record");
    assert_eq!(p.track_demotions_mono_ms, vec![970_000]);
    assert_eq!(p.track_demotions_unix, vec![2e9 - 30.0]);
    assert!(record(&m, Some(&p), Some("b1"), c).is_none(), "nothing new");
    // Read back in another boot ten minutes on, by a process whose clock started anew.
    let t1 = Instant::now() + Duration::from_secs(5000);
    let mut next = machine(t1, true);
    carry_over(
        &mut next,
        &p,
        StartKind::Boot,
        Clocks { now: t1, mono: Duration::from_secs(3), unix: 2e9 + 600.0 },
    );
    assert_eq!(next.track_demotions().collect::<Vec<_>>(), vec![t1 - Duration::from_secs(630)]);
}

// D5 across a restart: `release --force` exempts the node from tracking until its tracked probes
// rose; a restart in between must not forget it and demote the node the operator released.
#[test]
fn a_forced_release_stands_across_a_restart() {
    let now = Instant::now();
    let c = Clocks { now, mono: Duration::from_secs(1000), unix: 2e9 };
    let mut m = machine(now, false);
    m.restore_track_forced();
    let p = record(&m, None, Some("b1"), c).expect("a first record");
    assert!(p.track_forced);
    let mut next = machine(now, false);
    carry_over(&mut next, &p, StartKind::Restart, c);
    assert!(next.track_forced());
    let mut rebooted = machine(now, false);
    carry_over(&mut rebooted, &p, StartKind::Boot, c);
    assert!(!rebooted.track_forced(), "a reboot ends the episode");
}
