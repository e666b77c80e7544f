//! The opnsense_gateway probe end to end: config text → `check-config` rules → the probe
//! dispatch → the real runner, against a fake `configctl` (tests/support/fake-configctl-gateways.sh)
//! printing JSON shaped like opnsense/core's scripts/routes/gateway_status.php.

use failbackd::config::{Config, ProbeKind};
use failbackd::probe::runner::{ProbeReport, ProbeRunner};
use failbackd::telemetry::spans::FailbackSpans;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Long enough for any test; only reached when the code under test is broken.
const PATIENCE: Duration = Duration::from_secs(20);

struct FakeConfigctl {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    status: PathBuf,
}

impl FakeConfigctl {
    fn new() -> FakeConfigctl {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("gateway_status.json");
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake-configctl-gateways.sh"),
        )
        .unwrap()
        .replace("@STATUS_FILE@", status.to_str().unwrap());
        let bin = dir.path().join("configctl");
        std::fs::write(&bin, script).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeConfigctl { _dir: dir, bin, status }
    }

    /// gateway_status.php's output for these (name, status, monitor) gateways.
    fn set(&self, gateways: &[(&str, &str, &str)]) {
        let items: Vec<String> = gateways
            .iter()
            .map(|(name, status, monitor)| {
                let (loss, delay, stddev) =
                    if *monitor == "~" { ("~", "~", "~") } else { ("0.0 %", "4.1 ms", "0.3 ms") };
                let translated = match *status {
                    "none" => "Online",
                    "down" => "Offline",
                    "force_down" => "Offline (forced)",
                    "delay" => "Latency",
                    "loss" => "Packetloss",
                    "delay+loss" => "Latency, Packetloss",
                    _ => "Pending",
                };
                format!(
                    r#""{name}":{{"name":"{name}","address":"192.0.2.1","status":"{status}","status_translated":"{translated}","loss":"{loss}","delay":"{delay}","stddev":"{stddev}","monitor":"{monitor}"}}"#
                )
            })
            .collect();
        let json = if items.is_empty() { "[]".to_string() } else { format!("{{{}}}", items.join(",")) };
        std::fs::write(&self.status, json + "\n").unwrap();
    }

    fn fail(&self, on: bool) {
        let flag = self.status.with_extension("json.fail");
        if on {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.status.with_extension("json.calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn config(&self, probe_keys: &str) -> Config {
        let text = format!(
            "[backend]\ntype = \"simulated\"\n\n[[probe]]\nname = \"gw\"\ntype = \"opnsense_gateway\"\nconfigctl = {:?}\ninterval = \"100ms\"\nrise = 2\nfall = 1\n{probe_keys}\n",
            self.bin.to_str().unwrap()
        );
        Config::parse("test.toml", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
    }
}

async fn attempt(cfg: &Config) -> Result<(), String> {
    failbackd::probe::build(&cfg.probes[0]).unwrap().probe().await
}

#[tokio::test]
async fn named_gateway_passes_only_when_monitored_and_online() {
    let f = FakeConfigctl::new();
    let cfg = f.config("target = \"WAN_GW\"");
    assert_eq!(cfg.probes[0].kind.type_name(), "opnsense_gateway");
    assert_eq!(cfg.probes[0].kind.target(), "WAN_GW");

    f.set(&[("WAN_GW", "none", "192.0.2.1")]);
    assert_eq!(attempt(&cfg).await, Ok(()));
    // Unmonitored: gateway_status.php still says "none" (Online); that must not pass.
    f.set(&[("WAN_GW", "none", "~")]);
    assert!(attempt(&cfg).await.unwrap_err().contains("not monitored"));
    f.set(&[("WAN_GW", "down", "192.0.2.1")]);
    let err = attempt(&cfg).await.unwrap_err();
    assert!(err.starts_with("WAN_GW: status down"), "{err}");
    f.set(&[("WAN_GW", "delay", "192.0.2.1")]);
    assert!(attempt(&cfg).await.is_err(), "delay without accept");
    assert_eq!(f.calls().first().map(String::as_str), Some("interface gateways status"));
}

#[tokio::test]
async fn accept_lets_latency_and_loss_pass() {
    let f = FakeConfigctl::new();
    let cfg = f.config("gateways = [\"WAN_GW\", \"WAN2_GW\"]\naccept = [\"delay\", \"loss\"]");
    assert_eq!(cfg.probes[0].kind.target(), "WAN_GW,WAN2_GW");
    f.set(&[("WAN_GW", "delay+loss", "192.0.2.1"), ("WAN2_GW", "loss", "198.51.100.1")]);
    assert_eq!(attempt(&cfg).await, Ok(()));
    f.set(&[("WAN_GW", "none", "192.0.2.1"), ("WAN2_GW", "force_down", "198.51.100.1")]);
    assert!(attempt(&cfg).await.unwrap_err().starts_with("WAN2_GW"));
    f.set(&[("WAN_GW", "none", "192.0.2.1")]);
    assert!(attempt(&cfg).await.unwrap_err().contains("WAN2_GW: no such gateway"));
}

#[tokio::test]
async fn all_means_every_monitored_gateway() {
    let f = FakeConfigctl::new();
    let cfg = f.config("target = \"all\"");
    assert!(
        matches!(&cfg.probes[0].kind, ProbeKind::OpnsenseGateway { gateways, .. } if gateways.is_empty())
    );
    f.set(&[("WAN_GW", "none", "192.0.2.1"), ("LAN_GW", "none", "~")]);
    assert_eq!(attempt(&cfg).await, Ok(()));
    f.set(&[("LAN_GW", "none", "~")]);
    assert!(attempt(&cfg).await.is_err(), "nothing monitored must not pass");
    f.set(&[]);
    assert!(attempt(&cfg).await.is_err(), "no gateways ([]) must not pass");
}

#[tokio::test]
async fn configctl_failure_is_a_failed_attempt_with_the_reason() {
    let f = FakeConfigctl::new();
    let cfg = f.config("target = \"WAN_GW\"");
    f.set(&[("WAN_GW", "none", "192.0.2.1")]);
    f.fail(true);
    let err = attempt(&cfg).await.unwrap_err();
    assert!(err.contains("exit status 1") && err.contains("configd socket"), "{err}");
    f.fail(false);
    assert_eq!(attempt(&cfg).await, Ok(()));
}

#[test]
fn config_errors_name_the_key() {
    let f = FakeConfigctl::new();
    let bad = |keys: &str| {
        let text = format!(
            "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"gw\"\ntype = \"opnsense_gateway\"\n{keys}\n"
        );
        format!("{:?}", Config::parse("t.toml", &text).unwrap_err())
    };
    assert!(bad("").contains("missing `target`"));
    assert!(bad("target = \"A\"\ngateways = [\"B\"]").contains("not both"));
    assert!(bad("target = \"A\"\naccept = [\"down\"]").contains("unknown gateway status"));
    assert!(bad("target = \"A\"\ncommand = [\"x\"]").contains("does not apply"));
    assert!(bad("gateways = [\"A\", \"A\"]").contains("listed twice"));
    // The gateway keys on another probe type.
    let text = "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"p\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\naccept = [\"delay\"]\n";
    assert!(format!("{:?}", Config::parse("t.toml", text).unwrap_err()).contains("`accept` does not apply"));
    drop(f);
}

#[tokio::test]
async fn the_runner_reports_it_like_every_probe() {
    let f = FakeConfigctl::new();
    let cfg = f.config("target = \"WAN_GW\"");
    f.set(&[("WAN_GW", "none", "192.0.2.1")]);
    let probe = cfg.probes[0].clone();
    let prober = failbackd::probe::build(&probe).unwrap();
    let (tx, mut rx) = mpsc::channel::<ProbeReport>(4);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let _runner =
        ProbeRunner::spawn(vec![(probe, prober)], tx, FailbackSpans::default(), cancel.clone(), &tracker);
    tracker.close();
    let first = next(&mut rx).await;
    assert!(first.outcome.ok, "{first:?}");
    f.set(&[("WAN_GW", "down", "192.0.2.1")]);
    // Bounded: the interval is 100 ms, so a down report comes within a few attempts.
    let mut down = None;
    for _ in 0..50 {
        let r = next(&mut rx).await;
        if !r.outcome.ok {
            down = Some(r);
            break;
        }
    }
    let down = down.expect("the runner never reported the gateway down");
    assert!(!down.timed_out);
    assert!(down.outcome.error.as_deref().unwrap_or("").contains("WAN_GW: status down"), "{down:?}");
    cancel.cancel();
    tracker.wait().await;
}

async fn next(rx: &mut mpsc::Receiver<ProbeReport>) -> ProbeReport {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("no report in time").expect("channel closed")
}
