//! The freebsd backend against a fake sysctl(8) that adds what is written, like carp(4)
//! (sys/netinet/ip_carp.c carp_demote_adj).

mod fakes;

use failbackd::carp::freebsd::FreebsdBackend;
use failbackd::carp::Backend;
use fakes::Fakes;
use std::time::Duration;

const BIT: i64 = 1 << 19;
const OPNSENSE_BIT: i64 = 1 << 20;

fn backend(f: &Fakes) -> FreebsdBackend {
    FreebsdBackend::new(f.sysctl(), 1 << 19, Duration::from_secs(5))
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
        1 << 19,
        Duration::from_secs(5),
    );
    let e = b.demote().await.unwrap_err();
    assert!(e.0.contains("cannot run"), "{e}");
    // Garbage from sysctl is reported, not guessed at.
    std::fs::write(f.path("demotion"), "not-a-number\n").unwrap();
    let e = backend(&f).demoted().await.unwrap_err();
    assert!(e.0.contains("printed"), "{e}");
}
