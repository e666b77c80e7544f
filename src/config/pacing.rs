//! A probe's `fast_interval` and `down_interval` (HAProxy's `fastinter` and `downinter`; the
//! runner picks one per attempt in src/probe/cadence.rs).
//!
//! Defaults, and why: `fast_interval` = a quarter of `interval`, but never below `timeout` (an
//! attempt keeps its full timeout and must end before the next one is due, as at the normal
//! interval; a confirmation attempt cut short could demote a healthy slow path). With the
//! default `timeout` (= `interval`) that leaves the pace unchanged: setting a shorter `timeout`
//! is what lets confirmation speed up. `down_interval` = `interval` (today's behaviour).

use super::error::ConfigError;
use super::raw::RawProbe;
use std::time::Duration;

/// Longest `down_interval`: the same bound as `interval`.
const MAX_DOWN_INTERVAL: Duration = Duration::from_secs(3600);

/// The validated pair.
pub(super) struct Pacing {
    pub fast: Duration,
    pub down: Duration,
}

/// The default `fast_interval` of a probe.
pub fn default_fast_interval(interval: Duration, timeout: Duration) -> Duration {
    (interval / 4).max(timeout).min(interval)
}

/// Reads and checks both keys; `interval_ok` is false when `interval` was already rejected
/// (then the bounds that depend on it would only repeat that problem).
pub(super) fn build(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    p: &RawProbe,
    interval: Duration,
    timeout: Duration,
    interval_ok: bool,
) -> Pacing {
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let mut pacing = Pacing { fast: default_fast_interval(interval, timeout), down: interval };
    if let Some(f) = &p.fast_interval {
        pacing.fast = f.get_ref().0;
        if interval_ok && (pacing.fast < timeout || pacing.fast > interval || pacing.fast.is_zero()) {
            errors.push(
                ConfigError::at(
                    file,
                    text,
                    Some(f.span()),
                    format!(
                        "probe `fast_interval` must be between the timeout ({}) and the interval ({})",
                        fmt(timeout),
                        fmt(interval)
                    ),
                )
                .hint("an attempt keeps its whole timeout; set a shorter `timeout` to confirm faster"),
            );
        }
    }
    if let Some(d) = &p.down_interval {
        pacing.down = d.get_ref().0;
        if interval_ok && (pacing.down < timeout || pacing.down > MAX_DOWN_INTERVAL || pacing.down.is_zero())
        {
            errors.push(
                ConfigError::at(
                    file,
                    text,
                    Some(d.span()),
                    format!(
                        "probe `down_interval` must be between the timeout ({}) and {}",
                        fmt(timeout),
                        fmt(MAX_DOWN_INTERVAL)
                    ),
                )
                .hint("an attempt must finish before the next one is due"),
            );
        }
    }
    pacing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_fast_interval_keeps_the_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(default_fast_interval(ms(1000), ms(1000)), ms(1000));
        assert_eq!(default_fast_interval(ms(1000), ms(200)), ms(250));
        assert_eq!(default_fast_interval(ms(1000), ms(400)), ms(400));
        assert_eq!(default_fast_interval(ms(4000), ms(100)), ms(1000));
    }
}
