//! `failbackd ready`: exit 0 only when the node should NOT be held. It is the check installed in
//! OPNsense's `/usr/local/etc/rc.carp_service_status.d/` (rc.d/carp-service-status), which
//! `configctl interface update carp service_status` runs: any failing check adds 2^20 to
//! `net.inet.carp.demotion` (opnsense/core src/sbin/carp_service_status).
//!
//! Answer, in order:
//! 1. the daemon's status over the control socket (short timeout): held while its phase wants
//!    the node demoted (holding, probing, stabilizing, failed, draining);
//! 2. when the daemon cannot be reached, the state file's `demoted` field (a daemon restart);
//! 3. no state file either (a boot: /var/run is cleared by rc.d/cleanvar): held when
//!    `hold_on_boot` is set. This is what makes the node come up demoted, because OPNsense runs
//!    the checks from `rc.syshook.d/early/90-carp`, before any CARP VIP exists and before rc.d
//!    daemons (failbackd among them) are started by `rc.syshook.d/start/20-freebsd`.
//!
//! Whenever the answer is uncertain (config unreadable, corrupt state file, unknown phase) it
//! holds: a wrongly held node is released by the daemon, a wrongly released one preempts.

use crate::config::{Config, DEFAULT_CONTROL_SOCKET, DEFAULT_STATE_FILE};
use crate::control::{self, Request};
use crate::machine::Phase;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long to wait for the daemon: configd runs the checks serially.
pub const READY_TIMEOUT: Duration = Duration::from_millis(500);

/// The answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready(String),
    Hold(String),
}

impl Verdict {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Verdict::Ready(_) => ExitCode::SUCCESS,
            Verdict::Hold(_) => ExitCode::from(1),
        }
    }
}

/// The verdict for a phase name the daemon reported.
pub fn from_phase(phase: &str, source: &str) -> Verdict {
    match Phase::parse(phase).map(Phase::wants_demoted) {
        Some(Some(true)) => Verdict::Hold(format!("held: {source} phase {phase}")),
        Some(_) => Verdict::Ready(format!("ready: {source} phase {phase}")),
        None => Verdict::Hold(format!("held: unknown {source} phase {phase:?}")),
    }
}

/// Decides, asking the daemon first, then the state file, then `hold_on_boot`.
pub async fn verdict(config: &Path, socket: Option<&Path>) -> Verdict {
    let cfg = Config::load(config);
    let (sock, state_file, hold_on_boot) = match &cfg {
        Ok(c) => (c.control_socket.clone(), c.state_file.clone(), c.hold_on_boot),
        Err(_) => (PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from(DEFAULT_STATE_FILE), true),
    };
    let sock = socket.map(Path::to_path_buf).unwrap_or(sock);
    let daemon_err = match control::request(&sock, &Request::Status {}, READY_TIMEOUT).await {
        Ok(control::Reply { status: Some(st), .. }) => return from_phase(&st.phase, "daemon"),
        Ok(reply) => reply.error.unwrap_or_else(|| "no status in the reply".into()),
        Err(e) => e,
    };
    if let Err(e) = &cfg {
        // Without the config we do not know where the state file is meant to be, nor
        // hold_on_boot: hold.
        return Verdict::Hold(format!(
            "held: daemon unreachable ({daemon_err}) and the config is invalid: {e}"
        ));
    }
    match crate::statefile::read(&state_file) {
        Ok(Some(p)) if p.demoted => {
            Verdict::Hold(format!("held: daemon unreachable, state file says phase {} (demoted)", p.phase))
        }
        Ok(Some(p)) => {
            Verdict::Ready(format!("ready: daemon unreachable, state file says phase {}", p.phase))
        }
        Ok(None) if hold_on_boot => Verdict::Hold(format!(
            "held: daemon unreachable and no state file at {} (boot) with hold_on_boot",
            state_file.display()
        )),
        Ok(None) => Verdict::Ready("ready: daemon unreachable, no state file, hold_on_boot = false".into()),
        Err(e) => Verdict::Hold(format!("held: daemon unreachable and {e}")),
    }
}

/// The `failbackd ready` subcommand.
pub async fn run(config: &Path, socket: Option<&Path>, verbose: bool) -> ExitCode {
    let v = verdict(config, socket).await;
    if verbose {
        match &v {
            Verdict::Ready(why) | Verdict::Hold(why) => println!("{why}"),
        }
    }
    v.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_map_to_verdicts() {
        for p in ["holding", "probing", "stabilizing", "failed", "draining"] {
            assert!(matches!(from_phase(p, "daemon"), Verdict::Hold(_)), "{p}");
        }
        for p in ["idle", "releasing", "released"] {
            assert!(matches!(from_phase(p, "daemon"), Verdict::Ready(_)), "{p}");
        }
        assert!(matches!(from_phase("bogus", "daemon"), Verdict::Hold(_)));
    }

    fn config(dir: &Path, hold_on_boot: bool) -> PathBuf {
        let path = dir.join("failbackd.toml");
        let text = format!(
            "hold_on_boot = {hold_on_boot}\ncontrol_socket = {:?}\nstate_file = {:?}\n[backend]\ntype = \"simulated\"\n",
            dir.join("sock"),
            dir.join("state")
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test]
    async fn without_a_daemon_it_answers_from_the_state_file_then_hold_on_boot() {
        let dir = tempfile::tempdir().unwrap();
        let held = config(dir.path(), true);
        assert!(matches!(verdict(&held, None).await, Verdict::Hold(w) if w.contains("boot")));
        let open = config(dir.path(), false);
        assert!(matches!(verdict(&open, None).await, Verdict::Ready(_)));
        crate::statefile::write(&dir.path().join("state"), &crate::statefile::Persisted::new(Phase::Probing))
            .unwrap();
        assert!(matches!(verdict(&open, None).await, Verdict::Hold(w) if w.contains("probing")));
        crate::statefile::write(
            &dir.path().join("state"),
            &crate::statefile::Persisted::new(Phase::Released),
        )
        .unwrap();
        assert!(matches!(verdict(&held, None).await, Verdict::Ready(_)));
        std::fs::write(dir.path().join("state"), "{").unwrap();
        assert!(matches!(verdict(&open, None).await, Verdict::Hold(w) if w.contains("corrupt")));
    }

    #[tokio::test]
    async fn an_unreadable_config_holds() {
        let dir = tempfile::tempdir().unwrap();
        let v = verdict(&dir.path().join("missing.toml"), Some(&dir.path().join("sock"))).await;
        assert!(matches!(v, Verdict::Hold(w) if w.contains("config")));
    }
}
