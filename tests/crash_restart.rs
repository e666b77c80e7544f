//! kill -9 of `failbackd run` in every phase, then a restart: it reconciles with the backend's
//! real state and the state file, resumes or finishes the failback, never promotes a node whose
//! required probe fails and never leaves it demoted with no failback in progress.

#[path = "support/node.rs"]
mod node;

use node::{Node, NodeOpts};
use std::time::Duration;

/// After the restart, with the path down: still demoted, probing, no promote issued; then the
/// path comes up and it releases.
fn assert_resumes_and_releases(n: &mut Node, calls_before: usize) {
    n.wait_phase("probing");
    assert_eq!(n.status()["failback"]["trigger"], "resume");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.backend(), "demoted");
    assert!(!n.calls()[calls_before..].contains(&"promoted".to_string()), "{:?}", n.calls());
    n.set_up(true);
    n.wait_phase("released");
    assert_eq!(n.backend(), "promoted");
}

#[test]
fn killed_while_holding_with_the_demote_in_flight() {
    let mut n = Node::new(NodeOpts::default());
    n.set_delay(1);
    n.start();
    n.wait_phase("holding");
    n.kill9();
    // The orphaned demote command finishes on its own, as it would on a real system.
    node::wait_until("the demote", Duration::from_secs(10), || n.backend() == "demoted");
    n.set_delay(0);
    n.start();
    assert_resumes_and_releases(&mut n, 1);
    assert_eq!(n.calls(), vec!["demoted", "promoted"], "no second demote");
}

#[test]
fn killed_while_probing() {
    let mut n = Node::new(NodeOpts::default());
    n.start();
    n.wait_phase("probing");
    n.kill9();
    n.start();
    assert_resumes_and_releases(&mut n, 1);
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}

#[test]
fn killed_while_stabilizing() {
    let mut n = Node::new(NodeOpts { stable_for: "30s", ..NodeOpts::default() });
    n.start();
    n.set_up(true);
    n.wait_phase("stabilizing");
    n.kill9();
    n.set_up(false);
    n.start();
    // The probe is down now: it must not release on the strength of the old window.
    n.wait_phase("probing");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.backend(), "demoted");
    assert_eq!(n.calls(), vec!["demoted"]);
}

#[test]
fn killed_while_releasing_with_the_promote_in_flight() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..NodeOpts::default() });
    n.start();
    n.wait_phase("probing");
    n.set_delay(2);
    n.set_up(true);
    n.wait_phase("releasing");
    n.kill9();
    // Restart before the orphaned promote lands: the backend still says demoted.
    n.set_delay(0);
    n.start();
    n.wait_phase("released");
    node::wait_until("the promote", Duration::from_secs(10), || n.backend() == "promoted");
}

#[test]
fn killed_after_release_restarts_without_holding() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..NodeOpts::default() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    n.kill9();
    n.set_up(false); // even with the path down now: a restart is not a boot
    n.start();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(n.status()["phase"], "released");
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}

#[test]
fn killed_in_failed_stays_failed_and_demoted() {
    let mut n = Node::new(NodeOpts { max_hold: "1s", ..NodeOpts::default() });
    n.start();
    n.wait_phase("failed");
    n.kill9();
    n.start();
    n.wait_phase("failed");
    assert_eq!(n.backend(), "demoted");
    assert_eq!(n.calls(), vec!["demoted"]);
}

#[test]
fn killed_while_draining_resumes_a_failback_on_restart() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..NodeOpts::default() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    let drain = std::process::Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["drain", "--timeout", "1s", "-c"])
        .arg(&n.cfg)
        .output()
        .unwrap();
    assert_eq!(drain.status.code(), Some(1), "no watched VHID reported: a timeout");
    assert_eq!(n.status()["phase"], "draining");
    n.kill9();
    n.set_up(false);
    n.start();
    assert_resumes_and_releases(&mut n, 3);
}

#[test]
fn no_state_file_and_the_hook_already_demoted_resumes() {
    // `failbackd hook` demoted through the backend while the daemon was down (fail-safe).
    let mut n = Node::new(NodeOpts { hold_on_boot: false, ..NodeOpts::default() });
    std::fs::write(n.path("backend"), "demoted\n").unwrap();
    n.start();
    assert_resumes_and_releases(&mut n, 0);
}

#[test]
fn sigterm_exits_cleanly_and_the_restart_resumes() {
    let mut n = Node::new(NodeOpts::default());
    n.start();
    n.wait_phase("probing");
    n.signal("-TERM");
    assert_eq!(n.wait_exit(), Some(0));
    assert!(!n.path("s.sock").exists(), "socket removed on clean exit");
    n.start();
    assert_resumes_and_releases(&mut n, 1);
}

#[test]
fn sighup_reload_keeps_the_hold_and_rejects_an_invalid_config() {
    let mut n = Node::new(NodeOpts::default());
    n.start();
    n.wait_phase("probing");
    let good = std::fs::read_to_string(&n.cfg).unwrap();

    // Valid: a longer max_hold and a second, optional probe.
    let reloaded = good.replace("max_hold = \"60s\"", "max_hold = \"90s\"")
        + "[[probe]]\nname = \"extra\"\ntype = \"command\"\ncommand = [\"true\"]\nrequired = false\n";
    std::fs::write(&n.cfg, &reloaded).unwrap();
    n.signal("-HUP");
    node::wait_until("the reload", Duration::from_secs(10), || {
        n.status()["probes"].as_array().map(Vec::len) == Some(2)
    });
    let st = n.status();
    assert_eq!(st["phase"], "probing");
    assert_eq!(st["failback"]["id"], 1, "the same failback");
    assert_eq!(st["failback"]["trigger"], "boot");

    // Invalid: rejected, logged, old config kept.
    std::fs::write(&n.cfg, "min_hold = \"soon\"\n").unwrap();
    n.signal("-HUP");
    node::wait_until("the rejection", Duration::from_secs(10), || {
        n.log().contains("the new config is invalid")
    });
    assert_eq!(n.status()["phase"], "probing");
    assert_eq!(n.status()["probes"].as_array().map(Vec::len), Some(2));
    n.set_up(true);
    n.wait_phase("released");
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}

/// The node's boot: its identity and a system that has just booted (FAILBACKD_BOOT_ID and
/// FAILBACKD_UPTIME are test-only overrides read in src/daemon/boot.rs).
fn in_boot(n: &mut Node, id: &str) {
    n.envs.retain(|(k, _)| k != "FAILBACKD_BOOT_ID" && k != "FAILBACKD_UPTIME");
    n.envs.push(("FAILBACKD_BOOT_ID".into(), id.into()));
    n.envs.push(("FAILBACKD_UPTIME".into(), "30".into()));
}

/// D1: a state file on persistent storage (the node's dir survives) says `released`; after a
/// power loss the returning primary must be held like at any boot, not preempt with its path
/// down.
#[test]
fn a_power_loss_reboot_with_a_persistent_state_file_holds() {
    let mut n = Node::new(NodeOpts::default());
    in_boot(&mut n, "boot-1");
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    let id_before = n.status()["failback"].clone();
    n.kill9();
    // The reboot: a new boot id, the demotion gone with the kernel, the path not up yet.
    std::fs::write(n.path("backend"), "promoted\n").unwrap();
    n.set_up(false);
    in_boot(&mut n, "boot-2");
    n.start();
    n.wait_phase("probing");
    assert_eq!(n.status()["failback"]["trigger"], "boot", "{}", n.log());
    assert_eq!(n.backend(), "demoted");
    assert_eq!(n.status()["failback"]["id"], 2, "ids keep counting across boots ({id_before})");
    // The same file in the same boot is a restart: a restart is never a boot.
    n.set_up(true);
    n.wait_phase("released");
    n.kill9();
    n.set_up(false);
    n.start();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.status()["phase"], "released");
    assert_eq!(n.backend(), "promoted");
}

/// Issue 20 A5: failbackd enabled on a node that has been up for hours (no state file) must not
/// demote a running MASTER; `--start boot` says otherwise when the operator means it.
#[test]
fn a_first_start_on_a_running_system_is_not_a_boot() {
    let mut n = Node::new(NodeOpts::default());
    n.envs.push(("FAILBACKD_UPTIME".into(), "18000".into()));
    n.start();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.status()["phase"], "idle", "{}", n.log());
    assert!(n.calls().is_empty(), "{:?}", n.calls());
    assert!(n.log().contains("first start"), "{}", n.log());
}

/// D8: a `command` backend without `state`, restarted in `releasing` after its promote failed:
/// the promote is issued again instead of being assumed done.
#[test]
fn a_restart_in_releasing_without_a_state_command_promotes_again() {
    let mut n = Node::new(NodeOpts::default());
    let d = n.dir.path().display().to_string();
    let text = std::fs::read_to_string(&n.cfg).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("state = "))
        .map(|l| {
            if l.starts_with("promote = ") {
                format!(
                    "promote = [\"sh\", \"-c\", \"test ! -e {d}/promote.broken && echo promoted > {d}/backend && echo promoted >> {d}/calls\"]"
                )
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&n.cfg, text).unwrap();
    std::fs::write(n.path("promote.broken"), "").unwrap();
    n.set_up(true);
    n.start();
    n.wait_phase("releasing");
    n.kill9();
    assert_eq!(n.backend(), "demoted");
    std::fs::remove_file(n.path("promote.broken")).unwrap();
    n.start();
    node::wait_until("the promote", Duration::from_secs(20), || n.backend() == "promoted");
    n.wait_phase("released");
}

/// D17: a state file that cannot be written is counted on /metrics and logged once, not on
/// every step.
#[test]
fn an_unwritable_state_file_is_counted_and_logged_once() {
    let mut n = Node::new(NodeOpts::default());
    std::fs::create_dir(n.path("state")).unwrap(); // a directory where the file should be
    n.set_up(true);
    n.start();
    node::wait_until("ten failed writes", Duration::from_secs(20), || {
        n.metric("failback_state_file_write_errors_total").is_some_and(|v| v >= 10.0)
    });
    let warnings = n.log().matches("cannot write the state file").count();
    assert_eq!(warnings, 1, "{}", n.log());
}
