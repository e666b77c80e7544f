//! Per-probe rise/fall bookkeeping, haproxy-style: `rise` passes in a row bring a probe up,
//! `fall` failures in a row take it down. A probe starts "not up" at every arm.
//!
//! "Not up" is two different things: *fell* (it failed `fall` times in a row: the path is known
//! to be down) and *not risen yet* (a fresh tally after a start, an arm or a reload: unknown).
//! The release gate needs `up`; tracking, which demotes a MASTER, needs `fell`: an unknown is
//! never a down.

/// The consecutive-result counters of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeTally {
    pub up: bool,
    /// Known down: it failed `fall` times in a row since it was last up (or since the tally
    /// started). False for a tally that has not risen yet and has not failed `fall` times.
    pub fell: bool,
    pub passes: u32,
    pub fails: u32,
}

impl ProbeTally {
    /// Counts one result; returns the new known state when it changed: `Some(true)` when it rose,
    /// `Some(false)` when it fell (from up, or from not known yet).
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        if ok {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
            if !self.up && self.passes >= rise.max(1) {
                self.up = true;
                self.fell = false;
                return Some(true);
            }
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            if self.fails >= fall.max(1) && !self.fell {
                self.fell = true;
                self.up = false;
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::ProbeTally;

    #[test]
    fn rises_after_rise_passes_in_a_row() {
        let mut t = ProbeTally::default();
        assert_eq!(t.observe(true, 3, 2), None);
        assert_eq!(t.observe(false, 3, 2), None);
        assert_eq!(t.observe(true, 3, 2), None);
        assert_eq!(t.observe(true, 3, 2), None);
        assert_eq!(t.observe(true, 3, 2), Some(true));
        assert!(t.up);
    }

    #[test]
    fn falls_after_fall_failures_in_a_row() {
        let mut t = ProbeTally { up: true, passes: 5, ..ProbeTally::default() };
        assert_eq!(t.observe(false, 3, 2), None);
        assert_eq!(t.observe(true, 3, 2), None);
        assert_eq!(t.observe(false, 3, 2), None);
        assert!(!t.fell);
        assert_eq!(t.observe(false, 3, 2), Some(false));
        assert!(!t.up);
        assert!(t.fell);
        // Passes that do not reach `rise` leave it fallen; `rise` of them bring it up.
        t.observe(true, 3, 2);
        assert!(t.fell);
        t.observe(true, 3, 2);
        assert_eq!(t.observe(true, 3, 2), Some(true));
        assert!(!t.fell);
    }

    #[test]
    fn a_fresh_tally_is_unknown_not_fallen_until_it_fails_fall_times() {
        let mut t = ProbeTally::default();
        assert!(!t.up && !t.fell, "not risen yet is not down");
        assert_eq!(t.observe(false, 3, 2), None);
        assert!(!t.fell);
        assert_eq!(t.observe(false, 3, 2), Some(false), "unknown -> known down is a change to report");
        assert!(t.fell, "fall failures in a row: known down");
        assert_eq!(t.observe(false, 3, 2), None, "still down: nothing new");
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut t = ProbeTally::default();
        assert_eq!(t.observe(true, 0, 0), Some(true));
        assert_eq!(t.observe(false, 0, 0), Some(false));
    }
}
