//! Parsing inbound frames: [`parse_inbound`] (the AudioData fast path), [`parse_inbound_str`]
//! (the same for text already known to be UTF-8) and [`parse_inbound_full`].

#[allow(unused_imports)]
use super::*;

/// Parses one inbound WebSocket frame (text or binary frame bytes, UTF-8 JSON).
///
/// See the [module docs](crate::media) for the accepted shapes. Errors: [`ProtocolError::NotUtf8`],
/// [`ProtocolError::Json`] (syntax, wrong field type, missing `data`),
/// [`ProtocolError::MissingKind`], [`ProtocolError::MissingPayload`].
pub fn parse_inbound(frame: &[u8]) -> Result<Inbound<'_>, ProtocolError> {
    if let Some(audio) = crate::fast::parse_audio_data(frame) {
        return Ok(Inbound::AudioData(audio));
    }
    parse_inbound_full(frame)
}

/// [`parse_inbound`] of a frame already known to be UTF-8 (a WebSocket text message: the
/// WebSocket layer validated it), so nothing is validated twice. Same results and errors.
pub fn parse_inbound_str(frame: &str) -> Result<Inbound<'_>, ProtocolError> {
    if let Some(audio) = crate::fast::parse_audio_data_str(frame) {
        return Ok(Inbound::AudioData(audio));
    }
    parse_json(frame)
}

/// [`parse_inbound`] without the AudioData fast path: always the full serde_json parser.
pub fn parse_inbound_full(frame: &[u8]) -> Result<Inbound<'_>, ProtocolError> {
    // Validating up front costs the same as serde_json's per-string validation in `from_slice`
    // (which `from_str` then skips), and also covers strings serde_json only skips over.
    let text = std::str::from_utf8(frame).map_err(|_| ProtocolError::NotUtf8)?;
    parse_json(text)
}

fn parse_json(text: &str) -> Result<Inbound<'_>, ProtocolError> {
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
pub(super) enum InboundKey {
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
pub(super) fn fill<T, E: de::Error>(
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
