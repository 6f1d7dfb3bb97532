//! Operations on established calls: get, hang up, transfer, participants (add, remove, mute, cancel
//! add, list), media streaming.

#[allow(unused_imports)]
use super::*;

/// Runs `f` on a call that has not ended (404 otherwise).
pub(super) fn with_live_call<T>(
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

pub(super) fn get_call(shared: &Arc<Shared>, id: &str) -> Result<Reply, Reply> {
    let mut s = shared.lock();
    let c = s.call_mut(id).ok_or_else(|| not_found("Call"))?;
    Ok(Reply::json(200, &properties(&c.info, None)))
}

pub(super) fn hang_up(shared: &Arc<Shared>, id: &str, end: CallEnd) -> Result<Reply, Reply> {
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

pub(super) fn transfer(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn add_participant(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn remove_participant(
    shared: &Arc<Shared>,
    id: &str,
    body: &[u8],
) -> Result<Reply, Reply> {
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

pub(super) fn mute(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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

pub(super) fn cancel_add(shared: &Arc<Shared>, id: &str, body: &[u8]) -> Result<Reply, Reply> {
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
/// [`participants_page_size`](super::super::FakeAcsConfig::participants_page_size) participants,
/// with the `nextLink` of the next page while more remain.
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

pub(super) fn get_participant(shared: &Arc<Shared>, id: &str, raw: &str) -> Result<Reply, Reply> {
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

pub(super) fn media_streaming(
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
