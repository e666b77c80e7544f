//! D1-D18 of the core safety review (reviews/core-safety-review.md) as scripted runs: each sets
//! up the pair and the faults the review reproduced the defect with, and checks the property the
//! defect violates. The pair: B (advskew 100) powers on at 0 s and A (advskew 0) at 20 s; both
//! hold on boot and are released, A MASTER, by about 40 s; probes every second, rise 3, fall 2.

use super::faults::{Change, Fault};
use super::props::*;
use super::setup::{Lever, Setup, Tracking, ALT, WAN};
use super::{Script, MINUTE, SECOND};

pub struct Scenario {
    pub name: &'static str,
    /// The property the defect violates (the only one the scenario checks).
    pub property: &'static str,
    pub script: fn() -> Script,
}

const A: usize = 0;
const B: usize = 1;
const BOTH_A: [bool; 2] = [true, false];

fn pair(setup: Setup, property: &'static str) -> Script {
    Script::new(setup, 15 * MINUTE).checking(property)
}

/// OPNsense (service_status) with a persistent state file: a power loss of the released primary,
/// its path not ready after the reboot, its daemon slow to come up. `failbackd ready` at early
/// boot reads the old file as a restart ("released": ready), so nothing holds the node when
/// preempt is switched on. (With the daemon up in time, D11's arm at its first BACKUP reading
/// hides D1 in this boot order.)
pub fn d1() -> Script {
    let setup = Setup { lever: Lever::ServiceStatus, persistent_state: true, ..Setup::default() };
    pair(setup, NO_PREMATURE_TAKEOVER)
        .fault(60 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .fault(69 * SECOND, Fault::Stop { node: A, for_ms: 15 * SECOND })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 3 * MINUTE)
}

/// `service failbackd restart` on the healthy tracked MASTER.
pub fn d2() -> Script {
    pair(Setup::default(), NO_FALSE_DEMOTION).fault(60 * SECOND, Fault::Restart { node: A })
}

/// SIGHUP adding a tracked probe whose target is healthy.
pub fn d3() -> Script {
    pair(Setup::default(), NO_FALSE_DEMOTION)
        .fault(60 * SECOND, Fault::Reload { node: A, change: Change::Add { tracked: true } })
}

/// SIGHUP re-pointing the tracked probe at another healthy target.
pub fn d3_repoint() -> Script {
    pair(Setup::default(), NO_FALSE_DEMOTION)
        .fault(60 * SECOND, Fault::Reload { node: A, change: Change::Repoint { target: ALT } })
}

/// `[tracking] enabled = true` with an optional IPv6 probe on a site without IPv6: the peer is
/// judged unhealthy for ever and the MASTER with a dead upstream stays MASTER.
pub fn d4() -> Script {
    let setup = Setup { tracking: Tracking::All, optional_v6: true, v6_dead: true, ..Setup::default() };
    pair(setup, LIVENESS).outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
}

/// `release --force` on a tracking-demoted node is undone by tracking.
pub fn d5() -> Script {
    pair(Setup::default(), OPERATOR_WINS)
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
        .fault(90 * SECOND, Fault::OperatorRelease { node: A, force: true })
}

/// D5 across a restart: the forced release's exemption lived only in the daemon's memory, so
/// the restarted daemon demoted the node the operator had released (found by random seeds once
/// the simulator stopped skipping the failures of a probe not known yet).
pub fn d5_restart() -> Script {
    pair(Setup::default(), OPERATOR_WINS)
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
        .fault(90 * SECOND, Fault::OperatorRelease { node: A, force: true })
        .fault(120 * SECOND, Fault::Restart { node: A })
}

/// The peer runs its own failback after losing MASTER; the primary's path dies meanwhile and
/// tracking asks again only 30 s later.
pub fn d6() -> Script {
    let setup = Setup { min_hold: 2 * SECOND, stable_for: 2 * SECOND, ..Setup::default() };
    pair(setup, LIVENESS).fault(60 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND }).outage(
        BOTH_A,
        Some(WAN),
        78 * SECOND,
        5 * MINUTE,
    )
}

/// OPNsense maintenance mode: a reboot during a hold leaves failbackd's maintenance mode on
/// (config.xml survives, the marker in /var/run does not), and failbackd never leaves it.
pub fn d7() -> Script {
    let setup = Setup { lever: Lever::Maintenance, tracking: Tracking::Off, ..Setup::default() };
    pair(setup, LIVENESS)
        .outage(BOTH_A, Some(WAN), 45 * SECOND, 70 * SECOND)
        .fault(50 * SECOND, Fault::OperatorHold { node: A })
        .fault(55 * SECOND, Fault::PowerLoss { node: A, down_for: 5 * SECOND })
}

/// A `command` backend without `state`: a restart while the promote keeps failing declares
/// `released` without promoting.
pub fn d8() -> Script {
    let setup = Setup { lever: Lever::SysctlBlind, tracking: Tracking::Off, ..Setup::default() };
    pair(setup, LIVENESS)
        .outage(BOTH_A, Some(WAN), 45 * SECOND, 60 * SECOND)
        .fault(50 * SECOND, Fault::OperatorHold { node: A })
        .fault(55 * SECOND, Fault::Backend { node: A, slow: false, for_ms: 30 * SECOND })
        .fault(75 * SECOND, Fault::Restart { node: A })
}

/// OPNsense service_status: another plugin's failing check sets the shared 2^20 bit; failbackd
/// takes it for its own hold.
pub fn d9() -> Script {
    // Hooks lost: the reconcile poll finds the BACKUP, in the same reading as the bit.
    let setup =
        Setup { lever: Lever::ServiceStatus, hook_loss: 1000, tracking: Tracking::Off, ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH).fault(60 * SECOND, Fault::OtherDemotion { node: A, for_ms: 5 * MINUTE })
}

/// An upstream outage longer than max_hold leaves the tracking-demoted primary failed for ever.
pub fn d10() -> Script {
    let setup = Setup { max_hold: 100 * SECOND, ..Setup::default() };
    pair(setup, LIVENESS).outage(BOTH_A, Some(WAN), 60 * SECOND, 200 * SECOND)
}

/// Restarting the released BACKUP's daemon arms a failback and demotes it.
pub fn d11() -> Script {
    pair(Setup::default(), NO_FALSE_DEMOTION).fault(60 * SECOND, Fault::Restart { node: B })
}

/// `hold_on_boot = false`: tracking does nothing while idle (failbackd first started on a
/// running pair, so no CARP transition arms a failback).
pub fn d12() -> Script {
    let setup = Setup { hold_on_boot: false, ..Setup::default() };
    pair(setup, LIVENESS)
        .fault(45 * SECOND, Fault::FirstStart { node: A })
        .fault(45 * SECOND, Fault::FirstStart { node: B })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
}

/// The peer is in an operator's maintenance mode; tracking hands it the traffic anyway.
pub fn d13() -> Script {
    pair(Setup::default(), NO_PING_PONG)
        .fault(40 * SECOND, Fault::OperatorMaintenance { node: B, for_ms: 10 * MINUTE })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
}

/// A lever that does not move CARP (keepalived without failbackd's track file): MASTER while
/// held is recorded as "the peer is gone" while the peer is alive.
pub fn d14() -> Script {
    let setup = Setup { lever_works: [false, true], ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH)
        .fault(60 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 3 * MINUTE)
}

/// The flap limit (max_demotions 1; no peer, `track_without_peer = "demote"`: with a peer,
/// dampening replaces it) does not survive a restart.
pub fn d15() -> Script {
    let setup = Setup { max_demotions: 1, peer: false, demote_without_peer: true, ..Setup::default() };
    pair(setup, NO_PING_PONG)
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 90 * SECOND)
        .fault(150 * SECOND, Fault::Restart { node: A })
        .outage(BOTH_A, Some(WAN), 200 * SECOND, 260 * SECOND)
}

/// The D15 remainder: the flap limit across a power loss with the state file on persistent
/// storage (the monotonic times of the history mean nothing in the new boot).
pub fn d15_power_loss() -> Script {
    let setup = Setup {
        max_demotions: 1,
        peer: false,
        demote_without_peer: true,
        persistent_state: true,
        ..Setup::default()
    };
    pair(setup, NO_PING_PONG)
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 90 * SECOND)
        .fault(150 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .outage(BOTH_A, Some(WAN), 240 * SECOND, 300 * SECOND)
}

/// `peer` pointing at the node itself: tracking judges its own /status as the peer's and
/// reports the (healthy) peer as unhealthy.
pub fn d16() -> Script {
    let setup = Setup { peer_is_self: [true, false], ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH).outage(BOTH_A, Some(WAN), 60 * SECOND, 10 * MINUTE)
}

/// The state file becomes unwritable during a hold; the node is released, and a restart works
/// from the stale file: it resumes a hold that was over.
pub fn d17() -> Script {
    let setup = Setup { tracking: Tracking::Off, ..Setup::default() };
    pair(setup, NO_FALSE_DEMOTION)
        .fault(40 * SECOND, Fault::OperatorHold { node: A })
        .fault(45 * SECOND, Fault::StateReadOnly { node: A, for_ms: 10 * MINUTE })
        .fault(80 * SECOND, Fault::Restart { node: A })
}

/// A start records a `not_master` suppression for a tracked probe that is not down.
pub fn d18() -> Script {
    pair(Setup::default(), TELEMETRY_TRUTH).fault(60 * SECOND, Fault::Restart { node: A })
}

/// Found by random seeds: failbackd reinstalled (no state file) during a hold, on a backend that
/// cannot show failbackd's hold (`command` without `state`): the new daemon is idle and nobody
/// ever lifts the old hold.
pub fn n3() -> Script {
    reinstalled_during_a_boot_hold(Lever::SysctlBlind)
}

/// A reboots onto a dead WAN and holds; failbackd is installed anew (no state file) while the
/// hold is on; the WAN comes back a minute later.
fn reinstalled_during_a_boot_hold(lever: Lever) -> Script {
    let setup = Setup { lever, tracking: Tracking::Off, max_hold: 30 * MINUTE, ..Setup::default() };
    pair(setup, LIVENESS)
        .fault(30 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .outage(BOTH_A, Some(WAN), 30 * SECOND, 12 * MINUTE)
        .fault(11 * MINUTE, Fault::FirstStart { node: A })
}

/// Found by random seeds on main after the fixes (docs/simulation.md, open findings): tracking
/// demotes a MASTER whose tracked path is back and passing, because its probe has not risen yet
/// when the peer turns healthy (rise 6: passes for 5 s before "up").
pub fn n1() -> Script {
    let setup = Setup { rise: 6, ..Setup::default() };
    pair(setup, NO_FALSE_DEMOTION).outage([false, true], Some(WAN), 55 * SECOND, 66 * SECOND).outage(
        BOTH_A,
        Some(WAN),
        58 * SECOND,
        70 * SECOND,
    )
}

/// Found by random seeds on main after the fixes: `judge` looks only at the peer's tracked
/// probes when it has some, so a peer whose required WAN probe is down but untracked (after a
/// reload) is handed the traffic in a shared WAN outage.
pub fn n2() -> Script {
    pair(Setup::default(), NO_PING_PONG)
        .fault(40 * SECOND, Fault::Reload { node: B, change: Change::ToggleTrack })
        .fault(41 * SECOND, Fault::Reload { node: B, change: Change::Add { tracked: true } })
        .outage([true, true], Some(WAN), 60 * SECOND, 10 * MINUTE)
}

/// The never_both_held seeds of the long search (141, 369, 464, ...): a boot failback ends
/// `failed` (max_hold, policy `stay`) while the upstream is down; the upstream comes back and the
/// node stayed demoted for ever, and with the peer held too nobody could preempt. `failed` now
/// releases once the probes pass for the stability window.
pub fn f1() -> Script {
    let setup = Setup { max_hold: 60 * SECOND, ..Setup::default() };
    pair(setup, LIVENESS).outage(BOTH_A, Some(WAN), 10 * SECOND, 5 * MINUTE)
}

/// Issue 18 telemetry_truth: both nodes power on together (no stagger), both hold at the same
/// clamped skew, and CARP's master-down timer elects one of them MASTER while held. Its peer
/// answers "held too": that is not a lost peer (the D14 remainder; peer_lost before the fix).
pub fn t1() -> Script {
    pair(Setup { stagger: 0, ..Setup::default() }, TELEMETRY_TRUTH)
}

/// t1 without a peer to ask: the held node that CARP elects cannot tell a lost peer from one
/// held too, and must not claim `peer_lost` (it did before: "without a peer it is always
/// peer_lost").
pub fn t3() -> Script {
    pair(Setup { stagger: 0, peer: false, ..Setup::default() }, TELEMETRY_TRUTH)
}

/// Issue 18 telemetry_truth: OPNsense `service_status`, an operator's maintenance on top of
/// failbackd's own hold (A rebooted onto a dead WAN): the machine had one `foreign` flag for
/// two facts and reported failbackd's hold as gone while its bit was in place.
pub fn t2() -> Script {
    let setup = Setup { lever: Lever::ServiceStatus, ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH)
        .fault(60 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 4 * MINUTE)
        .fault(100 * SECOND, Fault::OperatorMaintenance { node: A, for_ms: MINUTE })
}

/// Found by random seeds (seed 378): the first write after a restart had no record to keep a
/// resumed failback's trigger from, so it wrote `resume`; a second restart then no longer knew
/// that tracking had started it, and `max_hold` ended it `failed` for good (D10 across two
/// restarts).
pub fn k2() -> Script {
    let setup = Setup { max_hold: 100 * SECOND, ..Setup::default() };
    pair(setup, LIVENESS)
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 200 * SECOND)
        .fault(90 * SECOND, Fault::Restart { node: A })
        .fault(170 * SECOND, Fault::Restart { node: A })
}

/// Issue 18 telemetry_truth: OPNsense `service_status`, another plugin's check fails on the
/// released MASTER: it loses MASTER and arms a failback, and the machine relied on the other
/// check's bit (read while it was released) as its own hold without an evaluation that counted
/// its own check: "held" with failbackd's check never evaluated failing.
pub fn t4() -> Script {
    // Hooks lost: the reconcile poll finds the BACKUP, in the same reading as the bit.
    let setup =
        Setup { lever: Lever::ServiceStatus, hook_loss: 1000, tracking: Tracking::Off, ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH)
        .fault(60 * SECOND, Fault::OtherDemotion { node: A, for_ms: 3 * MINUTE })
        .outage(BOTH_A, Some(WAN), 61 * SECOND, 3 * MINUTE)
}

/// Seeds 1035, 1450, 1483, ...: n3 on OPNsense `service_status`. The new daemon reads the set
/// 2^20 bit as another check's (it is idle: nothing of its own to hold), so a promote "to
/// release" looked needless and the stale answer of the old daemon's check kept the node demoted.
pub fn n5() -> Script {
    reinstalled_during_a_boot_hold(Lever::ServiceStatus)
}

/// Found by random seeds (seed 710): a lever failbackd cannot read (`sysctl` without the
/// failbackd bit) and a backend that fails every call while A holds after a power loss. The
/// readings never carry `held`, so the backend's recovery was not seen: the hold waited out the
/// backoff that grew while the backend was away, phase `holding` with demotion 0.
pub fn t5() -> Script {
    let setup = Setup { lever: Lever::SysctlBlind, ..Setup::default() };
    pair(setup, TELEMETRY_TRUTH)
        .fault(60 * SECOND, Fault::PowerLoss { node: A, down_for: 10 * SECOND })
        .fault(65 * SECOND, Fault::Backend { node: A, slow: false, for_ms: 40 * SECOND })
        .outage(BOTH_A, Some(WAN), 60 * SECOND, 4 * MINUTE)
}

/// Found once the simulator ran the CARP hook's fail-safe (seed 26): at a boot the interfaces
/// come up before the daemon, the hook finds no daemon and demotes through a backend failbackd
/// cannot read (`command` without `state`); with `hold_on_boot = false` nothing armed, and the
/// daemon never lifted that hold.
pub fn n7() -> Script {
    let setup = Setup { lever: Lever::SysctlBlind, hold_on_boot: false, ..Setup::default() };
    pair(setup, LIVENESS)
}

pub const ALL: &[Scenario] = &[
    Scenario { name: "d1_persistent_state_file_power_loss", property: NO_PREMATURE_TAKEOVER, script: d1 },
    Scenario { name: "d2_restart_of_a_healthy_tracked_master", property: NO_FALSE_DEMOTION, script: d2 },
    Scenario { name: "d3_reload_adding_a_tracked_probe", property: NO_FALSE_DEMOTION, script: d3 },
    Scenario {
        name: "d3_reload_repointing_a_tracked_probe",
        property: NO_FALSE_DEMOTION,
        script: d3_repoint,
    },
    Scenario { name: "d4_optional_tracked_probe_blocks_demotion", property: LIVENESS, script: d4 },
    Scenario { name: "d5_forced_release_undone_by_tracking", property: OPERATOR_WINS, script: d5 },
    Scenario { name: "d5_forced_release_across_a_restart", property: OPERATOR_WINS, script: d5_restart },
    Scenario { name: "d6_peer_busy_after_failback_waits_30s", property: LIVENESS, script: d6 },
    Scenario { name: "d7_maintenance_mode_reboot_during_hold", property: LIVENESS, script: d7 },
    Scenario { name: "d8_blind_backend_restart_while_releasing", property: LIVENESS, script: d8 },
    Scenario { name: "d9_other_plugins_service_bit", property: TELEMETRY_TRUTH, script: d9 },
    Scenario { name: "d10_outage_longer_than_max_hold", property: LIVENESS, script: d10 },
    Scenario { name: "d11_restart_of_the_backup", property: NO_FALSE_DEMOTION, script: d11 },
    Scenario { name: "d12_tracking_while_idle", property: LIVENESS, script: d12 },
    Scenario { name: "d13_peer_in_operator_maintenance", property: NO_PING_PONG, script: d13 },
    Scenario { name: "d14_master_while_held_is_not_peer_lost", property: TELEMETRY_TRUTH, script: d14 },
    Scenario { name: "d15_flap_limit_across_restart", property: NO_PING_PONG, script: d15 },
    Scenario { name: "d15_flap_limit_across_power_loss", property: NO_PING_PONG, script: d15_power_loss },
    Scenario { name: "d16_peer_pointing_at_itself", property: TELEMETRY_TRUTH, script: d16 },
    Scenario { name: "d17_unwritable_state_file_then_restart", property: NO_FALSE_DEMOTION, script: d17 },
    Scenario { name: "d18_not_master_suppression_at_start", property: TELEMETRY_TRUTH, script: d18 },
    Scenario { name: "n1_tracking_demotes_a_probe_passing_again", property: NO_FALSE_DEMOTION, script: n1 },
    Scenario { name: "n2_judge_ignores_untracked_required_probes", property: NO_PING_PONG, script: n2 },
    Scenario { name: "f1_failed_node_with_its_path_back_stays_held", property: LIVENESS, script: f1 },
    Scenario { name: "t1_simultaneous_boot_master_while_both_held", property: TELEMETRY_TRUTH, script: t1 },
    Scenario { name: "t3_simultaneous_boot_without_a_peer_to_ask", property: TELEMETRY_TRUTH, script: t3 },
    Scenario { name: "t4_service_status_another_checks_bit_at_arm", property: TELEMETRY_TRUTH, script: t4 },
    Scenario {
        name: "t2_service_status_hold_under_operator_maintenance",
        property: TELEMETRY_TRUTH,
        script: t2,
    },
    Scenario { name: "k2_second_restart_forgets_a_tracking_failback", property: LIVENESS, script: k2 },
    Scenario { name: "n3_reinstalled_during_a_hold_it_cannot_see", property: LIVENESS, script: n3 },
    Scenario { name: "n5_reinstalled_during_a_service_status_hold", property: LIVENESS, script: n5 },
    Scenario { name: "n7_hook_fail_safe_at_boot_on_a_blind_lever", property: LIVENESS, script: n7 },
    Scenario { name: "t5_blind_lever_backend_back_during_a_hold", property: TELEMETRY_TRUTH, script: t5 },
];
