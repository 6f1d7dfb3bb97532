//! Request bodies of the Call Automation operations.

#[allow(unused_imports)]
use super::*;

/// `POST /calling/callConnections:answer` (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerCallRequest {
    /// From the IncomingCall event (required).
    pub incoming_call_context: String,
    /// Where ACS posts callback events (required).
    pub callback_uri: String,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Media streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_options: Option<MediaStreamingOptions>,
    /// Transcription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_options: Option<TranscriptionOptions>,
    /// AI services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_intelligence_options: Option<CallIntelligenceOptions>,
    /// The ACS user that answers (`{"id"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<CommunicationUserIdentifierModel>,
    /// Preview (2025-08-15): loop the bot's audio back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_loopback_audio: Option<bool>,
}

impl AnswerCallRequest {
    /// The minimal request: context and callback URI.
    pub fn new(incoming_call_context: impl Into<String>, callback_uri: impl Into<String>) -> Self {
        AnswerCallRequest {
            incoming_call_context: incoming_call_context.into(),
            callback_uri: callback_uri.into(),
            operation_context: None,
            media_streaming_options: None,
            transcription_options: None,
            call_intelligence_options: None,
            answered_by: None,
            enable_loopback_audio: None,
        }
    }

    /// What a fake ACS checks: non-empty context, `http(s)://` callback URI, and for media
    /// streaming a `ws(s)://` transport URL.
    pub fn validate(&self) -> Result<(), RequestError> {
        non_empty("incomingCallContext", &self.incoming_call_context)?;
        http_url("callbackUri", &self.callback_uri)?;
        if let Some(m) = &self.media_streaming_options {
            m.validate()?;
        }
        Ok(())
    }
}

impl MediaStreamingOptions {
    /// `transportUrl` present and `ws(s)://`.
    pub fn validate(&self) -> Result<(), RequestError> {
        match &self.transport_url {
            None => Err(RequestError::invalid(
                "mediaStreamingOptions.transportUrl",
                "is required",
            )),
            Some(u) if !(has_scheme(u, "wss://") || has_scheme(u, "ws://")) => Err(
                RequestError::invalid("mediaStreamingOptions.transportUrl", "must be ws(s)://"),
            ),
            Some(_) => Ok(()),
        }
    }
}

/// `POST /calling/callConnections` (§4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCallRequest {
    /// Who to call (required).
    pub targets: Vec<CommunicationIdentifierModel>,
    /// Where ACS posts callback events (required).
    pub callback_uri: String,
    /// Caller id for PSTN targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_caller_id_number: Option<PhoneNumberIdentifierModel>,
    /// Display name for the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_display_name: Option<String>,
    /// The calling ACS user (`{"id"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CommunicationUserIdentifierModel>,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// AI services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_intelligence_options: Option<CallIntelligenceOptions>,
    /// Media streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_options: Option<MediaStreamingOptions>,
    /// Transcription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_options: Option<TranscriptionOptions>,
    /// Teams Phone extensibility outbound: the resource account (`{"appId"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_app_source: Option<MicrosoftTeamsAppIdentifierModel>,
    /// Preview: loop the bot's audio back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_loopback_audio: Option<bool>,
}

/// `POST /calling/callConnections:reject` (§4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectCallRequest {
    /// From the IncomingCall event (required).
    pub incoming_call_context: String,
    /// `none`, `busy` or `forbidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_reject_reason: Option<CallRejectReason>,
}

impl RejectCallRequest {
    /// Non-empty context.
    pub fn validate(&self) -> Result<(), RequestError> {
        non_empty("incomingCallContext", &self.incoming_call_context)
    }
}

/// `POST /calling/callConnections:redirect` (§4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectCallRequest {
    /// From the IncomingCall event (required).
    pub incoming_call_context: String,
    /// Where to redirect (required).
    pub target: CommunicationIdentifierModel,
}

impl RedirectCallRequest {
    /// Non-empty context and a valid target.
    pub fn validate(&self) -> Result<(), RequestError> {
        non_empty("incomingCallContext", &self.incoming_call_context)?;
        identifier("target", &self.target)
    }
}

/// `POST …/{callConnectionId}/participants:add` (§4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddParticipantRequest {
    /// Who to add (required): a phone number for PSTN, a `teamsExtensionUser` for a TPE agent.
    pub participant_to_add: CommunicationIdentifierModel,
    /// Caller id shown to a PSTN invitee (required for PSTN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_caller_id_number: Option<PhoneNumberIdentifierModel>,
    /// Display name shown to the invitee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_display_name: Option<String>,
    /// Ring timeout, 0–180 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_timeout_in_seconds: Option<i32>,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events (overrides the call's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
    /// Custom SIP/VoIP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_calling_context: Option<CustomCallingContext>,
}

impl AddParticipantRequest {
    /// `{"participantToAdd": …}` for `participant`.
    pub fn new(participant: &CommunicationIdentifier) -> Self {
        AddParticipantRequest {
            participant_to_add: participant.into(),
            source_caller_id_number: None,
            source_display_name: None,
            invitation_timeout_in_seconds: None,
            operation_context: None,
            operation_callback_uri: None,
            custom_calling_context: None,
        }
    }

    /// A valid participant; timeout in 0–180.
    pub fn validate(&self) -> Result<(), RequestError> {
        identifier("participantToAdd", &self.participant_to_add)?;
        if let Some(t) = self.invitation_timeout_in_seconds {
            if !(0..=180).contains(&t) {
                return Err(RequestError::invalid(
                    "invitationTimeoutInSeconds",
                    "must be 0 to 180",
                ));
            }
        }
        Ok(())
    }
}

/// `POST …/{callConnectionId}/participants:remove` (§4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveParticipantRequest {
    /// Who to remove (required).
    pub participant_to_remove: CommunicationIdentifierModel,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

/// `POST …/{callConnectionId}:transferToParticipant` (§4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferToParticipantRequest {
    /// Transfer target (required).
    pub target_participant: CommunicationIdentifierModel,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Who is transferred away (group calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferee: Option<CommunicationIdentifierModel>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
    /// Custom SIP/VoIP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_calling_context: Option<CustomCallingContext>,
    /// Transferor caller id for a PSTN target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_caller_id_number: Option<PhoneNumberIdentifierModel>,
}

/// `POST …/{callConnectionId}/participants:mute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteParticipantsRequest {
    /// Who to mute (ACS users only; required).
    pub target_participants: Vec<CommunicationIdentifierModel>,
    /// Echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// `POST …/{callConnectionId}/participants:cancelAddParticipant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAddParticipantRequest {
    /// From [`AddParticipantResponse::invitation_id`] (required).
    pub invitation_id: String,
    /// Echoed in callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

/// Most tones one `sendDtmfTones` request may carry ("a maximum of 18 tones at a time", the
/// Call Automation mid-call media actions how-to).
pub const MAX_DTMF_TONES: usize = 18;

/// `POST …/{callConnectionId}:sendDtmfTones` (→ 202 [`OperationContextResponse`]; then
/// `SendDtmfTonesCompleted` or `SendDtmfTonesFailed`). PSTN participants only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendDtmfTonesRequest {
    /// The tones, in order (required, 1 to [`MAX_DTMF_TONES`]).
    pub tones: Vec<DtmfTone>,
    /// Who hears them (required).
    pub target_participant: CommunicationIdentifierModel,
    /// Echoed in the response and the callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

impl SendDtmfTonesRequest {
    /// 1 to [`MAX_DTMF_TONES`] known tones and a valid target.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.tones.is_empty() || self.tones.len() > MAX_DTMF_TONES {
            return Err(RequestError::invalid("tones", "must hold 1 to 18 tones"));
        }
        if self.tones.iter().any(|t| matches!(t, DtmfTone::Other(_))) {
            return Err(RequestError::invalid("tones", "has an unknown tone"));
        }
        identifier("targetParticipant", &self.target_participant)
    }
}

/// `POST …/{callConnectionId}:startContinuousDtmfRecognition` and
/// `…:stopContinuousDtmfRecognition` (→ 200, no body). While it runs, every key the target
/// presses arrives as `ContinuousDtmfRecognitionToneReceived` (`tone`, `sequenceId`); stopping
/// posts `ContinuousDtmfRecognitionStopped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinuousDtmfRecognitionRequest {
    /// Whose keys to listen to (required).
    pub target_participant: CommunicationIdentifierModel,
    /// Echoed in the callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

/// `file` of a [`PlaySource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSource {
    /// URL of the audio file (wav, mp3).
    pub uri: String,
}

/// `text` of a [`PlaySource`] (text to speech).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextSource {
    /// The text (required).
    pub text: String,
    /// e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_locale: Option<String>,
    /// `male` / `female`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_kind: Option<String>,
    /// A neural voice name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_name: Option<String>,
    /// Custom voice endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_voice_endpoint_id: Option<String>,
}

/// `ssml` of a [`PlaySource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SsmlSource {
    /// The SSML document (required).
    pub ssml_text: String,
    /// Custom voice endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_voice_endpoint_id: Option<String>,
}

/// A play source (`playSourceInfo` of [`HoldRequest`], `playSources[]` of play): `kind` and the
/// matching member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaySource {
    /// `file`, `text` or `ssml` (required).
    pub kind: PlaySourceKind,
    /// Cache id of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_source_cache_id: Option<String>,
    /// For `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSource>,
    /// For `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSource>,
    /// For `ssml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssml: Option<SsmlSource>,
}

impl PlaySource {
    /// `{"kind":"file","file":{"uri":…}}`.
    pub fn file(uri: impl Into<String>) -> Self {
        PlaySource {
            kind: PlaySourceKind::File,
            play_source_cache_id: None,
            file: Some(FileSource { uri: uri.into() }),
            text: None,
            ssml: None,
        }
    }

    /// The member `kind` names is present (a `file` URI is `http(s)://`).
    pub fn validate(&self, field: &'static str) -> Result<(), RequestError> {
        let ok = match &self.kind {
            PlaySourceKind::File => match &self.file {
                Some(f) => {
                    http_url(field, &f.uri)?;
                    true
                }
                None => false,
            },
            PlaySourceKind::Text => self.text.as_ref().is_some_and(|t| !t.text.is_empty()),
            PlaySourceKind::Ssml => self.ssml.as_ref().is_some_and(|t| !t.ssml_text.is_empty()),
            PlaySourceKind::Other(_) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(RequestError::invalid(
                field,
                "needs the member its kind names (file.uri, text.text or ssml.ssmlText)",
            ))
        }
    }
}

/// `POST …/{callConnectionId}:hold` (→ 200, no body): put a participant on hold, optionally
/// playing `playSourceInfo` to them. Failure arrives as `HoldFailed`; hold audio as
/// `HoldAudioStarted` … `HoldAudioCompleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    /// Who to hold (required).
    pub target_participant: CommunicationIdentifierModel,
    /// What they hear meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_source_info: Option<PlaySource>,
    /// Echoed in the callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

impl HoldRequest {
    /// A valid target and, if given, a complete play source.
    pub fn validate(&self) -> Result<(), RequestError> {
        identifier("targetParticipant", &self.target_participant)?;
        match &self.play_source_info {
            Some(p) => p.validate("playSourceInfo"),
            None => Ok(()),
        }
    }
}

/// `POST …/{callConnectionId}:unhold` (→ 200, no body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnholdRequest {
    /// Who to take off hold (required).
    pub target_participant: CommunicationIdentifierModel,
    /// Echoed in the callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
}

/// `POST …/{callConnectionId}:startMediaStreaming` body (the examples send `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMediaStreamingRequest {
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
    /// Echoed in `MediaStreamingStarted` / `MediaStreamingFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// `POST …/{callConnectionId}:stopMediaStreaming` body (the examples send `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopMediaStreamingRequest {
    /// Callback URI for this operation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_callback_uri: Option<String>,
    /// Echoed in `MediaStreamingStopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// `callLocator` of [`StartCallRecordingRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLocator {
    /// Which id is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CallLocatorKind>,
    /// For `serverCallLocator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// For `groupCallLocator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_call_id: Option<String>,
    /// For `roomCallLocator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
}

/// `channelAffinity[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAffinity {
    /// Channel 0–4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<i32>,
    /// The participant on that channel.
    pub participant: CommunicationIdentifierModel,
}

/// `externalStorage` of [`StartCallRecordingRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStorage {
    /// Where to store.
    pub recording_storage_kind: RecordingStorageKind,
    /// Blob container URL for `azureBlobStorage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_destination_container_url: Option<String>,
}

/// `POST /calling/recordings` (§4.8): exactly one of `callLocator` or `callConnectionId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartCallRecordingRequest {
    /// The call, by locator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_locator: Option<CallLocator>,
    /// The call, by call connection id (what the gateway uses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// Where `RecordingStateChanged` / `StartRecordingFailed` are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_state_callback_uri: Option<String>,
    /// `audio` or `audioVideo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_content_type: Option<RecordingContentType>,
    /// `mixed` or `unmixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_channel_type: Option<RecordingChannelType>,
    /// `wav`, `mp3` or `mp4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_format_type: Option<RecordingFormatType>,
    /// Channel order for unmixed audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_channel_participant_ordering: Option<Vec<CommunicationIdentifierModel>>,
    /// Fixed channel per participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_affinity: Option<Vec<ChannelAffinity>>,
    /// Start paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_on_start: Option<bool>,
    /// Bring-your-own storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_storage: Option<RecordingStorage>,
}

impl StartCallRecordingRequest {
    /// Exactly one of `callLocator` / `callConnectionId` (non-empty), channels 0–4.
    pub fn validate(&self) -> Result<(), RequestError> {
        match (&self.call_locator, &self.call_connection_id) {
            (Some(_), Some(_)) => {
                return Err(RequestError::invalid(
                    "callLocator",
                    "only one of callLocator or callConnectionId may be set",
                ))
            }
            (None, None) => {
                return Err(RequestError::invalid(
                    "callLocator",
                    "one of callLocator or callConnectionId is required",
                ))
            }
            (None, Some(id)) => non_empty("callConnectionId", id)?,
            (Some(_), None) => {}
        }
        for a in self.channel_affinity.iter().flatten() {
            if a.channel.is_some_and(|c| !(0..=4).contains(&c)) {
                return Err(RequestError::invalid(
                    "channelAffinity.channel",
                    "must be 0 to 4",
                ));
            }
            identifier("channelAffinity.participant", &a.participant)?;
        }
        Ok(())
    }
}
