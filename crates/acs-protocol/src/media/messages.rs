//! The media message kinds and the inbound messages ACS sends (AudioMetadata, AudioData, DtmfData,
//! transcription, marks).

#[allow(unused_imports)]
use super::*;

/// The kind of an [`Inbound`] message, as a `Copy` label (e.g. for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboundKind {
    /// `AudioMetadata`: first message of an audio stream.
    AudioMetadata,
    /// `AudioData`: one 20 ms packet of audio.
    AudioData,
    /// `DtmfData`: a DTMF tone.
    DtmfData,
    /// `TranscriptionMetadata`: first message of a transcription stream.
    TranscriptionMetadata,
    /// `TranscriptionData`: a (partial or final) transcription result.
    TranscriptionData,
    /// `MarkData` (preview): a previously sent audio mark was played or cancelled.
    MarkData,
    /// A well-formed message of a kind this module does not know.
    Unknown,
}

impl InboundKind {
    /// Every kind, in declaration order.
    pub const ALL: [InboundKind; 7] = [
        InboundKind::AudioMetadata,
        InboundKind::AudioData,
        InboundKind::DtmfData,
        InboundKind::TranscriptionMetadata,
        InboundKind::TranscriptionData,
        InboundKind::MarkData,
        InboundKind::Unknown,
    ];

    /// The known kinds in the order they are tried when classifying (most frequent first).
    const KNOWN_BY_FREQUENCY: [InboundKind; 6] = [
        InboundKind::AudioData,
        InboundKind::DtmfData,
        InboundKind::TranscriptionData,
        InboundKind::MarkData,
        InboundKind::AudioMetadata,
        InboundKind::TranscriptionMetadata,
    ];

    /// A snake_case label for metrics and logs: `"audio_metadata"`, `"audio_data"`,
    /// `"dtmf_data"`, `"transcription_metadata"`, `"transcription_data"`, `"mark_data"`,
    /// `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundKind::AudioMetadata => "audio_metadata",
            InboundKind::AudioData => "audio_data",
            InboundKind::DtmfData => "dtmf_data",
            InboundKind::TranscriptionMetadata => "transcription_metadata",
            InboundKind::TranscriptionData => "transcription_data",
            InboundKind::MarkData => "mark_data",
            InboundKind::Unknown => "unknown",
        }
    }

    /// The canonical wire value of `kind` (e.g. `"AudioData"`); `None` for
    /// [`InboundKind::Unknown`].
    pub fn wire_name(self) -> Option<&'static str> {
        Some(match self {
            InboundKind::AudioMetadata => "AudioMetadata",
            InboundKind::AudioData => "AudioData",
            InboundKind::DtmfData => "DtmfData",
            InboundKind::TranscriptionMetadata => "TranscriptionMetadata",
            InboundKind::TranscriptionData => "TranscriptionData",
            InboundKind::MarkData => "MarkData",
            InboundKind::Unknown => return None,
        })
    }

    /// The camelCase key of this kind's payload object (e.g. `"audioData"`); `""` for
    /// [`InboundKind::Unknown`].
    pub(super) fn payload_key(self) -> &'static str {
        match self {
            InboundKind::AudioMetadata => "audioMetadata",
            InboundKind::AudioData => "audioData",
            InboundKind::DtmfData => "dtmfData",
            InboundKind::TranscriptionMetadata => "transcriptionMetadata",
            InboundKind::TranscriptionData => "transcriptionData",
            InboundKind::MarkData => "markData",
            InboundKind::Unknown => "",
        }
    }

    /// Classifies a wire `kind` value, ASCII-case-insensitively (`"audiodata"` →
    /// [`InboundKind::AudioData`]); anything else is [`InboundKind::Unknown`].
    pub fn from_wire(kind: &str) -> InboundKind {
        for k in Self::KNOWN_BY_FREQUENCY {
            if let Some(name) = k.wire_name() {
                if kind.eq_ignore_ascii_case(name) {
                    return k;
                }
            }
        }
        InboundKind::Unknown
    }

    /// Classifies a top-level key as one of the payload keys, case-insensitively.
    pub(super) fn from_payload_key(key: &str) -> Option<InboundKind> {
        Self::KNOWN_BY_FREQUENCY
            .into_iter()
            .find(|k| key.eq_ignore_ascii_case(k.payload_key()))
    }
}

impl fmt::Display for InboundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound messages
// ---------------------------------------------------------------------------------------------

/// One message received from ACS on the media-streaming WebSocket.
///
/// Strings borrow from the frame when possible; use [`Inbound::into_owned`] to keep a message
/// beyond the frame's lifetime.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<'a> {
    /// `AudioMetadata` (first message of an audio stream).
    AudioMetadata(AudioMetadata<'a>),
    /// `AudioData` (one 20 ms audio packet).
    AudioData(AudioData<'a>),
    /// `DtmfData` (a DTMF tone).
    DtmfData(DtmfData<'a>),
    /// `TranscriptionMetadata` (first message of a transcription stream).
    TranscriptionMetadata(TranscriptionMetadata<'a>),
    /// `TranscriptionData` (a transcription result).
    TranscriptionData(TranscriptionData<'a>),
    /// `MarkData` (preview: a mark was played or cancelled).
    MarkData(MarkData<'a>),
    /// a well-formed message whose kind we do not know (counted and skipped by the caller)
    Unknown {
        /// The `kind` value exactly as received.
        kind: Cow<'a, str>,
    },
}

impl Inbound<'_> {
    /// The kind of this message.
    pub fn kind(&self) -> InboundKind {
        match self {
            Inbound::AudioMetadata(_) => InboundKind::AudioMetadata,
            Inbound::AudioData(_) => InboundKind::AudioData,
            Inbound::DtmfData(_) => InboundKind::DtmfData,
            Inbound::TranscriptionMetadata(_) => InboundKind::TranscriptionMetadata,
            Inbound::TranscriptionData(_) => InboundKind::TranscriptionData,
            Inbound::MarkData(_) => InboundKind::MarkData,
            Inbound::Unknown { .. } => InboundKind::Unknown,
        }
    }

    /// Copies every borrowed string so the message no longer borrows the frame.
    pub fn into_owned(self) -> Inbound<'static> {
        match self {
            Inbound::AudioMetadata(m) => Inbound::AudioMetadata(m.into_owned()),
            Inbound::AudioData(m) => Inbound::AudioData(m.into_owned()),
            Inbound::DtmfData(m) => Inbound::DtmfData(m.into_owned()),
            Inbound::TranscriptionMetadata(m) => Inbound::TranscriptionMetadata(m.into_owned()),
            Inbound::TranscriptionData(m) => Inbound::TranscriptionData(m.into_owned()),
            Inbound::MarkData(m) => Inbound::MarkData(m.into_owned()),
            Inbound::Unknown { kind } => Inbound::Unknown { kind: owned(kind) },
        }
    }
}

/// Serializes in the wire shape ACS sends: `{"kind":"AudioData","audioData":{…}}`
/// (`{"kind":"<kind>"}` for [`Inbound::Unknown`]).
impl Serialize for Inbound<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let kind = self.kind();
        let mut map = s.serialize_map(Some(if kind == InboundKind::Unknown { 1 } else { 2 }))?;
        match self {
            Inbound::Unknown { kind } => map.serialize_entry("kind", kind)?,
            _ => map.serialize_entry("kind", kind.wire_name().unwrap_or_default())?,
        }
        let key = kind.payload_key();
        match self {
            Inbound::AudioMetadata(m) => map.serialize_entry(key, m)?,
            Inbound::AudioData(m) => map.serialize_entry(key, m)?,
            Inbound::DtmfData(m) => map.serialize_entry(key, m)?,
            Inbound::TranscriptionMetadata(m) => map.serialize_entry(key, m)?,
            Inbound::TranscriptionData(m) => map.serialize_entry(key, m)?,
            Inbound::MarkData(m) => map.serialize_entry(key, m)?,
            Inbound::Unknown { .. } => {}
        }
        map.end()
    }
}

/// `AudioMetadata` payload: the format of the audio stream that follows.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioMetadata<'a> {
    /// Media streaming subscription id (`subscriptionId`).
    #[serde(
        default,
        borrow,
        alias = "SubscriptionId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscription_id: Option<Cow<'a, str>>,
    /// Encoding, `"PCM"` in practice (`encoding`).
    #[serde(
        default,
        borrow,
        alias = "Encoding",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub encoding: Option<Cow<'a, str>>,
    /// Sample rate in Hz, 16000 or 24000 (`sampleRate`). Not validated here.
    #[serde(default, alias = "SampleRate", skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Channel count, 1 in practice (`channels`).
    #[serde(default, alias = "Channels", skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// Bytes per packet, e.g. 640 (`length`). Do not rely on it; derive from the sample rate.
    #[serde(default, alias = "Length", skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
}

impl AudioMetadata<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> AudioMetadata<'static> {
        AudioMetadata {
            subscription_id: self.subscription_id.map(owned),
            encoding: self.encoding.map(owned),
            sample_rate: self.sample_rate,
            channels: self.channels,
            length: self.length,
        }
    }
}

/// `AudioData` payload: one packet of base64 PCM16LE mono audio.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AudioData<'a> {
    /// Base64 of the PCM bytes (`data`, required).
    #[serde(borrow, alias = "Data")]
    pub data: Cow<'a, str>,
    /// ISO-8601 time the media was sourced (`timestamp`); see
    /// [`parse_timestamp`](crate::timestamp::parse_timestamp).
    #[serde(
        default,
        borrow,
        alias = "Timestamp",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Cow<'a, str>>,
    /// Raw id of the speaking participant in unmixed mode (`participantRawID`). Prefer
    /// [`AudioData::participant`], which also maps `""` to `None`.
    #[serde(
        default,
        borrow,
        rename = "participantRawID",
        alias = "ParticipantRawID",
        alias = "participantRawId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub participant_raw_id: Option<Cow<'a, str>>,
    /// The packet is silence only (`silent`; absent or `null` means `false`).
    #[serde(default, alias = "Silent", deserialize_with = "bool_or_null")]
    pub silent: bool,
    /// Preview audio mark (`mark`).
    #[serde(
        default,
        borrow,
        alias = "Mark",
        skip_serializing_if = "Option::is_none"
    )]
    pub mark: Option<Mark<'a>>,
}

impl AudioData<'_> {
    /// participant id, with absent and empty both meaning "mixed stream"
    pub fn participant(&self) -> Option<&str> {
        match self.participant_raw_id.as_deref() {
            Some("") | None => None,
            p => p,
        }
    }

    /// Copies every borrowed string.
    pub fn into_owned(self) -> AudioData<'static> {
        AudioData {
            data: owned(self.data),
            timestamp: self.timestamp.map(owned),
            participant_raw_id: self.participant_raw_id.map(owned),
            silent: self.silent,
            mark: self.mark.map(Mark::into_owned),
        }
    }
}

/// Preview audio mark attached to an `AudioData` packet: `{"id":…}` (newer) or
/// `{"sequence":…}` (older).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Mark<'a> {
    /// Mark id (`id`; a JSON number is accepted and converted to a string).
    #[serde(
        default,
        borrow,
        alias = "Id",
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Cow<'a, str>>,
    /// Mark sequence number (`sequence`).
    #[serde(default, alias = "Sequence", skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

impl Mark<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> Mark<'static> {
        Mark {
            id: self.id.map(owned),
            sequence: self.sequence,
        }
    }
}

/// `DtmfData` payload: one DTMF tone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct DtmfData<'a> {
    /// The tone character, e.g. `"3"` (`data`, required).
    #[serde(borrow, alias = "Data")]
    pub data: Cow<'a, str>,
    /// ISO-8601 timestamp (`timestamp`).
    #[serde(
        default,
        borrow,
        alias = "Timestamp",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<Cow<'a, str>>,
    /// Raw id of the participant who pressed the key (`participantRawID`).
    #[serde(
        default,
        borrow,
        rename = "participantRawID",
        alias = "ParticipantRawID",
        alias = "participantRawId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub participant_raw_id: Option<Cow<'a, str>>,
}

impl DtmfData<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> DtmfData<'static> {
        DtmfData {
            data: owned(self.data),
            timestamp: self.timestamp.map(owned),
            participant_raw_id: self.participant_raw_id.map(owned),
        }
    }
}

/// `TranscriptionMetadata` payload: first message of a transcription stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionMetadata<'a> {
    /// Transcription subscription id (`subscriptionId`).
    #[serde(
        default,
        borrow,
        alias = "SubscriptionId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscription_id: Option<Cow<'a, str>>,
    /// Recognition locale, e.g. `"en-US"` (`locale`).
    #[serde(
        default,
        borrow,
        alias = "Locale",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub locale: Option<Cow<'a, str>>,
    /// Call connection id (`callConnectionId`).
    #[serde(
        default,
        borrow,
        alias = "CallConnectionId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_connection_id: Option<Cow<'a, str>>,
    /// Correlation id (`correlationId`).
    #[serde(
        default,
        borrow,
        alias = "CorrelationId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub correlation_id: Option<Cow<'a, str>>,
    /// Custom speech model endpoint id (`speechRecognitionModelEndpointId`).
    #[serde(
        default,
        borrow,
        alias = "SpeechRecognitionModelEndpointId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub speech_recognition_model_endpoint_id: Option<Cow<'a, str>>,
}

impl TranscriptionMetadata<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> TranscriptionMetadata<'static> {
        TranscriptionMetadata {
            subscription_id: self.subscription_id.map(owned),
            locale: self.locale.map(owned),
            call_connection_id: self.call_connection_id.map(owned),
            correlation_id: self.correlation_id.map(owned),
            speech_recognition_model_endpoint_id: self
                .speech_recognition_model_endpoint_id
                .map(owned),
        }
    }
}

/// `TranscriptionData` payload: one transcription result.
///
/// Offsets and durations are in ticks (1 tick = 100 ns) and can be ~2.5e18, hence `u64`.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionData<'a> {
    /// Recognised text (`text`; absent means empty).
    #[serde(default, borrow, alias = "Text")]
    pub text: Cow<'a, str>,
    /// Text format, e.g. `"display"` (`format`).
    #[serde(
        default,
        borrow,
        alias = "Format",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub format: Option<Cow<'a, str>>,
    /// Recognition confidence 0..1 (`confidence`).
    #[serde(default, alias = "Confidence", skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Start offset in ticks (`offset`).
    #[serde(default, alias = "Offset", skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Duration in ticks (`duration`).
    #[serde(default, alias = "Duration", skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Word-level results (`words`; absent or `null` means empty).
    #[serde(
        default,
        borrow,
        alias = "Words",
        deserialize_with = "words_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub words: Vec<Word<'a>>,
    /// Raw id of the speaker (`participantRawID`).
    #[serde(
        default,
        borrow,
        rename = "participantRawID",
        alias = "ParticipantRawID",
        alias = "participantRawId",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub participant_raw_id: Option<Cow<'a, str>>,
    /// Final or intermediate result (`resultStatus`, case-insensitive).
    #[serde(
        default,
        alias = "ResultStatus",
        skip_serializing_if = "Option::is_none"
    )]
    pub result_status: Option<ResultStatus>,
    /// Sentiment from `sentimentAnalysisResult.sentiment`, e.g. `"neutral"`.
    #[serde(
        default,
        borrow,
        rename = "sentimentAnalysisResult",
        alias = "SentimentAnalysisResult",
        deserialize_with = "sentiment",
        serialize_with = "ser_sentiment",
        skip_serializing_if = "Option::is_none"
    )]
    pub sentiment: Option<Cow<'a, str>>,
    /// Identified language, e.g. `"en-US"` (`languageIdentified`).
    #[serde(
        default,
        borrow,
        alias = "LanguageIdentified",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub language_identified: Option<Cow<'a, str>>,
}

impl TranscriptionData<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> TranscriptionData<'static> {
        TranscriptionData {
            text: owned(self.text),
            format: self.format.map(owned),
            confidence: self.confidence,
            offset: self.offset,
            duration: self.duration,
            words: self.words.into_iter().map(Word::into_owned).collect(),
            participant_raw_id: self.participant_raw_id.map(owned),
            result_status: self.result_status,
            sentiment: self.sentiment.map(owned),
            language_identified: self.language_identified.map(owned),
        }
    }
}

/// `resultStatus` of a transcription result, parsed ASCII-case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    /// `"Final"` (any casing).
    Final,
    /// `"Intermediate"` (any casing).
    Intermediate,
    /// Any other string (serialized back as `"Other"`).
    Other,
}

impl ResultStatus {
    /// Classifies a wire value ASCII-case-insensitively.
    pub fn from_wire(s: &str) -> ResultStatus {
        if s.eq_ignore_ascii_case("final") {
            ResultStatus::Final
        } else if s.eq_ignore_ascii_case("intermediate") {
            ResultStatus::Intermediate
        } else {
            ResultStatus::Other
        }
    }

    /// The canonical wire value: `"Final"`, `"Intermediate"` or `"Other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Final => "Final",
            ResultStatus::Intermediate => "Intermediate",
            ResultStatus::Other => "Other",
        }
    }
}

impl<'de> Deserialize<'de> for ResultStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ResultStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result status string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResultStatus, E> {
                Ok(ResultStatus::from_wire(v))
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for ResultStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One word of a transcription result.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Word<'a> {
    /// The word (`text`; absent means empty).
    #[serde(default, borrow, alias = "Text")]
    pub text: Cow<'a, str>,
    /// Start offset in ticks (`offset`).
    #[serde(default, alias = "Offset", skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Duration in ticks (`duration`).
    #[serde(default, alias = "Duration", skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

impl Word<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> Word<'static> {
        Word {
            text: owned(self.text),
            offset: self.offset,
            duration: self.duration,
        }
    }
}

/// `MarkData` payload (preview): status of a previously sent audio mark.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct MarkData<'a> {
    /// Mark id (`id`; a JSON number is accepted and converted to a string).
    #[serde(
        default,
        borrow,
        alias = "Id",
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Cow<'a, str>>,
    /// Mark sequence number (`sequence`, older previews).
    #[serde(default, alias = "Sequence", skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// `"Completed"` or `"Cancelled"` (`status`).
    #[serde(
        default,
        borrow,
        alias = "Status",
        deserialize_with = "opt_cow",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<Cow<'a, str>>,
}

impl MarkData<'_> {
    /// Copies every borrowed string.
    pub fn into_owned(self) -> MarkData<'static> {
        MarkData {
            id: self.id.map(owned),
            sequence: self.sequence,
            status: self.status.map(owned),
        }
    }
}
