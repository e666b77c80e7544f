//! The `opnsense` backend: demotes through OPNsense's own levers, via `configctl` (argv, through
//! [`crate::exec`]).
//!
//! Default mode, `service_status` (OPNsense's documented lever; opnsense/core
//! `src/sbin/carp_service_status`, run by configd for `configctl interface update carp
//! service_status`, see `src/opnsense/service/conf/actions.d/actions_interface.conf`
//! `[update.carp.service_status]`): every executable in `/usr/local/etc/rc.carp_service_status.d/`
//! is run; if any exits non-zero and the 2^20 bit (`SRV_FAIL_FACTOR`) of
//! `net.inet.carp.demotion` is clear, 2^20 is added; if all pass and the bit is set, it is
//! subtracted. No config.xml write, and other demotion sources are left alone. failbackd's check
//! there is `failbackd ready` (rc.d/carp-service-status), which exits non-zero while the daemon
//! holds. So `demote`/`promote` only re-run the evaluation and verify the bit afterwards with
//! `configctl interface show carp` (`carp_global_status.php`: JSON `demotion`, `maintenancemode`).
//! The same evaluation runs at boot from `rc.syshook.d/early/90-carp`, before any CARP VIP
//! exists, which is what makes the node come up demoted (`failbackd ready` answers from the
//! state file or `hold_on_boot` then).
//!
//! Compatibility mode, `maintenance` (the forum script's lever): `configctl interface
//! carp_set_status maintenance` runs `src/opnsense/scripts/interfaces/carp_set_status.php`, a
//! TOGGLE of the config.xml key `virtualip_carp_maintenancemode`: entering adds 240 to the
//! demotion, leaving sets the demotion back to the `net.inet.carp.demotion` tunable (0 unless
//! set), which wipes every other demotion source (kernel interface-down 240s, the 2^20 service
//! bit); each call writes config.xml (a config history entry, and an XMLRPC sync if enabled).
//! So the state is read first and the toggle is only sent when it differs, and its JSON `action`
//! is checked. Maintenance may also be an operator's (or persist in config.xml across a boot):
//! failbackd writes a marker (atomically, [`marker_path`]) after it entered maintenance itself
//! and removes it when it left; maintenance on without the marker is *foreign*: `demote` relies
//! on it without toggling, `promote` never leaves it. A marker whose maintenance is gone (an
//! operator left it) is removed at the next reading, so a later operator maintenance is not
//! mistaken for failbackd's. config.xml's flag survives a reboot, so the marker must too: it is
//! kept on persistent storage, and it stays valid across boots for exactly as long as the flag
//! is on (a reboot during a hold leaves the node in failbackd's maintenance, which the next
//! boot's failback leaves at its release). The boot identity matters to the state file only.
//!
//! `demote` and `promote` hold the lock `<state_file>.lock` (as the freebsd backend does), so
//! the daemon and the hook's fail-safe never both read "off" and both toggle (enter, leave).
//!
//! `observe` reads `configctl interface show carp` and the CARP states from `ifconfig`
//! ([`super::ifconfig`]; OPNsense is FreeBSD). A negative demotion is an error, never "held".

use super::{check_demotion_value, within, Backend, BackendError, BackendFuture, Observation};
use crate::config::{OpnsenseConfig, OpnsenseMode};
use crate::exec;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::config::backend::{DEFAULT_CONFIGCTL, SERVICE_STATUS_BIT};

/// What carp_set_status.php's entering adds to the demotion (opnsense/core
/// src/opnsense/scripts/interfaces/carp_set_status.php: `set_single_sysctl(..., '240')`).
const MAINTENANCE_DEMOTION: i64 = 240;

#[derive(Debug, Clone)]
pub struct OpnsenseBackend {
    mode: OpnsenseMode,
    configctl: String,
    ifconfig: String,
    timeout: Duration,
    marker: PathBuf,
    lock: PathBuf,
    carp_errors: super::ifconfig::Reported,
}

/// What `configctl interface show carp` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarpGlobal {
    pub demotion: i64,
    pub maintenance: bool,
}

/// Parses `configctl interface show carp` (carp_global_status.php). `demotion` comes from
/// `get_single_sysctl`, so it is a JSON string; a number is accepted too.
pub fn parse_show_carp(stdout: &str) -> Result<CarpGlobal, BackendError> {
    let bad = |why: String| {
        BackendError(format!(
            "configctl interface show carp: {why} in {:?}",
            stdout.trim().chars().take(120).collect::<String>()
        ))
    };
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|e| bad(e.to_string()))?;
    let demotion = match v.get("demotion") {
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| bad("no integer `demotion`".into()))?;
    let maintenance = match v.get("maintenancemode") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Null) | None => false,
        Some(other) => return Err(bad(format!("unexpected `maintenancemode` {other}"))),
    };
    Ok(CarpGlobal { demotion, maintenance })
}

/// Parses carp_set_status.php's reply: `{"status":"ok","action":"enter_maintenance"}`.
pub fn parse_set_status(stdout: &str) -> Result<String, BackendError> {
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        BackendError(format!(
            "carp_set_status printed {:?}: {e}",
            stdout.trim().chars().take(120).collect::<String>()
        ))
    })?;
    if v.get("status").and_then(|s| s.as_str()) != Some("ok") {
        return Err(BackendError(format!("carp_set_status failed: {}", stdout.trim())));
    }
    v.get("action")
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .ok_or_else(|| BackendError(format!("carp_set_status printed no action: {}", stdout.trim())))
}

/// Where config.xml's maintenance flag is recorded as failbackd's: `<state_file>.maintenance`,
/// unless the state file is on a file system cleared at boot (/var/run, /run), where the marker
/// would vanish while the flag stays and failbackd's own maintenance would read as foreign
/// after a reboot, never to be left; then `/var/db/failbackd/<state file name>.maintenance`.
pub fn marker_path(state_file: &Path) -> PathBuf {
    let volatile = ["/var/run/", "/run/"].iter().any(|d| state_file.starts_with(d));
    match state_file.file_name() {
        Some(name) if volatile => {
            let mut name = name.to_owned();
            name.push(".maintenance");
            Path::new(PERSISTENT_MARKER_DIR).join(name)
        }
        _ => super::beside(state_file, ".maintenance"),
    }
}

/// Persistent storage for the marker when the state file is volatile (FreeBSD's /var/db).
pub const PERSISTENT_MARKER_DIR: &str = "/var/db/failbackd";

impl OpnsenseBackend {
    /// `state_file` is the daemon's; the maintenance marker is at [`marker_path`].
    pub fn new(
        mode: OpnsenseMode,
        configctl: String,
        ifconfig: String,
        timeout: Duration,
        state_file: &Path,
    ) -> Self {
        OpnsenseBackend {
            mode,
            configctl,
            ifconfig,
            timeout,
            marker: marker_path(state_file),
            lock: super::beside(state_file, ".lock"),
            carp_errors: Default::default(),
        }
    }

    pub fn from_config(c: &OpnsenseConfig, state_file: &Path) -> Self {
        Self::new(c.mode, c.configctl.clone(), c.ifconfig.clone(), c.timeout, state_file)
    }

    fn what(&self) -> String {
        format!("{} interface ...", self.configctl)
    }

    fn marked(&self) -> bool {
        self.marker.exists()
    }

    async fn mark(&self, ours: bool) -> Result<(), BackendError> {
        let r = if ours {
            if let Some(dir) = self.marker.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| BackendError(format!("maintenance marker: {}: {e}", dir.display())))?;
            }
            crate::atomic::write(&self.marker, b"failbackd entered CARP maintenance mode\n").await
        } else {
            crate::atomic::remove(&self.marker).await
        };
        r.map_err(|e| BackendError(format!("maintenance marker: {e}")))
    }

    /// `show`, with a stale marker (maintenance left by someone else) removed.
    async fn show_checked(&self) -> Result<CarpGlobal, BackendError> {
        let st = self.show().await?;
        if !st.maintenance && self.marked() {
            tracing::info!(marker = %self.marker.display(), "maintenance mode was left outside failbackd; removing the marker");
            self.mark(false).await?;
        }
        Ok(st)
    }

    async fn configctl(&self, args: &[&str]) -> Result<String, BackendError> {
        let mut argv = vec![self.configctl.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let what = args.join(" ");
        let out = exec::run(&argv, self.timeout)
            .await
            .map_err(|e| BackendError(format!("configctl {what}: {e}")))?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(BackendError(format!("configctl {what} failed: {}", out.describe())))
        }
    }

    /// `configctl interface show carp`, with the demotion checked (not negative, in range).
    pub async fn show(&self) -> Result<CarpGlobal, BackendError> {
        let st = parse_show_carp(&self.configctl(&["interface", "show", "carp"]).await?)?;
        check_demotion_value(st.demotion)?;
        Ok(st)
    }

    /// Re-runs OPNsense's service checks and reports whether the 2^20 bit is set afterwards.
    async fn evaluate(&self) -> Result<CarpGlobal, BackendError> {
        self.configctl(&["interface", "update", "carp", "service_status"]).await?;
        self.show().await
    }

    /// Maintenance mode: toggles only when the state differs from `want`, and only ever leaves
    /// a maintenance failbackd entered (the marker).
    async fn set_maintenance(&self, want: bool) -> Result<(), BackendError> {
        let st = self.show_checked().await?;
        if st.maintenance == want {
            if want && !self.marked() {
                tracing::info!("CARP maintenance mode is already on (entered outside failbackd): relying on it, not taking it over");
            }
            return Ok(()); // never toggle blindly: already where we want it
        }
        if !want && !self.marked() {
            tracing::warn!(
                "CARP maintenance mode was entered outside failbackd (operator or config.xml): not leaving it; \
                 the node stays demoted until it is left by hand"
            );
            return Ok(());
        }
        let expected = if want { "enter_maintenance" } else { "leave_maintenance" };
        let action =
            parse_set_status(&self.configctl(&["interface", "carp_set_status", "maintenance"]).await?)?;
        if action != expected {
            // Someone toggled between our read and our call; the next retry re-reads.
            return Err(BackendError(format!(
                "carp_set_status did {action} instead of {expected} (changed concurrently); will re-read and retry"
            )));
        }
        // After the toggle, not before: a crash in between leaves our maintenance looking
        // foreign (kept, visible), never an operator's looking like ours.
        self.mark(want).await?;
        let now = self.show().await?;
        if now.maintenance != want {
            return Err(BackendError(format!(
                "maintenance mode is still {} after {action}",
                now.maintenance
            )));
        }
        Ok(())
    }

    async fn measure(&self) -> Result<Observation, BackendError> {
        let st = match self.mode {
            OpnsenseMode::Maintenance => self.show_checked().await?,
            OpnsenseMode::ServiceStatus => self.show().await?,
        };
        let mut others = Vec::new();
        let (held, foreign, ours) = match self.mode {
            OpnsenseMode::Maintenance => {
                let foreign = st.maintenance && !self.marked();
                (st.maintenance, foreign, if st.maintenance && !foreign { MAINTENANCE_DEMOTION } else { 0 })
            }
            OpnsenseMode::ServiceStatus => {
                // The bit is every service check's; whether it is failbackd's depends on the
                // daemon's phase (machine::attribute_shared_hold). An operator's maintenance is
                // foreign here too.
                let bit = st.demotion & SERVICE_STATUS_BIT != 0;
                (bit, st.maintenance, if bit { SERVICE_STATUS_BIT } else { 0 })
            }
        };
        let mut rest = st.demotion - ours;
        if st.maintenance && (self.mode == OpnsenseMode::ServiceStatus || foreign) {
            others.push("maintenance mode (entered outside failbackd)".to_string());
            rest = (rest - MAINTENANCE_DEMOTION).max(0);
        }
        others.extend(super::other_sources(rest.max(0)));
        Ok(Observation {
            held: Some(held),
            foreign,
            demoted: Some(st.demotion > 0 || st.maintenance),
            demotion: Some(st.demotion),
            others,
            carp: super::ifconfig::observe(&self.ifconfig, self.timeout, &self.carp_errors).await,
        })
    }
}

impl Backend for OpnsenseBackend {
    fn name(&self) -> &'static str {
        "opnsense"
    }

    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { within("demote", self.timeout, &self.what(), self.demote_now()).await })
    }

    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { within("promote", self.timeout, &self.what(), self.promote_now()).await })
    }

    fn observe(&self) -> BackendFuture<'_, Observation> {
        Box::pin(async move { within("observe", self.timeout, &self.what(), self.measure()).await })
    }
}

impl OpnsenseBackend {
    async fn demote_now(&self) -> Result<(), BackendError> {
        // The daemon and the hook's fail-safe must not both read "off" and both toggle.
        let _lock = super::lock::exclusive(&self.lock, self.timeout).await?;
        match self.mode {
            OpnsenseMode::Maintenance => self.set_maintenance(true).await,
            OpnsenseMode::ServiceStatus => {
                let st = self.evaluate().await?;
                if st.demotion & SERVICE_STATUS_BIT != 0 {
                    Ok(())
                } else {
                    Err(BackendError(format!(
                            "carp service_status ran but net.inet.carp.demotion is {} (2^20 bit clear): is \
                             rc.d/carp-service-status installed as /usr/local/etc/rc.carp_service_status.d/failbackd \
                             and executable?",
                            st.demotion
                        )))
                }
            }
        }
    }

    async fn promote_now(&self) -> Result<(), BackendError> {
        let _lock = super::lock::exclusive(&self.lock, self.timeout).await?;
        match self.mode {
            OpnsenseMode::Maintenance => self.set_maintenance(false).await,
            OpnsenseMode::ServiceStatus => {
                let st = self.evaluate().await?;
                if st.demotion & SERVICE_STATUS_BIT != 0 {
                    // Our check passes (we are releasing), so another check in
                    // rc.carp_service_status.d fails: not failbackd's hold to remove.
                    tracing::warn!(
                            demotion = st.demotion,
                            "released, but another check in /usr/local/etc/rc.carp_service_status.d still fails: \
                             the node stays demoted by 2^20"
                        );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_carp_as_opnsense_prints_it() {
        let st =
            parse_show_carp(r#"{"demotion":"1048576","allow":"1","maintenancemode":false,"status_msg":""}"#)
                .unwrap();
        assert_eq!(st, CarpGlobal { demotion: 1 << 20, maintenance: false });
        let st = parse_show_carp(r#"{"demotion":240,"maintenancemode":true}"#).unwrap();
        assert_eq!(st, CarpGlobal { demotion: 240, maintenance: true });
        assert!(parse_show_carp("Action not found").is_err());
        assert!(parse_show_carp(r#"{"demotion":"x"}"#).is_err());
    }

    /// D7: a marker beside a state file in /var/run vanished at boot while config.xml's
    /// maintenance flag stayed, so failbackd's own maintenance read as foreign for ever.
    #[test]
    fn the_marker_outlives_a_volatile_state_file() {
        assert_eq!(
            marker_path(Path::new("/var/run/failbackd.state")),
            Path::new("/var/db/failbackd/failbackd.state.maintenance")
        );
        assert_eq!(
            marker_path(Path::new("/run/failbackd/failbackd.state")),
            Path::new("/var/db/failbackd/failbackd.state.maintenance")
        );
        assert_eq!(
            marker_path(Path::new("/var/db/failbackd/failbackd.state")),
            Path::new("/var/db/failbackd/failbackd.state.maintenance")
        );
        assert_eq!(marker_path(Path::new("/x/state.json")), Path::new("/x/state.json.maintenance"));
    }

    #[test]
    fn parses_set_status_actions() {
        assert_eq!(
            parse_set_status(r#"{"status":"ok","action":"enter_maintenance"}"#).unwrap(),
            "enter_maintenance"
        );
        assert!(parse_set_status(r#"{"status":"failed"}"#).is_err());
        assert!(parse_set_status("").is_err());
    }
}
