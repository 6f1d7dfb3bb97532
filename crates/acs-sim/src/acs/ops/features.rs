//! Hold, DTMF, recording and the Teams Phone extensibility operations (§11).

#[allow(unused_imports)]
use super::*;

/// The participant `m` names in call `c` (404 `Participant not found` otherwise).
pub(super) fn participant_in(
    c: &mut CallEntry,
    m: &CommunicationIdentifierModel,
) -> Result<String, Reply> {
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

pub(super) fn hold(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn unhold(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn send_dtmf(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn dtmf_recognition(
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

pub(super) fn start_recording(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn get_recording(shared: &Arc<Shared>, recording_id: &str) -> Result<Reply, Reply> {
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

pub(super) fn change_recording(
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

pub(super) fn exchange_token(shared: &Arc<Shared>, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn teams_assignment(
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
