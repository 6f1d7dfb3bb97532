//! ACS media-streaming WebSocket messages (PROTOCOL.md §1 inbound, §2 outbound).
//!
//! # Inbound (ACS → us)
//!
//! [`parse_inbound`] turns one WebSocket frame (text or binary, UTF-8 JSON) into an [`Inbound`]
//! message in a single pass, borrowing every string from the frame when it contains no JSON
//! escapes (so the common `AudioData` frame allocates nothing). Rules:
//!
//! * The top-level object has a `kind` discriminator and one payload object named after the kind
//!   (`{"kind":"AudioData","audioData":{…}}`). Top-level keys and the `kind` value are matched
//!   ASCII-case-insensitively (`Kind`/`AudioData`/`audiodata` all work); key order does not
//!   matter (payload before `kind` is fine).
//! * Once `kind` has been seen, payload objects for *other* kinds are skipped without being
//!   parsed.
//! * Unknown top-level keys and unknown payload fields are ignored. Payload field names are the
//!   documented camelCase names, with PascalCase aliases.
//! * A well-formed message of an unknown kind becomes [`Inbound::Unknown`] (the caller counts
//!   and skips it).
//! * All payload fields are optional except `AudioData.data` and `DtmfData.data` (the reason the
//!   message exists): a missing one is a [`ProtocolError::Json`] error.
//!
//! # Outbound (us → ACS, and a downstream bot → us)
//!
//! [`write_outbound_audio`] and [`STOP_AUDIO_JSON`] are byte for byte what the JS SDK's helpers
//! `createOutboundAudioData` / `createOutboundStopAudioData` (`@azure/communication-call-automation`
//! 1.6.0) return (fixture `js_sdk_1.6.0_outbound_helpers_run.json`). [`parse_outbound`] accepts
//! every shape used by Microsoft SDKs and samples (camelCase and PascalCase).
//!
//! # Building inbound messages (simulators, tests)
//!
//! [`inbound_audio_data_json`] and [`inbound_audio_metadata_json`] write what ACS sends. Every
//! inbound type also implements [`serde::Serialize`] in the wire shape, so
//! `serde_json::to_string(&Inbound::DtmfData(…))` builds any other message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::error::ProtocolError;

// Re-exported here too because audio payload decoding belongs to `AudioData`.
pub use super::b64::decode_base64_into;
pub use super::error::Base64Error;

// ---------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------

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
    fn payload_key(self) -> &'static str {
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
    fn from_payload_key(key: &str) -> Option<InboundKind> {
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
    /// [`parse_timestamp`](super::timestamp::parse_timestamp).
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

// ---------------------------------------------------------------------------------------------
// Inbound parsing
// ---------------------------------------------------------------------------------------------

/// Parses one inbound WebSocket frame (text or binary frame bytes, UTF-8 JSON).
///
/// See the [module docs](self) for the accepted shapes. Errors: [`ProtocolError::NotUtf8`],
/// [`ProtocolError::Json`] (syntax, wrong field type, missing `data`),
/// [`ProtocolError::MissingKind`], [`ProtocolError::MissingPayload`].
pub fn parse_inbound(frame: &[u8]) -> Result<Inbound<'_>, ProtocolError> {
    if let Some(audio) = super::fast::parse_audio_data(frame) {
        return Ok(Inbound::AudioData(audio));
    }
    parse_inbound_full(frame)
}

/// [`parse_inbound`] without the AudioData fast path: always the full serde_json parser.
pub fn parse_inbound_full(frame: &[u8]) -> Result<Inbound<'_>, ProtocolError> {
    // Validating up front costs the same as serde_json's per-string validation in `from_slice`
    // (which `from_str` then skips), and also covers strings serde_json only skips over.
    let text = std::str::from_utf8(frame).map_err(|_| ProtocolError::NotUtf8)?;
    let envelope: InboundEnvelope<'_> = serde_json::from_str(text).map_err(ProtocolError::json)?;
    envelope.into_inbound()
}

/// The top-level object of an inbound message, as deserialized in one pass.
///
/// Public only so that benchmarks can drive the same types through another serde
/// deserializer; use [`parse_inbound`].
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct InboundEnvelope<'a> {
    kind: Option<Cow<'a, str>>,
    class: Option<InboundKind>,
    audio_metadata: Option<AudioMetadata<'a>>,
    audio_data: Option<AudioData<'a>>,
    dtmf_data: Option<DtmfData<'a>>,
    transcription_metadata: Option<TranscriptionMetadata<'a>>,
    transcription_data: Option<TranscriptionData<'a>>,
    mark_data: Option<MarkData<'a>>,
}

impl<'a> InboundEnvelope<'a> {
    /// Dispatches on `kind`: the last step of [`parse_inbound`].
    #[doc(hidden)]
    pub fn into_inbound(self) -> Result<Inbound<'a>, ProtocolError> {
        let (Some(kind), Some(class)) = (self.kind, self.class) else {
            return Err(ProtocolError::MissingKind);
        };
        fn need<T>(payload: Option<T>, class: InboundKind) -> Result<T, ProtocolError> {
            payload.ok_or(ProtocolError::MissingPayload {
                kind: class.wire_name().unwrap_or("Unknown"),
            })
        }
        Ok(match class {
            InboundKind::AudioData => Inbound::AudioData(need(self.audio_data, class)?),
            InboundKind::AudioMetadata => Inbound::AudioMetadata(need(self.audio_metadata, class)?),
            InboundKind::DtmfData => Inbound::DtmfData(need(self.dtmf_data, class)?),
            InboundKind::TranscriptionMetadata => {
                Inbound::TranscriptionMetadata(need(self.transcription_metadata, class)?)
            }
            InboundKind::TranscriptionData => {
                Inbound::TranscriptionData(need(self.transcription_data, class)?)
            }
            InboundKind::MarkData => Inbound::MarkData(need(self.mark_data, class)?),
            InboundKind::Unknown => Inbound::Unknown { kind },
        })
    }
}

/// A top-level key of an inbound message.
enum InboundKey {
    Kind,
    Payload(InboundKind),
    Other,
}

impl<'de> Deserialize<'de> for InboundKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = InboundKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<InboundKey, E> {
                Ok(if v.eq_ignore_ascii_case("kind") {
                    InboundKey::Kind
                } else if let Some(k) = InboundKind::from_payload_key(v) {
                    InboundKey::Payload(k)
                } else {
                    InboundKey::Other
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for InboundEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InboundEnvelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ACS media streaming message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env = InboundEnvelope::default();
                let mut kind_seen = false;
                while let Some(key) = map.next_key::<InboundKey>()? {
                    match key {
                        InboundKey::Kind => {
                            if kind_seen {
                                return Err(de::Error::duplicate_field("kind"));
                            }
                            kind_seen = true;
                            env.kind = map.next_value::<OptCow<'de>>()?.0;
                            env.class = env.kind.as_deref().map(InboundKind::from_wire);
                        }
                        InboundKey::Payload(k) if env.class.is_none_or(|c| c == k) => {
                            let name = k.payload_key();
                            match k {
                                InboundKind::AudioData => {
                                    fill(&mut env.audio_data, map.next_value()?, name)?
                                }
                                InboundKind::AudioMetadata => {
                                    fill(&mut env.audio_metadata, map.next_value()?, name)?
                                }
                                InboundKind::DtmfData => {
                                    fill(&mut env.dtmf_data, map.next_value()?, name)?
                                }
                                InboundKind::TranscriptionMetadata => {
                                    fill(&mut env.transcription_metadata, map.next_value()?, name)?
                                }
                                InboundKind::TranscriptionData => {
                                    fill(&mut env.transcription_data, map.next_value()?, name)?
                                }
                                InboundKind::MarkData => {
                                    fill(&mut env.mark_data, map.next_value()?, name)?
                                }
                                InboundKind::Unknown => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        InboundKey::Payload(_) | InboundKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

/// Stores a parsed payload, rejecting a second non-null occurrence of the same payload key.
fn fill<T, E: de::Error>(
    slot: &mut Option<T>,
    value: Option<T>,
    name: &'static str,
) -> Result<(), E> {
    if value.is_some() {
        if slot.is_some() {
            return Err(E::duplicate_field(name));
        }
        *slot = value;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outbound messages
// ---------------------------------------------------------------------------------------------

/// The `StopAudio` message, exactly what the JS SDK's `createOutboundStopAudioData()` returns
/// (the Java SDK sends the same bytes): flushes ACS's playout queue (barge-in).
pub const STOP_AUDIO_JSON: &str = r#"{"kind":"stopAudio","stopAudio":{}}"#;

/// Start of the outbound `AudioData` message, up to the opening quote of the base64.
const OUTBOUND_AUDIO_PREFIX: &str = r#"{"kind":"audioData","audioData":{"data":""#;
/// End of the outbound `AudioData` message, from the closing quote of the base64. The JS helper
/// builds `{kind, audioData: {data, timestamp: undefined, participant: undefined, isSilent:
/// false}, stopAudio: {}}` and `JSON.stringify` drops the `undefined` members: no nulls.
const OUTBOUND_AUDIO_SUFFIX: &str = r#"","isSilent":false},"stopAudio":{}}"#;

/// Length in bytes of the message [`write_outbound_audio`] writes for `pcm_len` bytes of PCM
/// (useful to pre-size the buffer).
pub fn outbound_audio_json_len(pcm_len: usize) -> usize {
    OUTBOUND_AUDIO_PREFIX.len()
        + base64_simd::STANDARD.encoded_length(pcm_len)
        + OUTBOUND_AUDIO_SUFFIX.len()
}

/// Clears `out` and writes an outbound `AudioData` message carrying `pcm_le` (PCM16LE mono at
/// the stream's sample rate), byte for byte what the JS SDK's `createOutboundAudioData(b64)`
/// (1.6.0) returns: `{"kind":"audioData","audioData":{"data":"<b64>","isSilent":false},"stopAudio":{}}`.
///
/// The base64 is encoded straight into `out`; nothing is allocated once `out` has capacity
/// [`outbound_audio_json_len`]`(pcm_le.len())`.
pub fn write_outbound_audio(out: &mut String, pcm_le: &[u8]) {
    out.clear();
    out.reserve(outbound_audio_json_len(pcm_le.len()));
    out.push_str(OUTBOUND_AUDIO_PREFIX);
    base64_simd::STANDARD.encode_append(pcm_le, out);
    out.push_str(OUTBOUND_AUDIO_SUFFIX);
}

/// An outbound message (what we send to ACS, or what a downstream bot sends to us in ACS
/// format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound<'a> {
    /// `AudioData`: base64 PCM16LE mono to play into the call.
    AudioData {
        /// The base64 audio (`data` / `Data`).
        data: Cow<'a, str>,
    },
    /// `StopAudio`: flush the playout queue.
    StopAudio,
    /// A well-formed message of another kind.
    Unknown {
        /// The `kind` value exactly as received.
        kind: Cow<'a, str>,
    },
}

/// Parses an outbound-format frame (text or binary frame bytes, UTF-8 JSON).
///
/// Accepts the camelCase (JS/Java SDK, call-center-ai) and PascalCase (.NET SDK, Python samples)
/// shapes: top-level keys and `kind` values are matched ASCII-case-insensitively, `data` also as
/// `Data`. Only `kind` decides the variant: a `stopAudio` key (`null` or `{}`) beside an
/// `audioData` kind is not a stop. A `StopAudio` kind needs no payload object.
pub fn parse_outbound(frame: &[u8]) -> Result<Outbound<'_>, ProtocolError> {
    let text = std::str::from_utf8(frame).map_err(|_| ProtocolError::NotUtf8)?;
    let env: OutboundEnvelope<'_> = serde_json::from_str(text).map_err(ProtocolError::json)?;
    let Some(kind) = env.kind else {
        return Err(ProtocolError::MissingKind);
    };
    match OutboundKind::from_wire(&kind) {
        OutboundKind::AudioData => match env.audio_data {
            Some(a) => Ok(Outbound::AudioData { data: a.data }),
            None => Err(ProtocolError::MissingPayload { kind: "AudioData" }),
        },
        OutboundKind::StopAudio => Ok(Outbound::StopAudio),
        OutboundKind::Unknown => Ok(Outbound::Unknown { kind }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutboundKind {
    AudioData,
    StopAudio,
    Unknown,
}

impl OutboundKind {
    fn from_wire(kind: &str) -> OutboundKind {
        if kind.eq_ignore_ascii_case("audioData") {
            OutboundKind::AudioData
        } else if kind.eq_ignore_ascii_case("stopAudio") {
            OutboundKind::StopAudio
        } else {
            OutboundKind::Unknown
        }
    }
}

#[derive(Default)]
struct OutboundEnvelope<'a> {
    kind: Option<Cow<'a, str>>,
    audio_data: Option<OutboundAudio<'a>>,
}

#[derive(serde::Deserialize)]
struct OutboundAudio<'a> {
    #[serde(borrow, alias = "Data")]
    data: Cow<'a, str>,
}

enum OutboundKey {
    Kind,
    AudioData,
    Other,
}

impl<'de> Deserialize<'de> for OutboundKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OutboundKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OutboundKey, E> {
                Ok(if v.eq_ignore_ascii_case("kind") {
                    OutboundKey::Kind
                } else if v.eq_ignore_ascii_case("audioData") {
                    OutboundKey::AudioData
                } else {
                    OutboundKey::Other
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for OutboundEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OutboundEnvelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ACS media streaming message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env = OutboundEnvelope::default();
                let mut kind_seen = false;
                let mut class = None;
                while let Some(key) = map.next_key::<OutboundKey>()? {
                    match key {
                        OutboundKey::Kind => {
                            if kind_seen {
                                return Err(de::Error::duplicate_field("kind"));
                            }
                            kind_seen = true;
                            env.kind = map.next_value::<OptCow<'de>>()?.0;
                            class = env.kind.as_deref().map(OutboundKind::from_wire);
                        }
                        OutboundKey::AudioData
                            if class.is_none_or(|c| c == OutboundKind::AudioData) =>
                        {
                            fill(&mut env.audio_data, map.next_value()?, "audioData")?;
                        }
                        OutboundKey::AudioData | OutboundKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound builders (simulators, tests)
// ---------------------------------------------------------------------------------------------

/// Clears `out` and writes an inbound `AudioData` message as ACS sends it:
/// `{"kind":"AudioData","audioData":{"timestamp":…,"participantRawID":…,"data":…,"silent":…}}`.
///
/// `participant: None` omits `participantRawID` (mixed stream). Strings are JSON-escaped;
/// nothing is allocated once `out` has capacity.
pub fn inbound_audio_data_json(
    out: &mut String,
    data_b64: &str,
    timestamp: &str,
    participant: Option<&str>,
    silent: bool,
) {
    out.clear();
    out.push_str(r#"{"kind":"AudioData","audioData":{"timestamp":"#);
    push_json_str(out, timestamp);
    if let Some(p) = participant {
        out.push_str(r#","participantRawID":"#);
        push_json_str(out, p);
    }
    out.push_str(r#","data":"#);
    push_json_str(out, data_b64);
    out.push_str(if silent {
        r#","silent":true}}"#
    } else {
        r#","silent":false}}"#
    });
}

/// An inbound `AudioMetadata` message as ACS sends it, for PCM16 mono at `sample_rate` with
/// 20 ms packets (`length` = `sample_rate / 50 * 2`, i.e. 640 at 16 kHz).
pub fn inbound_audio_metadata_json(sample_rate: u32, subscription_id: &str) -> String {
    let mut out = String::with_capacity(160 + subscription_id.len());
    out.push_str(r#"{"kind":"AudioMetadata","audioMetadata":{"subscriptionId":"#);
    push_json_str(&mut out, subscription_id);
    let length = u64::from(sample_rate) / 50 * 2;
    out.push_str(&format!(
        r#","encoding":"PCM","sampleRate":{sample_rate},"channels":1,"length":{length}}}}}"#
    ));
    out
}

/// Appends `s` to `out` as a JSON string literal (with quotes), escaping as needed.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// serde helpers
// ---------------------------------------------------------------------------------------------

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Visitor producing a `Cow<str>` that borrows from the input when the deserializer can lend it
/// (serde's `Cow` impl always allocates). With `numbers`, JSON integers are accepted too.
struct CowStrVisitor {
    numbers: bool,
}

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.numbers {
            "a string or an integer"
        } else {
            "a string"
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Cow::Owned(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Cow::Owned(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }
}

/// `Option` visitor wrapping [`CowStrVisitor`] (`null` → `None`).
struct OptCowVisitor {
    numbers: bool,
}

impl<'de> Visitor<'de> for OptCowVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let v = CowStrVisitor {
            numbers: self.numbers,
        };
        if self.numbers {
            d.deserialize_any(v).map(Some)
        } else {
            d.deserialize_str(v).map(Some)
        }
    }
}

/// Optional string that borrows from the input when possible.
fn opt_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(OptCowVisitor { numbers: false })
}

/// Optional id: a string (borrowed when possible) or an integer.
fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(OptCowVisitor { numbers: true })
}

/// [`opt_cow`] as a type, for `next_value`.
struct OptCow<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptCow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_cow(d).map(OptCow)
    }
}

/// A bool where `null` means `false`.
fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// A list where `null` means empty.
fn words_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Word<'de>>, D::Error> {
    Ok(Option::<Vec<Word<'de>>>::deserialize(d)?.unwrap_or_default())
}

/// `sentimentAnalysisResult` object (only `sentiment` is kept).
#[derive(serde::Deserialize)]
struct SentimentWire<'a> {
    #[serde(default, borrow, alias = "Sentiment", deserialize_with = "opt_cow")]
    sentiment: Option<Cow<'a, str>>,
}

/// `sentimentAnalysisResult.sentiment`, with a `null` object meaning `None`.
fn sentiment<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<SentimentWire<'de>>::deserialize(d)?.and_then(|s| s.sentiment))
}

/// Writes `Some(sentiment)` back as `{"sentiment":…}`.
fn ser_sentiment<S: Serializer>(v: &Option<Cow<'_, str>>, s: S) -> Result<S::Ok, S::Error> {
    let mut st = s.serialize_struct("SentimentAnalysisResult", 1)?;
    st.serialize_field("sentiment", v)?;
    st.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testvec::bytes as vector;

    fn parse_ok(frame: &[u8]) -> Inbound<'_> {
        parse_inbound(frame)
            .unwrap_or_else(|e| panic!("{e:?} for {}", String::from_utf8_lossy(frame)))
    }

    fn audio(frame: &[u8]) -> AudioData<'_> {
        match parse_ok(frame) {
            Inbound::AudioData(a) => a,
            other => panic!("not AudioData: {other:?}"),
        }
    }

    fn transcription(frame: &[u8]) -> TranscriptionData<'_> {
        match parse_ok(frame) {
            Inbound::TranscriptionData(t) => t,
            other => panic!("not TranscriptionData: {other:?}"),
        }
    }

    // ---- vectors -----------------------------------------------------------------------------

    #[test]
    fn vector_audio_metadata() {
        let v = vector("ws_inbound_audio_metadata.json");
        let Inbound::AudioMetadata(m) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(
            m.subscription_id.as_deref(),
            Some("89e8cb59-b991-48b0-b154-1db84f16a077")
        );
        assert_eq!(m.encoding.as_deref(), Some("PCM"));
        assert_eq!(m.sample_rate, Some(16000));
        assert_eq!(m.channels, Some(1));
        assert_eq!(m.length, Some(640));
    }

    #[test]
    fn vector_audio_metadata_dotnet() {
        let v = vector("ws_inbound_audio_metadata_dotnet_test.json");
        let Inbound::AudioMetadata(m) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(m.subscription_id.as_deref(), Some("subscriptionId"));
        assert_eq!(m.encoding.as_deref(), Some("encodingType"));
        assert_eq!(m.sample_rate, Some(8));
        assert_eq!(m.channels, Some(2));
        assert_eq!(m.length, Some(640));
    }

    #[test]
    fn vector_audio_data_docs_truncated() {
        let v = vector("ws_inbound_audio_data_docs_truncated.json");
        let a = audio(&v);
        assert_eq!(a.timestamp.as_deref(), Some("2024-11-15T19:16:12.925Z"));
        assert_eq!(a.participant(), Some("8:acs:3d20e1de-0f28-41c5…"));
        assert_eq!(a.data, "5ADwAOMA6AD0A…");
        assert!(!a.silent);
        assert_eq!(a.mark, None);
        // Multi-line JSON with non-ASCII: still borrowed.
        assert!(matches!(a.data, Cow::Borrowed(_)));
    }

    #[test]
    fn vector_audio_data_dotnet() {
        let v = vector("ws_inbound_audio_data_dotnet_test.json");
        let a = audio(&v);
        assert_eq!(a.data, "AQIDBAU=");
        assert_eq!(a.timestamp.as_deref(), Some("2022-08-23T11:48:05Z"));
        assert_eq!(a.participant_raw_id.as_deref(), Some("participantId"));
        assert!(!a.silent);
        let mut pcm = Vec::new();
        super::super::b64::decode_base64_into(a.data.as_bytes(), &mut pcm).unwrap();
        assert_eq!(pcm, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn vector_audio_data_unmixed() {
        let v = vector("ws_inbound_audio_data_unmixed.json");
        let a = audio(&v);
        assert_eq!(a.data, "test");
        assert_eq!(a.timestamp.as_deref(), Some("2024-05-30T06:25:02.948Z"));
        assert_eq!(
            a.participant(),
            Some("28:6b45c5b6-1c34-47c0-8980-11e98d47d23f")
        );
        assert!(!a.silent);
    }

    #[test]
    fn vector_dtmf() {
        let v = vector("ws_inbound_dtmf_data.json");
        let Inbound::DtmfData(d) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(d.data, "3");
        assert_eq!(d.timestamp, None);
        assert_eq!(d.participant_raw_id, None);

        let v = vector("ws_inbound_dtmf_data_dotnet_test.json");
        let Inbound::DtmfData(d) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(d.data, "5");
    }

    #[test]
    fn vector_transcription_metadata() {
        let v = vector("ws_inbound_transcription_metadata.json");
        let Inbound::TranscriptionMetadata(m) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(
            m.subscription_id.as_deref(),
            Some("0000a000-9999-5555-ae00-cd00e0bc0000")
        );
        assert_eq!(m.locale.as_deref(), Some("en-US"));
        assert_eq!(
            m.call_connection_id.as_deref(),
            Some("6d09449c-6677-4f91-8cb7-012c338e6ec1")
        );
        assert_eq!(
            m.correlation_id.as_deref(),
            Some("6d09449c-6677-4f91-8cb7-012c338e6ec1")
        );
        assert_eq!(
            m.speech_recognition_model_endpoint_id.as_deref(),
            Some("0000a000-9999-5555-ae00-cd00e0bc0001")
        );
    }

    #[test]
    fn vector_transcription_metadata_docs() {
        let v = vector("ws_inbound_transcription_metadata_docs.json");
        let Inbound::TranscriptionMetadata(m) = parse_ok(&v) else {
            panic!()
        };
        assert_eq!(m.locale.as_deref(), Some("en-us"));
        assert_eq!(
            m.call_connection_id.as_deref(),
            Some("65c57654=f12c-4975-92a4-21668e61dd98")
        );
        assert_eq!(m.speech_recognition_model_endpoint_id, None);
    }

    #[test]
    fn vector_transcription_data_js() {
        let v = vector("ws_inbound_transcription_data.json");
        let t = transcription(&v);
        assert_eq!(t.text, "Hello everyone.");
        assert_eq!(t.format.as_deref(), Some("display"));
        assert_eq!(t.confidence, Some(0.922650933265686));
        assert_eq!(t.offset, Some(212_483_227));
        assert_eq!(t.duration, Some(9_600_000));
        assert_eq!(t.words.len(), 2);
        assert_eq!(t.words[0].text, "hello");
        assert_eq!(t.words[0].offset, Some(212_483_227));
        assert_eq!(t.words[0].duration, Some(2_800_000));
        assert_eq!(t.words[1].text, "everyone");
        assert_eq!(t.words[1].offset, Some(215_283_227));
        assert_eq!(t.words[1].duration, Some(6_800_000));
        assert_eq!(t.participant_raw_id.as_deref(), Some("4:+000000000000"));
        assert_eq!(t.result_status, Some(ResultStatus::Final));
        assert_eq!(t.sentiment.as_deref(), Some("neutral"));
        assert_eq!(t.language_identified.as_deref(), Some("en-US"));
    }

    #[test]
    fn vector_transcription_data_docs_huge_offsets() {
        let v = vector("ws_inbound_transcription_data_docs.json");
        let t = transcription(&v);
        assert_eq!(t.text, "Testing transcription.");
        assert_eq!(t.confidence, Some(0.695223331451416));
        assert_eq!(t.offset, Some(2_516_998_782_481_234_400));
        assert_eq!(t.duration, None);
        assert_eq!(t.words.len(), 2);
        for w in &t.words {
            assert_eq!(w.text, "testing");
            assert_eq!(w.offset, Some(2_516_998_782_481_234_400));
            assert_eq!(w.duration, None);
        }
        assert_eq!(t.participant_raw_id.as_deref(), Some("8:acs:"));
        assert_eq!(t.result_status, Some(ResultStatus::Final));
        assert_eq!(t.sentiment, None);
        assert_eq!(t.language_identified, None);
    }

    #[test]
    fn vector_transcription_data_dotnet_lowercase_final() {
        let v = vector("ws_inbound_transcription_data_dotnet_test.json");
        let t = transcription(&v);
        assert_eq!(t.text, "Hello World!");
        assert_eq!(t.confidence, Some(0.98));
        assert_eq!((t.offset, t.duration), (Some(1), Some(2)));
        assert_eq!(t.words.len(), 2);
        assert_eq!(t.words[1].text, "World");
        assert_eq!(t.words[1].offset, Some(6));
        assert_eq!(t.result_status, Some(ResultStatus::Final));
        assert_eq!(t.participant_raw_id.as_deref(), Some("abc12345"));
    }

    #[test]
    fn vector_transcription_data_no_words_intermediate() {
        let v = vector("ws_inbound_transcription_data_no_words.json");
        let t = transcription(&v);
        assert_eq!(t.text, "store hours");
        assert_eq!(t.confidence, None);
        assert!(t.words.is_empty());
        assert_eq!(t.offset, Some(49_876_484));
        assert_eq!(t.duration, Some(9_200_000));
        assert_eq!(t.result_status, Some(ResultStatus::Intermediate));
    }

    /// Every inbound vector parses to the kind its file name announces, and survives a
    /// serialize → parse round trip. A newly added `ws_inbound_*` vector is picked up here.
    #[test]
    fn every_inbound_vector_parses_and_round_trips() {
        let dir = crate::testvec::dir();
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !(name.starts_with("ws_inbound_") && name.ends_with(".json")) {
                continue;
            }
            n += 1;
            let bytes = std::fs::read(&path).unwrap();
            let msg = parse_inbound(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = InboundKind::ALL
                .into_iter()
                .filter(|k| *k != InboundKind::Unknown)
                .find(|k| name.starts_with(&format!("ws_inbound_{}", k.as_str())))
                .unwrap_or_else(|| panic!("{name}: no kind in file name"));
            assert_eq!(msg.kind(), expected, "{name}");
            let json = serde_json::to_string(&msg).unwrap();
            let again = parse_inbound(json.as_bytes()).unwrap();
            assert_eq!(again, msg, "{name}: round trip via {json}");
            assert_eq!(msg.clone().into_owned(), msg);
        }
        assert!(n >= 13, "only {n} inbound vectors found");
    }

    // ---- shapes --------------------------------------------------------------------------------

    #[test]
    fn plain_audio_data_borrows_everything() {
        let f = br#"{"kind":"AudioData","audioData":{"timestamp":"2024-11-15T19:16:12.925Z","participantRawID":"8:acs:abc","data":"AQIDBAU=","silent":false}}"#;
        let a = audio(f);
        assert!(matches!(a.data, Cow::Borrowed(_)));
        assert!(matches!(a.timestamp, Some(Cow::Borrowed(_))));
        assert!(matches!(a.participant_raw_id, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let f = br#"{"kind":"AudioData","audioData":{"data":"AQID\u002BBAU=","participantRawID":"8:acs:\"x\""}}"#;
        let a = audio(f);
        assert_eq!(a.data, "AQID+BAU=");
        assert!(matches!(a.data, Cow::Owned(_)));
        assert_eq!(a.participant(), Some("8:acs:\"x\""));
    }

    #[test]
    fn kind_is_case_insensitive() {
        for kind in ["AudioData", "audioData", "audiodata", "AUDIODATA"] {
            let f = format!(r#"{{"kind":"{kind}","audioData":{{"data":"AA=="}}}}"#);
            assert_eq!(audio(f.as_bytes()).data, "AA==", "{kind}");
        }
        let f = br#"{"kind":"transcriptiondata","transcriptionData":{"resultStatus":"FINAL"}}"#;
        assert_eq!(transcription(f).result_status, Some(ResultStatus::Final));
        let f = br#"{"kind":"TranscriptionData","transcriptionData":{"resultStatus":"partial"}}"#;
        assert_eq!(transcription(f).result_status, Some(ResultStatus::Other));
    }

    #[test]
    fn pascal_case_keys() {
        let f = br#"{"Kind":"AudioData","AudioData":{"Data":"AA==","Timestamp":"2024-01-01T00:00:00Z","ParticipantRawID":"4:+1","Silent":true}}"#;
        let a = audio(f);
        assert_eq!(a.data, "AA==");
        assert_eq!(a.timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(a.participant(), Some("4:+1"));
        assert!(a.silent);
        let f = br#"{"Kind":"AudioMetadata","AudioMetadata":{"SampleRate":24000,"Channels":1}}"#;
        let Inbound::AudioMetadata(m) = parse_ok(f) else {
            panic!()
        };
        assert_eq!(m.sample_rate, Some(24000));
    }

    #[test]
    fn unknown_kind_is_unknown() {
        let f = br#"{"kind":"DtmfMetadata","dtmfMetadata":{"data":"1"}}"#;
        let m = parse_ok(f);
        assert_eq!(m.kind(), InboundKind::Unknown);
        assert_eq!(
            m,
            Inbound::Unknown {
                kind: Cow::Borrowed("DtmfMetadata")
            }
        );
        // Unknown kind with a known payload key beside it: still Unknown.
        let f = br#"{"kind":"Future","audioData":{"data":"AA=="}}"#;
        assert_eq!(parse_ok(f).kind(), InboundKind::Unknown);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let f = br#"{"kind":"AudioData","version":[1,{"a":null}],"audioData":{"data":"AA==","future":{"x":[1,2,3]},"silent":true,"n":1.5e3},"extra":"y"}"#;
        let a = audio(f);
        assert_eq!(a.data, "AA==");
        assert!(a.silent);
    }

    #[test]
    fn payload_before_kind() {
        let f = br#"{"audioData":{"data":"AA==","participantRawID":""},"kind":"AudioData"}"#;
        let a = audio(f);
        assert_eq!(a.data, "AA==");
        assert_eq!(a.participant_raw_id.as_deref(), Some(""));
        assert_eq!(a.participant(), None, "empty participant means mixed");
    }

    #[test]
    fn other_payloads_are_skipped_once_kind_is_known() {
        // The dtmfData object is malformed for DtmfData (no `data`) but is not looked at.
        let f = br#"{"kind":"AudioData","dtmfData":{"x":1},"audioData":{"data":"AA=="}}"#;
        assert_eq!(audio(f).data, "AA==");
    }

    #[test]
    fn silent_null_and_mark() {
        let f = br#"{"kind":"AudioData","audioData":{"data":"AA==","silent":null,"mark":{"id":"m-1"}}}"#;
        let a = audio(f);
        assert!(!a.silent);
        assert_eq!(
            a.mark,
            Some(Mark {
                id: Some(Cow::Borrowed("m-1")),
                sequence: None
            })
        );
        let f = br#"{"kind":"AudioData","audioData":{"data":"AA==","mark":{"sequence":42}}}"#;
        assert_eq!(audio(f).mark.unwrap().sequence, Some(42));
        let f = br#"{"kind":"AudioData","audioData":{"data":"AA==","mark":{"id":7}}}"#;
        assert_eq!(audio(f).mark.unwrap().id.as_deref(), Some("7"));
        let f = br#"{"kind":"AudioData","audioData":{"data":"AA==","mark":null}}"#;
        assert_eq!(audio(f).mark, None);
    }

    #[test]
    fn mark_data() {
        let f = br#"{"kind":"MarkData","markData":{"id":"abc","status":"Completed"}}"#;
        let Inbound::MarkData(m) = parse_ok(f) else {
            panic!()
        };
        assert_eq!(m.id.as_deref(), Some("abc"));
        assert_eq!(m.status.as_deref(), Some("Completed"));
        assert_eq!(m.sequence, None);
    }

    #[test]
    fn null_fields_are_none() {
        let f = br#"{"kind":"TranscriptionData","transcriptionData":{"text":"x","words":null,"sentimentAnalysisResult":null,"format":null,"confidence":null}}"#;
        let t = transcription(f);
        assert!(t.words.is_empty());
        assert_eq!((t.sentiment, t.format, t.confidence), (None, None, None));
        let f = br#"{"kind":"TranscriptionData","transcriptionData":{}}"#;
        assert_eq!(transcription(f).text, "");
    }

    #[test]
    fn binary_frame_bytes_are_accepted() {
        let frame: Vec<u8> = br#"{"kind":"DtmfData","dtmfData":{"data":"9"}}"#.to_vec();
        let Inbound::DtmfData(d) = parse_inbound(&frame).unwrap() else {
            panic!()
        };
        assert_eq!(d.data, "9");
    }

    // ---- errors --------------------------------------------------------------------------------

    #[test]
    fn non_utf8_is_not_utf8() {
        let mut f = br#"{"kind":"AudioData","audioData":{"data":"AA=="}}"#.to_vec();
        f[42] = 0xff;
        assert_eq!(parse_inbound(&f), Err(ProtocolError::NotUtf8));
        // Inside an ignored field too.
        let f = b"{\"kind\":\"AudioData\",\"x\":\"\xc3\x28\",\"audioData\":{\"data\":\"AA==\"}}";
        assert_eq!(parse_inbound(f), Err(ProtocolError::NotUtf8));
        assert_eq!(parse_outbound(f), Err(ProtocolError::NotUtf8));
    }

    #[test]
    fn truncated_json_is_json_error() {
        let full = br#"{"kind":"AudioData","audioData":{"data":"AA==","silent":false}}"#;
        for cut in [0, 1, 10, 30, full.len() - 1] {
            let e = parse_inbound(&full[..cut]).unwrap_err();
            assert!(matches!(e, ProtocolError::Json(_)), "cut {cut}: {e:?}");
            assert_eq!(e.reason(), "malformed_json");
        }
    }

    #[test]
    fn non_object_is_json_error() {
        for f in [
            &b"[]"[..],
            b"\"AudioData\"",
            b"42",
            b"null",
            br#"["AudioData",{"data":"AA=="}]"#,
        ] {
            let e = parse_inbound(f).unwrap_err();
            assert!(matches!(e, ProtocolError::Json(_)), "{e:?}");
        }
    }

    #[test]
    fn missing_payload() {
        let f = br#"{"kind":"AudioData"}"#;
        assert_eq!(
            parse_inbound(f),
            Err(ProtocolError::MissingPayload { kind: "AudioData" })
        );
        let f = br#"{"kind":"TranscriptionMetadata","transcriptionMetadata":null}"#;
        let e = parse_inbound(f).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::MissingPayload {
                kind: "TranscriptionMetadata"
            }
        );
        assert_eq!(e.reason(), "missing_payload");
        // Payload of another kind does not count.
        let f = br#"{"kind":"DtmfData","audioData":{"data":"AA=="}}"#;
        assert_eq!(
            parse_inbound(f),
            Err(ProtocolError::MissingPayload { kind: "DtmfData" })
        );
    }

    #[test]
    fn missing_kind() {
        for f in [
            &br#"{"audioData":{"data":"AA=="}}"#[..],
            br#"{}"#,
            br#"{"kind":null,"audioData":{"data":"AA=="}}"#,
        ] {
            let e = parse_inbound(f).unwrap_err();
            assert_eq!(e, ProtocolError::MissingKind);
            assert_eq!(e.reason(), "missing_kind");
        }
    }

    #[test]
    fn wrong_types_are_json_errors() {
        for f in [
            &br#"{"kind":"AudioMetadata","audioMetadata":{"sampleRate":"abc"}}"#[..],
            br#"{"kind":"AudioMetadata","audioMetadata":{"sampleRate":-1}}"#,
            br#"{"kind":"AudioMetadata","audioMetadata":{"channels":70000}}"#,
            br#"{"kind":"AudioData","audioData":{"data":5}}"#,
            br#"{"kind":"AudioData","audioData":{"data":"AA==","silent":"no"}}"#,
            br#"{"kind":"AudioData","audioData":{"data":"AA==","timestamp":1}}"#,
            br#"{"kind":"AudioData","audioData":{}}"#,
            br#"{"kind":"AudioData","audioData":"AA=="}"#,
            br#"{"kind":42,"audioData":{"data":"AA=="}}"#,
            br#"{"kind":"DtmfData","dtmfData":{}}"#,
            br#"{"kind":"TranscriptionData","transcriptionData":{"offset":1.5}}"#,
            br#"{"kind":"TranscriptionData","transcriptionData":{"words":[{"text":1}]}}"#,
            br#"{"kind":"AudioData","kind":"AudioData","audioData":{"data":"AA=="}}"#,
        ] {
            let e = parse_inbound(f).unwrap_err();
            assert!(
                matches!(e, ProtocolError::Json(_)),
                "{e:?} for {}",
                String::from_utf8_lossy(f)
            );
        }
    }

    #[test]
    fn error_display_fits_close_reason() {
        let huge = format!(
            r#"{{"kind":"AudioMetadata","audioMetadata":{{"sampleRate":"{}"}}}}"#,
            "é".repeat(5000)
        );
        let e = parse_inbound(huge.as_bytes()).unwrap_err();
        assert!(matches!(e, ProtocolError::Json(_)));
        assert!(e.to_string().len() <= 100, "{}", e.to_string().len());
        for f in [&b"{"[..], b"\xff", br#"{"kind":"AudioData"}"#, b"{}"] {
            let e = parse_inbound(f).unwrap_err();
            assert!(e.to_string().len() <= 100, "{e}");
        }
    }

    // ---- kinds ---------------------------------------------------------------------------------

    #[test]
    fn kind_labels() {
        let labels: Vec<_> = InboundKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            labels,
            [
                "audio_metadata",
                "audio_data",
                "dtmf_data",
                "transcription_metadata",
                "transcription_data",
                "mark_data",
                "unknown"
            ]
        );
        for k in InboundKind::ALL {
            match k.wire_name() {
                Some(w) => {
                    assert_eq!(InboundKind::from_wire(w), k);
                    assert_eq!(InboundKind::from_wire(&w.to_ascii_uppercase()), k);
                }
                None => assert_eq!(k, InboundKind::Unknown),
            }
        }
        assert_eq!(InboundKind::from_wire("Audio"), InboundKind::Unknown);
    }

    // ---- outbound ------------------------------------------------------------------------------

    #[test]
    fn every_outbound_vector_parses() {
        let dir = crate::testvec::dir();
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !(name.starts_with("ws_outbound_") && name.ends_with(".json")) {
                continue;
            }
            n += 1;
            let bytes = std::fs::read(&path).unwrap();
            let msg = parse_outbound(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.starts_with("ws_outbound_audio_data_") {
                assert_eq!(
                    msg,
                    Outbound::AudioData {
                        data: Cow::Borrowed("<base64 PCM16LE mono>")
                    },
                    "{name}"
                );
            } else if name.starts_with("ws_outbound_stop_audio_") {
                assert_eq!(msg, Outbound::StopAudio, "{name}");
            } else {
                panic!("{name}: unexpected outbound vector");
            }
        }
        assert!(n >= 8, "only {n} outbound vectors found");
    }

    #[test]
    fn stop_audio_json_matches_js_and_java_vectors() {
        for name in [
            "ws_outbound_stop_audio_js_sdk.json",
            "ws_outbound_stop_audio_java_sdk.json",
        ] {
            let v = vector(name);
            assert_eq!(std::str::from_utf8(&v).unwrap().trim(), STOP_AUDIO_JSON);
        }
        assert_eq!(
            parse_outbound(STOP_AUDIO_JSON.as_bytes()),
            Ok(Outbound::StopAudio)
        );
    }

    /// The bytes the JS SDK 1.6.0 helpers produced when run (see the fixture's provenance):
    /// field set, order and spelling exactly, for 0, 8, 640 and 960 bytes of PCM.
    #[test]
    fn outbound_messages_are_byte_identical_to_the_js_sdk_helpers() {
        let v: serde_json::Value =
            serde_json::from_slice(&vector("js_sdk_1.6.0_outbound_helpers_run.json")).unwrap();
        let cases = v["audioData"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        let mut out = String::new();
        for case in cases {
            let hex = case["pcmHex"].as_str().unwrap();
            let pcm: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            write_outbound_audio(&mut out, &pcm);
            assert_eq!(out, case["json"].as_str().unwrap(), "{}", case["name"]);
            assert_eq!(out.len(), outbound_audio_json_len(pcm.len()));
        }
        assert_eq!(STOP_AUDIO_JSON, v["stopAudio"].as_str().unwrap());
    }

    #[test]
    fn outbound_audio_writer_round_trips() {
        let pcm: Vec<u8> = (0..960u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = String::new();
        write_outbound_audio(&mut out, &pcm);
        assert_eq!(out.len(), outbound_audio_json_len(pcm.len()));
        let Outbound::AudioData { data } = parse_outbound(out.as_bytes()).unwrap() else {
            panic!("{out}")
        };
        let mut back = Vec::new();
        super::super::b64::decode_base64_into(data.as_bytes(), &mut back).unwrap();
        assert_eq!(back, pcm);

        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pcm);
        // Same bytes as the JS SDK vector (derived from its source) once the data placeholder
        // is substituted; no nulls anywhere.
        let js = String::from_utf8(vector("ws_outbound_audio_data_js_sdk.json")).unwrap();
        assert_eq!(js.trim().replace("<base64 PCM16LE mono>", &b64), out);
        assert!(!out.contains("null"), "{out}");

        // Buffer reuse: no growth once capacity suffices; empty audio is valid too.
        let cap = out.capacity();
        let ptr = out.as_ptr();
        write_outbound_audio(&mut out, &pcm[..640]);
        assert_eq!((out.capacity(), out.as_ptr()), (cap, ptr));
        write_outbound_audio(&mut out, &[]);
        assert_eq!(
            parse_outbound(out.as_bytes()),
            Ok(Outbound::AudioData {
                data: Cow::Borrowed("")
            })
        );
    }

    #[test]
    fn outbound_shapes() {
        let cases: &[(&[u8], Outbound<'_>)] = &[
            (
                br#"{"kind":"audioData","audioData":{"data":"AA=="},"stopAudio":{}}"#,
                Outbound::AudioData {
                    data: Cow::Borrowed("AA=="),
                },
            ),
            (
                br#"{"StopAudio":null,"AudioData":{"Data":"AA=="},"Kind":"AudioData"}"#,
                Outbound::AudioData {
                    data: Cow::Borrowed("AA=="),
                },
            ),
            (
                br#"{"kind":"AUDIODATA","audioData":{"data":"AQID\u002BBAU="}}"#,
                Outbound::AudioData {
                    data: Cow::Owned("AQID+BAU=".into()),
                },
            ),
            (br#"{"kind":"stopaudio"}"#, Outbound::StopAudio),
            (
                br#"{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}"#,
                Outbound::StopAudio,
            ),
            // kind decides: audioData beside a stop kind is not parsed.
            (
                br#"{"kind":"StopAudio","audioData":{"bogus":1}}"#,
                Outbound::StopAudio,
            ),
            (
                br#"{"kind":"markAudio","markAudio":{}}"#,
                Outbound::Unknown {
                    kind: Cow::Borrowed("markAudio"),
                },
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(
                &parse_outbound(frame).unwrap(),
                expected,
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
        assert_eq!(
            parse_outbound(br#"{"kind":"audioData","stopAudio":{}}"#),
            Err(ProtocolError::MissingPayload { kind: "AudioData" })
        );
        assert_eq!(
            parse_outbound(br#"{"audioData":{"data":"AA=="}}"#),
            Err(ProtocolError::MissingKind)
        );
        assert!(matches!(
            parse_outbound(br#"{"kind":"audioData","audioData":{"isSilent":true}}"#),
            Err(ProtocolError::Json(_))
        ));
        assert!(matches!(
            parse_outbound(br#"{"kind":"audioData","#),
            Err(ProtocolError::Json(_))
        ));
    }

    // ---- builders ------------------------------------------------------------------------------

    #[test]
    fn inbound_audio_data_builder() {
        let mut out = String::new();
        inbound_audio_data_json(
            &mut out,
            "AQIDBAU=",
            "2024-11-15T19:16:12.925Z",
            Some("8:acs:\"q\"\\\n\u{1}"),
            true,
        );
        let a = audio(out.as_bytes());
        assert_eq!(a.data, "AQIDBAU=");
        assert_eq!(a.timestamp.as_deref(), Some("2024-11-15T19:16:12.925Z"));
        assert_eq!(a.participant(), Some("8:acs:\"q\"\\\n\u{1}"));
        assert!(a.silent);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();

        inbound_audio_data_json(&mut out, "AA==", "2024-01-01T00:00:00Z", None, false);
        assert_eq!(
            out,
            r#"{"kind":"AudioData","audioData":{"timestamp":"2024-01-01T00:00:00Z","data":"AA==","silent":false}}"#
        );
        let a = audio(out.as_bytes());
        assert_eq!(a.participant_raw_id, None);
        assert!(!a.silent);
    }

    #[test]
    fn inbound_audio_metadata_builder() {
        let json = inbound_audio_metadata_json(16000, "89e8cb59-b991-48b0-b154-1db84f16a077");
        let expected = String::from_utf8(vector("ws_inbound_audio_metadata.json")).unwrap();
        let a: serde_json::Value = serde_json::from_str(&json).unwrap();
        let b: serde_json::Value = serde_json::from_str(&expected).unwrap();
        assert_eq!(a, b);
        let json = inbound_audio_metadata_json(24000, "s");
        let Inbound::AudioMetadata(m) = parse_ok(json.as_bytes()) else {
            panic!()
        };
        assert_eq!((m.sample_rate, m.length), (Some(24000), Some(960)));
    }

    #[test]
    fn serialize_shape() {
        let msg = Inbound::TranscriptionData(TranscriptionData {
            text: "hi".into(),
            sentiment: Some("positive".into()),
            result_status: Some(ResultStatus::Intermediate),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "TranscriptionData",
                "transcriptionData": {
                    "text": "hi",
                    "resultStatus": "Intermediate",
                    "sentimentAnalysisResult": {"sentiment": "positive"}
                }
            })
        );
        let u = Inbound::Unknown { kind: "X".into() };
        assert_eq!(serde_json::to_string(&u).unwrap(), r#"{"kind":"X"}"#);
    }
}
