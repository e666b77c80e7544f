//! More watched `vhid@iface` than failbackd tracks (64): the ones beyond the cap are counted in
//! `failback_carp_vhids_unmonitored` and logged, not dropped silently. In-process, paused time.

mod support;

use failbackd::carp::CarpSeen;
use failbackd::machine::CarpState;
use std::time::Duration;
use support::TestDaemon;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn vhids_beyond_the_cap_are_counted() {
    let sim = failbackd::carp::simulated::SimulatedBackend::default();
    let reported = 70u16;
    sim.set_carp(
        (1..=reported).map(|vhid| CarpSeen { vhid, iface: "em0".into(), state: CarpState::Backup }).collect(),
    );
    let cfg = "watch = [\"*@*\"]\nhold_on_boot = false\nreconcile_interval = \"1s\"\n[backend]\ntype = \"simulated\"\n";
    let d = TestDaemon::start_in(tempfile::tempdir().unwrap(), cfg, sim).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, body) = d.get("/metrics").await;
    let tracked = body.lines().filter(|l| l.starts_with("failback_carp_state{") && l.ends_with(" 1")).count();
    assert_eq!(tracked, 64, "{body}");
    assert!(body.contains("failback_carp_vhids_unmonitored 6"), "{body}");
    d.stop().await;
}
