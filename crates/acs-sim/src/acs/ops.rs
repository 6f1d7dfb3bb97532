//! The fake ACS's operations: request body → validation → state change → response, plus the
//! command that makes the call's task post the callbacks. Also the unsigned `/sim/` admin API.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::call::{self, Cmd};
use super::server::Reply;
use super::state::{CallEntry, Invite, Shared, State};
use super::{
    CallAudio, CallEnd, CallInfo, ContextOutcome, IncomingCallSpec, MediaInfo, RecordingInfo,
};
use crate::ids::SimRng;
use acs_protocol::rest::{
    AddParticipantRequest, AddParticipantResponse, AnswerCallRequest, CallConnectionProperties,
    CallConnectionState, CallParticipant, CancelAddParticipantRequest,
    CancelAddParticipantResponse, CommunicationIdentityAccessToken,
    ContinuousDtmfRecognitionRequest, CustomCallingContext, GetParticipantsResponse, HoldRequest,
    MediaStreamingContentType, MediaStreamingSubscription, MuteParticipantsRequest,
    OperationContextResponse, RecordingKind, RecordingState, RecordingStateResponse,
    RedirectCallRequest, RejectCallRequest, RemoveParticipantRequest, SendDtmfTonesRequest,
    StartCallRecordingRequest, StartMediaStreamingRequest, StopMediaStreamingRequest,
    SubscriptionState, TeamsExtensionAssignment, TeamsExtensionAssignmentRequest,
    TeamsUserExchangeTokenRequest, TranscriptionSubscription, TransferToParticipantRequest,
    UnholdRequest,
};
use acs_protocol::{parse_raw_id, AcsOperation, CommunicationIdentifierModel};

/// Lifetime of an ACS token from the Teams user token exchange.
const EXCHANGED_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn bad_request(message: &str) -> Reply {
    Reply::error(400, "BadRequest", message)
}

fn not_found(what: &str) -> Reply {
    Reply::error(404, "NotFound", &format!("{what} not found."))
}

/// Parses a JSON body (an empty body reads as `{}` when `empty_ok`).
fn parse<T: DeserializeOwned>(body: &[u8], empty_ok: bool) -> Result<T, Reply> {
    let body: &[u8] = if body.is_empty() && empty_ok {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("The request body is not valid: {e}")))
}

fn invalid(e: &acs_protocol::rest::RequestError) -> Reply {
    Reply::acs_error(400, &e.to_acs_error())
}

fn identifier_problem(field: &str, m: &CommunicationIdentifierModel) -> Option<Reply> {
    m.validate()
        .err()
        .map(|e| bad_request(&format!("{field}: {e}")))
}

/// The model of `m` as the service returns it (`kind`, `rawId`, nested object).
fn canonical(m: &CommunicationIdentifierModel) -> CommunicationIdentifierModel {
    (&m.to_identifier()).into()
}

/// Runs one routed, authenticated operation.
pub(crate) fn dispatch(shared: &Arc<Shared>, op: AcsOperation, body: &[u8]) -> Reply {
    use AcsOperation as O;
    let r = match op {
        O::AnswerCall => answer(shared, body),
        O::RejectCall => reject(shared, body),
        O::RedirectCall => redirect(shared, body),
        O::GetCall { call_connection_id } => get_call(shared, &call_connection_id),
        O::HangUpCall { call_connection_id } => {
            hang_up(shared, &call_connection_id, CallEnd::HungUp)
        }
        O::TerminateCall { call_connection_id } => {
            hang_up(shared, &call_connection_id, CallEnd::Terminated)
        }
        O::TransferToParticipant { call_connection_id } => {
            transfer(shared, &call_connection_id, body)
        }
        O::AddParticipant { call_connection_id } => {
            add_participant(shared, &call_connection_id, body)
        }
        O::RemoveParticipant { call_connection_id } => {
            remove_participant(shared, &call_connection_id, body)
        }
        O::MuteParticipants { call_connection_id } => mute(shared, &call_connection_id, body),
        O::CancelAddParticipant { call_connection_id } => {
            cancel_add(shared, &call_connection_id, body)
        }
        O::GetParticipants { call_connection_id } => {
            Ok(get_participants(shared, &call_connection_id, ""))
        }
        O::GetParticipant {
            call_connection_id,
            participant_raw_id,
        } => get_participant(shared, &call_connection_id, &participant_raw_id),
        O::StartMediaStreaming { call_connection_id } => {
            media_streaming(shared, &call_connection_id, body, true)
        }
        O::StopMediaStreaming { call_connection_id } => {
            media_streaming(shared, &call_connection_id, body, false)
        }
        O::Hold { call_connection_id } => hold(shared, &call_connection_id, body),
        O::Unhold { call_connection_id } => unhold(shared, &call_connection_id, body),
        O::SendDtmfTones { call_connection_id } => send_dtmf(shared, &call_connection_id, body),
        O::StartContinuousDtmfRecognition { call_connection_id } => {
            dtmf_recognition(shared, &call_connection_id, body, true)
        }
        O::StopContinuousDtmfRecognition { call_connection_id } => {
            dtmf_recognition(shared, &call_connection_id, body, false)
        }
        O::StartRecording => start_recording(shared, body),
        O::GetRecording { recording_id } => get_recording(shared, &recording_id),
        O::StopRecording { recording_id } => {
            change_recording(shared, &recording_id, RecordingState::Inactive, 204)
        }
        O::PauseRecording { recording_id } => {
            change_recording(shared, &recording_id, RecordingState::Inactive, 202)
        }
        O::ResumeRecording { recording_id } => {
            change_recording(shared, &recording_id, RecordingState::Active, 202)
        }
        O::ExchangeTeamsUserAccessToken => exchange_token(shared, body),
        O::PutTeamsExtensionAssignment {
            tenant_id,
            object_id,
        } => teams_assignment(shared, tenant_id, object_id, body),
        other => Err(Reply::error(
            501,
            "NotImplemented",
            &format!("acs-sim does not implement {}", other.name()),
        )),
    };
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------------------------
// Incoming calls
// ---------------------------------------------------------------------------------------------

/// ACS's error for an `incomingCallContext` that is unknown or too old.
fn stale_context(valid_until: Option<chrono::DateTime<chrono::Utc>>) -> Reply {
    const FMT: &str = "%m/%d/%Y %-I:%M:%S %p";
    let now = chrono::Utc::now();
    let until = valid_until.unwrap_or(now - chrono::Duration::seconds(1));
    let message = format!(
        "IDX23010: Lifetime validation of the signed http request failed. Current time: '{}' UTC, signed http request is valid until: '{}' UTC.",
        now.format(FMT),
        until.format(FMT)
    );
    Reply::error(400, "BadRequest", &message)
}

/// Takes a pending, live context for answer / reject / redirect.
fn claim_context(
    shared: &Shared,
    s: &mut State,
    context: &str,
    outcome: ContextOutcome,
) -> Result<
    (
        acs_protocol::events::IncomingCallEventData,
        Option<CallAudio>,
    ),
    Reply,
> {
    let Some(c) = s.contexts.get_mut(context) else {
        return Err(stale_context(None));
    };
    if !shared.context_live(c.issued) {
        let age = chrono::Duration::from_std(c.issued.elapsed()).unwrap_or_default();
        let ttl = chrono::Duration::from_std(shared.cfg.incoming_call_ttl).unwrap_or_default();
        return Err(stale_context(Some(chrono::Utc::now() - age + ttl)));
    }
    if c.outcome != ContextOutcome::Pending {
        return Err(bad_request(
            "The incoming call was already answered, rejected or redirected.",
        ));
    }
    c.outcome = outcome;
    Ok((c.data.clone(), c.audio.clone()))
}

fn answer(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
    let req: AnswerCallRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let mut rng = SimRng::from_entropy();
    let id = rng.uuid_like();
    let props = shared.update(|s| -> Result<CallConnectionProperties, Reply> {
        let (data, audio) = claim_context(
            shared,
            s,
            &req.incoming_call_context,
            ContextOutcome::Answered(id.clone()),
        )?;
        let audio = audio.unwrap_or_else(|| shared.cfg.audio.clone());
        let caller = canonical(&data.from);
        let talker_ids: Vec<String> = audio
            .sources
            .iter()
            .enumerate()
            .map(|(i, src)| {
                src.raw_id.clone().unwrap_or_else(|| {
                    if i == 0 {
                        caller.raw_id()
                    } else {
                        format!("8:acs:{}_{}", shared.cfg.resource_id, rng.uuid_like())
                    }
                })
            })
            .collect();
        let mut participants = vec![CallParticipant {
            identifier: caller.clone(),
            is_muted: Some(false),
            is_on_hold: Some(false),
        }];
        for raw in &talker_ids {
            if *raw != caller.raw_id() {
                participants.push(CallParticipant {
                    identifier: (&parse_raw_id(raw)).into(),
                    is_muted: Some(false),
                    is_on_hold: Some(false),
                });
            }
        }
        let media = MediaInfo {
            subscription_id: rng.uuid_like(),
            state: req
                .media_streaming_options
                .as_ref()
                .map(|_| SubscriptionState::Inactive),
            ..MediaInfo::default()
        };
        let info = CallInfo {
            call_connection_id: id.clone(),
            server_call_id: data.server_call_id.clone().unwrap_or_default(),
            correlation_id: data.correlation_id.clone().unwrap_or_default(),
            incoming_call_context: req.incoming_call_context.clone(),
            state: CallConnectionState::Connecting,
            from: caller,
            to: canonical(&data.to),
            callback_uri: req.callback_uri.clone(),
            operation_context: req.operation_context.clone(),
            media_streaming_options: req.media_streaming_options.clone(),
            media,
            participants,
            recordings: Vec::new(),
            callbacks: Vec::new(),
            answered_at_ms: shared.elapsed_ms(),
            ended: None,
        };
        let mut props = properties(&info, data.caller_display_name.clone());
        props.answered_by = req.answered_by.clone();
        if let Some(t) = &req.transcription_options {
            props.transcription_subscription = Some(TranscriptionSubscription {
                id: Some(rng.uuid_like()),
                state: Some(if t.start_transcription == Some(true) {
                    SubscriptionState::Active
                } else {
                    SubscriptionState::Inactive
                }),
                subscribed_result_types: Some(if t.enable_intermediate_results == Some(true) {
                    vec!["final".to_owned(), "intermediate".to_owned()]
                } else {
                    vec!["final".to_owned()]
                }),
                locale: Some(t.locale.clone()),
            });
        }
        let tx = call::spawn(Arc::clone(shared), id.clone());
        let _ = tx.send(Cmd::Connected);
        s.calls.push(CallEntry {
            info,
            tx,
            audio,
            talker_ids,
            media_running: false,
            outbound: Default::default(),
            invitations: HashMap::new(),
        });
        Ok(props)
    })?;
    Ok(Reply::json(200, &props))
}

/// `CallConnectionProperties` of a call (as answer and get call return them).
fn properties(info: &CallInfo, caller_display_name: Option<String>) -> CallConnectionProperties {
    let phone_of = |m: &CommunicationIdentifierModel| m.phone_number.clone();
    CallConnectionProperties {
        call_connection_id: Some(info.call_connection_id.clone()),
        server_call_id: Some(info.server_call_id.clone()),
        targets: Some(vec![info.to.clone()]),
        call_connection_state: Some(info.state.clone()),
        callback_uri: Some(info.callback_uri.clone()),
        source_caller_id_number: phone_of(&info.from),
        source_display_name: caller_display_name,
        source: Some(info.from.clone()),
        correlation_id: Some(info.correlation_id.clone()),
        answered_by: None,
        media_streaming_subscription: info.media_streaming_options.as_ref().map(|o| {
            MediaStreamingSubscription {
                id: Some(info.media.subscription_id.clone()),
                state: Some(
                    if info.media.state == Some(SubscriptionState::Active)
                        || o.start_media_streaming == Some(true)
                    {
                        SubscriptionState::Active
                    } else {
                        SubscriptionState::Inactive
                    },
                ),
                subscribed_content_types: Some(vec![MediaStreamingContentType::Audio]),
            }
        }),
        transcription_subscription: None,
        answered_for: phone_of(&info.to),
    }
}

fn reject(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
    let req: RejectCallRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let reason = req
        .call_reject_reason
        .as_ref()
        .map(|r| r.as_str().to_owned());
    shared.update(|s| {
        claim_context(
            shared,
            s,
            &req.incoming_call_context,
            ContextOutcome::Rejected(reason),
        )
    })?;
    Ok(Reply::empty(204))
}

fn redirect(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
    let req: RedirectCallRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let target = req.target.raw_id();
    shared.update(|s| {
        claim_context(
            shared,
            s,
            &req.incoming_call_context,
            ContextOutcome::Redirected(target),
        )
    })?;
    Ok(Reply::empty(204))
}

mod calls;
mod features;
pub(crate) use calls::get_participants;
use calls::*;
use features::*;

// ---------------------------------------------------------------------------------------------
// /sim/ admin API (unsigned; for the CLI)
// ---------------------------------------------------------------------------------------------

/// Body of `POST /sim/incomingCalls`: raw ids and headers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdminIncomingCall {
    from: String,
    to: String,
    #[serde(default)]
    caller_display_name: Option<String>,
    #[serde(default)]
    to_as_unknown: bool,
    #[serde(default)]
    custom_context: Option<CustomCallingContext>,
}

/// `POST /sim/incomingCalls` → IncomingCall `data`; `GET /sim/calls`; `GET /sim/requests`;
/// `POST /sim/calls/{id}:hangup`.
pub(crate) fn admin(shared: &Arc<Shared>, method: &str, path: &str, body: &[u8]) -> Reply {
    match (method, path) {
        ("POST", "incomingCalls") => match serde_json::from_slice::<AdminIncomingCall>(body) {
            Ok(a) => {
                let mut spec = IncomingCallSpec::phone("+14255550123", "+18005550100");
                spec.from = parse_raw_id(&a.from);
                spec.to = parse_raw_id(&a.to);
                spec.to_as_unknown = a.to_as_unknown;
                spec.caller_display_name = a.caller_display_name;
                if a.custom_context.is_some() {
                    spec.custom_context = a.custom_context;
                }
                Reply::json(200, &shared.issue_incoming_call(spec))
            }
            Err(e) => bad_request(&e.to_string()),
        },
        ("GET", "calls") => Reply::json(200, &shared.calls()),
        ("GET", "requests") => Reply::json(200, &shared.requests()),
        ("POST", p) => match p
            .strip_prefix("calls/")
            .and_then(|r| r.strip_suffix(":hangup"))
        {
            Some(id) if shared.remote_hang_up(id) => Reply::empty(204),
            Some(_) => not_found("Call"),
            None => not_found("Admin route"),
        },
        _ => not_found("Admin route"),
    }
}
