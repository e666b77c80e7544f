//! `[backend]`: one typed struct per backend type, holding its keys and their defaults. The
//! table is tagged by `type`; the struct for that type is decoded with serde from the table's
//! own spanned TOML (src/config/tagged.rs, so errors keep `file:line:column`), its field list is
//! what decides which keys belong, and the checks after it validate ranges. Adding a backend is a struct, a variant and one
//! line in [`decode`]; adding a key is a field.
//!
//! The platform constants live here rather than in `carp/`, so that `config/` depends on no
//! runtime module; the backends import them from here.

use super::error::ConfigError;
use super::raw::Dur;
use super::tagged::{typed, Check};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::DeValue;
use toml::Spanned;

/// Where OPNsense installs configctl.
pub const DEFAULT_CONFIGCTL: &str = "/usr/local/sbin/configctl";
/// FreeBSD's sysctl(8).
pub const DEFAULT_SYSCTL: &str = "/sbin/sysctl";
/// FreeBSD's ifconfig(8) (OPNsense is FreeBSD: the same path).
pub const DEFAULT_IFCONFIG: &str = "/sbin/ifconfig";
/// iproute2's `ip`: Debian 12 ships /bin/ip with /sbin/ip and /usr/sbin/ip as symlinks; on
/// merged-/usr systems (Debian 13, Ubuntu, RHEL) /sbin is /usr/sbin. /sbin/ip resolves on all.
pub const DEFAULT_IP: &str = "/sbin/ip";
/// 2^19: distinct from OPNsense's 2^20 service bit and far above any sum of kernel 240s.
pub const DEFAULT_DEMOTION: u32 = 1 << 19;
/// `SRV_FAIL_FACTOR` in opnsense/core src/sbin/carp_service_status.
pub const SERVICE_STATUS_BIT: i64 = 1 << 20;
/// The keepalived track file value while holding (with `weight 1`): priority - 253, clamped to
/// 1 by keepalived, without going to FAULT.
pub const DEFAULT_HELD_VALUE: i32 = -253;
/// One budget for a whole backend operation (demote, promote, observe).
pub const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The amount must be a single bit that others' adjustments do not reach: a power of two in
/// 2^16..=2^29 (sums of 240s stay below 2^16 for up to 273 interfaces; the kernel value is an
/// `int`), and not OPNsense's 2^20.
pub fn check_demotion(amount: u32) -> Result<(), String> {
    if !amount.is_power_of_two() || !((1 << 16)..=(1 << 29)).contains(&amount) {
        Err(format!("`demotion` {amount} must be a power of two between 65536 (2^16) and 536870912 (2^29)"))
    } else if i64::from(amount) == SERVICE_STATUS_BIT {
        Err("`demotion` 1048576 (2^20) is OPNsense's carp_service_status bit; pick another power of two"
            .into())
    } else {
        Ok(())
    }
}

/// The backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// In-process, for the demo and tests.
    Simulated,
    /// User-given argv for demote, promote and (optionally) state and CARP state; no shell.
    Command(CommandConfig),
    /// OPNsense through `configctl` (src/carp/opnsense.rs).
    Opnsense(OpnsenseConfig),
    /// Plain FreeBSD carp(4) through `sysctl net.inet.carp.demotion` (src/carp/freebsd.rs).
    Freebsd(FreebsdConfig),
    /// keepalived `track_file` (src/carp/keepalived.rs).
    Keepalived(KeepalivedConfig),
}

impl BackendConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Simulated => "simulated",
            BackendConfig::Command(_) => "command",
            BackendConfig::Opnsense(_) => "opnsense",
            BackendConfig::Freebsd(_) => "freebsd",
            BackendConfig::Keepalived(_) => "keepalived",
        }
    }
}

fn default_timeout() -> Duration {
    DEFAULT_BACKEND_TIMEOUT
}
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Dur::deserialize(d).map(|d| d.0)
}
fn default_configctl() -> String {
    DEFAULT_CONFIGCTL.into()
}
fn default_sysctl() -> String {
    DEFAULT_SYSCTL.into()
}
fn default_ifconfig() -> String {
    DEFAULT_IFCONFIG.into()
}
fn default_ip() -> String {
    DEFAULT_IP.into()
}
fn default_demotion() -> u32 {
    DEFAULT_DEMOTION
}
fn default_held_value() -> i32 {
    DEFAULT_HELD_VALUE
}

/// `type = "simulated"`: no keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulatedConfig {}

/// `type = "command"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    pub demote: Vec<String>,
    pub promote: Vec<String>,
    /// Prints `demoted` or `promoted`; without it the hold is unknown.
    #[serde(default)]
    pub state: Option<Vec<String>>,
    /// Prints one `VHID@IFACE STATE` line per instance; without it CARP state is unknown.
    #[serde(default)]
    pub carp_state: Option<Vec<String>>,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// `type = "opnsense"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpnsenseConfig {
    #[serde(default)]
    pub mode: OpnsenseMode,
    #[serde(default = "default_configctl")]
    pub configctl: String,
    #[serde(default = "default_ifconfig")]
    pub ifconfig: String,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// How the opnsense backend demotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpnsenseMode {
    /// OPNsense's documented lever: a check in /usr/local/etc/rc.carp_service_status.d/
    /// (`failbackd ready`) plus `configctl interface update carp service_status` (2^20 bit).
    #[default]
    ServiceStatus,
    /// The forum script's `configctl interface carp_set_status maintenance` (a toggle; it
    /// writes config.xml and leaving resets every other demotion source). Compatibility only.
    Maintenance,
}

impl<'de> Deserialize<'de> for OpnsenseMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "service_status" => Ok(OpnsenseMode::ServiceStatus),
            "maintenance" => Ok(OpnsenseMode::Maintenance),
            other => Err(D::Error::custom(format!(
                "unknown opnsense mode {other:?}: \"service_status\" (recommended) or \"maintenance\" \
                 (the forum script's toggle)"
            ))),
        }
    }
}

/// `type = "freebsd"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreebsdConfig {
    #[serde(default = "default_sysctl")]
    pub sysctl: String,
    /// How much failbackd adds to net.inet.carp.demotion (a power of two).
    #[serde(default = "default_demotion")]
    pub demotion: u32,
    #[serde(default = "default_ifconfig")]
    pub ifconfig: String,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// `type = "keepalived"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepalivedConfig {
    /// The track_file failbackd writes.
    pub track_file: PathBuf,
    /// The value written while held (released writes 0).
    #[serde(default = "default_held_value")]
    pub held_value: i32,
    /// iproute2's `ip`, for the VRRP state of `instances`.
    #[serde(default = "default_ip")]
    pub ip: String,
    /// The VRRP instances whose state is read from their virtual address's presence.
    #[serde(default)]
    pub instances: Vec<VrrpInstance>,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// One keepalived `vrrp_instance` as failbackd sees it: MASTER holds `address` on `interface`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    /// keepalived's `virtual_router_id`.
    pub vhid: u16,
    pub interface: String,
    /// One of the instance's `virtual_ipaddress` entries (without the prefix length).
    pub address: IpAddr,
}

/// Decodes `[backend]` (`value` is its spanned TOML from the document) into a typed config;
/// problems go to `errors` and make the result `None`.
pub(super) fn decode(
    file: &str,
    text: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<BackendConfig> {
    let whole = value.span();
    let Some(table) = value.get_ref().as_table() else {
        errors.push(ConfigError::at(file, text, Some(whole), "`backend` must be a table"));
        return None;
    };
    let mut cx = Check { file, text, table, whole, errors };
    let kind = match table.get("type") {
        None => {
            cx.err_at(
                Some(cx.whole.clone()),
                "missing `type` in [backend]",
                Some("one of: opnsense, freebsd, keepalived, command, simulated"),
            );
            return None;
        }
        Some(v) => match v.get_ref().as_str() {
            Some(s) => (s.to_string(), v.span()),
            None => {
                cx.err_at(Some(v.span()), "backend `type` must be a string", None);
                return None;
            }
        },
    };
    match kind.0.as_str() {
        "simulated" => typed::<SimulatedConfig>(&mut cx, "simulated").map(|_| BackendConfig::Simulated),
        "command" => typed(&mut cx, "command").map(|c: CommandConfig| {
            cx.argv("demote", &c.demote);
            cx.argv("promote", &c.promote);
            for (key, argv) in [("state", &c.state), ("carp_state", &c.carp_state)] {
                if let Some(argv) = argv {
                    cx.argv(key, argv);
                }
            }
            cx.timeout(c.timeout);
            BackendConfig::Command(c)
        }),
        "opnsense" => typed(&mut cx, "opnsense").map(|c: OpnsenseConfig| {
            cx.program("configctl", &c.configctl, DEFAULT_CONFIGCTL);
            cx.program("ifconfig", &c.ifconfig, DEFAULT_IFCONFIG);
            cx.timeout(c.timeout);
            BackendConfig::Opnsense(c)
        }),
        "freebsd" => typed(&mut cx, "freebsd").map(|c: FreebsdConfig| {
            cx.program("sysctl", &c.sysctl, DEFAULT_SYSCTL);
            cx.program("ifconfig", &c.ifconfig, DEFAULT_IFCONFIG);
            if let Err(msg) = check_demotion(c.demotion) {
                cx.err(
                    "demotion",
                    msg,
                    Some("the default 524288 (2^19) is distinct from OPNsense's 2^20 and the kernel's 240s"),
                );
            }
            cx.timeout(c.timeout);
            BackendConfig::Freebsd(c)
        }),
        "keepalived" => typed(&mut cx, "keepalived").map(|c: KeepalivedConfig| {
            validate_keepalived(&mut cx, &c);
            BackendConfig::Keepalived(c)
        }),
        other => {
            cx.err_at(
                Some(kind.1),
                format!("unknown backend type {other:?}"),
                Some("one of: opnsense, freebsd, keepalived, command, simulated"),
            );
            None
        }
    }
}

fn validate_keepalived(cx: &mut Check<'_, '_>, c: &KeepalivedConfig) {
    if !Path::new(&c.track_file).is_absolute() {
        cx.err("track_file", "`track_file` must be an absolute path", None);
    }
    if !(-253..=-1).contains(&c.held_value) {
        cx.err(
            "held_value",
            format!("`held_value` {} is not between -253 and -1", c.held_value),
            Some("keepalived puts an instance in FAULT below -253 (with weight 1); 0 means released"),
        );
    }
    cx.program("ip", &c.ip, DEFAULT_IP);
    cx.timeout(c.timeout);
    let mut seen = HashSet::new();
    for (i, inst) in c.instances.iter().enumerate() {
        let span = cx
            .table
            .get("instances")
            .and_then(|v| v.get_ref().as_array())
            .and_then(|a| a.get(i))
            .map(|v| v.span());
        if !(1..=255).contains(&inst.vhid) {
            cx.err_at(
                span.clone(),
                format!("instance `vhid` {} is not from 1 to 255", inst.vhid),
                Some("keepalived's virtual_router_id"),
            );
        }
        if super::watch::parse_iface(&inst.interface).is_err() {
            cx.err_at(span.clone(), format!("instance `interface` {:?} is not valid", inst.interface), None);
        }
        if !seen.insert((inst.vhid, inst.interface.as_str())) {
            cx.err_at(span, format!("instance {}@{} is listed twice", inst.vhid, inst.interface), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tagged::keys_of;
    use crate::config::Config;

    fn backend(body: &str) -> Result<BackendConfig, Vec<ConfigError>> {
        Config::parse("t.toml", &format!("[backend]\n{body}")).map(|c| c.backend).map_err(|e| e.0)
    }

    fn one_error(body: &str) -> ConfigError {
        let errs = backend(body).expect_err("should be rejected");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        errs.into_iter().next().unwrap()
    }

    #[test]
    fn every_backend_gets_its_defaults() {
        let BackendConfig::Freebsd(f) = backend("type = \"freebsd\"").unwrap() else { panic!() };
        assert_eq!(
            f,
            FreebsdConfig {
                sysctl: DEFAULT_SYSCTL.into(),
                demotion: DEFAULT_DEMOTION,
                ifconfig: DEFAULT_IFCONFIG.into(),
                timeout: DEFAULT_BACKEND_TIMEOUT
            }
        );
        let BackendConfig::Opnsense(o) = backend("type = \"opnsense\"\nmode = \"maintenance\"").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (o.mode, o.configctl.as_str(), o.ifconfig.as_str()),
            (OpnsenseMode::Maintenance, DEFAULT_CONFIGCTL, DEFAULT_IFCONFIG)
        );
        let BackendConfig::Keepalived(k) = backend(
            "type = \"keepalived\"\ntrack_file = \"/run/h\"\ninstances = [{ vhid = 51, interface = \"eth0\", address = \"203.0.113.1\" }]",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((k.held_value, k.ip.as_str(), k.instances.len()), (DEFAULT_HELD_VALUE, DEFAULT_IP, 1));
        assert_eq!(k.instances[0].address, "203.0.113.1".parse::<IpAddr>().unwrap());
        let BackendConfig::Command(c) =
            backend("type = \"command\"\ndemote = [\"d\"]\npromote = [\"p\"]\ncarp_state = [\"c\", \"-x\"]\ntimeout = \"2s\"")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (c.carp_state, c.state, c.timeout),
            (Some(vec!["c".into(), "-x".into()]), None, Duration::from_secs(2))
        );
        assert_eq!(backend("type = \"simulated\""), Ok(BackendConfig::Simulated));
    }

    #[test]
    fn a_key_of_another_backend_names_the_key_the_type_and_what_it_takes() {
        let e = one_error("type = \"keepalived\"\ntrack_file = \"/run/h\"\nsysctl = \"/sbin/sysctl\"");
        assert_eq!((e.line, e.column), (4, 10));
        assert_eq!(e.message, "`sysctl` does not apply to the keepalived backend");
        assert_eq!(
            e.hint.as_deref(),
            Some("the keepalived backend takes: track_file, held_value, ip, instances, timeout")
        );
        let errs = backend("type = \"simulated\"\nsysctl = \"x\"\nmode = \"y\"").unwrap_err();
        assert_eq!(errs.len(), 2, "every stray key is reported: {errs:#?}");
    }

    #[test]
    fn a_wrong_type_names_the_key_at_its_value() {
        let e = one_error("type = \"freebsd\"\ndemotion = \"lots\"");
        assert_eq!((e.line, e.column), (3, 12));
        assert!(e.message.starts_with("`demotion`: invalid type: string \"lots\""), "{e}");
    }

    #[test]
    fn instances_are_checked() {
        let e = one_error(
            "type = \"keepalived\"\ntrack_file = \"/run/h\"\ninstances = [{ vhid = 51, interface = \"eth0\", address = \"nope\" }]",
        );
        assert_eq!(e.line, 4);
        assert!(e.message.contains("`instances`") && e.message.contains("invalid IP address"), "{e}");
        let e = one_error(
            "type = \"keepalived\"\ntrack_file = \"/run/h\"\ninstances = [{ vhid = 51, interface = \"eth0\", addr = \"192.0.2.1\" }]",
        );
        assert!(e.message.contains("unknown field `addr`"), "{e}");
        let errs = backend(
            "type = \"keepalived\"\ntrack_file = \"/run/h\"\ninstances = [\n  { vhid = 0, interface = \"eth0\", address = \"192.0.2.1\" },\n  { vhid = 5, interface = \"a b\", address = \"192.0.2.1\" },\n  { vhid = 5, interface = \"a b\", address = \"192.0.2.2\" },\n]",
        )
        .unwrap_err();
        let msgs: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(
            msgs,
            vec![
                (5, "instance `vhid` 0 is not from 1 to 255"),
                (6, "instance `interface` \"a b\" is not valid"),
                (7, "instance `interface` \"a b\" is not valid"),
                (7, "instance 5@a b is listed twice"),
            ]
        );
    }

    #[test]
    fn empty_programs_and_zero_timeouts_are_rejected() {
        assert_eq!(one_error("type = \"freebsd\"\nifconfig = \"\"").message, "`ifconfig` is empty");
        assert_eq!(
            one_error("type = \"keepalived\"\ntrack_file = \"/h\"\nip = \"\"").message,
            "`ip` is empty"
        );
        let e = one_error("type = \"command\"\ndemote = [\"d\"]\npromote = [\"p\"]\ncarp_state = []");
        assert_eq!((e.line, e.message.as_str()), (5, "`carp_state` needs at least a program"));
        let e = one_error("type = \"keepalived\"\ntrack_file = \"/h\"\ntimeout = \"0s\"");
        assert_eq!(e.message, "backend `timeout` must be longer than 0s");
    }

    #[test]
    fn the_fields_are_the_keys() {
        assert_eq!(keys_of::<FreebsdConfig>(), ["sysctl", "demotion", "ifconfig", "timeout"]);
        assert!(keys_of::<SimulatedConfig>().is_empty());
    }
}
