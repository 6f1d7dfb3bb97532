//! Carrying out the policy decision for one IncomingCall, on its own task: answer with
//! `mediaStreamingOptions` (`transportUrl = <media base>/ws/<call token>`) and
//! `callbackUri = <base>/api/callbacks/<call token>`, or reject, or redirect; then record the
//! outcome in the registry and the metrics (`acs_gateway_incoming_calls_total{outcome}`,
//! `acs_gateway_answer_latency_seconds`). An answer refused because the IncomingCall is stale
//! ("lifetime validation of the signed http request failed") is logged as such and counted as
//! outcome `stale`.

use super::acs_client::AcsClientError;
use super::plane::ControlPlane;
use super::policy::Decision;
use super::registry::{now_ms, rfc3339, CallState, LastError};
use crate::protocol::events::IncomingCallEventData;
use crate::protocol::identifier::CommunicationIdentifierModel;
use crate::protocol::rest::{AnswerCallRequest, RedirectCallRequest, RejectCallRequest};
use std::sync::Arc;
use std::time::Instant;

/// The `AnswerCallRequest` for a call: context passed through, the call's URLs, the profile's
/// streaming (and transcription) options, `operationContext` = the gateway call id.
pub(crate) fn answer_request(
    cp: &ControlPlane,
    call_id: &str,
    token: &str,
    incoming_call_context: String,
    profile: &super::policy::StreamingProfile,
) -> AnswerCallRequest {
    let transport = cp.urls.transport_url(token);
    AnswerCallRequest {
        operation_context: Some(call_id.to_owned()),
        media_streaming_options: Some(profile.media_streaming_options(&transport)),
        transcription_options: profile.transcription_options(&transport),
        ..AnswerCallRequest::new(incoming_call_context, cp.urls.callback_uri(token))
    }
}

/// Answers, rejects or redirects the call.
pub(crate) async fn run(
    cp: Arc<ControlPlane>,
    call_id: String,
    token: String,
    data: IncomingCallEventData,
    decision: Decision,
    received: Instant,
) {
    let Some(acs) = cp.acs.clone() else {
        return;
    };
    match decision {
        Decision::Answer { profile, .. } => {
            let req = answer_request(&cp, &call_id, &token, data.incoming_call_context, &profile);
            // before answering: ACS may open the media WebSocket before our answer returns
            let bidi = profile.enable_bidirectional;
            cp.commit(&call_id, |reg, id| {
                reg.update(id, now_ms(), |r| r.bidirectional = bidi)
            })
            .await;
            match acs.answer_call(&req).await {
                Ok(props) => {
                    let latency = received.elapsed();
                    cp.metrics
                        .control
                        .answer_latency
                        .observe(latency.as_secs_f64());
                    cp.metrics.control.incoming("answered");
                    let now = now_ms();
                    cp.commit(&call_id, |reg, id| {
                        reg.update(id, now, |r| {
                            if props.call_connection_id.is_some() {
                                r.call_connection_id.clone_from(&props.call_connection_id);
                            }
                            if props.server_call_id.is_some() {
                                r.server_call_id.clone_from(&props.server_call_id);
                            }
                            if props.correlation_id.is_some() {
                                r.correlation_id.clone_from(&props.correlation_id);
                            }
                            r.answered_at = Some(rfc3339(now));
                        })
                    })
                    .await;
                    super::trace::record_ids(
                        &tracing::Span::current(),
                        None,
                        props.call_connection_id.as_deref(),
                        props.server_call_id.as_deref(),
                    );
                    tracing::info!(
                        call = %call_id,
                        call_connection_id = props.call_connection_id.as_deref().unwrap_or(""),
                        latency_ms = latency.as_millis() as u64,
                        "call answered"
                    );
                }
                Err(e) => failed(&cp, &call_id, "answer_call", &e).await,
            }
        }
        Decision::Reject { reason, .. } => {
            let req = RejectCallRequest {
                incoming_call_context: data.incoming_call_context,
                call_reject_reason: Some(reason.clone()),
            };
            match acs.reject_call(&req).await {
                Ok(_) => {
                    cp.metrics.control.incoming("rejected");
                    let now = now_ms();
                    cp.commit(&call_id, |reg, id| {
                        reg.set_state(id, CallState::Rejected, now)
                    })
                    .await;
                    tracing::info!(call = %call_id, reason = %reason, "call rejected");
                }
                Err(e) => failed(&cp, &call_id, "reject_call", &e).await,
            }
        }
        Decision::Redirect { target, .. } => {
            let req = RedirectCallRequest {
                incoming_call_context: data.incoming_call_context,
                target: CommunicationIdentifierModel::from(&target),
            };
            match acs.redirect_call(&req).await {
                Ok(_) => {
                    cp.metrics.control.incoming("redirected");
                    let now = now_ms();
                    cp.commit(&call_id, |reg, id| {
                        reg.set_state(id, CallState::Redirected, now)
                    })
                    .await;
                    tracing::info!(call = %call_id, target = %target.raw_id(), "call redirected");
                }
                Err(e) => failed(&cp, &call_id, "redirect_call", &e).await,
            }
        }
    }
}

async fn failed(cp: &ControlPlane, call_id: &str, operation: &str, e: &AcsClientError) {
    let (code, sub_code, message) = e.summary();
    if e.is_stale_incoming_call() {
        cp.metrics.control.incoming("stale");
        tracing::warn!(
            call = %call_id,
            operation,
            error = %e,
            "stale IncomingCall: ACS says the incomingCallContext has expired (the caller hung up, or Event Grid delivered the event too late); not answered"
        );
    } else {
        cp.metrics.control.incoming("failed");
        tracing::warn!(call = %call_id, operation, error = %e, "IncomingCall could not be handled");
    }
    let now = now_ms();
    let err = LastError {
        source: operation.to_owned(),
        code,
        sub_code,
        message: if e.is_stale_incoming_call() {
            format!("stale IncomingCall: {message}")
        } else {
            message
        },
        at: rfc3339(now),
    };
    cp.commit(call_id, |reg, id| reg.set_error(id, err.clone(), true, now))
        .await;
}
