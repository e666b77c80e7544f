//! OPNsense gateway probe: asks OPNsense's own gateway monitoring (dpinger) whether gateways
//! are up, instead of pinging them a second time.
//!
//! It runs `configctl interface gateways status` through [`crate::exec::run`]. That configd
//! action (opnsense/core `actions_interface.conf [gateways.status]`, uncached) runs
//! `src/opnsense/scripts/routes/gateway_status.php`, which prints one JSON object keyed by
//! gateway name: `{"WAN_GW":{"name":"WAN_GW","address":"192.0.2.1","status":"none",
//! "status_translated":"Online","loss":"0.0 %","delay":"4.1 ms","stddev":"0.3 ms",
//! "monitor":"192.0.2.1"}}` (`[]` when there are no gateways: PHP's json_encode of an empty
//! array). `status` is one of `none` (Online), `down`, `force_down`, `delay`, `loss`,
//! `delay+loss`, anything else being "Pending".
//!
//! A gateway without dpinger data is reported as `none` ("Online") with `monitor` = `~`
//! (same script), so "Online" alone would pass instantly at boot: a gateway passes only when it
//! is monitored (`monitor` is neither `~` nor empty) and its status is `none`, or `delay` /
//! `loss` / `delay+loss` when the probe's `accept` list allows them. With no gateway named
//! (`target = "all"`), every monitored gateway must pass, and at least one must be monitored.

use super::{ProbeFuture, Prober};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The configctl arguments of the gateway status action.
pub const STATUS_ARGS: [&str; 3] = ["interface", "gateways", "status"];

/// Statuses the `accept` key may add to `none`.
pub use crate::config::GATEWAY_ACCEPTABLE as ACCEPTABLE;

/// One gateway as gateway_status.php prints it (only the fields read here).
#[derive(Debug, Deserialize)]
struct Gateway {
    #[serde(default)]
    status: String,
    #[serde(default)]
    monitor: String,
    #[serde(default)]
    delay: String,
    #[serde(default)]
    loss: String,
}

/// Checks the named gateways (all monitored ones when `gateways` is empty) once per attempt.
#[derive(Debug, Clone)]
pub struct OpnsenseGatewayProber {
    argv: Vec<String>,
    gateways: Vec<String>,
    accept_delay: bool,
    accept_loss: bool,
    timeout: Duration,
}

impl OpnsenseGatewayProber {
    /// `accept` holds entries of [`ACCEPTABLE`] (validated by the config); `timeout` bounds the
    /// configctl call (the runner enforces the same bound on the whole attempt).
    pub fn new(configctl: &str, gateways: Vec<String>, accept: &[String], timeout: Duration) -> Self {
        let mut argv = vec![configctl.to_string()];
        argv.extend(STATUS_ARGS.iter().map(|s| s.to_string()));
        OpnsenseGatewayProber {
            argv,
            gateways,
            accept_delay: accept.iter().any(|a| a == "delay"),
            accept_loss: accept.iter().any(|a| a == "loss"),
            timeout,
        }
    }

    fn status_ok(&self, status: &str) -> bool {
        match status {
            "none" => true,
            "delay" => self.accept_delay,
            "loss" => self.accept_loss,
            "delay+loss" => self.accept_delay && self.accept_loss,
            _ => false,
        }
    }

    /// Ok when every checked gateway passes; otherwise the first reason, naming the gateway.
    fn evaluate(&self, stdout: &str) -> Result<(), String> {
        let bad = |e: String| {
            let head: String = stdout.trim().chars().take(80).collect();
            format!("configctl gateway status is not the expected JSON ({e}): {head:?}")
        };
        // An object keyed by name, or `[]` when there are no gateways.
        let value: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|e| bad(e.to_string()))?;
        let all: BTreeMap<String, Gateway> = match value {
            serde_json::Value::Array(a) if a.is_empty() => BTreeMap::new(),
            v => serde_json::from_value(v).map_err(|e| bad(e.to_string()))?,
        };
        let monitored = |g: &Gateway| !g.monitor.is_empty() && g.monitor != "~";
        let check = |name: &str, g: &Gateway| -> Result<(), String> {
            if !monitored(g) {
                return Err(format!("{name}: not monitored (enable gateway monitoring in OPNsense)"));
            }
            if self.status_ok(&g.status) {
                Ok(())
            } else {
                Err(format!("{name}: status {} (delay {}, loss {})", g.status, g.delay, g.loss))
            }
        };
        if self.gateways.is_empty() {
            let mut checked = 0;
            for (name, g) in all.iter().filter(|(_, g)| monitored(g)) {
                check(name, g)?;
                checked += 1;
            }
            if checked == 0 {
                return Err("no monitored gateway in OPNsense's gateway status".into());
            }
            return Ok(());
        }
        for name in &self.gateways {
            match all.get(name) {
                Some(g) => check(name, g)?,
                None => return Err(format!("{name}: no such gateway in OPNsense's gateway status")),
            }
        }
        Ok(())
    }
}

impl Prober for OpnsenseGatewayProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let out = crate::exec::run(&self.argv, self.timeout).await?;
            if !out.success() {
                return Err(format!("configctl interface gateways status: {}", out.describe()));
            }
            self.evaluate(&out.stdout)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prober(gateways: &[&str], accept: &[&str]) -> OpnsenseGatewayProber {
        OpnsenseGatewayProber::new(
            "/usr/local/sbin/configctl",
            gateways.iter().map(|s| s.to_string()).collect(),
            &accept.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Duration::from_secs(1),
        )
    }

    fn gw(name: &str, status: &str, monitor: &str) -> String {
        format!(
            r#""{name}":{{"name":"{name}","address":"192.0.2.1","status":"{status}","status_translated":"x","loss":"0.0 %","delay":"4.1 ms","stddev":"0.3 ms","monitor":"{monitor}"}}"#
        )
    }

    #[test]
    fn online_and_monitored_passes() {
        let out = format!("{{{}}}", gw("WAN_GW", "none", "192.0.2.1"));
        assert_eq!(prober(&["WAN_GW"], &[]).evaluate(&out), Ok(()));
    }

    #[test]
    fn unmonitored_online_does_not_pass() {
        let out = format!("{{{}}}", gw("WAN_GW", "none", "~"));
        let err = prober(&["WAN_GW"], &[]).evaluate(&out).unwrap_err();
        assert!(err.contains("not monitored"), "{err}");
    }

    #[test]
    fn delay_and_loss_pass_only_when_accepted() {
        for (status, accept, ok) in [
            ("delay", &[][..], false),
            ("delay", &["delay"][..], true),
            ("loss", &["delay"][..], false),
            ("loss", &["loss"][..], true),
            ("delay+loss", &["loss"][..], false),
            ("delay+loss", &["delay", "loss"][..], true),
            ("down", &["delay", "loss"][..], false),
            ("force_down", &["delay", "loss"][..], false),
            ("pending", &["delay", "loss"][..], false),
        ] {
            let out = format!("{{{}}}", gw("WAN_GW", status, "192.0.2.1"));
            assert_eq!(prober(&["WAN_GW"], accept).evaluate(&out).is_ok(), ok, "{status} {accept:?}");
        }
    }

    #[test]
    fn all_checks_every_monitored_gateway_and_skips_unmonitored() {
        let out = format!(
            "{{{},{},{}}}",
            gw("WAN_GW", "none", "192.0.2.1"),
            gw("WAN2_GW", "none", "198.51.100.1"),
            gw("LAN_GW", "none", "~")
        );
        assert_eq!(prober(&[], &[]).evaluate(&out), Ok(()));
        let out =
            format!("{{{},{}}}", gw("WAN_GW", "none", "192.0.2.1"), gw("WAN2_GW", "down", "198.51.100.1"));
        let err = prober(&[], &[]).evaluate(&out).unwrap_err();
        assert!(err.starts_with("WAN2_GW: status down"), "{err}");
    }

    #[test]
    fn all_with_nothing_monitored_fails() {
        let out = format!("{{{}}}", gw("WAN_GW", "none", "~"));
        assert!(prober(&[], &[]).evaluate(&out).is_err());
        assert!(prober(&[], &[]).evaluate("[]\n").is_err());
    }

    #[test]
    fn missing_gateway_and_garbage_fail_with_a_reason() {
        let out = format!("{{{}}}", gw("WAN_GW", "none", "192.0.2.1"));
        let err = prober(&["OTHER_GW"], &[]).evaluate(&out).unwrap_err();
        assert!(err.contains("OTHER_GW: no such gateway"), "{err}");
        let err = prober(&["WAN_GW"], &[]).evaluate("Execute error").unwrap_err();
        assert!(err.contains("not the expected JSON"), "{err}");
    }
}
