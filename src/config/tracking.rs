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
use crate::machine::{TrackSpec, TrackingConfig};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `[tracking]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    /// Default of every probe's `track`.
    pub enabled: Option<bool>,
    pub track_for: Option<Spanned<super::raw::Dur>>,
    pub max_demotions: Option<Spanned<u32>>,
    pub window: Option<Spanned<super::raw::Dur>>,
    /// The peer's failbackd /status, e.g. "http://198.51.100.2:9818/status".
    pub peer: Option<Spanned<String>>,
    // Dampening, with a peer (src/config/dampen.rs).
    pub flap_penalty: Option<Spanned<u32>>,
    pub flap_half_life: Option<Spanned<super::raw::Dur>>,
    pub flap_suppress: Option<Spanned<u32>>,
    pub flap_reuse: Option<Spanned<u32>>,
    pub flap_max_stability: Option<Spanned<super::raw::Dur>>,
}

impl RawTracking {
    /// The dampening keys, for src/config/dampen.rs.
    pub(super) fn dampen(&self) -> super::dampen::RawDampen<'_> {
        super::dampen::RawDampen {
            penalty: self.flap_penalty.as_ref(),
            half_life: self.flap_half_life.as_ref(),
            suppress: self.flap_suppress.as_ref(),
            reuse: self.flap_reuse.as_ref(),
            max_stability: self.flap_max_stability.as_ref(),
        }
    }
}

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
    /// The state machine's part.
    pub fn machine(&self) -> TrackingConfig {
        TrackingConfig {
            track_for: self.track_for,
            max_demotions: self.max_demotions,
            window: self.window,
            peer: self.peer.is_some(),
            dampen: self.dampen,
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

/// A probe's tracking: `track` (default `[tracking] enabled`), `track_without_peer`.
pub(super) fn probe(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    settings: &TrackingSettings,
    track: Option<bool>,
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
    track.unwrap_or(settings.enabled).then_some(TrackSpec { demote_without_peer })
}
