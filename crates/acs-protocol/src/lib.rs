//! PURE: the ACS Call Automation wire formats — media streaming (docs/PROTOCOL.md §1, §2) and the
//! control plane (§3–§8, §11).
//!
//! This crate only turns bytes into values and back. It depends on serde / serde_json, base64,
//! hmac / sha2 and bytes-level code only: no sockets, no tokio, no HTTP client, no clocks (callers
//! pass "now"), no logging, no global state.
//!
//! | item | what |
//! |---|---|
//! | [`parse_inbound`] → [`Inbound`] | ACS → us: `AudioMetadata`, `AudioData`, `DtmfData`, `TranscriptionMetadata`, `TranscriptionData`, `MarkData`, unknown kinds |
//! | [`write_outbound_audio`], [`STOP_AUDIO_JSON`] | us → ACS, byte for byte what the JS SDK 1.6.0 helpers produce |
//! | [`mark`] | audio marks (preview): marked outbound `AudioData`, ACS's `MarkData` answer |
//! | [`parse_outbound`] → [`Outbound`] | ACS-format messages from a downstream bot, every SDK casing |
//! | [`inbound_audio_data_json`], [`inbound_audio_metadata_json`] | build what ACS sends (simulators, tests) |
//! | [`decode_base64_into`] | base64 audio payload → PCM bytes in a reused buffer |
//! | [`parse_timestamp`], [`format_timestamp`] | ACS ISO-8601 timestamps ↔ Unix milliseconds |
//! | [`ProtocolError`], [`Base64Error`] | errors; `ProtocolError::reason()` is a metric label |
//!
//!
//! Control plane (used by the gateway's control plane and by the simulator's fake ACS, so each
//! wire format exists once):
//!
//! | module | what |
//! |---|---|
//! | [`identifier`] | [`CommunicationIdentifier`] ⇄ rawId ([`parse_raw_id`]) ⇄ wire [`CommunicationIdentifierModel`] (§6) |
//! | [`auth`] | [`ConnectionString`], HMAC-SHA256 request [`sign`](auth::sign) / [`verify`](auth::verify), RFC 1123 dates (§5) |
//! | [`token`] | the gateway's own signed, expiring call token for media and callback URLs |
//! | [`events`] | Event Grid / CloudEvents envelopes, [`parse_webhook_events`] (validation, IncomingCall), [`parse_callbacks`] → [`CallbackEvent`] (§3.3, §7, §8) |
//! | [`rest`] | Call Automation request/response bodies, [`AcsError`], [`AcsOperation`] routes, Teams extensibility bodies (§4, §11) |
//!
//! The inbound hot path (`parse_inbound`, or `parse_inbound_str` for text already known to be
//! UTF-8, on an `AudioData` frame, then `decode_base64_pcm16` or `decode_base64_into`)
//! allocates nothing when the JSON strings contain no escapes and the PCM buffer is reused.
//!
//! # Example
//!
//! Parse an `AudioData` message as ACS sends it, decode its audio, and write the gateway's
//! outbound `AudioData` back:
//!
//! ```
//! use acs_protocol::{
//!     decode_base64_into, parse_inbound, parse_outbound, write_outbound_audio, Inbound, Outbound,
//! };
//!
//! let frame = br#"{"kind":"AudioData","audioData":{"timestamp":"2024-11-15T19:16:12.925Z","participantRawID":"4:+14255550123","data":"AQACAA==","silent":false}}"#;
//! let Ok(Inbound::AudioData(audio)) = parse_inbound(frame) else {
//!     panic!("not AudioData")
//! };
//! assert_eq!(audio.participant(), Some("4:+14255550123"));
//! assert!(!audio.silent);
//! let mut pcm = Vec::new();
//! let n = decode_base64_into(audio.data.as_bytes(), &mut pcm).unwrap();
//! assert_eq!(&pcm[..n], &[1, 0, 2, 0]); // two 16-bit little-endian samples: 1 and 2
//!
//! let mut out = String::new();
//! write_outbound_audio(&mut out, &pcm[..n]);
//! assert!(matches!(parse_outbound(out.as_bytes()), Ok(Outbound::AudioData { .. })));
//!
//! // bad input is an error with a metric-label reason, never a panic
//! let err = parse_inbound(br#"{"kind":"AudioData","audioData":"#).unwrap_err();
//! assert!(!err.reason().is_empty());
//! ```

#![deny(missing_docs)]

pub mod auth;
pub mod b64;
pub mod error;
pub mod events;
pub mod fast;
pub mod identifier;
pub mod mark;
pub mod media;
pub mod rest;
#[cfg(test)]
mod testvec;
pub mod timestamp;
pub mod token;

pub use auth::{AuthError, ConnectionString, ConnectionStringError, SignedHeaders, SignedRequest};
pub use b64::{decode_base64_into, decode_base64_pcm16};
pub use error::{Base64Error, ProtocolError};
pub use events::{
    parse_callbacks, parse_webhook_events, CallbackEvent, CallbackKind, CloudEvent, EventError,
    EventGridEvent, IncomingCallEventData, SubscriptionValidationResponse, WebhookEvent,
    WebhookPayload,
};
pub use identifier::{
    parse_raw_id, CommunicationCloud, CommunicationIdentifier, CommunicationIdentifierModel,
    IdentifierKind,
};
pub use media::{
    inbound_audio_data_json, inbound_audio_metadata_json, outbound_audio_json_len, parse_inbound,
    parse_inbound_full, parse_inbound_str, parse_outbound, write_outbound_audio, AudioData,
    AudioMetadata, DtmfData, Inbound, InboundKind, Mark, MarkData, Outbound, ResultStatus,
    TranscriptionData, TranscriptionMetadata, Word, STOP_AUDIO_JSON,
};
pub use rest::{AcsError, AcsOperation};
pub use timestamp::{format_timestamp, parse_timestamp, Timestamp};
pub use token::{CallToken, TokenError};
