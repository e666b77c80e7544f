//! Command probe: runs a configured argv through [`crate::exec::run`] (no shell, clean
//! environment, bounded output, killed on timeout); exit status 0 means up. Anything else fails
//! with the exit status and the first stderr line, so /status says why (e.g. an `ipsec` check
//! that printed "no SA installed").

use super::{ProbeFuture, Prober};
use std::time::Duration;

/// How much later than the probe timeout exec's own timeout fires (see [`CommandProber::new`]).
pub const EXEC_BACKSTOP: Duration = Duration::from_secs(1);

/// Runs one command per attempt.
#[derive(Debug, Clone)]
pub struct CommandProber {
    argv: Vec<String>,
    timeout: Duration,
}

impl CommandProber {
    /// `timeout` is the probe timeout. The runner enforces it on the whole attempt and drops
    /// the future, which kills the command's whole process group (exec's drop guard). exec's
    /// own timeout is only a backstop [`EXEC_BACKSTOP`] later: were both equal, either timer
    /// could fire first in the same tick, and an exec timeout is reported as a plain failure,
    /// not as a timeout (`timed_out`, the timeout metric).
    pub fn new(argv: Vec<String>, timeout: Duration) -> CommandProber {
        CommandProber { argv, timeout: timeout.saturating_add(EXEC_BACKSTOP) }
    }
}

impl Prober for CommandProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let out = crate::exec::run(&self.argv, self.timeout).await?;
            if out.success() {
                Ok(())
            } else {
                Err(out.describe())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prober(argv: &[&str], timeout: Duration) -> CommandProber {
        CommandProber::new(argv.iter().map(|s| s.to_string()).collect(), timeout)
    }

    #[tokio::test]
    async fn exit_zero_is_up() {
        assert_eq!(prober(&["true"], Duration::from_secs(5)).probe().await, Ok(()));
    }

    #[tokio::test]
    async fn non_zero_exit_is_down_with_the_status() {
        let err = prober(&["false"], Duration::from_secs(5)).probe().await.unwrap_err();
        assert_eq!(err, "exit status 1");
    }

    #[tokio::test]
    async fn stderr_first_line_is_in_the_error() {
        // `ls` of a missing path exits non-zero and names the path on stderr.
        let err = prober(&["ls", "/nonexistent-failbackd-probe"], Duration::from_secs(5))
            .probe()
            .await
            .unwrap_err();
        assert!(err.starts_with("exit status "), "{err}");
        assert!(err.contains("/nonexistent-failbackd-probe"), "{err}");
    }

    #[tokio::test]
    async fn command_slower_than_the_timeout_is_killed() {
        let started = std::time::Instant::now();
        let err = prober(&["sleep", "30"], Duration::from_millis(200)).probe().await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        // Generous bound: only proves the 30 s sleep was not waited for.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn missing_program_is_down() {
        let err =
            prober(&["/nonexistent/failbackd-check"], Duration::from_secs(5)).probe().await.unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}
