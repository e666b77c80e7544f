//! `failbackd demo`: a simulated HA pair with real probes and real /metrics, no root, no config.
//!
//! Node A runs failbackd with the simulated backend; peer B is modelled: whoever is not demoted
//! and has the higher priority (A) is MASTER, as CARP preemption would decide. Every change of
//! A's CARP state goes to the daemon through the real control socket, as the syshook would send
//! it. The probes are real: a TCP "gateway" and an HTTP "tunnel health" endpoint on 127.0.0.1
//! that the demo brings up late (and, in the second story, never), plus ICMP to 127.0.0.1 when
//! raw sockets are allowed.
//!
//! Story 1: boot -> held -> probes fail for a few seconds -> pass -> stabilizing -> released.
//! Story 2: the link flaps, a new failback arms, the tunnel never recovers -> max hold -> failed
//! -> released by hand (`release --force`).

/// `println!` that a closed stdout (`failbackd demo | head`) does not turn into a panic.
macro_rules! outln {
    ($($arg:tt)*) => { crate::cli::out(&format!("{}\n", format_args!($($arg)*))) };
}

mod lab;

use crate::carp::simulated::SimulatedBackend;
use crate::config::{BackendConfig, Config, HookFallback, ProbeConfig, ProbeKind, WatchPattern};
use crate::control::{self, Request};
use crate::daemon::{self, Listeners};
use crate::machine::{CarpState, MaxHoldPolicy};
use lab::Lab;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The demo's timing; small so the whole story fits in well under a minute.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const RISE: u32 = 3;
const STABLE_FOR: Duration = Duration::from_secs(3);
const MAX_HOLD: Duration = Duration::from_secs(15);
/// When the "gateway" and "tunnel" come up in story 1.
const PATH_READY_AFTER: Duration = Duration::from_secs(4);
const VHID: u16 = 1;
const IFACE: &str = "demo0";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Stop after this long (default: when both stories are told).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Where to serve /metrics and /status (falls back to a free port if taken).
    #[arg(long, default_value = crate::config::DEFAULT_METRICS_LISTEN)]
    pub listen: SocketAddr,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    match tell(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn demo_config(dir: &Path, lab: &Lab, icmp: bool) -> Config {
    let probe = |name: &str, kind: ProbeKind| ProbeConfig {
        name: name.into(),
        kind,
        interval: PROBE_INTERVAL,
        fast_interval: PROBE_INTERVAL,
        down_interval: PROBE_INTERVAL,
        timeout: Duration::from_millis(800),
        rise: RISE,
        fall: 2,
        required: true,
        track: None,
    };
    let mut probes = vec![
        probe("gateway", ProbeKind::Tcp { target: lab.gateway_addr }),
        probe("tunnel", ProbeKind::Http { url: lab.tunnel_url(), expect_status: 200 }),
    ];
    if icmp {
        probes.push(probe("loopback-icmp", ProbeKind::Icmp { target: [127, 0, 0, 1].into() }));
    }
    Config {
        watch: vec![WatchPattern { vhid: Some(VHID), iface: Some(IFACE.into()) }],
        hold_on_boot: true,
        min_hold: Duration::ZERO,
        max_hold: MAX_HOLD,
        max_hold_policy: MaxHoldPolicy::Stay,
        stable_for: STABLE_FOR,
        reconcile_interval: Duration::from_secs(1),
        control_socket: dir.join("control.sock"),
        state_file: dir.join("state.json"),
        metrics_listen: lab.metrics_addr,
        hook_fallback: HookFallback::Nothing,
        backend: BackendConfig::Simulated,
        probes,
        telemetry: Default::default(),
        tracking: Default::default(),
    }
}

async fn tell(args: DemoArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = tempfile::Builder::new().prefix("failbackd-demo").tempdir().context("creating a temp dir")?;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let http = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            outln!("demo: {} is taken ({e}); using a free port", args.listen);
            tokio::net::TcpListener::bind("127.0.0.1:0").await?
        }
    };
    let lab = Lab::start(http.local_addr()?, cancel.clone(), &tracker).await?;
    let icmp = crate::probe::icmp::icmp_available();
    let cfg = demo_config(dir.path(), &lab, icmp);
    let socket = cfg.control_socket.clone();

    outln!("failbackd demo: a simulated CARP pair (A = this node, priority 100, preempt; B = peer)");
    outln!("  metrics  http://{}/metrics   status  http://{}/status", lab.metrics_addr, lab.metrics_addr);
    outln!("  probes   gateway tcp {}, tunnel http {}", lab.gateway_addr, lab.tunnel_url());
    if icmp {
        outln!("           loopback-icmp icmp 127.0.0.1");
    } else {
        outln!(
            "           (ICMP probe skipped: needs root or net.ipv4.ping_group_range covering your group)"
        );
    }
    outln!(
        "  rules    rise {RISE} x {}s, stable_for {}s, max_hold {}s then stay demoted\n",
        PROBE_INTERVAL.as_secs(),
        STABLE_FOR.as_secs(),
        MAX_HOLD.as_secs()
    );

    let sim = SimulatedBackend::default();
    let control = control::bind(&socket)?;
    let handles =
        daemon::start(cfg, Arc::new(sim.clone()), Listeners { control, http }, cancel.clone(), &tracker)
            .await?;
    let t0 = Instant::now();
    let say = move |msg: String| outln!("[{:>5.1}s] {msg}", t0.elapsed().as_secs_f64());
    say("boot: failbackd starts before CARP advertises and holds node A demoted (hold_on_boot)".into());

    tracker.spawn(narrate(handles.status.clone(), say, cancel.clone()));
    tracker.spawn(carp_model(sim, socket.clone(), say, cancel.clone()));

    let story = async {
        tokio::time::sleep(PATH_READY_AFTER).await;
        say("lab: gateway and tunnel come up (probes will pass from now)".into());
        let ready = Instant::now();
        lab.set_healthy(true)?;
        let released = wait_phase(&handles, "released", MAX_HOLD * 2).await?;
        let took = released.duration_since(ready).as_secs_f64();
        let bound = RISE as f64 * PROBE_INTERVAL.as_secs_f64() + STABLE_FOR.as_secs_f64() + 1.0;
        say(format!("story 1: released {took:.1}s after the path was ready (bound rise x interval + stable_for + 1s = {bound:.0}s)"));

        tokio::time::sleep(Duration::from_secs(2)).await;
        say("lab: link flap on demo0; the tunnel will not come back this time".into());
        lab.set_tunnel_healthy(false);
        hook(&socket, CarpState::Init).await;
        wait_phase(&handles, "failed", MAX_HOLD * 2).await?;
        say("story 2: max_hold reached, node stays demoted while the tunnel is down; an operator runs `failbackd release --force`"
            .into());
        let reply =
            control::request(&socket, &Request::Release { force: true }, Duration::from_secs(5)).await;
        say(format!(
            "release --force -> {}",
            reply.map_or_else(|e| e, |r| r.message.or(r.error).unwrap_or_default())
        ));
        wait_phase(&handles, "released", Duration::from_secs(10)).await?;
        tokio::time::sleep(Duration::from_millis(300)).await; // let the narrator catch up
        let outcomes = ["released", "forced", "failed", "aborted"]
            .map(|o| format!("{o}={}", handles.metrics.failbacks.with_label_values(&[o]).get()));
        say(format!("done; failback_failbacks_total: {}", outcomes.join(" ")));
        anyhow::Ok(())
    };

    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        outln!("\ninterrupted");
    };
    let result = match args.duration {
        Some(limit) => tokio::select! {
            r = story => {
                // The story is told: keep serving /metrics until the requested duration.
                if r.is_ok() { tokio::time::sleep(limit.saturating_sub(t0.elapsed())).await; }
                r
            }
            _ = tokio::time::sleep(limit) => Ok(()),
            _ = ctrl_c => Ok(()),
        },
        None => tokio::select! {
            r = story => r,
            _ = ctrl_c => Ok(()),
        },
    };
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    result
}

async fn hook(socket: &Path, state: CarpState) {
    let req = Request::Hook { vhid: VHID, iface: IFACE.into(), state };
    if let Err(e) = control::request(socket, &req, Duration::from_secs(2)).await {
        eprintln!("demo: hook failed: {e}");
    }
}

/// Waits until the daemon reports `phase`; returns when it did.
async fn wait_phase(handles: &daemon::Handles, phase: &str, limit: Duration) -> anyhow::Result<Instant> {
    let mut rx = handles.status.clone();
    let wait = async {
        loop {
            if rx.borrow_and_update().phase == phase {
                return Ok(Instant::now());
            }
            if rx.changed().await.is_err() {
                anyhow::bail!("the daemon stopped");
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| anyhow::anyhow!("no {phase} phase within {limit:?}"))?
}

/// Prints every phase change and probe up/down the daemon reports.
async fn narrate(
    mut rx: tokio::sync::watch::Receiver<crate::status::Status>,
    say: impl Fn(String),
    cancel: CancellationToken,
) {
    let mut last_phase = String::new();
    let mut ended = 0;
    let mut failback = None;
    let mut last_up: Vec<(String, bool)> = Vec::new();
    loop {
        {
            let st = rx.borrow_and_update();
            if st.phase != last_phase {
                let why = st
                    .failback
                    .as_ref()
                    .map(|f| format!(" (failback #{} by {})", f.id, f.trigger))
                    .unwrap_or_default();
                say(format!("phase {}{why}", st.phase));
                last_phase = st.phase.clone();
            }
            if st.failbacks_ended != ended {
                ended = st.failbacks_ended;
                say(format!(
                    "  failback #{ended} ended: outcome {}",
                    st.last_outcome.as_deref().unwrap_or("?")
                ));
            }
            let id = st.failback.as_ref().map(|f| f.id);
            if id.is_some() && id != failback {
                // A new failback resets every probe: each must pass `rise` times again.
                say(format!("  probes reset: each must pass {RISE} times in a row again"));
                last_up.iter_mut().for_each(|(_, up)| *up = false);
            }
            failback = id;
            let up: Vec<(String, bool)> = st.probes.iter().map(|p| (p.name.clone(), p.up)).collect();
            for (name, is_up) in &up {
                let was = last_up.iter().find(|(n, _)| n == name).is_some_and(|(_, u)| *u);
                if was != *is_up {
                    say(format!("  probe {name} {}", if *is_up { "up" } else { "down" }));
                }
            }
            last_up = up;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// Peer B and CARP preemption: A is MASTER exactly when it is not demoted. Each change of A's
/// state is sent to the daemon as the CARP syshook would.
async fn carp_model(
    sim: SimulatedBackend,
    socket: std::path::PathBuf,
    say: impl Fn(String),
    cancel: CancellationToken,
) {
    // The node boots: CARP starts in INIT; failbackd has demoted it before it advertises.
    hook(&socket, CarpState::Init).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut last: Option<bool> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let demoted = sim.state.demoted.load(Ordering::SeqCst);
        if last == Some(demoted) {
            continue;
        }
        last = Some(demoted);
        let (a, b) = if demoted { (CarpState::Backup, "MASTER") } else { (CarpState::Master, "BACKUP") };
        say(format!("carp: A {a}, B {b}{}", if demoted { " (A demoted)" } else { " (A preempts)" }));
        hook(&socket, a).await;
    }
}
