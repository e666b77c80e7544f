//! HTTP probe: one `GET` over plain HTTP/1.1 with hyper's low-level client (one TCP connection
//! per attempt, `Connection: close`), up when the status equals `expect_status`. Only the status
//! line and headers are read; the body is never waited for, so a slow or endless body cannot
//! hold an attempt. No TLS on purpose: the probe answers "is the service there", and a TLS check
//! belongs in a command probe (e.g. `curl`) where certificates can be configured. The
//! connection is driven inside the probe future (not spawned), so dropping the future on timeout
//! closes the socket.

use super::{ProbeFuture, Prober};
pub use crate::url::{parse_url, ParsedUrl, UrlHost};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

const USER_AGENT_VALUE: &str = concat!("failbackd/", env!("CARGO_PKG_VERSION"));

/// GETs one URL per attempt.
#[derive(Debug, Clone)]
pub struct HttpProber {
    url: String,
    target: ParsedUrl,
    path: Uri,
    host_header: HeaderValue,
    expect: StatusCode,
}

impl HttpProber {
    pub fn new(url: &str, expect_status: u16) -> Result<HttpProber, String> {
        let target = parse_url(url).map_err(|e| format!("http probe {url}: {e}"))?;
        let expect = StatusCode::from_u16(expect_status)
            .map_err(|_| format!("http probe {url}: {expect_status} is not an HTTP status"))?;
        let path = Uri::try_from(target.path.as_str()).map_err(|e| format!("http probe {url}: {e}"))?;
        let host_header =
            HeaderValue::try_from(target.host_header()).map_err(|e| format!("http probe {url}: {e}"))?;
        Ok(HttpProber { url: url.to_string(), target, path, host_header, expect })
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        match &self.target.host {
            UrlHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.target.port)]),
            UrlHost::Name(name) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), self.target.port))
                    .await
                    .map_err(|e| format!("resolve {name}: {e}"))?
                    .collect();
                if addrs.is_empty() {
                    return Err(format!("resolve {name}: no addresses"));
                }
                Ok(addrs)
            }
        }
    }

    /// Sends the request on a connected stream and checks the status.
    async fn exchange(&self, stream: TcpStream) -> Result<(), String> {
        // Best effort: a tiny request, no reason to wait for Nagle.
        let _ = stream.set_nodelay(true);
        let fail = |e: &hyper::Error| format!("GET {}: {}", self.url, describe(e));
        let (mut sender, conn) =
            http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await.map_err(|e| fail(&e))?;
        let request = Request::get(self.path.clone())
            .header(HOST, self.host_header.clone())
            // One request per connection: nothing is left open between attempts.
            .header(CONNECTION, "close")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Empty::new())
            .map_err(|e| format!("GET {}: {e}", self.url))?;

        // The connection future does the I/O; poll it alongside the response future.
        let mut conn = Box::pin(conn);
        let mut response = std::pin::pin!(sender.send_request(request));
        let first = tokio::select! {
            r = &mut response => Ok(r),
            r = conn.as_mut() => Err(r),
        };
        let response: hyper::Result<Response<Incoming>> = match first {
            Ok(r) => r,
            Err(Err(e)) => return Err(fail(&e)),
            // The connection ended cleanly; the response (if any) was already handed over.
            // Dropping the connection makes a missing response fail instead of wait.
            Err(Ok(())) => {
                drop(conn);
                response.await
            }
        };
        let status = response.map_err(|e| fail(&e))?.status();
        if status == self.expect {
            Ok(())
        } else {
            Err(format!("status {}, expected {}", status.as_u16(), self.expect.as_u16()))
        }
    }
}

impl Prober for HttpProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            // Try each resolved address in turn (a name may have v6 and v4 addresses), but only
            // on connect errors: an HTTP answer, good or bad, is final.
            let mut last = None;
            for addr in self.resolve().await? {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return self.exchange(stream).await,
                    Err(e) => last = Some(format!("connect to {addr}: {e}")),
                }
            }
            Err(last.unwrap_or_else(|| format!("GET {}: no address to connect to", self.url)))
        })
    }
}

/// hyper's top-level error is terse ("connection error"); the cause is in its sources.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    /// A one-shot server: accepts one connection, reads the request head, answers `response`
    /// (or nothing when `None`), and hands the request text back.
    async fn serve_once(
        bind: &str,
        response: Option<&'static str>,
    ) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
            match response {
                Some(r) => sock.write_all(r.as_bytes()).await.unwrap(),
                // Hold the connection open without answering until the test ends.
                None => std::future::pending().await,
            }
        });
        (addr, rx)
    }

    const OK_200: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    const UNAVAILABLE_503: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
    const NO_CONTENT_204: &str = "HTTP/1.1 204 No Content\r\n\r\n";

    #[tokio::test]
    async fn expected_status_is_up_and_request_is_well_formed() {
        let (addr, req) = serve_once("127.0.0.1:0", Some(OK_200)).await;
        let prober = HttpProber::new(&format!("http://{addr}/health?full=1"), 200).unwrap();
        assert_eq!(prober.probe().await, Ok(()));
        let req = req.await.unwrap().to_ascii_lowercase();
        assert!(req.starts_with("get /health?full=1 http/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("\r\nhost: {addr}\r\n")), "{req}");
        assert!(req.contains("\r\nconnection: close\r\n"), "{req}");
    }

    #[tokio::test]
    async fn other_status_is_down_with_the_status() {
        let (addr, _req) = serve_once("127.0.0.1:0", Some(UNAVAILABLE_503)).await;
        let prober = HttpProber::new(&format!("http://{addr}/"), 200).unwrap();
        assert_eq!(prober.probe().await, Err("status 503, expected 200".to_string()));
    }

    #[tokio::test]
    async fn expect_status_204() {
        let (addr, _req) = serve_once("127.0.0.1:0", Some(NO_CONTENT_204)).await;
        assert_eq!(HttpProber::new(&format!("http://{addr}/"), 204).unwrap().probe().await, Ok(()));
        let (addr, _req) = serve_once("127.0.0.1:0", Some(OK_200)).await;
        assert_eq!(
            HttpProber::new(&format!("http://{addr}/"), 204).unwrap().probe().await,
            Err("status 200, expected 204".to_string())
        );
    }

    #[tokio::test]
    async fn ipv6_literal_host() {
        let (addr, req) = serve_once("[::1]:0", Some(OK_200)).await;
        let prober = HttpProber::new(&format!("http://[::1]:{}/", addr.port()), 200).unwrap();
        assert_eq!(prober.probe().await, Ok(()));
        let req = req.await.unwrap().to_ascii_lowercase();
        assert!(req.contains(&format!("\r\nhost: [::1]:{}\r\n", addr.port())), "{req}");
    }

    #[tokio::test]
    async fn dns_name_resolves() {
        // "localhost" comes from /etc/hosts (no DNS traffic); it may resolve to ::1 first,
        // where nothing listens, so this also covers trying the next address.
        let (addr, _req) = serve_once("127.0.0.1:0", Some(OK_200)).await;
        let prober = HttpProber::new(&format!("http://localhost:{}/", addr.port()), 200).unwrap();
        assert_eq!(prober.probe().await, Ok(()));
    }

    #[tokio::test]
    async fn silent_server_leaves_the_attempt_pending() {
        let (addr, req) = serve_once("127.0.0.1:0", None).await;
        let prober = HttpProber::new(&format!("http://{addr}/"), 200).unwrap();
        let mut attempt = prober.probe();
        // The prober has no timeout of its own: it still waits after the server got the request.
        assert!(tokio::time::timeout(Duration::from_millis(300), &mut attempt).await.is_err());
        assert!(req.await.unwrap().starts_with("GET / HTTP/1.1"));
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut attempt).await.is_err());
    }

    #[tokio::test]
    async fn server_closing_without_answer_is_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
        });
        let err = HttpProber::new(&format!("http://{addr}/"), 200).unwrap().probe().await.unwrap_err();
        assert!(err.starts_with(&format!("GET http://{addr}/: ")), "{err}");
    }

    #[tokio::test]
    async fn refused_connection_is_down() {
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let err = HttpProber::new(&format!("http://{addr}/"), 200).unwrap().probe().await.unwrap_err();
        assert!(err.contains("refused") && err.contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn parses_accepted_forms() {
        let p = parse_url("http://192.0.2.1/health").unwrap();
        assert_eq!(
            p,
            ParsedUrl { host: UrlHost::Ip("192.0.2.1".parse().unwrap()), port: 80, path: "/health".into() }
        );
        assert_eq!(p.host_header(), "192.0.2.1");

        let p = parse_url("http://[2001:db8::1]:8080/a/b?c=d").unwrap();
        assert_eq!(p.host, UrlHost::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!((p.port, p.path.as_str()), (8080, "/a/b?c=d"));
        assert_eq!(p.host_header(), "[2001:db8::1]:8080");

        let p = parse_url("http://gw.example.net:81").unwrap();
        assert_eq!((p.host, p.port, p.path.as_str()), (UrlHost::Name("gw.example.net".into()), 81, "/"));
        assert_eq!(parse_url("HTTP://[::1]?x#frag").unwrap().path, "/?x");
        assert_eq!(parse_url("http://host.example./").unwrap().host, UrlHost::Name("host.example.".into()));
    }

    #[test]
    fn rejects_bad_urls() {
        let cases = [
            ("https://192.0.2.1/", "https is not supported"),
            ("ftp://192.0.2.1/", "unsupported scheme"),
            ("192.0.2.1/health", "missing http://"),
            ("http:///path", "missing host"),
            ("http://:80/", "missing host"),
            ("http://192.0.2.1:0/", "invalid port"),
            ("http://192.0.2.1:65536/", "invalid port"),
            ("http://192.0.2.1:/", "invalid port"),
            ("http://192.0.2.1:+80/", "invalid port"),
            ("http://2001:db8::1/", "in brackets"),
            ("http://[2001:db8::1/", "missing ']'"),
            ("http://[192.0.2.1]/", "not an IPv6 address"),
            ("http://[::1]x/", "after ']'"),
            ("http://192.0.2.300/", "not a valid IPv4 address"),
            ("http://user:pw@192.0.2.1/", "passwords"),
            ("http://bad_-.-host/", "not a valid host name"),
            ("http://exa mple/", "not a valid host name"),
            ("http://192.0.2.1/a b", "invalid path"),
        ];
        for (url, want) in cases {
            match parse_url(url) {
                Ok(p) => panic!("{url} parsed as {p:?}"),
                Err(e) => assert!(e.contains(want), "{url}: {e:?} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn constructor_rejects_bad_status_and_url() {
        assert!(HttpProber::new("http://192.0.2.1/", 1000).unwrap_err().contains("not an HTTP status"));
        assert!(HttpProber::new("https://192.0.2.1/", 200).unwrap_err().contains("https"));
    }
}
