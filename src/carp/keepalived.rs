//! The `keepalived` backend (Linux VRRP): failbackd writes a keepalived `track_file`; keepalived
//! re-reads it when it changes and adds value × weight to the instance's priority.
//!
//! keepalived.conf(5), "VRRP track files" (keepalived 2.2): the file holds one integer; with a
//! non-zero weight the value is multiplied by the weight and added to the priority, the
//! effective priority being limited to [1,254]; a result below -253 puts the instance in FAULT.
//! So failbackd writes `0` when released and `held_value` (default -253, the lowest value that
//! still leaves the instance in BACKUP rather than FAULT, with `weight 1`) while holding. A member
//! of a sync group needs `sync_group_tracking_weight` on the group, or the weight is ignored.
//!
//! ```text
//! track_file failbackd {
//!     file "/run/failbackd/hold"
//!     weight 1
//!     init_file -253          # start held until failbackd says otherwise
//! }
//! vrrp_instance WAN { ... track_file { failbackd } }
//! ```
//!
//! The file is replaced atomically ([`crate::atomic`]), so keepalived never reads a
//! half-written value.
//!
//! `observe`: the hold is the track file's value (< 0 held; no file yet: unknown, keepalived
//! uses `init_file`). The VRRP state of each configured instance comes from the OS, not from
//! keepalived's notify scripts: keepalived adds an instance's `virtual_ipaddress` entries to
//! its interface on becoming MASTER and removes them on leaving it (keepalived
//! vrrp/vrrp.c `vrrp_state_become_master` / `vrrp_restore_interface`), so `ip -j addr show`
//! tells MASTER (the address is on the interface) from BACKUP (the interface exists without
//! it). An interface that does not exist is reported as INIT: the instance cannot run there
//! (keepalived would be in FAULT, which CARP's states do not have).

use super::{within, Backend, BackendError, BackendFuture, CarpSeen, Observation};
use crate::config::{KeepalivedConfig, VrrpInstance};
use crate::exec;
use crate::machine::CarpState;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::config::backend::{DEFAULT_HELD_VALUE, DEFAULT_IP};

#[derive(Debug, Clone)]
pub struct KeepalivedBackend {
    track_file: PathBuf,
    held_value: i32,
    ip: String,
    instances: Vec<VrrpInstance>,
    timeout: Duration,
    vrrp_errors: super::ifconfig::Reported,
}

/// Parses a track file's content as keepalived does: one integer (surrounding blanks allowed).
pub fn parse_track_value(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("not an integer: {:?}", text.trim().chars().take(40).collect::<String>()))
}

/// Writes `value` to `path` atomically.
pub async fn write_atomic(path: &Path, value: i64) -> Result<(), String> {
    crate::atomic::write(path, format!("{value}\n").as_bytes()).await
}

/// Every interface `ip -j addr show` lists, with its addresses (iproute2's JSON: an array of
/// `{"ifname": ..., "addr_info": [{"local": ...}, ...]}`).
pub fn parse_ip_addr(stdout: &str) -> Result<Vec<(String, Vec<IpAddr>)>, BackendError> {
    #[derive(serde::Deserialize)]
    struct Link {
        ifname: String,
        #[serde(default)]
        addr_info: Vec<Addr>,
    }
    #[derive(serde::Deserialize)]
    struct Addr {
        local: Option<String>,
    }
    let links: Vec<Link> = serde_json::from_str(stdout.trim()).map_err(|e| {
        BackendError(format!(
            "ip -j addr show printed {:?}: {e}",
            stdout.trim().chars().take(120).collect::<String>()
        ))
    })?;
    Ok(links
        .into_iter()
        .map(|l| {
            // A `local` that is not an address (none seen in practice) cannot match an instance.
            let addrs = l.addr_info.iter().filter_map(|a| a.local.as_deref()?.parse().ok()).collect();
            (l.ifname, addrs)
        })
        .collect())
}

/// Each instance's state from the interfaces: MASTER (address present), BACKUP (interface
/// without it), INIT (no such interface).
pub fn vrrp_states(instances: &[VrrpInstance], links: &[(String, Vec<IpAddr>)]) -> Vec<CarpSeen> {
    instances
        .iter()
        .map(|i| {
            let state = match links.iter().find(|(name, _)| *name == i.interface) {
                Some((_, addrs)) if addrs.contains(&i.address) => CarpState::Master,
                Some(_) => CarpState::Backup,
                None => CarpState::Init,
            };
            CarpSeen { vhid: i.vhid, iface: i.interface.clone(), state }
        })
        .collect()
}

impl KeepalivedBackend {
    pub fn new(track_file: PathBuf, held_value: i32) -> Self {
        KeepalivedBackend {
            track_file,
            held_value,
            ip: DEFAULT_IP.into(),
            instances: Vec::new(),
            timeout: crate::config::backend::DEFAULT_BACKEND_TIMEOUT,
            vrrp_errors: Default::default(),
        }
    }

    pub fn from_config(c: &KeepalivedConfig) -> Self {
        KeepalivedBackend {
            track_file: c.track_file.clone(),
            held_value: c.held_value,
            ip: c.ip.clone(),
            instances: c.instances.clone(),
            timeout: c.timeout,
            vrrp_errors: Default::default(),
        }
    }

    /// Reads VRRP states of `instances` with `ip` (argv[0]) on each `observe`.
    pub fn with_instances(mut self, ip: String, instances: Vec<VrrpInstance>) -> Self {
        self.ip = ip;
        self.instances = instances;
        self
    }

    async fn write(&self, value: i64) -> Result<(), BackendError> {
        write_atomic(&self.track_file, value).await.map_err(BackendError)
    }

    /// The track file's value; `None` when it does not exist yet.
    async fn read(&self) -> Result<Option<i64>, BackendError> {
        match tokio::fs::read_to_string(&self.track_file).await {
            // No file yet: keepalived uses init_file's value; we cannot tell.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError(format!("reading {}: {e}", self.track_file.display()))),
            Ok(text) => parse_track_value(&text)
                .map(Some)
                .map_err(|e| BackendError(format!("{}: {e}", self.track_file.display()))),
        }
    }

    async fn vrrp(&self) -> Result<Option<Vec<CarpSeen>>, BackendError> {
        if self.instances.is_empty() {
            return Ok(None);
        }
        let argv: Vec<String> = [self.ip.as_str(), "-j", "addr", "show"].map(String::from).to_vec();
        let out = exec::run(&argv, self.timeout)
            .await
            .map_err(|e| BackendError(format!("ip -j addr show: {e}")))?;
        if !out.success() {
            return Err(BackendError(format!("{} -j addr show failed: {}", self.ip, out.describe())));
        }
        Ok(Some(vrrp_states(&self.instances, &parse_ip_addr(&out.stdout)?)))
    }

    async fn measure(&self) -> Result<Observation, BackendError> {
        let value = self.read().await?;
        let carp = match self.vrrp().await {
            Ok(c) => {
                self.vrrp_errors.ok();
                c
            }
            Err(e) => {
                self.vrrp_errors.failed("VRRP states", &e);
                None
            }
        };
        Ok(Observation {
            held: value.map(|v| v < 0),
            foreign: false,
            demoted: value.map(|v| v < 0),
            demotion: value,
            others: Vec::new(),
            carp,
        })
    }

    fn what(&self) -> String {
        if self.instances.is_empty() {
            format!("track file {}", self.track_file.display())
        } else {
            format!("track file {}, {} -j addr show", self.track_file.display(), self.ip)
        }
    }
}

impl Backend for KeepalivedBackend {
    fn name(&self) -> &'static str {
        "keepalived"
    }
    fn demote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            within("demote", self.timeout, &self.what(), self.write(i64::from(self.held_value))).await
        })
    }
    fn promote(&self) -> BackendFuture<'_, ()> {
        Box::pin(async move { within("promote", self.timeout, &self.what(), self.write(0)).await })
    }
    fn observe(&self) -> BackendFuture<'_, Observation> {
        Box::pin(async move { within("observe", self.timeout, &self.what(), self.measure()).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_held_and_released_values_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hold");
        let b = KeepalivedBackend::new(path.clone(), DEFAULT_HELD_VALUE);
        assert_eq!(b.demoted().await, Ok(None));
        b.demote().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "-253\n");
        assert_eq!(b.demoted().await, Ok(Some(true)));
        b.promote().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
        assert_eq!(b.demoted().await, Ok(Some(false)));
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn reads_ip_json_and_derives_states() {
        let links = parse_ip_addr(
            r#"[{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.10","prefixlen":32}]},{"ifname":"eth1"}]"#,
        )
        .unwrap();
        assert_eq!(links[1], ("eth1".to_string(), vec![]));
        let inst = |vhid, interface: &str| VrrpInstance {
            vhid,
            interface: interface.into(),
            address: "192.0.2.10".parse().unwrap(),
        };
        let states: Vec<CarpState> =
            vrrp_states(&[inst(1, "eth0"), inst(2, "eth1"), inst(3, "eth2")], &links)
                .into_iter()
                .map(|c| c.state)
                .collect();
        assert_eq!(states, vec![CarpState::Master, CarpState::Backup, CarpState::Init]);
        assert!(parse_ip_addr("Device \"x\" does not exist.")
            .unwrap_err()
            .0
            .contains("ip -j addr show printed"));
    }

    #[tokio::test]
    async fn unwritable_directory_is_an_error_with_the_path() {
        let b = KeepalivedBackend::new(PathBuf::from("/nonexistent-failbackd/hold"), -10);
        let e = b.demote().await.unwrap_err();
        assert!(e.0.contains("/nonexistent-failbackd/hold"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("garbage"), "x").unwrap();
        let g = KeepalivedBackend::new(dir.path().join("garbage"), -10);
        assert!(g.demoted().await.unwrap_err().0.contains("not an integer"));
    }
}
