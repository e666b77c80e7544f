//! Drift with each real backend, in-process: fake `sysctl`/`configctl`/`ifconfig` that carry the
//! platform's semantics (tests/support/fake-*.sh cite the sources) and a real keepalived track
//! file. The demotion is changed behind the daemon's back; the daemon notices within a
//! reconcile tick, re-applies its own lever only, leaves foreign demotion alone, and counts it.

mod fakes;
mod support;

use failbackd::machine::Drift;
use fakes::Fakes;
use std::time::Duration;
use support::TestDaemon;

const LIMIT: Duration = Duration::from_secs(20);
const OURS: i64 = 1 << 19;

/// Polls (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let wait = async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(LIMIT, wait).await.is_err() {
        panic!("timed out waiting for {what}");
    }
}

fn drift(d: &TestDaemon, direction: Drift) -> u64 {
    d.handles.metrics.drift.with_label_values(&[direction.as_str()]).get()
}

const IFCONFIG: &str =
    "vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\
\tinet 198.51.100.2 netmask 0xffffff00 broadcast 198.51.100.255\n\
\tinet 198.51.100.1 netmask 0xffffff00 broadcast 198.51.100.255 vhid 1\n\
\tcarp: MASTER vhid 1 advbase 1 advskew 0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freebsd_drift_is_put_back_and_foreign_demotion_is_left_alone() {
    let f = Fakes::new();
    f.set_ifconfig(IFCONFIG);
    f.set_demotion(0);
    let d = TestDaemon::start(&format!(
        "watch = [\"*@vtnet0\"]\nreconcile_interval = \"200ms\"\n[backend]\ntype = \"freebsd\"\nsysctl = {:?}\nifconfig = {:?}\n\
         [[probe]]\nname = \"wan\"\ntype = \"command\"\ncommand = [\"false\"]\ninterval = \"200ms\"\n",
        f.sysctl(),
        f.ifconfig()
    ))
    .await;
    // The CARP state comes from ifconfig at start, before any hook was sent.
    let st = d.request(failbackd::control::Request::Status {}).await.status.unwrap();
    assert_eq!(st.carp.len(), 1, "{:?}", st.carp);
    assert_eq!(
        (st.carp[0].vhid, st.carp[0].iface.as_str(), st.carp[0].state.as_str()),
        (1, "vtnet0", "MASTER")
    );
    assert_eq!(d.handles.metrics.carp_state.with_label_values(&["1", "vtnet0", "MASTER"]).get(), 1);
    d.wait_phase("probing", LIMIT).await;
    assert_eq!(f.demotion(), OURS);

    // Leaving OPNsense-style maintenance resets the demotion to the tunable baseline (0).
    f.set_demotion(0);
    until("the hold put back", || f.demotion() == OURS).await;
    until("the drift counted", || drift(&d, Drift::Removed) == 1).await;
    assert_eq!(d.phase(), "probing");

    // A kernel interface-down demotion (+240) on top of ours: not failbackd's, never touched.
    f.set_demotion(OURS + 240);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(f.demotion(), OURS + 240);
    assert_eq!(drift(&d, Drift::Removed), 1);
    let writes = f.sysctl_writes();
    assert!(
        writes.iter().all(|w| w.ends_with(&format!("={OURS}")) || w.ends_with(&format!("=-{OURS}"))),
        "failbackd only ever adds or removes its own bit: {writes:?}"
    );
    let st = d.request(failbackd::control::Request::Status {}).await.status.unwrap();
    let measured = st.measured.unwrap();
    assert_eq!((measured.held, measured.demotion), (Some(true), Some(OURS + 240)));
    assert!(measured.others.iter().any(|o| o.contains("240")), "{:?}", measured.others);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freebsd_a_negative_demotion_is_an_error_never_held() {
    let f = Fakes::new();
    f.set_demotion(-240);
    let d = TestDaemon::start(&format!(
        "reconcile_interval = \"200ms\"\nhold_on_boot = false\n[backend]\ntype = \"freebsd\"\nsysctl = {:?}\nifconfig = {:?}\n",
        f.sysctl(),
        f.ifconfig()
    ))
    .await;
    let m = &d.handles.metrics;
    until("observe errors", || m.backend_errors.with_label_values(&["freebsd", "observe"]).get() >= 2).await;
    assert_eq!(m.held.get(), 0, "never read as held");
    let st = d.request(failbackd::control::Request::Status {}).await.status.unwrap();
    assert_eq!(st.demoted, None, "unknown, not held");
    assert_eq!(st.phase, "idle");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opnsense_operator_maintenance_at_boot_survives_a_full_failback() {
    let f = Fakes::new();
    f.set_maintenance(true);
    let d = TestDaemon::start(&format!(
        "min_hold = \"0s\"\nstable_for = \"0s\"\nreconcile_interval = \"200ms\"\n[backend]\ntype = \"opnsense\"\nmode = \"maintenance\"\n\
         configctl = {:?}\nifconfig = {:?}\n",
        f.configctl(),
        f.ifconfig()
    ))
    .await;
    d.wait_phase("released", LIMIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(f.maintenance(), "the operator's maintenance was left on");
    assert_eq!(f.count("configctl interface carp_set_status maintenance"), 0, "never toggled");
    assert_eq!(d.handles.metrics.foreign_hold.get(), 1);
    assert_eq!(drift(&d, Drift::Added), 0, "a foreign hold is not drift");
    let st = d.request(failbackd::control::Request::Status {}).await.status.unwrap();
    assert!(st.measured.unwrap().foreign);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalived_track_file_changed_behind_our_back_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let track = dir.path().join("hold");
    let d = TestDaemon::start(&format!(
        "min_hold = \"0s\"\nstable_for = \"0s\"\nreconcile_interval = \"200ms\"\n[backend]\ntype = \"keepalived\"\ntrack_file = {:?}\n",
        track
    ))
    .await;
    d.wait_phase("released", LIMIT).await;
    let read = || std::fs::read_to_string(&track).unwrap_or_default().trim().to_string();
    assert_eq!(read(), "0");
    std::fs::write(&track, "-253\n").unwrap();
    until("the release put back", || read() == "0").await;
    until("the drift counted", || drift(&d, Drift::Added) == 1).await;
    assert_eq!(d.phase(), "released");
    assert_eq!(d.handles.metrics.carp_demotion.with_label_values(&[] as &[&str]).get(), 0);
    d.stop().await;
}
