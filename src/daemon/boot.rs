//! Boot, restart or first start? The one decision that says whether `hold_on_boot` applies and
//! whether the state file's phase and failback are resumed.
//!
//! The rule (README "Restart"):
//! - a state file written **in this boot** (same boot identity: Linux
//!   `/proc/sys/kernel/random/boot_id`, FreeBSD `kern.boottime`) is a **restart**: its phase and
//!   failback in progress are resumed;
//! - no state file of this boot (none, or one written in another boot: a persistent path after a
//!   power loss) while the system has been up for less than [`BOOT_WINDOW`] is a **boot**:
//!   `hold_on_boot` applies;
//! - no state file of this boot on a system up for longer is a **first start** (failbackd
//!   enabled on a running node, or started by hand long after the boot): not a boot, nothing to
//!   resume; a hold found in place is picked up, a running MASTER is left alone;
//! - a state file that cannot be read, or one without a boot identity (written by a version
//!   before 0.2), is a restart from `idle`/its phase, as before: a live master is never held for
//!   a file failbackd cannot judge.
//!
//! `failbackd run --start boot|restart` overrides the guess (`auto` is the default). Ids keep
//! counting up across every kind of start. [`boot_event`] is pure; the facts of the system are
//! read by [`SystemBoot::read`], the one place that honours the test-only environment overrides.

use crate::machine::{Boot, Phase, Resumed};
use crate::statefile::Persisted;
use std::time::{Duration, Instant};

/// A system up for less than this without a state file of this boot has just booted: rc starts
/// failbackd within a minute or two of the kernel, OPNsense's early service-status evaluation
/// runs even before that, and a slow box with many services still starts well inside it.
pub const BOOT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Test-only: replaces this boot's identity (simulates a reboot without rebooting).
pub const BOOT_ID_ENV: &str = "FAILBACKD_BOOT_ID";
/// Test-only: replaces the system's uptime, in seconds.
pub const UPTIME_ENV: &str = "FAILBACKD_UPTIME";

/// `failbackd run --start`: what this start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartMode {
    /// Decide from the state file's boot identity and the system's uptime.
    #[default]
    Auto,
    /// The system has just booted: `hold_on_boot` applies, the state file's phase is ignored.
    Boot,
    /// Not a boot: resume the state file of this boot, never apply `hold_on_boot`.
    Restart,
}

/// What kind of start it was decided to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    Boot,
    Restart,
    FirstStart,
}

impl StartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Boot => "boot",
            StartKind::Restart => "restart",
            StartKind::FirstStart => "first start",
        }
    }
}

/// The facts of the running system: which boot this is and how long ago it happened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemBoot {
    /// `None` when the platform cannot tell.
    pub id: Option<String>,
    pub uptime: Option<Duration>,
}

/// What the state file held at start.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Missing,
    Unreadable(String),
    File(Persisted),
}

impl Found {
    pub fn read(path: &std::path::Path) -> Found {
        match crate::statefile::read(path) {
            Ok(Some(p)) => Found::File(p),
            Ok(None) => Found::Missing,
            Err(e) => Found::Unreadable(e),
        }
    }

    fn last_failback(&self) -> u64 {
        match self {
            Found::File(p) => p.last_failback,
            _ => 0,
        }
    }
}

/// The decision and why, for the start log line and `failbackd ready -v`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub kind: StartKind,
    pub why: String,
}

/// Classifies this start (pure).
pub fn classify(found: &Found, system: &SystemBoot, mode: StartMode) -> Decision {
    let decide = |kind: StartKind, why: String| Decision { kind, why };
    // Whether the file was written in this boot: `None` when it cannot be told.
    let this_boot = match found {
        Found::File(p) => match (&p.boot_id, &system.id) {
            (Some(file), Some(now)) => Some(file == now),
            _ => None,
        },
        Found::Unreadable(_) => None,
        Found::Missing => Some(false),
    };
    match mode {
        StartMode::Boot => return decide(StartKind::Boot, "--start boot".into()),
        StartMode::Restart if this_boot == Some(false) => {
            return decide(StartKind::FirstStart, "--start restart, no state file of this boot".into())
        }
        StartMode::Restart => return decide(StartKind::Restart, "--start restart".into()),
        StartMode::Auto => {}
    }
    match (this_boot, found) {
        (Some(true), _) => decide(StartKind::Restart, "state file written in this boot".into()),
        (None, Found::Unreadable(e)) => decide(StartKind::Restart, format!("unreadable state file ({e})")),
        (None, _) => {
            decide(StartKind::Restart, "state file without a boot identity (or none known now)".into())
        }
        (Some(false), _) => {
            let what = if matches!(found, Found::Missing) {
                "no state file"
            } else {
                "state file from another boot"
            };
            match system.uptime {
                Some(up) if up >= BOOT_WINDOW => {
                    decide(StartKind::FirstStart, format!("{what}, system up {}s (not a boot)", up.as_secs()))
                }
                Some(up) => decide(StartKind::Boot, format!("{what}, system up {}s", up.as_secs())),
                None => decide(StartKind::Boot, format!("{what}, uptime unknown")),
            }
        }
    }
}

/// failbackd's own hold as a start can tell it from the backend's first measurement (pure):
/// `held`/`foreign` as the backend reports them ([`crate::carp::Observation`]), `shared` for a
/// lever other checks set too (OPNsense `service_status`: a 2^20 bit that is set may be another
/// check's, so only a clear bit says anything). A hold that is someone else's (an operator's
/// maintenance mode) is not failbackd's: a restart never resumes a hold on the strength of it.
pub fn own_hold(held: Option<bool>, foreign: bool, shared: bool) -> Option<bool> {
    match held {
        Some(true) if shared => None,
        Some(on) => Some(on && !foreign),
        None => None,
    }
}

/// The backend state a phase on record implies was *confirmed* before the restart, for a
/// backend that cannot be measured: only the phases that are entered after a call succeeded.
/// Holding, Releasing and Draining may have a call in flight or failed: unknown, so the call is
/// issued again (every backend call is idempotent).
fn confirmed(phase: Phase) -> Option<bool> {
    match phase {
        Phase::Probing | Phase::Stabilizing => Some(true),
        Phase::Released => Some(false),
        _ => None,
    }
}

/// The machine's [`Boot`] event for this start (pure): `measured` is failbackd's hold as the
/// backend reports it now (`None`: cannot tell), `now` the machine's clock and `monotonic_now`
/// the system's CLOCK_MONOTONIC ([`crate::statefile::monotonic_now`]), to place a resumed
/// failback's arm time on this process's clock.
pub fn boot_event(
    found: &Found,
    system: &SystemBoot,
    mode: StartMode,
    measured: Option<bool>,
    now: Instant,
    monotonic_now: Duration,
) -> (Boot, Decision) {
    let decision = classify(found, system, mode);
    let last_failback = found.last_failback();
    let lever_unseen = measured.is_none();
    let fresh =
        |previous| Boot { backend_demoted: measured, previous, resumed: None, last_failback, lever_unseen };
    let boot = match (decision.kind, found) {
        (StartKind::Boot, _) => fresh(None),
        (StartKind::FirstStart, _) | (StartKind::Restart, Found::Missing | Found::Unreadable(_)) => {
            fresh(Some(Phase::Idle))
        }
        (StartKind::Restart, Found::File(p)) => {
            let previous = p.phase().unwrap_or(Phase::Idle);
            let resumed = p.failback.as_ref().map(|f| {
                let age = monotonic_now.saturating_sub(Duration::from_millis(f.armed_mono_ms));
                Resumed {
                    id: f.id,
                    // Before this process's clock can represent (an arm long before a young
                    // process started): the age stays right, the instant saturates to now - age.
                    armed_at: now.checked_sub(age).unwrap_or(now),
                    peer_lost: f.peer_lost,
                }
            });
            Boot {
                backend_demoted: measured.or(confirmed(previous)),
                previous: Some(previous),
                resumed,
                last_failback,
                lever_unseen,
            }
        }
    };
    (boot, decision)
}

impl SystemBoot {
    /// This boot's identity and the system's uptime. The environment overrides
    /// [`BOOT_ID_ENV`] and [`UPTIME_ENV`] exist for tests only (a power-loss reboot is a new
    /// boot id and a small uptime); this is the only place that reads them.
    pub async fn read() -> SystemBoot {
        let id = match std::env::var(BOOT_ID_ENV) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => platform_boot_id().await,
        };
        let uptime = match std::env::var(UPTIME_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => platform_uptime(),
        };
        SystemBoot { id, uptime }
    }
}

#[cfg(target_os = "linux")]
async fn platform_boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|s| !s.is_empty())
}

/// FreeBSD has no boot UUID: `kern.boottime` (through sysctl(8), as the freebsd backend does:
/// the crate forbids `unsafe`). It moves when the wall clock is stepped (the kernel keeps
/// uptime right), so a restart after a clock step reads as another boot; within
/// [`BOOT_WINDOW`] that holds once more, after it the start is a first start (see docs/install.md).
#[cfg(target_os = "freebsd")]
async fn platform_boot_id() -> Option<String> {
    let argv = ["/sbin/sysctl".to_string(), "-n".to_string(), "kern.boottime".to_string()];
    let out = crate::exec::run(&argv, Duration::from_secs(2)).await.ok()?;
    if !out.success() {
        return None;
    }
    parse_boottime(&out.stdout)
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
async fn platform_boot_id() -> Option<String> {
    None
}

/// `kern.boottime` as `sysctl -n` prints it: `{ sec = 1733400000, usec = 123456 } Thu Dec ...`.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub fn parse_boottime(text: &str) -> Option<String> {
    let field = |name: &str| -> Option<u64> {
        let start = text.find(&format!("{name} = "))? + name.len() + 3;
        let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some(format!("kern.boottime {}.{:06}", field("sec")?, field("usec")?))
}

/// Time since boot, suspend included: Linux CLOCK_BOOTTIME, FreeBSD CLOCK_UPTIME. Neither moves
/// with the wall clock.
fn platform_uptime() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    let clock = rustix::time::ClockId::Boottime;
    #[cfg(target_os = "freebsd")]
    let clock = rustix::time::ClockId::Uptime;
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        let t = rustix::time::clock_gettime(clock);
        Some(Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    None
}

#[cfg(test)]
mod tests;
