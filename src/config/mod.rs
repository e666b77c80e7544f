//! The TOML configuration: defaults, then decode (unknown keys rejected), then validate into
//! typed fields. Every error carries `file:line:column` and, where it helps, a hint.
//! `examples/failbackd.toml` documents every key.

pub mod backend;
mod dampen;
mod error;
mod pacing;
mod raw;
mod tagged;
pub mod telemetry;
pub mod tracking;
mod validate;
mod watch;

pub use backend::{
    BackendConfig, CommandConfig, FreebsdConfig, KeepalivedConfig, OpnsenseConfig, OpnsenseMode, VrrpInstance,
};
pub use error::{ConfigError, ConfigErrors};
pub use watch::{parse_iface, parse_vhid, WatchPattern};

use crate::machine::{Backoff, MachineConfig, MaxHoldPolicy, ProbeSpec};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default port for /metrics: 9818 is not claimed on the Prometheus default port allocations
/// wiki page and is free on stock OPNsense.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9818";
pub const DEFAULT_CONTROL_SOCKET: &str = "/var/run/failbackd.sock";
pub const DEFAULT_STATE_FILE: &str = "/var/run/failbackd.state";
/// strongSwan's default VICI socket; OPNsense never sets another one (charon's default applies).
pub const DEFAULT_VICI_SOCKET: &str = "/var/run/charon.vici";
/// Gateway statuses an `opnsense_gateway` probe may accept besides `none` (Online).
pub const GATEWAY_ACCEPTABLE: [&str; 2] = ["delay", "loss"];
/// How often the backend is measured by default: a hold changed behind failbackd's back is
/// noticed within 5 s, for one configctl/sysctl exec (a few ms) each time.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub watch: Vec<WatchPattern>,
    pub hold_on_boot: bool,
    pub min_hold: Duration,
    pub max_hold: Duration,
    pub max_hold_policy: MaxHoldPolicy,
    pub stable_for: Duration,
    /// How often the backend's hold and the CARP states are measured.
    pub reconcile_interval: Duration,
    pub control_socket: PathBuf,
    pub state_file: PathBuf,
    pub metrics_listen: SocketAddr,
    pub hook_fallback: HookFallback,
    pub backend: BackendConfig,
    pub probes: Vec<ProbeConfig>,
    /// `[tracing]` and `[syslog]` (src/config/telemetry.rs).
    pub telemetry: telemetry::TelemetryConfig,
    /// `[tracking]` (src/config/tracking.rs).
    pub tracking: tracking::TrackingSettings,
}

/// What `failbackd hook` does when the daemon does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFallback {
    /// Demote through the backend directly, so the node never preempts unchecked.
    Demote,
    /// Only log and exit non-zero.
    Nothing,
}

/// One probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    pub name: String,
    pub kind: ProbeKind,
    pub interval: Duration,
    /// While a change is being confirmed or a failback waits for the probe (HAProxy's
    /// `fastinter`); between `timeout` and `interval`.
    pub fast_interval: Duration,
    /// While down and nothing waits for the probe (HAProxy's `downinter`); at least `timeout`.
    pub down_interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub required: bool,
    /// `track = true`: this probe going down demotes a MASTER (src/config/tracking.rs).
    pub track: Option<crate::machine::TrackSpec>,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// ICMP echo to an address (v4 or v6); no DNS, so it works before resolvers are up.
    Icmp { target: IpAddr },
    /// A TCP connect to `ip:port`.
    Tcp { target: SocketAddr },
    /// An HTTP GET (plain http://) expecting one status code.
    Http { url: String, expect_status: u16 },
    /// A command run as argv; exit status 0 means up.
    Command { argv: Vec<String> },
    /// strongSwan over VICI: every child SA of the listed connections (all loaded connections
    /// when the list is empty) must be INSTALLED.
    Ipsec { vici_socket: PathBuf, connections: Vec<String> },
    /// OPNsense's own gateway monitoring (`configctl interface gateways status`): the named
    /// gateways (every monitored one when empty) are monitored and Online, or in an `accept`ed
    /// state (`delay`, `loss`).
    OpnsenseGateway { configctl: String, gateways: Vec<String>, accept: Vec<String> },
}

impl ProbeKind {
    /// The `type` label of the probe metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeKind::Icmp { .. } => "icmp",
            ProbeKind::Tcp { .. } => "tcp",
            ProbeKind::Http { .. } => "http",
            ProbeKind::Command { .. } => "command",
            ProbeKind::Ipsec { .. } => "ipsec",
            ProbeKind::OpnsenseGateway { .. } => "opnsense_gateway",
        }
    }

    /// Everything that makes two probes the same check: a reload keeps a probe's tally only when
    /// this is unchanged (the `Debug` form covers every field, the target and argv included).
    pub fn identity(&self) -> String {
        format!("{self:?}")
    }

    /// What the probe checks, for status and traces.
    pub fn target(&self) -> String {
        match self {
            ProbeKind::Icmp { target } => target.to_string(),
            ProbeKind::Tcp { target } => target.to_string(),
            ProbeKind::Http { url, .. } => url.clone(),
            ProbeKind::Command { argv } => argv.first().cloned().unwrap_or_default(),
            ProbeKind::Ipsec { connections, .. } if connections.is_empty() => "all connections".into(),
            ProbeKind::Ipsec { connections, .. } => connections.join(","),
            ProbeKind::OpnsenseGateway { gateways, .. } if gateways.is_empty() => "all".into(),
            ProbeKind::OpnsenseGateway { gateways, .. } => gateways.join(","),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::at(&name, "", None, format!("cannot read the config: {e}"))])
        })?;
        Config::parse(&name, &text)
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
        validate::parse(file, text)
    }

    /// The state machine's part of the config.
    pub fn machine(&self) -> MachineConfig {
        MachineConfig {
            hold_on_boot: self.hold_on_boot,
            min_hold: self.min_hold,
            max_hold: self.max_hold,
            max_hold_policy: self.max_hold_policy,
            stable_for: self.stable_for,
            probes: self
                .probes
                .iter()
                .map(|p| ProbeSpec {
                    name: p.name.clone(),
                    identity: format!("{} {}", p.kind.type_name(), p.kind.identity()),
                    rise: p.rise,
                    fall: p.fall,
                    required: p.required,
                    track: p.track,
                })
                .collect(),
            backoff: Backoff::default(),
            tracking: self.tracking.machine(self.reconcile_interval),
            shared_lever: matches!(&self.backend, BackendConfig::Opnsense(c) if c.mode == OpnsenseMode::ServiceStatus),
        }
    }

    /// Whether a CARP event for `vhid@iface` concerns us.
    pub fn watches(&self, vhid: u16, iface: &str) -> bool {
        self.watch.iter().any(|w| w.matches(vhid, iface))
    }

    /// A one-screen summary for `check-config`.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let d = |d: Duration| humantime::format_duration(d).to_string();
        let mut s = String::new();
        let watch: Vec<String> = self.watch.iter().map(|w| w.to_string()).collect();
        let _ = writeln!(s, "watch           {}", watch.join(", "));
        let _ = writeln!(s, "backend         {}", self.backend.kind());
        let _ = writeln!(s, "hold_on_boot    {}", self.hold_on_boot);
        let _ = writeln!(
            s,
            "hold            min {}, stable for {}, max {} then {}",
            d(self.min_hold),
            d(self.stable_for),
            d(self.max_hold),
            self.max_hold_policy.as_str()
        );
        let _ = writeln!(s, "metrics         http://{}/metrics", self.metrics_listen);
        let _ = writeln!(s, "control socket  {}", self.control_socket.display());
        let _ = writeln!(s, "tracing         {}", self.telemetry.tracing.summary());
        let _ = writeln!(s, "syslog          {}", self.telemetry.syslog.summary());
        let tracked = self.probes.iter().filter(|p| p.track.is_some()).count();
        let _ = writeln!(
            s,
            "tracking        {}",
            if tracked == 0 {
                "off".to_string()
            } else {
                let t = &self.tracking;
                format!(
                    "{tracked} probe(s), after {}, at most {} per {}, peer {}",
                    d(t.track_for),
                    t.max_demotions,
                    d(t.window),
                    t.peer.as_deref().unwrap_or("none")
                )
            }
        );
        let _ = writeln!(s, "probes          {}", self.probes.len());
        for p in &self.probes {
            let _ = writeln!(
                s,
                "  {:<16} {:<16} {:<28} every {} (confirming {}, down {}), timeout {}, rise {}, fall {}{}{}",
                p.name,
                p.kind.type_name(),
                p.kind.target(),
                d(p.interval),
                d(p.fast_interval),
                d(p.down_interval),
                d(p.timeout),
                p.rise,
                p.fall,
                if p.required { "" } else { " (optional)" },
                if p.track.is_some() { " (tracked)" } else { "" }
            );
        }
        s
    }
}
