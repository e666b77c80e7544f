//! `failbackd ready`: exit 0 only when the node should NOT be held. It is the check installed in
//! OPNsense's `/usr/local/etc/rc.carp_service_status.d/` (rc.d/carp-service-status), which
//! `configctl interface update carp service_status` runs: any failing check adds 2^20 to
//! `net.inet.carp.demotion` (opnsense/core src/sbin/carp_service_status).
//!
//! Answer, in order:
//! 1. the daemon's status over the control socket (short timeout): held while its phase wants
//!    the node demoted (holding, probing, stabilizing, failed, draining);
//! 2. when the daemon cannot be reached, the state file's `demoted` field, if the file was written
//!    in this boot (a daemon restart; [`crate::daemon::boot`] decides, as the daemon does);
//! 3. no state file of this boot (none, or a persistent one from before a reboot) on a system
//!    that has just booted: held when `hold_on_boot` is set. This is what makes the node come up
//!    demoted, because OPNsense runs the checks from `rc.syshook.d/early/90-carp`, before any
//!    CARP VIP exists and before rc.d daemons (failbackd among them) are started by
//!    `rc.syshook.d/start/20-freebsd`;
//! 4. no state file of this boot on a system that has been up for a while (failbackd just
//!    enabled on a running node): ready, a first start is not a boot.
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
    verdict_in(config, socket, &crate::daemon::boot::SystemBoot::read().await).await
}

/// [`verdict`] for the given boot facts.
pub async fn verdict_in(
    config: &Path,
    socket: Option<&Path>,
    system: &crate::daemon::boot::SystemBoot,
) -> Verdict {
    use crate::daemon::boot::{classify, Found, StartKind, StartMode};
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
    let found = Found::read(&state_file);
    let start = classify(&found, system, StartMode::Auto);
    match (start.kind, found) {
        (StartKind::Restart, Found::File(p)) if p.demoted => {
            Verdict::Hold(format!("held: daemon unreachable, state file says phase {} (demoted)", p.phase))
        }
        (StartKind::Restart, Found::File(p)) => {
            Verdict::Ready(format!("ready: daemon unreachable, state file says phase {}", p.phase))
        }
        (StartKind::Restart, Found::Unreadable(e)) => {
            Verdict::Hold(format!("held: daemon unreachable and {e}"))
        }
        (StartKind::Boot, _) if hold_on_boot => Verdict::Hold(format!(
            "held: daemon unreachable and no state file of this boot at {} ({}: boot) with hold_on_boot",
            state_file.display(),
            start.why
        )),
        (StartKind::Boot, _) => Verdict::Ready(format!(
            "ready: daemon unreachable, no state file of this boot ({}), hold_on_boot = false",
            start.why
        )),
        (_, _) => Verdict::Ready(format!("ready: daemon unreachable, {}", start.why)),
    }
}

/// The `failbackd ready` subcommand.
pub async fn run(config: &Path, socket: Option<&Path>, verbose: bool) -> ExitCode {
    let v = verdict(config, socket).await;
    if verbose {
        match &v {
            Verdict::Ready(why) | Verdict::Hold(why) => crate::cli::out(&format!("{why}\n")),
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

    use crate::daemon::boot::SystemBoot;
    use crate::statefile::Persisted;

    /// A system that booted `uptime_s` ago, in boot `id`.
    fn system(id: &str, uptime_s: u64) -> SystemBoot {
        SystemBoot { id: Some(id.into()), uptime: Some(Duration::from_secs(uptime_s)) }
    }

    fn write_state(dir: &Path, phase: Phase, boot: Option<&str>) {
        let p = Persisted { boot_id: boot.map(str::to_string), ..Persisted::new(phase) };
        crate::statefile::write(&dir.join("state"), &p).unwrap();
    }

    #[tokio::test]
    async fn without_a_daemon_it_answers_from_the_state_file_then_hold_on_boot() {
        let dir = tempfile::tempdir().unwrap();
        let booting = system("b1", 30);
        let held = config(dir.path(), true);
        assert!(matches!(verdict_in(&held, None, &booting).await, Verdict::Hold(w) if w.contains("boot")));
        let open = config(dir.path(), false);
        assert!(matches!(verdict_in(&open, None, &booting).await, Verdict::Ready(_)));
        write_state(dir.path(), Phase::Probing, Some("b1"));
        assert!(matches!(verdict_in(&open, None, &booting).await, Verdict::Hold(w) if w.contains("probing")));
        write_state(dir.path(), Phase::Released, Some("b1"));
        assert!(matches!(verdict_in(&held, None, &booting).await, Verdict::Ready(_)));
        // A file of a version that did not record the boot: a restart, as before.
        write_state(dir.path(), Phase::Released, None);
        assert!(matches!(verdict_in(&held, None, &booting).await, Verdict::Ready(_)));
        std::fs::write(dir.path().join("state"), "{").unwrap();
        assert!(matches!(verdict_in(&open, None, &booting).await, Verdict::Hold(w) if w.contains("corrupt")));
    }

    /// D1: a persistent state file that says `released`, read at the early evaluation after a
    /// power loss, must not answer "ready".
    #[tokio::test]
    async fn a_state_file_of_another_boot_is_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let held = config(dir.path(), true);
        write_state(dir.path(), Phase::Released, Some("before-the-power-loss"));
        let v = verdict_in(&held, None, &system("after-the-power-loss", 40)).await;
        assert!(matches!(&v, Verdict::Hold(w) if w.contains("another boot")), "{v:?}");
        let open = config(dir.path(), false);
        assert!(matches!(verdict_in(&open, None, &system("after", 40)).await, Verdict::Ready(_)));
        // The same file, read in the boot that wrote it, is a restart.
        write_state(dir.path(), Phase::Released, Some("b2"));
        assert!(matches!(verdict_in(&held, None, &system("b2", 40)).await, Verdict::Ready(_)));
    }

    /// Issue 20 A5: failbackd enabled on a node that has been up for hours is not a boot.
    #[tokio::test]
    async fn a_first_start_on_a_running_system_is_ready() {
        let dir = tempfile::tempdir().unwrap();
        let held = config(dir.path(), true);
        let v = verdict_in(&held, None, &system("b1", 5 * 3600)).await;
        assert!(matches!(&v, Verdict::Ready(w) if w.contains("not a boot")), "{v:?}");
    }

    #[tokio::test]
    async fn an_unreadable_config_holds() {
        let dir = tempfile::tempdir().unwrap();
        let v = verdict(&dir.path().join("missing.toml"), Some(&dir.path().join("sock"))).await;
        assert!(matches!(v, Verdict::Hold(w) if w.contains("config")));
    }
}
