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

/// One CARP/VRRP instance as the OS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpSeen {
    pub vhid: u16,
    pub iface: String,
    pub state: crate::machine::CarpState,
}

/// What a backend measured just now. Unknown values are None, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// failbackd's own lever as measured: Some(true) in place, Some(false) not, None unknown.
    pub held: Option<bool>,
    /// The lever is in place but failbackd did not put it there and must never undo it.
    pub foreign: bool,
    /// Whether anything at all demotes the node.
    pub demoted: Option<bool>,
    /// The raw value: net.inet.carp.demotion (freebsd, opnsense), the track-file value.
    pub demotion: Option<i64>,
    /// Other demotion sources seen, for status and logs.
    pub others: Vec<String>,
    /// Every CARP/VRRP instance the OS reports; None when this backend cannot read it.
    pub carp: Option<Vec<CarpSeen>>,
}

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
    /// Measures the platform now.
    fn observe(&self) -> BackendFuture<'_, Observation> {
        Box::pin(async move {
            let held = self.demoted().await?;
            Ok(Observation { held, demoted: held, ..Observation::default() })
        })
    }
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
