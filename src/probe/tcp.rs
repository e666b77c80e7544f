//! TCP probe: a target is up when a TCP connection to `ip:port` completes its handshake. The
//! connection is closed at once (a FIN, nothing sent), like haproxy's plain `check` without
//! `tcp-check`. No timeout here: the runner drops the future, which drops the pending socket.

use super::{ProbeFuture, Prober};
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Connects to one `ip:port`.
#[derive(Debug, Clone)]
pub struct TcpProber {
    target: SocketAddr,
}

impl TcpProber {
    pub fn new(target: SocketAddr) -> TcpProber {
        TcpProber { target }
    }
}

impl Prober for TcpProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let stream = TcpStream::connect(self.target)
                .await
                .map_err(|e| format!("connect to {}: {e}", self.target))?;
            // Dropping the stream closes it; the handshake alone proves the service listens.
            drop(stream);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn listening_port_is_up() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let prober = TcpProber::new(listener.local_addr().unwrap());
        assert_eq!(prober.probe().await, Ok(()));
    }

    #[tokio::test]
    async fn listening_ipv6_port_is_up() {
        let listener = TcpListener::bind("[::1]:0").await.unwrap();
        let prober = TcpProber::new(listener.local_addr().unwrap());
        assert_eq!(prober.probe().await, Ok(()));
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        // Bind then drop to get a port that nothing listens on.
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let err = TcpProber::new(addr).probe().await.unwrap_err();
        assert!(err.contains("refused"), "{err}");
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
