//! Dampening the return, not the escape (BGP route-flap dampening, RFC 2439): every tracking
//! demotion adds a penalty that halves every `half_life`; once it reaches `suppress`, this node
//! must prove its path for longer before it fails back: the stability a failback needs is the
//! time the penalty (as of the moment the path became stable) takes to decay below `reuse`,
//! never less than `stable_for` and never more than `max_stability`. A flapping upstream so
//! moves the traffic to the healthy peer once and keeps it there; the demotion itself (the
//! escape) is never delayed. Pure: instants come from the caller.

use std::time::{Duration, Instant};

/// `[tracking]` dampening keys (src/config/dampen.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DampenConfig {
    /// Added at each tracking demotion.
    pub penalty: u32,
    /// The penalty halves every `half_life`.
    pub half_life: Duration,
    /// A demotion that brings the penalty to this or above suppresses an early return.
    pub suppress: u32,
    /// The return is suppressed until the penalty decays below this.
    pub reuse: u32,
    /// The longest stability a failback ever needs (BGP's max-suppress-time); it also caps the
    /// penalty, so a long flapping episode does not take hours to forget.
    pub max_stability: Duration,
}

impl Default for DampenConfig {
    /// One tracking demotion already suppresses (penalty = suppress) and asks for up to one
    /// half-life of stability (reuse = penalty / 2): a path that dies once and comes back stays
    /// on the peer for a minute or two of proven health; one that flaps every few seconds never
    /// comes back while it flaps (each up period is shorter than the stability it needs).
    fn default() -> Self {
        DampenConfig {
            penalty: 1000,
            half_life: Duration::from_secs(120),
            suppress: 1000,
            reuse: 500,
            max_stability: Duration::from_secs(600),
        }
    }
}

/// The penalty and whether the return is suppressed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dampening {
    /// The penalty as of `at`.
    penalty: f64,
    at: Option<Instant>,
    /// Set when a demotion reached `suppress`; ends once the penalty decays below `reuse`.
    suppressed: bool,
}

impl Dampening {
    /// The penalty at `now`, decayed.
    pub fn penalty(&self, cfg: &DampenConfig, now: Instant) -> f64 {
        let Some(at) = self.at else { return 0.0 };
        let half_life = cfg.half_life.as_secs_f64();
        if half_life <= 0.0 {
            return 0.0;
        }
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        self.penalty * (-elapsed / half_life).exp2()
    }

    /// Whether an early return is suppressed at `now`.
    pub fn suppressed(&self, cfg: &DampenConfig, now: Instant) -> bool {
        self.suppressed && self.penalty(cfg, now) >= f64::from(cfg.reuse)
    }

    /// A tracking demotion at `now`.
    pub fn demoted(&mut self, cfg: &DampenConfig, now: Instant) {
        let before = self.penalty(cfg, now);
        if before < f64::from(cfg.reuse) {
            self.suppressed = false; // the last suppression has ended (hysteresis)
        }
        self.penalty = (before + f64::from(cfg.penalty)).min(ceiling(cfg));
        self.at = Some(now);
        if self.penalty >= f64::from(cfg.suppress) {
            self.suppressed = true;
        }
    }

    /// The stability a failback needs when the path has been stable since `since`.
    pub fn required_stability(&self, cfg: &DampenConfig, since: Instant, stable_for: Duration) -> Duration {
        if !self.suppressed(cfg, since) {
            return stable_for;
        }
        let ratio = self.penalty(cfg, since) / f64::from(cfg.reuse.max(1));
        let decay =
            Duration::try_from_secs_f64(cfg.half_life.as_secs_f64() * ratio.log2()).unwrap_or(Duration::MAX);
        decay.min(cfg.max_stability).max(stable_for)
    }
}

/// The highest penalty: the one that needs exactly `max_stability` to decay to `reuse` (below
/// `suppress`, nothing is ever suppressed: check-config rejects that).
pub fn ceiling(cfg: &DampenConfig) -> f64 {
    let half_lives = cfg.max_stability.as_secs_f64() / cfg.half_life.as_secs_f64().max(f64::MIN_POSITIVE);
    f64::from(cfg.reuse.max(1)) * half_lives.min(1000.0).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const STABLE_FOR: Duration = Duration::from_secs(5);

    /// The defaults with a one-minute half-life: round numbers below.
    fn cfg60() -> DampenConfig {
        DampenConfig { half_life: secs(60), ..DampenConfig::default() }
    }

    #[test]
    fn no_demotion_needs_only_stable_for() {
        let d = Dampening::default();
        let now = Instant::now();
        assert_eq!(d.penalty(&cfg60(), now), 0.0);
        assert_eq!(d.required_stability(&cfg60(), now, STABLE_FOR), STABLE_FOR);
    }

    #[test]
    fn the_penalty_halves_every_half_life() {
        let cfg = cfg60();
        let t0 = Instant::now();
        let mut d = Dampening::default();
        d.demoted(&cfg, t0);
        assert_eq!(d.penalty(&cfg, t0), 1000.0);
        assert!((d.penalty(&cfg, t0 + secs(60)) - 500.0).abs() < 1e-6);
        assert!((d.penalty(&cfg, t0 + secs(120)) - 250.0).abs() < 1e-6);
    }

    #[test]
    fn one_demotion_asks_for_the_decay_to_reuse_as_stability() {
        let cfg = cfg60();
        let t0 = Instant::now();
        let mut d = Dampening::default();
        d.demoted(&cfg, t0);
        assert!(d.suppressed(&cfg, t0));
        // Stable right away: 1000 -> 500 takes one half-life.
        assert_eq!(d.required_stability(&cfg, t0, STABLE_FOR), secs(60));
        // Stable from 30 s on: the penalty is 707 then, half a half-life from reuse.
        let r = d.required_stability(&cfg, t0 + secs(30), STABLE_FOR);
        assert!(r.abs_diff(secs(30)) < Duration::from_millis(1), "{r:?}");
        // Stable only after the penalty fell below reuse: stable_for, and no suppression.
        assert_eq!(d.required_stability(&cfg, t0 + secs(61), STABLE_FOR), STABLE_FOR);
        assert!(!d.suppressed(&cfg, t0 + secs(61)));
    }

    #[test]
    fn repeated_demotions_lengthen_the_stability_up_to_the_maximum() {
        let cfg = DampenConfig { max_stability: secs(150), ..cfg60() };
        let t0 = Instant::now();
        let mut d = Dampening::default();
        let mut required = Vec::new();
        for i in 0..12 {
            let at = t0 + secs(16 * i);
            d.demoted(&cfg, at);
            required.push(d.required_stability(&cfg, at, STABLE_FOR));
        }
        assert!(required.windows(2).all(|w| w[1] >= w[0]), "{required:?}");
        assert!(required[1] > required[0]);
        assert_eq!(*required.last().unwrap(), cfg.max_stability);
    }

    #[test]
    fn below_the_suppress_threshold_the_return_is_not_delayed_and_hysteresis_holds() {
        // BGP's defaults: the first flap does not suppress, the second does.
        let cfg = DampenConfig {
            suppress: 2000,
            reuse: 750,
            half_life: secs(900),
            max_stability: secs(3600),
            ..cfg60()
        };
        let t0 = Instant::now();
        let mut d = Dampening::default();
        d.demoted(&cfg, t0);
        assert!(!d.suppressed(&cfg, t0));
        assert_eq!(d.required_stability(&cfg, t0, STABLE_FOR), STABLE_FOR);
        d.demoted(&cfg, t0);
        assert!(d.suppressed(&cfg, t0));
        // Still suppressed once decayed below `suppress` but above `reuse`.
        let later = t0 + secs(900);
        assert!(d.penalty(&cfg, later) < 2000.0 && d.suppressed(&cfg, later));
        assert!(d.required_stability(&cfg, later, STABLE_FOR) > STABLE_FOR);
    }

    #[test]
    fn a_zero_half_life_never_dampens() {
        let cfg = DampenConfig { half_life: Duration::ZERO, ..cfg60() };
        let t0 = Instant::now();
        let mut d = Dampening::default();
        d.demoted(&cfg, t0);
        assert_eq!(d.required_stability(&cfg, t0, STABLE_FOR), STABLE_FOR);
    }
}
