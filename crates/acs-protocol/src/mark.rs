//! Audio marks (preview, docs/PROTOCOL.md §2.4): an outbound `AudioData` that carries a mark, and the
//! inbound `MarkData` ACS answers with once the marked audio was played (`Completed`) or flushed
//! by `StopAudio` (`Cancelled`).
//!
//! Wire shape. The JS SDK 1.6.0 has no marks; the .NET SDK 1.6 betas add
//! `OutStreamingData.GetAudioDataForOutbound(byte[] audioData, string markId)`, which sets
//! `AudioData.Mark = new MarkAudio { Id = markId }` (the mark rides on the audio it marks, after
//! `IsSilent`), and `MarkDataInternal` reads `{"id","status"}`. The gateway writes the JS SDK's
//! shape ([`write_outbound_audio`](crate::write_outbound_audio)) with the .NET beta's mark object
//! appended in camelCase, as the .NET internal models name it:
//!
//! ```text
//! {"kind":"audioData","audioData":{"data":"<b64>","isSilent":false,"mark":{"id":"<id>"}},"stopAudio":{}}
//! ```
//!
//! A receiver that does not know marks ignores the extra member (ACS's parser tolerates unknown
//! members: the Java SDK's `timestamp`/`participant` nulls are accepted). [`outbound_mark_id`]
//! reads the mark back (simulators, tests); [`mark_data_json`] builds ACS's answer.

/// `MarkData.status` when the marked audio was played.
pub const MARK_COMPLETED: &str = "Completed";
/// `MarkData.status` when the marked audio was flushed before it was played.
pub const MARK_CANCELLED: &str = "Cancelled";

/// Start of a marked outbound `AudioData`, up to the opening quote of the base64.
const PREFIX: &str = r#"{"kind":"audioData","audioData":{"data":""#;
/// From the closing quote of the base64 to the mark id (a JSON string follows).
const MIDDLE: &str = r#"","isSilent":false,"mark":{"id":"#;
/// After the mark id.
const SUFFIX: &str = r#"}},"stopAudio":{}}"#;

/// Clears `out` and writes an outbound `AudioData` carrying `pcm_le` (PCM16LE mono at the
/// stream's rate) and the mark `id` (JSON-escaped), as in the [module docs](self).
pub fn write_outbound_audio_marked(out: &mut String, pcm_le: &[u8], id: &str) {
    out.clear();
    let id_json = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    out.reserve(
        PREFIX.len()
            + base64_simd::STANDARD.encoded_length(pcm_le.len())
            + MIDDLE.len()
            + id_json.len()
            + SUFFIX.len(),
    );
    out.push_str(PREFIX);
    base64_simd::STANDARD.encode_append(pcm_le, out);
    out.push_str(MIDDLE);
    out.push_str(&id_json);
    out.push_str(SUFFIX);
}

/// The mark id of an outbound-format `AudioData` frame (`audioData.mark.id`, any key casing the
/// SDKs use; a numeric id or an older `sequence` as text), `None` when it carries no mark or is
/// not JSON.
pub fn outbound_mark_id(frame: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(frame).ok()?;
    let get = |v: &serde_json::Value, key: &str| -> Option<serde_json::Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let mark = get(&get(&v, "audioData")?, "mark")?;
    match get(&mark, "id").or_else(|| get(&mark, "sequence"))? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The inbound `MarkData` message ACS sends for mark `id` with `status`
/// ([`MARK_COMPLETED`] / [`MARK_CANCELLED`]):
/// `{"kind":"MarkData","markData":{"id":"…","status":"Completed"}}`.
pub fn mark_data_json(id: &str, status: &str) -> String {
    serde_json::json!({"kind": "MarkData", "markData": {"id": id, "status": status}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_inbound, parse_outbound, write_outbound_audio, Inbound, Outbound};

    #[test]
    fn marked_audio_is_the_js_shape_plus_the_mark_and_parses_as_audio() {
        let pcm = [1u8, 0, 2, 0, 3, 0];
        let mut plain = String::new();
        write_outbound_audio(&mut plain, &pcm);
        let mut marked = String::new();
        write_outbound_audio_marked(&mut marked, &pcm, "pb-7");
        assert_eq!(
            marked,
            r#"{"kind":"audioData","audioData":{"data":"AQACAAMA","isSilent":false,"mark":{"id":"pb-7"}},"stopAudio":{}}"#
        );
        // the same message as the unmarked one, but for the mark member
        assert_eq!(
            marked.replace(r#","mark":{"id":"pb-7"}"#, ""),
            plain,
            "{marked}"
        );
        assert_eq!(
            parse_outbound(marked.as_bytes()).unwrap(),
            Outbound::AudioData {
                data: "AQACAAMA".into()
            }
        );
        assert_eq!(outbound_mark_id(marked.as_bytes()).as_deref(), Some("pb-7"));
        assert_eq!(outbound_mark_id(plain.as_bytes()), None);
        assert_eq!(outbound_mark_id(b"{"), None);
        // ids are JSON-escaped
        write_outbound_audio_marked(&mut marked, &[], "a\"b");
        assert_eq!(outbound_mark_id(marked.as_bytes()).as_deref(), Some("a\"b"));
        // .NET casing and the older sequence form
        let dotnet =
            br#"{"Kind":"AudioData","AudioData":{"Data":"","Mark":{"Id":"x"}},"StopAudio":null}"#;
        assert_eq!(outbound_mark_id(dotnet).as_deref(), Some("x"));
        let seq = br#"{"kind":"audioData","audioData":{"data":"","mark":{"sequence":4}}}"#;
        assert_eq!(outbound_mark_id(seq).as_deref(), Some("4"));
    }

    /// The .NET SDK 1.6 beta's shapes (derived vectors, see fixtures/vectors/SOURCES.md).
    #[test]
    fn dotnet_beta_vectors() {
        let out = String::from_utf8(crate::testvec::bytes(
            "ws_outbound_audio_data_marked_dotnet_beta.json",
        ))
        .unwrap()
        .replace("<base64 PCM16LE mono>", "AQID")
        .into_bytes();
        assert_eq!(outbound_mark_id(&out).as_deref(), Some("mark-1"));
        assert_eq!(
            parse_outbound(&out).unwrap(),
            Outbound::AudioData {
                data: "AQID".into()
            }
        );
        let inb = crate::testvec::bytes("ws_inbound_mark_data_dotnet_beta.json");
        assert_eq!(
            String::from_utf8(inb.clone()).unwrap().trim(),
            mark_data_json("mark-1", MARK_COMPLETED)
        );
        assert!(matches!(parse_inbound(&inb).unwrap(), Inbound::MarkData(_)));
    }

    #[test]
    fn mark_data_answer_parses_as_inbound_mark_data() {
        let json = mark_data_json("pb-1", MARK_COMPLETED);
        let Inbound::MarkData(m) = parse_inbound(json.as_bytes()).unwrap() else {
            panic!("{json}")
        };
        assert_eq!(
            (m.id.as_deref(), m.status.as_deref()),
            (Some("pb-1"), Some("Completed"))
        );
    }
}
