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
//! subtracts exactly that amount and leaves what others added.
//!
//! sysctl access goes through the `sysctl(8)` command (argv, through [`crate::exec`]), not the
//! `sysctl` crate or libc: the crate forbids `unsafe`, the command is what OPNsense's own
//! scripts use, and tests can substitute a fake executable.

use super::{Backend, BackendError, BackendFuture};
use crate::exec;
use std::time::Duration;

pub const DEFAULT_SYSCTL: &str = "/sbin/sysctl";
/// 2^19: distinct from OPNsense's 2^20 service bit and far above any sum of kernel 240s.
pub const DEFAULT_DEMOTION: u32 = 1 << 19;
pub const OID: &str = "net.inet.carp.demotion";

/// The amount must be a single bit that others' adjustments do not reach: a power of two in
/// 2^16..=2^29 (sums of 240s stay below 2^16 for up to 273 interfaces; the kernel value is an
/// `int`), and not OPNsense's 2^20.
pub fn check_demotion(amount: u32) -> Result<(), String> {
    if !amount.is_power_of_two() || !((1 << 16)..=(1 << 29)).contains(&amount) {
        Err(format!("`demotion` {amount} must be a power of two between 65536 (2^16) and 536870912 (2^29)"))
    } else if i64::from(amount) == super::opnsense::SERVICE_STATUS_BIT {
        Err("`demotion` 1048576 (2^20) is OPNsense's carp_service_status bit; pick another power of two"
            .into())
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct FreebsdBackend {
    sysctl: String,
    amount: i64,
    timeout: Duration,
}

impl FreebsdBackend {
    pub fn new(sysctl: String, amount: u32, timeout: Duration) -> Self {
        FreebsdBackend { sysctl, amount: i64::from(amount), timeout }
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

    /// The current `net.inet.carp.demotion`.
    pub async fn read(&self) -> Result<i64, BackendError> {
        let out = self.sysctl(&["-n", OID]).await?;
        out.trim().parse().map_err(|_| BackendError(format!("sysctl -n {OID} printed {:?}", out.trim())))
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
}

impl Backend for FreebsdBackend {
    fn name(&self) -> &'static str {
        "freebsd"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            if self.ours(self.read().await?) {
                return Ok(()); // already in place (e.g. a restart): never add twice
            }
            self.adjust(self.amount, true).await
        })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            if !self.ours(self.read().await?) {
                return Ok(());
            }
            self.adjust(-self.amount, false).await
        })
    }
    fn demoted(&self) -> BackendFuture<'_, Option<bool>> {
        Box::pin(async move { Ok(Some(self.ours(self.read().await?))) })
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
        let b = FreebsdBackend::new("sysctl".into(), 1 << 19, Duration::from_secs(1));
        assert!(!b.ours(0));
        assert!(!b.ours(240 + 480 + (1 << 20)));
        assert!(b.ours((1 << 19) + 240));
    }
}
