//! Faults: what the world does to the pair, drawn from the seed or scripted by a scenario.

use super::rng::Rng;
use super::setup::{Setup, ALT, TARGETS, WAN};
use super::Ms;

/// A path outage: `targets` of `nodes` do not answer during `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub nodes: [bool; 2],
    /// Which of the node's targets ([`super::setup::WAN`], ...); `None`: every one.
    pub target: Option<usize>,
    pub from: Ms,
    pub to: Ms,
}

impl Outage {
    pub fn touches(&self, node: usize, target: usize) -> bool {
        self.nodes[node] && self.target.is_none_or(|x| x == target)
    }
}

/// How a peer's /status fails to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFault {
    Unreachable,
    /// Answers after failbackd's 2 s timeout.
    Slow,
    Garbage,
}

/// A SIGHUP with a changed probe list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new required probe of the other upstream, tracked or not.
    Add { tracked: bool },
    /// The added probe goes again.
    Remove,
    /// The WAN probe points at `target` now (an operator fixing a typo, a new gateway).
    Repoint { target: usize },
    /// `track` toggled on the WAN probe.
    ToggleTrack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Power loss; the node boots again after `down_for`.
    PowerLoss { node: usize, down_for: Ms },
    /// kill -9; the supervisor (daemon(8) -r, systemd) restarts it after `restart_after`.
    Crash { node: usize, restart_after: Ms },
    /// `service failbackd restart` (SIGTERM, start).
    Restart { node: usize },
    /// The daemon is down (stopped, or failing to start) for `for_ms`, then starts.
    Stop { node: usize, for_ms: Ms },
    /// failbackd installed (or its state file wiped) and started on a running node.
    FirstStart { node: usize },
    /// SIGHUP with a changed config.
    Reload { node: usize, change: Change },
    /// The node's /status cannot be read as it should, for `for_ms`.
    Peer { node: usize, fault: PeerFault, for_ms: Ms },
    /// `failbackd hold`.
    OperatorHold { node: usize },
    /// `failbackd release [--force]`.
    OperatorRelease { node: usize, force: bool },
    /// The operator's CARP maintenance mode (GUI) for `for_ms` (+240 on plain FreeBSD).
    OperatorMaintenance { node: usize, for_ms: Ms },
    /// Another plugin's failing service check (OPNsense: the shared 2^20 bit; FreeBSD: +240).
    OtherDemotion { node: usize, for_ms: Ms },
    /// Backend calls take seconds (`slow`) or fail, for `for_ms`.
    Backend { node: usize, slow: bool, for_ms: Ms },
    /// The state file cannot be written (read-only file system), for `for_ms`.
    StateReadOnly { node: usize, for_ms: Ms },
}

impl Fault {
    pub fn node(&self) -> usize {
        match *self {
            Fault::PowerLoss { node, .. }
            | Fault::Crash { node, .. }
            | Fault::Restart { node }
            | Fault::FirstStart { node }
            | Fault::Stop { node, .. }
            | Fault::Reload { node, .. }
            | Fault::Peer { node, .. }
            | Fault::OperatorHold { node }
            | Fault::OperatorRelease { node, .. }
            | Fault::OperatorMaintenance { node, .. }
            | Fault::OtherDemotion { node, .. }
            | Fault::Backend { node, .. }
            | Fault::StateReadOnly { node, .. } => node,
        }
    }
}

/// Faults and outages for `duration`, drawn from `rng`: on average one fault every ten minutes
/// and one outage every fifteen, of every kind the issue lists.
pub fn draw(rng: &mut Rng, setup: &Setup, duration: Ms) -> (Vec<(Ms, Fault)>, Vec<Outage>) {
    let start = 120_000; // the pair settles after its first boot
    let mut faults = Vec::new();
    let mut t = start;
    loop {
        t += rng.range(60_000, 1_140_000);
        if t >= duration {
            break;
        }
        let node = rng.range(0, 1) as usize;
        let kind = rng.range(0, 99);
        let f = match kind {
            0..=9 => Fault::PowerLoss { node, down_for: rng.range(5_000, 120_000) },
            10..=19 => Fault::Crash { node, restart_after: rng.range(500, 10_000) },
            20..=25 => Fault::Restart { node },
            26..=27 => Fault::Stop { node, for_ms: rng.range(1_000, 60_000) },
            28..=29 => Fault::FirstStart { node },
            30..=41 => {
                let change = match rng.range(0, 3) {
                    0 => Change::Add { tracked: rng.chance(500) },
                    1 => Change::Remove,
                    2 => Change::Repoint { target: if rng.chance(500) { ALT } else { WAN } },
                    _ => Change::ToggleTrack,
                };
                Fault::Reload { node, change }
            }
            42..=49 => Fault::Peer {
                node,
                fault: rng.pick(&[
                    (1, PeerFault::Unreachable),
                    (1, PeerFault::Slow),
                    (1, PeerFault::Garbage),
                ]),
                for_ms: rng.range(5_000, 300_000),
            },
            50..=54 => Fault::OperatorHold { node },
            55..=61 => Fault::OperatorRelease { node, force: rng.chance(600) },
            62..=69 => Fault::OperatorMaintenance { node, for_ms: rng.range(30_000, 900_000) },
            70..=79 => Fault::OtherDemotion { node, for_ms: rng.range(10_000, 600_000) },
            80..=89 => Fault::Backend { node, slow: rng.chance(500), for_ms: rng.range(5_000, 120_000) },
            _ => Fault::StateReadOnly { node, for_ms: rng.range(30_000, 600_000) },
        };
        faults.push((t, f));
    }
    let mut outages = Vec::new();
    let mut t = start;
    let blip_max = u64::from(setup.fall.saturating_sub(1).max(1)) * setup.interval;
    loop {
        t += rng.range(60_000, 1_740_000);
        if t >= duration {
            break;
        }
        let shared = rng.chance(250);
        let node = rng.range(0, 1) as usize;
        let nodes = if shared { [true, true] } else { [node == 0, node == 1] };
        let target =
            if rng.chance(800) { Some(WAN) } else { Some(rng.range(0, TARGETS as u64 - 1) as usize) };
        match rng.range(0, 9) {
            // A blip shorter than fall x interval: must change nothing.
            0..=2 => outages.push(Outage { nodes, target, from: t, to: t + rng.range(100, blip_max) }),
            3..=5 => outages.push(Outage { nodes, target, from: t, to: t + rng.range(10_000, 300_000) }),
            6 => outages.push(Outage {
                nodes,
                target,
                from: t,
                to: t + setup.max_hold + rng.range(1_000, 300_000),
            }),
            _ => {
                // Flapping: down and up several times.
                let mut at = t;
                for _ in 0..rng.range(3, 12) {
                    let down = rng.range(2_000, 40_000);
                    outages.push(Outage { nodes, target, from: at, to: at + down });
                    at += down + rng.range(2_000, 60_000);
                }
                t = at;
            }
        }
    }
    (faults, outages)
}
