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
    let mut n = Node::new(NodeOpts {
        stable_for: "0s",
        extra: Box::leak(extra.into_boxed_str()),
        carp: true,
        probe_extra,
        ..NodeOpts::default()
    });
    std::fs::write(n.path("carp"), "1@em0 MASTER\n").unwrap();
    n.set_up(true);
    n.start();
    n.wait_phase("released");
    wait_until("MASTER measured", LIMIT, || n.status()["carp"][0]["state"] == "MASTER");
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
