//! The config file as written: serde structs that reject unknown keys. `validate.rs` turns them
//! into the typed [`super::Config`].

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// A humantime duration ("500ms", "30s", "2m").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (write e.g. \"500ms\", \"30s\", \"2m\")"
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub watch: Option<Spanned<Vec<Spanned<String>>>>,
    pub hold_on_boot: Option<bool>,
    pub min_hold: Option<Spanned<Dur>>,
    pub max_hold: Option<Spanned<Dur>>,
    pub max_hold_policy: Option<crate::machine::MaxHoldPolicy>,
    pub stable_for: Option<Spanned<Dur>>,
    /// How often the backend (hold and CARP states) is measured.
    pub reconcile_interval: Option<Spanned<Dur>>,
    pub control_socket: Option<String>,
    pub state_file: Option<String>,
    pub metrics_listen: Option<Spanned<String>>,
    /// What the CARP hook does when the daemon cannot be reached: "demote" (through the backend,
    /// so the node never preempts unchecked) or "nothing".
    pub hook_fallback: Option<Spanned<String>>,
    /// Decoded per type in backend.rs, from the document's spanned TOML; here only its place.
    pub backend: Option<Spanned<serde::de::IgnoredAny>>,
    #[serde(default, rename = "probe")]
    pub probes: Vec<Spanned<RawProbe>>,
    pub tracing: Option<Spanned<super::telemetry::RawTracing>>,
    pub syslog: Option<Spanned<super::telemetry::RawSyslog>>,
    pub tracking: Option<Spanned<RawTracking>>,
}

/// `[tracking]` as written (validated in tracking.rs; here so that raw.rs imports nothing from
/// the modules that validate it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    /// Default of every required probe's `track`.
    pub enabled: Option<bool>,
    pub track_for: Option<Spanned<Dur>>,
    pub max_demotions: Option<Spanned<u32>>,
    pub window: Option<Spanned<Dur>>,
    /// The peer's failbackd /status, e.g. "http://198.51.100.2:9818/status".
    pub peer: Option<Spanned<String>>,
    // Dampening, with a peer (validated in dampen.rs).
    pub flap_penalty: Option<Spanned<u32>>,
    pub flap_half_life: Option<Spanned<Dur>>,
    pub flap_suppress: Option<Spanned<u32>>,
    pub flap_reuse: Option<Spanned<u32>>,
    pub flap_max_stability: Option<Spanned<Dur>>,
}

/// `[[probe]]`: one flat table per probe; type-specific keys are checked in validate.rs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub target: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub expect_status: Option<Spanned<u16>>,
    /// ipsec: connection names whose children must all be installed (empty: all loaded).
    pub connections: Option<Spanned<Vec<String>>>,
    /// ipsec: strongSwan's VICI socket.
    pub vici_socket: Option<Spanned<String>>,
    /// opnsense_gateway: gateway names (instead of one `target`).
    pub gateways: Option<Spanned<Vec<String>>>,
    /// opnsense_gateway: statuses that also pass ("delay", "loss").
    pub accept: Option<Spanned<Vec<String>>>,
    /// opnsense_gateway: path of configctl.
    pub configctl: Option<Spanned<String>>,
    pub interval: Option<Spanned<Dur>>,
    /// While a change is being confirmed (src/config/pacing.rs).
    pub fast_interval: Option<Spanned<Dur>>,
    /// While down and nothing waits (src/config/pacing.rs).
    pub down_interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub rise: Option<Spanned<u32>>,
    pub fall: Option<Spanned<u32>>,
    pub required: Option<bool>,
    /// Tracking: this probe going down demotes a MASTER (default `[tracking] enabled`).
    pub track: Option<bool>,
    /// Tracking, when the peer cannot be asked: "stay" (default) or "demote".
    pub track_without_peer: Option<Spanned<String>>,
}
