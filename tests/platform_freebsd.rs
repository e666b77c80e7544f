//! The freebsd backend against a fake sysctl(8) that adds what is written, like carp(4)
//! (sys/netinet/ip_carp.c carp_demote_adj), and a fake ifconfig(8) printing FreeBSD's
//! `carp:` lines (sbin/ifconfig/ifcarp.c carp_status).

mod fakes;

use failbackd::carp::freebsd::FreebsdBackend;
use failbackd::carp::{Backend, CarpSeen};
use failbackd::machine::CarpState;
use fakes::Fakes;
use std::time::Duration;

const BIT: i64 = 1 << 19;
const OPNSENSE_BIT: i64 = 1 << 20;

fn backend(f: &Fakes) -> FreebsdBackend {
    with_timeout(f, Duration::from_secs(5))
}

fn with_timeout(f: &Fakes, timeout: Duration) -> FreebsdBackend {
    FreebsdBackend::new(f.sysctl(), f.ifconfig(), 1 << 19, timeout, &f.state_file())
}

#[test]
fn the_fake_sysctl_adds_like_carp4() {
    let f = Fakes::new();
    f.set_demotion(240);
    let out = std::process::Command::new(f.sysctl()).arg("net.inet.carp.demotion=-40").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "net.inet.carp.demotion: 240 -> 200\n");
    assert_eq!(f.demotion(), 200);
}

#[tokio::test]
async fn a_restart_never_demotes_twice_and_promote_removes_only_ours() {
    let f = Fakes::new();
    // Others' demotion: a down interface (240) and OPNsense's service bit.
    f.set_demotion(240 + OPNSENSE_BIT);
    let first = backend(&f);
    assert_eq!(first.demoted().await, Ok(Some(false)));
    first.demote().await.unwrap();
    assert_eq!(f.demotion(), 240 + OPNSENSE_BIT + BIT);

    // A restarted daemon (a second instance with no memory of the first) demotes again.
    let second = backend(&f);
    assert_eq!(second.demoted().await, Ok(Some(true)));
    second.demote().await.unwrap();
    assert_eq!(f.demotion(), 240 + OPNSENSE_BIT + BIT, "demoted twice");
    assert_eq!(f.sysctl_writes(), vec![format!("sysctl net.inet.carp.demotion={BIT}")]);

    second.promote().await.unwrap();
    assert_eq!(f.demotion(), 240 + OPNSENSE_BIT, "others' demotion must stay");
    first.promote().await.unwrap();
    assert_eq!(f.demotion(), 240 + OPNSENSE_BIT);
    assert_eq!(f.sysctl_writes().len(), 2, "{:?}", f.calls());
    assert_eq!(first.demoted().await, Ok(Some(false)));
}

#[tokio::test]
async fn others_changing_the_demotion_meanwhile_does_not_confuse_it() {
    let f = Fakes::new();
    let b = backend(&f);
    b.demote().await.unwrap();
    // An interface goes down while we hold, and comes back after we released.
    f.set_demotion(f.demotion() + 240);
    assert_eq!(b.demoted().await, Ok(Some(true)));
    b.promote().await.unwrap();
    assert_eq!(f.demotion(), 240);
}

#[tokio::test]
async fn a_missing_carp_module_is_a_clear_error() {
    let f = Fakes::new();
    let b = FreebsdBackend::new(
        f.path("bin/nonexistent-sysctl").to_str().unwrap().into(),
        f.ifconfig(),
        1 << 19,
        Duration::from_secs(5),
        &f.state_file(),
    );
    let e = b.demote().await.unwrap_err();
    assert!(e.0.contains("cannot run"), "{e}");
    // Garbage from sysctl is reported, not guessed at.
    std::fs::write(f.path("demotion"), "not-a-number\n").unwrap();
    let e = backend(&f).demoted().await.unwrap_err();
    assert!(e.0.contains("printed"), "{e}");
}

#[tokio::test]
async fn a_negative_demotion_is_an_error_never_held() {
    // -240: an interface went down (+240) during maintenance, maintenance was left (reset to
    // 0), the interface came back (-240). Every bit above 2^8 of -240 is set.
    let f = Fakes::new();
    f.set_demotion(-240);
    let b = backend(&f);
    let e = b.observe().await.unwrap_err();
    assert!(e.0.contains("net.inet.carp.demotion is -240: negative"), "{e}");
    assert!(b.demoted().await.is_err());
    let e = b.demote().await.unwrap_err();
    assert!(e.0.contains("-240"), "{e}");
    assert!(b.promote().await.is_err());
    assert_eq!(f.sysctl_writes(), Vec::<String>::new(), "nothing written on a value it cannot read");
    assert_eq!(f.demotion(), -240);

    for bad in ["2147483648", "12abc", ""] {
        std::fs::write(f.path("demotion"), format!("{bad}\n")).unwrap();
        assert!(b.observe().await.is_err(), "{bad:?} read as a value");
    }
}

const IFCONFIG: &str =
    "igb0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\
    \tether 00:00:5e:00:53:01\n\
    \tinet 192.0.2.1 netmask 0xffffff00 broadcast 192.0.2.255 vhid 1\n\
    \tcarp: MASTER vhid 1 advbase 1 advskew 0\n\
    \t      peer 224.0.0.18 peer6 ff02::12\n\
    igb1: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\
    \tcarp: BACKUP vhid 2 advbase 1 advskew 100\n";

#[tokio::test]
async fn observe_measures_the_hold_the_other_sources_and_the_carp_states() {
    let f = Fakes::new();
    f.set_ifconfig(IFCONFIG);
    f.set_demotion(240);
    let b = backend(&f);
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.demoted, o.demotion, o.foreign), (Some(false), Some(true), Some(240), false));
    assert_eq!(o.others, vec!["other sources add 240 (interface down?)"]);
    assert_eq!(
        o.carp,
        Some(vec![
            CarpSeen { vhid: 1, iface: "igb0".into(), state: CarpState::Master },
            CarpSeen { vhid: 2, iface: "igb1".into(), state: CarpState::Backup },
        ])
    );
    b.demote().await.unwrap();
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.demotion), (Some(true), Some(240 + BIT)));
    assert_eq!(o.others, vec!["other sources add 240 (interface down?)"], "ours is not an other source");

    b.promote().await.unwrap();
    f.set_demotion(0);
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.demoted, o.others.len()), (Some(false), Some(false), 0));

    // A broken ifconfig leaves the CARP states unknown but still measures the hold.
    std::fs::write(f.path("ifconfig.fail"), "").unwrap();
    let o = b.observe().await.unwrap();
    assert_eq!((o.held, o.carp), (Some(false), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_demotes_add_the_bit_once() {
    // The daemon and the hook's fail-safe (two backends, each with its own open of the lock
    // file, as two processes have) demote at the same moment; the fake sysctl is slow to
    // answer each read, so without the lock both would read "clear" and add 2^19 twice (2^20).
    let f = Fakes::new();
    std::fs::write(f.path("read-delay"), "0.3\n").unwrap();
    let (a, b) = (backend(&f), backend(&f));
    let (ra, rb) = tokio::join!(a.demote(), b.demote());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(f.demotion(), BIT, "{:?}", f.calls());
    assert_eq!(f.sysctl_writes().len(), 1, "{:?}", f.calls());
    assert!(f.path("state.json.lock").exists());
}

#[tokio::test]
async fn one_time_budget_for_the_whole_operation() {
    // Each sysctl call takes 0.6 s, well inside the 1 s budget on its own; demote is a read,
    // a write and a read, so only the budget for the whole operation can end it.
    let f = Fakes::new();
    std::fs::write(f.path("read-delay"), "0.6\n").unwrap();
    let b = with_timeout(&f, Duration::from_secs(1));
    let e = b.demote().await.unwrap_err();
    assert!(e.0.starts_with("demote timed out after 1s ("), "{e}");
    assert!(e.0.contains("net.inet.carp.demotion"), "{e}");
}
