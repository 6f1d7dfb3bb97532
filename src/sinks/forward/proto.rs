//! The forward protocol's messages, pure: the downstream URL template, the JSON text messages
//! the gateway sends (`start`, `format`, `stream_open`, the call's events, `barge_in`, `end`,
//! and in `acs` mode the ACS-shaped `AudioMetadata`, `AudioData` and `DtmfData`), and the parser
//! for what a target sends back ([`parse_upstream_text`]). The schema is documented in the parent
//! module.

use super::{Encoding, ForwardMode, Per};
use crate::pipeline::event_json::EventJson;
use crate::pipeline::frame::{CallEvent, CallInfo, StreamId, StreamInfo, StreamKind, StreamStats};
use crate::protocol::error::ProtocolError;
use crate::protocol::media::{parse_outbound, Outbound};
use crate::protocol::timestamp::format_timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// Version of the downstream protocol, sent in `start` as `protocol`.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The placeholders a URL template may hold.
pub(crate) const PLACEHOLDERS: [&str; 2] = ["{call}", "{participant}"];

/// Percent-encodes one URL path segment or query value: every byte outside
/// `A-Z a-z 0-9 - . _ ~` becomes `%XX`, so no value can add a path segment, a query or a
/// fragment. A value that is empty or only dots (`.`, `..`, which URL normalisation would treat as
/// a path step) gets a leading `_`.
pub(crate) fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    if value.bytes().all(|b| b == b'.') {
        out.push('_');
    }
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The `{participant}` value of a stream: the participant's rawId, `mixed` for ACS's mixed
/// stream, `mix` for the gateway's mix.
pub(crate) fn participant_value(stream: &StreamInfo) -> &str {
    match (&stream.participant, stream.kind) {
        (Some(p), _) => p,
        (None, StreamKind::Mix) => "mix",
        (None, _) => "mixed",
    }
}

/// Fills a URL template: `{call}` becomes the call's label and `{participant}` the stream's
/// [`participant_value`] (empty when there is no stream), both through [`encode_component`].
pub(crate) fn render_url(template: &str, call: &CallInfo, stream: Option<&StreamInfo>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{call}") {
            out.push_str(&encode_component(&call.label));
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{participant}") {
            out.push_str(&encode_component(stream.map_or("", participant_value)));
            rest = t;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `{…}` placeholders in `template` that are not in [`PLACEHOLDERS`].
pub(crate) fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        match tail.find('}') {
            Some(j) => {
                let p = &tail[..=j];
                if !PLACEHOLDERS.contains(&p) {
                    found.push(p.to_string());
                }
                rest = &tail[j + 1..];
            }
            None => {
                found.push(tail.to_string());
                break;
            }
        }
    }
    found
}

/// The stream kind's wire name.
pub(crate) fn kind_str(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Participant => "participant",
        StreamKind::Mixed => "mixed",
        StreamKind::Mix => "mix",
        StreamKind::Outbound => "outbound",
    }
}

fn ts(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    format_timestamp(ms, &mut s);
    s
}

/// The stream object of `start` and `stream_open`:
/// `{"id","kind","participant","sampleRate","startTime"}`.
pub(crate) fn stream_json(s: &StreamInfo) -> Value {
    json!({
        "id": s.id,
        "kind": kind_str(s.kind),
        "participant": s.participant.as_deref(),
        "sampleRate": s.sample_rate,
        "startTime": s.start_unix_ms.map(ts),
    })
}

/// The `format` object: `{"encoding","sampleRate","channels":1}`.
pub(crate) fn format_json(encoding: Encoding, rate: u32) -> Value {
    json!({"encoding": encoding.as_str(), "sampleRate": rate, "channels": 1})
}

/// What a `start` message says.
#[derive(Debug)]
pub(crate) struct Start<'a> {
    /// The call.
    pub call: &'a CallInfo,
    /// Connection granularity.
    pub per: Per,
    /// Audio framing.
    pub mode: ForwardMode,
    /// Sample encoding of binary audio.
    pub encoding: Encoding,
    /// Sample rate of the audio that follows.
    pub rate: u32,
    /// The participant rawId this connection is for (`per = "participant"`).
    pub participant: Option<&'a str>,
    /// Forwarded streams open now (the first is `stream`).
    pub streams: &'a [Arc<StreamInfo>],
    /// The call accepts audio back.
    pub bidirectional: bool,
    /// 1 for the first connection of this downstream connection, n for the n-th (a reconnect).
    pub connection: u32,
}

/// The `start` message (first on every connection, reconnects included).
pub(crate) fn start_message(s: &Start<'_>) -> String {
    let c = s.call;
    json!({
        "type": "start",
        "protocol": PROTOCOL_VERSION,
        "call": {
            "id": c.id,
            "label": c.label,
            "callConnectionId": c.call_connection_id,
            "correlationId": c.correlation_id,
        },
        "per": s.per.as_str(),
        "participant": s.participant,
        "stream": s.streams.first().map(|x| stream_json(x)),
        "streams": s.streams.iter().map(|x| stream_json(x)).collect::<Vec<_>>(),
        "format": format_json(s.encoding, s.rate),
        "mode": s.mode.as_str(),
        "bidirectional": s.bidirectional,
        "connection": s.connection,
    })
    .to_string()
}

/// `{"type":"format",…}`: the audio that follows has this format (a mid-call rate change).
pub(crate) fn format_message(encoding: Encoding, rate: u32) -> String {
    json!({"type": "format", "encoding": encoding.as_str(), "sampleRate": rate, "channels": 1})
        .to_string()
}

/// `{"type":"stream_open","stream":{…}}`.
pub(crate) fn stream_open_message(s: &StreamInfo) -> String {
    json!({"type": "stream_open", "stream": stream_json(s)}).to_string()
}

/// `{"type":"stream_close","stream":<id>,…counters}`.
pub(crate) fn stream_close_message(stream: StreamId, st: &StreamStats) -> String {
    json!({"type": "stream_close", "stream": stream, "frames": st.frames, "samples": st.samples,
           "gapsFilled": st.gaps, "lateFrames": st.late, "duplicateFrames": st.duplicates})
    .to_string()
}

/// `{"type":"gap","stream":<id>,"samples":n}`: `n` samples of silence were not sent.
pub(crate) fn gap_message(stream: StreamId, samples: u64) -> String {
    json!({"type": "gap", "stream": stream, "samples": samples}).to_string()
}

/// `{"type":"barge_in","stream":<id>,"participant":…,"pos":n,"generation":g}`.
pub(crate) fn barge_in_message(
    stream: StreamId,
    participant: Option<&str>,
    pos: u64,
    generation: u64,
) -> String {
    json!({"type": "barge_in", "stream": stream, "participant": participant, "pos": pos,
        "generation": generation})
    .to_string()
}

/// `{"type":"end","reason":…}`, the last message before the close (1000).
pub(crate) fn end_message(reason: &str) -> String {
    json!({"type": "end", "reason": reason}).to_string()
}

/// The message for a call event. `participant` resolves a stream id to its participant rawId.
/// In `acs` mode DTMF goes out as ACS `DtmfData`; every other event is a `{"type":…}` message.
pub(crate) fn event_message(
    mode: ForwardMode,
    event: &CallEvent,
    participant: impl Fn(StreamId) -> Option<Arc<str>>,
) -> String {
    if let (
        ForwardMode::Acs,
        CallEvent::Dtmf {
            tone,
            participant,
            unix_ms,
        },
    ) = (mode, event)
    {
        let mut d = serde_json::Map::new();
        d.insert("data".into(), json!(tone));
        if let Some(ms) = unix_ms {
            d.insert("timestamp".into(), json!(ts(*ms)));
        }
        if let Some(p) = participant {
            d.insert("participantRawID".into(), json!(p));
        }
        return json!({"kind": "DtmfData", "dtmfData": d}).to_string();
    }
    let speaker = match event {
        CallEvent::SpeechStarted { stream, .. } | CallEvent::SpeechEnded { stream, .. } => {
            participant(*stream)
        }
        _ => None,
    };
    // the one wire shape of call events (shared with the NATS sink)
    serde_json::to_string(&EventJson {
        event,
        stream_participant: speaker.as_deref(),
    })
    .unwrap_or_default()
}

/// ISO-8601 time of sample `pos` of `stream` (ACS `AudioData.timestamp`): the stream's start time
/// (else the call's open time plus the stream's offset on the call timeline) plus `pos` samples.
pub(crate) fn sample_time(stream: &StreamInfo, pos: u64, out: &mut String) {
    let rate = u64::from(stream.sample_rate.max(1));
    let start = stream
        .start_unix_ms
        .unwrap_or_else(|| stream.call.opened_unix_ms + (stream.call_offset * 1000 / rate) as i64);
    out.clear();
    format_timestamp(start + (pos * 1000 / rate) as i64, out);
}

/// What one text message from a target asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Upstream<'a> {
    /// ACS-format `AudioData`: base64 PCM16LE to play.
    AcsAudio(Cow<'a, str>),
    /// `{"type":"format"}`: binary audio from now on is at this rate / encoding (each `None`
    /// keeps the current value).
    Format {
        /// Samples per second.
        rate: Option<u32>,
        /// Sample encoding.
        encoding: Option<Encoding>,
    },
    /// `{"type":"stop"}`, `{"type":"clear"}` or ACS `StopAudio`: stop playback now.
    Stop,
    /// Anything else well-formed (a `type` or `kind` the gateway does not act on).
    Ignored,
}

/// Why a target's message was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum UpstreamError {
    /// Not JSON, or JSON of the wrong shape.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A `format` message with a rate or encoding the gateway cannot take.
    #[error("unsupported format: {0}")]
    Format(String),
}

#[derive(Deserialize)]
struct TypeProbe<'a> {
    #[serde(rename = "type", default, borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(rename = "sampleRate", default)]
    sample_rate: Option<u32>,
    #[serde(default, borrow)]
    encoding: Option<Cow<'a, str>>,
}

/// Parses a text message from a target: a gateway message (`type`) or an ACS outbound message
/// (`kind`, any casing; see [`parse_outbound`]).
pub(crate) fn parse_upstream_text(text: &[u8]) -> Result<Upstream<'_>, UpstreamError> {
    let probe: TypeProbe<'_> = serde_json::from_slice(text).map_err(ProtocolError::json)?;
    if let Some(ty) = probe.ty {
        return Ok(match ty.to_ascii_lowercase().as_str() {
            "stop" | "clear" => Upstream::Stop,
            "format" => {
                let encoding = match probe.encoding.as_deref() {
                    None => None,
                    Some(e) => Some(
                        Encoding::from_wire(e)
                            .ok_or_else(|| UpstreamError::Format(format!("encoding {e:?}")))?,
                    ),
                };
                if let Some(r) = probe.sample_rate {
                    if !(8_000..=48_000).contains(&r) {
                        return Err(UpstreamError::Format(format!("sampleRate {r}")));
                    }
                }
                Upstream::Format {
                    rate: probe.sample_rate,
                    encoding,
                }
            }
            _ => Upstream::Ignored,
        });
    }
    Ok(match parse_outbound(text)? {
        Outbound::AudioData { data } => Upstream::AcsAudio(data),
        Outbound::StopAudio => Upstream::Stop,
        Outbound::Unknown { .. } => Upstream::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::contract;

    #[test]
    fn components_are_percent_encoded_and_cannot_escape_their_segment() {
        assert_eq!(encode_component("plain-id_1.x~"), "plain-id_1.x~");
        assert_eq!(encode_component("8:acs:a b/c"), "8%3Aacs%3Aa%20b%2Fc");
        assert_eq!(
            encode_component("../../etc/passwd"),
            "..%2F..%2Fetc%2Fpasswd"
        );
        assert_eq!(encode_component("a?b#c&d=e%"), "a%3Fb%23c%26d%3De%25");
        assert_eq!(encode_component(".."), "_..");
        assert_eq!(encode_component("."), "_.");
        assert_eq!(encode_component(""), "_");
        assert_eq!(encode_component("é"), "%C3%A9");
        assert_eq!(encode_component("4:+1555"), "4%3A%2B1555");
    }

    #[test]
    fn url_templates() {
        let c = contract::call(7); // label "contract-call-7"
        let s = contract::stream(&c, 3, Some("8:acs:x/y"), 16_000);
        assert_eq!(
            render_url(
                "ws://127.0.0.1:9/c/{call}/p/{participant}?x={call}",
                &c,
                Some(&s)
            ),
            "ws://127.0.0.1:9/c/contract-call-7/p/8%3Aacs%3Ax%2Fy?x=contract-call-7"
        );
        let mixed = contract::stream(&c, 4, None, 16_000);
        assert_eq!(
            render_url("ws://h/{participant}", &c, Some(&mixed)),
            "ws://h/mixed"
        );
        let hostile = crate::pipeline::frame::CallInfo::new(1, Some("..".into()), None, None, 0);
        assert_eq!(
            render_url("ws://h/a/{call}", &hostile, None),
            "ws://h/a/_.."
        );
        assert_eq!(render_url("ws://h/{x}{", &c, None), "ws://h/{x}{");
        assert_eq!(
            unknown_placeholders("ws://h/{call}/{who}/{participant}/{"),
            vec!["{who}".to_string(), "{".to_string()]
        );
        assert!(unknown_placeholders("ws://h/{call}").is_empty());
    }

    #[test]
    fn start_message_shape() {
        let c = Arc::new(CallInfo::new(
            9,
            Some("conn-1".into()),
            Some("corr-1".into()),
            None,
            1_731_698_172_925,
        ));
        let s = contract::stream(&c, 5, Some("8:acs:alice"), 24_000);
        let text = start_message(&Start {
            call: &c,
            per: Per::Participant,
            mode: ForwardMode::Acs,
            encoding: Encoding::PcmS16le,
            rate: 24_000,
            participant: Some("8:acs:alice"),
            streams: std::slice::from_ref(&s),
            bidirectional: true,
            connection: 2,
        });
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "start",
                "protocol": 1,
                "call": {"id": 9, "label": "conn-1", "callConnectionId": "conn-1", "correlationId": "corr-1"},
                "per": "participant",
                "participant": "8:acs:alice",
                "stream": {"id": 5, "kind": "participant", "participant": "8:acs:alice",
                           "sampleRate": 24000, "startTime": "2023-11-14T22:13:20.000Z"},
                "streams": [{"id": 5, "kind": "participant", "participant": "8:acs:alice",
                             "sampleRate": 24000, "startTime": "2023-11-14T22:13:20.000Z"}],
                "format": {"encoding": "pcm_s16le", "sampleRate": 24000, "channels": 1},
                "mode": "acs",
                "bidirectional": true,
                "connection": 2
            })
        );
        // per call, before any forwarded stream opened
        let v: Value = serde_json::from_str(&start_message(&Start {
            call: &c,
            per: Per::Call,
            mode: ForwardMode::Pcm,
            encoding: Encoding::PcmF32le,
            rate: 16_000,
            participant: None,
            streams: &[],
            bidirectional: false,
            connection: 1,
        }))
        .unwrap();
        assert_eq!(v["stream"], Value::Null);
        assert_eq!(v["streams"], json!([]));
        assert_eq!(v["participant"], Value::Null);
        assert_eq!(v["format"]["encoding"], "pcm_f32le");
        assert_eq!(v["mode"], "pcm");
    }

    #[test]
    fn event_messages() {
        let p = |s: StreamId| (s == 4).then(|| Arc::<str>::from("8:acs:bob"));
        let v: Value = serde_json::from_str(&event_message(
            ForwardMode::Pcm,
            &CallEvent::SpeechStarted {
                stream: 4,
                pos: 640,
            },
            p,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"type": "speech_started", "stream": 4, "participantRawId": "8:acs:bob", "pos": 640})
        );
        let dtmf = CallEvent::Dtmf {
            tone: "5".into(),
            participant: Some("8:acs:bob".into()),
            unix_ms: Some(1_731_698_172_925),
        };
        let v: Value = serde_json::from_str(&event_message(ForwardMode::Pcm, &dtmf, p)).unwrap();
        assert_eq!(
            v,
            json!({"type": "dtmf", "tone": "5", "participantRawId": "8:acs:bob", "time": "2024-11-15T19:16:12.925Z"})
        );
        // acs mode: what ACS itself sends, which the inbound parser reads back
        let text = event_message(ForwardMode::Acs, &dtmf, p);
        match crate::protocol::media::parse_inbound(text.as_bytes()).unwrap() {
            crate::protocol::media::Inbound::DtmfData(d) => {
                assert_eq!(d.data, "5");
                assert_eq!(d.participant_raw_id.as_deref(), Some("8:acs:bob"));
            }
            other => panic!("{other:?}"),
        }
        let v: Value = serde_json::from_str(&barge_in_message(4, Some("8:acs:bob"), 9, 2)).unwrap();
        assert_eq!(
            v,
            json!({"type": "barge_in", "stream": 4, "participant": "8:acs:bob", "pos": 9,
                "generation": 2})
        );
        let v: Value = serde_json::from_str(&end_message("peer closed")).unwrap();
        assert_eq!(v, json!({"type": "end", "reason": "peer closed"}));
    }

    #[test]
    fn sample_times_follow_the_stream_start() {
        let c = contract::call(1);
        let s = contract::stream(&c, 1, None, 16_000); // starts at 1_700_000_000_000
        let mut out = String::new();
        sample_time(&s, 16_000 + 320, &mut out);
        assert_eq!(out, "2023-11-14T22:13:21.020Z");
    }

    #[test]
    fn upstream_gateway_messages() {
        assert_eq!(
            parse_upstream_text(br#"{"type":"stop"}"#),
            Ok(Upstream::Stop)
        );
        assert_eq!(
            parse_upstream_text(br#"{"type":"Clear"}"#),
            Ok(Upstream::Stop)
        );
        assert_eq!(
            parse_upstream_text(br#"{"type":"format","sampleRate":24000}"#),
            Ok(Upstream::Format {
                rate: Some(24_000),
                encoding: None
            })
        );
        assert_eq!(
            parse_upstream_text(br#"{"type":"format","encoding":"pcm_f32le"}"#),
            Ok(Upstream::Format {
                rate: None,
                encoding: Some(Encoding::PcmF32le)
            })
        );
        assert!(matches!(
            parse_upstream_text(br#"{"type":"format","sampleRate":7}"#),
            Err(UpstreamError::Format(_))
        ));
        assert!(matches!(
            parse_upstream_text(br#"{"type":"format","encoding":"mp3"}"#),
            Err(UpstreamError::Format(_))
        ));
        assert_eq!(
            parse_upstream_text(br#"{"type":"play"}"#),
            Ok(Upstream::Ignored)
        );
        assert!(parse_upstream_text(b"{nope").is_err());
        assert!(
            parse_upstream_text(br#"{"data":"AA=="}"#).is_err(),
            "no kind"
        );
    }

    #[test]
    fn upstream_acs_messages_in_every_fixture_casing() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vectors");
        let (mut audio, mut stop) = (0, 0);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !name.starts_with("ws_outbound_") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if name.starts_with("ws_outbound_audio_data_") {
                // the fixtures hold a placeholder where the base64 goes: put real audio there
                let text = text.replace("<base64 PCM16LE mono>", "AQACAA==");
                assert_eq!(
                    parse_upstream_text(text.as_bytes()),
                    Ok(Upstream::AcsAudio(Cow::Borrowed("AQACAA=="))),
                    "{name}"
                );
                audio += 1;
            } else {
                assert_eq!(
                    parse_upstream_text(text.as_bytes()),
                    Ok(Upstream::Stop),
                    "{name}"
                );
                stop += 1;
            }
        }
        assert!(
            audio >= 4 && stop >= 4,
            "{audio} audio, {stop} stop vectors"
        );
    }
}
