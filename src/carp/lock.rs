//! An exclusive advisory lock on a file beside the state file (`<state_file>.lock`), so that a
//! read-modify-write of `net.inet.carp.demotion` by the daemon and one by the hook's fail-safe
//! (another process) never interleave: both would read "bit clear" and add 2^19 twice, which
//! is 2^20, OPNsense's service bit. std's `File::try_lock` is flock(2) on Unix: per open file,
//! released when the file is closed, also when the process dies.

use super::BackendError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::Duration;

/// How often a waiter retries; the wait as a whole is bounded by the operation's budget.
const RETRY: Duration = Duration::from_millis(10);

/// The lock, held until dropped.
#[derive(Debug)]
pub(crate) struct Held(#[allow(dead_code)] File);

/// Takes the lock on `path` (created if missing), waiting at most `max_wait`.
pub(crate) async fn exclusive(path: &Path, max_wait: Duration) -> Result<Held, BackendError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| BackendError(format!("opening the lock file {}: {e}", path.display())))?;
    let tries = max_wait.as_millis() / RETRY.as_millis() + 1;
    for _ in 0..tries {
        match file.try_lock() {
            Ok(()) => return Ok(Held(file)),
            Err(TryLockError::WouldBlock) => tokio::time::sleep(RETRY).await,
            Err(TryLockError::Error(e)) => {
                return Err(BackendError(format!("locking {}: {e}", path.display())));
            }
        }
    }
    Err(BackendError(format!(
        "{} stayed locked for {} (another failbackd demoting or promoting?)",
        path.display(),
        humantime::format_duration(max_wait)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_and_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.lock");
        let first = exclusive(&path, Duration::from_secs(1)).await.unwrap();
        let e = exclusive(&path, Duration::from_millis(30)).await.unwrap_err();
        assert!(e.0.contains("stayed locked"), "{e}");
        drop(first);
        exclusive(&path, Duration::from_millis(30)).await.unwrap();
    }
}
