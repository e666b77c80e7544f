//! The daemon end to end, in-process: real probes on loopback, the real control socket and
//! HTTP server, the simulated backend — on paused tokio time (the driver takes tokio's clock),
//! so timers are exact and the file runs in milliseconds. In-process loopback I/O (a refused or
//! accepted TCP connect, the Unix socket) completes before paused time moves on; probes that
//! run programs stay in tests on real time (faults.rs, measured_state.rs).

mod support;

use failbackd::control::Request;
use failbackd::machine::CarpState;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{LatePort, TestDaemon};

const LIMIT: Duration = Duration::from_secs(20);

fn config(port: std::net::SocketAddr) -> String {
    format!(
        "min_hold = \"0s\"\nstable_for = \"500ms\"\nmax_hold = \"30s\"\n\
         [backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"{port}\"\ninterval = \"200ms\"\nrise = 2\nfall = 2\n"
    )
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn holds_from_boot_until_the_probe_passes_then_releases() {
    let mut port = LatePort::new();
    let d = TestDaemon::start(&config(port.addr)).await;
    d.wait_phase("probing", LIMIT).await;
    assert!(d.sim.state.demoted.load(Ordering::SeqCst), "demoted from boot");
    // Several refused attempts keep it held.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(d.phase(), "probing");
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.failback.as_ref().unwrap().blockers, vec!["gw".to_string()]);
    assert!(st.probes[0].last_error.as_deref().unwrap_or("").contains("refused"), "{:?}", st.probes[0]);

    port.listen();
    d.wait_phase("released", LIMIT).await;
    assert!(!d.sim.state.demoted.load(Ordering::SeqCst));
    assert_eq!(d.sim.state.demotes.load(Ordering::SeqCst), 1);
    assert_eq!(d.sim.state.promotes.load(Ordering::SeqCst), 1);
    let (code, metrics) = d.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("failback_failbacks_total{outcome=\"released\"} 1"), "{metrics}");
    assert!(metrics.contains("failback_phase{phase=\"released\"} 1"));
    assert!(metrics.contains("failback_held_in_maintenance 0"));
    assert!(metrics.contains("failback_probe_attempts_total{probe=\"gw\",result=\"failure\"}"));
    // Held from boot: the failback waits for the probe, so its attempts ran at fast_interval.
    let fast = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("failback_probe_attempts_by_interval_total{interval=\"fast\",probe=\"gw\"} ")
        })
        .and_then(|v| v.parse::<u64>().ok());
    assert!(fast.is_some_and(|n| n >= 2), "{metrics}");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn control_socket_is_0600_and_answers_status_hold_release() {
    let port = LatePort::new();
    let d = TestDaemon::start(&config(port.addr)).await;
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    d.wait_phase("probing", LIMIT).await;

    let r = d.request(Request::Release { force: false }).await;
    assert!(!r.ok);
    assert_eq!(r.error.as_deref(), Some("not released: required probes down: gw (use --force)"));
    assert_eq!(d.phase(), "probing");

    let r = d.request(Request::Release { force: true }).await;
    assert!(r.ok, "{r:?}");
    d.wait_phase("released", LIMIT).await;

    let r = d.request(Request::Hold { reason: Some("maintenance".into()) }).await;
    assert!(r.ok);
    d.wait_phase("probing", LIMIT).await;
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.failback.unwrap().trigger, "manual");
    assert_eq!(st.last_outcome.as_deref(), Some("forced"));
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn bad_control_requests_get_an_error_reply_not_a_hang() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = LatePort::new();
    let d = TestDaemon::start(&config(port.addr)).await;
    for line in [
        "not json\n".to_string(),
        "{\"cmd\":\"reboot\"}\n".to_string(),
        "{\"cmd\":\"status\",\"extra\":1}\n".to_string(),
        "{\"cmd\":\"hook\",\"vhid\":1,\"iface\":\"em0\",\"state\":\"UP\"}\n".to_string(),
        format!("{}\n", "x".repeat(failbackd::control::MAX_LINE + 10)),
    ] {
        let mut s = tokio::net::UnixStream::connect(&d.socket).await.unwrap();
        let _ = s.write_all(line.as_bytes()).await;
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut reply)).await.unwrap().unwrap();
        let reply: failbackd::control::Reply = serde_json::from_str(reply.trim()).unwrap();
        assert!(!reply.ok, "{line:.40} -> {reply:?}");
        assert!(reply.error.is_some());
    }
    // Still serving.
    assert!(d.request(Request::Status {}).await.ok);
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn unwatched_carp_events_create_no_series() {
    let port = LatePort::new();
    let cfg = format!("watch = [\"1@em0\"]\nhold_on_boot = false\n{}", config(port.addr));
    let d = TestDaemon::start(&cfg).await;
    for i in 0..50u16 {
        let r =
            d.request(Request::Hook { vhid: 2 + i, iface: format!("x{i}"), state: CarpState::Master }).await;
        assert_eq!(r.message.as_deref(), Some("not watched; ignored"));
    }
    assert_eq!(d.phase(), "idle");
    let (_, metrics) = d.get("/metrics").await;
    assert!(!metrics.contains("interface=\"x1\""));
    assert!(metrics.contains("failback_carp_events_ignored_total 50"), "{metrics}");

    let r = d.request(Request::Hook { vhid: 1, iface: "em0".into(), state: CarpState::Backup }).await;
    assert!(r.ok);
    d.wait_phase("probing", LIMIT).await;
    let (_, metrics) = d.get("/metrics").await;
    assert!(
        metrics.contains("failback_carp_transitions_total{interface=\"em0\",state=\"BACKUP\",vhid=\"1\"} 1"),
        "{metrics}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restart_during_a_hold_resumes_it_without_a_second_demote() {
    let port = LatePort::new();
    let cfg = config(port.addr);
    let d = TestDaemon::start(&cfg).await;
    d.wait_phase("probing", LIMIT).await;
    let (dir, sim) = d.stop().await;
    assert!(sim.state.demoted.load(Ordering::SeqCst));

    let d = TestDaemon::start_in(dir, &cfg, sim).await;
    d.wait_phase("probing", LIMIT).await;
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.failback.unwrap().trigger, "resume");
    assert_eq!(d.sim.state.demotes.load(Ordering::SeqCst), 1, "no second demote");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn restart_after_release_does_not_hold_again() {
    let mut port = LatePort::new();
    port.listen();
    let cfg = config(port.addr);
    let d = TestDaemon::start(&cfg).await;
    d.wait_phase("released", LIMIT).await;
    let (dir, sim) = d.stop().await;

    let d = TestDaemon::start_in(dir, &cfg, sim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.phase(), "released");
    assert_eq!(d.sim.state.demotes.load(Ordering::SeqCst), 1);
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn http_endpoints() {
    let port = LatePort::new();
    let d = TestDaemon::start(&config(port.addr)).await;
    d.wait_phase("probing", LIMIT).await;
    assert_eq!(d.get("/healthz").await, (200, "ok\n".to_string()));
    let (code, body) = d.get("/status").await;
    assert_eq!(code, 200);
    let st: failbackd::status::Status = serde_json::from_str(&body).unwrap();
    assert_eq!(st.phase, "probing");
    assert_eq!(st.demoted, Some(true));
    assert_eq!(d.get("/nope").await.0, 404);
    d.stop().await;
}
