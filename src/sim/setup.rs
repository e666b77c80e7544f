//! The pair's configuration: what both nodes run, drawn from the seed or written by a scenario.

use super::rng::Rng;
use super::Ms;
use crate::machine::{Backoff, MachineConfig, MaxHoldPolicy, ProbeSpec, TrackSpec, TrackingConfig};
use std::time::Duration;

/// failbackd's lever, as the backend sees it and as the kernel applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lever {
    /// `freebsd` backend: failbackd's own bit (2^19) in `net.inet.carp.demotion`.
    Sysctl,
    /// `command` backend without `state`: the same bit, but failbackd cannot measure it.
    SysctlBlind,
    /// `opnsense` backend, `service_status` mode: the 2^20 bit shared by every check in
    /// rc.carp_service_status.d (failbackd's `ready` and other plugins').
    ServiceStatus,
    /// `opnsense` backend, `maintenance` mode: config.xml's maintenance toggle (+240), owned by
    /// failbackd only when its marker file `<state_file>.maintenance` exists.
    Maintenance,
}

/// How probes are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    Off,
    /// `track = true` on the required probe.
    PerProbe,
    /// `[tracking] enabled = true`: every probe, optional ones too.
    All,
}

/// One probe of a node: which of the node's targets it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    pub name: String,
    pub target: usize,
    pub required: bool,
    pub tracked: bool,
}

/// The node's probe targets: its WAN gateway, another upstream (where a probe is re-pointed or
/// added), and an IPv6 gateway (which a site without IPv6 never reaches).
pub const TARGETS: usize = 3;
pub const WAN: usize = 0;
pub const ALT: usize = 1;
pub const V6: usize = 2;

pub fn target_name(node: usize, target: usize) -> String {
    match target {
        WAN => format!("198.51.100.{}", node + 1),
        ALT => format!("203.0.113.{}", node + 1),
        _ => format!("2001:db8::{}", node + 1),
    }
}

#[derive(Debug, Clone)]
pub struct Setup {
    pub lever: Lever,
    /// `state_file` (and the maintenance marker beside it) on persistent storage.
    pub persistent_state: bool,
    pub hold_on_boot: bool,
    pub interval: Ms,
    pub rise: u32,
    pub fall: u32,
    pub min_hold: Ms,
    pub stable_for: Ms,
    pub max_hold: Ms,
    pub max_hold_policy: MaxHoldPolicy,
    pub reconcile: Ms,
    pub tracking: Tracking,
    /// `[tracking] peer` set (to the other node, or to itself by mistake: `peer_is_self`).
    pub peer: bool,
    pub peer_is_self: [bool; 2],
    pub demote_without_peer: bool,
    pub track_for: Ms,
    pub max_demotions: u32,
    pub window: Ms,
    /// A second, optional probe of the IPv6 gateway.
    pub optional_v6: bool,
    /// The site has no IPv6 upstream: the v6 target never answers.
    pub v6_dead: bool,
    /// The lever moves CARP (false: a keepalived instance without failbackd's track file).
    pub lever_works: [bool; 2],
    /// Hooks lost / late / duplicated, in permille.
    pub hook_loss: u64,
    pub hook_late: u64,
    pub hook_dup: u64,
    /// Backend call time (normal); slow and failing calls are faults.
    pub backend_ms: Ms,
    /// A is powered on this long after B (the pair is rarely switched on at the same instant).
    pub stagger: Ms,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            lever: Lever::Sysctl,
            persistent_state: false,
            hold_on_boot: true,
            interval: 1_000,
            rise: 3,
            fall: 2,
            min_hold: 5_000,
            stable_for: 5_000,
            max_hold: 900_000,
            max_hold_policy: MaxHoldPolicy::Stay,
            reconcile: 5_000,
            tracking: Tracking::PerProbe,
            peer: true,
            peer_is_self: [false; 2],
            demote_without_peer: false,
            track_for: 0,
            max_demotions: 3,
            window: 3_600_000,
            optional_v6: false,
            v6_dead: false,
            lever_works: [true; 2],
            hook_loss: 0,
            hook_late: 0,
            hook_dup: 0,
            backend_ms: 50,
            stagger: 20_000,
        }
    }
}

/// Longest a late hook arrives after its transition.
pub const HOOK_LATE_MAX: Ms = 3_000;
/// Longest a slow backend call takes (a fault); the driver's cap is 30 s.
pub const SLOW_BACKEND_MAX: Ms = 8_000;

impl Setup {
    /// A configuration drawn from the seed: every lever, both state file kinds, tracking on or
    /// off, timings from fast to default-like.
    pub fn random(rng: &mut Rng) -> Setup {
        let lever = rng.pick(&[
            (3, Lever::Sysctl),
            (1, Lever::SysctlBlind),
            (3, Lever::ServiceStatus),
            (2, Lever::Maintenance),
        ]);
        let tracking = rng.pick(&[(1, Tracking::Off), (4, Tracking::PerProbe), (1, Tracking::All)]);
        let interval = rng.pick(&[(2, 1_000), (2, 2_000), (1, 5_000)]);
        let optional_v6 = rng.chance(400);
        let stagger = rng.range(1_000, 60_000);
        Setup {
            lever,
            persistent_state: rng.chance(250),
            hold_on_boot: rng.chance(850),
            interval,
            rise: rng.range(2, 4) as u32,
            fall: rng.range(2, 3) as u32,
            min_hold: rng.range(1, 20) * 1_000,
            stable_for: rng.range(0, 20) * 1_000,
            max_hold: rng.range(2, 15) * 60_000,
            max_hold_policy: if rng.chance(300) { MaxHoldPolicy::Release } else { MaxHoldPolicy::Stay },
            reconcile: rng.pick(&[(2, 2_000), (2, 5_000), (1, 15_000)]),
            tracking,
            peer: rng.chance(800),
            // A config copied from the other node without changing `peer` (D16), now and then.
            peer_is_self: [rng.chance(20), false],
            demote_without_peer: rng.chance(300),
            track_for: rng.pick(&[(3, 0), (1, 3_000), (1, 10_000)]),
            max_demotions: rng.range(1, 3) as u32,
            window: 3_600_000,
            optional_v6,
            v6_dead: optional_v6 && rng.chance(500),
            lever_works: [true; 2],
            hook_loss: rng.pick(&[(3, 0), (1, 100)]),
            hook_late: rng.pick(&[(3, 0), (1, 100)]),
            hook_dup: rng.pick(&[(3, 0), (1, 100)]),
            backend_ms: rng.range(10, 300),
            stagger: rng.pick(&[(1, 0), (3, stagger)]),
        }
    }

    /// The probes a node starts with.
    pub fn probes(&self) -> Vec<ProbeDef> {
        let mut p = vec![ProbeDef {
            name: "wan".into(),
            target: WAN,
            required: true,
            tracked: self.tracking != Tracking::Off,
        }];
        if self.optional_v6 {
            p.push(ProbeDef {
                name: "wan6".into(),
                target: V6,
                required: false,
                tracked: self.tracking == Tracking::All,
            });
        }
        p
    }

    /// The machine's configuration for `probes` on `node` (the driver's `Config::machine()`).
    pub fn machine(&self, node: usize, probes: &[ProbeDef]) -> MachineConfig {
        let ms = Duration::from_millis;
        MachineConfig {
            hold_on_boot: self.hold_on_boot,
            min_hold: ms(self.min_hold),
            max_hold: ms(self.max_hold),
            max_hold_policy: self.max_hold_policy,
            stable_for: ms(self.stable_for),
            probes: probes
                .iter()
                .map(|p| ProbeSpec {
                    name: p.name.clone(),
                    identity: format!("icmp {}", target_name(node, p.target)),
                    rise: self.rise,
                    fall: self.fall,
                    required: p.required,
                    track: p.tracked.then_some(TrackSpec { demote_without_peer: self.demote_without_peer }),
                })
                .collect(),
            backoff: Backoff::default(),
            tracking: TrackingConfig {
                track_for: ms(self.track_for),
                max_demotions: self.max_demotions,
                window: ms(self.window),
                peer: self.peer,
                dampen: crate::machine::dampen::DampenConfig::default(),
                peer_settle: ms(self.reconcile) + crate::machine::PEER_MEASURE_MARGIN,
            },
            shared_lever: self.lever == Lever::ServiceStatus,
        }
    }

    /// Time within which telemetry must agree with the world: one reconcile interval plus
    /// backend time, plus a late hook.
    pub fn telemetry_slack(&self) -> Ms {
        self.reconcile + 2 * self.backend_ms + HOOK_LATE_MAX + 1_000
    }

    /// rise x interval + stable_for + min_hold + one reconcile_interval + backend time.
    pub fn release_bound(&self) -> Ms {
        u64::from(self.rise) * self.interval
            + self.stable_for
            + self.min_hold
            + self.reconcile
            + 2 * self.backend_ms
            + 1_000
    }
}
