//! Wall-clock jumps (an NTP step at boot is common on firewalls) change no outcome: every timer
//! runs on the monotonic clock. The daemon runs under libfaketime with the wall clock stepped
//! two hours forward and then a day back during a hold whose max_hold is 5 s; the monotonic
//! clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a real system. Every exported
//! timestamp follows the new wall clock at the next scrape (it is computed then, from the
//! monotonic age of the event), and the monotonic ages do not move at all.

#[path = "support/node.rs"]
mod node;
#[path = "support/skip.rs"]
mod skip;

use node::{Node, NodeOpts};
use std::path::Path;
use std::time::Duration;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[test]
fn wall_clock_steps_during_a_hold_change_nothing() {
    if !Path::new(LIBFAKETIME).exists() {
        skip::skip_or_fail(
            "wall_clock_steps_during_a_hold_change_nothing",
            "libfaketime (Debian package faketime) is not installed",
        );
        return;
    }
    let mut n = Node::new(NodeOpts { max_hold: "5s", ..NodeOpts::default() });
    let clock = n.path("faketime");
    std::fs::write(&clock, "+0\n").unwrap();
    n.envs = vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), clock.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ];
    n.start();
    n.wait_phase("probing");
    let armed_before = n.status()["failback"]["armed"].as_f64().unwrap();
    let since_before = n.metric("failback_maintenance_since_timestamp_seconds").unwrap();
    assert!(since_before > 0.0);

    std::fs::write(&clock, "+2h\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Something to log after the step (a hold while held changes nothing).
    let hold = std::process::Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["hold", "--socket"])
        .arg(n.path("s.sock"))
        .output()
        .unwrap();
    assert!(hold.status.success());
    // The step reached the daemon: its wall clock (log timestamps) moved ~2 h ahead...
    let (hour_before, hour_after) = log_hours(&n.log());
    assert_ne!(hour_before, hour_after, "the clock step did not reach the daemon:\n{}", n.log());
    // ... yet the hold is not over: 1.5 s of a 5 s max_hold have passed, not two hours.
    assert_eq!(n.status()["phase"], "probing");
    // The exported times moved with the clock (about +7200 s), the ages did not.
    let shifted = |now: f64, before: f64, step: f64| (now - before - step).abs() < 60.0;
    let armed = n.status()["failback"]["armed"].as_f64().unwrap();
    assert!(shifted(armed, armed_before, 7200.0), "armed {armed} vs {armed_before}");
    let since = n.metric("failback_maintenance_since_timestamp_seconds").unwrap();
    assert!(shifted(since, since_before, 7200.0), "maintenance_since {since} vs {since_before}");
    let elapsed = n.metric("failback_hold_elapsed_seconds").unwrap();
    assert!(elapsed < 5.0, "the hold's age is monotonic: {elapsed}");

    std::fs::write(&clock, "-1d\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.status()["phase"], "probing", "a backward step does not extend or end anything either");
    let armed = n.status()["failback"]["armed"].as_f64().unwrap();
    assert!(shifted(armed, armed_before, -86400.0), "armed {armed} vs {armed_before}");
    let deadline = n.metric("failback_hold_deadline_timestamp_seconds").unwrap();
    assert!(shifted(deadline, armed_before + 5.0, -86400.0), "deadline {deadline}");
    n.set_up(true);
    n.wait_phase("released");
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}

/// The hour of the first and the last timestamped log line (`2026-11-25T16:45:59.19Z ...`).
fn log_hours(log: &str) -> (String, String) {
    let hours: Vec<String> = log
        .lines()
        .filter_map(|l| l.find('T').and_then(|i| l.get(i + 1..i + 3)).map(String::from))
        .filter(|h| h.chars().all(|c| c.is_ascii_digit()))
        .collect();
    (hours.first().cloned().unwrap_or_default(), hours.last().cloned().unwrap_or_default())
}
