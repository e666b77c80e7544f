//! `failbackd run`: load the config, bind the sockets, start the daemon, stop on SIGTERM/SIGINT.

use super::{start_as, Listeners};
use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub async fn main(config: &Path) -> ExitCode {
    match Config::load(config) {
        Ok(cfg) => main_with(cfg, config, super::boot::StartMode::Auto).await,
        Err(errors) => invalid_config(&errors),
    }
}

/// Reports a config that cannot be loaded; exit code 2.
pub fn invalid_config(errors: &crate::config::ConfigErrors) -> ExitCode {
    tracing::error!("invalid config:\n{errors}");
    eprintln!("{errors}");
    ExitCode::from(2)
}

/// Like [`main`] with the config already loaded from `config` (re-read on SIGHUP).
/// `start` says what this start is (`failbackd run --start`).
pub async fn main_with(cfg: Config, config: &Path, start: super::boot::StartMode) -> ExitCode {
    match serve(cfg, config, start).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "failbackd stopped");
            eprintln!("failbackd: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(cfg: Config, path: &Path, mode: super::boot::StartMode) -> anyhow::Result<()> {
    use anyhow::Context;
    let backend: Arc<dyn crate::carp::Backend> =
        Arc::from(crate::carp::build(&cfg.backend, &cfg.state_file)?);
    let control = crate::control::bind(&cfg.control_socket)
        .with_context(|| format!("binding the control socket {}", cfg.control_socket.display()))?;
    if !cfg.metrics_listen.ip().is_loopback() {
        tracing::warn!(listen = %cfg.metrics_listen, "/metrics and /status are reachable from the network; firewall the port");
    }
    let http = tokio::net::TcpListener::bind(cfg.metrics_listen)
        .await
        .with_context(|| format!("binding {}", cfg.metrics_listen))?;
    let socket_path = cfg.control_socket.clone();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let handles = start_as(cfg, backend, Listeners { control, http }, cancel.clone(), &tracker, mode).await?;
    tracker.close();
    let died = tokio::select! {
        stop = wait_for_stop(path, &handles.reload) => { stop?; false }
        _ = handles.loop_ended.cancelled() => true,
    };
    cancel.cancel();
    // Bounded: every task stops on `cancel`; a scrape in progress gets SHUTDOWN_GRACE.
    if tokio::time::timeout(STOP_TIMEOUT, tracker.wait()).await.is_err() {
        tracing::warn!(timeout_s = STOP_TIMEOUT.as_secs(), "tasks still running at shutdown; exiting anyway");
    }
    let _ = std::fs::remove_file(&socket_path);
    if died {
        // The supervisor (rc.d daemon(8) -r, systemd Restart=) starts a new one, which resumes
        // the failback from the state file; serving metrics of a dead loop would lie.
        anyhow::bail!("the daemon loop ended unexpectedly (a panic? see the log above); exiting");
    }
    Ok(())
}

/// How long a stop may take: a backend call in progress (30 s at most) is allowed to finish.
const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(35);

/// Waits for SIGTERM or SIGINT; on SIGHUP re-reads the config and hands it to the daemon. An
/// invalid config is logged and the running one kept.
async fn wait_for_stop(path: &Path, reload: &tokio::sync::mpsc::Sender<Config>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); return Ok(()) }
            _ = int.recv() => { tracing::info!("SIGINT"); return Ok(()) }
            _ = hup.recv() => match Config::load(path) {
                Ok(cfg) => {
                    tracing::info!(config = %path.display(), "SIGHUP: reloading");
                    if reload.send(cfg).await.is_err() {
                        return Ok(()); // the daemon loop is gone
                    }
                }
                Err(errors) => tracing::error!("SIGHUP: the new config is invalid, keeping the running one:\n{errors}"),
            },
        }
    }
}
