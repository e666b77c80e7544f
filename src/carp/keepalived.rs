//! The `keepalived` backend (Linux VRRP): failbackd writes a keepalived `track_file`; keepalived
//! re-reads it when it changes and adds value × weight to the instance's priority.
//!
//! keepalived.conf(5), "VRRP track files" (keepalived 2.2): the file holds one integer; with a
//! non-zero weight the value is multiplied by the weight and added to the priority, the
//! effective priority being limited to [1,254]; a result below -253 puts the instance in FAULT.
//! So failbackd writes `0` when released and `held_value` (default -253, the lowest value that
//! still leaves the instance in BACKUP rather than FAULT, with `weight 1`) while holding. A member
//! of a sync group needs `sync_group_tracking_weight` on the group, or the weight is ignored.
//!
//! ```text
//! track_file failbackd {
//!     file "/run/failbackd/hold"
//!     weight 1
//!     init_file -253          # start held until failbackd says otherwise
//! }
//! vrrp_instance WAN { ... track_file { failbackd } }
//! ```
//!
//! The file is replaced atomically (write a temporary file in the same directory, fsync,
//! rename), so keepalived never reads a half-written value.

use super::{Backend, BackendError, BackendFuture};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The track file value while holding (with `weight 1`): priority - 253, clamped to 1 by
/// keepalived, without going to FAULT.
pub const DEFAULT_HELD_VALUE: i32 = -253;

#[derive(Debug, Clone)]
pub struct KeepalivedBackend {
    track_file: PathBuf,
    held_value: i32,
}

/// Parses a track file's content as keepalived does: one integer (surrounding blanks allowed).
pub fn parse_track_value(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("not an integer: {:?}", text.trim().chars().take(40).collect::<String>()))
}

/// Writes `value` to `path` atomically: temporary file in the same directory, fsync, rename.
pub async fn write_atomic(path: &Path, value: i64) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.failbackd-{}.tmp", std::process::id()));
    let write = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(format!("{value}\n").as_bytes()).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, path).await
    };
    match write.await {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(format!("writing {}: {e}", path.display()))
        }
    }
}

impl KeepalivedBackend {
    pub fn new(track_file: PathBuf, held_value: i32) -> Self {
        KeepalivedBackend { track_file, held_value }
    }

    async fn write(&self, value: i64) -> Result<(), BackendError> {
        write_atomic(&self.track_file, value).await.map_err(BackendError)
    }
}

impl Backend for KeepalivedBackend {
    fn name(&self) -> &'static str {
        "keepalived"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(self.write(i64::from(self.held_value)))
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(self.write(0))
    }
    fn demoted(&self) -> BackendFuture<'_, Option<bool>> {
        Box::pin(async move {
            match tokio::fs::read_to_string(&self.track_file).await {
                // No file yet: keepalived uses init_file's value; we cannot tell.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BackendError(format!("reading {}: {e}", self.track_file.display()))),
                Ok(text) => parse_track_value(&text)
                    .map(|v| Some(v < 0))
                    .map_err(|e| BackendError(format!("{}: {e}", self.track_file.display()))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_held_and_released_values_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hold");
        let b = KeepalivedBackend::new(path.clone(), DEFAULT_HELD_VALUE);
        assert_eq!(b.demoted().await, Ok(None));
        b.demote().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "-253\n");
        assert_eq!(b.demoted().await, Ok(Some(true)));
        b.promote().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
        assert_eq!(b.demoted().await, Ok(Some(false)));
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn unwritable_directory_is_an_error_with_the_path() {
        let b = KeepalivedBackend::new(PathBuf::from("/nonexistent-failbackd/hold"), -10);
        let e = b.demote().await.unwrap_err();
        assert!(e.0.contains("/nonexistent-failbackd/hold"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("garbage"), "x").unwrap();
        let g = KeepalivedBackend::new(dir.path().join("garbage"), -10);
        assert!(g.demoted().await.unwrap_err().0.contains("not an integer"));
    }
}
