//! Backends: how a node is demoted and promoted, and what the platform says about it now. One
//! file per backend behind [`Backend`]; `build` is the one table that maps a config to a
//! backend, so adding one is a new file plus a line there (and its struct in
//! `config/backend.rs`).

pub mod command;
pub mod freebsd;
pub mod ifconfig;
pub mod keepalived;
mod lock;
pub mod opnsense;
pub mod simulated;

use crate::config::BackendConfig;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

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
    /// failbackd's own lever as measured: Some(true) in place, Some(false) not, None unknown
    /// (command backend without `state`, keepalived before the track file exists).
    pub held: Option<bool>,
    /// The lever is in place but failbackd did not put it there and must never undo it
    /// (OPNsense maintenance mode entered by an operator). Only meaningful with held == Some(true).
    pub foreign: bool,
    /// Whether anything at all demotes the node (demotion > 0, maintenance mode, track value < 0).
    pub demoted: Option<bool>,
    /// The raw value: net.inet.carp.demotion (freebsd, opnsense), the track-file value (keepalived).
    pub demotion: Option<i64>,
    /// Human-readable other demotion sources seen (for status/logs), e.g.
    /// "maintenance mode (entered outside failbackd)", "other sources add 240 (interface down?)".
    pub others: Vec<String>,
    /// Every CARP/VRRP instance the OS reports; None when this backend cannot read it.
    pub carp: Option<Vec<CarpSeen>>,
}

/// Demotes and promotes the node, and measures it. Every method must be idempotent: `demote` on
/// a demoted node changes nothing (the state machine never toggles, and neither may a
/// backend). Each whole operation runs within the backend's one `timeout`.
pub trait Backend: Send + Sync {
    /// Short name for metrics and logs ("command", "opnsense", ...).
    fn name(&self) -> &'static str;
    /// Put the node's hold in place (it must not take MASTER by preemption).
    fn demote(&self) -> BackendFuture<'_, ()>;
    /// Remove failbackd's hold (and only failbackd's).
    fn promote(&self) -> BackendFuture<'_, ()>;
    /// Reads the platform: failbackd's hold, every other demotion, the CARP/VRRP states.
    fn observe(&self) -> BackendFuture<'_, Observation>;
    /// Shorthand for `observe().held` (a whole measurement, `ifconfig`/`ip` included): whether
    /// failbackd's hold is in place now; `Ok(None)` when the backend cannot tell.
    fn demoted(&self) -> BackendFuture<'_, Option<bool>> {
        Box::pin(async move { Ok(self.observe().await?.held) })
    }
}

/// Runs one whole backend operation within `budget`: "demote timed out after 10s (sysctl
/// net.inet.carp.demotion)". The execs inside get the same timeout, so this one fires first.
pub(crate) async fn within<T>(
    op: &str,
    budget: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    // Biased, deadline first: an exec inside started its equal timeout later, so both can come
    // due in the same timer tick, and then the whole operation's budget is what ran out.
    tokio::select! {
        biased;
        () = tokio::time::sleep(budget) => {
            Err(BackendError(format!("{op} timed out after {} ({what})", humantime::format_duration(budget))))
        }
        r = fut => r,
    }
}

/// Checks a `net.inet.carp.demotion` value before any bit test: carp(4) keeps it in an `int`
/// and only ever adds to it (sys/netinet/ip_carp.c carp_demote_adj), so a negative value comes
/// from arithmetic that went below zero (an interface came back after maintenance reset the
/// value) and every high bit of it reads as set.
pub fn check_demotion_value(v: i64) -> Result<i64, BackendError> {
    if v < 0 {
        Err(BackendError(format!(
            "net.inet.carp.demotion is {v}: negative (kernel ifdown/maintenance leave arithmetic); \
             refusing to read it as held"
        )))
    } else if v > i64::from(i32::MAX) {
        Err(BackendError(format!(
            "net.inet.carp.demotion is {v}: above the kernel's int range; refusing to read it as held"
        )))
    } else {
        Ok(v)
    }
}

/// Describes the part of a demotion that is not failbackd's, for [`Observation::others`].
pub(crate) fn other_sources(rest: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = rest;
    if rest & crate::config::backend::SERVICE_STATUS_BIT != 0 {
        out.push("2^20 (a failing check in OPNsense's rc.carp_service_status.d)".to_string());
        rest -= crate::config::backend::SERVICE_STATUS_BIT;
    }
    if rest > 0 {
        out.push(format!("other sources add {rest} (interface down?)"));
    }
    out
}

/// Builds the configured backend; `state_file` is where a backend keeps its lock and marker
/// files (`<state_file>.lock`, `<state_file>.maintenance`).
pub fn build(cfg: &BackendConfig, state_file: &Path) -> Result<Box<dyn Backend>, BackendError> {
    Ok(match cfg {
        BackendConfig::Simulated => Box::new(simulated::SimulatedBackend::default()),
        BackendConfig::Command(c) => Box::new(command::CommandBackend::from_config(c)),
        BackendConfig::Opnsense(c) => Box::new(opnsense::OpnsenseBackend::from_config(c, state_file)),
        BackendConfig::Freebsd(c) => Box::new(freebsd::FreebsdBackend::from_config(c, state_file)),
        BackendConfig::Keepalived(c) => Box::new(keepalived::KeepalivedBackend::from_config(c)),
    })
}

/// `<state_file><suffix>`, beside the state file.
pub(crate) fn beside(state_file: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = state_file.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_or_out_of_range_demotion_is_an_error() {
        assert_eq!(check_demotion_value(0), Ok(0));
        assert_eq!(check_demotion_value(240 + (1 << 19)), Ok(240 + (1 << 19)));
        let e = check_demotion_value(-240).unwrap_err();
        assert!(e.0.contains("-240: negative"), "{e}");
        assert!(check_demotion_value(i64::from(i32::MAX) + 1).is_err());
    }

    #[test]
    fn other_sources_name_the_service_bit_and_the_rest() {
        assert!(other_sources(0).is_empty());
        assert_eq!(other_sources(240), vec!["other sources add 240 (interface down?)"]);
        let o = other_sources((1 << 20) + 480);
        assert_eq!(o.len(), 2, "{o:?}");
        assert!(o[0].starts_with("2^20"));
    }

    #[tokio::test(start_paused = true)]
    async fn one_budget_for_the_whole_operation() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let e = within("demote", Duration::from_secs(10), "sysctl net.inet.carp.demotion", slow)
            .await
            .unwrap_err();
        assert_eq!(e.0, "demote timed out after 10s (sysctl net.inet.carp.demotion)");
    }
}
