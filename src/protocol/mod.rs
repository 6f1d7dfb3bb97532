//! PURE: the ACS Call Automation media-streaming wire formats (PROTOCOL.md §1, §2).
//!
//! This module only turns bytes into values and back. It depends on serde / serde_json, base64
//! and bytes-level code only: no sockets, no tokio, no clocks, no logging, no global state.
//!
//! | item | what |
//! |---|---|
//! | [`parse_inbound`] → [`Inbound`] | ACS → us: `AudioMetadata`, `AudioData`, `DtmfData`, `TranscriptionMetadata`, `TranscriptionData`, `MarkData`, unknown kinds |
//! | [`write_outbound_audio`], [`STOP_AUDIO_JSON`] | us → ACS (JS/Java SDK camelCase shape) |
//! | [`parse_outbound`] → [`Outbound`] | ACS-format messages from a downstream bot, every SDK casing |
//! | [`inbound_audio_data_json`], [`inbound_audio_metadata_json`] | build what ACS sends (simulators, tests) |
//! | [`decode_base64_into`] | base64 audio payload → PCM bytes in a reused buffer |
//! | [`parse_timestamp`], [`format_timestamp`] | ACS ISO-8601 timestamps ↔ Unix milliseconds |
//! | [`ProtocolError`], [`Base64Error`] | errors; `ProtocolError::reason()` is a metric label |
//!
//! The inbound hot path (`parse_inbound` on an `AudioData` frame, then `decode_base64_into`)
//! allocates nothing when the JSON strings contain no escapes and the PCM buffer is reused.

pub mod b64;
pub mod error;
pub mod media;
pub mod timestamp;

pub use b64::decode_base64_into;
pub use error::{Base64Error, ProtocolError};
pub use media::{
    inbound_audio_data_json, inbound_audio_metadata_json, outbound_audio_json_len, parse_inbound,
    parse_outbound, write_outbound_audio, AudioData, AudioMetadata, DtmfData, Inbound, InboundKind,
    Mark, MarkData, Outbound, ResultStatus, TranscriptionData, TranscriptionMetadata, Word,
    STOP_AUDIO_JSON,
};
pub use timestamp::{format_timestamp, parse_timestamp, Timestamp};
