//! Runs every configured probe on its own schedule and reports each attempt over a channel.
//! One task per probe, so a hung prober only ever delays itself; the runner enforces each
//! probe's timeout by dropping the attempt (probers are cancel-safe). A generation counter
//! (a `watch` channel) lets the daemon restart all probes when a failback arms: each task
//! abandons its sleep, attempts at once, and tags reports with the generation current when the
//! attempt started, so the state machine can drop results from before the arm.
//! Each task paces itself from its own results (`cadence.rs`): `fast_interval` while a change
//! is being confirmed or a failback waits, `down_interval` while down and nothing waits.

use super::cadence::{Cadence, Intervals, Pace};
use super::{ProbeOutcome, Prober};
use crate::config::ProbeConfig;
use crate::telemetry::spans::FailbackSpans;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::field::Empty;
use tracing::{Instrument, Span};

/// The result of one attempt of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Index of the probe in the configured list.
    pub probe: usize,
    /// The runner generation when the attempt started.
    pub generation: u64,
    pub outcome: ProbeOutcome,
    /// The attempt hit the probe's timeout (then `outcome.ok` is false).
    pub timed_out: bool,
    /// The interval the attempt was scheduled at.
    pub pace: Pace,
}

/// Handle on the running probe tasks. Dropping it leaves the tasks running (only `cancel`
/// stops them); they just can no longer be restarted.
#[derive(Debug)]
pub struct ProbeRunner {
    generation: watch::Sender<u64>,
    /// A failback holds for the probes: down probes run at `fast_interval`.
    waiting: watch::Sender<bool>,
}

impl ProbeRunner {
    /// Spawns one task per probe on `tracker`, stopping on `cancel`. Each attempt made while a
    /// failback runs gets a `probe` span under the failback's current phase span (`spans`).
    pub fn spawn(
        probes: Vec<(ProbeConfig, Box<dyn Prober>)>,
        tx: mpsc::Sender<ProbeReport>,
        spans: FailbackSpans,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> ProbeRunner {
        let (generation, _) = watch::channel(0);
        let (waiting, _) = watch::channel(false);
        for (index, (cfg, prober)) in probes.into_iter().enumerate() {
            let task = ProbeTask {
                index,
                cadence: Cadence::new(cfg.rise, cfg.fall),
                intervals: Intervals {
                    normal: cfg.interval,
                    fast: cfg.fast_interval,
                    down: cfg.down_interval,
                },
                cfg,
                prober,
                tx: tx.clone(),
                generation: generation.subscribe(),
                waiting: waiting.subscribe(),
                spans: spans.clone(),
            };
            tracker.spawn(task.run(cancel.clone()));
        }
        ProbeRunner { generation, waiting }
    }

    /// Says whether a failback holds for the probes (read at each attempt's scheduling).
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.send_if_modified(|w| std::mem::replace(w, waiting) != waiting);
    }

    /// Bumps the generation and makes every probe run an attempt now (a failback just armed:
    /// it also waits for the probes from now on). Returns the new generation.
    pub fn restart(&self) -> u64 {
        self.set_waiting(true);
        let mut new = 0;
        // send_modify works with or without receivers (send would fail with none).
        self.generation.send_modify(|g| {
            *g += 1;
            new = *g;
        });
        new
    }

    pub fn waiting(&self) -> bool {
        *self.waiting.borrow()
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }
}

struct ProbeTask {
    index: usize,
    cadence: Cadence,
    intervals: Intervals,
    cfg: ProbeConfig,
    prober: Box<dyn Prober>,
    tx: mpsc::Sender<ProbeReport>,
    generation: watch::Receiver<u64>,
    waiting: watch::Receiver<bool>,
    spans: FailbackSpans,
}

impl ProbeTask {
    async fn run(mut self, cancel: CancellationToken) {
        // Stopping at any await point is safe: an attempt is dropped (cancel-safe probers) and an
        // unsent report is simply lost, which is fine at shutdown.
        cancel.run_until_cancelled(self.run_forever()).await;
    }

    async fn run_forever(&mut self) {
        let mut restartable = true;
        let mut seen = *self.generation.borrow();
        let mut pace = self.cadence.pace(*self.waiting.borrow());
        loop {
            let generation = *self.generation.borrow_and_update();
            if generation != seen {
                // The machine starts every probe down at an arm; pace from the same state.
                seen = generation;
                self.cadence.reset();
                pace = self.cadence.pace(true);
            }
            let started = Instant::now();
            let report = self.attempt(generation, pace).await;
            self.cadence.observe(report.outcome.ok);
            if self.tx.send(report).await.is_err() {
                return; // The daemon dropped the receiver: nobody listens any more.
            }
            pace = self.cadence.pace(*self.waiting.borrow());
            // Interval measured from the attempt's start; a late attempt is followed at once.
            let next = deadline(started, self.intervals.of(pace));
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                changed = self.generation.changed(), if restartable => {
                    // Err: the ProbeRunner was dropped; keep the schedule, no more restarts.
                    if changed.is_err() {
                        restartable = false;
                        tokio::time::sleep_until(next).await;
                    }
                }
            }
        }
    }

    /// One attempt, bounded by the probe timeout and timed around the whole call. Its span is
    /// a child of the current phase span; with no failback running there is none (an idle
    /// daemon exports no trace per probe per interval).
    async fn attempt(&self, generation: u64, pace: Pace) -> ProbeReport {
        let kind = &self.cfg.kind;
        let span = attempt_span(&self.spans, &self.cfg);
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.cfg.timeout, self.prober.probe()).instrument(span.clone()).await;
        let latency = started.elapsed();
        let (timed_out, error) = match result {
            Ok(Ok(())) => (false, None),
            Ok(Err(e)) => (false, Some(e)),
            Err(_) => {
                (true, Some(format!("timed out after {}", humantime::format_duration(self.cfg.timeout))))
            }
        };
        let ok = error.is_none();
        let latency_ms = millis(latency);
        record_attempt(&span, timed_out, latency_ms, error.as_deref());
        span.in_scope(|| {
            tracing::debug!(
                probe = %self.cfg.name,
                r#type = kind.type_name(),
                ok,
                latency_ms,
                error = error.as_deref(),
                "probe attempt"
            );
        });
        ProbeReport {
            probe: self.index,
            generation,
            outcome: ProbeOutcome { ok, latency, error },
            timed_out,
            pace,
        }
    }
}

/// The span of one attempt of `cfg`: a `probe` child of the current phase span while a failback
/// runs, [`Span::none`] otherwise. Public for the trace overhead benchmark.
pub fn attempt_span(spans: &FailbackSpans, cfg: &ProbeConfig) -> Span {
    match spans.current() {
        Some(phase) => tracing::info_span!(
            parent: &phase,
            "probe",
            probe.name = %cfg.name,
            probe.type = cfg.kind.type_name(),
            probe.target = %cfg.kind.target(),
            probe.ok = Empty,
            probe.timed_out = Empty,
            probe.latency_ms = Empty,
            probe.error = Empty,
            otel.status_code = Empty,
        ),
        None => Span::none(),
    }
}

/// Records an attempt's result on its span.
pub fn record_attempt(span: &Span, timed_out: bool, latency_ms: f64, error: Option<&str>) {
    let ok = error.is_none();
    span.record("probe.ok", ok)
        .record("probe.timed_out", timed_out)
        .record("probe.latency_ms", latency_ms)
        .record("probe.error", error)
        .record("otel.status_code", if ok { "ok" } else { "error" });
}

/// `start + after` without the panic `Instant + Duration` has on overflow. check-config bounds
/// intervals (at most 1h), so the fallback (30 years, tokio's own "far future") is only a
/// guard for a config that did not go through validation.
fn deadline(start: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    start.checked_add(after).or_else(|| start.checked_add(FAR)).unwrap_or(start)
}

/// Milliseconds with sub-millisecond precision, for logs and spans.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProbeKind;
    use crate::probe::{ProbeFuture, ProbeResult};
    use std::sync::{Arc, Mutex};

    /// A fake prober: waits `delay` (forever when `None`), records when each attempt started,
    /// and returns `result`.
    struct Fake {
        delay: Option<Duration>,
        result: ProbeResult,
        starts: Arc<Mutex<Vec<Instant>>>,
    }

    impl Prober for Fake {
        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                self.starts.lock().unwrap().push(Instant::now());
                match self.delay {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
                self.result.clone()
            })
        }
    }

    fn fake(delay: Option<Duration>, result: ProbeResult) -> (Box<dyn Prober>, Arc<Mutex<Vec<Instant>>>) {
        let starts = Arc::new(Mutex::new(Vec::new()));
        (Box::new(Fake { delay, result, starts: starts.clone() }), starts)
    }

    fn cfg(name: &str, interval_ms: u64, timeout_ms: u64) -> ProbeConfig {
        ProbeConfig {
            name: name.into(),
            kind: ProbeKind::Command { argv: vec!["fake".into()] },
            interval: Duration::from_millis(interval_ms),
            fast_interval: Duration::from_millis(interval_ms),
            down_interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            rise: 1,
            fall: 1,
            required: true,
            track: None,
        }
    }

    struct Running {
        runner: ProbeRunner,
        rx: mpsc::Receiver<ProbeReport>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    }

    fn start(probes: Vec<(ProbeConfig, Box<dyn Prober>)>) -> Running {
        let (tx, rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let runner = ProbeRunner::spawn(probes, tx, FailbackSpans::default(), cancel.clone(), &tracker);
        tracker.close();
        Running { runner, rx, cancel, tracker }
    }

    /// Long enough for any test to finish its work; the tests never wait this long unless the
    /// code under test is broken.
    const PATIENCE: Duration = Duration::from_secs(10);

    async fn next(rx: &mut mpsc::Receiver<ProbeReport>) -> ProbeReport {
        tokio::time::timeout(PATIENCE, rx.recv()).await.expect("no report in time").expect("channel closed")
    }

    // The schedule test runs on tokio's paused clock (auto-advanced), so its times are exact;
    // the others use real time with lower bounds only.

    #[tokio::test(start_paused = true)]
    async fn every_probe_reports_on_its_interval() {
        let (up, up_starts) = fake(Some(Duration::from_millis(350)), Ok(()));
        let (down, _) = fake(Some(Duration::ZERO), Err("boom".into()));
        let mut r = start(vec![(cfg("up", 400, 400), up), (cfg("down", 400, 400), down)]);
        let mut seen = Vec::new();
        while seen.iter().filter(|rep: &&ProbeReport| rep.probe == 0).count() < 3 {
            seen.push(next(&mut r.rx).await);
        }
        assert!(seen.iter().filter(|rep| rep.probe == 1).count() >= 2, "{seen:?}");
        for rep in seen.iter().filter(|rep| rep.probe == 0) {
            assert!(rep.outcome.ok && rep.outcome.error.is_none() && !rep.timed_out, "{rep:?}");
            // Timed around the whole call, which sleeps 350 ms.
            assert!(rep.outcome.latency >= Duration::from_millis(350), "{rep:?}");
        }
        for rep in seen.iter().filter(|rep| rep.probe == 1) {
            assert_eq!(rep.outcome.error.as_deref(), Some("boom"));
            assert!(!rep.outcome.ok && !rep.timed_out);
        }
        assert!(seen.iter().all(|rep| rep.generation == 0));
        // The interval runs from each attempt's start (from its end it would be 750 ms).
        let starts = up_starts.lock().unwrap().clone();
        for pair in starts.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(400));
        }
    }

    /// A prober that returns `results` in order (then passes), recording when each started.
    struct Scripted {
        results: Mutex<std::collections::VecDeque<bool>>,
        starts: Arc<Mutex<Vec<Instant>>>,
    }

    impl Prober for Scripted {
        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                self.starts.lock().unwrap().push(Instant::now());
                if self.results.lock().unwrap().pop_front().unwrap_or(true) {
                    Ok(())
                } else {
                    Err("down".into())
                }
            })
        }
    }

    fn scripted(results: &[bool]) -> (Box<dyn Prober>, Arc<Mutex<Vec<Instant>>>) {
        let starts = Arc::new(Mutex::new(Vec::new()));
        (
            Box::new(Scripted {
                results: Mutex::new(results.iter().copied().collect()),
                starts: starts.clone(),
            }),
            starts,
        )
    }

    fn paced(rise: u32, fall: u32) -> ProbeConfig {
        let mut c = cfg("p", 1000, 100);
        c.fast_interval = Duration::from_millis(250);
        c.down_interval = Duration::from_millis(4000);
        (c.rise, c.fall) = (rise, fall);
        c
    }

    fn gaps(starts: &Arc<Mutex<Vec<Instant>>>) -> Vec<u128> {
        starts.lock().unwrap().windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_confirmed_at_the_fast_interval_and_a_down_probe_waits_the_down_interval() {
        let (p, starts) = scripted(&[true, true, false, true, false, false, true, true]);
        let mut r = start(vec![(paced(2, 2), p)]);
        let mut paces = Vec::new();
        for _ in 0..8 {
            paces.push(next(&mut r.rx).await.pace);
        }
        use Pace::*;
        // Down at start, nothing waits: down_interval; one pass confirms fast; up: normal; a
        // single failure is confirmed fast and dismissed by the pass; two fail: down again.
        assert_eq!(paces, [Down, Fast, Normal, Fast, Normal, Fast, Down, Fast]);
        assert_eq!(gaps(&starts), [250, 1000, 250, 1000, 250, 4000, 250]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_failback_probes_a_down_probe_fast_until_it_is_up() {
        let (p, starts) = scripted(&[false, false, false, true, true]);
        let mut r = start(vec![(paced(2, 2), p)]);
        assert_eq!(next(&mut r.rx).await.pace, Pace::Down);
        r.runner.restart();
        assert!(r.runner.waiting());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(next(&mut r.rx).await.pace);
        }
        assert_eq!(seen, [Pace::Fast; 4]);
        assert_eq!(next(&mut r.rx).await.pace, Pace::Normal);
        // The restart attempted at once; then fast until up (rise 2), then normal.
        assert_eq!(&gaps(&starts)[1..], [250, 250, 250, 1000]);
        r.runner.set_waiting(false);
        assert!(!r.runner.waiting());
    }

    #[tokio::test]
    async fn hung_probe_times_out_without_stalling_others() {
        let (hung, hung_starts) = fake(None, Ok(()));
        let (up, _) = fake(Some(Duration::ZERO), Ok(()));
        let mut r = start(vec![(cfg("hung", 200, 100), hung), (cfg("up", 20, 20), up)]);
        let mut hung_reports = 0;
        let mut up_between = 0;
        while hung_reports < 3 {
            let rep = next(&mut r.rx).await;
            if rep.probe == 0 {
                assert!(rep.timed_out && !rep.outcome.ok, "{rep:?}");
                assert_eq!(rep.outcome.error.as_deref(), Some("timed out after 100ms"));
                assert!(rep.outcome.latency >= Duration::from_millis(100), "{rep:?}");
                hung_reports += 1;
            } else if hung_reports > 0 {
                up_between += 1;
            }
        }
        // The other probe kept reporting while the hung one was stuck in its attempts.
        assert!(up_between > 0);
        assert_eq!(hung_starts.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn restart_attempts_at_once_with_the_new_generation() {
        let (p, starts) = fake(Some(Duration::ZERO), Ok(()));
        // An hour-long interval: without the restart, no second report within PATIENCE.
        let mut r = start(vec![(cfg("p", 3_600_000, 1000), p)]);
        assert_eq!(next(&mut r.rx).await.generation, 0);
        assert_eq!(r.runner.generation(), 0);
        assert_eq!(r.runner.restart(), 1);
        assert_eq!(r.runner.generation(), 1);
        assert_eq!(next(&mut r.rx).await.generation, 1);
        assert_eq!(r.runner.restart(), 2);
        assert_eq!(next(&mut r.rx).await.generation, 2);
        assert_eq!(starts.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn restart_lets_the_attempt_in_flight_finish() {
        let (p, starts) = fake(Some(Duration::from_millis(300)), Ok(()));
        let mut r = start(vec![(cfg("p", 3_600_000, 1000), p)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(starts.lock().unwrap().len(), 1, "first attempt should be in flight");
        assert_eq!(r.runner.restart(), 1);
        let first = next(&mut r.rx).await;
        assert_eq!((first.generation, first.outcome.ok, first.timed_out), (0, true, false));
        assert!(first.outcome.latency >= Duration::from_millis(300));
        assert_eq!(next(&mut r.rx).await.generation, 1);
        let starts = starts.lock().unwrap().clone();
        assert!(starts[1] - starts[0] >= Duration::from_millis(300), "attempts overlapped");
    }

    #[tokio::test]
    async fn cancel_stops_every_task() {
        // One probe hung in an attempt, one blocked on a full channel, one sleeping.
        let (hung, _) = fake(None, Ok(()));
        let (fast, _) = fake(Some(Duration::ZERO), Ok(()));
        let (slow, _) = fake(Some(Duration::ZERO), Ok(()));
        let (tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let _runner = ProbeRunner::spawn(
            vec![
                (cfg("hung", 60_000, 60_000), hung),
                (cfg("fast", 10, 10), fast),
                (cfg("slow", 60_000, 10), slow),
            ],
            tx,
            FailbackSpans::default(),
            cancel.clone(),
            &tracker,
        );
        tracker.close();
        next(&mut rx).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(tracker.len(), 3);
        cancel.cancel();
        tokio::time::timeout(PATIENCE, tracker.wait()).await.expect("tasks did not stop");
        assert!(tracker.is_empty());
    }

    #[tokio::test]
    async fn dropped_receiver_ends_the_tasks() {
        let (p, _) = fake(Some(Duration::ZERO), Ok(()));
        let r = start(vec![(cfg("p", 10, 10), p)]);
        drop(r.rx);
        tokio::time::timeout(PATIENCE, r.tracker.wait()).await.expect("task did not stop");
        assert!(!r.cancel.is_cancelled());
    }

    #[tokio::test]
    async fn dropped_runner_keeps_probing_on_schedule() {
        let (p, _) = fake(Some(Duration::ZERO), Ok(()));
        let Running { runner, mut rx, cancel, tracker } = start(vec![(cfg("p", 100, 100), p)]);
        let t0 = Instant::now();
        drop(runner);
        for _ in 0..3 {
            assert_eq!(next(&mut rx).await.generation, 0);
        }
        // Three attempts take two intervals; a busy loop on the closed watch channel would
        // deliver them at once.
        assert!(t0.elapsed() >= Duration::from_millis(200));
        cancel.cancel();
        tokio::time::timeout(PATIENCE, tracker.wait()).await.expect("task did not stop");
    }

    #[test]
    fn a_huge_interval_does_not_overflow_the_deadline() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert_eq!(deadline(now, Duration::from_secs(1)), now + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_timed_out_command_probe_leaves_no_grandchild() {
        // The production path: the real command prober through the runner, whose own timeout
        // (the same as exec's, started first) is the one that fires.
        use crate::exec::proc_watch;
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let mut cfg = cfg("cmd", 3_600_000, 2000);
        cfg.kind = ProbeKind::Command { argv: vec!["sh".into(), "-c".into(), script] };
        let prober = crate::probe::build(&cfg).unwrap();
        let mut r = start(vec![(cfg, prober)]);
        let pid = proc_watch::read_pid(&pidfile).await;
        assert!(proc_watch::alive(pid), "the grandchild {pid} should be running");
        let rep = next(&mut r.rx).await;
        assert!(rep.timed_out && !rep.outcome.ok, "{rep:?}");
        assert_eq!(rep.outcome.error.as_deref(), Some("timed out after 2s"));
        proc_watch::assert_gone(pid).await;
    }
}
