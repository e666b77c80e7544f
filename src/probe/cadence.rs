//! Which interval a probe's next attempt waits (HAProxy's `inter` / `fastinter` / `downinter`):
//! a state change is confirmed at `fast_interval`, a probe that is down and that nothing waits
//! for is retried at `down_interval`, everything else runs at `interval`.
//!
//! The runner keeps its own copy of the rise/fall tally (the same [`ProbeTally`] the state
//! machine uses, reset at the same moment: when a failback arms and the probes restart), so the
//! pace follows exactly the state that gates the release without a round trip to the daemon.
//! Only the spacing of attempts changes: `rise` and `fall` still count attempts in a row, each
//! attempt keeps the probe's full `timeout`, and stable_for/min_hold are not touched.

use crate::machine::ProbeTally;
use std::time::Duration;

/// The interval an attempt was scheduled at (a closed label set for the attempt metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// `interval`: up and steady.
    Normal,
    /// `fast_interval`: a change is being confirmed, or a failback waits for the probe.
    Fast,
    /// `down_interval`: down, and nothing waits for it.
    Down,
}

impl Pace {
    pub const ALL: [Pace; 3] = [Pace::Normal, Pace::Fast, Pace::Down];

    /// The `interval` label of `failback_probe_attempts_by_interval_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pace::Normal => "normal",
            Pace::Fast => "fast",
            Pace::Down => "down",
        }
    }
}

/// The three intervals of one probe (validated: timeout <= fast <= interval, timeout <= down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub normal: Duration,
    pub fast: Duration,
    pub down: Duration,
}

impl Intervals {
    pub fn of(self, pace: Pace) -> Duration {
        match pace {
            Pace::Normal => self.normal,
            Pace::Fast => self.fast,
            Pace::Down => self.down,
        }
    }
}

/// One probe's pace, from its own results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cadence {
    tally: ProbeTally,
    rise: u32,
    fall: u32,
}

impl Cadence {
    pub fn new(rise: u32, fall: u32) -> Cadence {
        Cadence { tally: ProbeTally::default(), rise, fall }
    }

    /// Counts one attempt's result.
    pub fn observe(&mut self, ok: bool) {
        self.tally.observe(ok, self.rise, self.fall);
    }

    /// A failback armed: the machine starts every probe down again, and so does this copy.
    pub fn reset(&mut self) {
        self.tally = ProbeTally::default();
    }

    /// The pace of the next attempt; `waiting`: a failback is holding for the probes.
    pub fn pace(&self, waiting: bool) -> Pace {
        let t = &self.tally;
        if t.up {
            // One failure on an up probe: confirm (or dismiss) it fast.
            if t.fails > 0 {
                Pace::Fast
            } else {
                Pace::Normal
            }
        } else if t.passes > 0 || waiting {
            // A down probe that passed once is confirming its rise; a held failback waits on it.
            Pace::Fast
        } else {
            Pace::Down
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut Cadence, results: &[bool], waiting: bool) -> Vec<Pace> {
        results
            .iter()
            .map(|ok| {
                c.observe(*ok);
                c.pace(waiting)
            })
            .collect()
    }

    #[test]
    fn an_up_probe_confirms_a_failure_fast_and_returns_to_normal_on_a_pass() {
        let mut c = Cadence::new(3, 2);
        run(&mut c, &[true, true, true], false);
        assert_eq!(c.pace(false), Pace::Normal);
        // One lost reply: fast until it is dismissed by a pass.
        assert_eq!(run(&mut c, &[false, true], false), [Pace::Fast, Pace::Normal]);
        // Two in a row: down (fall 2), and nothing waits: down_interval.
        assert_eq!(run(&mut c, &[false, false], false), [Pace::Fast, Pace::Down]);
    }

    #[test]
    fn a_down_probe_confirms_its_rise_fast() {
        let mut c = Cadence::new(3, 2);
        assert_eq!(c.pace(false), Pace::Down);
        assert_eq!(run(&mut c, &[true, true, true], false), [Pace::Fast, Pace::Fast, Pace::Normal]);
        // A failure during the rise drops back to down_interval when nothing waits.
        c.reset();
        assert_eq!(run(&mut c, &[true, false], false), [Pace::Fast, Pace::Down]);
    }

    #[test]
    fn a_waiting_failback_keeps_a_down_probe_fast() {
        let mut c = Cadence::new(3, 2);
        assert_eq!(c.pace(true), Pace::Fast);
        assert_eq!(run(&mut c, &[false, false, true], true), [Pace::Fast, Pace::Fast, Pace::Fast]);
        // Up: normal interval even while the failback still waits (the stability window).
        assert_eq!(run(&mut c, &[true, true], true), [Pace::Fast, Pace::Normal]);
    }

    #[test]
    fn reset_starts_down_like_the_machine_at_an_arm() {
        let mut c = Cadence::new(1, 1);
        c.observe(true);
        assert_eq!(c.pace(false), Pace::Normal);
        c.reset();
        assert_eq!(c.pace(false), Pace::Down);
    }
}
