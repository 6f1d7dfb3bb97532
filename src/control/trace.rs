//! Tracing spans of the control plane: one span per call operation (the IncomingCall and its
//! answer task, each callback delivery, each operator request on a call) carrying the call's
//! ids, so every log line inside it names the call however the reader searches for it. The
//! field names are the ones the media connection's span uses (`ingress::connection::span`):
//! `call_id` (the gateway call id), `call_connection_id`, `server_call_id`; plus `op`.

use super::plane::ControlPlane;
use super::registry::CallRecord;
use tracing::field::Empty;
use tracing::Span;

/// A span for the operation `op` on a call; ids not known yet stay empty (and can be recorded
/// later with [`record_ids`]).
pub(crate) fn call_span(
    op: &'static str,
    call_id: Option<&str>,
    call_connection_id: Option<&str>,
    server_call_id: Option<&str>,
) -> Span {
    let span = tracing::info_span!(
        "call",
        op,
        call_id = Empty,
        call_connection_id = Empty,
        server_call_id = Empty
    );
    record_ids(&span, call_id, call_connection_id, server_call_id);
    span
}

/// The span of `op` on the call of registry record `r`.
pub(crate) fn record_span(op: &'static str, r: &CallRecord) -> Span {
    call_span(
        op,
        Some(&r.id),
        r.call_connection_id.as_deref(),
        r.server_call_id.as_deref(),
    )
}

/// Records the ids given (non-empty ones) on `span`.
pub(crate) fn record_ids(
    span: &Span,
    call_id: Option<&str>,
    call_connection_id: Option<&str>,
    server_call_id: Option<&str>,
) {
    let fields = [
        ("call_id", call_id),
        ("call_connection_id", call_connection_id),
        ("server_call_id", server_call_id),
    ];
    for (name, v) in fields {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            span.record(name, tracing::field::display(v));
        }
    }
}

/// The span of an operator request: the call's when the path (`/api/calls/{id}/…`) names a
/// known call (by gateway id or `callConnectionId`), else a bare `operator` span.
pub(crate) fn operator_span(cp: &ControlPlane, path: &str) -> Span {
    let mut segs = path.trim_start_matches("/api/").split('/');
    match (segs.next(), segs.next()) {
        (Some("calls"), Some(id)) if !id.is_empty() => match cp.registry.get(id) {
            Some(r) => record_span("operator", &r),
            None => call_span("operator", None, None, None),
        },
        _ => call_span("operator", None, None, None),
    }
}
