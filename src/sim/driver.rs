//! Decisions the simulator needs that live inline in the driver and the backends (async code
//! with I/O around them), copied here so the simulation runs them on simulated time. Each
//! function names the one it mirrors; when that code is split into a pure function, the copy is
//! replaced by a call. Everything else the simulation runs is the real code: `Machine`,
//! `daemon::peer::judge`, `daemon::boot::{boot_event, classify, own_hold}`,
//! `daemon::carry::{record, carry_over}`,
//! `machine::attribute_shared_hold`, `statefile::Persisted`, `ready::from_phase`.

use super::lever::{LeverState, Owner};
use super::setup::{target_name, Lever, ProbeDef};
use crate::daemon::boot::{classify, Found, StartKind, StartMode, SystemBoot};
use crate::machine::Machine;
use crate::statefile::Persisted;
use crate::status::{CarpStatus, MeasuredStatus, ProbeStatus, Status};

/// A backend measurement (`carp::Observation`, the fields the machine and /status use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub held: Option<bool>,
    pub foreign: bool,
    pub demotion: i64,
}

/// Mirrors `FreebsdBackend::measure`, `OpnsenseBackend::measure` and the `command` backend
/// without `state` (held unknown).
pub fn measure(lever: Lever, l: &mut LeverState) -> Measured {
    let demotion = l.demotion(lever);
    match lever {
        Lever::Sysctl => {
            Measured { held: Some(demotion & super::lever::FAILBACKD_BIT != 0), foreign: false, demotion }
        }
        Lever::SysctlBlind => Measured { held: None, foreign: false, demotion },
        Lever::ServiceStatus => Measured {
            held: Some(demotion & super::lever::SERVICE_BIT != 0),
            // An operator's maintenance is foreign in this mode too.
            foreign: l.maintenance.is_some(),
            demotion,
        },
        Lever::Maintenance => {
            show_checked(l);
            let on = l.maintenance.is_some();
            Measured { held: Some(on), foreign: on && !l.marker, demotion }
        }
    }
}

/// Mirrors `OpnsenseBackend::show_checked`: a marker without maintenance mode is stale.
fn show_checked(l: &mut LeverState) {
    if l.maintenance.is_none() && l.marker {
        l.marker = false;
    }
}

/// What a backend call did to the lever. `Err` is the call's error. `left_operator` is set
/// when the call left a maintenance mode the operator entered (ground truth for the property).
pub struct CallResult {
    pub ok: bool,
    pub left_operator: bool,
}

/// Mirrors `FreebsdBackend::set`, `OpnsenseBackend::demote_now` / `promote_now` and
/// `set_maintenance`. `evaluate` runs OPNsense's service checks with failbackd's `ready` answer.
pub fn call(lever: Lever, l: &mut LeverState, demote: bool, ready_holds: bool) -> CallResult {
    let mut left_operator = false;
    let ok = match lever {
        Lever::Sysctl | Lever::SysctlBlind => {
            l.ours = demote;
            true
        }
        Lever::ServiceStatus => {
            l.evaluate(lever, ready_holds);
            // demote_now: an error when the bit is still clear; promote_now: ok either way
            // (another check may keep the bit: a warning only).
            !demote || l.service_bit
        }
        Lever::Maintenance => {
            show_checked(l);
            let on = l.maintenance.is_some();
            if on == demote || (!demote && !l.marker) {
                // Already where wanted (relied upon, not taken over), or not ours to leave.
                true
            } else {
                if demote {
                    l.maintenance = Some(Owner::Failbackd);
                } else {
                    left_operator = l.maintenance == Some(Owner::Operator);
                    l.maintenance = None;
                    // Leaving resets the demotion to the tunable baseline: the 2^20 bit too.
                    l.service_bit = false;
                    l.service_failbackd_failed = false;
                }
                l.marker = demote;
                true
            }
        }
    };
    CallResult { ok, left_operator }
}

/// Mirrors `ready::verdict_in` without a reachable daemon: the state file of this boot, else
/// `hold_on_boot` at a boot (the start classification itself is the real `classify`).
pub fn ready_holds_without_daemon(
    state_file: Option<&Persisted>,
    system: &SystemBoot,
    hold_on_boot: bool,
) -> bool {
    let found = state_file.map_or(Found::Missing, |p| Found::File(p.clone()));
    match (classify(&found, system, StartMode::Auto).kind, found) {
        (StartKind::Restart, Found::File(p)) => p.demoted,
        (StartKind::Restart, Found::Unreadable(_)) => true,
        (StartKind::Boot, _) => hold_on_boot,
        _ => false,
    }
}

/// Mirrors `Daemon::status` (the fields `judge` and people read).
pub fn status(
    node: usize,
    id: &str,
    m: &Machine,
    probes: &[ProbeDef],
    measured: Option<Measured>,
    now: std::time::Instant,
) -> Status {
    Status {
        failback: crate::daemon::record::failback_status(m, now, |_| 0.0),
        node: id.to_string(),
        phase: m.phase().as_str().to_string(),
        demoted: m.backend_demoted(),
        wanted_demoted: m.phase().wants_demoted(),
        measured: measured.map(|o| MeasuredStatus {
            held: o.held,
            foreign: o.foreign,
            demoted: Some(o.demotion > 0),
            demotion: Some(o.demotion),
            others: Vec::new(),
            at: 0.0,
        }),
        last_outcome: m.last_outcome().map(|o| o.as_str().to_string()),
        failbacks_ended: m.ended_failbacks(),
        probes: probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let tally = m.probe(i).copied().unwrap_or_default();
                ProbeStatus {
                    name: p.name.clone(),
                    kind: "icmp".into(),
                    target: target_name(node, p.target),
                    required: p.required,
                    tracked: m.config().probes.get(i).is_some_and(|s| s.track.is_some()),
                    up: tally.up,
                    passes: tally.passes,
                    fails: tally.fails,
                    last_ok: None,
                    last_latency_ms: None,
                    last_error: None,
                }
            })
            .collect(),
        carp: m
            .carp_states()
            .map(|((vhid, iface), state)| CarpStatus {
                vhid: *vhid,
                iface: iface.clone(),
                state: state.as_str().into(),
            })
            .collect(),
        ..Status::default()
    }
}
