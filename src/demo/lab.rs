//! The demo's loopback "network": a TCP gateway that refuses connections until it is brought
//! up, and an HTTP tunnel-health endpoint that answers 503 until it is healthy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Lab {
    pub gateway_addr: SocketAddr,
    pub tunnel_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Bound but not listening: connects are refused until `set_healthy` listens on it.
    gateway: Mutex<Option<socket2::Socket>>,
    tunnel_healthy: Arc<AtomicBool>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Lab {
    pub async fn start(
        metrics_addr: SocketAddr,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Lab> {
        let gateway = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        gateway.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        let gateway_addr = gateway
            .local_addr()?
            .as_socket()
            .ok_or_else(|| anyhow::anyhow!("gateway socket has no address"))?;
        let tunnel = TcpListener::bind("127.0.0.1:0").await?;
        let tunnel_addr = tunnel.local_addr()?;
        let tunnel_healthy = Arc::new(AtomicBool::new(false));
        tracker.spawn(serve_health(tunnel, tunnel_healthy.clone(), cancel.clone()));
        Ok(Lab {
            gateway_addr,
            tunnel_addr,
            metrics_addr,
            gateway: Mutex::new(Some(gateway)),
            tunnel_healthy,
            cancel,
            tracker: tracker.clone(),
        })
    }

    pub fn tunnel_url(&self) -> String {
        format!("http://{}/health", self.tunnel_addr)
    }

    /// Brings the gateway up (it starts accepting) and makes the tunnel healthy.
    pub fn set_healthy(&self, healthy: bool) -> anyhow::Result<()> {
        self.set_tunnel_healthy(healthy);
        let taken = self.gateway.lock().map_err(|_| anyhow::anyhow!("lab lock poisoned"))?.take();
        if let (true, Some(sock)) = (healthy, taken) {
            sock.listen(128)?;
            sock.set_nonblocking(true)?;
            let listener = TcpListener::from_std(sock.into())?;
            self.tracker.spawn(accept_and_close(listener, self.cancel.clone()));
        }
        Ok(())
    }

    pub fn set_tunnel_healthy(&self, healthy: bool) {
        self.tunnel_healthy.store(healthy, Ordering::SeqCst);
    }
}

async fn accept_and_close(listener: TcpListener, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => drop(r),
        }
    }
}

async fn serve_health(listener: TcpListener, healthy: Arc<AtomicBool>, cancel: CancellationToken) {
    loop {
        let (mut stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
        };
        let healthy = healthy.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // One read is enough for the probe's small GET; the request itself is not needed.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buf)).await;
            let (status, body) = if healthy.load(Ordering::SeqCst) {
                ("200 OK", "up\n")
            } else {
                ("503 Service Unavailable", "tunnel down\n")
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
