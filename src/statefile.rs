//! The state file: the phase persisted after every change, so a restarted daemon can tell a
//! daemon restart (file present) from a boot (file absent: /var/run is cleared at boot on
//! FreeBSD by rc.d/cleanvar, and /run is a tmpfs on Linux), and pick up a hold in progress.
//! Written atomically (write to a temporary file, then rename).

use crate::machine::Phase;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    pub phase: String,
    /// Whether the node should be demoted in this phase (for `failbackd ready` without a daemon).
    pub demoted: bool,
    pub pid: u32,
}

impl Persisted {
    pub fn phase(&self) -> Option<Phase> {
        Phase::parse(&self.phase)
    }
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
pub fn write(path: &Path, phase: Phase) -> Result<(), String> {
    let state = Persisted {
        phase: phase.as_str().to_string(),
        demoted: phase.wants_demoted().unwrap_or(false),
        pid: std::process::id(),
    };
    let text = serde_json::to_string(&state).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_missing_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        assert_eq!(read(&path), Ok(None));
        write(&path, Phase::Probing).unwrap();
        let p = read(&path).unwrap().unwrap();
        assert_eq!(p.phase(), Some(Phase::Probing));
        assert!(p.demoted);
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains("corrupt state file"));
    }
}
