//! The state file: the phase and the failback in progress, persisted after every change, so a
//! restarted daemon can tell a daemon restart from a boot and resume the *same* failback: same
//! id, same arm time, so `max_hold` still ends on time after any number of restarts (a crash
//! loop ends in `failed`, it does not hold the node for ever).
//!
//! The file records the boot it was written in (`boot_id`: Linux
//! `/proc/sys/kernel/random/boot_id`, FreeBSD `kern.boottime`), so it may live on tmpfs
//! (/var/run, /run: gone at boot) or on persistent storage (/var/db: kept): a file of another
//! boot counts as no file for the phase and the failback, only its id counter is carried on
//! ([`crate::daemon::boot`] decides).
//!
//! The arm time is recorded twice: on the system's monotonic clock (CLOCK_MONOTONIC, which runs
//! on across daemon restarts and is what every timer uses, so a wall-clock step between two runs
//! changes nothing) and as wall-clock time for people. The monotonic reading is only meaningful
//! until the next boot, which is exactly as long as the file lives.
//! Written atomically ([`crate::atomic`]).

use crate::machine::Phase;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    pub phase: String,
    /// Whether the node should be demoted in this phase (for `failbackd ready` without a daemon).
    pub demoted: bool,
    pub pid: u32,
    /// The boot this file was written in ([`crate::daemon::boot::SystemBoot`]); absent in files
    /// of versions before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The failback in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<PersistedFailback>,
    /// The id of the last failback started, so ids keep counting up across restarts.
    #[serde(default)]
    pub last_failback: u64,
    /// CLOCK_MONOTONIC (ms) of the recent tracking demotions: the flap limit's history, so a
    /// restart does not forget it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_demotions_mono_ms: Vec<u64>,
    /// The same demotions as Unix time: all a reboot leaves of them (a persistent state file
    /// after a power loss; [`crate::daemon::carry`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_demotions_unix: Vec<f64>,
    /// A forced release (`release --force`, `max_hold_policy = "release"`) whose exemption from
    /// tracking is still in force: a restart keeps the operator's decision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub track_forced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedFailback {
    pub id: u64,
    /// CLOCK_MONOTONIC at the arm, in milliseconds ([`monotonic_now`]).
    pub armed_mono_ms: u64,
    /// Unix time of the arm, for people.
    pub armed_unix: f64,
    pub trigger: String,
    #[serde(default)]
    pub peer_lost: bool,
}

impl Persisted {
    /// A record of `phase` with no failback in progress, written by this process.
    pub fn new(phase: Phase) -> Persisted {
        Persisted {
            phase: phase.as_str().to_string(),
            demoted: phase.wants_demoted().unwrap_or(false),
            pid: std::process::id(),
            boot_id: None,
            failback: None,
            last_failback: 0,
            track_demotions_mono_ms: Vec::new(),
            track_demotions_unix: Vec::new(),
            track_forced: false,
        }
    }

    pub fn phase(&self) -> Option<Phase> {
        Phase::parse(&self.phase)
    }
}

impl PersistedFailback {
    /// How long ago it armed, by the monotonic clock.
    pub fn age(&self) -> Duration {
        monotonic_now().saturating_sub(Duration::from_millis(self.armed_mono_ms))
    }
}

/// The system's monotonic clock (CLOCK_MONOTONIC on Linux and FreeBSD): shared by every process
/// until the next boot, never stepped. `std::time::Instant` reads the same clock but cannot be
/// written to a file.
pub fn monotonic_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// Reads the state file; a missing file is `Ok(None)`, an unreadable or corrupt one an error.
pub fn read(path: &Path) -> Result<Option<Persisted>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: corrupt state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state file atomically.
pub fn write(path: &Path, state: &Persisted) -> Result<(), String> {
    let text = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    crate::atomic::write_sync(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase) -> Persisted {
        Persisted {
            phase: phase.as_str().into(),
            demoted: phase.wants_demoted().unwrap_or(false),
            pid: 1,
            boot_id: Some("b1".into()),
            failback: Some(PersistedFailback {
                id: 7,
                armed_mono_ms: 1,
                armed_unix: 2.0,
                trigger: "boot".into(),
                peer_lost: true,
            }),
            last_failback: 7,
            track_demotions_mono_ms: vec![3, 4],
            track_demotions_unix: vec![1.5e9, 1.6e9],
            track_forced: true,
        }
    }

    #[test]
    fn round_trips_and_reports_missing_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        assert_eq!(read(&path), Ok(None));
        write(&path, &state(Phase::Probing)).unwrap();
        let p = read(&path).unwrap().unwrap();
        assert_eq!(p, state(Phase::Probing));
        assert_eq!(p.phase(), Some(Phase::Probing));
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains("corrupt state file"));
        // Only the state file is left: no temporary files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_from_the_previous_version_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, r#"{"phase":"probing","demoted":true,"pid":9}"#).unwrap();
        let p = read(&path).unwrap().unwrap();
        assert_eq!((p.failback, p.last_failback, p.boot_id), (None, 0, None));
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(b >= a && a > Duration::ZERO);
    }
}
