//! Outbound messages (AudioData, StopAudio, marks): writing and parsing them, and the inbound JSON
//! builders simulators and tests use.

#[allow(unused_imports)]
use super::*;

/// The `StopAudio` message, exactly what the JS SDK's `createOutboundStopAudioData()` returns
/// (the Java SDK sends the same bytes): flushes ACS's playout queue (barge-in).
pub const STOP_AUDIO_JSON: &str = r#"{"kind":"stopAudio","stopAudio":{}}"#;

/// Start of the outbound `AudioData` message, up to the opening quote of the base64.
pub(super) const OUTBOUND_AUDIO_PREFIX: &str = r#"{"kind":"audioData","audioData":{"data":""#;
/// End of the outbound `AudioData` message, from the closing quote of the base64. The JS helper
/// builds `{kind, audioData: {data, timestamp: undefined, participant: undefined, isSilent:
/// false}, stopAudio: {}}` and `JSON.stringify` drops the `undefined` members: no nulls.
pub(super) const OUTBOUND_AUDIO_SUFFIX: &str = r#"","isSilent":false},"stopAudio":{}}"#;

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
pub(super) enum OutboundKind {
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
pub(super) struct OutboundEnvelope<'a> {
    kind: Option<Cow<'a, str>>,
    audio_data: Option<OutboundAudio<'a>>,
}

#[derive(serde::Deserialize)]
pub(super) struct OutboundAudio<'a> {
    #[serde(borrow, alias = "Data")]
    data: Cow<'a, str>,
}

pub(super) enum OutboundKey {
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
pub(super) fn push_json_str(out: &mut String, s: &str) {
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
