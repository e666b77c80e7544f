//! The ipsec probe against a real strongSwan: two network namespaces, one charon each (own
//! STRONGSWAN_CONF, VICI socket and /run), a PSK IKEv2 tunnel with two children between
//! 198.51.100.1 and .2. The probe sees 0/2, then 2/2 installed; with one child torn down it
//! fails although `swanctl --list-sas` still shows INSTALLED (what the forum script greps);
//! with charon killed it fails with a clear error, without hanging.
//!
//! Needs root, iproute2 and Debian's strongswan-charon, strongswan-swanctl and
//! libcharon-extra-plugins (kernel-libipsec); skips with a printed reason only when one of them
//! is missing. Namespaces are named `fbd-<pid>-a/b`, and everything created is removed by PID
//! and name in a Drop guard.
#![cfg(target_os = "linux")]

#[path = "support/skip.rs"]
mod skip;

use failbackd::probe::ipsec::IpsecProber;
use failbackd::probe::Prober;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHARON: &str = "/usr/lib/ipsec/charon";
const LIBIPSEC: &str = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so";
/// A hang guard for each wait, not a performance threshold.
const LIMIT: Duration = Duration::from_secs(20);

fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces need it)".into());
    }
    for tool in [CHARON, LIBIPSEC] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} missing (apt-get install strongswan-charon libcharon-extra-plugins)"
            ));
        }
    }
    for tool in ["ip", "swanctl"] {
        if Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            return Some(format!("`{tool}` missing (apt-get install iproute2 strongswan-swanctl)"));
        }
    }
    None
}

fn run(argv: &[&str]) -> std::process::Output {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Removes what the test created: charon processes by PID, namespaces by name.
struct Lab {
    dir: tempfile::TempDir,
    netns: Vec<String>,
    charons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.charons {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in &mut self.charons {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Lab {
    fn node(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    fn vici(&self, n: &str) -> PathBuf {
        self.node(n).join("charon.vici")
    }
    fn uri(&self, n: &str) -> String {
        format!("unix://{}", self.vici(n).display())
    }
    fn swanctl(&self, n: &str, args: &[&str]) -> String {
        let uri = self.uri(n);
        let mut argv = vec!["swanctl"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--uri", &uri]);
        let out = Command::new("swanctl")
            .args(&argv[1..])
            .env("STRONGSWAN_CONF", self.node(n).join("strongswan.conf"))
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            let log = |m: &str| std::fs::read_to_string(self.node(m).join("charon.log")).unwrap_or_default();
            panic!(
                "swanctl {args:?} on {n}: {text}\n--- charon a log:\n{}\n--- charon b log:\n{}",
                log("a"),
                log("b")
            );
        }
        text
    }
}

/// Whether this kernel can hold ESP SAs (CONFIG_INET_ESP); tried in a throwaway namespace.
fn kernel_has_esp(pid: u32) -> bool {
    let ns = format!("fbd-{pid}-esp");
    run(&["ip", "netns", "add", &ns]);
    let ok = Command::new("ip")
        .args([
            "-n",
            &ns,
            "xfrm",
            "state",
            "add",
            "src",
            "198.51.100.1",
            "dst",
            "198.51.100.2",
            "proto",
            "esp",
        ])
        .args(["spi", "0x100", "mode", "tunnel", "enc", "cbc(aes)", "0x00112233445566778899aabbccddeeff"])
        .args([
            "auth-trunc",
            "hmac(sha256)",
            "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "128",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    ok
}

fn write_node(lab: &Lab, n: &str, me: &str, peer: &str, libipsec: bool, initiator: bool) {
    let dir = lab.node(n);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let plugins = format!(
        "random nonce aes sha1 sha2 hmac gmp kdf pem pkcs1 x509 pubkey {}kernel-netlink socket-default vici",
        if libipsec { "kernel-libipsec " } else { "" }
    );
    std::fs::write(
        dir.join("strongswan.conf"),
        format!(
            "charon {{\n  load = {plugins}\n  plugins {{ vici {{ socket = {uri} }} }}\n  \
             filelog {{ fbd {{\n path = {log}\n default = 1\n cfg = 2\n ike = 2\n flush_line = yes\n }} }}\n}}\nswanctl {{ socket = {uri} }}\n",
            uri = lab.uri(n),
            log = dir.join("charon.log").display()
        ),
    )
    .unwrap();
    // a: 192.0.2.0/26 and .64/26 behind it; b: 203.0.113.0/26 and .64/26.
    let (l1, l2, r1, r2) = if initiator {
        ("192.0.2.0/26", "192.0.2.64/26", "203.0.113.0/26", "203.0.113.64/26")
    } else {
        ("203.0.113.0/26", "203.0.113.64/26", "192.0.2.0/26", "192.0.2.64/26")
    };
    let child = |name: &str, l: &str, r: &str| {
        format!("      {name} {{\n        local_ts = {l}\n        remote_ts = {r}\n        esp_proposals = aes128-sha256\n      }}\n")
    };
    std::fs::write(
        dir.join("swanctl.conf"),
        format!(
            "connections {{\n  vpn {{\n    version = 2\n    local_addrs = {me}\n    remote_addrs = {peer}\n    \
             proposals = aes128-sha256-modp2048\n    \
             local {{\n      auth = psk\n      id = {n}.fbd.test\n    }}\n    \
             remote {{\n      auth = psk\n    }}\n    children {{\n{}{}    }}\n  }}\n}}\n\
             secrets {{\n  ike-1 {{\n    secret = \"fbd-test-only-psk-0123456789\"\n  }}\n}}\n",
            child("net1", l1, r1),
            child("net2", l2, r2),
        ),
    )
    .unwrap();
}

fn start_charon(lab: &mut Lab, n: &str, ns: &str) {
    let dir = lab.node(n);
    // `ip netns exec` gives a private mount namespace: bind a private /run (charon always
    // writes /run/charon.pid), then exec charon so the PID we hold is charon's.
    let script = format!(
        "mount --bind '{run}' /run && exec env STRONGSWAN_CONF='{conf}' {CHARON}",
        run = dir.join("run").display(),
        conf = dir.join("strongswan.conf").display()
    );
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("charon.stderr")).unwrap())
        .spawn()
        .unwrap();
    lab.charons.push(child);
    let deadline = Instant::now() + LIMIT;
    while !lab.vici(n).exists() {
        assert!(Instant::now() < deadline, "charon {n} did not open its VICI socket; see {}", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_for<F: Fn(&Result<(), String>) -> bool>(
    p: &IpsecProber,
    what: &str,
    f: F,
) -> Result<(), String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = tokio::time::timeout(Duration::from_secs(5), p.probe()).await.expect("the probe hung");
        if f(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never saw {what}; last: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_requires_every_child_sa_of_a_real_strongswan_tunnel() {
    if let Some(why) = missing_prerequisite() {
        skip::skip_or_fail("ipsec_strongswan", &why);
        return;
    }
    let pid = std::process::id();
    let (ns_a, ns_b) = (format!("fbd-{pid}-a"), format!("fbd-{pid}-b"));
    for ns in [&ns_a, &ns_b] {
        let exists = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&exists.stdout).contains(ns.as_str()),
            "namespace {ns} exists already"
        );
    }
    let mut lab = Lab { dir: tempfile::tempdir().unwrap(), netns: Vec::new(), charons: Vec::new() };
    let libipsec = !kernel_has_esp(pid);
    eprintln!(
        "kernel ESP {}: using {}",
        if libipsec { "missing" } else { "present" },
        if libipsec { "kernel-libipsec" } else { "kernel SAs" }
    );

    for ns in [&ns_a, &ns_b] {
        run(&["ip", "netns", "add", ns]);
        lab.netns.push(ns.clone());
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let (va, vb) = (format!("fbd{pid}a"), format!("fbd{pid}b"));
    run(&["ip", "-n", &ns_a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &ns_b]);
    run(&["ip", "-n", &ns_a, "addr", "add", "198.51.100.1/24", "dev", &va]);
    run(&["ip", "-n", &ns_b, "addr", "add", "198.51.100.2/24", "dev", &vb]);
    // An address inside each local traffic selector, so charon can install its routes (via the
    // kernel-libipsec TUN device) with a source address.
    for (ns, addrs) in
        [(&ns_a, ["192.0.2.1/26", "192.0.2.65/26"]), (&ns_b, ["203.0.113.1/26", "203.0.113.65/26"])]
    {
        for a in addrs {
            run(&["ip", "-n", ns, "addr", "add", a, "dev", "lo"]);
        }
    }
    run(&["ip", "-n", &ns_a, "link", "set", &va, "up"]);
    run(&["ip", "-n", &ns_b, "link", "set", &vb, "up"]);

    write_node(&lab, "a", "198.51.100.1", "198.51.100.2", libipsec, true);
    write_node(&lab, "b", "198.51.100.2", "198.51.100.1", libipsec, false);
    start_charon(&mut lab, "b", &ns_b); // the responder first
    start_charon(&mut lab, "a", &ns_a);
    for n in ["a", "b"] {
        let conf = lab.node(n).join("swanctl.conf");
        lab.swanctl(n, &["--load-all", "--file", conf.to_str().unwrap()]);
    }

    let probe = IpsecProber::new(lab.vici("a"), vec!["vpn".into()]);
    let all = IpsecProber::new(lab.vici("a"), vec![]);
    let err = probe.probe().await.unwrap_err();
    assert_eq!(err, "0/2 children installed: net1 (conn vpn) not installed, net2 (conn vpn) not installed");

    let started = Instant::now();
    lab.swanctl("a", &["--initiate", "--child", "net1"]);
    wait_for(&probe, "1/2", |r| r.as_ref().is_err_and(|e| e.starts_with("1/2"))).await.unwrap_err();
    lab.swanctl("a", &["--initiate", "--child", "net2"]);
    wait_for(&probe, "2/2", Result::is_ok).await.unwrap();
    eprintln!("MEASURED: 0/2 -> 2/2 seen by the probe {:?} after the first initiate", started.elapsed());
    assert_eq!(all.probe().await, Ok(()), "no connection list = every loaded connection");
    let children = probe.check().await.unwrap();
    assert!(children.iter().all(|c| c.installed()) && children.len() == 2, "{children:?}");

    // Tear one child down: the forum script's grep still passes, failbackd does not.
    lab.swanctl("a", &["--terminate", "--child", "net2"]);
    let err = wait_for(&probe, "1/2 after terminate", Result::is_err).await.unwrap_err();
    assert_eq!(err, "1/2 children installed: net2 (conn vpn) not installed");
    let list = lab.swanctl("a", &["--list-sas"]);
    assert!(list.contains("INSTALLED"), "`grep -q INSTALLED` would pass on:\n{list}");

    // Kill charon outright: a clear error, no hang (the probe call itself is bounded above).
    let a = lab.charons.pop().unwrap();
    let _ = Command::new("kill").args(["-KILL", &a.id().to_string()]).status();
    let mut a = a;
    let _ = a.wait();
    let started = Instant::now();
    let err =
        tokio::time::timeout(Duration::from_secs(5), probe.probe()).await.expect("probe hung").unwrap_err();
    eprintln!("MEASURED: probe failed {:?} after charon was killed: {err}", started.elapsed());
    assert!(err.contains("cannot connect to charon's VICI socket"), "{err}");
    drop(lab);
}
