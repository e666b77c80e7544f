//! The `freebsd` backend (plain FreeBSD, pfSense-like): demotes with `net.inet.carp.demotion`.
//!
//! FreeBSD carp(4): a write to `net.inet.carp.demotion` is *added* to the current value
//! (sys/netinet/ip_carp.c: the sysctl handler calls `carp_demote_adj(new, "sysctl")`, which does
//! `atomic_add_int(&V_carp_demotion, adj)` and re-sends every advertisement at once). The kernel
//! itself adds `net.inet.carp.ifdown_demotion_factor` (240) per interface down and
//! `senderr_demotion_factor` (240) on send errors; OPNsense's carp_service_status uses the 2^20
//! bit. failbackd adds one configurable power of two (default 2^19), so whether its hold is in
//! place is a bitmask test on the current value, with no state kept anywhere else: a restarted
//! daemon (or a second instance, or the hook's fail-safe) never adds it twice, and promote
//! subtracts exactly that amount and leaves what others added. The bit test is only made on a
//! value that is in the kernel's range and not negative ([`super::check_demotion_value`]).
//!
//! The read-then-add of `demote`/`promote` holds an exclusive lock on `<state_file>.lock`, so
//! the daemon and the hook's fail-safe (another process) cannot both read "clear" and add twice.
//!
//! sysctl access goes through the `sysctl(8)` command (argv, through [`crate::exec`]), not the
//! `sysctl` crate or libc: the crate forbids `unsafe`, the command is what OPNsense's own
//! scripts use, and tests can substitute a fake executable. CARP states come from `ifconfig`
//! ([`super::ifconfig`]).

use super::{check_demotion_value, within, Backend, BackendError, BackendFuture, Observation};
use crate::config::FreebsdConfig;
use crate::exec;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::config::backend::{check_demotion, DEFAULT_DEMOTION, DEFAULT_SYSCTL};
pub const OID: &str = "net.inet.carp.demotion";

#[derive(Debug, Clone)]
pub struct FreebsdBackend {
    sysctl: String,
    ifconfig: String,
    amount: i64,
    timeout: Duration,
    lock: PathBuf,
    carp_errors: super::ifconfig::Reported,
}

impl FreebsdBackend {
    /// `state_file` is the daemon's; the lock is `<state_file>.lock` beside it.
    pub fn new(sysctl: String, ifconfig: String, amount: u32, timeout: Duration, state_file: &Path) -> Self {
        FreebsdBackend {
            sysctl,
            ifconfig,
            amount: i64::from(amount),
            timeout,
            lock: super::beside(state_file, ".lock"),
            carp_errors: Default::default(),
        }
    }

    pub fn from_config(c: &FreebsdConfig, state_file: &Path) -> Self {
        Self::new(c.sysctl.clone(), c.ifconfig.clone(), c.demotion, c.timeout, state_file)
    }

    fn what(&self) -> String {
        format!("{} {OID}", self.sysctl)
    }

    async fn sysctl(&self, args: &[&str]) -> Result<String, BackendError> {
        let mut argv = vec![self.sysctl.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let what = format!("sysctl {}", args.join(" "));
        let out = exec::run(&argv, self.timeout).await.map_err(|e| BackendError(format!("{what}: {e}")))?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(BackendError(format!("{what} failed: {} (is carp(4) loaded?)", out.describe())))
        }
    }

    /// The current `net.inet.carp.demotion`, checked (not negative, in range).
    pub async fn read(&self) -> Result<i64, BackendError> {
        let out = self.sysctl(&["-n", OID]).await?;
        let v = out
            .trim()
            .parse::<i64>()
            .map_err(|_| BackendError(format!("sysctl -n {OID} printed {:?}", out.trim())))?;
        check_demotion_value(v)
    }

    fn ours(&self, demotion: i64) -> bool {
        demotion & self.amount != 0
    }

    /// Adds `delta` (carp(4) adds what is written) and checks the bit afterwards.
    async fn adjust(&self, delta: i64, want: bool) -> Result<(), BackendError> {
        self.sysctl(&[&format!("{OID}={delta}")]).await?;
        let now = self.read().await?;
        if self.ours(now) == want {
            Ok(())
        } else {
            Err(BackendError(format!("{OID} is {now} after adding {delta}")))
        }
    }

    /// Under the lock: read, and add `delta` only when the bit is not already `want`.
    async fn set(&self, want: bool) -> Result<(), BackendError> {
        let _lock = super::lock::exclusive(&self.lock, self.timeout).await?;
        if self.ours(self.read().await?) == want {
            return Ok(()); // already in place (e.g. a restart, or the hook got here first)
        }
        self.adjust(if want { self.amount } else { -self.amount }, want).await
    }

    async fn measure(&self) -> Result<Observation, BackendError> {
        let v = self.read().await?;
        let held = self.ours(v);
        Ok(Observation {
            held: Some(held),
            foreign: false,
            demoted: Some(v > 0),
            demotion: Some(v),
            others: super::other_sources(if held { v - self.amount } else { v }),
            carp: super::ifconfig::observe(&self.ifconfig, self.timeout, &self.carp_errors).await,
        })
    }
}

impl Backend for FreebsdBackend {
    fn name(&self) -> &'static str {
        "freebsd"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { within("demote", self.timeout, &self.what(), self.set(true)).await })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { within("promote", self.timeout, &self.what(), self.set(false)).await })
    }
    fn observe(&self) -> BackendFuture<'_, Observation> {
        Box::pin(async move { within("observe", self.timeout, &self.what(), self.measure()).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demotion_amount_must_be_a_distinct_bit() {
        assert!(check_demotion(DEFAULT_DEMOTION).is_ok());
        assert!(check_demotion(1 << 16).is_ok());
        assert!(check_demotion(1 << 20).unwrap_err().contains("OPNsense"));
        assert!(check_demotion(240).is_err());
        assert!(check_demotion((1 << 19) + 1).is_err());
        assert!(check_demotion(1 << 30).is_err());
    }

    #[test]
    fn ownership_is_a_bitmask_test() {
        let b = FreebsdBackend::new(
            "sysctl".into(),
            "ifconfig".into(),
            1 << 19,
            Duration::from_secs(1),
            Path::new("/nonexistent/state"),
        );
        assert!(!b.ours(0));
        assert!(!b.ours(240 + 480 + (1 << 20)));
        assert!(b.ours((1 << 19) + 240));
        assert_eq!(b.lock, Path::new("/nonexistent/state.lock"));
    }
}
