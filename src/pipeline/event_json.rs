//! The one wire shape of a [`CallEvent`]: every sink that sends or records events as JSON (the
//! NATS sink's `events` subject, the forward sink's `pcm` mode) serialises them with this, so
//! field names exist once. camelCase keys with ACS's naming (`participantRawId`); `type` is the
//! snake_case event name:
//!
//! | `type` | fields |
//! |---|---|
//! | `participant_joined`, `participant_left` | `stream`, `participantRawId` (`null` for a mixed stream) |
//! | `speech_started` | `stream`, `participantRawId` (the stream's, when the sink knows it), `pos` |
//! | `speech_ended` | `stream`, `participantRawId` (as above), `start`, `end` |
//! | `dtmf` | `tone`, `participantRawId`, `time` (ISO 8601, ACS's timestamp) |
//! | `transcription` | `text`, `participantRawId`, `final`, `confidence`, `offsetTicks`, `durationTicks` |
//! | `transcription_started` | `locale`, `subscriptionId` |
//! | `mark` | `id`, `status` |

use super::frame::CallEvent;
use crate::protocol::timestamp::format_timestamp;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// A [`CallEvent`] with the participant of its stream (for speech events, which name only the
/// stream): what sinks serialise. `CallEvent` itself serialises as `EventJson` without one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventJson<'a> {
    /// The event.
    pub event: &'a CallEvent,
    /// rawId of the participant of the event's stream, when the sink knows it (speech events).
    pub stream_participant: Option<&'a str>,
}

impl Serialize for CallEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventJson {
            event: self,
            stream_participant: None,
        }
        .serialize(s)
    }
}

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.event {
            CallEvent::ParticipantJoined {
                stream,
                participant,
            }
            | CallEvent::ParticipantLeft {
                stream,
                participant,
            } => {
                let kind = if matches!(self.event, CallEvent::ParticipantJoined { .. }) {
                    "participant_joined"
                } else {
                    "participant_left"
                };
                m.serialize_entry("type", kind)?;
                m.serialize_entry("stream", stream)?;
                m.serialize_entry("participantRawId", &participant.as_deref())?;
            }
            CallEvent::SpeechStarted { stream, pos } => {
                m.serialize_entry("type", "speech_started")?;
                m.serialize_entry("stream", stream)?;
                m.serialize_entry("participantRawId", &self.stream_participant)?;
                m.serialize_entry("pos", pos)?;
            }
            CallEvent::SpeechEnded { stream, start, end } => {
                m.serialize_entry("type", "speech_ended")?;
                m.serialize_entry("stream", stream)?;
                m.serialize_entry("participantRawId", &self.stream_participant)?;
                m.serialize_entry("start", start)?;
                m.serialize_entry("end", end)?;
            }
            CallEvent::Dtmf {
                tone,
                participant,
                unix_ms,
            } => {
                m.serialize_entry("type", "dtmf")?;
                m.serialize_entry("tone", tone)?;
                m.serialize_entry("participantRawId", participant)?;
                let time = unix_ms.map(|ms| {
                    let mut t = String::with_capacity(24);
                    format_timestamp(ms, &mut t);
                    t
                });
                m.serialize_entry("time", &time)?;
            }
            CallEvent::Transcription(t) => {
                m.serialize_entry("type", "transcription")?;
                m.serialize_entry("text", &t.text)?;
                m.serialize_entry("participantRawId", &t.participant)?;
                m.serialize_entry("final", &t.is_final)?;
                m.serialize_entry("confidence", &t.confidence)?;
                m.serialize_entry("offsetTicks", &t.offset_ticks)?;
                m.serialize_entry("durationTicks", &t.duration_ticks)?;
            }
            CallEvent::TranscriptionStarted {
                locale,
                subscription_id,
            } => {
                m.serialize_entry("type", "transcription_started")?;
                m.serialize_entry("locale", locale)?;
                m.serialize_entry("subscriptionId", subscription_id)?;
            }
            CallEvent::Mark { id, status } => {
                m.serialize_entry("type", "mark")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("status", status)?;
            }
            CallEvent::PlaybackCompleted(p) | CallEvent::PlaybackCancelled(p) => {
                let kind = if matches!(self.event, CallEvent::PlaybackCompleted(_)) {
                    "playback_completed"
                } else {
                    "playback_cancelled"
                };
                m.serialize_entry("type", kind)?;
                m.serialize_entry("id", &p.id)?;
                m.serialize_entry("frames", &p.frames)?;
                m.serialize_entry("source", p.source)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::frame::Transcript;
    use serde_json::{json, to_value};

    #[test]
    fn every_event_has_its_one_shape() {
        let p: Option<std::sync::Arc<str>> = Some("8:acs:a".into());
        let cases = [
            (
                CallEvent::ParticipantJoined {
                    stream: 1,
                    participant: p.clone(),
                },
                json!({"type": "participant_joined", "stream": 1, "participantRawId": "8:acs:a"}),
            ),
            (
                CallEvent::ParticipantLeft {
                    stream: 2,
                    participant: None,
                },
                json!({"type": "participant_left", "stream": 2, "participantRawId": null}),
            ),
            (
                CallEvent::SpeechEnded {
                    stream: 1,
                    start: 10,
                    end: 20,
                },
                json!({"type": "speech_ended", "stream": 1, "participantRawId": null, "start": 10, "end": 20}),
            ),
            (
                CallEvent::Dtmf {
                    tone: "5".into(),
                    participant: Some("4:+1".into()),
                    unix_ms: Some(0),
                },
                json!({"type": "dtmf", "tone": "5", "participantRawId": "4:+1", "time": "1970-01-01T00:00:00.000Z"}),
            ),
            (
                CallEvent::Transcription(Transcript {
                    text: "hi".into(),
                    participant: None,
                    is_final: true,
                    confidence: Some(0.5),
                    offset_ticks: Some(1),
                    duration_ticks: None,
                }),
                json!({"type": "transcription", "text": "hi", "participantRawId": null, "final": true,
                       "confidence": 0.5, "offsetTicks": 1, "durationTicks": null}),
            ),
            (
                CallEvent::TranscriptionStarted {
                    locale: Some("en-US".into()),
                    subscription_id: None,
                },
                json!({"type": "transcription_started", "locale": "en-US", "subscriptionId": null}),
            ),
            (
                CallEvent::Mark {
                    id: "m".into(),
                    status: None,
                },
                json!({"type": "mark", "id": "m", "status": null}),
            ),
        ];
        for (event, want) in cases {
            assert_eq!(to_value(&event).unwrap(), want);
        }
        let speech = CallEvent::SpeechStarted { stream: 3, pos: 7 };
        let v = to_value(EventJson {
            event: &speech,
            stream_participant: Some("8:acs:b"),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"type": "speech_started", "stream": 3, "participantRawId": "8:acs:b", "pos": 7})
        );
    }
}
