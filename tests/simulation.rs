//! The pair simulation (src/sim/, docs/simulation.md): a fixed set of random seeds checked
//! against every safety property, one command to replay a seed, and D1-D18 of the core safety
//! review as scripted scenarios.
//!
//! Replay a seed with its full trace:
//! `FAILBACKD_SIM_SEED=123 [FAILBACKD_SIM_HOURS=6] cargo test --test simulation replay -- --nocapture`

use failbackd::sim::{self, props, scenarios, Script, HOUR};

/// Seeds x hours = simulated pair-hours checked on every `cargo test`.
const CI_SEEDS: u64 = 400;
const CI_HOURS: u64 = 6;

/// Every property, on every CI seed: main holds all seven over seeds 0-1999 (docs/simulation.md,
/// "Where it stands"); a longer search (`cargo run --release --example simulate -- --from 2000
/// --seeds 4000`) still finds rare cases, listed there with their status.
const CI_PROPERTIES: [&str; 7] = props::ALL;

fn check(script: Script) {
    let r = sim::run(&script);
    if let Some(v) = r.violation {
        panic!("{v}");
    }
}

#[test]
fn random_seeds_hold_the_ci_properties() {
    let mut pair_hours = 0;
    for seed in 0..CI_SEEDS {
        let mut script = Script::random(seed, CI_HOURS * HOUR);
        script.only = CI_PROPERTIES.to_vec();
        let r = sim::run(&script);
        if let Some(v) = r.violation {
            panic!("{v}");
        }
        pair_hours += r.simulated / HOUR;
    }
    assert!(pair_hours >= 2_000, "only {pair_hours} simulated pair-hours");
}

/// Seeds past the CI range that the long search found violating liveness, each replayed
/// against it: 1413 and 1715 (a restart on a stale state file that says `released` while
/// failbackd's hold is on, `service_status` and a blind `command` backend) and 1035, 1450, 1806,
/// 1908 (failbackd reinstalled during a `service_status` hold). They failed before the start at
/// rest that cannot see its lever learned to lift it (machine `unseen_hold`). 2184, 2519: a
/// restart after a power loss read the flap limit's demotions of the boot before as this boot's
/// start (fixed in `carry_over`). 2702, 2952: a peer holding itself whose demote fails is not
/// able to take over (a property correction, docs/simulation.md). 2858, 3520: a second power
/// loss while the node was off powered it on twice (a simulator bug).
#[test]
fn long_search_liveness_seeds_stay_fixed() {
    for seed in [1035, 1413, 1450, 1715, 1806, 1908, 2184, 2519, 2702, 2858, 2952, 3520, 4219] {
        let mut script = Script::random(seed, CI_HOURS * HOUR);
        script.only = vec![props::LIVENESS];
        if let Some(v) = sim::run(&script).violation {
            panic!("{v}");
        }
    }
}

/// With `FAILBACKD_SIM_SEED`, that seed against every property; without, seed 1 against the CI
/// properties (so that the test also runs, and stays green, in plain `cargo test`).
#[test]
fn replay() {
    let asked = std::env::var("FAILBACKD_SIM_SEED").ok().and_then(|s| s.parse().ok());
    let hours = std::env::var("FAILBACKD_SIM_HOURS").ok().and_then(|s| s.parse().ok()).unwrap_or(CI_HOURS);
    let seed = asked.unwrap_or(1);
    let mut script = Script::random(seed, hours * HOUR);
    if asked.is_none() {
        script.only = CI_PROPERTIES.to_vec();
    }
    println!("seed {seed}: {:#?}", script.setup);
    for (at, f) in &script.faults {
        println!("  fault at {:.3}s: {f:?}", *at as f64 / 1000.0);
    }
    for o in &script.outages {
        println!("  outage {:?}", o);
    }
    check(script);
}

#[test]
fn a_seed_replays_exactly() {
    let a = sim::run(&Script::random(7, 2 * HOUR));
    let b = sim::run(&Script::random(7, 2 * HOUR));
    assert_eq!(a.events, b.events);
    assert_eq!(a.violation.map(|v| (v.property, v.at)), b.violation.map(|v| (v.property, v.at)));
}

#[test]
fn every_scenario_checks_a_known_property() {
    for s in scenarios::ALL {
        assert!(props::ALL.contains(&s.property), "{}: {}", s.name, s.property);
        assert_eq!((s.script)().only, vec![s.property], "{}", s.name);
    }
}

macro_rules! scenario {
    ($($(#[$attr:meta])* $test:ident => $name:literal,)*) => {$(
        #[test]
        $(#[$attr])*
        fn $test() {
            let s = scenarios::ALL.iter().find(|s| s.name == $name).expect("scenario");
            check((s.script)());
        }
    )*};
}

scenario! {
    scenario_d1_persistent_state_file_power_loss => "d1_persistent_state_file_power_loss",
    scenario_d2_restart_of_a_healthy_tracked_master => "d2_restart_of_a_healthy_tracked_master",
    scenario_d3_reload_adding_a_tracked_probe => "d3_reload_adding_a_tracked_probe",
    scenario_d3_reload_repointing_a_tracked_probe => "d3_reload_repointing_a_tracked_probe",
    scenario_d4_optional_tracked_probe_blocks_demotion => "d4_optional_tracked_probe_blocks_demotion",
    scenario_d5_forced_release_undone_by_tracking => "d5_forced_release_undone_by_tracking",
    scenario_d5_forced_release_across_a_restart => "d5_forced_release_across_a_restart",
    scenario_d6_peer_busy_after_failback_waits_30s => "d6_peer_busy_after_failback_waits_30s",
    scenario_d7_maintenance_mode_reboot_during_hold => "d7_maintenance_mode_reboot_during_hold",
    scenario_d8_blind_backend_restart_while_releasing => "d8_blind_backend_restart_while_releasing",
    scenario_d9_other_plugins_service_bit => "d9_other_plugins_service_bit",
    scenario_d10_outage_longer_than_max_hold => "d10_outage_longer_than_max_hold",
    scenario_d11_restart_of_the_backup => "d11_restart_of_the_backup",
    scenario_d12_tracking_while_idle => "d12_tracking_while_idle",
    scenario_d13_peer_in_operator_maintenance => "d13_peer_in_operator_maintenance",
    scenario_d14_master_while_held_is_not_peer_lost => "d14_master_while_held_is_not_peer_lost",
    scenario_d15_flap_limit_across_restart => "d15_flap_limit_across_restart",
    scenario_d15_flap_limit_across_power_loss => "d15_flap_limit_across_power_loss",
    scenario_d16_peer_pointing_at_itself => "d16_peer_pointing_at_itself",
    scenario_d17_unwritable_state_file_then_restart => "d17_unwritable_state_file_then_restart",
    scenario_d18_not_master_suppression_at_start => "d18_not_master_suppression_at_start",
    scenario_n1_tracking_demotes_a_probe_passing_again => "n1_tracking_demotes_a_probe_passing_again",
    scenario_n2_judge_ignores_untracked_required_probes => "n2_judge_ignores_untracked_required_probes",
    scenario_f1_failed_node_with_its_path_back_stays_held => "f1_failed_node_with_its_path_back_stays_held",
    scenario_t1_simultaneous_boot_master_while_both_held => "t1_simultaneous_boot_master_while_both_held",
    scenario_t3_simultaneous_boot_without_a_peer_to_ask => "t3_simultaneous_boot_without_a_peer_to_ask",
    scenario_t4_service_status_another_checks_bit_at_arm => "t4_service_status_another_checks_bit_at_arm",
    scenario_t2_service_status_hold_under_operator_maintenance => "t2_service_status_hold_under_operator_maintenance",
    scenario_k2_second_restart_forgets_a_tracking_failback => "k2_second_restart_forgets_a_tracking_failback",
    scenario_n3_reinstalled_during_a_hold_it_cannot_see => "n3_reinstalled_during_a_hold_it_cannot_see",
    scenario_n5_reinstalled_during_a_service_status_hold => "n5_reinstalled_during_a_service_status_hold",
    scenario_n7_hook_fail_safe_at_boot_on_a_blind_lever => "n7_hook_fail_safe_at_boot_on_a_blind_lever",
    scenario_t5_blind_lever_backend_back_during_a_hold => "t5_blind_lever_backend_back_during_a_hold",
}
