//! `POST /api/incomingCall`: the Event Grid webhook (docs/PROTOCOL.md §3.3, §7).
//!
//! * Optional shared secret (`control.eventgrid_secret`) in the query (`?secret=`) or the
//!   `X-Webhook-Secret` header; wrong or missing → 401, counted as outcome `unauthorized` and
//!   auth reason `bad_webhook_secret`.
//! * `OPTIONS`: the CloudEvents abuse-protection handshake — 200 echoing `WebHook-Request-Origin`
//!   in `WebHook-Allowed-Origin`, with `WebHook-Allowed-Rate: *` and `Allow: POST, OPTIONS`.
//! * `POST` of an Event Grid schema array or CloudEvents (one or a batch):
//!   `SubscriptionValidationEvent` → 200 `{"validationResponse": code}`; each IncomingCall →
//!   deduplicated by event id and `incomingCallContext`, registered, and answered on its own
//!   task ([`super::answer`]) while the webhook returns 200 at once. Other event types are
//!   ignored. Without ACS configured an IncomingCall gets 503 (validation still works). In
//!   cluster mode, an IncomingCall that cannot be claimed cluster-wide (NATS unreachable) makes
//!   the whole delivery 503 `nats_unreachable`, for Event Grid to redeliver, rather than risk
//!   answering the call twice.
//! * Bad bodies → 400/413/408 JSON, counted in `acs_gateway_control_bad_requests_total{endpoint="incoming_call"}`.

use super::http::{header_str, query_param, read_body, secret_eq, with_header};
use super::plane::ControlPlane;
use super::registry::{now_ms, NewCall};
use super::shared::LinkError;
use super::{error_response, json_response, HttpResponse};
use crate::protocol::events::{
    parse_webhook_events, IncomingCallEventData, WebhookPayload, HEADER_WEBHOOK_ALLOWED_ORIGIN,
    HEADER_WEBHOOK_ALLOWED_RATE, HEADER_WEBHOOK_REQUEST_ORIGIN,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Header alternative to `?secret=`.
pub(crate) const HEADER_WEBHOOK_SECRET: &str = "x-webhook-secret";
const EP: &str = "incoming_call";

/// What became of one IncomingCall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Intake {
    /// Registered and being answered (gateway call id).
    Accepted(String),
    /// Seen before.
    Duplicate,
    /// Could not be taken (registry full, ACS not configured).
    Refused(String),
    /// Cluster mode: could not be claimed cluster-wide (NATS unreachable); not answered.
    Unreachable(LinkError),
}

/// Serves the webhook.
pub(crate) async fn handle<B>(cp: &Arc<ControlPlane>, req: Request<B>) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(secret) = &cp.webhook_secret {
        let given = query_param(req.uri().query(), "secret")
            .or_else(|| header_str(req.headers(), HEADER_WEBHOOK_SECRET).map(str::to_owned));
        if !given.is_some_and(|g| secret_eq(g.as_bytes(), secret.as_bytes())) {
            cp.metrics.control.auth_rejected("bad_webhook_secret");
            cp.metrics.control.incoming("unauthorized");
            tracing::warn!("Event Grid webhook: missing or wrong secret");
            return error_response(StatusCode::UNAUTHORIZED, "missing or wrong webhook secret");
        }
    }
    match *req.method() {
        Method::OPTIONS => return handshake(&req),
        Method::POST => {}
        ref m => {
            cp.metrics.control.bad_request(EP, "method_not_allowed");
            let r = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{m} is not allowed; Event Grid POSTs events here"),
            );
            return with_header(r, "allow", "POST, OPTIONS");
        }
    }
    let received = Instant::now();
    let body = match read_body(req.into_body(), cp.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            cp.metrics.control.bad_request(EP, e.reason());
            return e.response();
        }
    };
    let events = match parse_webhook_events(&body) {
        Ok(e) => e,
        Err(e) => {
            cp.metrics.control.bad_request(EP, e.reason());
            tracing::warn!(error = %e, "Event Grid webhook: refused body");
            return error_response(StatusCode::BAD_REQUEST, e);
        }
    };
    let mut validation = None;
    let (mut accepted, mut duplicates, mut refused) = (Vec::new(), 0usize, Vec::new());
    let mut unreachable = None;
    for ev in events {
        match ev.payload {
            WebhookPayload::SubscriptionValidation(d) => {
                tracing::info!(event = %ev.id, "Event Grid subscription validation");
                validation = Some(d.response());
            }
            WebhookPayload::IncomingCall(data) => match intake(cp, &ev.id, *data, received).await {
                Intake::Accepted(id) => accepted.push(id),
                Intake::Duplicate => duplicates += 1,
                Intake::Refused(why) => refused.push(why),
                Intake::Unreachable(e) => unreachable = Some(e),
            },
            WebhookPayload::Other(_) => {
                tracing::debug!(event_type = %ev.event_type, "Event Grid webhook: event ignored");
            }
        }
    }
    if let Some(v) = validation {
        return json_response(StatusCode::OK, &json!(v));
    }
    if let Some(e) = unreachable {
        // Event Grid redelivers the batch; the calls taken from it are duplicates then
        return cp.nats_unreachable(EP, &e);
    }
    if accepted.is_empty() && duplicates == 0 && !refused.is_empty() && cp.acs.is_none() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "ACS not configured (set acs.connection_string): incoming calls cannot be answered",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"accepted": accepted, "duplicates": duplicates, "refused": refused}),
    )
}

/// The CloudEvents webhook validation handshake.
fn handshake<B>(req: &Request<B>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()));
    r.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_static("POST, OPTIONS"),
    );
    if let Some(origin) = req.headers().get(HEADER_WEBHOOK_REQUEST_ORIGIN) {
        r.headers_mut()
            .insert(HEADER_WEBHOOK_ALLOWED_ORIGIN, origin.clone());
        r.headers_mut().insert(
            HEADER_WEBHOOK_ALLOWED_RATE,
            header::HeaderValue::from_static("*"),
        );
        tracing::info!(origin = ?origin, "CloudEvents webhook validation handshake");
    }
    r
}

/// Takes one IncomingCall: dedupe, decide, register, answer on a task.
pub(crate) async fn intake(
    cp: &Arc<ControlPlane>,
    event_id: &str,
    data: IncomingCallEventData,
    received: Instant,
) -> Intake {
    let to = data.to.raw_id();
    let from = data.from.raw_id();
    if cp.acs.is_none() {
        cp.metrics.control.incoming("failed");
        tracing::warn!(%to, %from, "IncomingCall not answered: ACS not configured");
        return Intake::Refused("ACS not configured".into());
    }
    match cp
        .first_incoming(event_id, &data.incoming_call_context)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            cp.metrics.control.incoming("duplicate");
            tracing::info!(event = %event_id, %to, %from, "IncomingCall delivered again; answered once");
            return Intake::Duplicate;
        }
        Err(e) => {
            tracing::warn!(event = %event_id, %to, %from, error = %e, "IncomingCall not claimed cluster-wide; 503 for Event Grid to redeliver");
            return Intake::Unreachable(e);
        }
    }
    let call_id = uuid::Uuid::new_v4().to_string();
    // the IncomingCall and its answer task: callConnectionId is recorded once ACS answered
    let span = super::trace::call_span(
        "incoming_call",
        Some(&call_id),
        None,
        data.server_call_id.as_deref(),
    );
    let _entered = span.enter();
    let decision = cp.policy.decide(&to, &from);
    let now = now_ms();
    let (token, expires) = match cp.tokens.issue(&call_id, now.div_euclid(1000)) {
        Ok(t) => t,
        Err(e) => {
            cp.metrics.control.incoming("failed");
            tracing::error!(error = %e, "cannot issue a call token");
            return Intake::Refused(e.to_string());
        }
    };
    let new = NewCall {
        id: call_id.clone(),
        from: from.clone(),
        to: to.clone(),
        caller_display_name: data.caller_display_name.clone(),
        server_call_id: data.server_call_id.clone(),
        correlation_id: data.correlation_id.clone(),
        decision: decision.summary(),
        rule: decision.rule().map(str::to_owned),
        token: token.clone(),
        token_expires_unix: expires,
    };
    if let Err(e) = cp.registry.insert(new, now) {
        cp.metrics.control.incoming("failed");
        tracing::warn!(error = %e, %to, %from, "IncomingCall not answered");
        return Intake::Refused(e.to_string());
    }
    cp.publish_new(&call_id).await;
    tracing::info!(
        call = %call_id,
        %to,
        %from,
        decision = %decision.summary(),
        rule = decision.rule().unwrap_or("default"),
        "IncomingCall"
    );
    tokio::spawn(
        super::answer::run(cp.clone(), call_id.clone(), token, data, decision, received)
            .instrument(span.clone()),
    );
    Intake::Accepted(call_id)
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
