//! `[tracking]` dampening keys (`flap_*`): how long a node whose path kept dying must prove it
//! before it fails back (src/machine/dampen.rs). Used only with a `peer`: without one, the
//! flap limit (`max_demotions` per `window`) stands.
//!
//! Defaults, and why: `flap_penalty = 1000` and `flap_suppress = 1000` (the first tracking
//! demotion already lengthens the return: a path that just died has something to prove);
//! `flap_reuse = 500` with `flap_half_life = "2m"` (one demotion asks for up to two minutes of
//! proven health, each further one in the same minutes for longer; with 1m, a path dead 8 s and
//! alive 8 s came back during its fifth up period in the testbed); `flap_max_stability =
//! "10m"` (BGP's max-suppress-time; below the default `max_hold`, so a dampened failback still
//! ends released, not failed).

use super::error::ConfigError;
use crate::machine::dampen::DampenConfig;
use std::time::Duration;
use toml::Spanned;

/// The `flap_*` keys as written (fields of `[tracking]`).
#[derive(Debug, Default)]
pub struct RawDampen<'a> {
    pub penalty: Option<&'a Spanned<u32>>,
    pub half_life: Option<&'a Spanned<super::raw::Dur>>,
    pub suppress: Option<&'a Spanned<u32>>,
    pub reuse: Option<&'a Spanned<u32>>,
    pub max_stability: Option<&'a Spanned<super::raw::Dur>>,
}

impl<'a> RawDampen<'a> {
    /// The dampening keys of `[tracking]`.
    pub fn of(t: &'a super::raw::RawTracking) -> RawDampen<'a> {
        RawDampen {
            penalty: t.flap_penalty.as_ref(),
            half_life: t.flap_half_life.as_ref(),
            suppress: t.flap_suppress.as_ref(),
            reuse: t.flap_reuse.as_ref(),
            max_stability: t.flap_max_stability.as_ref(),
        }
    }
}

/// Longest `flap_half_life` and `flap_max_stability`.
const MAX_DAMPEN_DURATION: Duration = Duration::from_secs(86_400);
/// Largest `flap_penalty`, `flap_suppress`, `flap_reuse` (BGP's own scale is ~1000).
const MAX_PENALTY: u32 = 1_000_000;

pub(super) fn build(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    raw: &RawDampen<'_>,
    max_hold: Duration,
) -> DampenConfig {
    let mut c = DampenConfig::default();
    let before = errors.len();
    let mut err = |span: std::ops::Range<usize>, msg: String, hint: &str| {
        errors.push(ConfigError::at(file, text, Some(span), msg).hint(hint));
    };
    for (key, value, slot) in [
        ("flap_penalty", raw.penalty, &mut c.penalty),
        ("flap_suppress", raw.suppress, &mut c.suppress),
        ("flap_reuse", raw.reuse, &mut c.reuse),
    ] {
        let Some(v) = value else { continue };
        *slot = *v.get_ref();
        if *slot == 0 || *slot > MAX_PENALTY {
            err(
                v.span(),
                format!("`{key}` must be between 1 and {MAX_PENALTY}"),
                "BGP's scale: 1000 per flap",
            );
        }
    }
    if let Some(r) = raw.reuse.or(raw.suppress) {
        if c.reuse >= c.suppress {
            err(
                r.span(),
                format!("`flap_reuse` ({}) must be below `flap_suppress` ({})", c.reuse, c.suppress),
                "the return is suppressed from `flap_suppress` down to `flap_reuse`",
            );
        }
    }
    if let Some(h) = raw.half_life {
        c.half_life = h.get_ref().0;
        if c.half_life < Duration::from_secs(1) || c.half_life > MAX_DAMPEN_DURATION {
            err(h.span(), "`flap_half_life` must be between 1s and 1day".into(), "the default is 2m");
        }
    }
    if let Some(m) = raw.max_stability {
        c.max_stability = m.get_ref().0;
        if c.max_stability >= max_hold || c.max_stability > MAX_DAMPEN_DURATION {
            err(
                m.span(),
                format!(
                    "`flap_max_stability` must be shorter than `max_hold` ({})",
                    humantime::format_duration(max_hold)
                ),
                "a dampened failback must still be able to end released",
            );
        }
    }
    if errors.len() == before && crate::machine::dampen::ceiling(&c) < f64::from(c.suppress) {
        let span = raw.max_stability.map(|m| m.span()).or(raw.half_life.map(|h| h.span()));
        errors.push(
            ConfigError::at(file, text, span, "the penalty can never reach `flap_suppress`".to_string())
                .hint(
                    "it is capped where it needs `flap_max_stability` to decay to `flap_reuse`: \
                 raise `flap_max_stability` or lower `flap_half_life`",
                ),
        );
    }
    c
}
