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

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a call that has not ended (404 otherwise).
fn with_live_call<T>(
    shared: &Shared,
    id: &str,
    f: impl FnOnce(&mut CallEntry) -> Result<T, Reply>,
) -> Result<T, Reply> {
    shared.update(|s| match s.call_mut(id) {
        Some(c) if c.info.ended.is_none() && c.info.state != CallConnectionState::Disconnecting => {
            f(c)
        }
        _ => Err(not_found("Call")),
    })
}

fn get_call(shared: &Arc<Shared>, id: &str) -> Result<Reply, Reply> {
    let mut s = shared.lock();
    let c = s.call_mut(id).ok_or_else(|| not_found("Call"))?;
    Ok(Reply::json(200, &properties(&c.info, None)))
}

fn hang_up(shared: &Arc<Shared>, id: &str, end: CallEnd) -> Result<Reply, Reply> {
    with_live_call(shared, id, |c| {
        c.info.state = CallConnectionState::Disconnecting;
        let _ = c.tx.send(Cmd::HangUp {
            end,
            operation_context: None,
        });
        Ok(())
    })?;
    Ok(Reply::empty(204))
}

fn transfer(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: TransferToParticipantRequest = parse(body, false)?;
    if let Some(r) = identifier_problem("targetParticipant", &req.target_participant) {
        return Err(r);
    }
    let target = canonical(&req.target_participant);
    let fail = shared
        .lock()
        .failing_participants
        .contains(&target.raw_id());
    with_live_call(shared, id, |c| {
        if !fail {
            c.info.state = CallConnectionState::TransferAccepted;
        }
        let _ = c.tx.send(Cmd::Transfer {
            target: Box::new(target),
            transferee: req.transferee.as_ref().map(|t| Box::new(canonical(t))),
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
            fail,
        });
        Ok(())
    })?;
    Ok(Reply::json(
        202,
        &OperationContextResponse {
            operation_context: req.operation_context,
        },
    ))
}

fn add_participant(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: AddParticipantRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let participant = canonical(&req.participant_to_add);
    if participant.phone_number.is_some() && req.source_caller_id_number.is_none() {
        return Err(bad_request(
            "sourceCallerIdNumber is required to add a PSTN participant.",
        ));
    }
    let invitation_id = SimRng::from_entropy().uuid_like();
    with_live_call(shared, id, |c| {
        c.invitations.insert(
            invitation_id.clone(),
            Invite {
                participant: participant.clone(),
                operation_context: req.operation_context.clone(),
                callback_uri: req.operation_callback_uri.clone(),
            },
        );
        Ok(())
    })?;
    let (tx, ring) = (
        {
            let s = shared.lock();
            s.calls
                .iter()
                .find(|c| c.info.call_connection_id == id)
                .map(|c| c.tx.clone())
        },
        shared.cfg.ring_time,
    );
    if let Some(tx) = tx {
        let invitation_id = invitation_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ring).await;
            let _ = tx.send(Cmd::InviteAnswered { invitation_id });
        });
    }
    Ok(Reply::json(
        202,
        &AddParticipantResponse {
            participant: Some(CallParticipant {
                identifier: participant,
                is_muted: Some(false),
                is_on_hold: None,
            }),
            operation_context: req.operation_context,
            invitation_id: Some(invitation_id),
        },
    ))
}

fn remove_participant(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: RemoveParticipantRequest = parse(body, false)?;
    if let Some(r) = identifier_problem("participantToRemove", &req.participant_to_remove) {
        return Err(r);
    }
    let raw = req.participant_to_remove.raw_id();
    with_live_call(shared, id, |c| {
        let i = c
            .info
            .participants
            .iter()
            .position(|p| p.identifier.raw_id() == raw)
            .ok_or_else(|| not_found("Participant"))?;
        let removed = c.info.participants.remove(i);
        let _ = c.tx.send(Cmd::Removed {
            participant: Box::new(removed.identifier),
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
        });
        Ok(())
    })?;
    Ok(Reply::json(
        202,
        &OperationContextResponse {
            operation_context: req.operation_context,
        },
    ))
}

fn mute(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: MuteParticipantsRequest = parse(body, false)?;
    if req.target_participants.is_empty() {
        return Err(bad_request("targetParticipants must not be empty."));
    }
    with_live_call(shared, id, |c| {
        let raws = req
            .target_participants
            .iter()
            .map(|m| participant_in(c, m))
            .collect::<Result<Vec<String>, Reply>>()?;
        for p in &mut c.info.participants {
            if raws.contains(&p.identifier.raw_id()) {
                p.is_muted = Some(true);
            }
        }
        let _ = c.tx.send(Cmd::ParticipantsChanged);
        Ok(())
    })?;
    Ok(Reply::json(
        200,
        &OperationContextResponse {
            operation_context: req.operation_context,
        },
    ))
}

fn cancel_add(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: CancelAddParticipantRequest = parse(body, false)?;
    if req.invitation_id.trim().is_empty() {
        return Err(bad_request("invitationId must not be empty."));
    }
    with_live_call(shared, id, |c| {
        let _ = c.tx.send(Cmd::CancelInvite {
            invitation_id: req.invitation_id.clone(),
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
        });
        Ok(())
    })?;
    Ok(Reply::json(
        202,
        &CancelAddParticipantResponse {
            invitation_id: Some(req.invitation_id),
            operation_context: req.operation_context,
        },
    ))
}

/// `GET …/participants`: a page from `skip=N` of the query `pq`, of
/// [`participants_page_size`](super::FakeAcsConfig::participants_page_size) participants, with
/// the `nextLink` of the next page while more remain.
pub(crate) fn get_participants(shared: &Arc<Shared>, id: &str, pq: &str) -> Reply {
    let page = shared.cfg.participants_page_size;
    let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
    let skip: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("skip="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut s = shared.lock();
    let Some(c) = s.call_mut(id) else {
        return not_found("Call");
    };
    let all = &c.info.participants;
    let end = if page == 0 {
        all.len()
    } else {
        (skip + page).min(all.len())
    };
    let value = all
        .get(skip.min(all.len())..end)
        .unwrap_or_default()
        .to_vec();
    let next_link = (end < all.len()).then(|| {
        let keep: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("skip="))
            .collect();
        format!("{}{path}?{}&skip={end}", shared.base_url, keep.join("&"))
    });
    Reply::json(200, &GetParticipantsResponse { value, next_link })
}

fn get_participant(shared: &Arc<Shared>, id: &str, raw: &str) -> Result<Reply, Reply> {
    let mut s = shared.lock();
    let c = s.call_mut(id).ok_or_else(|| not_found("Call"))?;
    let p = c
        .info
        .participants
        .iter()
        .find(|p| p.identifier.raw_id() == raw)
        .ok_or_else(|| not_found("Participant"))?;
    Ok(Reply::json(200, p))
}

fn media_streaming(
    shared: &Arc<Shared>,
    id: &str,
    body: &[u8],
    start: bool,
) -> Result<Reply, Reply> {
    let (context, callback) = if start {
        let r: StartMediaStreamingRequest = parse(body, true)?;
        (r.operation_context, r.operation_callback_uri)
    } else {
        let r: StopMediaStreamingRequest = parse(body, true)?;
        (r.operation_context, r.operation_callback_uri)
    };
    with_live_call(shared, id, |c| {
        if c.info.media_streaming_options.is_none() {
            return Err(bad_request(
                "The call was answered without mediaStreamingOptions.",
            ));
        }
        if start == c.media_running {
            return Err(bad_request(if start {
                "Media streaming is already started."
            } else {
                "Media streaming is not started."
            }));
        }
        c.media_running = start;
        let cmd = if start {
            Cmd::StartMedia {
                operation_context: context,
                callback_uri: callback,
            }
        } else {
            Cmd::StopMedia {
                operation_context: context,
                callback_uri: callback,
            }
        };
        let _ = c.tx.send(cmd);
        Ok(())
    })?;
    Ok(Reply::empty(202))
}

// ---------------------------------------------------------------------------------------------
// Hold, DTMF
// ---------------------------------------------------------------------------------------------

/// The participant `m` names in call `c` (404 `Participant not found` otherwise).
fn participant_in(c: &mut CallEntry, m: &CommunicationIdentifierModel) -> Result<String, Reply> {
    let raw = canonical(m).raw_id();
    if c.info
        .participants
        .iter()
        .any(|p| p.identifier.raw_id() == raw)
    {
        Ok(raw)
    } else {
        Err(not_found("Participant"))
    }
}

fn hold(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: HoldRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let failing = shared.lock().failing_participants.clone();
    with_live_call(shared, id, |c| {
        let raw = participant_in(c, &req.target_participant)?;
        let _ = c.tx.send(Cmd::Hold {
            raw_id: raw.clone(),
            on_hold: true,
            with_audio: req.play_source_info.is_some(),
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
            fail: failing.contains(&raw),
        });
        Ok(())
    })?;
    Ok(Reply::empty(200))
}

fn unhold(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: UnholdRequest = parse(body, false)?;
    if let Some(r) = identifier_problem("targetParticipant", &req.target_participant) {
        return Err(r);
    }
    with_live_call(shared, id, |c| {
        let raw = participant_in(c, &req.target_participant)?;
        let _ = c.tx.send(Cmd::Hold {
            raw_id: raw,
            on_hold: false,
            with_audio: false,
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
            fail: false,
        });
        Ok(())
    })?;
    Ok(Reply::empty(200))
}

fn send_dtmf(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
    let req: SendDtmfTonesRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    if canonical(&req.target_participant).phone_number.is_none() {
        return Err(bad_request(
            "Send DTMF is supported only for PSTN participants.",
        ));
    }
    let failing = shared.lock().failing_participants.clone();
    with_live_call(shared, id, |c| {
        let raw = participant_in(c, &req.target_participant)?;
        let _ = c.tx.send(Cmd::DtmfSent {
            tones: req.tones.len(),
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
            fail: failing.contains(&raw),
        });
        Ok(())
    })?;
    Ok(Reply::json(
        202,
        &OperationContextResponse {
            operation_context: req.operation_context,
        },
    ))
}

fn dtmf_recognition(
    shared: &Arc<Shared>,
    id: &str,
    body: &[u8],
    start: bool,
) -> Result<Reply, Reply> {
    let req: ContinuousDtmfRecognitionRequest = parse(body, false)?;
    if let Some(r) = identifier_problem("targetParticipant", &req.target_participant) {
        return Err(r);
    }
    with_live_call(shared, id, |c| {
        let raw = participant_in(c, &req.target_participant)?;
        let _ = c.tx.send(Cmd::DtmfRecognition {
            raw_id: raw,
            start,
            operation_context: req.operation_context.clone(),
            callback_uri: req.operation_callback_uri.clone(),
        });
        Ok(())
    })?;
    Ok(Reply::empty(200))
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

fn start_recording(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
    let req: StartCallRecordingRequest = parse(body, false)?;
    req.validate().map_err(|e| invalid(&e))?;
    let mut rng = SimRng::from_entropy();
    let recording_id = STANDARD.encode(format!(
        r#"{{"PlatformEndpointId":"{}","ResourceSpecificId":"{}"}}"#,
        rng.uuid_like(),
        rng.uuid_like()
    ));
    shared.update(|s| {
        let fails = s.recording_fails;
        let c = s
            .calls
            .iter_mut()
            .find(|c| {
                c.info.ended.is_none()
                    && match (&req.call_connection_id, &req.call_locator) {
                        (Some(id), _) => c.info.call_connection_id == *id,
                        (None, Some(loc)) => {
                            loc.server_call_id.as_deref() == Some(c.info.server_call_id.as_str())
                        }
                        (None, None) => false,
                    }
            })
            .ok_or_else(|| not_found("Call"))?;
        let callback_uri = req
            .recording_state_callback_uri
            .clone()
            .unwrap_or_else(|| c.info.callback_uri.clone());
        c.info.recordings.push(RecordingInfo {
            recording_id: recording_id.clone(),
            state: RecordingState::Inactive,
            callback_uri: callback_uri.clone(),
            failed: fails,
        });
        let state = if req.pause_on_start == Some(true) {
            RecordingState::Inactive
        } else {
            RecordingState::Active
        };
        if !fails {
            if let Some(r) = c.info.recordings.last_mut() {
                r.state = state.clone();
            }
        }
        let _ = c.tx.send(Cmd::Recording {
            recording_id: recording_id.clone(),
            state,
            failed: fails,
            callback_uri,
        });
        let id = c.info.call_connection_id.clone();
        s.recordings.insert(recording_id.clone(), id);
        Ok::<_, Reply>(())
    })?;
    Ok(Reply::json(
        200,
        &RecordingStateResponse {
            recording_id,
            recording_state: Some(RecordingState::Inactive),
            recording_kind: Some(RecordingKind::AzureCommunicationServices),
        },
    ))
}

fn get_recording(shared: &Arc<Shared>, recording_id: &str) -> Result<Reply, Reply> {
    let mut s = shared.lock();
    let call_id = s
        .recordings
        .get(recording_id)
        .cloned()
        .ok_or_else(|| not_found("Recording"))?;
    let c = s.call_mut(&call_id).ok_or_else(|| not_found("Recording"))?;
    let r = c
        .info
        .recordings
        .iter()
        .find(|r| r.recording_id == recording_id)
        .ok_or_else(|| not_found("Recording"))?;
    Ok(Reply::json(
        200,
        &RecordingStateResponse {
            recording_id: r.recording_id.clone(),
            recording_state: Some(r.state.clone()),
            recording_kind: Some(RecordingKind::AzureCommunicationServices),
        },
    ))
}

fn change_recording(
    shared: &Arc<Shared>,
    recording_id: &str,
    state: RecordingState,
    status: u16,
) -> Result<Reply, Reply> {
    shared.update(|s| {
        let call_id = s
            .recordings
            .get(recording_id)
            .cloned()
            .ok_or_else(|| not_found("Recording"))?;
        let c = s.call_mut(&call_id).ok_or_else(|| not_found("Recording"))?;
        let r = c
            .info
            .recordings
            .iter_mut()
            .find(|r| r.recording_id == recording_id && !r.failed)
            .ok_or_else(|| not_found("Recording"))?;
        r.state = state.clone();
        let _ = c.tx.send(Cmd::Recording {
            recording_id: recording_id.to_owned(),
            state,
            failed: false,
            callback_uri: r.callback_uri.clone(),
        });
        if status == 204 {
            s.recordings.remove(recording_id);
        }
        Ok::<_, Reply>(())
    })?;
    Ok(Reply::empty(status))
}

// ---------------------------------------------------------------------------------------------
// Teams Phone extensibility (§11)
// ---------------------------------------------------------------------------------------------

fn exchange_token(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
    let req: TeamsUserExchangeTokenRequest = parse(body, false)?;
    for (field, v) in [
        ("token", &req.token),
        ("appId", &req.app_id),
        ("userId", &req.user_id),
    ] {
        if v.trim().is_empty() {
            return Err(bad_request(&format!("{field} must not be empty.")));
        }
    }
    let looks_like_jwt = req.token.split('.').count() == 3 && !req.token.contains(' ');
    if !looks_like_jwt {
        return Err(Reply::error(
            401,
            "InvalidAccessToken",
            "Provided access token is not valid.",
        ));
    }
    let token = shared
        .signer()
        .sign(EXCHANGED_TOKEN_LIFETIME)
        .map_err(|e| Reply::error(500, "InternalServerError", &e.to_string()))?;
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(EXCHANGED_TOKEN_LIFETIME).unwrap_or_default();
    Ok(Reply::json(
        200,
        &CommunicationIdentityAccessToken {
            token,
            expires_on: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    ))
}

fn teams_assignment(
    shared: &Arc<Shared>,
    tenant_id: String,
    object_id: String,
    body: &[u8],
) -> Result<Reply, Reply> {
    let req: TeamsExtensionAssignmentRequest = parse(body, false)?;
    let created = shared.update(|s| s.assignments.insert((tenant_id.clone(), object_id.clone())));
    Ok(Reply::json(
        if created { 201 } else { 200 },
        &TeamsExtensionAssignment {
            object_id,
            tenant_id,
            principal_type: req.principal_type,
        },
    ))
}

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
