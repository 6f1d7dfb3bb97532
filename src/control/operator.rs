//! The operator API (JSON; `Authorization: Bearer <control.operator_api_key>`; 404 when no key
//! is configured, 401 without the right key, counted as auth reason `bad_api_key`).
//!
//! | route | does |
//! |---|---|
//! | `GET /api/calls` | every call in the registry |
//! | `GET /api/calls/{id}` | one call (gateway id or `callConnectionId`) |
//! | `POST /api/calls/{id}/hangup` | `{"forEveryone": bool}`: terminate (true) or leave (false, default) |
//! | `POST /api/calls/{id}/participants` | add: `{"phoneNumber","sourceCallerIdNumber"}`, `{"teamsUserId"}`, `{"teamsExtensionUser":{"userId","tenantId","resourceId"?}}` or `{"rawId"}`; plus `invitationTimeoutInSeconds`, `operationContext`, `sourceDisplayName` |
//! | `DELETE /api/calls/{id}/participants/{rawId}` | remove (rawId percent-encoded) |
//! | `POST /api/calls/{id}/transfer` | `{"phoneNumber"}`, `{"teamsUserId"}` or `{"rawId"}`; `sourceCallerIdNumber`, `operationContext`, `transferee` |
//! | `POST /api/calls/{id}/recording/start` | `{"channel":"mixed"\|"unmixed","format":"wav"\|"mp3","pauseOnStart"}`, by `callConnectionId`, state callbacks to the call's callback URL |
//! | `POST /api/calls/{id}/recording/stop` | `{"recordingId"?}` (default: the call's) |
//! | `POST /api/calls/{id}/media-streaming/start` / `stop` | `{"operationContext"?}` |
//! | `GET /api/calls/{id}/connection` | the call's `CallConnectionProperties` from ACS (GET) |
//! | `GET /api/calls/{id}/participants` | the participants from ACS (GET; `nextLink` pages followed) |
//! | `POST /api/calls/{id}/participants/{rawId}/mute` | `{"operationContext"?}` |
//! | `POST /api/calls/{id}/participants/{rawId}/hold` | `{"playFileUri"?, "operationContext"?}` (music on hold from an http(s) WAV/MP3) |
//! | `POST /api/calls/{id}/participants/{rawId}/unhold` | `{"operationContext"?}` |
//! | `POST /api/calls/{id}/invitations/{invitationId}/cancel` | cancel add participant; `{"operationContext"?}` |
//! | `POST /api/calls/{id}/dtmf/send` | `{"tones":"123#","rawId"?,"operationContext"?}` (1–18 of `0-9 A-D # *`; default target the caller, PSTN only) |
//! | `POST /api/calls/{id}/dtmf/recognition/start` / `stop` | `{"rawId"?,"operationContext"?}` (default target the caller); keys arrive in the call's `dtmf` |
//! | `POST /api/calls/{id}/recording/pause` / `resume` | `{"recordingId"?}` (default: the call's) |
//! | `POST /api/calls/{id}/play`, `POST …/stop-audio`, `GET …/playbacks[/{pid}]` | operator playback ([`playback`](super::playback)) |
//! | `PUT /api/teams-extension/tenants/{tenantId}/assignments/{objectId}` | `{"principalType"?:"teamsResourceAccount"}`: let the ACS resource take calls for a Teams resource account → `{"acsStatus","result"}` |
//! | `POST /api/agents/token` | `{"token","appId","userId"}` → ACS token (Teams user token exchange, §11) |
//! | `GET /api/resource-accounts[?appId=]` | Microsoft Graph resource accounts (token from config or `X-Graph-Token`) |
//!
//! Bad requests → 400 naming the field; unknown call → 404; a call without a `callConnectionId`
//! yet, or one that ended → 409; ACS not configured → 503; ACS errors → 502 with the ACS status
//! and code; ACS timeouts → 504. Successful operations answer 200
//! `{"callId","callConnectionId","operation","acsStatus","result"}`.

use super::http::{bearer, header_str, read_body, secret_eq};
use super::plane::ControlPlane;
use super::registry::{now_ms, rfc3339, CallRecord};
use super::{error_response, json_response, HttpResponse};
use crate::protocol::identifier::{
    CommunicationIdentifier, CommunicationIdentifierModel, IdentifierKind,
    PhoneNumberIdentifierModel,
};
use crate::protocol::rest::{
    decode_segment, AddParticipantRequest, CancelAddParticipantRequest,
    ContinuousDtmfRecognitionRequest, DtmfTone, HoldRequest, MuteParticipantsRequest, PlaySource,
    RecordingChannelType, RecordingContentType, RecordingFormatType, RemoveParticipantRequest,
    SendDtmfTonesRequest, StartCallRecordingRequest, StartMediaStreamingRequest,
    StopMediaStreamingRequest, TeamsExtensionAssignmentRequest, TeamsExtensionPrincipalType,
    TeamsUserExchangeTokenRequest, TransferToParticipantRequest, UnholdRequest, MAX_DTMF_TONES,
};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::Instrument;

const EP: &str = "operator";
use super::api::{e164, object_id, raw_id, ApiError, Body, Res};
pub(crate) use super::http::MAX_OPERATOR_BODY;
/// Request header carrying a Microsoft Graph token.
pub(crate) const HEADER_GRAPH_TOKEN: &str = "x-graph-token";

/// Serves the operator routes.
pub(crate) async fn handle<B>(cp: &Arc<ControlPlane>, req: Request<B>) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(key) = &cp.operator_api_key else {
        return error_response(
            StatusCode::NOT_FOUND,
            "operator API disabled (set control.operator_api_key)",
        );
    };
    match bearer(req.headers()) {
        Ok(Some(k)) if secret_eq(k.as_bytes(), key.as_bytes()) => {}
        _ => {
            cp.metrics.control.auth_rejected("bad_api_key");
            let r = error_response(
                StatusCode::UNAUTHORIZED,
                "operator API: Authorization: Bearer <control.operator_api_key> required",
            );
            return super::http::with_header(r, "www-authenticate", "Bearer");
        }
    }
    // an operation on a call runs in the call's span (both ids on every line it logs)
    let span = super::trace::operator_span(cp, req.uri().path());
    operate(cp, req).instrument(span).await
}

/// Serves one authorised operator request.
async fn operate<B>(cp: &Arc<ControlPlane>, req: Request<B>) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let req = match super::playback::route(cp, req).await {
        Ok(answered) => return answered,
        Err(req) => req,
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if let Err(e) = cp.refresh_for_path(&path).await {
        return cp.nats_unreachable(EP, &e);
    }
    let query = req.uri().query().map(str::to_owned);
    let graph_token = header_str(req.headers(), HEADER_GRAPH_TOKEN).map(str::to_owned);
    let body = if method == Method::POST || method == Method::PUT {
        match read_body(req.into_body(), MAX_OPERATOR_BODY.min(cp.max_body_bytes)).await {
            Ok(b) => b,
            Err(e) => {
                cp.metrics.control.bad_request(EP, e.reason());
                return e.response();
            }
        }
    } else {
        bytes::Bytes::new()
    };
    let segs: Vec<&str> = path
        .trim_start_matches("/api/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let res = route(
        cp,
        &method,
        &segs,
        &body,
        query.as_deref(),
        graph_token.as_deref(),
    )
    .await;
    match res {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.response(cp),
    }
}

async fn route(
    cp: &Arc<ControlPlane>,
    method: &Method,
    segs: &[&str],
    body: &[u8],
    query: Option<&str>,
    graph_token: Option<&str>,
) -> Res<Value> {
    let m = method.clone();
    match (m, segs) {
        (Method::GET, ["calls"]) => Ok(json!({"calls": cp.registry.list(now_ms())})),
        (Method::GET, ["calls", id]) => Ok(json!(find(cp, id)?)),
        (Method::POST, ["calls", id, "hangup"]) => hangup(cp, id, &Body::parse(body)?).await,
        (Method::POST, ["calls", id, "participants"]) => {
            add_participant(cp, id, &Body::parse(body)?).await
        }
        (Method::DELETE, ["calls", id, "participants", raw]) => {
            remove_participant(cp, id, raw).await
        }
        (Method::POST, ["calls", id, "transfer"]) => transfer(cp, id, &Body::parse(body)?).await,
        (Method::POST, ["calls", id, "recording", "start"]) => {
            start_recording(cp, id, &Body::parse(body)?).await
        }
        (Method::POST, ["calls", id, "recording", "stop"]) => {
            stop_recording(cp, id, &Body::parse(body)?).await
        }
        (Method::POST, ["calls", id, "media-streaming", action @ ("start" | "stop")]) => {
            media_streaming(cp, id, action == &"start", &Body::parse(body)?).await
        }
        (Method::GET, ["calls", id, "connection"]) => get_connection(cp, id).await,
        (Method::GET, ["calls", id, "participants"]) => list_participants(cp, id).await,
        (
            Method::POST,
            ["calls", id, "participants", raw, action @ ("mute" | "hold" | "unhold")],
        ) => participant_action(cp, id, raw, action, &Body::parse(body)?).await,
        (Method::POST, ["calls", id, "invitations", invitation, "cancel"]) => {
            cancel_invitation(cp, id, invitation, &Body::parse(body)?).await
        }
        (Method::POST, ["calls", id, "dtmf", "send"]) => {
            send_dtmf(cp, id, &Body::parse(body)?).await
        }
        (Method::POST, ["calls", id, "dtmf", "recognition", action @ ("start" | "stop")]) => {
            dtmf_recognition(cp, id, action == &"start", &Body::parse(body)?).await
        }
        (Method::POST, ["calls", id, "recording", action @ ("pause" | "resume")]) => {
            pause_recording(cp, id, action == &"pause", &Body::parse(body)?).await
        }
        (Method::PUT, ["teams-extension", "tenants", tenant, "assignments", object]) => {
            teams_assignment(cp, tenant, object, &Body::parse(body)?).await
        }
        (Method::POST, ["agents", "token"]) => agent_token(cp, &Body::parse(body)?).await,
        (Method::GET, ["resource-accounts"]) => {
            super::graph::resource_accounts_route(cp, query, graph_token).await
        }
        (_, ["calls"] | ["calls", _] | ["agents", "token"] | ["resource-accounts"])
        | (_, ["calls", _, "hangup" | "participants" | "transfer"])
        | (_, ["calls", _, "participants", _])
        | (_, ["calls", _, "connection"])
        | (_, ["calls", _, "participants", _, "mute" | "hold" | "unhold"])
        | (_, ["calls", _, "invitations", _, "cancel"])
        | (_, ["calls", _, "dtmf", "send"])
        | (_, ["calls", _, "dtmf", "recognition", "start" | "stop"])
        | (_, ["teams-extension", "tenants", _, "assignments", _])
        | (
            _,
            ["calls", _, "recording", "start" | "stop" | "pause" | "resume"]
            | ["calls", _, "media-streaming", "start" | "stop"],
        ) => Err(ApiError::status(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
            "method_not_allowed",
        )),
        _ => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no operator route /api/{}", segs.join("/")),
            "not_found",
        )),
    }
}

fn find(cp: &ControlPlane, id: &str) -> Res<CallRecord> {
    cp.registry.get(id).ok_or_else(|| {
        ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no call {id}"),
            "unknown_call",
        )
    })
}

/// A call that is live and has a `callConnectionId`: `(record, callConnectionId)`.
fn live(cp: &ControlPlane, id: &str) -> Res<(CallRecord, String)> {
    let r = find(cp, id)?;
    if r.state.is_terminal() {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            format!("call {} has ended ({:?})", r.id, r.state),
            "call_ended",
        ));
    }
    let conn = r.call_connection_id.clone().ok_or_else(|| {
        ApiError::status(
            StatusCode::CONFLICT,
            format!("call {} has no callConnectionId yet (not answered)", r.id),
            "not_answered",
        )
    })?;
    Ok((r, conn))
}

fn acs(cp: &ControlPlane) -> Res<Arc<dyn super::acs_client::AcsApi>> {
    cp.acs.clone().ok_or_else(|| {
        ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ACS not configured (set acs.connection_string)",
            "not_configured",
        )
    })
}

fn done(r: &CallRecord, conn: &str, operation: &str, status: u16, result: Value) -> Value {
    json!({
        "callId": r.id,
        "callConnectionId": conn,
        "operation": operation,
        "acsStatus": status,
        "result": result,
    })
}

async fn hangup(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let for_everyone = b.bool("forEveryone")?.unwrap_or(false);
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let status = acs.hang_up(&conn, for_everyone).await?;
    tracing::info!(call = %r.id, for_everyone, "operator: hang up");
    let op = if for_everyone {
        "terminate_call"
    } else {
        "hang_up_call"
    };
    Ok(done(&r, &conn, op, status, json!({})))
}

/// `sourceCallerIdNumber` as the wire model.
fn caller_id(b: &Body) -> Res<Option<PhoneNumberIdentifierModel>> {
    Ok(match b.str("sourceCallerIdNumber")? {
        Some(n) => Some(PhoneNumberIdentifierModel::new(e164(
            "sourceCallerIdNumber",
            &n,
        )?)),
        None => None,
    })
}

/// The target of add / transfer: exactly one of the accepted shapes.
fn target(cp: &ControlPlane, b: &Body, allow_extension: bool) -> Res<CommunicationIdentifier> {
    let mut given: Vec<&str> = ["phoneNumber", "teamsUserId", "teamsExtensionUser", "rawId"]
        .into_iter()
        .filter(|f| b.0.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    if !allow_extension {
        given.retain(|f| *f != "teamsExtensionUser");
        if b.0.contains_key("teamsExtensionUser") {
            return Err(ApiError::field(
                "teamsExtensionUser",
                "is not accepted here",
            ));
        }
    }
    let shapes = if allow_extension {
        "phoneNumber, teamsUserId, teamsExtensionUser or rawId"
    } else {
        "phoneNumber, teamsUserId or rawId"
    };
    match given.as_slice() {
        [] => Err(ApiError::field(
            "participant",
            format!("one of {shapes} is required"),
        )),
        [one] => match *one {
            "phoneNumber" => Ok(CommunicationIdentifier::phone_number(e164(
                "phoneNumber",
                &b.required("phoneNumber")?,
            )?)),
            "teamsUserId" => Ok(CommunicationIdentifier::teams_user(object_id(
                "teamsUserId",
                &b.required("teamsUserId")?,
            )?)),
            "rawId" => raw_id("rawId", &b.required("rawId")?),
            _ => {
                let x = b
                    .obj("teamsExtensionUser")?
                    .ok_or_else(|| ApiError::field("teamsExtensionUser", "is required"))?;
                let user = object_id(
                    "teamsExtensionUser.userId",
                    &x.str("userId")?.ok_or_else(|| {
                        ApiError::field("teamsExtensionUser.userId", "is required")
                    })?,
                )?;
                let tenant = object_id(
                    "teamsExtensionUser.tenantId",
                    &x.str("tenantId")?.ok_or_else(|| {
                        ApiError::field("teamsExtensionUser.tenantId", "is required")
                    })?,
                )?;
                let resource = match x.str("resourceId")? {
                    Some(r) => object_id("teamsExtensionUser.resourceId", &r)?,
                    None => cp.resource_id.clone().ok_or_else(|| {
                        ApiError::field(
                            "teamsExtensionUser.resourceId",
                            "is required (or set acs.resource_id)",
                        )
                    })?,
                };
                Ok(CommunicationIdentifier::teams_extension_user(
                    user, tenant, resource,
                ))
            }
        },
        many => Err(ApiError::field(
            many[1],
            format!("give only one of {shapes} (also got {})", many[0]),
        )),
    }
}

async fn add_participant(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let who = target(cp, b, true)?;
    let source_caller_id_number = caller_id(b)?;
    if who.kind() == IdentifierKind::PhoneNumber && source_caller_id_number.is_none() {
        return Err(ApiError::field(
            "sourceCallerIdNumber",
            "is required to add a phone number",
        ));
    }
    let req = AddParticipantRequest {
        source_caller_id_number,
        source_display_name: b.str("sourceDisplayName")?,
        invitation_timeout_in_seconds: b
            .int("invitationTimeoutInSeconds", 0, 180)?
            .map(|v| v as i32),
        operation_context: b.str("operationContext")?,
        ..AddParticipantRequest::new(&who)
    };
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let resp = acs.add_participant(&conn, &req).await?;
    tracing::info!(call = %r.id, participant = %who.raw_id(), "operator: add participant");
    Ok(done(&r, &conn, "add_participant", 202, json!(resp)))
}

async fn remove_participant(cp: &Arc<ControlPlane>, id: &str, raw: &str) -> Res<Value> {
    let raw = decode_segment(raw)
        .ok_or_else(|| ApiError::field("rawId", "is not a valid percent-encoded rawId"))?;
    let who = raw_id("rawId", &raw)?;
    let req = RemoveParticipantRequest {
        participant_to_remove: CommunicationIdentifierModel::from(&who),
        operation_context: None,
        operation_callback_uri: None,
    };
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let resp = acs.remove_participant(&conn, &req).await?;
    tracing::info!(call = %r.id, participant = %raw, "operator: remove participant");
    Ok(done(&r, &conn, "remove_participant", 202, resp))
}

async fn transfer(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let to = target(cp, b, false)?;
    let transferee = match b.str("transferee")? {
        Some(t) => Some(CommunicationIdentifierModel::from(&raw_id(
            "transferee",
            &t,
        )?)),
        None => None,
    };
    let req = TransferToParticipantRequest {
        target_participant: CommunicationIdentifierModel::from(&to),
        operation_context: b.str("operationContext")?,
        transferee,
        operation_callback_uri: None,
        custom_calling_context: None,
        source_caller_id_number: caller_id(b)?,
    };
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let resp = acs.transfer(&conn, &req).await?;
    tracing::info!(call = %r.id, target = %to.raw_id(), "operator: transfer");
    Ok(done(&r, &conn, "transfer_to_participant", 202, resp))
}

async fn start_recording(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let channel = match b.str("channel")?.as_deref() {
        None | Some("mixed") => RecordingChannelType::Mixed,
        Some("unmixed") => RecordingChannelType::Unmixed,
        Some(_) => {
            return Err(ApiError::field(
                "channel",
                "must be \"mixed\" or \"unmixed\"",
            ))
        }
    };
    let format = match b.str("format")?.as_deref() {
        None | Some("wav") => RecordingFormatType::Wav,
        Some("mp3") => RecordingFormatType::Mp3,
        Some(_) => return Err(ApiError::field("format", "must be \"wav\" or \"mp3\"")),
    };
    match b.str("content")?.as_deref() {
        None | Some("audio") => {}
        Some(_) => return Err(ApiError::field("content", "must be \"audio\"")),
    }
    let pause_on_start = b.bool("pauseOnStart")?;
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let req = StartCallRecordingRequest {
        call_connection_id: Some(conn.clone()),
        recording_state_callback_uri: Some(cp.urls.callback_uri(&r.token)),
        recording_content_type: Some(RecordingContentType::Audio),
        recording_channel_type: Some(channel),
        recording_format_type: Some(format),
        pause_on_start,
        ..Default::default()
    };
    let resp = acs.start_recording(&req).await?;
    let now = now_ms();
    cp.commit(&r.id, |reg, id| {
        reg.update(id, now, |rec| {
            // RecordingStateChanged may have arrived before this response: keep its newer state.
            let known = rec.recording.id.as_deref() == Some(resp.recording_id.as_str())
                && rec.recording.state.is_some();
            rec.recording.id = Some(resp.recording_id.clone());
            if !known {
                rec.recording.state = resp.recording_state.as_ref().map(|s| s.as_str().to_owned());
                rec.recording.kind = resp.recording_kind.as_ref().map(|s| s.as_str().to_owned());
            }
            rec.recording.updated_at = Some(rfc3339(now));
        })
    })
    .await;
    tracing::info!(call = %r.id, recording = %resp.recording_id, "operator: start recording");
    Ok(done(&r, &conn, "start_recording", 200, json!(resp)))
}

async fn stop_recording(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let given = b.str("recordingId")?;
    let acs = acs(cp)?;
    let r = find(cp, id)?;
    let recording = given.or(r.recording.id.clone()).ok_or_else(|| {
        ApiError::status(
            StatusCode::CONFLICT,
            format!("call {} has no recording (give recordingId)", r.id),
            "no_recording",
        )
    })?;
    let status = acs.stop_recording(&recording).await?;
    tracing::info!(call = %r.id, %recording, "operator: stop recording");
    let conn = r.call_connection_id.clone().unwrap_or_default();
    Ok(done(
        &r,
        &conn,
        "stop_recording",
        status,
        json!({"recordingId": recording}),
    ))
}

async fn media_streaming(cp: &Arc<ControlPlane>, id: &str, start: bool, b: &Body) -> Res<Value> {
    let operation_context = b.str("operationContext")?;
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let (op, status) = if start {
        let req = StartMediaStreamingRequest {
            operation_callback_uri: None,
            operation_context,
        };
        (
            "start_media_streaming",
            acs.start_media_streaming(&conn, &req).await?,
        )
    } else {
        let req = StopMediaStreamingRequest {
            operation_callback_uri: None,
            operation_context,
        };
        (
            "stop_media_streaming",
            acs.stop_media_streaming(&conn, &req).await?,
        )
    };
    tracing::info!(call = %r.id, operation = op, "operator: media streaming");
    Ok(done(&r, &conn, op, status, json!({})))
}

async fn get_connection(cp: &Arc<ControlPlane>, id: &str) -> Res<Value> {
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let props = acs.get_call(&conn).await?;
    Ok(done(&r, &conn, "get_call", 200, json!(props)))
}

async fn list_participants(cp: &Arc<ControlPlane>, id: &str) -> Res<Value> {
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let list = acs.get_participants(&conn).await?;
    let value: Vec<Value> = list
        .value
        .iter()
        .map(|p| {
            let mut v = json!(p);
            v["rawId"] = json!(p.identifier.raw_id());
            v
        })
        .collect();
    let mut result = json!({ "value": value });
    if let Some(next) = &list.next_link {
        result["nextLink"] = json!(next);
    }
    Ok(done(&r, &conn, "get_participants", 200, result))
}

/// A percent-encoded rawId path segment.
fn path_raw_id(raw: &str) -> Res<CommunicationIdentifier> {
    let raw = decode_segment(raw)
        .ok_or_else(|| ApiError::field("rawId", "is not a valid percent-encoded rawId"))?;
    raw_id("rawId", &raw)
}

/// `participants/{rawId}/mute|hold|unhold`.
async fn participant_action(
    cp: &Arc<ControlPlane>,
    id: &str,
    raw: &str,
    action: &str,
    b: &Body,
) -> Res<Value> {
    let who = CommunicationIdentifierModel::from(&path_raw_id(raw)?);
    let operation_context = b.str("operationContext")?;
    let play_source_info = match b.str("playFileUri")? {
        Some(_) if action != "hold" => {
            return Err(ApiError::field("playFileUri", "is only accepted by hold"))
        }
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            return Err(ApiError::field("playFileUri", "must be an http(s):// URL"))
        }
        Some(u) => Some(PlaySource::file(u)),
        None => None,
    };
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let (op, status, result) = match action {
        "mute" => {
            let req = MuteParticipantsRequest {
                target_participants: vec![who],
                operation_context,
            };
            let resp = acs.mute_participants(&conn, &req).await?;
            ("mute_participants", 200, json!(resp))
        }
        "hold" => {
            let req = HoldRequest {
                target_participant: who,
                play_source_info,
                operation_context,
                operation_callback_uri: None,
            };
            ("hold", acs.hold(&conn, &req).await?, json!({}))
        }
        _ => {
            let req = UnholdRequest {
                target_participant: who,
                operation_context,
                operation_callback_uri: None,
            };
            ("unhold", acs.unhold(&conn, &req).await?, json!({}))
        }
    };
    tracing::info!(call = %r.id, operation = op, "operator: participant action");
    Ok(done(&r, &conn, op, status, result))
}

async fn cancel_invitation(
    cp: &Arc<ControlPlane>,
    id: &str,
    invitation: &str,
    b: &Body,
) -> Res<Value> {
    let invitation_id = decode_segment(invitation)
        .filter(|i| i.len() <= 128)
        .ok_or_else(|| ApiError::field("invitationId", "is not a valid invitation id"))?;
    let req = CancelAddParticipantRequest {
        invitation_id,
        operation_context: b.str("operationContext")?,
        operation_callback_uri: None,
    };
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let resp = acs.cancel_add_participant(&conn, &req).await?;
    tracing::info!(call = %r.id, invitation = %req.invitation_id, "operator: cancel add participant");
    Ok(done(&r, &conn, "cancel_add_participant", 202, json!(resp)))
}

/// The DTMF target: `rawId` from the body, else the caller.
fn dtmf_target(b: &Body, r: &CallRecord) -> Res<CommunicationIdentifierModel> {
    let who = match b.str("rawId")? {
        Some(raw) => raw_id("rawId", &raw)?,
        None => raw_id("rawId", &r.from).map_err(|_| {
            ApiError::field("rawId", "is required: the caller's rawId is not usable")
        })?,
    };
    Ok(CommunicationIdentifierModel::from(&who))
}

async fn send_dtmf(cp: &Arc<ControlPlane>, id: &str, b: &Body) -> Res<Value> {
    let keys = b.required("tones")?;
    let tones = keys
        .chars()
        .map(DtmfTone::from_key)
        .collect::<Option<Vec<DtmfTone>>>()
        .filter(|t| (1..=MAX_DTMF_TONES).contains(&t.len()))
        .ok_or_else(|| ApiError::field("tones", "must be 1 to 18 of 0-9, A-D, # and *"))?;
    let operation_context = b.str("operationContext")?;
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let target_participant = dtmf_target(b, &r)?;
    if target_participant.phone_number.is_none() {
        return Err(ApiError::field(
            "rawId",
            "DTMF tones can only be sent to a phone number (4:+E164)",
        ));
    }
    let req = SendDtmfTonesRequest {
        tones,
        target_participant,
        operation_context,
        operation_callback_uri: None,
    };
    let resp = acs.send_dtmf_tones(&conn, &req).await?;
    tracing::info!(call = %r.id, tones = req.tones.len(), "operator: send DTMF");
    Ok(done(&r, &conn, "send_dtmf_tones", 202, json!(resp)))
}

async fn dtmf_recognition(cp: &Arc<ControlPlane>, id: &str, start: bool, b: &Body) -> Res<Value> {
    let operation_context = b.str("operationContext")?;
    let acs = acs(cp)?;
    let (r, conn) = live(cp, id)?;
    let req = ContinuousDtmfRecognitionRequest {
        target_participant: dtmf_target(b, &r)?,
        operation_context,
        operation_callback_uri: None,
    };
    let status = acs.continuous_dtmf_recognition(&conn, start, &req).await?;
    if start {
        let now = now_ms();
        cp.commit(&r.id, |reg, id| {
            reg.update(id, now, |rec| {
                rec.dtmf.recognition = Some("active".into());
                rec.dtmf.updated_at = Some(rfc3339(now));
            })
        })
        .await;
    }
    let op = if start {
        "start_continuous_dtmf_recognition"
    } else {
        "stop_continuous_dtmf_recognition"
    };
    tracing::info!(call = %r.id, operation = op, "operator: continuous DTMF recognition");
    Ok(done(&r, &conn, op, status, json!({})))
}

async fn pause_recording(cp: &Arc<ControlPlane>, id: &str, pause: bool, b: &Body) -> Res<Value> {
    let given = b.str("recordingId")?;
    let acs = acs(cp)?;
    let r = find(cp, id)?;
    let recording = given.or(r.recording.id.clone()).ok_or_else(|| {
        ApiError::status(
            StatusCode::CONFLICT,
            format!("call {} has no recording (give recordingId)", r.id),
            "no_recording",
        )
    })?;
    let status = acs.pause_or_resume_recording(&recording, pause).await?;
    let op = if pause {
        "pause_recording"
    } else {
        "resume_recording"
    };
    tracing::info!(call = %r.id, %recording, operation = op, "operator: recording");
    let conn = r.call_connection_id.clone().unwrap_or_default();
    Ok(done(
        &r,
        &conn,
        op,
        status,
        json!({"recordingId": recording}),
    ))
}

async fn teams_assignment(
    cp: &Arc<ControlPlane>,
    tenant: &str,
    object: &str,
    b: &Body,
) -> Res<Value> {
    let tenant = object_id("tenantId", &decode_segment(tenant).unwrap_or_default())?;
    let object = object_id("objectId", &decode_segment(object).unwrap_or_default())?;
    for (f, v) in [("tenantId", &tenant), ("objectId", &object)] {
        if v.is_empty() {
            return Err(ApiError::field(f, "must not be empty"));
        }
    }
    let principal_type = match b.str("principalType")?.as_deref() {
        None | Some("teamsResourceAccount") => TeamsExtensionPrincipalType::TeamsResourceAccount,
        Some(_) => {
            return Err(ApiError::field(
                "principalType",
                "must be \"teamsResourceAccount\"",
            ))
        }
    };
    let acs = acs(cp)?;
    let (status, a) = acs
        .put_teams_extension_assignment(
            &tenant,
            &object,
            &TeamsExtensionAssignmentRequest { principal_type },
        )
        .await?;
    tracing::info!(%tenant, %object, status, "operator: Teams extension assignment");
    Ok(json!({"operation": "put_teams_extension_assignment", "acsStatus": status, "result": a}))
}

async fn agent_token(cp: &Arc<ControlPlane>, b: &Body) -> Res<Value> {
    let req = TeamsUserExchangeTokenRequest {
        token: b.required("token")?,
        app_id: object_id("appId", &b.required("appId")?)?,
        user_id: object_id("userId", &b.required("userId")?)?,
    };
    let acs = acs(cp)?;
    let t = acs.exchange_teams_user_token(&req).await?;
    tracing::info!(user = %req.user_id, "operator: Teams user token exchanged");
    Ok(json!(t))
}

#[cfg(test)]
#[path = "operator_tests.rs"]
mod tests;
