//! What /metrics says around a start and after a VIP is removed, from a real `failbackd run`
//! (command backend, state in files): nothing measured is served before the first step, a
//! `vhid@iface` the OS no longer reports loses its CARP series, the start time is one value, and
//! a log written to a file carries no colour escapes.

#[path = "support/node.rs"]
mod node;

use node::{wait_until, Node, NodeOpts};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn carp_node() -> Node {
    Node::new(NodeOpts { carp: true, extra: "reconcile_interval = \"200ms\"", ..NodeOpts::default() })
}

fn metrics(n: &Node) -> String {
    let (code, body) = n.get("/metrics");
    assert_eq!(code, 200, "{body}");
    body
}

fn carp_series(n: &Node) -> Vec<String> {
    metrics(n).lines().filter(|l| l.starts_with("failback_carp_state{")).map(String::from).collect()
}

#[test]
fn a_scrape_before_the_first_step_serves_no_state_and_the_log_file_no_colour() {
    let mut n = carp_node();
    // The CARP state "command" reads a FIFO (through the symlink `carp`): the measurement at
    // start waits until the test writes to it, so the daemon serves /metrics before its first
    // step for as long as needed.
    let fifo = n.path("carp.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(&fifo, n.path("carp")).unwrap();
    n.start();
    wait_until("/metrics served", LIMIT, || n.get("/metrics").0 == 200);
    let before = metrics(&n);
    assert!(before.contains("failback_measured 0"), "{before}");
    assert!(before.contains("failback_uptime_seconds "), "{before}");
    for family in [
        "failback_phase{",
        "failback_held_in_maintenance ",
        "failback_hold_wanted ",
        "failback_release_blocked{",
    ] {
        assert!(!before.contains(family), "{family} served before the first step:\n{before}");
    }
    assert!(before.contains("failback_probe_attempts_total{"), "counters are served from the start");

    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"1@em0 BACKUP\n").unwrap();
    drop(w);
    wait_until("the first step", LIMIT, || n.metric("failback_measured") == Some(1.0));
    assert_eq!(n.metric("failback_phase{phase=\"probing\"}"), Some(1.0));
    assert_eq!(n.metric("failback_held_in_maintenance"), Some(1.0));
    assert!(!n.log().contains('\u{1b}'), "colour escapes in a log file:\n{}", n.log());
    // Later polls read a plain file; a poll already waiting on the FIFO gets its end of file
    // (no `cat` left blocked after the test, whose daemon is killed with SIGKILL).
    std::fs::write(n.path("carp.new"), "1@em0 BACKUP\n").unwrap();
    std::fs::rename(n.path("carp.new"), n.path("carp")).unwrap();
    // Opening for writing blocks until a reader is there: on a thread that is never joined.
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(&fifo)));
}

#[test]
fn a_vip_that_is_removed_loses_its_carp_series_and_gets_it_back() {
    let mut n = carp_node();
    std::fs::write(n.path("carp"), "1@em0 MASTER\n").unwrap();
    n.start();
    let master = "failback_carp_state{interface=\"em0\",state=\"MASTER\",vhid=\"1\"}";
    wait_until("MASTER shown", LIMIT, || n.metric(master) == Some(1.0));
    // The VIP is deleted: the OS lists no CARP instance any more.
    std::fs::write(n.path("carp"), "").unwrap();
    wait_until("the ghost series removed", LIMIT, || carp_series(&n).is_empty());
    assert!(n.log().contains("its CARP state series is removed"), "{}", n.log());
    // Re-created with the same state: the daemon's state did not change, the series comes back.
    std::fs::write(n.path("carp"), "1@em0 MASTER\n").unwrap();
    wait_until("MASTER shown again", LIMIT, || n.metric(master) == Some(1.0));
}

#[test]
fn the_start_time_is_one_value_per_process() {
    let mut n = carp_node();
    std::fs::write(n.path("carp"), "1@em0 BACKUP\n").unwrap();
    n.start();
    wait_until("the first step", LIMIT, || n.metric("failback_measured") == Some(1.0));
    let first = n.metric("failback_start_timestamp_seconds").unwrap();
    wait_until("a later uptime", LIMIT, || n.metric("failback_uptime_seconds").is_some_and(|u| u >= 1.0));
    assert_eq!(n.metric("failback_start_timestamp_seconds").map(f64::to_bits), Some(first.to_bits()));
}
