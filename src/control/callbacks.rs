//! `POST /api/callbacks/{token}`: Call Automation callback events (docs/PROTOCOL.md §8).
//!
//! Admission by [`super::gate`] (a valid call token of a call in the registry, and ACS's JWT when
//! validation is on; 401 otherwise, counted by reason). The body is an array of CloudEvents (or
//! one); every element is applied to the call's registry record in order and counted in
//! `acs_gateway_callbacks_total{type}` (known event names, or `unknown`). MediaStreamingFailed
//! and StartRecordingFailed are logged with their result codes. Redelivered events (same id) are
//! applied once. Bad bodies → 400/413 JSON, counted in
//! `acs_gateway_control_bad_requests_total{endpoint="callbacks"}`. In cluster mode, a delivery
//! whose call cannot be read or written on NATS is 503 `nats_unreachable` (ACS redelivers).

use super::http::{read_body, with_header};
use super::plane::ControlPlane;
use super::registry::{now_ms, Applied};
use super::{error_response, json_response, HttpResponse};
use crate::protocol::events::{parse_callbacks, CallbackEvent, CallbackKind};
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use std::sync::Arc;
use tracing::Instrument;

const EP: &str = "callbacks";

/// The `type` label of a callback.
pub(crate) fn kind_label(kind: &CallbackKind) -> &str {
    match kind {
        CallbackKind::Unknown(_) => "unknown",
        k => k.name(),
    }
}

/// Serves one callback delivery for the call named by `token`.
pub(crate) async fn handle<B>(cp: &Arc<ControlPlane>, req: Request<B>, token: &str) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if req.method() != Method::POST {
        cp.metrics.control.bad_request(EP, "method_not_allowed");
        let r = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed; ACS POSTs callbacks here", req.method()),
        );
        return with_header(r, "allow", "POST");
    }
    let call_id = match cp.authorize_callback(token, req.headers()).await {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => return cp.nats_unreachable(EP, &e),
        Err(r) => {
            cp.count_refusal(&r);
            tracing::warn!(reason = r.reason, "callback refused: {}", r.message);
            return error_response(r.status, r.message);
        }
    };
    let span = match cp.registry.get(&call_id) {
        Some(r) => super::trace::record_span("callback", &r),
        None => super::trace::call_span("callback", Some(&call_id), None, None),
    };
    apply(cp, req, call_id).instrument(span).await
}

/// Reads and applies one admitted callback delivery (inside the call's span).
async fn apply<B>(cp: &Arc<ControlPlane>, req: Request<B>, call_id: String) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let body = match read_body(req.into_body(), cp.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            cp.metrics.control.bad_request(EP, e.reason());
            return e.response();
        }
    };
    let events = match parse_callbacks(&body) {
        Ok(e) => e,
        Err(e) => {
            cp.metrics.control.bad_request(EP, e.reason());
            tracing::warn!(call = %call_id, error = %e, "callback body refused");
            return error_response(StatusCode::BAD_REQUEST, e);
        }
    };
    let (mut applied, mut duplicates) = (0usize, 0usize);
    for ev in &events {
        cp.metrics.control.callback(kind_label(&ev.kind));
        log_event(&call_id, ev);
        let now = now_ms();
        match cp
            .try_commit(&call_id, |reg, id| reg.apply_callback(id, ev, now))
            .await
        {
            Ok(Applied::Changed) => applied += 1,
            Ok(Applied::Duplicate) => duplicates += 1,
            Ok(Applied::UnknownCall) => {}
            // ACS redelivers; the events applied before this one are duplicates then
            Err(e) => return cp.nats_unreachable(EP, &e.error),
        }
    }
    json_response(
        StatusCode::OK,
        &json!({"callId": call_id, "applied": applied, "duplicates": duplicates}),
    )
}

fn log_event(call_id: &str, ev: &CallbackEvent) {
    let ri = ev.result_information.clone().unwrap_or_default();
    let code = ri.code.unwrap_or_default();
    let sub_code = ri.sub_code.unwrap_or_default();
    let message = ri.message.unwrap_or_default();
    match &ev.kind {
        CallbackKind::MediaStreamingFailed => {
            let details = ev
                .media_streaming_update
                .as_ref()
                .and_then(|u| u.media_streaming_status_details.as_ref())
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default();
            tracing::warn!(call = %call_id, code, sub_code, %details, %message, "MediaStreamingFailed");
        }
        CallbackKind::StartRecordingFailed => {
            tracing::warn!(
                call = %call_id,
                code,
                sub_code,
                recording_id = ev.recording_id.as_deref().unwrap_or(""),
                %message,
                "StartRecordingFailed"
            );
        }
        CallbackKind::Unknown(name) => {
            tracing::debug!(call = %call_id, event = %name, "unknown callback event tolerated");
        }
        k => tracing::info!(call = %call_id, event = %k, code, sub_code, "callback"),
    }
}

#[cfg(test)]
#[path = "callbacks_tests.rs"]
mod tests;
