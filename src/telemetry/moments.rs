//! Time-derived metrics, computed when Prometheus scrapes, not when something happened.
//!
//! The daemon records *monotonic* instants (when the hold began, when the failback armed, when
//! the backend was last measured); this collector turns them into values at scrape time:
//! timestamps are `now_wall - (now_mono - event_mono)`, so an NTP step after boot (common on
//! firewalls whose clock is set late) corrects every `*_timestamp_seconds` at the next scrape,
//! and ages (`failback_hold_elapsed_seconds`, `..._remaining_seconds`, the measurement age) are
//! purely monotonic, so alerts on them need no `time()` and never fire early after a step.
//!
//! Two exceptions, for telling restarts apart: `failback_start_timestamp_seconds` is the wall
//! clock read once when the process started (a per-scrape recomputation jitters by microseconds,
//! so `changes()` would count every scrape), and `failback_uptime_seconds` is monotonic since
//! the start, so every restart is a reset that `resets()` counts without any clock.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Opts};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The instants the daemon reports; `None` when the thing is not happening.
#[derive(Debug, Clone, Copy)]
pub struct Instants {
    pub started: Instant,
    /// The node has been held (a phase that wants the hold) since.
    pub held_since: Option<Instant>,
    /// The failback in progress armed at (the original arm, across restarts).
    pub armed_at: Option<Instant>,
    /// `max_hold` of the failback in progress ends at.
    pub hold_deadline: Option<Instant>,
    /// The backend was last measured successfully at.
    pub observed_at: Option<Instant>,
    pub max_hold: Duration,
}

/// The daemon's clock: tokio's, so tests on paused time see the same instants as the machine.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Unix time of a monotonic instant, as of now.
pub fn unix_at(at: Instant) -> f64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let now = now();
    if at <= now {
        wall - (now - at).as_secs_f64()
    } else {
        wall + (at - now).as_secs_f64()
    }
}

/// A collector registered once; the daemon updates its [`Instants`] after every step.
#[derive(Clone)]
pub struct Moments {
    instants: Arc<Mutex<Instants>>,
    start: Gauge,
    maintenance_since: Gauge,
    hold_deadline: Gauge,
    elapsed: Gauge,
    remaining: Gauge,
    max_hold: Gauge,
    observation_age: GaugeVec,
    uptime: Gauge,
    held_for: Gauge,
}

impl Moments {
    pub fn new(max_hold: Duration) -> Result<Moments, prometheus::Error> {
        let g = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help));
        let start =
            g("failback_start_timestamp_seconds", "Unix time this failbackd process started (read once).")?;
        start.set(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
        Ok(Moments {
            instants: Arc::new(Mutex::new(Instants {
                started: now(),
                held_since: None,
                armed_at: None,
                hold_deadline: None,
                observed_at: None,
                max_hold,
            })),
            start,
            maintenance_since: g(
                "failback_maintenance_since_timestamp_seconds",
                "Unix time the current hold began (computed at scrape time); 0 when not held.",
            )?,
            hold_deadline: g(
                "failback_hold_deadline_timestamp_seconds",
                "Unix time max_hold ends for the failback in progress (computed at scrape time); 0 when none is.",
            )?,
            elapsed: g(
                "failback_hold_elapsed_seconds",
                "Seconds since the failback in progress armed, across daemon restarts; 0 when none is.",
            )?,
            remaining: g(
                "failback_hold_remaining_seconds",
                "Seconds until max_hold ends for the failback in progress; 0 when none is.",
            )?,
            max_hold: g("failback_max_hold_seconds", "The configured max_hold.")?,
            observation_age: GaugeVec::new(
                Opts::new(
                    "failback_backend_observation_age_seconds",
                    "Seconds since the backend was last measured successfully; absent before the first.",
                ),
                &[],
            )?,
            uptime: g(
                "failback_uptime_seconds",
                "Seconds since this failbackd process started (monotonic; a restart resets it).",
            )?,
            held_for: g(
                "failback_held_for_seconds",
                "Seconds the current hold has lasted (a phase that wants it: failed and draining included; \
                 monotonic); 0 when not held.",
            )?,
        })
    }

    /// Replaces the instants (after each step of the daemon).
    pub fn set(&self, update: impl FnOnce(&mut Instants)) {
        update(&mut self.instants.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub fn get(&self) -> Instants {
        *self.instants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refresh(&self) {
        let i = self.get();
        let now = now();
        let since = |at: Instant| now.saturating_duration_since(at).as_secs_f64();
        self.uptime.set(since(i.started));
        self.held_for.set(i.held_since.map_or(0.0, since));
        self.maintenance_since.set(i.held_since.map_or(0.0, unix_at));
        self.hold_deadline.set(i.hold_deadline.map_or(0.0, unix_at));
        self.elapsed.set(i.armed_at.map_or(0.0, since));
        self.remaining.set(i.hold_deadline.map_or(0.0, |d| d.saturating_duration_since(now).as_secs_f64()));
        self.max_hold.set(i.max_hold.as_secs_f64());
        match i.observed_at {
            Some(at) => self.observation_age.with_label_values(&[] as &[&str]).set(since(at)),
            None => {
                let _ = self.observation_age.remove_label_values(&[] as &[&str]);
            }
        }
    }

    fn gauges(&self) -> [&dyn Collector; 9] {
        [
            &self.start,
            &self.uptime,
            &self.held_for,
            &self.maintenance_since,
            &self.hold_deadline,
            &self.elapsed,
            &self.remaining,
            &self.max_hold,
            &self.observation_age,
        ]
    }
}

impl Collector for Moments {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges().into_iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.gauges().into_iter().flat_map(|g| g.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(m: &Moments, name: &str) -> Option<f64> {
        m.collect()
            .into_iter()
            .find(|f| f.name() == name)
            .and_then(|f| f.get_metric().first().map(|m| m.get_gauge().value()))
    }

    #[tokio::test(start_paused = true)]
    async fn ages_are_monotonic_and_computed_at_scrape_time() {
        let m = Moments::new(Duration::from_secs(900)).unwrap();
        assert_eq!(value(&m, "failback_backend_observation_age_seconds"), None);
        let t = now();
        m.set(|i| {
            i.armed_at = Some(t);
            i.hold_deadline = t.checked_add(Duration::from_secs(900));
            i.observed_at = Some(t);
        });
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(value(&m, "failback_hold_elapsed_seconds"), Some(60.0));
        assert_eq!(value(&m, "failback_hold_remaining_seconds"), Some(840.0));
        assert_eq!(value(&m, "failback_backend_observation_age_seconds"), Some(60.0));
        assert_eq!(value(&m, "failback_max_hold_seconds"), Some(900.0));
        assert_eq!(value(&m, "failback_uptime_seconds"), Some(60.0));
        m.set(|i| *i = Instants { armed_at: None, hold_deadline: None, observed_at: None, ..*i });
        assert_eq!(value(&m, "failback_hold_elapsed_seconds"), Some(0.0));
        assert_eq!(value(&m, "failback_backend_observation_age_seconds"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_time_is_stable_and_the_uptime_and_held_time_are_monotonic() {
        let m = Moments::new(Duration::from_secs(900)).unwrap();
        let start = value(&m, "failback_start_timestamp_seconds").unwrap();
        assert_eq!(value(&m, "failback_held_for_seconds"), Some(0.0));
        let t = now();
        m.set(|i| i.held_since = Some(t));
        tokio::time::advance(Duration::from_secs(30)).await;
        // Scraped again later: the start time is the same value to the bit, not recomputed.
        assert_eq!(value(&m, "failback_start_timestamp_seconds").map(f64::to_bits), Some(start.to_bits()));
        assert_eq!(value(&m, "failback_uptime_seconds"), Some(30.0));
        assert_eq!(value(&m, "failback_held_for_seconds"), Some(30.0));
        m.set(|i| i.held_since = None);
        assert_eq!(value(&m, "failback_held_for_seconds"), Some(0.0));
    }

    #[test]
    fn timestamps_follow_the_wall_clock_of_the_scrape() {
        let m = Moments::new(Duration::from_secs(1)).unwrap();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let start = value(&m, "failback_start_timestamp_seconds").unwrap();
        assert!((start - wall).abs() < 60.0, "{start} vs {wall}");
        assert_eq!(value(&m, "failback_maintenance_since_timestamp_seconds"), Some(0.0));
    }
}
