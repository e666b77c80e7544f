//! Probes: one file per type behind one trait, dispatched from one table (`build`), run by
//! `runner.rs`, which enforces the timeout and records the generic metrics (blackbox_exporter's
//! split between `prober/handler.go` and each `prober/*.go`).

pub mod cadence;
pub mod command;
pub mod http;
pub mod icmp;
pub mod ipsec;
pub mod opnsense_gateway;
pub mod runner;
pub mod tcp;

use crate::config::{ProbeConfig, ProbeKind};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The result of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// How long the attempt took (timed by the runner, around the whole attempt).
    pub latency: Duration,
    /// Why it failed, for /status, traces and logs. Never contains secrets.
    pub error: Option<String>,
}

/// What a prober returns: Ok(()) when the target is up, Err(reason) otherwise.
pub type ProbeResult = Result<(), String>;

/// A boxed future so probers can be stored in one table.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// One prober: checks its target once. It need not enforce its own timeout; the runner does
/// (and drops the future, which must cancel cleanly).
pub trait Prober: Send + Sync {
    fn probe(&self) -> ProbeFuture<'_>;
}

/// Builds the prober for a configured probe.
pub fn build(cfg: &ProbeConfig) -> Result<Box<dyn Prober>, String> {
    Ok(match &cfg.kind {
        ProbeKind::Icmp { target } => Box::new(icmp::IcmpProber::new(*target)?),
        ProbeKind::Tcp { target } => Box::new(tcp::TcpProber::new(*target)),
        ProbeKind::Http { url, expect_status } => Box::new(http::HttpProber::new(url, *expect_status)?),
        ProbeKind::Command { argv } => Box::new(command::CommandProber::new(argv.clone(), cfg.timeout)),
        ProbeKind::Ipsec { vici_socket, connections } => {
            Box::new(ipsec::IpsecProber::new(vici_socket.clone(), connections.clone()))
        }
        ProbeKind::OpnsenseGateway { configctl, gateways, accept } => Box::new(
            opnsense_gateway::OpnsenseGatewayProber::new(configctl, gateways.clone(), accept, cfg.timeout),
        ),
    })
}
