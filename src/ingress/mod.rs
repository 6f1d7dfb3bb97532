//! EDGE: the one listener. Accepts TCP, serves HTTP/1.1 with hyper, answers the plain routes and
//! `/api/*` via [`crate::control`], and upgrades `GET /ws` and `GET /ws/{token}` to the ACS media
//! WebSocket (tokio-tungstenite on the upgraded stream), one task per connection (`connection`).
//!
//! With a control plane (given to [`IngressState::new`]), every upgrade is admitted by
//! [`ControlPlane::authorize_media`](crate::control::ControlPlane::authorize_media) first (call
//! token of a live call when `control.require_call_token`, ACS's JWT when validation is on):
//! a refusal is HTTP 401 (503 if ACS's signing keys cannot be fetched) with a JSON body before
//! the upgrade, counted `unauthorized` here and by reason in `auth_rejections_total`. An admitted
//! call token links the connection to its call: the registry learns when it opens and closes.
//!
//! Limits: `max_connections` media connections (more get HTTP 503 before the upgrade, counted
//! `connection_limit`); a separate budget of `max_connections + SOCKET_HEADROOM` plain HTTP
//! connections (not upgraded), where a newcomer evicts the oldest connection waiting on its
//! client (`http_conns`); `handshake_timeout_ms` to send a request head (counted
//! `handshake_timeout`; on a keep-alive connection that already served a request it is the idle
//! timeout, counted `http_connections_closed_total{reason="keepalive_idle"}` instead); a body
//! limit per route (`control::http::body_route`, 413 at once for a `Content-Length` over it)
//! and `body_timeout_ms` to receive the body (408); `max_frame_bytes` per WebSocket message
//! (close 1009); `idle_timeout_ms` without any message (close 1001). While draining, upgrades get
//! 503 (`draining`). Past capacity (`headroom`: runtime lag or sink queues over their
//! thresholds) upgrades get 503 with `Retry-After` (`overload`), so the calls already admitted
//! keep their audio.

pub(crate) mod connection;
pub(crate) mod headroom;
pub(crate) mod http_conns;
pub mod playback;
pub(crate) mod playback_items;

use crate::control::http::{body_route, check_declared, DeadlineBody};
use crate::control::{self, error_response, ControlPlane, HttpResponse};
use crate::metrics::Metrics;
use crate::pipeline::{CallIds, Pipeline};
use crate::shutdown::{Shutdown, Step};
use bytes::Bytes;
use http_body_util::Full;
use http_conns::{ConnCtl, HttpConns};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::Instrument;

/// Plain HTTP connections (not upgraded) allowed beyond `max_connections`: health checks,
/// scrapes, control-plane requests, upgrades in progress.
pub const SOCKET_HEADROOM: usize = 128;
/// Longest accepted `x-ms-call-*` header value or path token, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Limits and timeouts of the listener.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Media connections.
    pub max_connections: usize,
    /// Largest WebSocket message.
    pub max_frame_bytes: usize,
    /// Time to receive a request head (and to wait for the next one on a keep-alive connection).
    pub handshake_timeout: Duration,
    /// Largest request body of the webhook and callbacks (see `body_route`).
    pub max_body_bytes: usize,
    /// Time to receive a whole request body after its head.
    pub body_timeout: Duration,
    /// Time without any message before closing.
    pub idle_timeout: Duration,
    /// Media connections accept outbound audio (bidirectional playback) — as when ACS answered
    /// with `enableBidirectional`.
    pub bidirectional: bool,
    /// When to shed new media upgrades for lack of headroom.
    pub headroom: headroom::HeadroomConfig,
}

/// What the listener and its connections share.
#[derive(Debug)]
pub struct IngressState {
    /// Limits.
    pub cfg: IngressConfig,
    /// The pipeline calls are started on.
    pub pipeline: Arc<Pipeline>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Shutdown token.
    pub shutdown: Shutdown,
    /// Calls that can play audio back.
    pub playback: Arc<playback::PlaybackHub>,
    /// Whether there is room for another call (`headroom::monitor` keeps it current).
    pub headroom: Arc<headroom::Headroom>,
    control: Option<Arc<ControlPlane>>,
    media: AtomicUsize,
    http: Arc<HttpConns>,
    idle: Notify,
}

impl IngressState {
    /// Shared state for one listener. With `control` (the Call Automation control plane) it
    /// serves the `/api/*` routes and admits upgrades through it; without, it serves no `/api/*`
    /// route and admits every upgrade.
    pub fn new(
        cfg: IngressConfig,
        pipeline: Arc<Pipeline>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        playback: Arc<playback::PlaybackHub>,
        control: Option<Arc<ControlPlane>>,
    ) -> Arc<Self> {
        let http = HttpConns::new(cfg.max_connections + SOCKET_HEADROOM, metrics.clone());
        Arc::new(Self {
            cfg,
            pipeline,
            metrics,
            shutdown,
            playback,
            headroom: headroom::Headroom::new(),
            control,
            media: AtomicUsize::new(0),
            http,
            idle: Notify::new(),
        })
    }

    /// The control plane, if the listener has one.
    pub fn control(&self) -> Option<&Arc<ControlPlane>> {
        self.control.as_ref()
    }

    /// Open media connections.
    pub fn media_connections(&self) -> usize {
        self.media.load(Ordering::Acquire)
    }

    /// Waits until no media connection is open (or `timeout`); returns how many remain.
    pub async fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            let n = self.media_connections();
            if n == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.media_connections();
            }
        }
    }

    pub(crate) fn try_reserve_media(&self) -> bool {
        self.media
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cfg.max_connections).then_some(n + 1)
            })
            .is_ok()
    }
}

/// Holds one media connection slot; releasing it updates the gauge and wakes the drain.
pub struct MediaSlot(Arc<IngressState>);

impl Drop for MediaSlot {
    fn drop(&mut self) {
        self.0.metrics.connections_active.dec();
        if self.0.media.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Accepts until draining starts; each socket is served on its own task.
pub async fn serve(listener: TcpListener, state: Arc<IngressState>) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = state.shutdown.draining() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // the oldest connection waiting on its client makes room when the budget is full
        let Some(slot) = state.http.admit() else {
            state.metrics.rejected("socket_limit");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let st = state.clone();
        tokio::spawn(async move {
            let ctl = slot.ctl.clone();
            let svc_state = st.clone();
            let svc_ctl = ctl.clone();
            let service = hyper::service::service_fn(move |req| {
                let st = svc_state.clone();
                let ctl = svc_ctl.clone();
                async move { Ok::<_, Infallible>(handle(req, st, ctl).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(st.cfg.handshake_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            let res = tokio::select! {
                biased;
                // counted when chosen; dropping the connection closes the socket
                _ = ctl.evicted() => return,
                r = conn.as_mut() => r,
                _ = st.shutdown.draining() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            drop(slot);
            if let Err(e) = res {
                if e.is_timeout() {
                    // no request head in time: a refused handshake on a fresh connection, the
                    // idle timeout of a keep-alive one that already served requests
                    if ctl.served.load(Ordering::Relaxed) == 0 {
                        st.metrics.rejected("handshake_timeout");
                    } else {
                        st.metrics.http_closed("keepalive_idle");
                    }
                }
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    state.shutdown.record(Step::StoppedAccepting);
}

/// The body every route sees: the request's, due `body_timeout` after its head.
type Body = DeadlineBody<Incoming>;

async fn handle(req: Request<Incoming>, st: Arc<IngressState>, ctl: Arc<ConnCtl>) -> HttpResponse {
    ctl.served.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path();
    let media = path == "/ws" || path.starts_with("/ws/");
    let (endpoint, limit) = if media {
        ("media", 0)
    } else {
        body_route(path, st.cfg.max_body_bytes)
    };
    // a body declared bigger than the route takes is refused before a byte of it is read
    if let Err(e) = check_declared(req.body(), limit) {
        if media {
            st.metrics.rejected("bad_upgrade");
        } else {
            st.metrics.control.bad_request(endpoint, e.reason());
        }
        tracing::debug!(path, "request refused: {e}");
        return e.response();
    }
    // without a body the request is here whole: the gateway works on it, unless the connection
    // was chosen for eviction a moment ago (then nothing is done or counted for it)
    if hyper::body::Body::is_end_stream(req.body()) && !ctl.start_work() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "connection closed for room",
        );
    }
    let timeout = st.cfg.body_timeout;
    let on_ctl = ctl.clone();
    let on_received: control::http::OnReceived = Box::new(move || {
        on_ctl.start_work();
    });
    let req = req.map(|b| DeadlineBody::new(b, timeout, Some(on_received)));
    let mut r = route(req, st).await;
    let upgraded = r.status() == StatusCode::SWITCHING_PROTOCOLS;
    if media && !upgraded {
        // a refused upgrade ends its connection: the client wanted a WebSocket, not keep-alive
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let closing = upgraded
        || r.headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    // a connection that goes on waits on its client again (evictable); one that ends after this
    // response, or leaves the budget upgraded, is left alone until then
    if !closing {
        ctl.waiting();
    }
    r
}

async fn route(req: Request<Body>, st: Arc<IngressState>) -> HttpResponse {
    let cluster = st.control().and_then(|c| c.cluster_reachable());
    if let Some(r) = control::route(&req, &st.metrics, &st.shutdown, cluster) {
        return r;
    }
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return match st.control() {
            Some(cp) => cp.handle(req).await,
            None => error_response(StatusCode::NOT_FOUND, format!("no route for {path}")),
        };
    }
    let token = match path {
        "/ws" | "/ws/" => None,
        p if p.starts_with("/ws/") => Some(p["/ws/".len()..].to_string()),
        _ => return error_response(StatusCode::NOT_FOUND, format!("no route for {path}")),
    };
    upgrade(req, token, st).await
}

/// Checks a WebSocket upgrade request; the error is the HTTP status and message to answer with.
pub fn check_upgrade(method: &Method, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let bad = |m: &str| Err((StatusCode::BAD_REQUEST, m.to_string()));
    if method != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed; the media endpoint takes a GET upgrade"),
        ));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this is the ACS media WebSocket endpoint: Upgrade: websocket required".into(),
        ));
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return bad("Connection: Upgrade required");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return bad("Sec-WebSocket-Version: 13 required");
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(k) if !k.is_empty() && k.len() <= 64 => {
            Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
        }
        _ => bad("Sec-WebSocket-Key missing or malformed"),
    }
}

/// Reads an optional id header: absent → `None`; too long or not visible ASCII → error.
pub fn id_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) if s.len() <= MAX_ID_LEN => {
                Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
            }
            Ok(_) => Err(format!("{name} longer than {MAX_ID_LEN} bytes")),
            Err(_) => Err(format!("{name} is not visible ASCII")),
        },
    }
}

async fn upgrade(
    mut req: Request<Body>,
    token: Option<String>,
    st: Arc<IngressState>,
) -> HttpResponse {
    let accept = match check_upgrade(req.method(), req.headers()) {
        Ok(a) => a,
        Err((status, msg)) => {
            st.metrics.rejected("bad_upgrade");
            return error_response(status, msg);
        }
    };
    let ids = (|| {
        let conn = id_header(req.headers(), "x-ms-call-connection-id")?;
        let corr = id_header(req.headers(), "x-ms-call-correlation-id")?;
        if token.as_ref().is_some_and(|t| t.len() > MAX_ID_LEN) {
            return Err(format!("path token longer than {MAX_ID_LEN} bytes"));
        }
        Ok((conn, corr))
    })();
    let (conn_id, corr_id) = match ids {
        Ok(x) => x,
        Err(msg) => {
            st.metrics.rejected("bad_upgrade");
            return error_response(StatusCode::BAD_REQUEST, msg);
        }
    };
    if st.shutdown.is_draining() {
        st.metrics.rejected("draining");
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "gateway is shutting down");
    }
    let grant = match st.control() {
        Some(cp) => match cp.authorize_media(token.as_deref(), req.headers()).await {
            Ok(g) => Some(g),
            Err(refusal) => {
                st.metrics.rejected("unauthorized");
                cp.count_refusal(&refusal);
                tracing::warn!(
                    reason = refusal.reason,
                    "media upgrade refused: {}",
                    refusal.message
                );
                return error_response(refusal.status, refusal.message);
            }
        },
        None => None,
    };
    // A call admitted by its token is labelled by its ids, never by the (long, secret) token.
    let call_id = grant.as_ref().and_then(|g| g.call_id.clone());
    let bidirectional = st.cfg.bidirectional || grant.as_ref().is_some_and(|g| g.bidirectional);
    let (conn_id, token) = match &grant {
        Some(g) if g.call_id.is_some() => (
            conn_id.or_else(|| g.call_connection_id.clone()),
            g.call_id.clone(),
        ),
        _ => (conn_id, token),
    };
    if st.headroom.overloaded() {
        st.metrics.rejected("overload");
        let mut r = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway at capacity: no headroom for another media stream; retry later",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(headroom::RETRY_AFTER_SECS),
        );
        return r;
    }
    if !st.try_reserve_media() {
        st.metrics.rejected("connection_limit");
        let mut r = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "media connection limit reached ({})",
                st.cfg.max_connections
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    st.metrics.connections_active.inc();
    st.metrics.connections_total.inc();
    let slot = MediaSlot(st.clone());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ids = grant
        .map(|g| CallIds {
            gateway_call_id: g.call_id,
            server_call_id: g.server_call_id,
            from: g.from,
            to: g.to,
        })
        .unwrap_or_default();
    let call = st.pipeline.start_call_with_ids(
        conn_id,
        corr_id,
        token.filter(|t| !t.is_empty()),
        ids,
        chrono::Utc::now().timestamp_millis(),
    );
    // every log line of the connection (and of its playback writer) carries the call's ids
    let span = connection::span(call.call());
    let task = async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // the registry learns when the call's media connection opens and closes
                let linked = st.control().cloned().zip(call_id);
                if let Some((cp, id)) = &linked {
                    let (now, me) = (control::registry::now_ms(), cp.replica_id());
                    cp.commit(id, |reg, id| reg.media_connected(id, now, me))
                        .await;
                }
                connection::run(TokioIo::new(upgraded), call, st, slot, bidirectional).await;
                if let Some((cp, id)) = &linked {
                    let (now, me) = (control::registry::now_ms(), cp.replica_id());
                    // another replica may hold a newer connection of the call: leave it be
                    cp.commit(id, |reg, id| {
                        let mine = reg
                            .get(id)
                            .is_some_and(|r| r.media_connection.replica.as_deref() == me);
                        if mine {
                            reg.media_disconnected(id, now);
                        }
                    })
                    .await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    };
    tokio::spawn(task.instrument(span));
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn upgrade_checks() {
        let good = headers(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        // RFC 6455 §1.3 example
        assert_eq!(
            check_upgrade(&Method::GET, &good).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            check_upgrade(&Method::POST, &good).unwrap_err().0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let no_upgrade = headers(&[
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "x"),
        ]);
        assert_eq!(
            check_upgrade(&Method::GET, &no_upgrade).unwrap_err().0,
            StatusCode::UPGRADE_REQUIRED
        );
        let old = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "x"),
        ]);
        assert_eq!(
            check_upgrade(&Method::GET, &old).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        let nokey = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
        ]);
        assert!(check_upgrade(&Method::GET, &nokey)
            .unwrap_err()
            .1
            .contains("Key"));
    }

    #[test]
    fn id_headers_are_bounded() {
        let h = headers(&[
            ("x-ms-call-connection-id", " abc "),
            ("x-ms-call-correlation-id", &"x".repeat(300)),
        ]);
        assert_eq!(
            id_header(&h, "x-ms-call-connection-id").unwrap().as_deref(),
            Some("abc")
        );
        assert!(id_header(&h, "x-ms-call-correlation-id").is_err());
        assert_eq!(id_header(&h, "absent").unwrap(), None);
    }
}
