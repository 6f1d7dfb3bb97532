//! ACS media-streaming WebSocket messages (docs/PROTOCOL.md §1 inbound, §2 outbound).
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

mod messages;
mod outbound;
mod parse;
mod serde_util;
pub use messages::*;
pub use outbound::*;
pub use parse::*;
use serde_util::*;

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
