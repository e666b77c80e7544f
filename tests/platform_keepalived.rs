//! The keepalived backend's track file, read by a real keepalived 2.2: `--config-test` accepts
//! the documented keepalived.conf snippet, and a keepalived running in a network namespace
//! changes the instance's effective priority when failbackd holds (200 -> 1) and releases
//! (1 -> 200).
//!
//! Needs root, iproute2 and keepalived (Debian package); skips with a printed reason only when
//! one is missing. The namespace is `fbd-<pid>-ka`; keepalived and the namespace are removed by
//! PID and name in a Drop guard.
#![cfg(target_os = "linux")]

#[path = "support/skip.rs"]
mod skip;

use failbackd::carp::keepalived::KeepalivedBackend;
use failbackd::carp::Backend;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEEPALIVED: &str = "/usr/sbin/keepalived";
/// A hang guard, not a performance threshold.
const LIMIT: Duration = Duration::from_secs(20);

fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces need it)".into());
    }
    if !Path::new(KEEPALIVED).exists() {
        return Some(format!("{KEEPALIVED} missing (apt-get install keepalived)"));
    }
    if Command::new("ip").arg("-V").stdout(Stdio::null()).status().is_err() {
        return Some("`ip` missing (apt-get install iproute2)".into());
    }
    None
}

struct Guard {
    netns: Option<String>,
    keepalived: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(k) = &mut self.keepalived {
            let _ = Command::new("kill").args(["-TERM", &k.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while k.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = k.kill();
            let _ = k.wait();
        }
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn conf(track: &Path, iface: &str) -> String {
    // The snippet from docs/install.md and src/carp/keepalived.rs.
    format!(
        "global_defs {{\n    router_id fbd_test\n}}\n\
         track_file failbackd {{\n    file \"{}\"\n    weight 1\n    init_file -253\n}}\n\
         vrrp_instance WAN {{\n    state BACKUP\n    interface {iface}\n    virtual_router_id 51\n    priority 200\n    \
         advert_int 1\n    virtual_ipaddress {{\n        192.0.2.10/32\n    }}\n    track_file {{\n        failbackd\n    }}\n}}\n",
        track.display()
    )
}

fn wait_log(log: &Path, needle: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "keepalived never logged {needle:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_real_keepalived_follows_the_track_file() {
    if let Some(why) = missing_prerequisite() {
        skip::skip_or_fail("platform_keepalived", &why);
        return;
    }
    let pid = std::process::id();
    let ns = format!("fbd-{pid}-ka");
    let dir = tempfile::tempdir().unwrap();
    let mut guard = Guard { netns: None, keepalived: None };
    run(&["ip", "netns", "add", &ns]);
    guard.netns = Some(ns.clone());
    let (v0, v1) = (format!("fbd{pid}k0"), format!("fbd{pid}k1"));
    run(&["ip", "-n", &ns, "link", "add", &v0, "type", "veth", "peer", "name", &v1]);
    run(&["ip", "-n", &ns, "addr", "add", "192.0.2.2/24", "dev", &v0]);
    run(&["ip", "-n", &ns, "link", "set", &v0, "up"]);
    run(&["ip", "-n", &ns, "link", "set", &v1, "up"]);

    let track = dir.path().join("hold");
    let backend = KeepalivedBackend::new(track.clone(), -253);
    backend.promote().await.unwrap(); // released: 0
    let conf_path = dir.path().join("keepalived.conf");
    std::fs::write(&conf_path, conf(&track, &v0)).unwrap();

    let test = Command::new("ip")
        .args(["netns", "exec", &ns, KEEPALIVED, "--config-test", "-f"])
        .arg(&conf_path)
        .output()
        .unwrap();
    assert!(test.status.success(), "keepalived --config-test: {}", String::from_utf8_lossy(&test.stderr));

    let log = dir.path().join("keepalived.log");
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            KEEPALIVED,
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "-f",
        ])
        .arg(&conf_path)
        .args(["-p", &p("k.pid"), "-r", &p("v.pid"), "-c", &p("c.pid")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap()) // --log-console writes to stderr
        .spawn()
        .unwrap();
    guard.keepalived = Some(child);
    wait_log(&log, "(WAN) Entering BACKUP STATE");

    backend.demote().await.unwrap();
    assert_eq!(std::fs::read_to_string(&track).unwrap(), "-253\n");
    wait_log(&log, "(WAN) Changing effective priority from 200 to 1");
    backend.promote().await.unwrap();
    wait_log(&log, "(WAN) Changing effective priority from 1 to 200");
    assert_eq!(backend.demoted().await, Ok(Some(false)));
    drop(guard);
}
