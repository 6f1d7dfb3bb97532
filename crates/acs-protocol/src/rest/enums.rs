//! The REST bodies' string enums and the options shared by answer and create (media streaming,
//! transcription).

#[allow(unused_imports)]
use super::*;

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
pub(super) const DTMF_KEYS: &[(char, DtmfTone)] = &[
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
