//! Replacing a small file atomically: a temporary file in the same directory, fsync, rename.
//! A reader (keepalived re-reading its track file, a restarted failbackd reading its marker)
//! sees the old content or the new one, never half of it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically, on tokio's blocking pool; errors name the path.
pub async fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let (path, bytes): (PathBuf, Vec<u8>) = (path.to_path_buf(), bytes.to_vec());
    tokio::task::spawn_blocking(move || write_sync(&path, &bytes))
        .await
        .map_err(|e| format!("writing a file: {e}"))?
}

/// Writes `bytes` to `path` atomically (the one implementation: a `tempfile::NamedTempFile` in
/// the same directory, fsync, `persist` = rename; the temporary file is removed on any error).
pub fn write_sync(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Removes `path`; a file that is already gone is not an error.
pub async fn remove(path: &Path) -> Result<(), String> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, b"one\n").await.unwrap();
        write(&path, b"two\n").await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        remove(&path).await.unwrap();
        remove(&path).await.unwrap();
        assert!(!path.exists());
        let e = write(Path::new("/nonexistent-failbackd/f"), b"x").await.unwrap_err();
        assert!(e.contains("/nonexistent-failbackd/f"), "{e}");
    }
}
