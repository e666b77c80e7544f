//! The `command` backend: user-given argv for demote, promote and (optionally) state, run
//! through [`crate::exec`] (no shell, clean environment, timeout).
//!
//! The state command's contract: exit 0 and print `demoted` or `promoted` (first word of
//! stdout, case-insensitive). Without a state command the backend reports "unknown", and the
//! daemon falls back to its state file.

use super::{Backend, BackendError, BackendFuture};
use crate::exec;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CommandBackend {
    demote: Vec<String>,
    promote: Vec<String>,
    state: Option<Vec<String>>,
    timeout: Duration,
}

impl CommandBackend {
    pub fn new(
        demote: Vec<String>,
        promote: Vec<String>,
        state: Option<Vec<String>>,
        timeout: Duration,
    ) -> Self {
        CommandBackend { demote, promote, state, timeout }
    }

    async fn run(&self, what: &str, argv: &[String]) -> Result<exec::Output, BackendError> {
        let out =
            exec::run(argv, self.timeout).await.map_err(|e| BackendError(format!("{what} command: {e}")))?;
        if out.success() {
            Ok(out)
        } else {
            Err(BackendError(format!("{what} command failed: {}", out.describe())))
        }
    }
}

/// Parses the state command's stdout.
pub fn parse_state(stdout: &str) -> Result<bool, BackendError> {
    match stdout.split_whitespace().next().map(str::to_ascii_lowercase).as_deref() {
        Some("demoted") => Ok(true),
        Some("promoted") => Ok(false),
        _ => Err(BackendError(format!(
            "state command printed {:?}; expected \"demoted\" or \"promoted\"",
            stdout.chars().take(80).collect::<String>()
        ))),
    }
}

impl Backend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { self.run("demote", &self.demote).await.map(|_| ()) })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { self.run("promote", &self.promote).await.map(|_| ()) })
    }
    fn demoted(&self) -> BackendFuture<'_, Option<bool>> {
        Box::pin(async move {
            let Some(argv) = &self.state else { return Ok(None) };
            let out = self.run("state", argv).await?;
            parse_state(&out.stdout).map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn parses_state_words() {
        assert_eq!(parse_state("demoted\n"), Ok(true));
        assert_eq!(parse_state("PROMOTED extra"), Ok(false));
        assert!(parse_state("maybe").is_err());
        assert!(parse_state("").is_err());
    }

    #[tokio::test]
    async fn runs_commands_and_reads_state_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state");
        let f = f.to_str().unwrap();
        let b = CommandBackend::new(
            sh(&format!("echo demoted > {f}")),
            sh(&format!("echo promoted > {f}")),
            Some(sh(&format!("cat {f}"))),
            Duration::from_secs(5),
        );
        b.demote().await.unwrap();
        assert_eq!(b.demoted().await, Ok(Some(true)));
        b.promote().await.unwrap();
        assert_eq!(b.demoted().await, Ok(Some(false)));
    }

    #[tokio::test]
    async fn failures_and_timeouts_carry_context() {
        let b =
            CommandBackend::new(sh("echo nope >&2; exit 4"), sh("sleep 5"), None, Duration::from_millis(200));
        let e = b.demote().await.unwrap_err();
        assert_eq!(e.0, "demote command failed: exit status 4: nope");
        let e = b.promote().await.unwrap_err();
        assert!(e.0.starts_with("promote command: sh timed out"), "{}", e.0);
        assert_eq!(b.demoted().await, Ok(None));
    }
}
