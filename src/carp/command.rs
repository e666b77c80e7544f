//! The `command` backend: user-given argv for demote, promote and (optionally) state, run
//! through [`crate::exec`] (no shell, clean environment, timeout).
//!
//! The state command's contract: exit 0 and print `demoted` or `promoted` (first word of
//! stdout, case-insensitive). Without a state command the backend reports "unknown", and the
//! daemon falls back to its state file, trusting only what a phase proves was confirmed
//! (`probing`/`stabilizing`: demoted, `released`: promoted); a restart in `holding`, `releasing`
//! or `draining` issues the call again, which is why demote and promote must be idempotent.
//!
//! The optional `carp_state` command's contract: exit 0 and print one line per CARP/VRRP
//! instance, `VHID@IFACE STATE` with STATE one of MASTER, BACKUP, INIT (blank lines ignored);
//! any other line is an error naming it. Without it CARP states are unknown.

use super::{within, Backend, BackendError, BackendFuture, CarpSeen, Observation};
use crate::config::CommandConfig;
use crate::exec;
use crate::machine::CarpState;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct CommandBackend {
    demote: Vec<String>,
    promote: Vec<String>,
    state: Option<Vec<String>>,
    carp_state: Option<Vec<String>>,
    timeout: Duration,
}

impl CommandBackend {
    pub fn new(
        demote: Vec<String>,
        promote: Vec<String>,
        state: Option<Vec<String>>,
        timeout: Duration,
    ) -> Self {
        CommandBackend { demote, promote, state, carp_state: None, timeout }
    }

    pub fn from_config(c: &CommandConfig) -> Self {
        let nonempty = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
        CommandBackend {
            demote: c.demote.clone(),
            promote: c.promote.clone(),
            state: nonempty(&c.state),
            carp_state: nonempty(&c.carp_state),
            timeout: c.timeout,
        }
    }

    /// Also runs `argv` on each `observe` for the CARP states.
    pub fn with_carp_state(mut self, argv: Vec<String>) -> Self {
        self.carp_state = Some(argv);
        self
    }

    fn what(argv: &[String]) -> String {
        argv.first().cloned().unwrap_or_default()
    }

    async fn measure(&self) -> Result<Observation, BackendError> {
        let held = match &self.state {
            None => None,
            Some(argv) => Some(parse_state(&self.run("state", argv).await?.stdout)?),
        };
        let carp = match &self.carp_state {
            None => None,
            Some(argv) => Some(parse_carp_state(&self.run("carp_state", argv).await?.stdout)?),
        };
        // Our hold in place means demoted; released says nothing about other demotion sources.
        let demoted = held.filter(|&h| h);
        Ok(Observation { held, foreign: false, demoted, demotion: None, others: Vec::new(), carp })
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

/// Parses the carp_state command's stdout: `VHID@IFACE STATE` lines.
pub fn parse_carp_state(stdout: &str) -> Result<Vec<CarpSeen>, BackendError> {
    let mut out = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || {
            BackendError(format!(
                "carp_state command printed {:?}; expected \"VHID@IFACE STATE\" (STATE: MASTER, BACKUP or INIT)",
                line.chars().take(80).collect::<String>()
            ))
        };
        let mut words = line.split_whitespace();
        let (Some(at), Some(state), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let (vhid, iface) = at.split_once('@').ok_or_else(bad)?;
        let vhid = crate::config::parse_vhid(vhid).map_err(|_| bad())?;
        let iface = crate::config::parse_iface(iface).map_err(|_| bad())?;
        let state = CarpState::parse(state).ok_or_else(bad)?;
        out.push(CarpSeen { vhid, iface: iface.to_string(), state });
    }
    Ok(out)
}

impl Backend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        let what = Self::what(&self.demote);
        Box::pin(async move {
            within("demote", self.timeout, &what, async {
                self.run("demote", &self.demote).await.map(|_| ())
            })
            .await
        })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        let what = Self::what(&self.promote);
        Box::pin(async move {
            within("promote", self.timeout, &what, async {
                self.run("promote", &self.promote).await.map(|_| ())
            })
            .await
        })
    }
    fn observe(&self) -> BackendFuture<'_, Observation> {
        let what = [&self.state, &self.carp_state]
            .into_iter()
            .flatten()
            .map(|a| Self::what(a))
            .collect::<Vec<_>>()
            .join(", ");
        Box::pin(async move { within("observe", self.timeout, &what, self.measure()).await })
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

    #[test]
    fn parses_carp_state_lines() {
        let seen = parse_carp_state("1@igb0 MASTER\n\n  51@eth0   BACKUP \n3@em1 INIT\n").unwrap();
        let short: Vec<(u16, &str, &str)> =
            seen.iter().map(|c| (c.vhid, c.iface.as_str(), c.state.as_str())).collect();
        assert_eq!(short, vec![(1, "igb0", "MASTER"), (51, "eth0", "BACKUP"), (3, "em1", "INIT")]);
        assert_eq!(parse_carp_state(""), Ok(vec![]));
        for bad in
            ["1@igb0", "1@igb0 master", "0@igb0 MASTER", "igb0 MASTER", "1@igb0 MASTER extra", "1@ BACKUP"]
        {
            let e = parse_carp_state(&format!("2@em0 BACKUP\n{bad}\n")).unwrap_err();
            assert!(e.0.contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
    }

    #[tokio::test]
    async fn observe_runs_state_and_carp_state() {
        let b = CommandBackend::new(sh("true"), sh("true"), Some(sh("echo demoted")), Duration::from_secs(5))
            .with_carp_state(sh("echo '7@vtnet1 MASTER'"));
        let o = b.observe().await.unwrap();
        assert_eq!((o.held, o.demoted, o.demotion), (Some(true), Some(true), None));
        let carp = o.carp.unwrap();
        assert_eq!((carp[0].vhid, carp[0].iface.as_str(), carp[0].state.as_str()), (7, "vtnet1", "MASTER"));
        let released =
            CommandBackend::new(sh("true"), sh("true"), Some(sh("echo promoted")), Duration::from_secs(5));
        let o = released.observe().await.unwrap();
        assert_eq!((o.held, o.demoted), (Some(false), None), "released says nothing about other sources");
        let unknown = CommandBackend::new(sh("true"), sh("true"), None, Duration::from_secs(5));
        assert_eq!(unknown.observe().await, Ok(Observation::default()));
        let bad = unknown.with_carp_state(sh("echo 'nonsense'"));
        assert!(bad.observe().await.unwrap_err().0.contains("\"nonsense\""));
    }

    /// Real processes, real time: each command alone fits the 1 s budget, both do not.
    #[tokio::test]
    async fn observe_has_one_budget_for_both_commands() {
        let b = CommandBackend::new(
            sh("true"),
            sh("true"),
            Some(sh("sleep 0.6; echo demoted")),
            Duration::from_secs(1),
        )
        .with_carp_state(sh("sleep 0.6"));
        let e = b.observe().await.unwrap_err();
        assert!(e.0.starts_with("observe timed out after 1s (sh, sh)"), "{e}");
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
        assert!(e.0.starts_with("promote timed out after 200ms (sh)"), "{}", e.0);
        assert_eq!(b.demoted().await, Ok(None));
    }
}
