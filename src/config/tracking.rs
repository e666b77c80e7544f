//! `[tracking]` and the probes' `track` / `track_without_peer` keys: demoting a MASTER whose
//! path died (off by default: nothing changes for existing configs).
//!
//! Defaults, and why: `track_for = "0s"` (a probe is already down only after `fall` failures in
//! a row, which is the debounce); `max_demotions = 3` per `window = "1h"` (a path that dies three
//! times in an hour is flapping, and one node serving beats a pair that ping-pongs every few
//! minutes; the FailbackTrackSuppressed alert then says so); `track_without_peer = "stay"` (a
//! peer that cannot be asked may be dead too: demoting could leave the pair without a MASTER it
//! can trust, while staying keeps today's behaviour).

use super::error::ConfigError;
use super::raw::RawTracking;
use crate::machine::{TrackSpec, TrackingConfig};
use crate::url::UrlHost;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// `[tracking]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingSettings {
    pub enabled: bool,
    pub track_for: Duration,
    pub max_demotions: u32,
    pub window: Duration,
    pub peer: Option<String>,
    /// `flap_*` (src/config/dampen.rs).
    pub dampen: crate::machine::dampen::DampenConfig,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        let d = TrackingConfig::default();
        TrackingSettings {
            enabled: false,
            track_for: d.track_for,
            max_demotions: d.max_demotions,
            window: d.window,
            peer: None,
            dampen: d.dampen,
        }
    }
}

impl TrackingSettings {
    /// The state machine's part; `reconcile_interval` is the peer's too (a pair shares its
    /// configuration): how old the backend measurement in its answer may be.
    pub fn machine(&self, reconcile_interval: Duration) -> TrackingConfig {
        TrackingConfig {
            track_for: self.track_for,
            max_demotions: self.max_demotions,
            window: self.window,
            peer: self.peer.is_some(),
            dampen: self.dampen,
            peer_settle: reconcile_interval + crate::machine::PEER_MEASURE_MARGIN,
        }
    }
}

/// Longest `track_for` and `window`: a day (beyond it, tracking means nothing).
const MAX_TRACK_DURATION: Duration = Duration::from_secs(86_400);

pub(super) fn build(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    raw: &Option<Spanned<RawTracking>>,
) -> TrackingSettings {
    let mut s = TrackingSettings::default();
    let Some(raw) = raw.as_ref().map(Spanned::get_ref) else { return s };
    let mut err = |span: std::ops::Range<usize>, msg: String, hint: &str| {
        errors.push(ConfigError::at(file, text, Some(span), msg).hint(hint));
    };
    s.enabled = raw.enabled.unwrap_or(false);
    if let Some(d) = &raw.track_for {
        s.track_for = d.get_ref().0;
        if s.track_for > MAX_TRACK_DURATION {
            err(
                d.span(),
                "`track_for` must be at most 1day".into(),
                "the default is 0s (the probe's `fall` debounces)",
            );
        }
    }
    if let Some(w) = &raw.window {
        s.window = w.get_ref().0;
        if s.window.is_zero() || s.window > MAX_TRACK_DURATION {
            err(w.span(), "`window` must be between 1s and 1day".into(), "the default is 1h");
        }
    }
    if let Some(m) = &raw.max_demotions {
        s.max_demotions = *m.get_ref();
        if s.max_demotions == 0 {
            err(
                m.span(),
                "`max_demotions` must be at least 1".into(),
                "to turn tracking off, set no probe's `track`",
            );
        }
    }
    if let Some(p) = &raw.peer {
        match crate::url::parse_url(p.get_ref()) {
            Ok(_) => s.peer = Some(p.get_ref().clone()),
            Err(e) => err(
                p.span(),
                format!("`peer`: {e}"),
                "the peer's failbackd, e.g. \"http://198.51.100.2:9818/status\"",
            ),
        }
    }
    s
}

/// Rejects a `peer` that is this node's own /status (a config copied from the other node): the
/// node would ask itself, find itself "not ready" and never demote. Only what the config shows
/// is checked here (same port, and the same address, a loopback one or `localhost` against a
/// loopback or wildcard listener); at run time /status carries a node id for the rest.
pub(super) fn check_peer_is_not_self(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    raw: &Option<Spanned<RawTracking>>,
    metrics_listen: SocketAddr,
) {
    let Some(peer) = raw.as_ref().and_then(|r| r.get_ref().peer.as_ref()) else { return };
    let Ok(url) = crate::url::parse_url(peer.get_ref()) else { return };
    if url.port != metrics_listen.port() {
        return;
    }
    let listen = metrics_listen.ip();
    let local_listener = listen.is_loopback() || listen.is_unspecified();
    let is_self = match &url.host {
        UrlHost::Ip(ip) => *ip == listen || (local_listener && (ip.is_loopback() || ip.is_unspecified())),
        UrlHost::Name(name) => local_listener && name.eq_ignore_ascii_case("localhost"),
    };
    if is_self {
        errors.push(
            ConfigError::at(
                file,
                text,
                Some(peer.span()),
                format!("`peer` is this node's own /status (metrics_listen = {metrics_listen})"),
            )
            .hint("point `peer` at the other node's failbackd, e.g. \"http://198.51.100.2:9818/status\""),
        );
    }
}

/// A probe's tracking: `track` (default `[tracking] enabled` for required probes),
/// `track_without_peer`. Only a required probe can be tracked: an optional one neither blocks a
/// release nor demotes a MASTER, and the peer judges this node by its tracked probes, so an
/// optional probe that is down there (an IPv6 gateway on a site without IPv6) would make a
/// healthy node look unable to take over.
#[allow(clippy::too_many_arguments)] // one call site; each argument is a different key
pub(super) fn probe(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    settings: &TrackingSettings,
    track: Option<bool>,
    required: bool,
    table: Range<usize>,
    without_peer: &Option<Spanned<String>>,
) -> Option<TrackSpec> {
    let demote_without_peer = match without_peer.as_ref().map(|w| (w.get_ref().as_str(), w.span())) {
        None | Some(("stay", _)) => false,
        Some(("demote", _)) => true,
        Some((other, span)) => {
            errors.push(
                ConfigError::at(file, text, Some(span), format!("unknown track_without_peer {other:?}"))
                    .hint("\"stay\" or \"demote\""),
            );
            false
        }
    };
    if track == Some(true) && !required {
        errors.push(
            ConfigError::at(
                file,
                text,
                Some(table),
                "an optional probe (`required = false`) cannot be tracked",
            )
            .hint("tracking follows required probes only: set `required = true` or remove `track`"),
        );
        return None;
    }
    track.unwrap_or(settings.enabled && required).then_some(TrackSpec { demote_without_peer })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const PROBE: &str = "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"p\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";

    fn messages(text: &str) -> Vec<(usize, String)> {
        match Config::parse("t.toml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| (e.line, e.message)).collect(),
        }
    }

    // D4: an optional probe is never tracked.
    #[test]
    fn an_optional_probe_cannot_be_tracked() {
        assert_eq!(
            messages(&format!("{PROBE}required = false\ntrack = true\n")),
            vec![(3, "an optional probe (`required = false`) cannot be tracked".to_string())]
        );
        // `[tracking] enabled` is the default of the required probes only.
        let cfg = Config::parse("t.toml", &format!("[tracking]\nenabled = true\n{PROBE}required = false\n"))
            .unwrap();
        assert_eq!(cfg.machine().probes[0].track, None);
        let cfg = Config::parse("t.toml", &format!("[tracking]\nenabled = true\n{PROBE}")).unwrap();
        assert!(cfg.machine().probes[0].track.is_some());
    }

    // D16: a `peer` that is this node's own metrics_listen.
    #[test]
    fn a_peer_pointing_at_this_node_is_rejected() {
        let self_msg =
            |listen: &str| format!("`peer` is this node's own /status (metrics_listen = {listen})");
        for (listen, peer) in [
            ("127.0.0.1:19918", "http://127.0.0.1:19918/status"),
            ("0.0.0.0:9818", "http://127.0.0.1:9818/status"),
            ("127.0.0.1:9818", "http://localhost:9818/status"),
            ("192.0.2.1:9818", "http://192.0.2.1:9818/status"),
        ] {
            let text = format!(
                "metrics_listen = \"{listen}\"\n[tracking]\npeer = \"{peer}\"\n{PROBE}track = true\n"
            );
            let canonical: std::net::SocketAddr = listen.parse().unwrap();
            assert_eq!(messages(&text), vec![(3, self_msg(&canonical.to_string()))], "{listen} {peer}");
        }
        for (listen, peer) in [
            ("127.0.0.1:9818", "http://127.0.0.1:9819/status"),
            ("192.0.2.1:9818", "http://192.0.2.2:9818/status"),
        ] {
            let text = format!(
                "metrics_listen = \"{listen}\"\n[tracking]\npeer = \"{peer}\"\n{PROBE}track = true\n"
            );
            assert_eq!(messages(&text), vec![], "{listen} {peer}");
        }
    }
}
