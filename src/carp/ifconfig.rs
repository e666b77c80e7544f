//! CARP states as FreeBSD's ifconfig(8) prints them (FreeBSD and OPNsense backends).
//!
//! sbin/ifconfig/ifcarp.c `carp_status()` prints, for each VHID on an interface,
//! `"\tcarp: %s vhid %d advbase %d advskew %d"` with the state from `CARP_STATES` (INIT,
//! BACKUP, MASTER; sys/netinet/ip_carp.h), optionally followed by ` key "..."`; newer versions
//! print `peer`/`peer6` on following lines. An interface's block starts with its header line
//! `igb0: flags=8843<UP,...> metric 0 mtu 1500` at column 0.

use super::{BackendError, CarpSeen};
use crate::exec;
use crate::machine::CarpState;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Parses `ifconfig` output into every CARP instance it lists. A `carp:` line that does not
/// have the documented shape is an error naming the line, never skipped.
pub fn parse(stdout: &str) -> Result<Vec<CarpSeen>, BackendError> {
    let mut out = Vec::new();
    let mut iface: Option<&str> = None;
    for line in stdout.lines() {
        if !line.starts_with([' ', '\t']) {
            // A header: "igb0: flags=...". Anything else at column 0 ends the block.
            iface = line.split_once(": flags=").map(|(name, _)| name).filter(|n| !n.is_empty());
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("carp: ") else { continue };
        let bad = |why: &str| BackendError(format!("ifconfig: {why} in line {:?}", line.trim()));
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (state, vhid) = match words.as_slice() {
            [state, "vhid", vhid, "advbase", _, "advskew", _, ..] => (*state, *vhid),
            _ => return Err(bad("expected \"carp: STATE vhid N advbase N advskew N\"")),
        };
        let state = CarpState::parse(state).ok_or_else(|| bad("unknown CARP state"))?;
        let vhid =
            vhid.parse::<u16>().ok().filter(|v| (1..=255).contains(v)).ok_or_else(|| bad("bad vhid"))?;
        let iface = iface.ok_or_else(|| bad("a carp line outside any interface"))?;
        out.push(CarpSeen { vhid, iface: iface.to_string(), state });
    }
    Ok(out)
}

/// Runs `ifconfig` (every interface) and parses it.
pub async fn read(ifconfig: &str, timeout: Duration) -> Result<Vec<CarpSeen>, BackendError> {
    let out = exec::run(&[ifconfig.to_string()], timeout)
        .await
        .map_err(|e| BackendError(format!("ifconfig: {e}")))?;
    if !out.success() {
        return Err(BackendError(format!("{ifconfig} failed: {}", out.describe())));
    }
    parse(&out.stdout)
}

/// Remembers the last failure to read CARP states, so a broken `ifconfig` is logged at warn
/// when it starts failing (or fails differently), not at every reconcile tick.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reported(Arc<Mutex<Option<String>>>);

impl Reported {
    /// Logs `e` at warn when it is new, at debug when it repeats.
    pub(crate) fn failed(&self, what: &str, e: &BackendError) {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(e.0.as_str()) {
            tracing::debug!(error = %e, "cannot read {what}; still reporting them as unknown");
        } else {
            tracing::warn!(error = %e, "cannot read {what}; reporting them as unknown");
            *last = Some(e.0.clone());
        }
    }
    pub(crate) fn ok(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// CARP states for an observation: an ifconfig failure leaves them unknown (logged) rather than
/// failing the reading of the hold, which matters more.
pub(crate) async fn observe(ifconfig: &str, timeout: Duration, reported: &Reported) -> Option<Vec<CarpSeen>> {
    match read(ifconfig, timeout).await {
        Ok(v) => {
            reported.ok();
            Some(v)
        }
        Err(e) => {
            reported.failed("CARP states", &e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of FreeBSD 14 `ifconfig` on a CARP pair (addresses from documentation ranges).
    const SAMPLE: &str =
        "igb0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\
        \toptions=4e527bb<RXCSUM,TXCSUM,VLAN_MTU>\n\
        \tether 00:00:5e:00:53:01\n\
        \tinet 192.0.2.2 netmask 0xffffff00 broadcast 192.0.2.255\n\
        \tinet 192.0.2.1 netmask 0xffffff00 broadcast 192.0.2.255 vhid 1\n\
        \tcarp: MASTER vhid 1 advbase 1 advskew 0\n\
        \t      peer 224.0.0.18 peer6 ff02::12\n\
        \tcarp: BACKUP vhid 2 advbase 1 advskew 100 key \"secret\"\n\
        \tmedia: Ethernet autoselect (1000baseT <full-duplex>)\n\
        \tstatus: active\n\
        lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384\n\
        \tinet 127.0.0.1 netmask 0xff000000\n\
        igb1: flags=8802<BROADCAST,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\
        \tcarp: INIT vhid 3 advbase 1 advskew 0\n";

    #[test]
    fn reads_every_carp_line_under_its_interface() {
        let seen = parse(SAMPLE).unwrap();
        let short: Vec<(u16, &str, &str)> =
            seen.iter().map(|c| (c.vhid, c.iface.as_str(), c.state.as_str())).collect();
        assert_eq!(short, vec![(1, "igb0", "MASTER"), (2, "igb0", "BACKUP"), (3, "igb1", "INIT")]);
        assert_eq!(parse("lo0: flags=8049<UP> metric 0 mtu 16384\n\tinet 127.0.0.1\n").unwrap(), vec![]);
    }

    #[test]
    fn a_malformed_carp_line_is_an_error_naming_it() {
        let e = parse("igb0: flags=1<UP> mtu 1500\n\tcarp: SLEEPY vhid 1 advbase 1 advskew 0\n").unwrap_err();
        assert!(e.0.contains("unknown CARP state") && e.0.contains("SLEEPY"), "{e}");
        let e = parse("igb0: flags=1<UP> mtu 1500\n\tcarp: MASTER vhid 0 advbase 1 advskew 0\n").unwrap_err();
        assert!(e.0.contains("bad vhid"), "{e}");
        let e = parse("igb0: flags=1<UP> mtu 1500\n\tcarp: MASTER\n").unwrap_err();
        assert!(e.0.contains("expected"), "{e}");
        let e = parse("\tcarp: MASTER vhid 1 advbase 1 advskew 0\n").unwrap_err();
        assert!(e.0.contains("outside any interface"), "{e}");
    }
}
