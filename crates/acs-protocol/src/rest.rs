//! PURE: the ACS Call Automation REST API bodies and routes (PROTOCOL.md §4, §11).
//!
//! This module owns:
//!
//! * request and response bodies (camelCase, absent optional fields are not serialized) for
//!   answer / create / reject / redirect, participants (add, remove, transfer, mute, cancel add,
//!   list), hold / unhold, DTMF (send, continuous recognition start/stop, [`DtmfTone`]), media
//!   streaming start/stop, recording start and its state, and
//!   [`CallConnectionProperties`]; [`MediaStreamingOptions`] and [`TranscriptionOptions`] (the
//!   `transportType: "websocket"` shapes of §4.3);
//! * the ACS error body `{"error":{"code","message",…}}` as [`AcsError`];
//! * [`AcsOperation`]: every route's method, path, metric label, success statuses and whether it
//!   takes Repeatability headers (the §4.1 table), plus [`AcsOperation::parse`] so a fake ACS can
//!   route a request to an operation;
//! * Teams Phone extensibility server pieces (§7, §11): the Teams user token exchange, the Teams
//!   extension assignment, and Microsoft Graph resource accounts.
//!
//! Bodies are faithful: a request deserializes and serializes back to the same JSON (ignoring
//! `null`s and unknown fields), so the gateway and the fake ACS agree on one wire format.
//! Identifiers are kept as [`CommunicationIdentifierModel`] for that reason; convert with
//! [`CommunicationIdentifierModel::to_identifier`] / `From<&CommunicationIdentifier>`.
//! String enums accept any casing and keep unknown values (`Other`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::identifier::{
    string_enum, CommunicationIdentifier, CommunicationIdentifierModel,
    CommunicationUserIdentifierModel, IdentifierError, MicrosoftTeamsAppIdentifierModel,
    PhoneNumberIdentifierModel,
};

/// Call Automation `api-version` the gateway uses by default: what the official SDKs 1.6.0
/// (JS `@azure/communication-call-automation`, Python `azure-communication-callautomation`)
/// send. Against the 2025-06-15 bodies this crate was written for, 2026-03-12 (per the JS 1.6.0
/// generated mappers and the spec's 2026-03-12 examples) changes nothing the gateway sends: same
/// request and response fields, routes, success statuses and Repeatability operations. It
/// adds `participants:moveHere` (not used here), makes `teamsPhoneCallDetails` of
/// `customCallingContext` stable, and `teamsExtensionUser.resourceId` is required (the operator
/// API always sends it). `enableLoopbackAudio` is preview-only (never set by the gateway).
pub const CALL_AUTOMATION_API_VERSION: &str = "2026-03-12";
/// Identity `api-version` of the Teams user token exchange.
pub const IDENTITY_API_VERSION: &str = "2023-10-01";
/// `api-version` of the Teams extension assignment API.
pub const TEAMS_EXTENSION_API_VERSION: &str = "2025-06-30";
/// Microsoft Graph (beta) list of Teams resource accounts (delegated
/// `TeamsResourceAccount.Read.All`); add `?$filter=appId eq '<app id>'` to narrow it.
pub const GRAPH_RESOURCE_ACCOUNTS_URL: &str =
    "https://graph.microsoft.com/beta/admin/teams/resourceAccounts";
/// Content type of every JSON body.
pub const CONTENT_TYPE_JSON: &str = "application/json";

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

string_enum! {
    /// `transportType` of [`MediaStreamingOptions`] and [`TranscriptionOptions`].
    pub enum StreamingTransportType {
        /// `websocket`: ACS connects to `transportUrl`.
        Websocket = "websocket",
    }
}

string_enum! {
    /// `contentType` of media streaming (`audio`; callbacks say `Audio`).
    pub enum MediaStreamingContentType {
        /// `audio`.
        Audio = "audio",
    }
}

string_enum! {
    /// `audioChannelType`: one mixed stream, or one per dominant speaker.
    pub enum MediaStreamingAudioChannelType {
        /// `mixed`.
        Mixed = "mixed",
        /// `unmixed` (up to four speakers, each tagged with `participantRawID`).
        Unmixed = "unmixed",
    }
}

string_enum! {
    /// `audioFormat` of streamed audio: PCM16 LE mono.
    pub enum AudioFormat {
        /// `pcm16KMono` (the default).
        Pcm16KMono = "pcm16KMono",
        /// `pcm24KMono`.
        Pcm24KMono = "pcm24KMono",
    }
}

impl AudioFormat {
    /// The sample rate in Hz, for known formats.
    pub fn sample_rate(&self) -> Option<u32> {
        match self {
            AudioFormat::Pcm16KMono => Some(16_000),
            AudioFormat::Pcm24KMono => Some(24_000),
            AudioFormat::Other(_) => None,
        }
    }
}

string_enum! {
    /// `callRejectReason` of [`RejectCallRequest`].
    pub enum CallRejectReason {
        /// `none`.
        None = "none",
        /// `busy`.
        Busy = "busy",
        /// `forbidden`.
        Forbidden = "forbidden",
    }
}

string_enum! {
    /// `callConnectionState` of [`CallConnectionProperties`].
    pub enum CallConnectionState {
        /// `unknown`.
        Unknown = "unknown",
        /// `connecting`.
        Connecting = "connecting",
        /// `connected`.
        Connected = "connected",
        /// `transferring`.
        Transferring = "transferring",
        /// `transferAccepted`.
        TransferAccepted = "transferAccepted",
        /// `disconnecting`.
        Disconnecting = "disconnecting",
        /// `disconnected`.
        Disconnected = "disconnected",
    }
}

string_enum! {
    /// `state` of a media-streaming or transcription subscription.
    pub enum SubscriptionState {
        /// `disabled`.
        Disabled = "disabled",
        /// `inactive`.
        Inactive = "inactive",
        /// `active`.
        Active = "active",
    }
}

string_enum! {
    /// Recording state (`recordingState` in responses, `state` in `RecordingStateChanged`).
    pub enum RecordingState {
        /// `active`.
        Active = "active",
        /// `inactive`.
        Inactive = "inactive",
    }
}

string_enum! {
    /// `recordingKind`.
    pub enum RecordingKind {
        /// `azureCommunicationServices`.
        AzureCommunicationServices = "azureCommunicationServices",
        /// `teams`.
        Teams = "teams",
        /// `teamsCompliance`.
        TeamsCompliance = "teamsCompliance",
    }
}

string_enum! {
    /// `recordingContentType`.
    pub enum RecordingContentType {
        /// `audio`.
        Audio = "audio",
        /// `audioVideo`.
        AudioVideo = "audioVideo",
    }
}

string_enum! {
    /// `recordingChannelType`.
    pub enum RecordingChannelType {
        /// `mixed`.
        Mixed = "mixed",
        /// `unmixed`.
        Unmixed = "unmixed",
    }
}

string_enum! {
    /// `recordingFormatType`.
    pub enum RecordingFormatType {
        /// `wav`.
        Wav = "wav",
        /// `mp3`.
        Mp3 = "mp3",
        /// `mp4`.
        Mp4 = "mp4",
    }
}

string_enum! {
    /// `externalStorage.recordingStorageKind`.
    pub enum RecordingStorageKind {
        /// `azureCommunicationServices`.
        AzureCommunicationServices = "azureCommunicationServices",
        /// `azureBlobStorage`.
        AzureBlobStorage = "azureBlobStorage",
    }
}

string_enum! {
    /// `callLocator.kind`.
    pub enum CallLocatorKind {
        /// `groupCallLocator` (uses `groupCallId`).
        GroupCallLocator = "groupCallLocator",
        /// `serverCallLocator` (uses `serverCallId`).
        ServerCallLocator = "serverCallLocator",
        /// `roomCallLocator` (uses `roomId`).
        RoomCallLocator = "roomCallLocator",
    }
}

string_enum! {
    /// `principalType` of a Teams extension assignment.
    pub enum TeamsExtensionPrincipalType {
        /// `teamsResourceAccount`.
        TeamsResourceAccount = "teamsResourceAccount",
    }
}

string_enum! {
    /// A DTMF tone (`tones[]` of [`SendDtmfTonesRequest`], `tone` of
    /// `ContinuousDtmfRecognitionToneReceived`).
    pub enum DtmfTone {
        /// `zero`.
        Zero = "zero",
        /// `one`.
        One = "one",
        /// `two`.
        Two = "two",
        /// `three`.
        Three = "three",
        /// `four`.
        Four = "four",
        /// `five`.
        Five = "five",
        /// `six`.
        Six = "six",
        /// `seven`.
        Seven = "seven",
        /// `eight`.
        Eight = "eight",
        /// `nine`.
        Nine = "nine",
        /// `a`.
        A = "a",
        /// `b`.
        B = "b",
        /// `c`.
        C = "c",
        /// `d`.
        D = "d",
        /// `pound` (`#`).
        Pound = "pound",
        /// `asterisk` (`*`).
        Asterisk = "asterisk",
    }
}

/// Keypad characters of the known tones, in [`DtmfTone`] declaration order.
const DTMF_KEYS: &[(char, DtmfTone)] = &[
    ('0', DtmfTone::Zero),
    ('1', DtmfTone::One),
    ('2', DtmfTone::Two),
    ('3', DtmfTone::Three),
    ('4', DtmfTone::Four),
    ('5', DtmfTone::Five),
    ('6', DtmfTone::Six),
    ('7', DtmfTone::Seven),
    ('8', DtmfTone::Eight),
    ('9', DtmfTone::Nine),
    ('A', DtmfTone::A),
    ('B', DtmfTone::B),
    ('C', DtmfTone::C),
    ('D', DtmfTone::D),
    ('#', DtmfTone::Pound),
    ('*', DtmfTone::Asterisk),
];

impl DtmfTone {
    /// The tone of a keypad character (`0`–`9`, `A`–`D` any case, `#`, `*`).
    pub fn from_key(c: char) -> Option<DtmfTone> {
        let c = c.to_ascii_uppercase();
        DTMF_KEYS
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, t)| t.clone())
    }

    /// The keypad character of a known tone (`#` for `pound`); `None` for `Other`.
    pub fn key(&self) -> Option<char> {
        DTMF_KEYS.iter().find(|(_, t)| t == self).map(|(k, _)| *k)
    }
}

string_enum! {
    /// `kind` of a play source.
    pub enum PlaySourceKind {
        /// `file` (uses `file.uri`).
        File = "file",
        /// `text` (uses `text.text`, text to speech).
        Text = "text",
        /// `ssml` (uses `ssml.ssmlText`).
        Ssml = "ssml",
    }
}

// ---------------------------------------------------------------------------------------------
// Options shared by answer / create
// ---------------------------------------------------------------------------------------------

/// `mediaStreamingOptions` (§4.3), polymorphic on `transportType` (only `websocket` exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStreamingOptions {
    /// `websocket` (required discriminator).
    pub transport_type: StreamingTransportType,
    /// `wss://…` URL ACS connects to (`/ws/{callToken}` for this gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_url: Option<String>,
    /// `audio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<MediaStreamingContentType>,
    /// `mixed` or `unmixed` (required).
    pub audio_channel_type: MediaStreamingAudioChannelType,
    /// Start streaming when the call connects (default false: call `:startMediaStreaming`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_media_streaming: Option<bool>,
    /// Allow audio back to ACS on the same WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_bidirectional: Option<bool>,
    /// `pcm16KMono` (default) or `pcm24KMono`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_format: Option<AudioFormat>,
    /// Also stream `DtmfData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dtmf_tones: Option<bool>,
}

impl MediaStreamingOptions {
    /// `{"transportType":"websocket","transportUrl":url,"contentType":"audio","audioChannelType":…}`;
    /// set the other fields with struct update syntax.
    pub fn websocket(
        transport_url: impl Into<String>,
        audio_channel_type: MediaStreamingAudioChannelType,
    ) -> Self {
        MediaStreamingOptions {
            transport_type: StreamingTransportType::Websocket,
            transport_url: Some(transport_url.into()),
            content_type: Some(MediaStreamingContentType::Audio),
            audio_channel_type,
            start_media_streaming: None,
            enable_bidirectional: None,
            audio_format: None,
            enable_dtmf_tones: None,
        }
    }
}

/// `transcriptionOptions`, polymorphic on `transportType` (only `websocket` exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionOptions {
    /// `websocket` (required discriminator).
    pub transport_type: StreamingTransportType,
    /// Locale, e.g. `en-US` (required).
    pub locale: String,
    /// `wss://…` URL for transcription frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_url: Option<String>,
    /// Custom speech model endpoint (the 2025-05-15 example's `speechRecognitionModelEndpointId`
    /// is read as an alias).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "speechRecognitionModelEndpointId"
    )]
    pub speech_model_endpoint_id: Option<String>,
    /// Start transcription when the call connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_transcription: Option<bool>,
    /// Also send intermediate results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_intermediate_results: Option<bool>,
}

/// `callIntelligenceOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallIntelligenceOptions {
    /// Azure AI services endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognitive_services_endpoint: Option<String>,
}

/// Custom headers: `customCallingContext` of add/transfer requests, and `customContext` of the
/// IncomingCall event (§7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCallingContext {
    /// SIP headers (`X-MS-Custom-*`, `userToUser`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_headers: Option<BTreeMap<String, String>>,
    /// VoIP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voip_headers: Option<BTreeMap<String, String>>,
    /// Preview: Teams Phone call details, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_phone_call_details: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// `mediaStreamingSubscription` of [`CallConnectionProperties`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStreamingSubscription {
    /// Subscription id (= `AudioMetadata.subscriptionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `disabled`, `inactive` or `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SubscriptionState>,
    /// `["audio"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed_content_types: Option<Vec<MediaStreamingContentType>>,
}

/// `transcriptionSubscription` of [`CallConnectionProperties`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionSubscription {
    /// Subscription id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `disabled`, `inactive` or `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SubscriptionState>,
    /// `final` and/or `intermediate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed_result_types: Option<Vec<String>>,
    /// Locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Response of answer (200), create (201) and get call (200).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallConnectionProperties {
    /// The call connection id (path parameter of later calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// Server call id (recording by locator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// The other parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<CommunicationIdentifierModel>>,
    /// Connection state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_state: Option<CallConnectionState>,
    /// The callback URI in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Caller id number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_caller_id_number: Option<PhoneNumberIdentifierModel>,
    /// Caller display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_display_name: Option<String>,
    /// The source identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CommunicationIdentifierModel>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Who answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<CommunicationUserIdentifierModel>,
    /// Media streaming subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_subscription: Option<MediaStreamingSubscription>,
    /// Transcription subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_subscription: Option<TranscriptionSubscription>,
    /// The number the call was answered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_for: Option<PhoneNumberIdentifierModel>,
}

/// A participant (`GetParticipants`, `ParticipantsUpdated`, add/remove responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallParticipant {
    /// Who.
    pub identifier: CommunicationIdentifierModel,
    /// Muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_muted: Option<bool>,
    /// On hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_on_hold: Option<bool>,
}

/// `GET …/participants` response (pageable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParticipantsResponse {
    /// This page.
    #[serde(default)]
    pub value: Vec<CallParticipant>,
    /// Next page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// `participants:add` 202 response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddParticipantResponse {
    /// The invited participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<CallParticipant>,
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// For `cancelAddParticipant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
}

/// `{operationContext}`: response of remove participant, transfer, mute and send DTMF.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationContextResponse {
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// `participants:cancelAddParticipant` 202 response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAddParticipantResponse {
    /// The cancelled invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// Response of start / get recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStateResponse {
    /// The recording id (path parameter of later recording calls).
    pub recording_id: String,
    /// `active` or `inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_state: Option<RecordingState>,
    /// `azureCommunicationServices`, `teams` or `teamsCompliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_kind: Option<RecordingKind>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An ACS error (`CommunicationError`): `{"code","message","target"?,"details"?,"innererror"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("ACS error {code}: {message}")]
pub struct AcsError {
    /// Error code, e.g. `8523` or `InvalidAccessToken`.
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// What the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Further errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<AcsError>>,
    /// A more specific error.
    #[serde(
        default,
        rename = "innererror",
        alias = "innerError",
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<Box<AcsError>>,
}

/// The error body: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsErrorResponse {
    /// The error.
    pub error: AcsError,
}

impl AcsError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        AcsError {
            code: code.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// Parses an error response body; `None` if it is not `{"error":{…}}`.
    pub fn from_body(body: &[u8]) -> Option<AcsError> {
        serde_json::from_slice::<AcsErrorResponse>(body)
            .ok()
            .map(|r| r.error)
    }

    /// The `{"error": …}` body for this error (what a fake ACS sends).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&AcsErrorResponse {
            error: self.clone(),
        })
        .expect("AcsError serializes")
    }

    /// Whether this error or an inner one says the IncomingCall context is too old
    /// ("lifetime validation of the signed http request failed"): the call is gone.
    pub fn is_stale_incoming_call(&self) -> bool {
        const NEEDLE: &str = "lifetime validation of the signed http request failed";
        let mut e = Some(self);
        while let Some(err) = e {
            if err.message.to_ascii_lowercase().contains(NEEDLE) {
                return true;
            }
            e = err.inner_error.as_deref();
        }
        false
    }
}

/// Why a request body is not acceptable (checked by the `validate` methods; what a fake ACS
/// answers 400 for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field has a bad value.
    #[error("{field} {problem}")]
    Invalid {
        /// camelCase field path.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// An identifier field is not a valid identifier model.
    #[error("{field}: {source}")]
    Identifier {
        /// camelCase field path.
        field: &'static str,
        /// The identifier problem.
        source: IdentifierError,
    },
}

impl RequestError {
    fn invalid(field: &'static str, problem: &'static str) -> Self {
        RequestError::Invalid { field, problem }
    }

    /// The ACS-shaped error for a 400 response (`code` `BadRequest`).
    pub fn to_acs_error(&self) -> AcsError {
        let field = match self {
            RequestError::Invalid { field, .. } | RequestError::Identifier { field, .. } => field,
        };
        AcsError {
            target: Some((*field).to_owned()),
            ..AcsError::new("BadRequest", self.to_string())
        }
    }
}

fn non_empty(field: &'static str, v: &str) -> Result<(), RequestError> {
    if v.trim().is_empty() {
        Err(RequestError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn has_scheme(url: &str, scheme: &str) -> bool {
    url.len() > scheme.len() && url[..scheme.len()].eq_ignore_ascii_case(scheme)
}

fn http_url(field: &'static str, v: &str) -> Result<(), RequestError> {
    if has_scheme(v, "https://") || has_scheme(v, "http://") {
        Ok(())
    } else {
        Err(RequestError::invalid(field, "must be an http(s):// URL"))
    }
}

fn identifier(field: &'static str, m: &CommunicationIdentifierModel) -> Result<(), RequestError> {
    m.validate()
        .map_err(|source| RequestError::Identifier { field, source })
}

// ---------------------------------------------------------------------------------------------
// Teams Phone extensibility (§7, §11)
// ---------------------------------------------------------------------------------------------

/// `POST /teamsUser/:exchangeAccessToken?api-version=2023-10-01` body: exchange a Teams user's
/// Entra token for an ACS token (the server half of the dual-persona agent sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsUserExchangeTokenRequest {
    /// The Entra access token of the Teams user.
    pub token: String,
    /// The Entra application (client) id.
    pub app_id: String,
    /// The Teams user's object id.
    pub user_id: String,
}

/// 200 response of the token exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentityAccessToken {
    /// The ACS token.
    pub token: String,
    /// Expiry, ISO 8601.
    pub expires_on: String,
}

/// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}?api-version=2025-06-30`
/// body: let the ACS resource receive calls for a Teams resource account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsExtensionAssignmentRequest {
    /// `teamsResourceAccount`.
    pub principal_type: TeamsExtensionPrincipalType,
}

/// 201 response of the assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsExtensionAssignment {
    /// The resource account object id.
    pub object_id: String,
    /// The tenant id.
    pub tenant_id: String,
    /// `teamsResourceAccount`.
    pub principal_type: TeamsExtensionPrincipalType,
}

/// One Teams resource account from Microsoft Graph ([`GRAPH_RESOURCE_ACCOUNTS_URL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccount {
    /// Object id: the IncomingCall `to` is `28:orgid:{id}`.
    pub id: String,
    /// UPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// The Teams app id the account is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `tel:+1234567890`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The ACS resource id the account is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acs_resource_id: Option<String>,
}

impl ResourceAccount {
    /// The identifier calls to this account carry (`28:orgid:{id}`).
    pub fn identifier(&self) -> CommunicationIdentifier {
        CommunicationIdentifier::teams_app(self.id.clone())
    }

    /// The phone number without the `tel:` scheme.
    pub fn e164(&self) -> Option<&str> {
        self.phone_number.as_deref().map(|p| {
            p.strip_prefix("tel:")
                .or_else(|| p.strip_prefix("TEL:"))
                .unwrap_or(p)
        })
    }
}

/// Graph list response `{"@odata.context", "value": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccountList {
    /// OData context URL.
    #[serde(
        default,
        rename = "@odata.context",
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_context: Option<String>,
    /// The accounts.
    #[serde(default)]
    pub value: Vec<ResourceAccount>,
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// An ACS data-plane operation: its route (§4.1 table, §7, §11) and properties. Path
/// parameters are carried unencoded and percent-encoded by [`path`](Self::path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AcsOperation {
    /// `POST /calling/callConnections` → 201.
    CreateCall,
    /// `POST /calling/callConnections:answer` → 200.
    AnswerCall,
    /// `POST /calling/callConnections:redirect` → 204.
    RedirectCall,
    /// `POST /calling/callConnections:reject` → 204.
    RejectCall,
    /// `POST /calling/callConnections:connect` → 200.
    ConnectCall,
    /// `GET /calling/callConnections/{id}` → 200.
    GetCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `DELETE /calling/callConnections/{id}` (leave) → 204.
    HangUpCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:terminate` (end for everyone) → 204.
    TerminateCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:transferToParticipant` → 202.
    TransferToParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:play` → 202.
    Play {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:recognize` → 202.
    Recognize {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:cancelAllMediaOperations` → 202.
    CancelAllMediaOperations {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startTranscription` → 202.
    StartTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopTranscription` → 202.
    StopTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:updateTranscription` → 202.
    UpdateTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startContinuousDtmfRecognition` → 200.
    StartContinuousDtmfRecognition {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopContinuousDtmfRecognition` → 200.
    StopContinuousDtmfRecognition {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:sendDtmfTones` → 202.
    SendDtmfTones {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:hold` → 200.
    Hold {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:unhold` → 200.
    Unhold {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startMediaStreaming` → 202.
    StartMediaStreaming {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopMediaStreaming` → 202.
    StopMediaStreaming {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `GET …/{id}/participants` → 200.
    GetParticipants {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:add` → 202.
    AddParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:remove` → 202.
    RemoveParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:mute` → 200.
    MuteParticipants {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:cancelAddParticipant` → 202.
    CancelAddParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `GET …/{id}/participants/{participantRawId}` → 200.
    GetParticipant {
        /// The call connection id.
        call_connection_id: String,
        /// The participant's rawId.
        participant_raw_id: String,
    },
    /// `POST /calling/recordings` → 200 or 202.
    StartRecording,
    /// `GET /calling/recordings/{recordingId}` → 200.
    GetRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `DELETE /calling/recordings/{recordingId}` → 204.
    StopRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /calling/recordings/{recordingId}:pause` → 202.
    PauseRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /calling/recordings/{recordingId}:resume` → 202.
    ResumeRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /teamsUser/:exchangeAccessToken` → 200 (Identity API).
    ExchangeTeamsUserAccessToken,
    /// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}` → 201.
    PutTeamsExtensionAssignment {
        /// The Entra tenant id.
        tenant_id: String,
        /// The resource account object id.
        object_id: String,
    },
}

/// Builds an operation from its call connection id.
type CallOpCtor = fn(String) -> AcsOperation;

/// POST actions on `/calling/callConnections/{id}:{action}`, by wire name.
const CALL_ACTIONS: &[(&str, CallOpCtor)] = &[
    ("terminate", |id| AcsOperation::TerminateCall {
        call_connection_id: id,
    }),
    ("transferToParticipant", |id| {
        AcsOperation::TransferToParticipant {
            call_connection_id: id,
        }
    }),
    ("play", |id| AcsOperation::Play {
        call_connection_id: id,
    }),
    ("recognize", |id| AcsOperation::Recognize {
        call_connection_id: id,
    }),
    ("cancelAllMediaOperations", |id| {
        AcsOperation::CancelAllMediaOperations {
            call_connection_id: id,
        }
    }),
    ("startTranscription", |id| {
        AcsOperation::StartTranscription {
            call_connection_id: id,
        }
    }),
    ("stopTranscription", |id| AcsOperation::StopTranscription {
        call_connection_id: id,
    }),
    ("updateTranscription", |id| {
        AcsOperation::UpdateTranscription {
            call_connection_id: id,
        }
    }),
    ("startContinuousDtmfRecognition", |id| {
        AcsOperation::StartContinuousDtmfRecognition {
            call_connection_id: id,
        }
    }),
    ("stopContinuousDtmfRecognition", |id| {
        AcsOperation::StopContinuousDtmfRecognition {
            call_connection_id: id,
        }
    }),
    ("sendDtmfTones", |id| AcsOperation::SendDtmfTones {
        call_connection_id: id,
    }),
    ("hold", |id| AcsOperation::Hold {
        call_connection_id: id,
    }),
    ("unhold", |id| AcsOperation::Unhold {
        call_connection_id: id,
    }),
    ("startMediaStreaming", |id| {
        AcsOperation::StartMediaStreaming {
            call_connection_id: id,
        }
    }),
    ("stopMediaStreaming", |id| {
        AcsOperation::StopMediaStreaming {
            call_connection_id: id,
        }
    }),
];

/// POST actions on `/calling/callConnections/{id}/participants:{action}`.
const PARTICIPANT_ACTIONS: &[(&str, CallOpCtor)] = &[
    ("add", |id| AcsOperation::AddParticipant {
        call_connection_id: id,
    }),
    ("remove", |id| AcsOperation::RemoveParticipant {
        call_connection_id: id,
    }),
    ("mute", |id| AcsOperation::MuteParticipants {
        call_connection_id: id,
    }),
    ("cancelAddParticipant", |id| {
        AcsOperation::CancelAddParticipant {
            call_connection_id: id,
        }
    }),
];

const CALLS: &str = "/calling/callConnections";
const RECORDINGS: &str = "/calling/recordings";

impl AcsOperation {
    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        use AcsOperation as O;
        match self {
            O::GetCall { .. }
            | O::GetParticipants { .. }
            | O::GetParticipant { .. }
            | O::GetRecording { .. } => "GET",
            O::HangUpCall { .. } | O::StopRecording { .. } => "DELETE",
            O::PutTeamsExtensionAssignment { .. } => "PUT",
            _ => "POST",
        }
    }

    /// A short, stable snake_case label for metrics and logs (no ids).
    pub fn name(&self) -> &'static str {
        use AcsOperation as O;
        match self {
            O::CreateCall => "create_call",
            O::AnswerCall => "answer_call",
            O::RedirectCall => "redirect_call",
            O::RejectCall => "reject_call",
            O::ConnectCall => "connect_call",
            O::GetCall { .. } => "get_call",
            O::HangUpCall { .. } => "hang_up_call",
            O::TerminateCall { .. } => "terminate_call",
            O::TransferToParticipant { .. } => "transfer_to_participant",
            O::Play { .. } => "play",
            O::Recognize { .. } => "recognize",
            O::CancelAllMediaOperations { .. } => "cancel_all_media_operations",
            O::StartTranscription { .. } => "start_transcription",
            O::StopTranscription { .. } => "stop_transcription",
            O::UpdateTranscription { .. } => "update_transcription",
            O::StartContinuousDtmfRecognition { .. } => "start_continuous_dtmf_recognition",
            O::StopContinuousDtmfRecognition { .. } => "stop_continuous_dtmf_recognition",
            O::SendDtmfTones { .. } => "send_dtmf_tones",
            O::Hold { .. } => "hold",
            O::Unhold { .. } => "unhold",
            O::StartMediaStreaming { .. } => "start_media_streaming",
            O::StopMediaStreaming { .. } => "stop_media_streaming",
            O::GetParticipants { .. } => "get_participants",
            O::AddParticipant { .. } => "add_participant",
            O::RemoveParticipant { .. } => "remove_participant",
            O::MuteParticipants { .. } => "mute_participants",
            O::CancelAddParticipant { .. } => "cancel_add_participant",
            O::GetParticipant { .. } => "get_participant",
            O::StartRecording => "start_recording",
            O::GetRecording { .. } => "get_recording",
            O::StopRecording { .. } => "stop_recording",
            O::PauseRecording { .. } => "pause_recording",
            O::ResumeRecording { .. } => "resume_recording",
            O::ExchangeTeamsUserAccessToken => "exchange_teams_user_access_token",
            O::PutTeamsExtensionAssignment { .. } => "put_teams_extension_assignment",
        }
    }

    /// Whether the request carries `Repeatability-Request-ID` / `Repeatability-First-Sent`
    /// (§4.1, §5; reuse both on retries).
    pub fn needs_repeatability(&self) -> bool {
        use AcsOperation as O;
        matches!(
            self,
            O::CreateCall
                | O::AnswerCall
                | O::RedirectCall
                | O::RejectCall
                | O::ConnectCall
                | O::TerminateCall { .. }
                | O::TransferToParticipant { .. }
                | O::SendDtmfTones { .. }
                | O::AddParticipant { .. }
                | O::RemoveParticipant { .. }
                | O::MuteParticipants { .. }
                | O::CancelAddParticipant { .. }
                | O::StartRecording
        )
    }

    /// The success statuses (the first is the usual one).
    pub fn success_statuses(&self) -> &'static [u16] {
        use AcsOperation as O;
        match self {
            O::CreateCall => &[201],
            O::PutTeamsExtensionAssignment { .. } => &[201, 200],
            O::StartRecording => &[200, 202],
            O::RedirectCall
            | O::RejectCall
            | O::HangUpCall { .. }
            | O::TerminateCall { .. }
            | O::StopRecording { .. } => &[204],
            O::TransferToParticipant { .. }
            | O::Play { .. }
            | O::Recognize { .. }
            | O::CancelAllMediaOperations { .. }
            | O::StartTranscription { .. }
            | O::StopTranscription { .. }
            | O::UpdateTranscription { .. }
            | O::SendDtmfTones { .. }
            | O::StartMediaStreaming { .. }
            | O::StopMediaStreaming { .. }
            | O::AddParticipant { .. }
            | O::RemoveParticipant { .. }
            | O::CancelAddParticipant { .. }
            | O::PauseRecording { .. }
            | O::ResumeRecording { .. } => &[202],
            _ => &[200],
        }
    }

    /// The `api-version` this crate uses for the operation.
    pub fn api_version(&self) -> &'static str {
        match self {
            AcsOperation::ExchangeTeamsUserAccessToken => IDENTITY_API_VERSION,
            AcsOperation::PutTeamsExtensionAssignment { .. } => TEAMS_EXTENSION_API_VERSION,
            _ => CALL_AUTOMATION_API_VERSION,
        }
    }

    /// The call connection id in the path, if any.
    pub fn call_connection_id(&self) -> Option<&str> {
        use AcsOperation as O;
        match self {
            O::GetCall { call_connection_id }
            | O::HangUpCall { call_connection_id }
            | O::TerminateCall { call_connection_id }
            | O::TransferToParticipant { call_connection_id }
            | O::Play { call_connection_id }
            | O::Recognize { call_connection_id }
            | O::CancelAllMediaOperations { call_connection_id }
            | O::StartTranscription { call_connection_id }
            | O::StopTranscription { call_connection_id }
            | O::UpdateTranscription { call_connection_id }
            | O::StartContinuousDtmfRecognition { call_connection_id }
            | O::StopContinuousDtmfRecognition { call_connection_id }
            | O::SendDtmfTones { call_connection_id }
            | O::Hold { call_connection_id }
            | O::Unhold { call_connection_id }
            | O::StartMediaStreaming { call_connection_id }
            | O::StopMediaStreaming { call_connection_id }
            | O::GetParticipants { call_connection_id }
            | O::AddParticipant { call_connection_id }
            | O::RemoveParticipant { call_connection_id }
            | O::MuteParticipants { call_connection_id }
            | O::CancelAddParticipant { call_connection_id }
            | O::GetParticipant {
                call_connection_id, ..
            } => Some(call_connection_id),
            _ => None,
        }
    }

    /// The path, with path parameters percent-encoded (like `encodeURIComponent`).
    pub fn path(&self) -> String {
        use AcsOperation as O;
        let call = |id: &str, suffix: &str| format!("{CALLS}/{}{suffix}", encode_segment(id));
        let action = |id: &str, name: &str| call(id, &format!(":{name}"));
        let rec = |id: &str, suffix: &str| format!("{RECORDINGS}/{}{suffix}", encode_segment(id));
        let call_action_name = |op: &AcsOperation| {
            CALL_ACTIONS
                .iter()
                .chain(PARTICIPANT_ACTIONS)
                .find(|(_, make)| make(String::new()).name() == op.name())
                .map(|(name, _)| *name)
                .unwrap_or_default()
        };
        match self {
            O::CreateCall => CALLS.to_owned(),
            O::AnswerCall => format!("{CALLS}:answer"),
            O::RedirectCall => format!("{CALLS}:redirect"),
            O::RejectCall => format!("{CALLS}:reject"),
            O::ConnectCall => format!("{CALLS}:connect"),
            O::GetCall { call_connection_id } | O::HangUpCall { call_connection_id } => {
                call(call_connection_id, "")
            }
            O::GetParticipants { call_connection_id } => call(call_connection_id, "/participants"),
            O::AddParticipant { call_connection_id }
            | O::RemoveParticipant { call_connection_id }
            | O::MuteParticipants { call_connection_id }
            | O::CancelAddParticipant { call_connection_id } => call(
                call_connection_id,
                &format!("/participants:{}", call_action_name(self)),
            ),
            O::GetParticipant {
                call_connection_id,
                participant_raw_id,
            } => call(
                call_connection_id,
                &format!("/participants/{}", encode_segment(participant_raw_id)),
            ),
            O::StartRecording => RECORDINGS.to_owned(),
            O::GetRecording { recording_id } | O::StopRecording { recording_id } => {
                rec(recording_id, "")
            }
            O::PauseRecording { recording_id } => rec(recording_id, ":pause"),
            O::ResumeRecording { recording_id } => rec(recording_id, ":resume"),
            O::ExchangeTeamsUserAccessToken => "/teamsUser/:exchangeAccessToken".to_owned(),
            O::PutTeamsExtensionAssignment {
                tenant_id,
                object_id,
            } => format!(
                "/access/teamsExtension/tenants/{}/assignments/{}",
                encode_segment(tenant_id),
                encode_segment(object_id)
            ),
            // Every remaining variant is a call action.
            other => action(
                other.call_connection_id().unwrap_or_default(),
                call_action_name(other),
            ),
        }
    }

    /// `path()?api-version=…` with [`api_version`](Self::api_version): what is signed and sent.
    pub fn path_and_query(&self) -> String {
        format!("{}?api-version={}", self.path(), self.api_version())
    }

    /// Routes a request (for a fake ACS): `method` (any case) and the path, with or without a
    /// query. Path parameters are percent-decoded. `None` for anything that is not one of the
    /// operations above.
    pub fn parse(method: &str, path_and_query: &str) -> Option<AcsOperation> {
        use AcsOperation as O;
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let path = path.strip_suffix('/').unwrap_or(path);
        let m = method.to_ascii_uppercase();
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let op = match segs.as_slice() {
            ["calling", root] => match *root {
                "callConnections" => O::CreateCall,
                "callConnections:answer" => O::AnswerCall,
                "callConnections:redirect" => O::RedirectCall,
                "callConnections:reject" => O::RejectCall,
                "callConnections:connect" => O::ConnectCall,
                "recordings" => O::StartRecording,
                _ => return None,
            },
            ["calling", "callConnections", seg] => {
                if m == "POST" {
                    let (id, action) = seg.rsplit_once(':')?;
                    let make = CALL_ACTIONS.iter().find(|(n, _)| *n == action)?.1;
                    make(decode_segment(id)?)
                } else if m == "DELETE" {
                    O::HangUpCall {
                        call_connection_id: decode_segment(seg)?,
                    }
                } else {
                    O::GetCall {
                        call_connection_id: decode_segment(seg)?,
                    }
                }
            }
            ["calling", "callConnections", id, "participants"] => O::GetParticipants {
                call_connection_id: decode_segment(id)?,
            },
            ["calling", "callConnections", id, action_seg] => {
                let action = action_seg.strip_prefix("participants:")?;
                let make = PARTICIPANT_ACTIONS.iter().find(|(n, _)| *n == action)?.1;
                make(decode_segment(id)?)
            }
            ["calling", "callConnections", id, "participants", raw] => O::GetParticipant {
                call_connection_id: decode_segment(id)?,
                participant_raw_id: decode_segment(raw)?,
            },
            ["calling", "recordings", seg] => {
                if m == "POST" {
                    let (id, action) = seg.rsplit_once(':')?;
                    let recording_id = decode_segment(id)?;
                    match action {
                        "pause" => O::PauseRecording { recording_id },
                        "resume" => O::ResumeRecording { recording_id },
                        _ => return None,
                    }
                } else if m == "DELETE" {
                    O::StopRecording {
                        recording_id: decode_segment(seg)?,
                    }
                } else {
                    O::GetRecording {
                        recording_id: decode_segment(seg)?,
                    }
                }
            }
            ["teamsUser", ":exchangeAccessToken"] => O::ExchangeTeamsUserAccessToken,
            ["access", "teamsExtension", "tenants", tenant, "assignments", object] => {
                O::PutTeamsExtensionAssignment {
                    tenant_id: decode_segment(tenant)?,
                    object_id: decode_segment(object)?,
                }
            }
            _ => return None,
        };
        (op.method() == m).then_some(op)
    }
}

/// Percent-encodes a path parameter like JavaScript's `encodeURIComponent` (keeps
/// `A–Z a–z 0–9 - _ . ! ~ * ' ( )`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes `%XX` escapes of one path segment; `None` for a bad escape, invalid UTF-8, or an
/// empty result.
pub fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    (!decoded.is_empty()).then_some(decoded)
}

/// A `Repeatability-Request-ID` (UUID v4 text) from 16 random bytes supplied by the caller.
pub fn repeatability_request_id(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    use crate::testvec::json as vector;

    /// Removes `null` members recursively: `null` and absent mean the same for optional fields.
    fn strip_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
            other => other.clone(),
        }
    }

    /// Deserializes `v` as `T`, serializes it back, and checks the JSON is the same.
    fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> T {
        let t: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{e}: {}", serde_json::to_string(v).unwrap()));
        assert_eq!(serde_json::to_value(&t).unwrap(), strip_nulls(v));
        t
    }

    #[test]
    fn answer_call_vector() {
        let v = vector("rest_answer_call_2025-06-15.json");
        let req: AnswerCallRequest = round_trip(&v["parameters"]["answerCallRequest"]);
        assert_eq!(req.callback_uri, "https://app.contoso.com/callback");
        assert_eq!(req.operation_context.as_deref(), Some("operationContext"));
        assert_eq!(req.answered_by.as_ref().unwrap().id, "+11234567890");
        let m = req.media_streaming_options.as_ref().unwrap();
        assert_eq!(m.transport_type, StreamingTransportType::Websocket);
        assert_eq!(m.audio_channel_type, MediaStreamingAudioChannelType::Mixed);
        assert_eq!(m.content_type, Some(MediaStreamingContentType::Audio));
        assert_eq!(m.audio_format, Some(AudioFormat::Pcm16KMono));
        assert_eq!(m.start_media_streaming, Some(true));
        assert_eq!(m.enable_bidirectional, Some(true));
        assert_eq!(m.enable_dtmf_tones, None);
        let t = req.transcription_options.as_ref().unwrap();
        assert_eq!(t.locale, "en-US");
        assert_eq!(t.speech_model_endpoint_id.as_deref(), Some("string"));
        assert_eq!(
            req.call_intelligence_options
                .as_ref()
                .unwrap()
                .cognitive_services_endpoint
                .as_deref(),
            Some("string")
        );
        // The example's transportUrl is "string", which a fake ACS refuses.
        assert!(req.validate().is_err());

        let resp: CallConnectionProperties = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(
            resp.call_connection_id.as_deref(),
            Some("18dea47f-b081-4107-9a5c-4300819d2c6c")
        );
        assert_eq!(
            resp.call_connection_state,
            Some(CallConnectionState::Connected)
        );
        let sub = resp.media_streaming_subscription.as_ref().unwrap();
        assert_eq!(sub.state, Some(SubscriptionState::Active));
        assert_eq!(
            sub.subscribed_content_types,
            Some(vec![MediaStreamingContentType::Audio])
        );
        assert_eq!(resp.answered_for.as_ref().unwrap().value, "+11234567890");
        assert_eq!(
            resp.targets.as_ref().unwrap()[0].to_identifier(),
            CommunicationIdentifier::communication_user(
                "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_0f50d091-5bd3-448b-884d-44be7037d9b9"
            )
        );
        assert_eq!(
            resp.source.as_ref().unwrap().kind,
            Some(super::super::identifier::IdentifierKind::CommunicationUser)
        );
    }

    #[test]
    fn create_call_vector() {
        let v = vector("rest_create_call_2025-06-15.json");
        let req: CreateCallRequest = round_trip(&v["parameters"]["createCallRequest"]);
        assert_eq!(req.targets.len(), 1);
        assert_eq!(
            req.media_streaming_options
                .as_ref()
                .unwrap()
                .enable_dtmf_tones,
            Some(true)
        );
        let resp: CallConnectionProperties = round_trip(&v["responses"]["201"]["body"]);
        assert_eq!(
            resp.transcription_subscription
                .unwrap()
                .subscribed_result_types,
            Some(vec!["final".to_owned()])
        );
    }

    #[test]
    fn reject_call_vector() {
        let v = vector("rest_reject_call_2025-06-15.json");
        let req: RejectCallRequest = round_trip(&v["parameters"]["rejectCallRequest"]);
        assert!(req.incoming_call_context.starts_with("<elided"));
        assert_eq!(req.call_reject_reason, None);
        req.validate().unwrap();
        let busy: RejectCallRequest =
            round_trip(&json!({"incomingCallContext": "c", "callRejectReason": "busy"}));
        assert_eq!(busy.call_reject_reason, Some(CallRejectReason::Busy));
        assert_eq!(
            RejectCallRequest {
                incoming_call_context: " ".into(),
                call_reject_reason: None
            }
            .validate(),
            Err(RequestError::Invalid {
                field: "incomingCallContext",
                problem: "must not be empty"
            })
        );
    }

    #[test]
    fn add_participant_vector() {
        let v = vector("rest_add_participant_2025-05-15.json");
        let req: AddParticipantRequest = round_trip(&v["parameters"]["addParticipantRequest"]);
        assert_eq!(
            req.participant_to_add.to_identifier(),
            CommunicationIdentifier::communication_user(
                "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_ae9e3307-f56e-44be-8934-80a63f080538"
            )
        );
        assert_eq!(
            req.source_caller_id_number.as_ref().unwrap().value,
            "+18440123456"
        );
        assert_eq!(
            req.operation_callback_uri.as_deref(),
            Some("https://app.contoso.com/callback")
        );
        req.validate().unwrap();
        let resp: AddParticipantResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            resp.invitation_id.as_deref(),
            Some("7b4244f8-d2ff-46d1-a629-4f9fb5f73d40")
        );
        assert_eq!(resp.participant.as_ref().unwrap().is_muted, Some(false));
        assert_eq!(resp.participant.as_ref().unwrap().is_on_hold, None);
    }

    #[test]
    fn add_participant_builders_and_validation() {
        // A Teams Phone extensibility agent and a PSTN user.
        let agent = CommunicationIdentifier::teams_extension_user("u", "t", "r");
        let mut req = AddParticipantRequest::new(&agent);
        req.invitation_timeout_in_seconds = Some(30);
        req.operation_context = Some("add-agent".into());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({
                "participantToAdd": {"kind":"teamsExtensionUser","rawId":"8:acs:r_t_u",
                    "teamsExtensionUser":{"userId":"u","tenantId":"t","resourceId":"r","cloud":"public"}},
                "invitationTimeoutInSeconds": 30,
                "operationContext": "add-agent"
            })
        );
        req.validate().unwrap();
        req.invitation_timeout_in_seconds = Some(181);
        assert!(matches!(
            req.validate(),
            Err(RequestError::Invalid {
                field: "invitationTimeoutInSeconds",
                ..
            })
        ));
        let pstn =
            AddParticipantRequest::new(&CommunicationIdentifier::phone_number("+14255550123"));
        assert_eq!(
            serde_json::to_value(&pstn).unwrap()["participantToAdd"]["rawId"],
            "4:+14255550123"
        );
        // Invalid identifier union.
        let bad: AddParticipantRequest = serde_json::from_value(json!({
            "participantToAdd": {"communicationUser": {"id": "8:acs:a"}, "phoneNumber": {"value": "+1"}}
        }))
        .unwrap();
        assert!(matches!(
            bad.validate(),
            Err(RequestError::Identifier {
                field: "participantToAdd",
                ..
            })
        ));
        // A request without its required field does not deserialize.
        assert!(
            serde_json::from_value::<AddParticipantRequest>(json!({"operationContext": "x"}))
                .is_err()
        );
    }

    #[test]
    fn transfer_vector() {
        let v = vector("rest_transfer_to_participant_2025-06-15.json");
        let req: TransferToParticipantRequest =
            round_trip(&v["parameters"]["transferToParticipantRequest"]);
        assert!(req.transferee.is_some());
        assert_eq!(req.operation_context.as_deref(), Some("trasferring call"));
        let resp: OperationContextResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(resp.operation_context.as_deref(), Some("trasferring call"));
    }

    #[test]
    fn get_call_and_participants_vectors() {
        let v = vector("rest_get_call_2025-06-15.json");
        let resp: CallConnectionProperties = round_trip(&v["responses"]["200"]["body"]);
        let targets = resp.targets.unwrap();
        assert_eq!(
            targets[1].to_identifier(),
            CommunicationIdentifier::phone_number("+14250123456")
        );
        let v = vector("rest_get_participants_2025-06-15.json");
        let resp: GetParticipantsResponse = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(resp.value.len(), 1);
        assert_eq!(resp.value[0].is_muted, Some(true));
        assert_eq!(resp.next_link.as_deref(), Some("string"));
    }

    /// The 2026-03-12 examples (the version the SDKs 1.6.0 send) of the operations the operator
    /// API reaches: each request body round-trips through its type and validates.
    #[test]
    fn vectors_2026_03_12() {
        let acs_user = super::super::identifier::parse_raw_id(
            "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_da7be3a9-8788-42a6-85c6-56b2cf784fce",
        );
        let v = vector("rest_hold_2026-03-12.json");
        assert_eq!(v["parameters"]["api-version"], CALL_AUTOMATION_API_VERSION);
        let req: HoldRequest = round_trip(&v["parameters"]["holdRequest"]);
        req.validate().unwrap();
        assert_eq!(
            req.play_source_info,
            Some(PlaySource::file("https://some.file.azure.com/sample.wav"))
        );
        assert!(v["responses"]["200"].as_object().unwrap().is_empty());
        let v = vector("rest_unhold_2026-03-12.json");
        let req: UnholdRequest = round_trip(&v["parameters"]["unholdRequest"]);
        identifier("targetParticipant", &req.target_participant).unwrap();

        let v = vector("rest_send_dtmf_tones_2026-03-12.json");
        let req: SendDtmfTonesRequest = round_trip(&v["parameters"]["sendDtmfTonesRequest"]);
        req.validate().unwrap();
        assert_eq!(req.tones, vec![DtmfTone::Zero]);
        assert_eq!(req.target_participant.to_identifier(), acs_user);
        let resp: OperationContextResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(resp.operation_context, req.operation_context);

        for name in [
            "rest_start_continuous_dtmf_recognition_2026-03-12.json",
            "rest_stop_continuous_dtmf_recognition_2026-03-12.json",
        ] {
            let v = vector(name);
            let req: ContinuousDtmfRecognitionRequest =
                round_trip(&v["parameters"]["continuousDtmfRecognitionRequest"]);
            assert_eq!(req.target_participant.to_identifier(), acs_user, "{name}");
        }

        let v = vector("rest_mute_2026-03-12.json");
        let req: MuteParticipantsRequest = round_trip(&v["parameters"]["muteParticipantsRequest"]);
        assert_eq!(req.target_participants[0].to_identifier(), acs_user);
        let _: OperationContextResponse = round_trip(&v["responses"]["200"]["body"]);

        let v = vector("rest_cancel_add_participant_2026-03-12.json");
        let req: CancelAddParticipantRequest =
            round_trip(&v["parameters"]["cancelAddParticipantRequest"]);
        let resp: CancelAddParticipantResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            resp.invitation_id.as_deref(),
            Some(req.invitation_id.as_str())
        );
    }

    #[test]
    fn dtmf_tones_and_play_sources() {
        let keys = "0123456789ABCD#*";
        let tones: Vec<DtmfTone> = keys
            .chars()
            .map(|c| DtmfTone::from_key(c).unwrap())
            .collect();
        assert_eq!(
            serde_json::to_string(&tones[10..]).unwrap(),
            r#"["a","b","c","d","pound","asterisk"]"#
        );
        let back: String = tones.iter().map(|t| t.key().unwrap()).collect();
        assert_eq!(back, keys);
        assert_eq!(DtmfTone::from_key('b'), Some(DtmfTone::B));
        assert_eq!(DtmfTone::from_key('x'), None);
        assert_eq!(DtmfTone::parse("hash").key(), None);

        let target: CommunicationIdentifierModel =
            (&CommunicationIdentifier::phone_number("+14255550123")).into();
        let mut req = SendDtmfTonesRequest {
            tones: vec![DtmfTone::One; MAX_DTMF_TONES],
            target_participant: target.clone(),
            operation_context: None,
            operation_callback_uri: None,
        };
        req.validate().unwrap();
        req.tones.push(DtmfTone::Two);
        assert!(req.validate().is_err(), "19 tones");
        req.tones.clear();
        assert!(req.validate().is_err(), "no tones");
        req.tones = vec![DtmfTone::Other("hash".into())];
        assert!(req.validate().is_err(), "unknown tone");

        let mut hold = HoldRequest {
            target_participant: target,
            play_source_info: Some(PlaySource::file("ftp://x/y.wav")),
            operation_context: None,
            operation_callback_uri: None,
        };
        assert!(hold.validate().is_err(), "file uri must be http(s)");
        hold.play_source_info = Some(PlaySource {
            file: None,
            ..PlaySource::file("https://x/y.wav")
        });
        assert!(hold.validate().is_err(), "file kind without file");
        hold.play_source_info = None;
        hold.validate().unwrap();
        assert_eq!(
            serde_json::to_value(&hold).unwrap(),
            serde_json::json!({"targetParticipant": {"kind": "phoneNumber", "rawId": "4:+14255550123", "phoneNumber": {"value": "+14255550123"}}})
        );
    }

    #[test]
    fn media_streaming_vectors() {
        let v = vector("rest_start_media_streaming_2025-05-15.json");
        let req: StartMediaStreamingRequest =
            round_trip(&v["parameters"]["startMediaStreamingRequest"]);
        assert_eq!(req, StartMediaStreamingRequest::default());
        assert_eq!(serde_json::to_string(&req).unwrap(), "{}");
        let v = vector("rest_stop_media_streaming_2025-06-15.json");
        let req: StopMediaStreamingRequest =
            round_trip(&v["parameters"]["stopMediaStreamingRequest"]);
        assert_eq!(req, StopMediaStreamingRequest::default());
        let with: StartMediaStreamingRequest =
            round_trip(&json!({"operationContext": "ctx", "operationCallbackUri": "https://x/cb"}));
        assert_eq!(with.operation_context.as_deref(), Some("ctx"));
    }

    #[test]
    fn start_recording_vectors() {
        let v = vector("rest_start_recording_call_connection_id_2025-08-15-preview.json");
        let req: StartCallRecordingRequest = round_trip(&v["parameters"]["startCallRecording"]);
        assert_eq!(
            req.call_connection_id.as_deref(),
            Some("0400a480-ab14-4f1a-bce6-9041d4e55959")
        );
        assert_eq!(req.call_locator, None);
        assert_eq!(req.recording_content_type, None);
        assert_eq!(req.pause_on_start, Some(false));
        req.validate().unwrap();
        let r200: RecordingStateResponse = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(r200.recording_state, Some(RecordingState::Inactive));
        assert_eq!(r200.recording_kind, Some(RecordingKind::TeamsCompliance));
        let r202: RecordingStateResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            r202.recording_kind,
            Some(RecordingKind::AzureCommunicationServices)
        );

        let v = vector("rest_start_recording_call_locator_2025-05-15.json");
        let req: StartCallRecordingRequest = round_trip(&v["parameters"]["startCallRecording"]);
        let loc = req.call_locator.as_ref().unwrap();
        assert_eq!(loc.kind, Some(CallLocatorKind::ServerCallLocator));
        assert!(loc
            .server_call_id
            .as_deref()
            .unwrap()
            .starts_with("aHR0cHM6"));
        assert_eq!(
            req.external_storage
                .as_ref()
                .unwrap()
                .recording_storage_kind,
            RecordingStorageKind::AzureBlobStorage
        );
        req.validate().unwrap();
        round_trip::<RecordingStateResponse>(&v["responses"]["200"]["body"]);

        // §11 shape: by call connection id, audio, unmixed, wav.
        let ours = StartCallRecordingRequest {
            call_connection_id: Some("c1".into()),
            recording_content_type: Some(RecordingContentType::Audio),
            recording_channel_type: Some(RecordingChannelType::Unmixed),
            recording_format_type: Some(RecordingFormatType::Wav),
            recording_state_callback_uri: Some("https://gw/callbacks/t".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&ours).unwrap(),
            json!({"callConnectionId":"c1","recordingStateCallbackUri":"https://gw/callbacks/t",
                   "recordingContentType":"audio","recordingChannelType":"unmixed","recordingFormatType":"wav"})
        );
        ours.validate().unwrap();
        let both = StartCallRecordingRequest {
            call_locator: Some(CallLocator::default()),
            ..ours.clone()
        };
        assert!(both.validate().is_err());
        assert!(StartCallRecordingRequest::default().validate().is_err());
        let bad_channel: StartCallRecordingRequest = serde_json::from_value(json!({
            "callConnectionId": "c1",
            "channelAffinity": [{"channel": 5, "participant": {"rawId": "4:+1"}}]
        }))
        .unwrap();
        assert!(bad_channel.validate().is_err());
    }

    #[test]
    fn media_streaming_options_shape_and_casing() {
        let opts = MediaStreamingOptions {
            start_media_streaming: Some(true),
            enable_bidirectional: Some(true),
            audio_format: Some(AudioFormat::Pcm24KMono),
            enable_dtmf_tones: Some(true),
            ..MediaStreamingOptions::websocket(
                "wss://host/ws/tok",
                MediaStreamingAudioChannelType::Mixed,
            )
        };
        // Exactly the §4.3 example.
        assert_eq!(
            serde_json::to_value(&opts).unwrap(),
            json!({"transportType":"websocket","transportUrl":"wss://host/ws/tok",
                   "contentType":"audio","audioChannelType":"mixed","startMediaStreaming":true,
                   "enableBidirectional":true,"audioFormat":"pcm24KMono","enableDtmfTones":true})
        );
        opts.validate().unwrap();
        // JS docs spell "Pcm24KMono"; the 2025-05-15 example adds "kind". Both are accepted.
        let v: MediaStreamingOptions = serde_json::from_value(json!({
            "kind": "websocket", "transportType": "WebSocket", "transportUrl": "wss://h/ws",
            "audioChannelType": "Unmixed", "audioFormat": "Pcm24KMono", "contentType": "Audio"
        }))
        .unwrap();
        assert_eq!(v.transport_type, StreamingTransportType::Websocket);
        assert_eq!(
            v.audio_channel_type,
            MediaStreamingAudioChannelType::Unmixed
        );
        assert_eq!(v.audio_format.as_ref().unwrap().sample_rate(), Some(24_000));
        assert_eq!(v.content_type, Some(MediaStreamingContentType::Audio));
        // Unknown enum values are kept.
        let v: MediaStreamingOptions = serde_json::from_value(json!({
            "transportType": "quic", "audioChannelType": "mixed", "audioFormat": "opus48K"
        }))
        .unwrap();
        assert_eq!(
            v.transport_type,
            StreamingTransportType::Other("quic".into())
        );
        assert_eq!(v.audio_format.as_ref().unwrap().sample_rate(), None);
        assert_eq!(serde_json::to_value(&v).unwrap()["audioFormat"], "opus48K");
        assert!(v.validate().is_err()); // no transportUrl
                                        // Missing the required channel type.
        assert!(serde_json::from_value::<MediaStreamingOptions>(
            json!({"transportType": "websocket"})
        )
        .is_err());
        let http =
            MediaStreamingOptions::websocket("https://h/ws", MediaStreamingAudioChannelType::Mixed);
        assert!(http.validate().is_err());
    }

    #[test]
    fn answer_request_builder_and_validation() {
        let mut req = AnswerCallRequest::new("ctx", "https://gw.example/callbacks/tok");
        req.media_streaming_options = Some(MediaStreamingOptions::websocket(
            "wss://gw.example/ws/tok",
            MediaStreamingAudioChannelType::Unmixed,
        ));
        req.validate().unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["incomingCallContext"], "ctx");
        assert!(v.get("operationContext").is_none());
        let back: AnswerCallRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
        req.callback_uri = "ftp://x".into();
        assert!(req.validate().is_err());
        assert!(
            serde_json::from_value::<AnswerCallRequest>(json!({"incomingCallContext": "c"}))
                .is_err()
        );
    }

    #[test]
    fn transcription_alias() {
        let t: TranscriptionOptions = serde_json::from_value(json!({
            "transportType": "websocket", "locale": "en-US",
            "speechRecognitionModelEndpointId": "m1"
        }))
        .unwrap();
        assert_eq!(t.speech_model_endpoint_id.as_deref(), Some("m1"));
        assert_eq!(
            serde_json::to_value(&t).unwrap()["speechModelEndpointId"],
            "m1"
        );
    }

    #[test]
    fn acs_error_body() {
        let body = br#"{"error":{"code":"8523","message":"Invalid request.","target":"callbackUri",
            "details":[{"code":"x","message":"y"}],
            "innererror":{"code":"8501","message":"Action is not valid when call is not in Established state."}}}"#;
        let e = AcsError::from_body(body).unwrap();
        assert_eq!(e.code, "8523");
        assert_eq!(e.message, "Invalid request.");
        assert_eq!(e.target.as_deref(), Some("callbackUri"));
        assert_eq!(e.details.as_ref().unwrap()[0].code, "x");
        assert_eq!(e.inner_error.as_ref().unwrap().code, "8501");
        assert_eq!(e.to_string(), "ACS error 8523: Invalid request.");
        let again = AcsError::from_body(&e.to_body()).unwrap();
        assert_eq!(again, e);
        // §11 token exchange 401 body.
        let e = AcsError::from_body(
            br#"{"error":{"code":"InvalidAccessToken","message":"Provided access token is not valid."}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "InvalidAccessToken");
        assert!(e.inner_error.is_none());
        // Not an ACS error body.
        assert_eq!(AcsError::from_body(b"<html>502</html>"), None);
        assert_eq!(AcsError::from_body(br#"{"message":"x"}"#), None);
        // Numeric code is a type error → not an ACS error body.
        assert_eq!(
            AcsError::from_body(br#"{"error":{"code":1,"message":"x"}}"#),
            None
        );

        let stale = AcsError {
            inner_error: Some(Box::new(AcsError::new(
                "401",
                "Lifetime validation of the signed http request failed.",
            ))),
            ..AcsError::new("8523", "Invalid request.")
        };
        assert!(stale.is_stale_incoming_call());
        assert!(!AcsError::new("8523", "Invalid request.").is_stale_incoming_call());

        let re = RequestError::Invalid {
            field: "callbackUri",
            problem: "must be an http(s):// URL",
        }
        .to_acs_error();
        assert_eq!(re.code, "BadRequest");
        assert_eq!(re.target.as_deref(), Some("callbackUri"));
        assert_eq!(re.message, "callbackUri must be an http(s):// URL");
    }

    #[test]
    fn teams_extension_assignment_vector() {
        let v = vector("teams_extension_assignment_request_response.json");
        let req: TeamsExtensionAssignmentRequest = round_trip(&v["request"]["body"]);
        assert_eq!(
            req.principal_type,
            TeamsExtensionPrincipalType::TeamsResourceAccount
        );
        let resp: TeamsExtensionAssignment = round_trip(&v["response"]["body"]);
        assert_eq!(resp.object_id, "e5b7f628-ea94-4fdc-b3d9-1af1fe231111");
        assert_eq!(resp.tenant_id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
        assert_eq!(v["response"]["status"], 201);
        // The vector's path is the operation's path.
        let op = AcsOperation::PutTeamsExtensionAssignment {
            tenant_id: resp.tenant_id.clone(),
            object_id: resp.object_id.clone(),
        };
        let path = v["request"]["path"].as_str().unwrap();
        assert_eq!(path, format!("{{endpoint}}{}", op.path_and_query()));
        assert_eq!(v["request"]["method"], op.method());
        assert_eq!(op.success_statuses()[0], 201);
        assert_eq!(
            AcsOperation::parse("PUT", path.strip_prefix("{endpoint}").unwrap()),
            Some(op)
        );
    }

    #[test]
    fn teams_token_exchange_and_graph_shapes() {
        let req: TeamsUserExchangeTokenRequest =
            round_trip(&json!({"token": "eyJ0", "appId": "app", "userId": "user"}));
        assert_eq!(req.app_id, "app");
        let resp: CommunicationIdentityAccessToken =
            round_trip(&json!({"token": "acs", "expiresOn": "2025-07-01T13:00:00Z"}));
        assert_eq!(resp.expires_on, "2025-07-01T13:00:00Z");
        assert_eq!(
            AcsOperation::ExchangeTeamsUserAccessToken.path_and_query(),
            "/teamsUser/:exchangeAccessToken?api-version=2023-10-01"
        );

        let list: ResourceAccountList = round_trip(&json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#admin/teams/resourceAccounts",
            "value": [{"id": "cc123456-5678-5678-1234-ccc123456789", "userPrincipalName": "ivr@contoso.com",
                       "appId": "ce933385-9390-45d1-9512-c8d228074e07", "displayName": "IVR",
                       "phoneNumber": "tel:+1234567890", "acsResourceId": "r1"}]
        }));
        let acct = &list.value[0];
        assert_eq!(acct.e164(), Some("+1234567890"));
        assert_eq!(
            acct.identifier().raw_id(),
            "28:orgid:cc123456-5678-5678-1234-ccc123456789"
        );
    }

    fn sample_ops() -> Vec<AcsOperation> {
        use AcsOperation as O;
        let id = || "18dea47f-b081-4107-9a5c-4300819d2c6c".to_owned();
        let mut ops = vec![
            O::CreateCall,
            O::AnswerCall,
            O::RedirectCall,
            O::RejectCall,
            O::ConnectCall,
            O::GetCall {
                call_connection_id: id(),
            },
            O::HangUpCall {
                call_connection_id: id(),
            },
            O::GetParticipants {
                call_connection_id: id(),
            },
            O::GetParticipant {
                call_connection_id: id(),
                participant_raw_id: "8:acs:r_u".into(),
            },
            O::StartRecording,
            O::GetRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::StopRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::PauseRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::ResumeRecording {
                recording_id: "r".into(),
            },
            O::ExchangeTeamsUserAccessToken,
            O::PutTeamsExtensionAssignment {
                tenant_id: "t".into(),
                object_id: "o".into(),
            },
        ];
        for (_, make) in CALL_ACTIONS.iter().chain(PARTICIPANT_ACTIONS) {
            ops.push(make(id()));
        }
        ops
    }

    #[test]
    fn operation_table() {
        use AcsOperation as O;
        let id = "18dea47f-b081-4107-9a5c-4300819d2c6c".to_owned();
        let cases: Vec<(AcsOperation, &str, &str, bool, u16)> = vec![
            (O::CreateCall, "POST", "/calling/callConnections", true, 201),
            (O::AnswerCall, "POST", "/calling/callConnections:answer", true, 200),
            (O::RedirectCall, "POST", "/calling/callConnections:redirect", true, 204),
            (O::RejectCall, "POST", "/calling/callConnections:reject", true, 204),
            (O::ConnectCall, "POST", "/calling/callConnections:connect", true, 200),
            (
                O::GetCall { call_connection_id: id.clone() },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c",
                false,
                200,
            ),
            (
                O::HangUpCall { call_connection_id: id.clone() },
                "DELETE",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c",
                false,
                204,
            ),
            (
                O::TerminateCall { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:terminate",
                true,
                204,
            ),
            (
                O::TransferToParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:transferToParticipant",
                true,
                202,
            ),
            (
                O::StartMediaStreaming { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:startMediaStreaming",
                false,
                202,
            ),
            (
                O::StopMediaStreaming { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:stopMediaStreaming",
                false,
                202,
            ),
            (
                O::GetParticipants { call_connection_id: id.clone() },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants",
                false,
                200,
            ),
            (
                O::AddParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:add",
                true,
                202,
            ),
            (
                O::RemoveParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:remove",
                true,
                202,
            ),
            (
                O::MuteParticipants { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:mute",
                true,
                200,
            ),
            (
                O::CancelAddParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:cancelAddParticipant",
                true,
                202,
            ),
            (
                O::GetParticipant {
                    call_connection_id: id.clone(),
                    participant_raw_id: "8:acs:r_u".into(),
                },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants/8%3Aacs%3Ar_u",
                false,
                200,
            ),
            (
                O::SendDtmfTones { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:sendDtmfTones",
                true,
                202,
            ),
            (
                O::Hold { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:hold",
                false,
                200,
            ),
            (O::StartRecording, "POST", "/calling/recordings", true, 200),
            (
                O::StopRecording { recording_id: "eyJQ+/a==".into() },
                "DELETE",
                "/calling/recordings/eyJQ%2B%2Fa%3D%3D",
                false,
                204,
            ),
            (
                O::PauseRecording { recording_id: "r1".into() },
                "POST",
                "/calling/recordings/r1:pause",
                false,
                202,
            ),
        ];
        for (op, method, path, repeat, status) in cases {
            assert_eq!(op.method(), method, "{op:?}");
            assert_eq!(op.path(), path, "{op:?}");
            assert_eq!(op.needs_repeatability(), repeat, "{op:?}");
            assert_eq!(op.success_statuses()[0], status, "{op:?}");
            assert_eq!(
                op.path_and_query(),
                format!("{path}?api-version=2026-03-12")
            );
        }
        assert_eq!(AcsOperation::StartRecording.success_statuses(), &[200, 202]);
    }

    #[test]
    fn every_operation_routes_back_and_has_a_unique_name() {
        let ops = sample_ops();
        let mut names = std::collections::HashSet::new();
        for op in &ops {
            assert!(names.insert(op.name()), "duplicate name {}", op.name());
            assert!(op
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(
                AcsOperation::parse(op.method(), &op.path_and_query()).as_ref(),
                Some(op),
                "{}",
                op.path()
            );
            assert_eq!(
                AcsOperation::parse(&op.method().to_ascii_lowercase(), &op.path()).as_ref(),
                Some(op)
            );
            // Wrong method → no route.
            let wrong = if op.method() == "PATCH" {
                "GET"
            } else {
                "PATCH"
            };
            assert_eq!(AcsOperation::parse(wrong, &op.path()), None);
        }
        assert_eq!(ops.len(), 35);
    }

    #[test]
    fn parse_refuses_unknown_routes() {
        for (m, p) in [
            ("POST", "/calling/callConnections:explode"),
            ("POST", "/calling/callConnections/abc:explode"),
            ("POST", "/calling/callConnections/abc"),
            ("POST", "/calling/callConnections/abc/participants:explode"),
            ("GET", "/calling/callConnections/%ZZ"),
            ("GET", "/calling/callConnections/%FF"),
            ("GET", "/calling/callConnections/"),
            ("GET", "/"),
            ("GET", ""),
            ("GET", "calling/callConnections/abc"),
            ("GET", "/calling/callConnections/a/b/c/d"),
            ("POST", "/calling/recordings/r:explode"),
            ("GET", "/other"),
        ] {
            assert_eq!(AcsOperation::parse(m, p), None, "{m} {p}");
        }
        // Unencoded ids and trailing slashes are tolerated.
        assert_eq!(
            AcsOperation::parse("GET", "/calling/callConnections/abc/?api-version=x"),
            Some(AcsOperation::GetCall {
                call_connection_id: "abc".into()
            })
        );
    }

    #[test]
    fn segment_encoding() {
        assert_eq!(encode_segment("8:acs:a_b"), "8%3Aacs%3Aa_b");
        assert_eq!(encode_segment("a/b+c=é"), "a%2Fb%2Bc%3D%C3%A9");
        assert_eq!(encode_segment("-_.!~*'()"), "-_.!~*'()");
        for s in ["8:acs:a_b", "a/b+c=é ?#%", "🦀", "plain"] {
            assert_eq!(decode_segment(&encode_segment(s)).as_deref(), Some(s));
        }
        assert_eq!(decode_segment("%"), None);
        assert_eq!(decode_segment("%4"), None);
        assert_eq!(decode_segment("%C3"), None);
        assert_eq!(decode_segment("%é1"), None);
        assert_eq!(decode_segment(""), None);
    }

    #[test]
    fn repeatability_ids_are_uuid_v4() {
        let id = repeatability_request_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = repeatability_request_id([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
        assert_eq!(id.len(), 36);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let req: RemoveParticipantRequest = serde_json::from_value(json!({
            "participantToRemove": {"rawId": "4:+1", "phoneNumber": {"value": "+1"}},
            "futureField": {"x": 1}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"participantToRemove": {"rawId": "4:+1", "phoneNumber": {"value": "+1"}}})
        );
    }
}
