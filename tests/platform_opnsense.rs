//! The opnsense backend against a fake `configctl` (tests/support/fake-configctl.sh) that
//! mirrors opnsense/core: carp_set_status.php's maintenance toggle, carp_global_status.php's
//! JSON, and carp_service_status's checks directory with the 2^20 bit. The service-status path
//! runs end to end: the real rc.d/carp-service-status check, the real `failbackd ready`
//! binary, and a daemon holding and releasing.

mod fakes;
mod support;

use failbackd::carp::opnsense::OpnsenseBackend;
use failbackd::carp::Backend;
use failbackd::config::OpnsenseMode;
use fakes::Fakes;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const BIT: i64 = 1 << 20;
const LIMIT: Duration = Duration::from_secs(30);

fn maintenance_backend(f: &Fakes) -> OpnsenseBackend {
    backend(f, OpnsenseMode::Maintenance)
}

fn backend(f: &Fakes, mode: OpnsenseMode) -> OpnsenseBackend {
    OpnsenseBackend::new(mode, f.configctl(), f.ifconfig(), Duration::from_secs(10), &f.state_file())
}

fn marker(f: &Fakes) -> bool {
    f.path("state.json.maintenance").exists()
}

const TOGGLE: &str = "configctl interface carp_set_status maintenance";

#[test]
fn the_fake_toggles_like_carp_set_status_php() {
    let f = Fakes::new();
    let run = || {
        let out = std::process::Command::new(f.configctl())
            .args(["interface", "carp_set_status", "maintenance"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run().trim(), r#"{"status":"ok","action":"enter_maintenance"}"#);
    assert_eq!(f.demotion(), 240);
    // The same call again LEAVES: that is the forum script's trap.
    assert_eq!(run().trim(), r#"{"status":"ok","action":"leave_maintenance"}"#);
    assert_eq!(f.demotion(), 0);
    assert_eq!(f.config_writes(), 2);
}

#[tokio::test]
async fn maintenance_mode_never_toggles_blindly() {
    let f = Fakes::new();
    let b = maintenance_backend(&f);
    b.promote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 0, "promote on a promoted node must not toggle in");
    b.demote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 1);
    assert!(f.maintenance() && marker(&f), "failbackd's own maintenance is marked");
    b.demote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 1, "demote on a demoted node must not toggle out: {:?}", f.calls());
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.foreign, o.demotion), (Some(true), false, Some(240)));
    assert!(o.others.is_empty(), "{:?}", o.others);

    b.promote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 2, "failbackd leaves the maintenance it entered");
    assert!(!f.maintenance() && !marker(&f));
    b.promote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 2);
    assert_eq!(f.demotion(), 0);
    assert_eq!(f.config_writes(), 2, "each toggle writes config.xml");
}

#[tokio::test]
async fn operator_maintenance_at_boot_survives_demote_and_promote() {
    // Booted in persistent maintenance (config.xml key present): carp_set_status.php's 240.
    let f = Fakes::new();
    f.set_maintenance(true);
    f.set_demotion(240);
    let b = maintenance_backend(&f);
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.foreign, o.demoted), (Some(true), true, Some(true)));
    assert_eq!(o.others, vec!["maintenance mode (entered outside failbackd)"]);

    b.demote().await.unwrap();
    assert!(!marker(&f), "an operator's maintenance is not taken over");
    b.promote().await.unwrap();
    b.promote().await.unwrap();
    assert_eq!(f.count(TOGGLE), 0, "left an operator's maintenance: {:?}", f.calls());
    assert!(f.maintenance());
    assert_eq!(f.demotion(), 240);
    assert_eq!(f.config_writes(), 0);

    // The operator leaves it; from then on failbackd's hold is its own again.
    std::process::Command::new(f.configctl())
        .args(["interface", "carp_set_status", "maintenance"])
        .output()
        .unwrap();
    assert_eq!(b.observe().await.unwrap().held, Some(false));
    b.demote().await.unwrap();
    assert!(marker(&f));
    b.promote().await.unwrap();
    assert!(!f.maintenance() && !marker(&f));
}

#[tokio::test]
async fn a_marker_whose_maintenance_was_left_by_someone_else_is_dropped() {
    let f = Fakes::new();
    let b = maintenance_backend(&f);
    b.demote().await.unwrap();
    assert!(marker(&f));
    let toggle = || {
        std::process::Command::new(f.configctl())
            .args(["interface", "carp_set_status", "maintenance"])
            .output()
            .unwrap()
    };
    toggle(); // the operator leaves failbackd's maintenance
    let o = b.observe().await.unwrap();
    assert_eq!(o.held, Some(false));
    assert!(!marker(&f), "stale marker kept");
    toggle(); // and later enters their own
    assert!(b.observe().await.unwrap().foreign);
    b.promote().await.unwrap();
    assert!(f.maintenance(), "failbackd left the operator's later maintenance");
}

#[tokio::test]
async fn negative_demotion_is_an_error_in_both_modes() {
    let f = Fakes::new();
    f.set_demotion(-240);
    for mode in [OpnsenseMode::Maintenance, OpnsenseMode::ServiceStatus] {
        let b = backend(&f, mode);
        let e = b.observe().await.unwrap_err();
        assert!(e.0.contains("net.inet.carp.demotion is -240: negative"), "{mode:?}: {e}");
        assert!(b.demote().await.is_err(), "{mode:?}");
        assert!(b.demoted().await.is_err(), "{mode:?}");
    }
    assert_eq!(f.count(TOGGLE), 0);
}

#[tokio::test]
async fn observe_reads_the_service_bit_other_sources_and_carp_states() {
    let f = Fakes::new();
    f.set_ifconfig(
        "vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\
         \tinet 192.0.2.1 netmask 0xffffff00 broadcast 192.0.2.255 vhid 3\n\
         \tcarp: BACKUP vhid 3 advbase 1 advskew 0\n",
    );
    f.set_demotion(BIT + 240);
    let b = backend(&f, OpnsenseMode::ServiceStatus);
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.foreign, o.demoted, o.demotion), (Some(true), false, Some(true), Some(BIT + 240)));
    assert_eq!(o.others, vec!["other sources add 240 (interface down?)"]);
    let carp = o.carp.unwrap();
    assert_eq!((carp[0].vhid, carp[0].iface.as_str(), carp[0].state.as_str()), (3, "vtnet0", "BACKUP"));
    f.set_maintenance(true);
    let o = b.observe().await.unwrap();
    assert!(o.others.iter().any(|s| s.starts_with("maintenance mode")), "{:?}", o.others);
}

#[tokio::test]
async fn leaving_maintenance_wipes_other_demotion_sources() {
    // The documented caveat of the compatibility mode: leave resets to the tunable baseline.
    let f = Fakes::new();
    let b = maintenance_backend(&f);
    b.demote().await.unwrap();
    f.set_demotion(f.demotion() + BIT); // a failing service check meanwhile
    b.promote().await.unwrap();
    assert_eq!(f.demotion(), 0);
    std::fs::write(f.path("tunable"), "50\n").unwrap();
    b.demote().await.unwrap();
    b.promote().await.unwrap();
    assert_eq!(f.demotion(), 50);
}

/// Installs the real rc.d/carp-service-status into the fake checks directory, pointed at this
/// build's binary and `config`.
fn install_check(f: &Fakes, config: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("rc.d/carp-service-status");
    let text = std::fs::read_to_string(src).unwrap();
    let text = text
        .replace(
            "FAILBACKD=/usr/local/bin/failbackd",
            &format!("FAILBACKD={}", env!("CARGO_BIN_EXE_failbackd")),
        )
        .replace(
            "FAILBACKD_CONFIG=/usr/local/etc/failbackd.toml",
            &format!("FAILBACKD_CONFIG={}", config.display()),
        );
    assert!(text.contains(env!("CARGO_BIN_EXE_failbackd")), "the check's paths moved");
    let to = f.path("rc.carp_service_status.d/failbackd");
    std::fs::write(&to, text).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ready(config: &Path) -> i32 {
    std::process::Command::new(env!("CARGO_BIN_EXE_failbackd"))
        .args(["ready", "--config"])
        .arg(config)
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

fn service_status(f: &Fakes) {
    let out = std::process::Command::new(f.configctl())
        .args(["interface", "update", "carp", "service_status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_status_mode_holds_from_boot_and_releases_without_touching_config_xml() {
    let f = Fakes::new();
    f.set_demotion(240); // a down interface: not ours, must survive
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let body = format!(
        "hold_on_boot = true\nmin_hold = \"0s\"\nstable_for = \"300ms\"\nmax_hold = \"5m\"\n\
         [backend]\ntype = \"opnsense\"\nconfigctl = {:?}\nifconfig = {:?}\n\
         [[probe]]\nname = \"gate\"\ntype = \"command\"\ncommand = [\"test\", \"-f\", {:?}]\n\
         interval = \"100ms\"\nrise = 1\nfall = 1\n",
        f.configctl(),
        f.ifconfig(),
        go.to_str().unwrap()
    );
    // The config `failbackd ready` reads: same socket and state file as the daemon below
    // (tests/support puts them at control.sock and state.json in its dir).
    let ready_conf = f.path("failbackd.toml");
    std::fs::write(
        &ready_conf,
        format!(
            "control_socket = {:?}\nstate_file = {:?}\n{body}",
            dir.path().join("control.sock"),
            dir.path().join("state.json")
        ),
    )
    .unwrap();
    install_check(&f, &ready_conf);

    // Early boot (rc.syshook.d/early/90-carp): no daemon, no state file, hold_on_boot.
    assert_eq!(ready(&ready_conf), 1);
    service_status(&f);
    assert_eq!(f.demotion(), 240 + BIT, "the node must come up demoted");

    // The daemon starts (start/20-freebsd), finds the hold and keeps it.
    let d = support::TestDaemon::start_in(dir, &body, Default::default()).await;
    d.wait_phase("probing", LIMIT).await;
    assert_eq!(ready(&ready_conf), 1, "held while probing");
    service_status(&f); // anyone re-evaluating meanwhile keeps the bit
    assert_eq!(f.demotion(), 240 + BIT, "never added twice");

    std::fs::write(&go, "").unwrap();
    d.wait_phase("released", LIMIT).await;
    // The release's own service_status call removed the bit; the kernel's 240 stays.
    assert_eq!(f.demotion(), 240);
    assert_eq!(ready(&ready_conf), 0);
    assert_eq!(f.count(TOGGLE), 0);
    assert_eq!(f.config_writes(), 0, "service_status mode must not write config.xml");
    assert!(f.count("configctl interface update carp service_status") >= 3, "{:?}", f.calls());

    // Daemon gone: `ready` answers from the state file (released).
    let (_dir, _) = d.stop().await;
    assert_eq!(ready(&ready_conf), 0);
}

#[tokio::test]
async fn service_status_without_the_check_installed_is_an_error_not_a_silent_no_op() {
    let f = Fakes::new();
    let b = backend(&f, OpnsenseMode::ServiceStatus);
    let e = b.demote().await.unwrap_err();
    assert!(e.0.contains("rc.carp_service_status.d/failbackd"), "{e}");
    assert_eq!(b.demoted().await, Ok(Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_maintenance_demotes_toggle_once() {
    // The daemon and the hook's fail-safe at the same moment; `show` is slow (the fake sysctl
    // behind it sleeps after each read), so without the lock both would read "off" and the
    // second toggle would leave the maintenance the first entered.
    let f = Fakes::new();
    std::fs::write(f.path("read-delay"), "0.3\n").unwrap();
    let (a, b) = (maintenance_backend(&f), maintenance_backend(&f));
    let (ra, rb) = tokio::join!(a.demote(), b.demote());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(f.count(TOGGLE), 1, "{:?}", f.calls());
    assert!(f.maintenance() && marker(&f));
}
