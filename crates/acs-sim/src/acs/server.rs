//! The fake ACS's HTTP/1.1 server (hyper): accept loop, and per request the pipeline
//! public documents → log → fault → signature → route → `api-version` → repeatability →
//! operation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::state::{CachedReply, Shared};
use super::{ops, FaultKind, RecordedRequest, SignatureCheck};
use crate::jwt::{JWKS_PATH, OPENID_CONFIG_PATH};
use acs_protocol::auth::{
    self, parse_rfc1123, SignedRequest, HEADER_HOST_OVERRIDE, HEADER_REPEATABILITY_FIRST_SENT,
    HEADER_REPEATABILITY_REQUEST_ID,
};
use acs_protocol::{AcsError, AcsOperation};

/// Largest request body read.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Bound on reading a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for an in-flight request with the same repeatability id.
const INFLIGHT_WAIT: Duration = Duration::from_secs(60);

/// Headers kept in the request log.
const LOGGED_HEADERS: &[&str] = &[
    "host",
    "x-ms-host",
    "x-ms-date",
    "x-ms-content-sha256",
    "authorization",
    "repeatability-request-id",
    "repeatability-first-sent",
    "content-type",
    "user-agent",
    "x-ms-client-request-id",
];

/// A response, cheap to clone (kept in the repeatability cache).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Reply {
        match serde_json::to_vec(body) {
            Ok(b) => Reply {
                status,
                headers: vec![("content-type", "application/json".to_owned())],
                body: Bytes::from(b),
            },
            Err(e) => Reply::error(500, "InternalServerError", &e.to_string()),
        }
    }

    /// An ACS error body `{"error":{"code","message"}}` with `x-ms-error-code`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::acs_error(status, &AcsError::new(code, message))
    }

    pub fn acs_error(status: u16, e: &AcsError) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-ms-error-code", e.code.clone()),
            ],
            body: Bytes::from(e.to_body()),
        }
    }

    fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut b = Response::builder().status(self.status);
        for (k, v) in &self.headers {
            b = b.header(*k, v.as_str());
        }
        b.body(Full::new(self.body)).unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// The error that makes hyper drop a connection without answering (fault injection).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(crate) struct Dropped;

/// Accepts connections until `stop` changes (or its sender is dropped), then aborts the open
/// ones.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(Arc::clone(&shared), req));
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                // Out of descriptors or a transient accept error: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let pq = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    if method == "GET" && path == JWKS_PATH {
        shared.count_jwks_fetch();
        return Ok(Reply::json(200, &shared.jwks()).into_response());
    }
    if method == "GET" && path == OPENID_CONFIG_PATH {
        let doc = shared.signer().openid_configuration(&shared.base_url);
        return Ok(Reply::json(200, &doc).into_response());
    }
    let headers = req.headers().clone();
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let reply = if too_big {
                Reply::error(413, "RequestEntityTooLarge", "request body too large")
            } else {
                Reply::error(400, "BadRequest", "request body could not be read")
            };
            return Ok(reply.into_response());
        }
        Err(_) => {
            return Ok(Reply::error(408, "RequestTimeout", "request body too slow").into_response())
        }
    };
    if let Some(rest) = path.strip_prefix("/sim/") {
        return Ok(ops::admin(&shared, &method, rest, &body).into_response());
    }
    process(&shared, &method, &pq, &headers, &body)
        .await
        .map(Reply::into_response)
}

/// The data-plane pipeline for one request.
async fn process(
    shared: &Arc<Shared>,
    method: &str,
    pq: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Reply, Dropped> {
    let op = AcsOperation::parse(method, pq);
    let host = header(headers, HEADER_HOST_OVERRIDE)
        .or_else(|| header(headers, "host"))
        .unwrap_or_default();
    let signed = SignedRequest {
        method,
        path_and_query: pq,
        host,
        date: header(headers, auth::HEADER_DATE),
        content_hash: header(headers, auth::HEADER_CONTENT_HASH),
        authorization: header(headers, auth::HEADER_AUTHORIZATION),
        body,
    };
    let skew = i64::try_from(shared.cfg.max_date_skew.as_secs()).unwrap_or(i64::MAX);
    let signature = match auth::verify(&shared.cfg.access_key, &signed, shared.now_unix(), skew) {
        Ok(()) => SignatureCheck::Valid,
        Err(e) => SignatureCheck::Invalid(e.to_string()),
    };
    let request_id = header(headers, HEADER_REPEATABILITY_REQUEST_ID).map(str::to_owned);
    let first_sent = header(headers, HEADER_REPEATABILITY_FIRST_SENT).map(str::to_owned);
    let logged: BTreeMap<String, String> = LOGGED_HEADERS
        .iter()
        .filter_map(|&n| header(headers, n).map(|v| (n.to_owned(), v.to_owned())))
        .collect();
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()))
    };
    let seq = shared.log_request(RecordedRequest {
        seq: 0,
        at_ms: shared.elapsed_ms(),
        method: method.to_owned(),
        path_and_query: pq.to_owned(),
        operation_name: op.as_ref().map(AcsOperation::name),
        operation: op.clone(),
        headers: logged,
        body: json,
        signature: signature.clone(),
        repeatability_request_id: request_id.clone(),
        replayed: false,
        fault: None,
        status: None,
    });

    let fault = shared.take_fault(op.as_ref().map(AcsOperation::name));
    if let Some(f) = &fault {
        let f = f.clone();
        shared.amend_request(seq, |r| r.fault = Some(f));
    }
    let injected = match fault {
        Some(FaultKind::Drop) => return Err(Dropped),
        Some(FaultKind::Status(code)) => Some(injected_error(code)),
        Some(FaultKind::TooManyRequests { retry_after_secs }) => Some(
            Reply::error(
                429,
                "TooManyRequests",
                "Rate limit exceeded; retry after the period in Retry-After.",
            )
            .with_header("retry-after", retry_after_secs.to_string()),
        ),
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        None => None,
    };
    let reply = match injected {
        Some(r) => r,
        None => match (&signature, op) {
            (SignatureCheck::Invalid(reason), _) => Reply::acs_error(
                401,
                &AcsError {
                    inner_error: Some(Box::new(AcsError::new("InvalidSignature", reason))),
                    ..AcsError::new("Denied", "Denied by the resource provider.")
                },
            ),
            (SignatureCheck::Valid, None) => Reply::error(
                404,
                "NotFound",
                &format!("No Call Automation operation at {method} {pq}"),
            ),
            (SignatureCheck::Valid, Some(op)) => {
                route(shared, seq, op, pq, request_id, first_sent, body).await
            }
        },
    };
    shared.amend_request(seq, |r| r.status = Some(reply.status));
    Ok(reply)
}

fn injected_error(code: u16) -> Reply {
    let (name, message) = match code {
        400 => ("BadRequest", "Injected fault: bad request."),
        401 => ("Denied", "Denied by the resource provider."),
        403 => ("Forbidden", "Injected fault: forbidden."),
        404 => ("NotFound", "Injected fault: not found."),
        408 => ("RequestTimeout", "Injected fault: request timeout."),
        503 => ("ServiceUnavailable", "Injected fault: service unavailable."),
        504 => ("GatewayTimeout", "Injected fault: gateway timeout."),
        c if c >= 500 => ("InternalServerError", "Injected fault: internal error."),
        _ => ("BadRequest", "Injected fault."),
    };
    Reply::error(code, name, message)
}

/// `api-version`, repeatability, then the operation.
async fn route(
    shared: &Arc<Shared>,
    seq: u64,
    op: AcsOperation,
    pq: &str,
    request_id: Option<String>,
    first_sent: Option<String>,
    body: &Bytes,
) -> Reply {
    let has_api_version = pq
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("api-version=")));
    if !has_api_version {
        return Reply::error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if let AcsOperation::GetParticipants { call_connection_id } = &op {
        return ops::get_participants(shared, call_connection_id, pq);
    }
    if !op.needs_repeatability() {
        return ops::dispatch(shared, op, body);
    }
    let (id, first_sent) = match (request_id, first_sent) {
        (Some(id), Some(fs)) => (id, fs),
        (None, None) if !shared.cfg.require_repeatability => {
            return ops::dispatch(shared, op, body)
        }
        (None, None) => {
            return Reply::error(
                400,
                "MissingRepeatabilityHeaders",
                "Repeatability-Request-ID and Repeatability-First-Sent are required.",
            )
        }
        _ => {
            return Reply::error(
                400,
                "InvalidRepeatabilityHeaders",
                "Repeatability-Request-ID and Repeatability-First-Sent must be sent together.",
            )
        }
    };
    if parse_rfc1123(&first_sent).is_none() {
        return Reply::error(
            400,
            "InvalidRepeatabilityHeaders",
            "Repeatability-First-Sent must be an RFC 1123 date.",
        );
    }
    // The first request with this id executes; a repeat waits for it and gets its response.
    match claim_or_replay(shared, &id, &first_sent).await {
        Claim::Replay(reply) => {
            shared.amend_request(seq, |r| r.replayed = true);
            reply
        }
        Claim::Conflict => Reply::error(
            400,
            "InvalidRepeatabilityHeaders",
            "Repeatability-Request-ID was already used with a different Repeatability-First-Sent.",
        )
        .with_header("repeatability-result", "rejected".to_owned()),
        Claim::Execute => {
            let reply = ops::dispatch(shared, op, body)
                .with_header("repeatability-result", "accepted".to_owned());
            shared.update(|s| {
                s.inflight.remove(&id);
                // A server error did not execute: a retry with the same id runs again.
                if reply.status < 500 {
                    s.remember_reply(
                        id,
                        CachedReply {
                            first_sent,
                            reply: reply.clone(),
                        },
                    );
                }
            });
            reply
        }
    }
}

enum Claim {
    Execute,
    Replay(Reply),
    Conflict,
}

async fn claim_or_replay(shared: &Arc<Shared>, id: &str, first_sent: &str) -> Claim {
    let deadline = tokio::time::Instant::now() + INFLIGHT_WAIT;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let claim = {
            let mut s = shared.lock();
            if let Some(c) = s.repeat.get(id) {
                Some(if c.first_sent == first_sent {
                    Claim::Replay(c.reply.clone())
                } else {
                    Claim::Conflict
                })
            } else if s.inflight.insert(id.to_owned()) {
                Some(Claim::Execute)
            } else {
                None
            }
        };
        if let Some(c) = claim {
            return c;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Claim::Conflict;
        }
    }
}
