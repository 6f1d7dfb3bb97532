//! Request plumbing shared by the control-plane routes: bounded body reads (size and, with the
//! listener's [`BodyTimeout`], time), the body limit of each route ([`body_route`]), query parameters,
//! bearer credentials, constant-time secret comparison, and the JSON error shape ([`error_response`](super::error_response)).

use super::HttpResponse;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use hyper::StatusCode;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Default largest request body of the webhook and callbacks (`server.max_body_bytes`; Event
/// Grid batches are at most 1 MB).
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest request body of the operator API (also capped by `server.max_body_bytes`).
pub(crate) const MAX_OPERATOR_BODY: usize = 64 * 1024;

/// A request body that did not arrive in time (the listener wraps every request body in a
/// [`DeadlineBody`] of `server.body_timeout_ms`).
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} ms", .0.as_millis())]
pub(crate) struct BodyTimeout(pub std::time::Duration);

/// The `endpoint` label of [`crate::metrics::ControlMetrics::bad_request`] and the body limit of
/// a request path, given `server.max_body_bytes`: the webhook and callbacks take up to `max`, the
/// operator API up to [`MAX_OPERATOR_BODY`] (at most `max`) — but `POST /api/calls/{id}/play` up
/// to [`MAX_PLAY_BYTES`](super::play_audio::MAX_PLAY_BYTES) —, every other route (health,
/// readiness, metrics, unknown paths) no body at all. The media path is the listener's.
pub(crate) fn body_route(path: &str, max: usize) -> (&'static str, usize) {
    if path == "/api/incomingCall" || path == "/api/incomingCall/" {
        ("incoming_call", max)
    } else if path.starts_with("/api/callbacks/") {
        ("callbacks", max)
    } else if path.starts_with("/api/calls/") && path.trim_end_matches('/').ends_with("/play") {
        ("operator", super::play_audio::MAX_PLAY_BYTES)
    } else if path == "/api/calls"
        || path.starts_with("/api/calls/")
        || path == "/api/agents/token"
        || path == "/api/resource-accounts"
        || path.starts_with("/api/teams-extension/")
    {
        ("operator", MAX_OPERATOR_BODY.min(max))
    } else {
        ("other", 0)
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Bigger than the limit.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// Not received within the body timeout.
    #[error("{0}")]
    TimedOut(BodyTimeout),
    /// The connection failed while reading.
    #[error("request body could not be read: {0}")]
    Read(String),
}

impl BodyError {
    /// Metric reason label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            BodyError::TooLarge(_) => "too_large",
            BodyError::TimedOut(_) => "body_timeout",
            BodyError::Read(_) => "body_read",
        }
    }

    /// The response for this error (413, 408 or 400). The request body was not read to its end,
    /// so the connection is closed after it (`Connection: close`).
    pub(crate) fn response(&self) -> HttpResponse {
        let status = match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        };
        with_header(super::error_response(status, self), "connection", "close")
    }
}

/// Refuses at once, without reading, a body that declares (`Content-Length`) more than `limit`.
pub(crate) fn check_declared<B: hyper::body::Body>(
    body: &B,
    limit: usize,
) -> Result<(), BodyError> {
    if body.size_hint().lower() > limit as u64 {
        Err(BodyError::TooLarge(limit))
    } else {
        Ok(())
    }
}

/// Reads the whole body, refusing more than `limit` bytes: at once when its `Content-Length` says
/// so, else as soon as the bytes received pass it (a chunked body is cut off there). A body
/// wrapped in a [`DeadlineBody`] that runs out of time is
/// [`BodyError::TimedOut`].
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    check_declared(&body, limit)?;
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(BodyError::TooLarge(limit))
            } else if let Some(DeadlineBodyError::TimedOut(t)) =
                e.downcast_ref::<DeadlineBodyError>()
            {
                Err(BodyError::TimedOut(BodyTimeout(t.0)))
            } else {
                Err(BodyError::Read(e.to_string()))
            }
        }
    }
}

/// Why a [`DeadlineBody`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeadlineBodyError {
    /// The body did not arrive whole before the deadline.
    #[error("{0}")]
    TimedOut(BodyTimeout),
    /// The underlying body failed (connection lost mid-body).
    #[error("{0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

/// Called once when a [`DeadlineBody`] has arrived whole.
pub(crate) type OnReceived = Box<dyn FnOnce() + Send + Sync>;

/// A request body that must arrive whole by a deadline (`server.body_timeout_ms` after its head):
/// once past it, a pending read fails with [`DeadlineBodyError::TimedOut`]. `on_received`, when
/// given, is called once the body has arrived whole (the listener uses it to tell a connection
/// waiting on its client from one the gateway is working on).
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: tokio::time::Instant,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    on_received: Option<OnReceived>,
}

impl<B: hyper::body::Body> DeadlineBody<B> {
    /// Wraps `inner`, due `timeout` from now.
    pub(crate) fn new(inner: B, timeout: Duration, on_received: Option<OnReceived>) -> Self {
        let mut body = Self {
            inner,
            deadline: tokio::time::Instant::now() + timeout,
            timeout,
            sleep: None,
            on_received,
        };
        if body.inner.is_end_stream() {
            body.received();
        }
        body
    }

    fn received(&mut self) {
        if let Some(f) = self.on_received.take() {
            f();
        }
    }
}

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Data = B::Data;
    type Error = DeadlineBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.received();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.received();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(DeadlineBodyError::Read(Box::new(e)))))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(DeadlineBodyError::TimedOut(
                        BodyTimeout(this.timeout),
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The value of query parameter `name` (percent-decoded, `+` as space), if present.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name).then(|| percent_decode(v))?
    })
}

/// Decodes `%XX` escapes and `+`; `None` for a bad escape or invalid UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a query value (unreserved characters kept).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The credential of `Authorization: Bearer <credential>`: `Ok(None)` when the header is
/// absent, `Err(())` when it is present but not a bearer credential.
#[allow(clippy::result_unit_err)]
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(v) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?.trim();
    let (scheme, cred) = v.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(());
    }
    let cred = cred.trim();
    if cred.is_empty() {
        Err(())
    } else {
        Ok(Some(cred))
    }
}

/// A header's value as text (`None` when absent or not visible ASCII).
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time equality of two secrets (the length is not hidden).
pub(crate) fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds a header to a response (values that are not valid header text are skipped).
pub(crate) fn with_header(mut r: HttpResponse, name: &'static str, value: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn query_params_decode() {
        let q = Some("a=1&secret=s%2Fx+y&empty=&flag");
        assert_eq!(query_param(q, "secret").as_deref(), Some("s/x y"));
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(None, "a"), None);
        assert_eq!(query_param(Some("x=%zz"), "x"), None);
        assert_eq!(percent_encode("appId eq 'a b'"), "appId%20eq%20%27a%20b%27");
    }

    #[test]
    fn bearer_and_secret_helpers() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), Ok(None));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Ok(Some("abc")));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer   xyz "));
        assert_eq!(bearer(&h), Ok(Some("xyz")));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), Err(()));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), Err(()));
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
    }

    #[tokio::test]
    async fn body_limit() {
        let b = read_body(Full::new(Bytes::from_static(b"hello")), 5)
            .await
            .unwrap();
        assert_eq!(&b[..], b"hello");
        let e = read_body(Full::new(Bytes::from_static(b"hello!")), 5)
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "too_large");
        assert_eq!(e.response().status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
