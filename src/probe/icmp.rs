//! ICMP echo probe (surge-ping 0.9). One surge-ping `Client` (one socket) per prober, of the
//! target's family, with its own echo identifier and increasing sequence numbers, so replies to
//! several probers (or a concurrent `ping`) are never confused. surge-ping tries an unprivileged
//! ICMP datagram socket first (Linux `net.ipv4.ping_group_range`) and falls back to a raw socket,
//! which needs root; the constructor opens a socket the same way to fail early and clearly.
//! Only an echo reply counts: surge-ping also hands over ICMP errors (unreachable, time
//! exceeded) quoting our request, and those mean down.

use super::{ProbeFuture, Prober};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, ICMP};

/// surge-ping's own reply timeout; it must not fire before the runner's (the configured probe
/// timeout), so it is only a backstop for a prober used without the runner.
const REPLY_BACKSTOP: Duration = Duration::from_secs(300);

/// 16 bytes of payload, like many ping implementations' minimum; some middleboxes drop empty
/// echo requests.
const PAYLOAD: [u8; 16] = *b"failbackd-probe!";

/// ICMP type numbers for an echo reply (RFC 792, RFC 4443).
const ICMPV4_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// Pings one address.
pub struct IcmpProber {
    target: IpAddr,
    ident: PingIdentifier,
    seq: AtomicU16,
    /// Created on the first probe, not in `new`: surge-ping spawns its receive task on the
    /// current tokio runtime, and `new` may run before (or outside) the runtime that probes.
    client: Mutex<Option<Client>>,
}

impl IcmpProber {
    /// Fails when the process may not open an ICMP socket for the target's family.
    pub fn new(target: IpAddr) -> Result<IcmpProber, String> {
        check_socket(kind_of(target)).map_err(|e| format!("icmp probe to {target}: {e}"))?;
        Ok(IcmpProber { target, ident: next_identifier(), seq: AtomicU16::new(0), client: Mutex::new(None) })
    }

    fn client(&self) -> Result<Client, String> {
        let mut slot = self.client.lock().map_err(|_| "icmp client lock poisoned".to_string())?;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let config = Config::builder().kind(kind_of(self.target)).build();
        let client = Client::new(&config).map_err(|e| describe_socket_error(kind_of(self.target), &e))?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl Prober for IcmpProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let client = self.client()?;
            let mut pinger = client.pinger(self.target, self.ident).await;
            pinger.timeout(REPLY_BACKSTOP);
            // A fresh sequence per attempt: a late reply to an abandoned attempt cannot answer
            // this one. Cancel-safe: surge-ping unregisters the waiter when the future is dropped.
            let seq = PingSequence(self.seq.fetch_add(1, Ordering::Relaxed));
            let (packet, _rtt) =
                pinger.ping(seq, &PAYLOAD).await.map_err(|e| format!("ping {}: {e}", self.target))?;
            check_reply(&packet)
        })
    }
}

/// Ok for an echo reply; an error naming the ICMP type/code otherwise.
fn check_reply(packet: &IcmpPacket) -> Result<(), String> {
    let (ty, code, expected, from) = match packet {
        IcmpPacket::V4(p) => {
            (p.get_icmp_type().0, p.get_icmp_code().0, ICMPV4_ECHO_REPLY, IpAddr::V4(p.get_source()))
        }
        IcmpPacket::V6(p) => {
            (p.get_icmpv6_type().0, p.get_icmpv6_code().0, ICMPV6_ECHO_REPLY, IpAddr::V6(p.get_source()))
        }
    };
    if ty == expected {
        Ok(())
    } else {
        Err(format!("icmp type {ty} code {code} from {from} instead of an echo reply"))
    }
}

/// Whether this process can open an IPv4 ICMP socket (datagram or raw). The demo uses it to
/// skip ICMP probes with a message instead of failing.
pub fn icmp_available() -> bool {
    check_socket(ICMP::V4).is_ok()
}

fn kind_of(ip: IpAddr) -> ICMP {
    match ip {
        IpAddr::V4(_) => ICMP::V4,
        IpAddr::V6(_) => ICMP::V6,
    }
}

/// Opens (and closes) a socket the way surge-ping will: datagram first, then raw.
fn check_socket(kind: ICMP) -> Result<(), String> {
    let (domain, proto) = match kind {
        ICMP::V4 => (Domain::IPV4, Protocol::ICMPV4),
        ICMP::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(_) => Ok(()),
        Err(_) => {
            Socket::new(domain, Type::RAW, Some(proto)).map(drop).map_err(|e| describe_socket_error(kind, &e))
        }
    }
}

fn describe_socket_error(kind: ICMP, e: &std::io::Error) -> String {
    let family = if kind == ICMP::V6 { "ICMPv6" } else { "ICMP" };
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot open an {family} socket ({e}): run as root (raw socket), grant CAP_NET_RAW, or on \
             Linux allow unprivileged ping with net.ipv4.ping_group_range"
        ),
        _ => format!("cannot open an {family} socket: {e}"),
    }
}

/// A per-prober echo identifier: distinct within the process, and mixed with the pid so two
/// processes (a second daemon, `failbackd demo`) are unlikely to share one. Raw sockets see
/// every reply on the host, so the identifier is what tells ours apart. (Linux datagram ICMP
/// sockets replace it with the socket's port; surge-ping handles that.)
fn next_identifier() -> PingIdentifier {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Truncation is intended: only the low 16 bits of the pid fit in the identifier.
    let pid = std::process::id() as u16;
    PingIdentifier(pid.wrapping_mul(31).wrapping_add(n.wrapping_mul(0x9E37)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    // Pinging loopback for real is in tests/icmp_probe.rs: as root it must get a reply.

    #[test]
    fn only_an_echo_reply_is_up() {
        // surge-ping's default packets have type 0: an echo reply in ICMPv4, not in ICMPv6
        // (where 0 is no echo reply, as an error quoting our request would be).
        assert_eq!(check_reply(&IcmpPacket::V4(Default::default())), Ok(()));
        let err = check_reply(&IcmpPacket::V6(Default::default())).unwrap_err();
        assert!(err.contains("icmp type 0 code 0") && err.contains("instead of an echo reply"), "{err}");
    }

    #[test]
    fn permission_error_is_clear() {
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let msg = describe_socket_error(ICMP::V4, &e);
        assert!(msg.contains("root") && msg.contains("ping_group_range"), "{msg}");
        assert!(describe_socket_error(ICMP::V6, &e).contains("ICMPv6"));
    }

    #[test]
    fn availability_matches_socket_check() {
        assert_eq!(icmp_available(), check_socket(ICMP::V4).is_ok());
    }

    #[test]
    fn identifiers_differ_between_probers() {
        assert_ne!(next_identifier(), next_identifier());
    }

    #[test]
    fn constructor_works_outside_a_runtime() {
        // Must not panic (surge-ping's Client spawns a task, so it is created lazily).
        let r = IcmpProber::new(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(r.is_ok(), check_socket(ICMP::V6).is_ok());
    }
}
