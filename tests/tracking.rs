//! Tracking end to end: two real `failbackd run` daemons, r1 asking r2's /status over HTTP
//! before it gives up MASTER. The "firewall" is the command backend's files: `backend`
//! (demoted/promoted), `carp` (what the OS reports: `1@em0 MASTER`), `up` (the path).

#[path = "support/node.rs"]
mod node;

use node::{wait_until, Node, NodeOpts};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// r1: released MASTER with its tracked path up; `peer` is r2's /status (or none).
fn r1(peer: Option<&Node>, without_peer: &'static str) -> Node {
    let extra = match peer {
        Some(p) => {
            // A 2 s half-life: the dampened return takes seconds here, not a minute.
            format!(
                "reconcile_interval = \"200ms\"\n[tracking]\npeer = \"http://{}/status\"\nflap_half_life = \"2s\"\n",
                p.http
            )
        }
        None => "reconcile_interval = \"200ms\"\n".to_string(),
    };
    let probe_extra = match without_peer {
        "demote" => "track = true\ntrack_without_peer = \"demote\"",
        _ => "track = true",
    };
    released_master(extra, probe_extra)
}

/// A node released and measured MASTER, its tracked path up; `extra` goes at the config's top.
fn released_master(extra: String, probe_extra: &'static str) -> Node {
    released_in("MASTER", extra, probe_extra)
}

/// A node released, its path up, and measured in CARP `state`.
fn released_in(state: &'static str, extra: String, probe_extra: &'static str) -> Node {
    let mut n = Node::new(NodeOpts {
        stable_for: "0s",
        extra: Box::leak(extra.into_boxed_str()),
        carp: true,
        probe_extra,
        ..NodeOpts::default()
    });
    std::fs::write(n.path("carp"), format!("1@em0 {state}\n")).unwrap();
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    wait_until("the CARP state measured", LIMIT, || n.status()["carp"][0]["state"] == state);
    n
}

/// r2: the peer, at rest (hold_on_boot = false: idle), its tracked path up or down.
fn r2(path_up: bool) -> Node {
    let mut n =
        Node::new(NodeOpts { hold_on_boot: false, probe_extra: "track = true", ..NodeOpts::default() });
    n.set_up(path_up);
    n.start();
    wait_until("r2's probe", LIMIT, || n.status()["probes"][0]["up"] == path_up);
    n
}

fn metric(n: &Node, series: &str) -> f64 {
    n.metric(series).unwrap_or(-1.0)
}

#[test]
fn a_dead_path_on_the_master_moves_the_traffic_to_a_ready_peer_and_fails_back_later() {
    let peer = r2(true);
    let n = r1(Some(&peer), "stay");
    n.set_up(false);
    wait_until("the tracking demotion", LIMIT, || n.backend() == "demoted");
    let st = n.status();
    assert_eq!(st["failback"]["trigger"], "track path");
    assert_eq!(metric(&n, "failback_track_demotions_total{probe=\"path\"}"), 1.0);
    assert!(n.log().contains("asked the peer"), "{}", n.log());
    // Dampened: a penalty, and more stability required than stable_for (0s) before the return.
    assert!(metric(&n, "failback_track_penalty") > 0.0);
    assert!(metric(&n, "failback_track_required_stability_seconds") > 0.0);
    // The peer took over; the path comes back; an ordinary failback releases r1.
    std::fs::write(n.path("carp"), "1@em0 BACKUP\n").unwrap();
    n.set_up(true);
    wait_until("the failback", LIMIT, || n.status()["phase"] == "released");
    assert_eq!(n.backend(), "promoted");
    assert_eq!(n.calls(), vec!["demoted", "promoted", "demoted", "promoted"]);
}

#[test]
fn a_shared_outage_never_ping_pongs() {
    let peer = r2(false);
    let n = r1(Some(&peer), "demote");
    n.set_up(false);
    wait_until("the suppression", LIMIT, || {
        metric(&n, "failback_track_suppressed_total{reason=\"peer_unhealthy\"}") == 1.0
    });
    assert_eq!(metric(&n, "failback_track_suppressed"), 1.0);
    assert_eq!(n.backend(), "promoted", "stays MASTER: the peer is no better");
    assert_eq!(n.status()["phase"], "released");
    // The path comes back: the episode ends.
    n.set_up(true);
    wait_until("the episode ends", LIMIT, || metric(&n, "failback_track_suppressed") == 0.0);
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}

#[test]
fn a_peer_that_cannot_be_asked_follows_track_without_peer() {
    // A peer URL nobody listens on.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut fake = Node::new(NodeOpts::default());
    fake.http = gone; // only its address is used
    let n = r1(Some(&fake), "stay");
    n.set_up(false);
    wait_until("the suppression", LIMIT, || {
        metric(&n, "failback_track_suppressed_total{reason=\"peer_unreachable\"}") == 1.0
    });
    assert_eq!(n.backend(), "promoted");
    drop(n);
    let n = r1(Some(&fake), "demote");
    n.set_up(false);
    wait_until("the demotion", LIMIT, || n.backend() == "demoted");
    assert_eq!(n.status()["failback"]["trigger"], "track path");
}

#[test]
fn a_backup_node_is_never_demoted_by_tracking() {
    let n = r1(None, "demote");
    std::fs::write(n.path("carp"), "1@em0 BACKUP\n").unwrap();
    // The poll sees BACKUP after the release: that is a transition, which arms a failback.
    wait_until("the failback armed by BACKUP", LIMIT, || n.status()["failback"]["id"] == 2);
    wait_until("released again", LIMIT, || n.status()["phase"] == "released");
    n.set_up(false);
    wait_until("the suppression", LIMIT, || {
        metric(&n, "failback_track_suppressed_total{reason=\"not_master\"}") == 1.0
    });
    assert_eq!(n.backend(), "promoted");
    assert_eq!(metric(&n, "failback_track_demotions_total{probe=\"path\"}"), 0.0);
}

// D2, D18 (live): a restart of the daemon on a healthy tracked MASTER (service restart,
// upgrade, crash) starts with fresh probe tallies: unknown, not down. It must not hand the
// traffic to the peer, nor count a suppression.
#[test]
fn a_restart_of_a_healthy_tracked_master_keeps_it_master() {
    let peer = r2(true);
    let mut n = r1(Some(&peer), "demote");
    n.signal("-TERM");
    n.wait_exit();
    n.start();
    wait_until("MASTER measured after the restart", LIMIT, || n.status()["carp"][0]["state"] == "MASTER");
    wait_until("the tracked probe up after the restart", LIMIT, || n.status()["probes"][0]["up"] == true);
    assert_eq!(n.status()["phase"], "released");
    assert_eq!(n.calls(), vec!["demoted", "promoted"], "no demotion by the restart");
    assert_eq!(metric(&n, "failback_track_demotions_total{probe=\"path\"}"), 0.0);
    assert_eq!(metric(&n, "failback_track_suppressed_total{reason=\"not_master\"}"), 0.0);
    // The restarted node still tracks a path that really dies.
    n.set_up(false);
    wait_until("the tracking demotion", LIMIT, || n.backend() == "demoted");
}

// D15 (live): the flap limit's history survives a daemon restart (it is in the state file), so
// a restart does not buy a flapping path another round of failovers.
#[test]
fn the_flap_limit_survives_a_restart() {
    let mut n = released_master(
        "reconcile_interval = \"200ms\"\n[tracking]\nmax_demotions = 1\n".into(),
        "track = true\ntrack_without_peer = \"demote\"",
    );
    // One tracking demotion, and the failback after it.
    n.set_up(false);
    wait_until("the tracking demotion", LIMIT, || n.backend() == "demoted");
    std::fs::write(n.path("carp"), "1@em0 BACKUP\n").unwrap();
    n.set_up(true);
    wait_until("the failback", LIMIT, || n.status()["phase"] == "released");
    std::fs::write(n.path("carp"), "1@em0 MASTER\n").unwrap();
    wait_until("MASTER again", LIMIT, || n.status()["carp"][0]["state"] == "MASTER");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(n.path("state")).unwrap()).unwrap();
    assert_eq!(state["track_demotions_mono_ms"].as_array().map(Vec::len), Some(1), "{state}");
    // Restart; the path dies again within the window: the flap limit still holds.
    n.signal("-TERM");
    n.wait_exit();
    n.start();
    wait_until("MASTER measured after the restart", LIMIT, || n.status()["carp"][0]["state"] == "MASTER");
    wait_until("the probe up after the restart", LIMIT, || n.status()["probes"][0]["up"] == true);
    n.set_up(false);
    wait_until("the flap-limit suppression", LIMIT, || {
        metric(&n, "failback_track_suppressed_total{reason=\"flap_limit\"}") == 1.0
    });
    assert_eq!(n.backend(), "promoted");
    assert_eq!(n.calls(), vec!["demoted", "promoted", "demoted", "promoted"]);
}

// D5 (live): `failbackd release --force` on a node that tracking demoted is the operator's
// decision: tracking does not undo it while the path stays down.
#[test]
fn a_forced_release_is_not_undone_by_tracking() {
    let n = r1(None, "demote");
    n.set_up(false);
    wait_until("the tracking demotion", LIMIT, || n.backend() == "demoted");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["release", "--force", "--socket"])
        .arg(n.path("s.sock"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("tracking stands down for the operator", LIMIT, || {
        metric(&n, "failback_track_suppressed_total{reason=\"forced_release\"}") == 1.0
    });
    wait_until("released", LIMIT, || n.status()["phase"] == "released");
    // Probes keep failing (every 100 ms); the metrics say tracking looked at them and stood down.
    let attempts = |n: &Node| metric(n, "failback_probe_attempts_total{probe=\"path\",result=\"failure\"}");
    let seen = attempts(&n);
    wait_until("more failed attempts", LIMIT, || attempts(&n) >= seen + 3.0);
    assert_eq!(n.backend(), "promoted");
    assert_eq!(n.calls(), vec!["demoted", "promoted", "demoted", "promoted"]);
    assert_eq!(metric(&n, "failback_track_demotions_total{probe=\"path\"}"), 1.0);
}

/// A node held at boot (its path down) that the OS reports MASTER anyway; `peer` as given.
fn held_but_master(peer: &Node) -> Node {
    let extra =
        format!("reconcile_interval = \"200ms\"\n[tracking]\npeer = \"http://{}/status\"\n", peer.http);
    let mut n = Node::new(NodeOpts {
        extra: Box::leak(extra.into_boxed_str()),
        carp: true,
        probe_extra: "track = true",
        ..NodeOpts::default()
    });
    std::fs::write(n.path("carp"), "1@em0 MASTER\n").unwrap();
    n.set_up(false);
    n.start();
    n
}

// D14 (live): MASTER while held, with a peer that answers it could take over, is a hold that
// does not work, not a lost peer; with a peer that cannot be asked it is a lost peer.
#[test]
fn master_while_held_tells_an_ineffective_hold_from_a_lost_peer() {
    let peer = r2(true);
    let n = held_but_master(&peer);
    wait_until("the ineffective hold", LIMIT, || metric(&n, "failback_hold_ineffective_total") == 1.0);
    assert_eq!(metric(&n, "failback_peer_lost_total"), 0.0);
    assert_eq!(n.status()["failback"]["peer_lost"], false);
    drop(peer);
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut fake = Node::new(NodeOpts::default());
    fake.http = gone;
    let n = held_but_master(&fake);
    wait_until("the lost peer", LIMIT, || metric(&n, "failback_peer_lost_total") == 1.0);
    assert_eq!(metric(&n, "failback_hold_ineffective_total"), 0.0);
}

// D11 (live): restarting the daemon on the healthy BACKUP node (service restart, upgrade, the
// plugin's Apply) learns BACKUP from the first poll: no failback, no demotion, so the primary's
// tracking never finds its peer busy because of it.
#[test]
fn a_restart_of_the_backup_node_does_not_arm_a_failback() {
    let mut n = released_in("BACKUP", "reconcile_interval = \"200ms\"\n".into(), "");
    n.signal("-TERM");
    n.wait_exit();
    n.start();
    wait_until("BACKUP measured after the restart", LIMIT, || n.status()["carp"][0]["state"] == "BACKUP");
    wait_until("the probe up after the restart", LIMIT, || n.status()["probes"][0]["up"] == true);
    let st = n.status();
    assert_eq!(st["phase"], "released", "{st}");
    assert!(st["failback"].is_null(), "{st}");
    assert_eq!(n.calls(), vec!["demoted", "promoted"]);
}
