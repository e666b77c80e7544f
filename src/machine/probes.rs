//! Per-probe rise/fall bookkeeping, haproxy-style: `rise` passes in a row bring a probe up,
//! `fall` failures in a row take it down. A probe starts down at every arm.

/// The consecutive-result counters of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeTally {
    pub up: bool,
    pub passes: u32,
    pub fails: u32,
}

impl ProbeTally {
    /// Counts one result; returns the new up/down state when it changed.
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        if ok {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
            if !self.up && self.passes >= rise.max(1) {
                self.up = true;
                return Some(true);
            }
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            if self.up && self.fails >= fall.max(1) {
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
        let mut t = ProbeTally { up: true, passes: 5, fails: 0 };
        assert_eq!(t.observe(false, 3, 2), None);
        assert_eq!(t.observe(true, 3, 2), None);
        assert_eq!(t.observe(false, 3, 2), None);
        assert_eq!(t.observe(false, 3, 2), Some(false));
        assert!(!t.up);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut t = ProbeTally::default();
        assert_eq!(t.observe(true, 0, 0), Some(true));
        assert_eq!(t.observe(false, 0, 0), Some(false));
    }
}
