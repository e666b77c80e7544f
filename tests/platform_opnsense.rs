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
    let c = service_status_config(&f, true, "300ms", "5s");
    let ready_conf = c.ready_conf.clone();

    // Early boot (rc.syshook.d/early/90-carp): no daemon, no state file, hold_on_boot.
    assert_eq!(ready(&ready_conf), 1);
    service_status(&f);
    assert_eq!(f.demotion(), 240 + BIT, "the node must come up demoted");

    // The daemon starts (start/20-freebsd), finds the hold and keeps it.
    let (d, go) = c.start().await;
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

/// A `service_status` daemon's configuration, with failbackd's real check installed; the probe
/// passes once `go` exists. `ready_conf` is the file `failbackd ready` reads: the daemon's
/// settings plus its socket and state file (tests/support puts them at control.sock and
/// state.json in `dir`).
struct ServiceStatusConfig {
    dir: tempfile::TempDir,
    body: String,
    ready_conf: std::path::PathBuf,
    go: std::path::PathBuf,
}

fn service_status_config(
    f: &Fakes,
    hold_on_boot: bool,
    stable_for: &str,
    reconcile: &str,
) -> ServiceStatusConfig {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let body = format!(
        "hold_on_boot = {hold_on_boot}\nmin_hold = \"0s\"\nstable_for = \"{stable_for}\"\nmax_hold = \"5m\"\n\
         reconcile_interval = \"{reconcile}\"\n\
         [backend]\ntype = \"opnsense\"\nconfigctl = {:?}\nifconfig = {:?}\n\
         [[probe]]\nname = \"gate\"\ntype = \"command\"\ncommand = [\"test\", \"-f\", {:?}]\n\
         interval = \"100ms\"\nrise = 1\nfall = 1\n",
        f.configctl(),
        f.ifconfig(),
        go.to_str().unwrap()
    );
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
    install_check(f, &ready_conf);
    ServiceStatusConfig { dir, body, ready_conf, go }
}

impl ServiceStatusConfig {
    async fn start(self) -> (support::TestDaemon, std::path::PathBuf) {
        let d = support::TestDaemon::start_in(self.dir, &self.body, Default::default()).await;
        (d, self.go)
    }
}

/// A daemon in `service_status` mode with failbackd's real check installed (measuring every
/// 100 ms); the probe passes once `go` exists.
async fn service_status_daemon(f: &Fakes, hold_on_boot: bool) -> (support::TestDaemon, std::path::PathBuf) {
    service_status_config(f, hold_on_boot, "100ms", "100ms").start().await
}

/// Another plugin's check in rc.carp_service_status.d that fails while `other.fail` exists.
fn install_other_check(f: &Fakes) -> std::path::PathBuf {
    let fail = f.path("other.fail");
    let to = f.path("rc.carp_service_status.d/other");
    std::fs::write(&to, format!("#!/bin/sh\ntest ! -e {}\n", fail.display())).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    fail
}

async fn metric(d: &support::TestDaemon, series: &str) -> Option<f64> {
    let (_, body) = d.get("/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

async fn wait_metric(d: &support::TestDaemon, series: &str, want: f64) {
    let until = std::time::Instant::now() + LIMIT;
    while metric(d, series).await != Some(want) {
        assert!(std::time::Instant::now() < until, "{series} never became {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the daemon has measured the backend `n` more times.
async fn measurements(f: &Fakes, n: usize) {
    let show = "configctl interface show carp";
    let target = f.count(show) + n;
    let until = std::time::Instant::now() + LIMIT;
    while f.count(show) < target {
        assert!(std::time::Instant::now() < until, "no measurements");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const EVALUATE: &str = "configctl interface update carp service_status";

/// D9: another check's failure sets the shared 2^20 bit while failbackd is released: a foreign
/// hold, reported, never fought (no drift, no re-evaluation loop); an operator's maintenance is
/// foreign in this mode too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_checks_bit_is_a_foreign_hold_that_is_never_fought() {
    let f = Fakes::new();
    let fail = install_other_check(&f);
    let (d, go) = service_status_daemon(&f, true).await;
    std::fs::write(&go, "").unwrap();
    d.wait_phase("released", LIMIT).await;
    assert_eq!(f.demotion(), 0);

    std::fs::write(&fail, "").unwrap();
    service_status(&f); // OPNsense re-evaluates: the other check fails
    assert_eq!(f.demotion(), BIT);
    let evaluations = f.count(EVALUATE);
    wait_metric(&d, "failback_backend_foreign_hold", 1.0).await;
    measurements(&f, 5).await;
    assert_eq!(f.count(EVALUATE), evaluations, "failbackd fought another check's bit: {:?}", f.calls());
    assert_eq!(metric(&d, "failback_backend_drift_total{direction=\"added\"}").await, Some(0.0));
    assert_eq!(metric(&d, "failback_held_in_maintenance").await, Some(0.0), "not failbackd's hold");
    assert_eq!(d.phase(), "released");

    std::fs::remove_file(&fail).unwrap();
    service_status(&f);
    wait_metric(&d, "failback_backend_foreign_hold", 0.0).await;
    measurements(&f, 2).await;
    assert_eq!(metric(&d, "failback_backend_drift_total{direction=\"removed\"}").await, Some(0.0));

    // An operator enters CARP maintenance from the GUI: foreign as well, and left alone.
    let toggle = std::process::Command::new(f.configctl())
        .args(["interface", "carp_set_status", "maintenance"])
        .output()
        .unwrap();
    assert!(toggle.status.success());
    wait_metric(&d, "failback_backend_foreign_hold", 1.0).await;
    measurements(&f, 3).await;
    assert!(f.maintenance());
    assert_eq!(f.count(TOGGLE), 1, "only the operator's toggle");
    d.stop().await;
}

/// D9: while idle (hold_on_boot = false) a bit that is already set is another check's, not a
/// hold of failbackd's to adopt and run a failback for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_idle_another_checks_bit_is_not_adopted() {
    let f = Fakes::new();
    let fail = install_other_check(&f);
    std::fs::write(&fail, "").unwrap();
    service_status(&f);
    assert_eq!(f.demotion(), BIT);
    let (d, _go) = service_status_daemon(&f, false).await;
    wait_metric(&d, "failback_backend_foreign_hold", 1.0).await;
    measurements(&f, 3).await;
    assert_eq!(d.phase(), "idle");
    assert_eq!(metric(&d, "failback_failbacks_total{outcome=\"released\"}").await, Some(0.0));
    assert_eq!(f.count(EVALUATE), 1, "{:?}", f.calls());
    d.stop().await;
}

/// A `failbackd run` process of the maintenance-mode node below, in boot `boot`.
fn spawn_in_boot(config: &Path, boot: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_failbackd"))
        .args(["run", "-c"])
        .arg(config)
        .env("FAILBACKD_BOOT_ID", boot)
        .env("FAILBACKD_UPTIME", "30")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn phase_of(socket: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_failbackd"))
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["phase"].as_str().unwrap_or_default().to_string()
}

fn wait_phase_of(socket: &Path, phase: &str) {
    let until = std::time::Instant::now() + LIMIT;
    while phase_of(socket) != phase {
        assert!(std::time::Instant::now() < until, "never reached {phase}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// D7 with the plugin's persistent `state_file`: a power loss during a hold keeps config.xml's
/// maintenance flag *and* failbackd's ownership of it, so the next boot's failback leaves it at
/// its release (before, the node stayed in maintenance for ever while failbackd said released).
#[test]
fn a_reboot_during_a_maintenance_hold_is_released_by_the_next_boot() {
    let f = Fakes::new();
    let (db, run) = (f.path("db"), f.path("run"));
    std::fs::create_dir(&db).unwrap();
    std::fs::create_dir(&run).unwrap();
    let (go, socket) = (f.path("go"), run.join("s.sock"));
    let config = f.path("failbackd.toml");
    std::fs::write(
        &config,
        format!(
            "hold_on_boot = true\nmin_hold = \"0s\"\nstable_for = \"100ms\"\nmax_hold = \"5m\"\n\
             reconcile_interval = \"100ms\"\ncontrol_socket = {:?}\nstate_file = {:?}\n\
             metrics_listen = \"127.0.0.1:0\"\n\
             [backend]\ntype = \"opnsense\"\nmode = \"maintenance\"\nconfigctl = {:?}\nifconfig = {:?}\n\
             [[probe]]\nname = \"gate\"\ntype = \"command\"\ncommand = [\"test\", \"-f\", {:?}]\n\
             interval = \"100ms\"\nrise = 1\nfall = 1\n",
            socket,
            db.join("failbackd.state"),
            f.configctl(),
            f.ifconfig(),
            go.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut boot1 = spawn_in_boot(&config, "boot-1");
    wait_phase_of(&socket, "probing");
    assert!(f.maintenance() && db.join("failbackd.state.maintenance").exists());
    // Power loss: the process dies, /var/run is purged, config.xml and /var/db stay; the
    // kernel comes back with maintenance's 240 (OPNsense applies the flag at boot).
    boot1.kill().unwrap();
    boot1.wait().unwrap();
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::create_dir(&run).unwrap();
    f.set_demotion(240);

    let mut boot2 = spawn_in_boot(&config, "boot-2");
    wait_phase_of(&socket, "probing");
    std::fs::write(&go, "").unwrap();
    wait_phase_of(&socket, "released");
    assert!(!f.maintenance(), "failbackd's maintenance must be left at the release: {:?}", f.calls());
    assert!(!db.join("failbackd.state.maintenance").exists());
    assert_eq!(f.demotion(), 0);
    boot2.kill().unwrap();
    boot2.wait().unwrap();
}
