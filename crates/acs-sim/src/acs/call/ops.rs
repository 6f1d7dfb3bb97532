//! The actor's call operations: invitations answered or cancelled, hold, recording, and the
//! end of the call.

#[allow(unused_imports)]
use super::*;

impl Actor {
    pub(super) async fn invite_answered(&mut self, invitation_id: &str) {
        let outcome = self.shared.update(|s| {
            let fail_set = s.failing_participants.clone();
            let c = s.call_mut(&self.id)?;
            let invite = c.invitations.remove(invitation_id)?;
            let raw = invite.participant.raw_id();
            let fail = fail_set.contains(&raw);
            if !fail {
                c.info.participants.push(CallParticipant {
                    identifier: invite.participant.clone(),
                    is_muted: Some(false),
                    is_on_hold: Some(false),
                });
            }
            Some((invite, fail))
        });
        let Some((invite, fail)) = outcome else {
            return;
        };
        let kind = if fail {
            CallbackKind::AddParticipantFailed
        } else {
            CallbackKind::AddParticipantSucceeded
        };
        let mut e = self.event(kind);
        e.participant = Some(invite.participant);
        e.invitation_id = Some(invitation_id.to_owned());
        e.operation_context = invite.operation_context;
        if fail {
            e.result_information = Some(failed_result(
                408,
                8522,
                "Call ended: the invitee did not answer.",
            ));
        }
        self.post(e, invite.callback_uri.as_deref()).await;
        if !fail {
            self.participants_updated().await;
        }
    }

    pub(super) async fn cancel_invite(
        &mut self,
        invitation_id: String,
        operation_context: Option<String>,
        callback_uri: Option<String>,
    ) {
        let cancelled = self.shared.update(|s| {
            s.call_mut(&self.id)
                .and_then(|c| c.invitations.remove(&invitation_id))
                .is_some()
        });
        let kind = if cancelled {
            CallbackKind::CancelAddParticipantSucceeded
        } else {
            CallbackKind::CancelAddParticipantFailed
        };
        let mut e = self.event(kind);
        e.invitation_id = Some(invitation_id);
        e.operation_context = operation_context;
        if !cancelled {
            e.result_information = Some(failed_result(
                400,
                8536,
                "The invitation is no longer pending.",
            ));
        }
        self.post(e, callback_uri.as_deref()).await;
    }

    /// Hold (`on_hold`) or unhold `raw_id`: `HoldFailed`, or `HoldAudioStarted` (hold with
    /// audio) / `HoldAudioCompleted` (unhold of a participant whose hold audio played) followed
    /// by `ParticipantsUpdated` with the new `isOnHold`.
    pub(super) async fn hold(
        &mut self,
        raw_id: String,
        on_hold: bool,
        with_audio: bool,
        (operation_context, callback_uri): (Option<String>, Option<String>),
        fail: bool,
    ) {
        if fail {
            let mut e = self.event(CallbackKind::HoldFailed);
            e.operation_context = operation_context;
            e.result_information = Some(failed_result(
                400,
                8523,
                "Hold failed: the participant cannot be held.",
            ));
            self.post(e, callback_uri.as_deref()).await;
            return;
        }
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                for p in &mut c.info.participants {
                    if p.identifier.raw_id() == raw_id {
                        p.is_on_hold = Some(on_hold);
                    }
                }
            }
        });
        let audio_event = if on_hold && with_audio {
            self.hold_audio.insert(raw_id);
            Some(CallbackKind::HoldAudioStarted)
        } else if !on_hold && self.hold_audio.remove(&raw_id) {
            Some(CallbackKind::HoldAudioCompleted)
        } else {
            None
        };
        if let Some(kind) = audio_event {
            let mut e = self.event(kind);
            e.operation_context = operation_context;
            self.post(e, callback_uri.as_deref()).await;
        }
        self.participants_updated().await;
    }

    pub(super) async fn recording(
        &mut self,
        recording_id: String,
        state: RecordingState,
        failed: bool,
        callback_uri: String,
    ) {
        let kind = if failed {
            CallbackKind::StartRecordingFailed
        } else {
            CallbackKind::RecordingStateChanged
        };
        let mut e = self.event(kind);
        let server_call_id = e.server_call_id.clone().unwrap_or_default();
        let source = format!("calling/recordings/{server_call_id}/recordingId/{recording_id}");
        e.source = source.clone();
        e.subject = Some(source.clone());
        e.event_source = Some(source);
        e.recording_id = Some(recording_id);
        if failed {
            e.result_information =
                Some(failed_result(500, 8590, "Recording could not be started."));
        } else {
            e.recording_state = Some(state);
            e.recording_kind = Some(RecordingKind::AzureCommunicationServices);
            e.start_date_time = e.time.clone();
            e.result_information = None;
        }
        self.post(e, Some(&callback_uri)).await;
    }

    /// Ends the call: stops the media stream (waiting for its socket to close), posts
    /// `MediaStreamingStopped` if it was streaming and `CallDisconnected` (no callbacks on
    /// shutdown), and marks the call disconnected.
    pub(super) async fn finish(&mut self, end: CallEnd, operation_context: Option<String>) {
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                c.info.state = CallConnectionState::Disconnecting;
            }
        });
        let was_up = match self.media.take() {
            Some(m) => {
                m.stop.store(true, Ordering::Release);
                let mut task = m.task;
                if tokio::time::timeout(MEDIA_STOP_TIMEOUT, &mut task)
                    .await
                    .is_err()
                {
                    task.abort();
                }
                self.media_ended(format!("stopped: call ended ({end:?})"), false);
                m.up
            }
            None => false,
        };
        if end != CallEnd::Shutdown {
            // Continuous DTMF recognition stops with the call.
            for (_, (context, url)) in std::mem::take(&mut self.dtmf) {
                let mut e = self.event(CallbackKind::ContinuousDtmfRecognitionStopped);
                e.operation_context = context;
                self.post(e, url.as_deref()).await;
            }
            if was_up {
                let mut e = self.event(CallbackKind::MediaStreamingStopped);
                e.media_streaming_update = Some(media_update(
                    MediaStreamingStatus::MediaStreamingStopped,
                    MediaStreamingStatusDetails::SubscriptionStopped,
                ));
                self.post(e, None).await;
            }
            let mut e = self.event(CallbackKind::CallDisconnected);
            e.operation_context = operation_context;
            self.post(e, None).await;
        }
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                c.info.state = CallConnectionState::Disconnected;
                c.info.ended = Some(end);
                c.invitations.clear();
            }
        });
    }
}
