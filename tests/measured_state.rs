//! failbackd reports what it measured: a real `failbackd run` with a command backend whose
//! state lives in a file, changed behind the daemon's back, stopped with SIGSTOP while the hook
//! runs, killed in a loop during a hold. Each test ends with status, metrics and the "firewall"
//! (the backend file) agreeing.

#[path = "support/node.rs"]
mod node;

use node::{wait_until, Node, NodeOpts};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn fast() -> NodeOpts {
    NodeOpts { extra: "reconcile_interval = \"200ms\"", ..NodeOpts::default() }
}

fn hook(n: &Node, target: &str, state: &str) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["hook", target, state, "-c"])
        .arg(&n.cfg)
        .output()
        .unwrap()
}

fn calls_of(n: &Node, word: &str) -> usize {
    n.calls().iter().filter(|c| *c == word).count()
}

#[test]
fn a_hold_removed_behind_the_daemons_back_is_noticed_put_back_and_counted() {
    let mut n = Node::new(fast());
    n.start();
    n.wait_phase("probing");
    assert_eq!(n.metric("failback_backend_drift_total{direction=\"removed\"}"), Some(0.0));
    // Someone removes the hold (an operator leaving maintenance resets the demotion).
    std::fs::write(n.path("backend"), "promoted\n").unwrap();
    wait_until("the hold put back", LIMIT, || calls_of(&n, "demoted") == 2);
    wait_until("the drift counted", LIMIT, || {
        n.metric("failback_backend_drift_total{direction=\"removed\"}") == Some(1.0)
    });
    assert_eq!(n.backend(), "demoted");
    let st = n.status();
    assert_eq!(st["phase"], "probing", "the same failback goes on");
    assert_eq!(st["failback"]["id"], 1);
    wait_until("the measurement agrees", LIMIT, || n.status()["measured"]["held"] == true);
    assert_eq!(n.metric("failback_held_in_maintenance"), Some(1.0));
    assert!(n.log().contains("changed behind its back"), "{}", n.log());
}

#[test]
fn a_hold_added_behind_the_daemons_back_after_the_release_is_removed_and_counted() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..fast() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    std::fs::write(n.path("backend"), "demoted\n").unwrap();
    wait_until("the hold removed", LIMIT, || calls_of(&n, "promoted") == 2);
    wait_until("the drift counted", LIMIT, || {
        n.metric("failback_backend_drift_total{direction=\"added\"}") == Some(1.0)
    });
    assert_eq!(n.backend(), "promoted");
    assert_eq!(n.status()["phase"], "released");
    assert_eq!(n.metric("failback_held_in_maintenance"), Some(0.0));
    assert_eq!(n.metric("failback_hold_wanted"), Some(0.0));
}

#[test]
fn the_hook_never_demotes_behind_a_live_but_stopped_daemon() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..fast() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    n.signal("-STOP");
    // Unwatched VHID, daemon stopped: no fail-safe (it is alive, and this VHID is not ours).
    let out = hook(&n, "7@em9", "BACKUP");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // Watched VHID: still no second writer; the event waits in the socket's queue.
    let out = hook(&n, "1@em0", "BACKUP");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no fail-safe demote"), "{stderr}");
    assert_eq!(n.backend(), "promoted", "nothing demoted behind the daemon");
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
    // The path goes down first, so the failback the queued hook arms stays held (with the path
    // up and stable_for 0 it could release between two polls of this test, which then never
    // saw it: once in 5 runs under load).
    n.set_up(false);
    n.signal("-CONT");
    // The queued BACKUP arms a failback, which the daemon demotes itself; everything agrees.
    wait_until("the queued hook", LIMIT, || n.status()["failback"]["id"] == 2);
    wait_until("the demote", LIMIT, || n.backend() == "demoted");
    wait_until("status and metrics agree", LIMIT, || {
        let st = n.status();
        st["measured"]["held"] == true
            && st["demoted"] == true
            && n.metric("failback_held_in_maintenance") == Some(1.0)
    });
    assert_eq!(n.metric("failback_carp_events_ignored_total"), Some(1.0), "7@em9 is counted, not labelled");
}

#[test]
fn the_hook_still_fails_safe_when_the_daemon_is_gone() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..fast() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    n.kill9();
    let _ = std::fs::remove_file(n.path("s.sock"));
    // Not watched: nothing happens, even with the daemon gone.
    assert_eq!(hook(&n, "7@em9", "BACKUP").status.code(), Some(1));
    assert_eq!(n.backend(), "promoted");
    // Watched: demoted through the backend, and the restarted daemon resumes that hold.
    let out = hook(&n, "1@em0", "BACKUP");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fail-safe"));
    assert_eq!(n.backend(), "demoted");
}

#[test]
fn a_crash_loop_ends_in_failed_at_the_original_deadline() {
    // max_hold 3 s, and the daemon killed every ~0.6 s: had each restart re-armed the failback
    // (the old behaviour), max_hold would restart from zero each time and `failed` would never
    // come; resumed as the same failback, it comes within the loop's bound.
    let mut n = Node::new(NodeOpts { max_hold: "3s", ..fast() });
    n.start();
    n.wait_phase("probing");
    let mut restarts = 0;
    let mut phase = n.status()["phase"].clone();
    while phase != "failed" && restarts < 30 {
        std::thread::sleep(Duration::from_millis(600));
        n.kill9();
        n.start();
        restarts += 1;
        wait_until("a status", LIMIT, || n.status()["phase"].is_string());
        let st = n.status();
        phase = st["phase"].clone();
        if phase != "failed" {
            assert_eq!(st["failback"]["id"], 1, "a restart resumes the same failback");
        }
    }
    assert_eq!(phase, "failed", "after {restarts} restarts");
    assert!(restarts >= 2, "the loop must cross the deadline through restarts ({restarts})");
    assert_eq!(n.backend(), "demoted");
    assert_eq!(n.calls(), vec!["demoted"], "never a second demote");
    // (The failed outcome was counted by whichever process crossed the deadline; counters start
    // again in each process, as Prometheus expects. The phase is what this process reports.)
    assert_eq!(n.metric("failback_phase{phase=\"failed\"}"), Some(1.0));
}

#[test]
fn healthz_answers_from_the_loop_and_status_says_how_old_the_measurement_is() {
    let mut n = Node::new(fast());
    n.start();
    n.wait_phase("probing");
    assert_eq!(n.get("/healthz"), (200, "ok\n".to_string()));
    // The first measurement may predate the demote (the start measures before it acts); the
    // one after the demote says held.
    wait_until("a measurement after the demote", LIMIT, || {
        let st = n.status();
        st["measured"]["at"].is_f64() && st["measured"]["held"] == serde_json::json!(true)
    });
    let age = n.metric("failback_backend_observation_age_seconds").unwrap();
    assert!(age >= 0.0);
    let text = Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["status", "-c"])
        .arg(&n.cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("hold      held (measured"), "{text}");
}

#[test]
fn a_reload_keeps_probe_series_equal_to_the_machine_and_drops_removed_probes() {
    let mut n = Node::new(NodeOpts { stable_for: "0s", ..fast() });
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    assert_eq!(n.metric("failback_probe_up{probe=\"path\"}"), Some(1.0));
    let good = std::fs::read_to_string(&n.cfg).unwrap();
    let with_extra = good.clone()
        + "[[probe]]\nname = \"extra\"\ntype = \"command\"\ncommand = [\"true\"]\nrequired = false\n";
    std::fs::write(&n.cfg, &with_extra).unwrap();
    n.signal("-HUP");
    wait_until("the reload", LIMIT, || n.status()["probes"].as_array().map(Vec::len) == Some(2));
    // The probe that did not change keeps its state, in the metrics too (it was 0 here before).
    assert_eq!(n.metric("failback_probe_up{probe=\"path\"}"), Some(1.0));
    assert_eq!(n.metric("failback_probe_required{probe=\"extra\"}"), Some(0.0));
    // Dropping the probe again removes its series.
    std::fs::write(&n.cfg, &good).unwrap();
    n.signal("-HUP");
    wait_until("the second reload", LIMIT, || n.status()["probes"].as_array().map(Vec::len) == Some(1));
    let (_, body) = n.get("/metrics");
    assert!(!body.contains("probe=\"extra\""), "dropped probe's series remain:\n{body}");
    assert_eq!(n.metric("failback_probe_up{probe=\"path\"}"), Some(1.0));
    assert_eq!(n.status()["phase"], "released", "a reload arms nothing");
}
