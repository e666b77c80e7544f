//! The HTTP endpoints, hyper 1: GET /metrics (Prometheus text format), /healthz, /status (JSON).
//! Connections are bounded and given a header timeout so slow clients cannot exhaust the daemon,
//! and stalled clients cannot keep a scrape waiting either: see [`MAX_CONNECTIONS`].

use crate::status::Status;
use crate::telemetry::metrics::Metrics;
use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Connections served at once. The accept loop never waits for a free slot (a waiting loop would
/// queue a scrape behind every stalled client in the backlog): when all are taken, a new
/// connection evicts the oldest one with no request in progress (a slow-loris client that never
/// finishes its headers, or an idle keep-alive), and is closed at once only when every slot is
/// busy answering a request.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection lives at most this long, whatever the client does.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Request heads larger than this are refused (431).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long an in-flight request may take to finish once the daemon stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    pub status: watch::Receiver<Status>,
    pub heartbeat: Heartbeat,
}

/// The daemon loop's pulse: it beats at every iteration, and the loop wakes at least every
/// `reconcile_interval`, so /healthz can tell a live loop from a dead or wedged one instead of
/// answering "ok" from the HTTP task alone.
#[derive(Clone)]
pub struct Heartbeat {
    last: Arc<Mutex<std::time::Instant>>,
    /// Silence longer than this is unhealthy.
    limit: Duration,
}

impl Heartbeat {
    pub fn new(reconcile_interval: Duration) -> Heartbeat {
        Heartbeat {
            last: Arc::new(Mutex::new(crate::telemetry::moments::now())),
            // Three missed ticks, plus room for one slow step.
            limit: reconcile_interval.saturating_mul(3).saturating_add(Duration::from_secs(5)),
        }
    }

    pub fn beat(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = crate::telemetry::moments::now();
    }

    /// How long since the last beat.
    pub fn age(&self) -> Duration {
        let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        crate::telemetry::moments::now().saturating_duration_since(last)
    }

    /// How long since the last beat, when that is longer than the limit.
    pub fn stalled(&self) -> Option<Duration> {
        let silent = self.age();
        (silent > self.limit).then_some(silent)
    }

    /// A /status snapshot with the loop's pulse as of now: the snapshot is whatever the loop
    /// published last, and a wedged loop would otherwise keep serving a fresh-looking "ready"
    /// to the peer that asks before handing over the traffic.
    pub fn stamp(&self, mut status: Status) -> Status {
        status.loop_age_s = Some(self.age().as_secs_f64());
        status.loop_stale_after_s = Some(self.limit.as_secs_f64());
        status
    }
}

/// One open connection: `busy` counts its requests in progress, `evict` closes it.
struct Slot {
    id: u64,
    busy: Arc<AtomicUsize>,
    evict: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Slots {
    next_id: u64,
    open: VecDeque<Slot>,
}

impl Slots {
    /// A slot for a new connection, evicting the oldest idle one when full; `None` when every
    /// connection is busy answering.
    fn admit(&mut self) -> Option<(u64, Arc<AtomicUsize>, CancellationToken)> {
        if self.open.len() >= MAX_CONNECTIONS {
            let idle = self.open.iter().position(|s| s.busy.load(Ordering::SeqCst) == 0)?;
            if let Some(old) = self.open.remove(idle) {
                old.evict.cancel();
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let slot = Slot { id, busy: Arc::new(AtomicUsize::new(0)), evict: CancellationToken::new() };
        let handle = (id, slot.busy.clone(), slot.evict.clone());
        self.open.push_back(slot);
        Some(handle)
    }

    fn close(&mut self, id: u64) {
        self.open.retain(|s| s.id != id);
    }
}

/// Marks a connection busy from the moment its request head is parsed until the response body
/// has been handed to the connection.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its connection marked busy while it is being sent.
struct TrackedBody {
    body: Full<Bytes>,
    _busy: Busy,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The next accepted connection, or `None` once `cancel` fires. A failed accept (EMFILE, a
/// connection reset before it was taken) is logged and retried after 100 ms instead of spinning
/// or ending the server; shared by the HTTP and control listeners.
pub(crate) async fn next_connection<S, A, F>(
    cancel: &CancellationToken,
    what: &str,
    mut accept: impl FnMut() -> F,
) -> Option<(S, A)>
where
    F: std::future::Future<Output = std::io::Result<(S, A)>>,
{
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            accepted = accept() => match accepted {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves until `cancel`. The listener is bound by the caller (tests bind port 0).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    cancel: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    while let Some((stream, _)) = next_connection(&cancel, "http", || listener.accept()).await {
        let admitted = slots.lock().unwrap_or_else(PoisonError::into_inner).admit();
        let Some((id, busy, evict)) = admitted else {
            tracing::debug!("http: every connection is busy; closing a new one");
            continue;
        };
        let state = state.clone();
        let cancel = cancel.clone();
        let slots = slots.clone();
        // Tracked: a shutdown waits (SHUTDOWN_GRACE at most) for scrapes in progress.
        tracker.spawn(async move {
            let service = service_fn(move |req| {
                let guard = Busy::new(&busy);
                let resp = route(&state, req).map(|body| TrackedBody { body, _busy: guard });
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let stopping = tokio::select! {
                _ = conn.as_mut() => false,
                _ = evict.cancelled() => false,
                _ = tokio::time::sleep(CONNECTION_TIMEOUT) => false,
                _ = cancel.cancelled() => true,
            };
            if stopping {
                // Finish the response in progress, then close: graceful_shutdown only asks,
                // the connection must still be driven to the end.
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
            }
            slots.lock().unwrap_or_else(PoisonError::into_inner).close(id);
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
        "/healthz" => match state.heartbeat.stalled() {
            None => text(StatusCode::OK, "ok\n"),
            Some(silent) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the daemon loop has not run for {}s\n", silent.as_secs()),
            ),
        },
        "/status" => match serde_json::to_vec_pretty(&state.heartbeat.stamp(state.status.borrow().clone())) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_goes_stale_when_the_loop_stops_beating() {
        let h = Heartbeat::new(Duration::from_secs(5));
        assert_eq!(h.stalled(), None);
        tokio::time::advance(Duration::from_secs(19)).await;
        assert_eq!(h.stalled(), None, "three ticks and 5 s of slack");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(h.stalled(), Some(Duration::from_secs(21)));
        h.beat();
        assert_eq!(h.stalled(), None);
    }

    // D20: /status carries the loop's pulse, so the peer that asks can tell a wedged daemon's
    // last snapshot from a current answer.
    #[tokio::test(start_paused = true)]
    async fn status_answers_carry_the_loop_age_and_go_stale_with_the_loop() {
        let h = Heartbeat::new(Duration::from_secs(5));
        let (tx, rx) = watch::channel(Status { phase: "released".into(), ..Status::default() });
        let cfg = crate::config::Config::parse("t.toml", "[backend]\ntype = \"simulated\"\n").unwrap();
        let metrics = Metrics::new(&cfg, "simulated").unwrap();
        let state = AppState { metrics, status: rx, heartbeat: h.clone() };
        let body = |state: &AppState| {
            let resp = route(state, Request::get("/status").body(()).unwrap());
            assert_eq!(resp.status(), StatusCode::OK);
            let bytes = body_bytes(resp);
            serde_json::from_slice::<Status>(&bytes).unwrap()
        };
        let st = body(&state);
        assert_eq!((st.loop_age_s, st.loop_stale_after_s), (Some(0.0), Some(20.0)));
        assert!(!st.stale());
        tokio::time::advance(Duration::from_secs(60)).await;
        let st = body(&state);
        assert_eq!(st.loop_age_s, Some(60.0));
        assert!(st.stale(), "the snapshot is a minute old: the loop is wedged");
        h.beat();
        assert!(!body(&state).stale());
        drop(tx);
    }

    fn body_bytes(resp: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt;
        match block_on_ready(resp.into_body().collect()) {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        }
    }

    /// A `Full` body is ready at once: one poll collects it.
    fn block_on_ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("a Full body is always ready"),
        }
    }

    #[test]
    fn a_full_server_evicts_the_oldest_idle_connection_and_never_a_busy_one() {
        let mut slots = Slots::default();
        let admitted: Vec<_> = (0..MAX_CONNECTIONS).map(|_| slots.admit().unwrap()).collect();
        // The oldest is answering a request: the next-oldest idle one goes.
        admitted[0].1.fetch_add(1, Ordering::SeqCst);
        let (id, _, _) = slots.admit().unwrap();
        assert_eq!(id, MAX_CONNECTIONS as u64);
        assert!(!admitted[0].2.is_cancelled());
        assert!(admitted[1].2.is_cancelled());
        assert!(!admitted[2].2.is_cancelled());
        assert_eq!(slots.open.len(), MAX_CONNECTIONS);

        // Every slot busy: the new connection is refused, nothing is evicted.
        for slot in &slots.open {
            slot.busy.fetch_add(1, Ordering::SeqCst);
        }
        assert!(slots.admit().is_none());
        assert_eq!(slots.open.iter().filter(|s| s.evict.is_cancelled()).count(), 0);

        // A closed connection frees its slot.
        slots.close(admitted[5].0);
        assert_eq!(slots.open.len(), MAX_CONNECTIONS - 1);
        assert!(slots.admit().is_some());
    }
}
