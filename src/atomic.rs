//! Replacing a small file atomically: a temporary file in the same directory, fsync, rename.
//! A reader (keepalived re-reading its track file, a restarted failbackd reading its marker)
//! sees the old content or the new one, never half of it.

use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Writes `bytes` to `path` atomically; errors name the path.
pub async fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.failbackd-{}.tmp", std::process::id()));
    let write = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
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
