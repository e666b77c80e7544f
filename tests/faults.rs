//! Faults that must never stall or strand the daemon: hung and garbage probes, a failing or
//! hanging backend, and a storm of hook calls.

mod support;

use failbackd::control::{Reply, Request};
use failbackd::machine::CarpState;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::TestDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

/// A TCP server on 127.0.0.1 that accepts and then never says a word (a blackholed service).
async fn silent_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// An HTTP "server" that answers garbage.
async fn garbage_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n").await;
            });
        }
    });
    addr
}

fn attempts(d: &TestDaemon, probe: &str) -> u64 {
    ["success", "failure", "timeout"]
        .iter()
        .map(|r| d.handles.metrics.probe_attempts.with_label_values(&[probe, r]).get())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_garbage_and_blackholed_probes_stall_nothing() {
    let silent = silent_server().await;
    let garbage = garbage_server().await;
    let d = TestDaemon::start(&format!(
        "[backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"hangs\"\ntype = \"command\"\ncommand = [\"sleep\", \"1000\"]\ninterval = \"300ms\"\n\
         [[probe]]\nname = \"blackhole\"\ntype = \"http\"\ntarget = \"http://{silent}/\"\ninterval = \"300ms\"\n\
         [[probe]]\nname = \"garbage\"\ntype = \"http\"\ntarget = \"http://{garbage}/\"\ninterval = \"300ms\"\n\
         [[probe]]\nname = \"fine\"\ntype = \"command\"\ncommand = [\"true\"]\ninterval = \"100ms\"\n"
    ))
    .await;
    d.wait_phase("probing", LIMIT).await;
    // While three probes hang or fail, the fourth keeps reporting, and the control socket and
    // /metrics answer.
    let before = attempts(&d, "fine");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(attempts(&d, "fine") > before + 3, "the healthy probe kept its schedule");
    let m = &d.handles.metrics;
    assert!(m.probe_attempts.with_label_values(&["hangs", "timeout"]).get() >= 1);
    assert!(m.probe_attempts.with_label_values(&["blackhole", "timeout"]).get() >= 1);
    assert!(m.probe_attempts.with_label_values(&["garbage", "failure"]).get() >= 1);
    let st = d.request(Request::Status {}).await.status.unwrap();
    let err = |name: &str| {
        st.probes.iter().find(|p| p.name == name).and_then(|p| p.last_error.clone()).unwrap_or_default()
    };
    assert!(err("hangs").contains("timed out"), "{}", err("hangs"));
    assert!(!err("garbage").is_empty());
    assert_eq!(d.get("/metrics").await.0, 200);
    assert_eq!(st.phase, "probing", "never released with required probes down");
    assert!(d.sim.state.demoted.load(Ordering::SeqCst));
    d.stop().await;
}

// On paused tokio time (the driver takes tokio's clock): the backoff is checked exactly.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn demote_failures_are_retried_with_backoff_and_counted() {
    let sim = failbackd::carp::simulated::SimulatedBackend::default();
    sim.state.fail_next.store(2, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let d =
        TestDaemon::start_in(tempfile::tempdir().unwrap(), "[backend]\ntype = \"simulated\"\n", sim).await;
    // Retries after 1 s and 2 s: held all along, then in place (no probes: straight on to
    // stabilizing).
    d.wait_phase("stabilizing", LIMIT).await;
    assert_eq!(started.elapsed().as_secs(), 3, "1 s + 2 s of backoff, on tokio's clock");
    assert_eq!(d.handles.metrics.backend_errors.with_label_values(&["simulated", "demote"]).get(), 2);
    assert_eq!(d.sim.state.demotes.load(Ordering::SeqCst), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_failure_leaves_a_visible_releasing_state_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up");
    let cfg = format!(
        "min_hold = \"0s\"\nstable_for = \"0s\"\n[backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"p\"\ntype = \"command\"\ncommand = [\"test\", \"-e\", \"{}\"]\ninterval = \"100ms\"\nrise = 1\n",
        up.display()
    );
    let d = TestDaemon::start_in(dir, &cfg, Default::default()).await;
    d.wait_phase("probing", LIMIT).await;
    // The demote is in place; the next backend call (the promote) fails once.
    d.sim.state.fail_next.store(1, Ordering::SeqCst);
    std::fs::write(&up, "").unwrap();
    let errors = || d.handles.metrics.backend_errors.with_label_values(&["simulated", "promote"]).get();
    let wait = async {
        while errors() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(LIMIT, wait).await.expect("the promote failed");
    // Not a silent Released: the phase says releasing and the node is still demoted.
    assert_eq!(d.phase(), "releasing");
    assert!(d.sim.state.demoted.load(Ordering::SeqCst));
    assert_eq!(d.handles.metrics.phase.with_label_values(&["releasing"]).get(), 1);
    // The retry (after 1 s) goes through.
    d.wait_phase("released", LIMIT).await;
    assert!(!d.sim.state.demoted.load(Ordering::SeqCst));
    assert_eq!(errors(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_times_out_and_the_daemon_stays_responsive() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("works");
    let cfg = format!(
        "[backend]\ntype = \"command\"\n\
         demote = [\"sh\", \"-c\", \"test -e {f} || sleep 1000\"]\npromote = [\"true\"]\ntimeout = \"300ms\"\n",
        f = flag.display()
    );
    let d = TestDaemon::start_in(dir, &cfg, Default::default()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(d.phase(), "holding", "the demote is not in place yet");
    let st = d.request(Request::Status {}).await;
    assert!(st.ok, "the control socket answers during a hung backend call");
    assert!(d.handles.metrics.backend_errors.with_label_values(&["command", "demote"]).get() >= 1);
    std::fs::write(&flag, "").unwrap();
    d.wait_phase("stabilizing", LIMIT).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_storm_starts_one_failback_and_loses_no_reply() {
    let d = TestDaemon::start(
        "watch = [\"*@em0\", \"*@em1\"]\nhold_on_boot = false\n[backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"p\"\ntype = \"command\"\ncommand = [\"false\"]\n",
    )
    .await;
    let states = [CarpState::Init, CarpState::Backup, CarpState::Master];
    let mut tasks = Vec::new();
    for i in 0..1000u16 {
        let socket = d.socket.clone();
        let req = Request::Hook {
            vhid: 1 + i % 20,
            iface: format!("em{}", i % 3),
            state: states[usize::from(i) % 3],
        };
        tasks.push(tokio::spawn(async move {
            failbackd::control::request(&socket, &req, Duration::from_secs(20)).await
        }));
    }
    let mut accepted = 0u64;
    let mut busy = 0u64;
    let mut watched_accepted = 0u64;
    // Every hook for one vhid@iface repeats the same state here (state and interface both
    // follow i % 3): one transition per pair, however many hooks repeat it.
    let mut pairs = std::collections::BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let reply: Reply = t.await.unwrap().expect("every hook gets a reply");
        if reply.ok {
            accepted += 1;
            if i % 3 != 2 {
                watched_accepted += 1;
                pairs.insert((1 + i % 20, i % 3));
            }
        } else {
            assert_eq!(reply.error.as_deref(), Some("daemon busy: request queue full, try again"));
            busy += 1;
        }
    }
    assert_eq!(accepted + busy, 1000);
    assert_eq!(d.handles.metrics.control_requests_dropped.get(), busy, "what is dropped is counted");
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.failback.map(|f| f.id), Some(1), "exactly one failback");
    let m = &d.handles.metrics;
    let recorded: u64 = (1..=20u16)
        .flat_map(|v| ["em0", "em1"].map(move |i| (v, i)))
        .flat_map(|(v, i)| states.map(move |s| (v, i, s)))
        .map(|(v, i, s)| m.carp_transitions.with_label_values(&[&v.to_string(), i, s.as_str()]).get())
        .sum();
    assert_eq!(recorded, pairs.len() as u64, "each state change was counted once, repeats not at all");
    assert_eq!(m.carp_events_ignored.get(), accepted - watched_accepted);
    d.stop().await;
}
