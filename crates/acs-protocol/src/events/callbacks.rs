//! Call Automation callbacks: [`CallbackKind`], the callback data types and [`parse_callbacks`].

#[allow(unused_imports)]
use super::*;

macro_rules! callback_kinds {
    ( $( $(#[$m:meta])* $v:ident ),+ $(,)? ) => {
        /// The event of a Call Automation callback (`type` = `Microsoft.Communication.<Name>`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum CallbackKind {
            $( $(#[$m])* $v, )+
            /// Any other event; the name after the prefix (or the whole type without one).
            Unknown(String),
        }

        impl CallbackKind {
            /// Every known kind, in declaration order.
            pub const KNOWN: &'static [CallbackKind] = &[ $( CallbackKind::$v, )+ ];

            /// The event name, e.g. `CallConnected`.
            pub fn name(&self) -> &str {
                match self {
                    $( CallbackKind::$v => stringify!($v), )+
                    CallbackKind::Unknown(s) => s,
                }
            }

            /// Kind from a name (`CallConnected`, or the 2022 `data.type` `callConnected`),
            /// ASCII-case-insensitively.
            pub fn from_name(name: &str) -> Self {
                $( if name.eq_ignore_ascii_case(stringify!($v)) { return CallbackKind::$v; } )+
                CallbackKind::Unknown(name.to_owned())
            }
        }
    };
}

callback_kinds! {
    /// The call is established.
    CallConnected,
    /// The call ended (for this connection).
    CallDisconnected,
    /// A transfer was accepted.
    CallTransferAccepted,
    /// A transfer failed.
    CallTransferFailed,
    /// The participant list changed (`participants`, `sequenceNumber`).
    ParticipantsUpdated,
    /// Add participant succeeded (`participant`).
    AddParticipantSucceeded,
    /// Add participant failed (`participant`).
    AddParticipantFailed,
    /// Remove participant succeeded (`participant`).
    RemoveParticipantSucceeded,
    /// Remove participant failed (`participant`).
    RemoveParticipantFailed,
    /// Cancel add participant succeeded (`invitationId`).
    CancelAddParticipantSucceeded,
    /// Cancel add participant failed (`invitationId`).
    CancelAddParticipantFailed,
    /// Answer failed.
    AnswerFailed,
    /// Create call failed.
    CreateCallFailed,
    /// Connect failed.
    ConnectFailed,
    /// Recording state changed (`recordingId`, `state`, `startDateTime`, `recordingKind`).
    RecordingStateChanged,
    /// Start recording failed (`recordingId`).
    StartRecordingFailed,
    /// Teams recording state changed.
    TeamsRecordingStateChanged,
    /// Teams compliance recording state changed.
    TeamsComplianceRecordingStateChanged,
    /// Play started.
    PlayStarted,
    /// Play completed.
    PlayCompleted,
    /// Play failed (`failedPlaySourceIndex`).
    PlayFailed,
    /// Play canceled.
    PlayCanceled,
    /// Play paused.
    PlayPaused,
    /// Play resumed.
    PlayResumed,
    /// Recognize completed (results in `extra`).
    RecognizeCompleted,
    /// Recognize failed.
    RecognizeFailed,
    /// Recognize canceled.
    RecognizeCanceled,
    /// A continuous DTMF tone (`sequenceId`, `tone` in `extra`).
    ContinuousDtmfRecognitionToneReceived,
    /// Continuous DTMF recognition failed.
    ContinuousDtmfRecognitionToneFailed,
    /// Continuous DTMF recognition stopped.
    ContinuousDtmfRecognitionStopped,
    /// Send DTMF completed.
    SendDtmfTonesCompleted,
    /// Send DTMF failed.
    SendDtmfTonesFailed,
    /// Hold failed.
    HoldFailed,
    /// Hold audio started.
    HoldAudioStarted,
    /// Hold audio paused.
    HoldAudioPaused,
    /// Hold audio resumed.
    HoldAudioResumed,
    /// Hold audio completed.
    HoldAudioCompleted,
    /// Media streaming started (`mediaStreamingUpdate`).
    MediaStreamingStarted,
    /// Media streaming stopped (`mediaStreamingUpdate`).
    MediaStreamingStopped,
    /// Media streaming failed (`mediaStreamingUpdate`, `resultInformation`).
    MediaStreamingFailed,
    /// Transcription started.
    TranscriptionStarted,
    /// Transcription stopped.
    TranscriptionStopped,
    /// Transcription updated.
    TranscriptionUpdated,
    /// Transcription failed.
    TranscriptionFailed,
}

impl CallbackKind {
    /// Kind from a CloudEvent `type` (`Microsoft.Communication.<Name>`; the prefix is matched
    /// case-insensitively, and a type without it is read as a bare name).
    pub fn from_type(event_type: &str) -> Self {
        let p = CALLBACK_TYPE_PREFIX.len();
        let name = if event_type.len() >= p
            && event_type.is_char_boundary(p)
            && event_type[..p].eq_ignore_ascii_case(CALLBACK_TYPE_PREFIX)
        {
            &event_type[p..]
        } else {
            event_type
        };
        CallbackKind::from_name(name)
    }

    /// The full CloudEvent `type`, `Microsoft.Communication.<Name>`.
    pub fn event_type(&self) -> String {
        format!("{CALLBACK_TYPE_PREFIX}{}", self.name())
    }
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

string_enum! {
    /// `mediaStreamingUpdate.mediaStreamingStatus`.
    pub enum MediaStreamingStatus {
        /// `mediaStreamingStarted`.
        MediaStreamingStarted = "mediaStreamingStarted",
        /// `mediaStreamingFailed`.
        MediaStreamingFailed = "mediaStreamingFailed",
        /// `mediaStreamingStopped`.
        MediaStreamingStopped = "mediaStreamingStopped",
        /// `unspecifiedError`.
        UnspecifiedError = "unspecifiedError",
    }
}

string_enum! {
    /// `mediaStreamingUpdate.mediaStreamingStatusDetails`.
    pub enum MediaStreamingStatusDetails {
        /// `subscriptionStarted`.
        SubscriptionStarted = "subscriptionStarted",
        /// `streamConnectionReestablished`.
        StreamConnectionReestablished = "streamConnectionReestablished",
        /// `streamConnectionUnsuccessful`: ACS could not connect to `transportUrl`.
        StreamConnectionUnsuccessful = "streamConnectionUnsuccessful",
        /// `streamUrlMissing`.
        StreamUrlMissing = "streamUrlMissing",
        /// `serviceShutdown`.
        ServiceShutdown = "serviceShutdown",
        /// `streamConnectionInterrupted`.
        StreamConnectionInterrupted = "streamConnectionInterrupted",
        /// `speechServicesConnectionError`.
        SpeechServicesConnectionError = "speechServicesConnectionError",
        /// `subscriptionStopped`.
        SubscriptionStopped = "subscriptionStopped",
        /// `unspecifiedError`.
        UnspecifiedError = "unspecifiedError",
        /// `authenticationFailure`.
        AuthenticationFailure = "authenticationFailure",
        /// `badRequest`.
        BadRequest = "badRequest",
        /// `tooManyRequests`.
        TooManyRequests = "tooManyRequests",
        /// `forbidden`.
        Forbidden = "forbidden",
        /// `serviceTimeout`.
        ServiceTimeout = "serviceTimeout",
        /// `initialWebSocketConnectionFailed`.
        InitialWebSocketConnectionFailed = "initialWebSocketConnectionFailed",
    }
}

/// `data.resultInformation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInformation {
    /// HTTP-like code (200, 400, 500 …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// ACS sub-code (e.g. 8603, 8581).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<i32>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `data.mediaStreamingUpdate` of `MediaStreaming*` events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStreamingUpdate {
    /// Content type as sent: the service sends `Audio`, the spec says `audio`; kept verbatim,
    /// compare with [`is_audio`](Self::is_audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_status: Option<MediaStreamingStatus>,
    /// Status details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_status_details: Option<MediaStreamingStatusDetails>,
}

impl MediaStreamingUpdate {
    /// Whether `contentType` is audio (any casing).
    pub fn is_audio(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("audio"))
    }
}

/// `data.transcriptionUpdate` of `Transcription*` events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionUpdate {
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_status: Option<String>,
    /// Status details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_status_details: Option<String>,
}

/// Declares the typed `data` fields once: the private wire struct and the public
/// [`CallbackEvent`] get the same list.
macro_rules! callback_data {
    ( $( $(#[$m:meta])* $field:ident $(as $wire:literal)? : $ty:ty, )+ ) => {
        /// The wire `data` object of a callback.
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct CallbackData {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                $( #[serde(rename = $wire)] )?
                $field: $ty,
            )+
            #[serde(flatten)]
            extra: Map<String, Value>,
        }

        /// One Call Automation callback event (§8), typed. The envelope fields come from the
        /// CloudEvent; the others from its `data` (absent = `None`).
        #[derive(Debug, Clone, PartialEq)]
        pub struct CallbackEvent {
            /// The event kind, from `type`.
            pub kind: CallbackKind,
            /// The CloudEvent `type` as sent.
            pub raw_type: String,
            /// Event id (dedupe key).
            pub id: String,
            /// CloudEvent `source` (`calling/callConnections/{id}`, or
            /// `calling/recordings/{serverCallId}/recordingId/{recordingId}`; 2022 events append
            /// `/<EventName>`).
            pub source: String,
            /// CloudEvent `subject`.
            pub subject: Option<String>,
            /// CloudEvent `time`.
            pub time: Option<String>,
            $( $(#[$m])* pub $field: $ty, )+
            /// Every other `data` member (e.g. 2022 `type`, recognize results, DTMF tones).
            pub extra: Map<String, Value>,
        }

        impl CallbackEvent {
            fn from_parts(
                kind: CallbackKind,
                raw_type: String,
                id: String,
                source: String,
                subject: Option<String>,
                time: Option<String>,
                data: CallbackData,
            ) -> Self {
                CallbackEvent {
                    kind, raw_type, id, source, subject, time,
                    $( $field: data.$field, )+
                    extra: data.extra,
                }
            }

            fn data(&self) -> CallbackData {
                CallbackData {
                    $( $field: self.$field.clone(), )+
                    extra: self.extra.clone(),
                }
            }
        }
    };
}

callback_data! {
    /// `callConnectionId` (falls back to the id in a `calling/callConnections/{id}` source).
    call_connection_id: Option<String>,
    /// `serverCallId`.
    server_call_id: Option<String>,
    /// `correlationId`.
    correlation_id: Option<String>,
    /// `operationContext` as given to the operation.
    operation_context: Option<String>,
    /// `resultInformation`.
    result_information: Option<ResultInformation>,
    /// `mediaStreamingUpdate` (MediaStreaming* events).
    media_streaming_update: Option<MediaStreamingUpdate>,
    /// `transcriptionUpdate` (Transcription* events).
    transcription_update: Option<TranscriptionUpdate>,
    /// `participants` (ParticipantsUpdated).
    participants: Option<Vec<CallParticipant>>,
    /// `sequenceNumber` (ParticipantsUpdated).
    sequence_number: Option<i64>,
    /// `participant` (add / remove participant events).
    participant: Option<CommunicationIdentifierModel>,
    /// `invitationId` (add / cancel add participant events).
    invitation_id: Option<String>,
    /// `transferTarget` (CallTransfer* events).
    transfer_target: Option<CommunicationIdentifierModel>,
    /// `transferee` (CallTransfer* events).
    transferee: Option<CommunicationIdentifierModel>,
    /// `recordingId` (recording events).
    recording_id: Option<String>,
    /// `state` (RecordingStateChanged).
    recording_state as "state": Option<RecordingState>,
    /// `recordingKind` (RecordingStateChanged).
    recording_kind: Option<RecordingKind>,
    /// `startDateTime` (RecordingStateChanged).
    start_date_time: Option<String>,
    /// `failedPlaySourceIndex` (PlayFailed).
    failed_play_source_index: Option<i32>,
    /// `version`: the API version of the event (newer events).
    version: Option<String>,
    /// `eventSource` (newer events).
    event_source: Option<String>,
    /// `publicEventType` (newer events).
    public_event_type: Option<String>,
}

/// `calling/callConnections/{id}[/…]` → `id`.
pub(super) fn call_connection_id_from_source(source: &str) -> Option<String> {
    let rest = source.strip_prefix("calling/callConnections/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

impl CallbackEvent {
    /// A callback for `call_connection_id` in the 2024 envelope shape (`source` and `subject`
    /// `calling/callConnections/{id}`), every `data` field `None`; set the rest with struct
    /// update syntax. For the simulator's fake ACS.
    pub fn new(kind: CallbackKind, id: impl Into<String>, call_connection_id: &str) -> Self {
        let source = format!("calling/callConnections/{call_connection_id}");
        let mut e = CallbackEvent::from_parts(
            kind.clone(),
            kind.event_type(),
            id.into(),
            source.clone(),
            Some(source),
            None,
            CallbackData::default(),
        );
        e.call_connection_id = Some(call_connection_id.to_owned());
        e
    }

    /// Whether `resultInformation.code` is 2xx (`None` when there is no code).
    pub fn succeeded(&self) -> Option<bool> {
        self.result_information
            .as_ref()
            .and_then(|r| r.code)
            .map(|c| (200..300).contains(&c))
    }

    /// Reads one CloudEvent.
    fn from_value(index: usize, item: Value) -> Result<Self, EventError> {
        if !item.is_object() {
            return Err(EventError::NotAnEvent { index });
        }
        let ce: CloudEvent =
            serde_json::from_value(item).map_err(|e| EventError::InvalidEnvelope {
                index,
                message: bounded(e),
            })?;
        let kind = CallbackKind::from_type(&ce.event_type);
        let invalid = |message: String| EventError::InvalidData {
            index,
            event_type: bounded(&ce.event_type),
            message,
        };
        let data: CallbackData = match ce.data {
            Value::Null => CallbackData::default(),
            d @ Value::Object(_) => serde_json::from_value(d).map_err(|e| invalid(bounded(e)))?,
            _ => return Err(invalid("data is not an object".to_owned())),
        };
        let mut event = CallbackEvent::from_parts(
            kind,
            ce.event_type,
            ce.id,
            ce.source,
            ce.subject,
            ce.time,
            data,
        );
        if event.call_connection_id.is_none() {
            event.call_connection_id = call_connection_id_from_source(&event.source);
        }
        Ok(event)
    }

    /// The CloudEvent for this callback (`specversion` `1.0`, `datacontenttype`
    /// `application/json`); `data` holds the typed fields and [`extra`](Self::extra).
    pub fn to_cloud_event(&self) -> CloudEvent {
        CloudEvent {
            id: self.id.clone(),
            source: self.source.clone(),
            event_type: self.raw_type.clone(),
            data: serde_json::to_value(self.data()).expect("callback data serializes"),
            time: self.time.clone(),
            specversion: spec_version(),
            datacontenttype: Some("application/json".to_owned()),
            subject: self.subject.clone(),
        }
    }
}

/// Parses a callback delivery: a JSON array of CloudEvents (usually one) or a single CloudEvent.
/// Every element is returned in order; unknown event types are [`CallbackKind::Unknown`]. A
/// delivery with any invalid element is refused as a whole.
pub fn parse_callbacks(body: &[u8]) -> Result<Vec<CallbackEvent>, EventError> {
    elements(body)?
        .into_iter()
        .enumerate()
        .map(|(index, item)| CallbackEvent::from_value(index, item))
        .collect()
}

/// The JSON array body for `events` (what the fake ACS posts).
pub fn callbacks_body(events: &[CallbackEvent]) -> Vec<u8> {
    let ces: Vec<CloudEvent> = events.iter().map(CallbackEvent::to_cloud_event).collect();
    serde_json::to_vec(&ces).expect("CloudEvents serialize")
}
