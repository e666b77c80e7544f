//! Asking the peer whether it can take the traffic, for tracking: a GET of the other node's
//! failbackd `/status` (over the sync link), judged by [`judge`]. Plain HTTP, bounded in time
//! and size; anything but a clear "ready" answer is [`PeerHealth::Unhealthy`] or
//! [`PeerHealth::Unreachable`], never a guess.

use crate::machine::PeerHealth;
use crate::status::Status;
use crate::url::{parse_url, UrlHost};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// How long the peer may take to answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest /status accepted.
const MAX_BODY: usize = 1 << 20;

/// Whether the peer can take over: its loop is alive (the snapshot is not stale: else
/// [`PeerHealth::Unreachable`]); it is at rest (idle or released: not holding, not failed, not
/// draining); nothing else holds it down (an operator's maintenance, another demotion source,
/// a watched VHID in INIT); and it vouches for its path: every required probe is up with no
/// failure since its last pass, and there is at least one. Required, tracked or not: a required
/// probe down there is a path its own release gate would not pass (the pair simulator found a
/// demotion onto a peer whose untracked WAN probe was down, after a reload untracked it).
/// Optional probes never count (an optional probe down there, an IPv6 gateway on a site
/// without IPv6, says nothing about the path).
///
/// "No failure since its last pass", not just `up`: in a shared outage both nodes' probes fail
/// from the same moment, and with the same `fall` the node that counts its `fall`-th failure
/// first would otherwise find the peer still `up` (it has failed fewer than `fall` times) and
/// demote onto a dead path (every run of the testbed's `tshared` before this check). With the
/// same interval and `fall` >= 2, the peer has failed at least once by then. And two passes in
/// a row, not one: a single pass after a failure is a path that was down one probe ago (a
/// flapping shared outage ending for a moment; the pair simulator's seeds 284, 737: handed the
/// traffic one pass after a failure); a steady probe has passed many times.
///
/// A peer that is not ready says why, for a node that became MASTER while held (D14): every
/// VHID in INIT is [`PeerHealth::NotInCarp`] (gone for CARP); a failback armed by its own loss
/// of MASTER moments ago is [`PeerHealth::Displaced`]; anything else is
/// [`PeerHealth::Unhealthy`] (alive, running CARP, held or on a dead path).
pub fn judge(st: &Status) -> PeerHealth {
    if st.stale() {
        return PeerHealth::Unreachable;
    }
    if !st.carp.is_empty() && st.carp.iter().all(|c| c.state == "INIT") {
        return PeerHealth::NotInCarp;
    }
    let displaced = st.failback.as_ref().is_some_and(|f| {
        f.trigger.starts_with("carp ")
            && f.trigger.ends_with(" BACKUP")
            && f.elapsed_s < crate::machine::DISPLACED_WITHIN.as_secs_f64()
    });
    if displaced {
        return PeerHealth::Displaced;
    }
    let at_rest = matches!(st.phase.as_str(), "idle" | "released");
    let held_down =
        st.measured.as_ref().is_some_and(|m| m.foreign || m.held == Some(true) || m.demoted == Some(true));
    let init = st.carp.iter().any(|c| c.state == "INIT");
    let required: Vec<_> = st.probes.iter().filter(|p| p.required).collect();
    let vouches = !required.is_empty() && required.iter().all(|p| p.up && p.fails == 0 && p.passes >= 2);
    if at_rest && !held_down && !init && vouches {
        PeerHealth::Healthy
    } else {
        PeerHealth::Unhealthy
    }
}

/// The last thing an ask of the peer said (an answer or an error), to log repeats quietly.
#[derive(Debug, Default)]
pub struct LastSaid(std::sync::Mutex<Option<String>>);

impl LastSaid {
    /// Records `what`; true when it differs from the last one.
    pub fn is_new(&self, what: String) -> bool {
        let mut last = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = last.as_deref() != Some(what.as_str());
        *last = Some(what);
        new
    }
}

/// Why the peer could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskError {
    /// The URL reached this node itself: there is no peer to ask (a configuration error), which
    /// is [`PeerHealth::NotAsked`], not an unreachable peer.
    pub myself: bool,
    pub message: String,
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl AskError {
    /// What the failed ask says about the peer.
    pub fn health(&self) -> PeerHealth {
        if self.myself {
            PeerHealth::NotAsked
        } else {
            PeerHealth::Unreachable
        }
    }
}

/// Asks the peer at `url`; the error says why it could not be asked.
pub async fn ask(url: &str) -> Result<Status, AskError> {
    let failed = |message| AskError { myself: false, message };
    let st = tokio::time::timeout(PEER_TIMEOUT, fetch(url))
        .await
        .map_err(|_| failed(format!("peer {url} did not answer within {}s", PEER_TIMEOUT.as_secs())))?
        .map_err(failed)?;
    if st.node == crate::status::node_id() {
        return Err(AskError {
            myself: true,
            message: format!("peer {url} is this node itself: point [tracking] peer at the other node"),
        });
    }
    Ok(st)
}

async fn fetch(url: &str) -> Result<Status, String> {
    let target = parse_url(url).map_err(|e| format!("peer {url}: {e}"))?;
    let addr = match &target.host {
        UrlHost::Ip(ip) => std::net::SocketAddr::new(*ip, target.port),
        UrlHost::Name(name) => tokio::net::lookup_host((name.as_str(), target.port))
            .await
            .map_err(|e| format!("peer {url}: resolve {name}: {e}"))?
            .next()
            .ok_or_else(|| format!("peer {url}: {name} has no address"))?,
    };
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("peer {url}: {e}"))?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("peer {url}: {e}"))?;
    let conn = tokio::spawn(conn);
    let request = Request::get(target.path.as_str())
        .header(HOST, target.host_header())
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("peer {url}: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("peer {url}: {e}"))?;
    if !response.status().is_success() {
        conn.abort();
        return Err(format!("peer {url}: status {}", response.status().as_u16()));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("peer {url}: reading the answer: {e}"))?
        .to_bytes();
    conn.abort();
    serde_json::from_slice(&body).map_err(|e| format!("peer {url}: not a failbackd /status: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CarpStatus, FailbackStatus, MeasuredStatus, ProbeStatus};

    fn probe(name: &str, up: bool, tracked: bool) -> ProbeStatus {
        ProbeStatus {
            name: name.into(),
            kind: "icmp".into(),
            target: "198.51.100.1".into(),
            required: true,
            tracked,
            up,
            // A steady probe: passed many times in a row.
            passes: if up { 20 } else { 0 },
            fails: 0,
            last_ok: None,
            last_latency_ms: None,
            last_error: None,
        }
    }

    #[test]
    fn a_peer_at_rest_with_its_tracked_probes_up_can_take_over() {
        let st = |phase: &str, probes| Status { phase: phase.into(), probes, ..Status::default() };
        assert_eq!(judge(&st("released", vec![probe("wan", true, true)])), PeerHealth::Healthy);
        assert_eq!(judge(&st("released", vec![probe("wan", false, true)])), PeerHealth::Unhealthy);
        // Up, but failing already (a shared outage the peer has not counted to `fall` yet).
        let failing = ProbeStatus { fails: 1, passes: 0, ..probe("wan", true, true) };
        assert_eq!(judge(&st("released", vec![failing])), PeerHealth::Unhealthy);
        // One pass after that failure: down one probe ago (a flapping shared outage); two in a
        // row vouch.
        let once = ProbeStatus { passes: 1, ..probe("wan", true, true) };
        assert_eq!(judge(&st("released", vec![once])), PeerHealth::Unhealthy);
        let twice = ProbeStatus { passes: 2, ..probe("wan", true, true) };
        assert_eq!(judge(&st("released", vec![twice])), PeerHealth::Healthy);
        // Every required probe counts, tracked or not: a required path down is not ready.
        assert_eq!(
            judge(&st("idle", vec![probe("wan", true, true), probe("dns", false, false)])),
            PeerHealth::Unhealthy
        );
        assert_eq!(
            judge(&st("idle", vec![probe("wan", true, true), probe("dns", true, false)])),
            PeerHealth::Healthy
        );
        // Without tracked probes, the required ones.
        assert_eq!(judge(&st("released", vec![probe("dns", false, false)])), PeerHealth::Unhealthy);
        for busy in ["holding", "probing", "stabilizing", "failed", "draining", "releasing"] {
            assert_eq!(judge(&st(busy, vec![probe("wan", true, true)])), PeerHealth::Unhealthy, "{busy}");
        }
    }

    fn released(probes: Vec<ProbeStatus>) -> Status {
        Status { phase: "released".into(), probes, ..Status::default() }
    }

    // D4: an optional probe down on the peer says nothing about its path.
    #[test]
    fn an_optional_probe_down_on_the_peer_does_not_make_it_unhealthy() {
        let v6 = ProbeStatus { required: false, fails: 40, ..probe("wan-gateway-v6", false, true) };
        assert_eq!(judge(&released(vec![probe("wan", true, true), v6.clone()])), PeerHealth::Healthy);
        // Nor when it is the only tracked one: the required probes judge then.
        assert_eq!(judge(&released(vec![probe("wan", true, false), v6])), PeerHealth::Healthy);
    }

    // D13: a peer that something else holds down, or that vouches for nothing, cannot take over.
    #[test]
    fn a_peer_held_down_in_init_or_without_probes_is_unhealthy() {
        let measured = |foreign, held, demoted| MeasuredStatus {
            held,
            foreign,
            demoted,
            demotion: Some(240),
            others: vec!["maintenance mode (entered outside failbackd)".into()],
            at: 0.0,
        };
        for m in [
            measured(true, Some(true), Some(true)),
            measured(false, Some(false), Some(true)),
            measured(false, Some(true), Some(true)),
        ] {
            let st = Status { measured: Some(m.clone()), ..released(vec![probe("wan", true, true)]) };
            assert_eq!(judge(&st), PeerHealth::Unhealthy, "{m:?}");
        }
        let fine =
            MeasuredStatus { demotion: Some(0), others: vec![], ..measured(false, Some(false), Some(false)) };
        let st = Status { measured: Some(fine), ..released(vec![probe("wan", true, true)]) };
        assert_eq!(judge(&st), PeerHealth::Healthy);
        let init = CarpStatus { vhid: 1, iface: "igb1".into(), state: "INIT".into() };
        let st = Status { carp: vec![init.clone()], ..released(vec![probe("wan", true, true)]) };
        assert_eq!(judge(&st), PeerHealth::NotInCarp);
        // One VHID still running CARP: alive for CARP, not ready.
        let backup = CarpStatus { vhid: 2, state: "BACKUP".into(), ..init.clone() };
        let st = Status { carp: vec![init, backup], ..released(vec![probe("wan", true, true)]) };
        assert_eq!(judge(&st), PeerHealth::Unhealthy);
        assert_eq!(judge(&released(vec![])), PeerHealth::Unhealthy);
        let optional_only = ProbeStatus { required: false, ..probe("wan", true, false) };
        assert_eq!(judge(&released(vec![optional_only])), PeerHealth::Unhealthy);
        let st: Status = serde_json::from_str(
            r#"{"phase":"idle","since":0,"backend":"","demoted":null,"failback":null,"last_outcome":null,"failbacks_ended":0,"probes":[],"carp":[]}"#,
        )
        .unwrap();
        assert_eq!(judge(&st), PeerHealth::Unhealthy);
    }

    // D14: a peer holding because it lost MASTER moments ago was displaced; an older such
    // failback, or one armed by a boot, is just a peer that is not ready.
    #[test]
    fn a_peer_that_just_lost_master_is_displaced() {
        let failback = |trigger: &str, elapsed_s| FailbackStatus {
            id: 2,
            trigger: trigger.into(),
            armed: 0.0,
            hold_deadline: 0.0,
            elapsed_s,
            remaining_s: 0.0,
            peer_lost: false,
            master_while_held: None,
            blockers: vec![],
        };
        let st = |f| Status {
            phase: "holding".into(),
            failback: Some(f),
            ..released(vec![probe("wan", true, true)])
        };
        assert_eq!(judge(&st(failback("carp 1@igb0 BACKUP", 2.5))), PeerHealth::Displaced);
        assert_eq!(judge(&st(failback("carp 1@igb0 BACKUP", 60.0))), PeerHealth::Unhealthy);
        assert_eq!(judge(&st(failback("boot", 2.5))), PeerHealth::Unhealthy);
        assert_eq!(judge(&st(failback("carp 1@igb0 INIT", 2.5))), PeerHealth::Unhealthy);
    }

    // D20: a snapshot served by a daemon whose loop stopped is no answer.
    #[test]
    fn a_stale_snapshot_is_unreachable() {
        let st = |age| Status {
            loop_age_s: Some(age),
            loop_stale_after_s: Some(8.0),
            ..released(vec![probe("wan", true, true)])
        };
        assert_eq!(judge(&st(1.0)), PeerHealth::Healthy);
        assert_eq!(judge(&st(60.0)), PeerHealth::Unreachable);
    }

    /// Serves one HTTP answer with `body` on a loopback port.
    async fn serve_once(body: String) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        });
        addr
    }

    // D16: a `peer` URL that reaches this very process is an error, not an unhealthy peer.
    #[tokio::test]
    async fn asking_ourselves_is_an_error() {
        let me = Status { node: crate::status::node_id().into(), ..released(vec![probe("wan", true, true)]) };
        let addr = serve_once(serde_json::to_string(&me).unwrap()).await;
        let e = ask(&format!("http://{addr}/status")).await.unwrap_err();
        assert!(e.message.contains("this node itself"), "{e}");
        assert_eq!(e.health(), PeerHealth::NotAsked);
        let other = Status { node: "0123456789abcdef".into(), ..me };
        let addr = serve_once(serde_json::to_string(&other).unwrap()).await;
        assert!(ask(&format!("http://{addr}/status")).await.is_ok());
    }

    #[test]
    fn only_a_change_in_what_the_peer_says_is_new() {
        let said = LastSaid::default();
        assert!(said.is_new("Healthy released".into()));
        assert!(!said.is_new("Healthy released".into()));
        assert!(said.is_new("Unhealthy probing".into()));
        assert!(said.is_new("Healthy released".into()));
    }

    #[tokio::test]
    async fn an_unreachable_or_garbage_peer_is_an_error() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert!(ask(&format!("http://{addr}/status")).await.is_err());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
        });
        let e = ask(&format!("http://{addr}/status")).await.unwrap_err();
        assert!(e.message.contains("not a failbackd /status"), "{e}");
        assert_eq!(e.health(), PeerHealth::Unreachable);
    }
}
