//! Backends: how a node is demoted and promoted. One file per backend behind [`Backend`];
//! `build` is the one table that maps a config to a backend, so adding one is a new file plus a
//! line there (and its config keys in `config/`).

pub mod command;
pub mod freebsd;
pub mod keepalived;
pub mod opnsense;
pub mod simulated;

use crate::config::BackendConfig;
use std::future::Future;
use std::pin::Pin;

/// A backend call's error, with the context an operator needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Demotes and promotes the node. Every method must be idempotent: `demote` on a demoted node
/// changes nothing (the state machine never toggles, and neither may a backend). Calls are
/// wrapped in a timeout by the caller.
pub trait Backend: Send + Sync {
    /// Short name for metrics and logs ("command", "opnsense", ...).
    fn name(&self) -> &'static str;
    /// Put the node's hold in place (it must not take MASTER by preemption).
    fn demote(&self) -> BackendFuture<'_, ()>;
    /// Remove failbackd's hold (and only failbackd's).
    fn promote(&self) -> BackendFuture<'_, ()>;
    /// Whether failbackd's hold is in place now; `Ok(None)` when the backend cannot tell.
    fn demoted(&self) -> BackendFuture<'_, Option<bool>>;
}

/// Builds the configured backend.
pub fn build(cfg: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
    Ok(match cfg {
        BackendConfig::Simulated => Box::new(simulated::SimulatedBackend::default()),
        BackendConfig::Command { demote, promote, state, timeout } => {
            Box::new(command::CommandBackend::new(demote.clone(), promote.clone(), state.clone(), *timeout))
        }
        BackendConfig::Opnsense { mode, configctl, timeout } => {
            Box::new(opnsense::OpnsenseBackend::new(*mode, configctl.clone(), *timeout))
        }
        BackendConfig::Freebsd { sysctl, demotion, timeout } => {
            Box::new(freebsd::FreebsdBackend::new(sysctl.clone(), *demotion, *timeout))
        }
        BackendConfig::Keepalived { track_file, held_value } => {
            Box::new(keepalived::KeepalivedBackend::new(track_file.clone(), *held_value))
        }
    })
}
