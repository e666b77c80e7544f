//! The ICMP probe against loopback, for real: an echo request goes out and the reply comes
//! back. As root (CI) there is no excuse: a raw socket always opens, so a probe that cannot be
//! built or gets no reply fails the test. Only without root and without unprivileged ICMP
//! (Linux `net.ipv4.ping_group_range` not covering our group) may it skip, and then through
//! the one skip helper, so FAILBACKD_REQUIRE_TOOLS=1 turns that skip into a failure too.

#[path = "support/skip.rs"]
mod skip;

use failbackd::probe::icmp::IcmpProber;
use failbackd::probe::Prober;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Longer than any loopback round trip; the probe itself has no timeout without the runner.
const PATIENCE: Duration = Duration::from_secs(10);

/// The prober for `ip`, or `None` when this test may skip (not root, no unprivileged ICMP).
fn prober(test: &str, ip: IpAddr) -> Option<IcmpProber> {
    match IcmpProber::new(ip) {
        Ok(p) => Some(p),
        Err(e) if skip::is_root() => panic!("{test}: root can always open a raw ICMP socket: {e}"),
        Err(e) => {
            assert!(e.contains("root") && e.contains("ping_group_range"), "{e}");
            skip::skip_or_fail(test, &format!("not root and unprivileged ICMP is off: {e}"));
            None
        }
    }
}

async fn ping(p: &IcmpProber) -> Result<(), String> {
    tokio::time::timeout(PATIENCE, p.probe()).await.expect("no echo reply from loopback in time")
}

#[tokio::test]
async fn pings_ipv4_loopback_and_gets_a_reply() {
    let Some(p) = prober("pings_ipv4_loopback_and_gets_a_reply", IpAddr::V4(Ipv4Addr::LOCALHOST)) else {
        return;
    };
    // Twice: the second attempt uses the next sequence number on the same socket.
    assert_eq!(ping(&p).await, Ok(()));
    assert_eq!(ping(&p).await, Ok(()));
}

/// Whether ::1 is configured on `lo` (some containers run without IPv6).
fn ipv6_loopback_configured() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("00000000000000000000000000000001")))
}

#[tokio::test]
async fn pings_ipv6_loopback_and_gets_a_reply_when_it_exists() {
    if !ipv6_loopback_configured() {
        // Not a missing tool: the address does not exist on this host, there is nothing to ping.
        eprintln!("pings_ipv6_loopback: ::1 is not configured here; only IPv4 was pinged");
        return;
    }
    let Some(p) = prober("pings_ipv6_loopback_and_gets_a_reply", IpAddr::V6(Ipv6Addr::LOCALHOST)) else {
        return;
    };
    assert_eq!(ping(&p).await, Ok(()));
    assert_eq!(ping(&p).await, Ok(()));
}

#[tokio::test]
async fn a_dropped_attempt_does_not_break_the_next_one() {
    let Some(p) = prober("a_dropped_attempt_does_not_break_the_next_one", IpAddr::V4(Ipv4Addr::LOCALHOST))
    else {
        return;
    };
    // A zero timeout polls the attempt once (the request is registered and sent) and then
    // drops it, as the runner does on timeout.
    let _ = tokio::time::timeout(Duration::ZERO, p.probe()).await;
    assert_eq!(ping(&p).await, Ok(()));
}
