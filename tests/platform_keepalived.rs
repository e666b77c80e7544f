//! The keepalived backend's track file, read by a real keepalived 2.2: `--config-test` accepts
//! the documented keepalived.conf snippet, and a keepalived running in a network namespace
//! changes the instance's effective priority when failbackd holds (200 -> 1) and releases
//! (1 -> 200).
//!
//! The VRRP state of configured instances comes from `ip -j addr show`: against a fake `ip`
//! printing iproute2's JSON, and against the real one on loopback.
//!
//! The keepalived test needs root, iproute2 and keepalived (Debian package); skips with a printed
//! reason only when one is missing. The namespace is `fbd-<pid>-ka`; keepalived and the namespace are removed by
//! PID and name in a Drop guard.
#![cfg(target_os = "linux")]

mod fakes;
mod support;

use failbackd::carp::keepalived::KeepalivedBackend;
use failbackd::carp::{Backend, CarpSeen};
use failbackd::config::VrrpInstance;
use failbackd::machine::CarpState;
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
        support::skip_or_fail("platform_keepalived", &why);
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

fn instance(vhid: u16, interface: &str, address: &str) -> VrrpInstance {
    VrrpInstance { vhid, interface: interface.into(), address: address.parse().unwrap() }
}

fn states(carp: Option<Vec<CarpSeen>>) -> Vec<(u16, String, CarpState)> {
    carp.expect("VRRP states known").into_iter().map(|c| (c.vhid, c.iface, c.state)).collect()
}

/// `ip -j addr show` as Debian 12's iproute2 prints it (captured, addresses replaced by
/// documentation ones): eth0 holds the instance's virtual address 203.0.113.1 as MASTER.
const IP_JSON: &str = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet","local":"203.0.113.1","prefixlen":32,"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":5,"ifname":"eth1","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:02","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]}]"#;

#[tokio::test]
async fn vrrp_states_come_from_the_virtual_addresses_on_the_interfaces() {
    let f = fakes::Fakes::new();
    f.set_ip_json(IP_JSON);
    let track = f.path("hold");
    let b = KeepalivedBackend::new(track.clone(), -253).with_instances(
        f.ip(),
        vec![
            instance(51, "eth0", "203.0.113.1"),
            instance(52, "eth1", "203.0.113.2"),
            instance(53, "eth9", "203.0.113.3"),
            instance(54, "eth0", "2001:db8:0:0::2"),
        ],
    );
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.demotion), (None, None), "no track file yet: unknown");
    assert_eq!(
        states(o.carp),
        vec![
            (51, "eth0".into(), CarpState::Master),
            (52, "eth1".into(), CarpState::Backup),
            (53, "eth9".into(), CarpState::Init),
            (54, "eth0".into(), CarpState::Master),
        ]
    );
    b.demote().await.unwrap();
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.demoted, o.demotion), (Some(true), Some(true), Some(-253)));
    b.promote().await.unwrap();
    assert_eq!(b.observe().await.unwrap().held, Some(false));

    // Garbage from ip leaves the states unknown; the hold is still measured.
    f.set_ip_json("Object \"addr\" is unknown, try \"ip help\".");
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.carp), (Some(false), None));
    // Without instances nothing is run and the states are unknown.
    let plain = KeepalivedBackend::new(track, -253);
    let calls = f.calls().len();
    assert_eq!(plain.observe().await.unwrap().carp, None);
    assert_eq!(f.calls().len(), calls);
}

#[tokio::test]
async fn the_real_ip_reports_loopback_as_master() {
    let Some(ip) = support::tool("ip") else { return };
    let dir = tempfile::tempdir().unwrap();
    let b = KeepalivedBackend::new(dir.path().join("hold"), -253).with_instances(
        ip.to_str().unwrap().into(),
        vec![
            instance(1, "lo", "127.0.0.1"),
            instance(2, "lo", "192.0.2.77"),
            instance(3, "fbdnone0", "192.0.2.78"),
        ],
    );
    assert_eq!(
        states(b.observe().await.unwrap().carp),
        vec![
            (1, "lo".into(), CarpState::Master),
            (2, "lo".into(), CarpState::Backup),
            (3, "fbdnone0".into(), CarpState::Init)
        ]
    );
}
