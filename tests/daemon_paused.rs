//! The whole daemon (driver, control socket, HTTP server, simulated backend) on paused tokio
//! time: the driver takes its time from tokio's clock, so a 15-minute max_hold or a 10-minute
//! min_hold is exercised in milliseconds, deterministically. (Probes that run real programs or
//! connect to real sockets do not belong here: while the runtime waits on real I/O, paused time
//! jumps to the next timer and would time them out.)
//!
//! Also here, on real time: control-socket and shutdown rules that need a live daemon.

mod support;

use failbackd::control::{Reply, Request};
use std::time::Duration;
use support::TestDaemon;

const BACKEND: &str = "[backend]\ntype = \"simulated\"\n";

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn max_hold_ends_a_hold_after_fifteen_paused_minutes() {
    let d = TestDaemon::start(&format!(
        "max_hold = \"15m\"\n{BACKEND}[[probe]]\nname = \"never\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:9\"\ninterval = \"1m\"\ntimeout = \"1s\"\n"
    ))
    .await;
    d.wait_phase("probing", Duration::from_secs(60)).await;
    let started = tokio::time::Instant::now();
    d.wait_phase("failed", Duration::from_secs(3600)).await;
    let held = started.elapsed();
    assert!(held <= Duration::from_secs(15 * 60), "failed after {held:?}");
    assert!(held >= Duration::from_secs(15 * 60 - 60), "failed early: {held:?}");
    assert_eq!(d.handles.metrics.failbacks.with_label_values(&["failed"]).get(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn min_hold_and_stable_for_gate_the_release_on_paused_time() {
    let d =
        TestDaemon::start(&format!("min_hold = \"10m\"\nstable_for = \"1m\"\nmax_hold = \"1h\"\n{BACKEND}"))
            .await;
    d.wait_phase("stabilizing", Duration::from_secs(60)).await;
    let started = tokio::time::Instant::now();
    d.wait_phase("released", Duration::from_secs(7200)).await;
    let held = started.elapsed();
    assert!(held >= Duration::from_secs(599) && held <= Duration::from_secs(601), "released after {held:?}");
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.last_outcome.as_deref(), Some("released"));
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_measurement_is_taken_every_reconcile_interval() {
    let d = TestDaemon::start(&format!("reconcile_interval = \"5s\"\nhold_on_boot = false\n{BACKEND}")).await;
    let m = &d.handles.metrics;
    let count = || m.backend_duration.with_label_values(&["observe"]).get_sample_count();
    // The one at start is taken before the loop runs (it feeds the boot decision).
    let first = count();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let n = count() - first;
    // 61 s at 5 s: the tick at 0 s and every 5 s after, one at a time.
    assert!((12..=13).contains(&n), "{n} measurements in 61 s");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_fields_are_validated_by_the_daemon_and_cardinality_stays_bounded() {
    let d = TestDaemon::start(&format!("watch = [\"*@*\"]\nhold_on_boot = false\n{BACKEND}")).await;
    for (vhid, iface) in
        [(0u16, "em0".to_string()), (300, "em0".into()), (1, "x".repeat(200)), (1, "em 0".into())]
    {
        let r = d.request(Request::Hook { vhid, iface, state: failbackd::machine::CarpState::Master }).await;
        assert!(!r.ok, "accepted vhid {vhid}");
        assert!(r.error.unwrap_or_default().contains("bad hook request"));
    }
    assert!(d.handles.status.borrow().carp.is_empty(), "nothing invalid reached the machine");
    // Even with `*@*`, at most 64 vhid@iface become series; the rest are counted as ignored.
    for i in 0..100u16 {
        let req = Request::Hook {
            vhid: 1 + i % 250,
            iface: format!("em{}", i / 50),
            state: failbackd::machine::CarpState::Backup,
        };
        assert!(d.request(req).await.ok);
    }
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.carp.len(), 64);
    assert_eq!(d.handles.metrics.carp_events_ignored.get(), 36);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_superseded_by_a_hold_gets_its_answer() {
    let d = TestDaemon::start(&format!(
        "hold_on_boot = false\nmin_hold = \"0s\"\nstable_for = \"0s\"\n{BACKEND}"
    ))
    .await;
    let socket = d.socket.clone();
    let drain = tokio::spawn(async move {
        failbackd::control::request(
            &socket,
            &Request::Drain { timeout_ms: 120_000 },
            Duration::from_secs(130),
        )
        .await
    });
    d.wait_phase("draining", Duration::from_secs(10)).await;
    assert!(d.request(Request::Hold { reason: None }).await.ok);
    let reply: Reply = tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .expect("the drain was answered when the hold took over")
        .unwrap()
        .unwrap();
    assert!(!reply.ok);
    assert!(reply.error.unwrap_or_default().contains("superseded"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_promote_in_progress_finish() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("promoted");
    let cfg = format!(
        "min_hold = \"0s\"\nstable_for = \"0s\"\n[backend]\ntype = \"command\"\ndemote = [\"true\"]\n\
         promote = [\"sh\", \"-c\", \"sleep 1; touch {}\"]\n",
        done.display()
    );
    let d = TestDaemon::start_in(dir, &cfg, Default::default()).await;
    d.wait_phase("releasing", Duration::from_secs(10)).await;
    let (dir, _) = d.stop().await;
    assert!(dir.path().join("promoted").exists(), "the stop cut the promote mid-call");
}

/// "Not risen yet" is unknown, never down: a probe that has neither risen nor fallen since the
/// arm has no `failback_probe_up` series (an alert reading `== 0` must not see a fresh tally as
/// a dead path); once it failed `fall` times in a row it is 0.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_probe_not_known_yet_has_no_up_series_and_a_fallen_one_reads_0() {
    let d = TestDaemon::start(&format!(
        "max_hold = \"1h\"\n{BACKEND}[[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:9\"\ninterval = \"1m\"\ntimeout = \"1s\"\nrise = 2\nfall = 2\n"
    ))
    .await;
    let m = &d.handles.metrics;
    let attempts = || m.probe_attempts.with_label_values(&["gw", "failure"]).get();
    let scrape = || String::from_utf8(m.encode().expect("encode")).expect("utf-8");
    d.wait_phase("probing", Duration::from_secs(60)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while attempts() < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(attempts(), 1, "one failed attempt, fall is 2");
    let one = scrape();
    assert!(!one.contains("failback_probe_up{probe=\"gw\"}"), "unknown served as a value:\n{one}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while attempts() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scrape().contains("failback_probe_up{probe=\"gw\"} 0"), "{}", scrape());
    d.stop().await;
}
