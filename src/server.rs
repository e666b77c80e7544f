//! The HTTP endpoints, hyper 1: GET /metrics (Prometheus text format), /healthz, /status (JSON).
//! Connections are bounded and given a header timeout so slow clients cannot exhaust the daemon.

use crate::status::Status;
use crate::telemetry::metrics::Metrics;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// Concurrent connections served; more wait in the kernel backlog.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection lives at most this long, whatever the client does.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    pub status: watch::Receiver<Status>,
}

/// Serves until `cancel`. The listener is bound by the caller (tests bind port 0).
pub async fn serve(listener: TcpListener, state: AppState, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&state, req)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = tokio::time::sleep(CONNECTION_TIMEOUT) => {}
                _ = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

fn route<B>(state: &AppState, req: Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" => match state.metrics.encode() {
            Ok(body) => respond(StatusCode::OK, prometheus::TEXT_FORMAT, body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding metrics: {e}\n")),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/status" => match serde_json::to_vec_pretty(&*state.status.borrow()) {
            Ok(body) => respond(StatusCode::OK, "application/json", body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding status: {e}\n")),
        },
        "/" => text(StatusCode::OK, "failbackd: /metrics /status /healthz\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}
