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

/// Whether the peer can take over: it is at rest (idle or released: not holding, not failed,
/// not draining) and every probe it tracks is up with no failure since its last pass. A peer
/// that tracks nothing is judged by its required probes.
///
/// "No failure since its last pass", not just `up`: in a shared outage both nodes' probes fail
/// from the same moment, and with the same `fall` the node that counts its `fall`-th failure
/// first would otherwise find the peer still `up` (it has failed fewer than `fall` times) and
/// demote onto a dead path (every run of the testbed's `tshared` before this check). With the
/// same interval and `fall` >= 2, the peer has failed at least once by then.
pub fn judge(st: &Status) -> PeerHealth {
    let at_rest = matches!(st.phase.as_str(), "idle" | "released");
    let tracked: Vec<_> = st.probes.iter().filter(|p| p.tracked).collect();
    let probes: Vec<_> =
        if tracked.is_empty() { st.probes.iter().filter(|p| p.required).collect() } else { tracked };
    if at_rest && probes.iter().all(|p| p.up && p.fails == 0) {
        PeerHealth::Healthy
    } else {
        PeerHealth::Unhealthy
    }
}

/// Asks the peer at `url`; the error says why it could not be asked.
pub async fn ask(url: &str) -> Result<Status, String> {
    tokio::time::timeout(PEER_TIMEOUT, fetch(url))
        .await
        .map_err(|_| format!("peer {url} did not answer within {}s", PEER_TIMEOUT.as_secs()))?
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
    use crate::status::ProbeStatus;

    fn probe(name: &str, up: bool, tracked: bool) -> ProbeStatus {
        ProbeStatus {
            name: name.into(),
            kind: "icmp".into(),
            target: "198.51.100.1".into(),
            required: true,
            tracked,
            up,
            passes: 0,
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
        let failing = ProbeStatus { fails: 1, ..probe("wan", true, true) };
        assert_eq!(judge(&st("released", vec![failing])), PeerHealth::Unhealthy);
        // Only tracked probes count when there are some.
        assert_eq!(
            judge(&st("idle", vec![probe("wan", true, true), probe("dns", false, false)])),
            PeerHealth::Healthy
        );
        // Without tracked probes, the required ones.
        assert_eq!(judge(&st("released", vec![probe("dns", false, false)])), PeerHealth::Unhealthy);
        for busy in ["holding", "probing", "stabilizing", "failed", "draining", "releasing"] {
            assert_eq!(judge(&st(busy, vec![probe("wan", true, true)])), PeerHealth::Unhealthy, "{busy}");
        }
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
        assert!(e.contains("not a failbackd /status"), "{e}");
    }
}
