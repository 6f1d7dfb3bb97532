//! The closed label sets of the gateway's metrics (bad-frame reasons, refusal reasons, call
//! outcomes, ACS status labels): every value a label can take is listed here, so series are
//! resolved once at start-up and cardinality stays bounded whatever callers send.

use crate::protocol::error::ProtocolError;

/// Why an inbound frame (or part of it) was refused; the `reason` label of
/// `acs_gateway_decode_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadFrame {
    /// Frame bytes are not UTF-8.
    NotUtf8,
    /// Not JSON, or JSON of the wrong shape.
    MalformedJson,
    /// JSON without a `kind`.
    MissingKind,
    /// A known kind without its payload object.
    MissingPayload,
    /// `data` is not valid base64.
    BadBase64,
    /// Decoded PCM has an odd number of bytes (not whole 16-bit samples).
    OddLength,
    /// Decoded PCM is empty.
    Empty,
    /// Decoded PCM longer than allowed for one frame.
    TooLong,
    /// Whole samples, but not the negotiated 20 ms length (accepted, counted).
    LengthMismatch,
    /// AudioMetadata with a format we cannot take (rate, channels, encoding).
    UnsupportedFormat,
    /// WebSocket message over `max_frame_bytes`.
    FrameTooLarge,
    /// Participant id longer than the limit.
    ParticipantIdTooLong,
    /// More participants than `max_participants` in one call.
    TooManyParticipants,
    /// A WebSocket protocol violation (unmasked client frame, reserved bits, unknown opcode,
    /// continuation without a start, fragmented or oversized control frame, ...): close 1002.
    ProtocolViolation,
}

impl BadFrame {
    /// Every reason, in label order.
    pub const ALL: [BadFrame; 14] = [
        BadFrame::NotUtf8,
        BadFrame::MalformedJson,
        BadFrame::MissingKind,
        BadFrame::MissingPayload,
        BadFrame::BadBase64,
        BadFrame::OddLength,
        BadFrame::Empty,
        BadFrame::TooLong,
        BadFrame::LengthMismatch,
        BadFrame::UnsupportedFormat,
        BadFrame::FrameTooLarge,
        BadFrame::ParticipantIdTooLong,
        BadFrame::TooManyParticipants,
        BadFrame::ProtocolViolation,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            BadFrame::NotUtf8 => "not_utf8",
            BadFrame::MalformedJson => "malformed_json",
            BadFrame::MissingKind => "missing_kind",
            BadFrame::MissingPayload => "missing_payload",
            BadFrame::BadBase64 => "bad_base64",
            BadFrame::OddLength => "odd_length",
            BadFrame::Empty => "empty",
            BadFrame::TooLong => "too_long",
            BadFrame::LengthMismatch => "length_mismatch",
            BadFrame::UnsupportedFormat => "unsupported_format",
            BadFrame::FrameTooLarge => "frame_too_large",
            BadFrame::ParticipantIdTooLong => "participant_id_too_long",
            BadFrame::TooManyParticipants => "too_many_participants",
            BadFrame::ProtocolViolation => "protocol_violation",
        }
    }

    /// The reason matching a protocol error.
    pub fn from_protocol(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::NotUtf8 => BadFrame::NotUtf8,
            ProtocolError::Json(_) => BadFrame::MalformedJson,
            ProtocolError::MissingKind => BadFrame::MissingKind,
            ProtocolError::MissingPayload { .. } => BadFrame::MissingPayload,
        }
    }

    pub(super) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Why a connection was refused before or at the upgrade; the `reason` label of
/// `acs_gateway_ws_connections_rejected_total`.
pub const REJECT_REASONS: [&str; 7] = [
    "connection_limit",
    "overload",
    "socket_limit",
    "draining",
    "bad_upgrade",
    "handshake_timeout",
    "unauthorized",
];

/// `outcome` label of `acs_gateway_incoming_calls_total`.
pub const INCOMING_CALL_OUTCOMES: [&str; 7] = [
    "answered",
    "rejected",
    "redirected",
    "duplicate",
    "failed",
    "stale",
    "unauthorized",
];

/// `reason` label of `acs_gateway_auth_rejections_total`: the ACS JWT reasons first, then the
/// gateway's call token (`token_*`, `unknown_call`), then the shared secrets.
pub const AUTH_REJECT_REASONS: [&str; 16] = [
    "missing",
    "malformed",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "unknown_kid",
    "jwks_unavailable",
    "token_missing",
    "token_malformed",
    "token_bad_signature",
    "token_expired",
    "unknown_call",
    "bad_webhook_secret",
    "bad_api_key",
];

/// `status` label values of `acs_gateway_acs_requests_total` kept as exact codes; other statuses
/// are counted by class (`2xx` … `5xx`), and requests without a response as `timeout` or
/// `transport`.
pub const ACS_STATUS_CODES: [u16; 15] = [
    200, 201, 202, 204, 400, 401, 403, 404, 409, 412, 429, 500, 502, 503, 504,
];

/// `endpoint` label of `acs_gateway_control_bad_requests_total` (`other`: `/healthz`, `/readyz`,
/// `/metrics` and unknown paths).
pub const CONTROL_ENDPOINTS: [&str; 4] = ["incoming_call", "callbacks", "operator", "other"];

/// Why the gateway closed a plain HTTP connection (one not upgraded to media); the `reason` label
/// of `acs_gateway_http_connections_closed_total`.
pub const HTTP_CLOSE_REASONS: [&str; 2] = ["keepalive_idle", "evicted"];

/// `reason` label of `acs_gateway_recordings_failed_total` (`sinks::wav::failure_reason`).
pub const RECORDING_FAILURE_REASONS: [&str; 2] = ["disk_full", "io_error"];

/// `op` label of `acs_gateway_cluster_requests_total`.
pub(super) const CLUSTER_OPS: [&str; 7] = [
    "claim",
    "load",
    "store",
    "list",
    "route",
    "heartbeat",
    "other",
];
/// `outcome` label of `acs_gateway_cluster_requests_total`.
pub(super) const CLUSTER_OUTCOMES: [&str; 4] = ["ok", "conflict", "timeout", "error"];
/// `endpoint` label of `acs_gateway_cluster_nats_unreachable_total`.
pub(super) const CLUSTER_UNREACHABLE_ENDPOINTS: [&str; 3] =
    ["incoming_call", "callbacks", "operator"];
/// `reason` label of `acs_gateway_cluster_routing_failures_total`.
pub(super) const CLUSTER_ROUTING_FAILURES: [&str; 3] = ["replica_gone", "timeout", "error"];

/// The `status` label for an ACS response status (bounded: see [`ACS_STATUS_CODES`]).
pub fn acs_status_label(status: u16) -> &'static str {
    const LABELS: [&str; 15] = [
        "200", "201", "202", "204", "400", "401", "403", "404", "409", "412", "429", "500", "502",
        "503", "504",
    ];
    if let Some(i) = ACS_STATUS_CODES.iter().position(|c| *c == status) {
        return LABELS[i];
    }
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
