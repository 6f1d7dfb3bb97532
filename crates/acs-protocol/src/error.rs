//! Errors of the protocol module: [`ProtocolError`] for whole frames and [`Base64Error`] for
//! audio payload decoding.

use std::fmt;

/// Maximum length in bytes of a [`ProtocolError`]'s `Display` output.
///
/// WebSocket close reasons are limited to 123 bytes; the error text is used as a close reason, so it
/// is kept well under that.
pub const MAX_ERROR_DISPLAY_LEN: usize = 100;

/// Prefix of the `Display` output of [`ProtocolError::Json`].
const JSON_PREFIX: &str = "malformed JSON: ";

/// Maximum length in bytes of the message kept in [`ProtocolError::Json`].
pub const MAX_JSON_MESSAGE_LEN: usize = MAX_ERROR_DISPLAY_LEN - JSON_PREFIX.len();

/// Why a WebSocket frame could not be turned into a protocol message.
///
/// `Display` output is always at most [`MAX_ERROR_DISPLAY_LEN`] bytes so that it can be used as a
/// WebSocket close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame bytes are not valid UTF-8.
    #[error("frame is not valid UTF-8")]
    NotUtf8,
    /// The frame is not valid JSON, or a field has the wrong JSON type. The message is the
    /// serde message, truncated (on a char boundary) to [`MAX_JSON_MESSAGE_LEN`] bytes.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The JSON object has no (or a `null`) `kind` discriminator.
    #[error("message has no `kind`")]
    MissingKind,
    /// The `kind` names a known message but its payload object is absent or `null`.
    #[error("missing payload object for kind {kind}")]
    MissingPayload {
        /// The canonical wire name of the kind, e.g. `"AudioData"`.
        kind: &'static str,
    },
}

impl ProtocolError {
    /// Builds a [`ProtocolError::Json`] from any error message, truncating it so that the
    /// `Display` output stays within [`MAX_ERROR_DISPLAY_LEN`] bytes.
    ///
    /// The message is formatted through a bounded writer, so a huge message (serde quotes
    /// offending string values) is never fully materialised.
    pub fn json(err: impl fmt::Display) -> Self {
        let mut w = BoundedWriter {
            buf: String::with_capacity(MAX_JSON_MESSAGE_LEN),
            limit: MAX_JSON_MESSAGE_LEN,
        };
        // An `Err` here only means the limit was reached; the prefix written so far is kept.
        let _ = fmt::write(&mut w, format_args!("{err}"));
        ProtocolError::Json(w.buf)
    }

    /// A short, stable label for metrics: `"not_utf8"`, `"malformed_json"`, `"missing_kind"` or
    /// `"missing_payload"`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::NotUtf8 => "not_utf8",
            ProtocolError::Json(_) => "malformed_json",
            ProtocolError::MissingKind => "missing_kind",
            ProtocolError::MissingPayload { .. } => "missing_payload",
        }
    }
}

/// A `fmt::Write` sink that keeps at most `limit` bytes, cutting on a char boundary.
struct BoundedWriter {
    buf: String,
    limit: usize,
}

impl fmt::Write for BoundedWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.limit - self.buf.len();
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.push_str(&s[..cut]);
        Err(fmt::Error)
    }
}

/// Why a base64 audio payload could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// The input is not valid padded standard base64 (bad length, bad padding, a character
    /// outside the alphabet, or non-zero trailing bits).
    #[error("invalid base64")]
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stable_labels() {
        assert_eq!(ProtocolError::NotUtf8.reason(), "not_utf8");
        assert_eq!(ProtocolError::json("x").reason(), "malformed_json");
        assert_eq!(ProtocolError::MissingKind.reason(), "missing_kind");
        assert_eq!(
            ProtocolError::MissingPayload { kind: "AudioData" }.reason(),
            "missing_payload"
        );
    }

    #[test]
    fn json_message_is_truncated_on_char_boundary() {
        // 3-byte chars: 84 is a multiple of 3, so use an offset to force a cut inside a char.
        let long = format!("a{}", "€".repeat(200));
        let e = ProtocolError::json(&long);
        let shown = e.to_string();
        assert!(shown.len() <= MAX_ERROR_DISPLAY_LEN, "{}", shown.len());
        assert!(shown.starts_with("malformed JSON: a€"));
        let ProtocolError::Json(msg) = &e else {
            panic!("not Json: {e:?}")
        };
        // 1 + 27 * 3 = 82 bytes; a 28th euro sign would need 85 > 84.
        assert_eq!(msg.chars().count(), 28);
        assert_eq!(msg.len(), 82);
    }

    #[test]
    fn short_json_message_is_kept_whole() {
        let e = ProtocolError::json("EOF while parsing an object at line 1 column 10");
        assert_eq!(
            e.to_string(),
            "malformed JSON: EOF while parsing an object at line 1 column 10"
        );
    }

    #[test]
    fn all_displays_fit_in_close_reason() {
        for e in [
            ProtocolError::NotUtf8,
            ProtocolError::MissingKind,
            ProtocolError::MissingPayload {
                kind: "TranscriptionMetadata",
            },
            ProtocolError::json("a".repeat(10_000)),
        ] {
            assert!(e.to_string().len() <= MAX_ERROR_DISPLAY_LEN, "{e}");
        }
    }
}
