//! Prometheus metrics over the gateway's own [`prometheus::Registry`].
//!
//! Every handle the hot path touches is resolved once at start-up (label values are closed enums
//! here), never per frame, and no metric carries a per-call label, so cardinality stays bounded
//! whatever the callers send.

use crate::protocol::error::ProtocolError;
use crate::protocol::media::InboundKind;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Metric name prefix.
pub const PREFIX: &str = "acs_gateway";

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

    fn index(self) -> usize {
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

/// Control-plane metrics (Event Grid webhook, answer, ACS REST client, callbacks, call registry,
/// authentication). Label values come from closed sets; nothing carries a call id.
#[derive(Debug)]
pub struct ControlMetrics {
    incoming: Vec<IntCounter>,
    /// Webhook received → ACS answered (answered calls only).
    pub answer_latency: Histogram,
    acs_requests: IntCounterVec,
    callbacks: IntCounterVec,
    auth: Vec<IntCounter>,
    /// Calls in the registry that have not ended.
    pub calls_active: IntGauge,
    bad_requests: IntCounterVec,
    jwks: IntCounterVec,
    jwks_limited: IntCounter,
}

impl ControlMetrics {
    /// Counts an IncomingCall outcome; `outcome` must be one of [`INCOMING_CALL_OUTCOMES`].
    pub fn incoming(&self, outcome: &str) {
        if let Some(i) = INCOMING_CALL_OUTCOMES.iter().position(|o| *o == outcome) {
            self.incoming[i].inc();
        }
    }

    /// The count for an IncomingCall outcome.
    pub fn incoming_count(&self, outcome: &str) -> u64 {
        INCOMING_CALL_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.incoming[i].get())
    }

    /// Counts one ACS REST request (one attempt) by operation label and response status.
    pub fn acs_request(&self, operation: &str, status: &str) {
        self.acs_requests
            .with_label_values(&[operation, status])
            .inc();
    }

    /// The count of ACS requests for an operation and status label.
    pub fn acs_request_count(&self, operation: &str, status: &str) -> u64 {
        self.acs_requests
            .with_label_values(&[operation, status])
            .get()
    }

    /// Counts one callback event; `kind` is a known callback name or `unknown`.
    pub fn callback(&self, kind: &str) {
        self.callbacks.with_label_values(&[kind]).inc();
    }

    /// The count of callbacks of a kind.
    pub fn callback_count(&self, kind: &str) -> u64 {
        self.callbacks.with_label_values(&[kind]).get()
    }

    /// Counts an authentication refusal; `reason` must be one of [`AUTH_REJECT_REASONS`].
    pub fn auth_rejected(&self, reason: &str) {
        if let Some(i) = AUTH_REJECT_REASONS.iter().position(|r| *r == reason) {
            self.auth[i].inc();
        }
    }

    /// The count of authentication refusals for `reason`.
    pub fn auth_rejection_count(&self, reason: &str) -> u64 {
        AUTH_REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.auth[i].get())
    }

    /// Counts a refused control-plane request (`endpoint` from [`CONTROL_ENDPOINTS`], `reason`
    /// a fixed snake_case word chosen by the handler).
    pub fn bad_request(&self, endpoint: &str, reason: &str) {
        self.bad_requests
            .with_label_values(&[endpoint, reason])
            .inc();
    }

    /// The count of refused control-plane requests.
    pub fn bad_request_count(&self, endpoint: &str, reason: &str) -> u64 {
        self.bad_requests
            .with_label_values(&[endpoint, reason])
            .get()
    }

    /// Counts a JWKS download (`ok` or `error`).
    pub fn jwks_fetch(&self, ok: bool) {
        self.jwks
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// The count of JWKS downloads with that result.
    pub fn jwks_fetch_count(&self, ok: bool) -> u64 {
        self.jwks
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .get()
    }

    /// Counts a key-cache miss the JWKS rate limits allowed no download for.
    pub fn jwks_refetch_limited(&self) {
        self.jwks_limited.inc();
    }

    /// The count of key-cache misses turned away by the JWKS rate limits.
    pub fn jwks_refetch_limited_count(&self) -> u64 {
        self.jwks_limited.get()
    }
}

/// Forward sink metrics (downstream WebSocket connections, returned audio, barge-in). No labels
/// beyond fixed classes and reasons.
#[derive(Debug)]
pub struct ForwardMetrics {
    /// Downstream connections open now.
    pub connections_active: IntGauge,
    /// Downstream connections made (first connections and reconnections).
    pub connects: IntCounter,
    /// Connections made after a lost connection or a failed attempt.
    pub reconnects: IntCounter,
    /// Connection attempts that failed (refused, timeout, TLS, handshake).
    pub connect_failures: IntCounter,
    /// Audio frames sent downstream.
    pub frames_sent: IntCounter,
    /// Audio frames dropped because the connection's buffer was full.
    pub dropped_audio_queue_full: IntCounter,
    /// Audio frames dropped because the connection was down (backoff, or lost mid-send).
    pub dropped_audio_disconnected: IntCounter,
    /// Control messages (events) dropped because the connection's buffer was full.
    pub dropped_control_queue_full: IntCounter,
    /// Control messages (events) dropped because the connection was down.
    pub dropped_control_disconnected: IntCounter,
    /// Samples of returned audio queued for playback into calls.
    pub playback_samples: IntCounter,
    /// Returned messages refused because the call is not bidirectional.
    pub playback_not_bidirectional: IntCounter,
    /// Returned messages that could not be read.
    pub playback_malformed: IntCounter,
    /// Playback stops a target asked for (`stop`, `clear`, `StopAudio`).
    pub stops_target: IntCounter,
    /// Barge-ins: playback stopped because a caller started speaking.
    pub barge_ins: IntCounter,
}

/// Handles for one sink kind.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    /// Audio frames refused because the sink's queue was full (or the sink is gone).
    pub audio_drops: IntCounter,
    /// Control messages (open/close/events) refused because the queue was full.
    pub control_drops: IntCounter,
    /// Errors returned by the sink.
    pub write_errors: IntCounter,
    /// Frames the sink accepted and processed.
    pub frames: IntCounter,
    /// Messages waiting in the sink's queues (sampled by the worker).
    pub queue_depth: IntGauge,
    /// Control messages that had to wait for room (the whole queue was full).
    pub control_waits: IntCounter,
}

/// All gateway metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open media WebSocket connections.
    pub connections_active: IntGauge,
    /// Media WebSocket connections accepted since start.
    pub connections_total: IntCounter,
    /// Worst runtime scheduling lag of the last half second, microseconds (overload monitor).
    pub runtime_lag_us: IntGauge,
    /// 1 while new media upgrades are shed for lack of headroom.
    pub overloaded: IntGauge,
    rejected: Vec<IntCounter>,
    http_closed: Vec<IntCounter>,
    closes: IntCounterVec,
    frames: Vec<IntCounter>,
    /// WebSocket payload bytes received.
    pub frame_bytes: IntCounter,
    /// Decoded PCM bytes accepted.
    pub audio_bytes: IntCounter,
    decode_errors: Vec<IntCounter>,
    /// AudioData frames that arrived before any AudioMetadata (default format used).
    pub frames_before_metadata: IntCounter,
    /// Timeline gaps filled with silence.
    pub gaps_filled: IntCounter,
    /// Silence samples inserted for gaps.
    pub gap_fill_samples: IntCounter,
    /// Timeline resynchronisations (clock jumps beyond the fill limit, or backwards).
    pub timeline_resyncs: IntCounter,
    /// Frames whose timestamp jumped further ahead than the wall clock allows (the stream's fill
    /// budget): written in arrival order, no silence filled.
    pub timestamp_outliers: IntCounter,
    /// Frames dropped because they arrived after their place in the timeline.
    pub late_frames: IntCounter,
    /// Frames dropped as duplicates.
    pub duplicate_frames: IntCounter,
    /// Frames ACS flagged `silent`.
    pub silent_frames_acs: IntCounter,
    /// Frames our detector judged silent.
    pub silent_frames_detected: IntCounter,
    /// Speech segments (speech-start events).
    pub speech_segments: IntCounter,
    /// Samples a ring reader lost to overrun.
    pub ring_overruns: IntCounter,
    /// Participant streams opened.
    pub participants: IntCounter,
    /// Frames not fanned out because the call's shared-frame pool was exhausted (sinks far behind).
    pub frame_pool_exhausted: IntCounter,
    /// Per-AudioData-frame processing time (parse → fan-out).
    pub frame_seconds: Histogram,
    sink_vecs: SinkVecs,
    sinks: Mutex<HashMap<&'static str, SinkMetrics>>,
    /// Recordings finalised (WAV files closed with a correct header).
    pub recordings_finalised: IntCounter,
    /// Recordings (WAV files) that could not be created or stopped short, by reason.
    recordings_failed: IntCounterVec,
    /// Outbound AudioData frames sent to ACS (bidirectional playback).
    pub playback_frames: IntCounter,
    /// StopAudio messages sent to ACS.
    pub playback_stops: IntCounter,
    /// Playback slots that passed with no audio while audio was still arriving.
    pub playback_underruns: IntCounter,
    /// Playback samples refused because the call's playback queue was full.
    pub playback_overrun_samples: IntCounter,
    /// Operator playbacks ended, by outcome (completed, cancelled) and source (acs, gateway).
    pub playbacks: IntCounterVec,
    /// Control plane (webhook, answer, ACS client, callbacks, registry, authentication).
    pub control: ControlMetrics,
    /// Forward sink.
    pub forward: ForwardMetrics,
}

#[derive(Debug)]
struct SinkVecs {
    drops: IntCounterVec,
    errors: IntCounterVec,
    frames: IntCounterVec,
    depth: IntGaugeVec,
    control_waits: IntCounterVec,
}

fn name(n: &str) -> String {
    format!("{PREFIX}_{n}")
}

impl Metrics {
    /// Builds and registers every metric.
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let counter = |n: &str, help: &str| {
            let c = IntCounter::with_opts(Opts::new(name(n), help)).expect("metric opts");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let gauge = |n: &str, help: &str| {
            let g = IntGauge::with_opts(Opts::new(name(n), help)).expect("metric opts");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        let counter_vec = |n: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name(n), help), labels).expect("metric opts");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let gauge_vec = |n: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name(n), help), labels).expect("metric opts");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };

        let rejected_vec = counter_vec(
            "ws_connections_rejected_total",
            "Media connections refused, by reason.",
            &["reason"],
        );
        let rejected = REJECT_REASONS
            .iter()
            .map(|r| rejected_vec.with_label_values(&[r]))
            .collect();
        let http_closed_vec = counter_vec(
            "http_connections_closed_total",
            "Plain HTTP connections (not upgraded to media) the gateway closed, by reason: \
             keepalive_idle (no next request within the handshake timeout), evicted (the oldest \
             connection waiting on its client, to make room for a new one).",
            &["reason"],
        );
        let http_closed = HTTP_CLOSE_REASONS
            .iter()
            .map(|r| http_closed_vec.with_label_values(&[r]))
            .collect();
        let frames_vec = counter_vec(
            "frames_total",
            "Inbound media WebSocket messages, by kind.",
            &["kind"],
        );
        let frames = InboundKind::ALL
            .iter()
            .map(|k| frames_vec.with_label_values(&[k.as_str()]))
            .collect();
        let decode_vec = counter_vec(
            "decode_errors_total",
            "Inbound frames (or parts) refused or irregular, by reason.",
            &["reason"],
        );
        let decode_errors = BadFrame::ALL
            .iter()
            .map(|r| decode_vec.with_label_values(&[r.as_str()]))
            .collect();
        let frame_seconds = Histogram::with_opts(
            HistogramOpts::new(
                name("frame_processing_seconds"),
                "Time to process one AudioData frame: parse, decode, timeline, ring, silence, fan-out.",
            )
            .buckets(vec![
                0.25e-6, 0.5e-6, 1e-6, 2e-6, 4e-6, 8e-6, 16e-6, 32e-6, 64e-6, 128e-6, 512e-6, 2e-3,
            ]),
        )
        .expect("histogram opts");
        registry
            .register(Box::new(frame_seconds.clone()))
            .expect("register");

        let sink_vecs = SinkVecs {
            drops: counter_vec(
                "sink_queue_drops_total",
                "Messages a sink's full (or dead) queue refused, by sink kind and message class.",
                &["sink", "class"],
            ),
            errors: counter_vec(
                "sink_write_errors_total",
                "Errors returned by sinks, by sink kind.",
                &["sink"],
            ),
            frames: counter_vec(
                "sink_frames_total",
                "Audio frames processed by sinks, by sink kind.",
                &["sink"],
            ),
            depth: gauge_vec(
                "sink_queue_depth",
                "Messages waiting in a sink's queues, by sink kind.",
                &["sink"],
            ),
            control_waits: counter_vec(
                "sink_control_waits_total",
                "Control messages whose producer had to wait because the sink's whole queue, \
                 control reserve included, was full (the sink is far behind), by sink kind.",
                &["sink"],
            ),
        };

        let incoming_vec = counter_vec(
            "incoming_calls_total",
            "IncomingCall events, by outcome.",
            &["outcome"],
        );
        let auth_vec = counter_vec(
            "auth_rejections_total",
            "Requests refused for missing or invalid credentials (ACS JWT, call token, webhook secret, operator API key), by reason.",
            &["reason"],
        );
        let answer_latency = Histogram::with_opts(
            HistogramOpts::new(
                name("answer_latency_seconds"),
                "Time from the IncomingCall webhook to ACS's answer response (answered calls).",
            )
            .buckets(vec![0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
        )
        .expect("histogram opts");
        registry
            .register(Box::new(answer_latency.clone()))
            .expect("register");
        let control = ControlMetrics {
            incoming: INCOMING_CALL_OUTCOMES
                .iter()
                .map(|o| incoming_vec.with_label_values(&[o]))
                .collect(),
            answer_latency,
            acs_requests: counter_vec(
                "acs_requests_total",
                "ACS REST requests (each attempt), by operation and response status (code, class, timeout or transport).",
                &["operation", "status"],
            ),
            callbacks: counter_vec(
                "callbacks_total",
                "Call Automation callback events, by type (known event names, or unknown).",
                &["type"],
            ),
            auth: AUTH_REJECT_REASONS
                .iter()
                .map(|r| auth_vec.with_label_values(&[r]))
                .collect(),
            calls_active: gauge("calls_active", "Calls in the registry that have not ended."),
            bad_requests: counter_vec(
                "control_bad_requests_total",
                "Control-plane requests refused as malformed or invalid, by endpoint and reason.",
                &["endpoint", "reason"],
            ),
            jwks: counter_vec(
                "jwks_fetches_total",
                "Downloads of the ACS JWT signing keys (JWKS), by result.",
                &["result"],
            ),
            jwks_limited: counter(
                "jwks_refetches_limited_total",
                "Tokens with an unknown key id (or a stale key cache) the JWKS download limits allowed no download for.",
            ),
        };

        let fwd_dropped = counter_vec(
            "forward_dropped_total",
            "Messages the forward sink did not deliver downstream, by class (audio, control) and reason (queue_full, disconnected).",
            &["class", "reason"],
        );
        let fwd_refused = counter_vec(
            "forward_playback_refused_total",
            "Messages forward targets sent back that were not played, by reason (not_bidirectional, malformed).",
            &["reason"],
        );
        let fwd_stops = counter_vec(
            "forward_playback_stops_total",
            "Playback stops caused by the forward sink, by source (target, barge_in).",
            &["source"],
        );
        let forward = ForwardMetrics {
            connections_active: gauge(
                "forward_connections_active",
                "Forward sink downstream connections open now.",
            ),
            connects: counter(
                "forward_connects_total",
                "Forward sink downstream connections made (first connections and reconnections).",
            ),
            reconnects: counter(
                "forward_reconnects_total",
                "Forward sink connections made after a lost connection or a failed attempt.",
            ),
            connect_failures: counter(
                "forward_connect_failures_total",
                "Forward sink connection attempts that failed (refused, timeout, TLS, handshake).",
            ),
            frames_sent: counter(
                "forward_frames_sent_total",
                "Audio frames the forward sink sent downstream.",
            ),
            dropped_audio_queue_full: fwd_dropped.with_label_values(&["audio", "queue_full"]),
            dropped_audio_disconnected: fwd_dropped.with_label_values(&["audio", "disconnected"]),
            dropped_control_queue_full: fwd_dropped.with_label_values(&["control", "queue_full"]),
            dropped_control_disconnected: fwd_dropped
                .with_label_values(&["control", "disconnected"]),
            playback_samples: counter(
                "forward_playback_samples_total",
                "Samples forward targets sent back that were queued for playback.",
            ),
            playback_not_bidirectional: fwd_refused.with_label_values(&["not_bidirectional"]),
            playback_malformed: fwd_refused.with_label_values(&["malformed"]),
            stops_target: fwd_stops.with_label_values(&["target"]),
            barge_ins: fwd_stops.with_label_values(&["barge_in"]),
        };

        Arc::new(Self {
            connections_active: gauge("ws_connections_active", "Open media WebSocket connections."),
            runtime_lag_us: gauge(
                "runtime_lag_microseconds",
                "Worst lateness of the overload monitor's 50 ms timer over the last half second.",
            ),
            overloaded: gauge(
                "overloaded",
                "1 while new media upgrades are refused with 503 for lack of headroom.",
            ),
            connections_total: counter(
                "ws_connections_total",
                "Media WebSocket connections accepted.",
            ),
            rejected,
            http_closed,
            closes: counter_vec(
                "ws_closes_total",
                "Media connections closed by the gateway, by close code.",
                &["code"],
            ),
            frames,
            frame_bytes: counter("frame_bytes_total", "Inbound WebSocket payload bytes."),
            audio_bytes: counter("audio_bytes_total", "Decoded PCM bytes accepted."),
            decode_errors,
            frames_before_metadata: counter(
                "frames_before_metadata_total",
                "AudioData frames received before AudioMetadata (configured default format used).",
            ),
            gaps_filled: counter("gaps_filled_total", "Timeline gaps filled with silence."),
            gap_fill_samples: counter(
                "gap_fill_samples_total",
                "Silence samples inserted for timeline gaps.",
            ),
            timeline_resyncs: counter(
                "timeline_resyncs_total",
                "Timeline rebases after a sender clock jump (beyond the fill limit, or backwards).",
            ),
            timestamp_outliers: counter(
                "timestamp_outliers_total",
                "Frames whose timestamp jumped further ahead than the wall clock allows (the \
                 stream's gap fill budget): written in arrival order without silence fill.",
            ),
            late_frames: counter(
                "late_frames_total",
                "Frames dropped because they arrived after their place in the timeline.",
            ),
            duplicate_frames: counter("duplicate_frames_total", "Duplicate frames dropped."),
            silent_frames_acs: counter(
                "silent_frames_acs_total",
                "AudioData frames flagged silent by ACS.",
            ),
            silent_frames_detected: counter(
                "silent_frames_detected_total",
                "AudioData frames below the silence threshold (or flagged silent) per our detector.",
            ),
            speech_segments: counter(
                "speech_segments_total",
                "Speech segments detected (speech-start events).",
            ),
            ring_overruns: counter(
                "ring_overrun_samples_total",
                "Samples ring-buffer readers lost because they fell behind.",
            ),
            participants: counter(
                "participant_streams_total",
                "Participant (or mixed) audio streams opened.",
            ),
            frame_pool_exhausted: counter(
                "frame_pool_exhausted_total",
                "Frames not fanned out because the call's shared-frame pool was exhausted.",
            ),
            frame_seconds,
            sink_vecs,
            sinks: Mutex::new(HashMap::new()),
            playback_frames: counter(
                "playback_frames_total",
                "Outbound AudioData frames sent to ACS (bidirectional playback).",
            ),
            playback_stops: counter("playback_stops_total", "StopAudio messages sent to ACS."),
            playback_underruns: counter(
                "playback_underruns_total",
                "Playback slots that passed with no audio while audio was still arriving.",
            ),
            playback_overrun_samples: counter(
                "playback_overrun_samples_total",
                "Playback samples refused because the call's playback queue was full.",
            ),
            playbacks: counter_vec(
                "playbacks_total",
                "Operator playbacks ended, by outcome (completed, cancelled) and source (acs: MarkData, gateway: its own queue).",
                &["outcome", "source"],
            ),
            recordings_finalised: counter(
                "recordings_finalised_total",
                "WAV recordings finalised with a complete header.",
            ),
            recordings_failed: counter_vec(
                "recordings_failed_total",
                "WAV recordings that could not be created or stopped short (their header states \
                 the audio on disk), by reason: disk_full, io_error.",
                &["reason"],
            ),
            control,
            forward,
            registry,
        })
    }

    /// Counts one inbound message of `kind`.
    #[inline]
    pub fn frame(&self, kind: InboundKind) {
        self.frames_of(kind, 1);
    }

    /// Counts `n` received messages of `kind` at once (calls batch their per-frame counts).
    pub fn frames_of(&self, kind: InboundKind, n: u64) {
        if n == 0 {
            return;
        }
        let i = InboundKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.frames[i].inc_by(n);
    }

    /// Counts one bad frame.
    pub fn bad_frame(&self, reason: BadFrame) {
        self.decode_errors[reason.index()].inc();
    }

    /// The current count for a bad-frame reason (tests and reports).
    pub fn bad_frame_count(&self, reason: BadFrame) -> u64 {
        self.decode_errors[reason.index()].get()
    }

    /// Counts a refused connection; `reason` must be one of [`REJECT_REASONS`].
    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].inc();
        }
    }

    /// The count of refused connections for `reason`.
    pub fn rejected_count(&self, reason: &str) -> u64 {
        REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .map(|i| self.rejected[i].get())
            .unwrap_or(0)
    }

    /// Counts a WAV recording that could not be created or stopped short (`reason`: disk_full,
    /// io_error).
    pub fn recording_failed(&self, reason: &str) {
        self.recordings_failed.with_label_values(&[reason]).inc();
    }

    /// Counts a plain HTTP connection the gateway closed; `reason` must be one of
    /// [`HTTP_CLOSE_REASONS`].
    pub fn http_closed(&self, reason: &str) {
        if let Some(i) = HTTP_CLOSE_REASONS.iter().position(|r| *r == reason) {
            self.http_closed[i].inc();
        }
    }

    /// The count of plain HTTP connections closed for `reason`.
    pub fn http_closed_count(&self, reason: &str) -> u64 {
        HTTP_CLOSE_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.http_closed[i].get())
    }

    /// Counts a close frame the gateway sent.
    pub fn closed_with(&self, code: u16) {
        self.closes.with_label_values(&[&code.to_string()]).inc();
    }

    /// The handles for one sink kind (created on first use; call at build time, not per frame).
    pub fn sink(&self, kind: &'static str) -> SinkMetrics {
        let mut map = self.sinks.lock().expect("sink metrics lock");
        map.entry(kind)
            .or_insert_with(|| SinkMetrics {
                audio_drops: self.sink_vecs.drops.with_label_values(&[kind, "audio"]),
                control_drops: self.sink_vecs.drops.with_label_values(&[kind, "control"]),
                write_errors: self.sink_vecs.errors.with_label_values(&[kind]),
                frames: self.sink_vecs.frames.with_label_values(&[kind]),
                queue_depth: self.sink_vecs.depth.with_label_values(&[kind]),
                control_waits: self.sink_vecs.control_waits.with_label_values(&[kind]),
            })
            .clone()
    }

    /// The registry, for extra collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        let encoder = TextEncoder::new();
        // Encoding our own registry into a Vec cannot fail except on duplicate/invalid
        // metric families, which registration already rejected.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acs_sim::scrape::scrape_value;

    #[test]
    fn renders_every_family_with_prefix_and_resolved_labels() {
        let m = Metrics::new();
        m.frame(InboundKind::AudioData);
        m.bad_frame(BadFrame::BadBase64);
        m.rejected("connection_limit");
        m.sink("wav").audio_drops.inc_by(3);
        let text = m.render();
        assert_eq!(
            scrape_value(&text, "acs_gateway_frames_total{kind=\"audio_data\"}"),
            Some(1.0)
        );
        assert_eq!(
            scrape_value(
                &text,
                "acs_gateway_decode_errors_total{reason=\"bad_base64\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            scrape_value(
                &text,
                "acs_gateway_ws_connections_rejected_total{reason=\"connection_limit\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            scrape_value(
                &text,
                "acs_gateway_sink_queue_drops_total{class=\"audio\",sink=\"wav\"}"
            ),
            Some(3.0)
        );
        // every pre-resolved label is exported at zero so dashboards see the series at once
        assert_eq!(
            scrape_value(&text, "acs_gateway_frames_total{kind=\"mark_data\"}"),
            Some(0.0)
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("acs_gateway_"), "{line}");
        }
        assert_eq!(m.rejected_count("connection_limit"), 1);
        assert_eq!(m.bad_frame_count(BadFrame::BadBase64), 1);
    }

    #[test]
    fn control_metrics_have_bounded_pre_resolved_labels() {
        let m = Metrics::new();
        m.control.incoming("answered");
        m.control.incoming("not-an-outcome");
        m.control.auth_rejected("unknown_kid");
        m.control.auth_rejected("made-up");
        m.control.acs_request("answer_call", acs_status_label(503));
        m.control.callback("CallConnected");
        m.control.answer_latency.observe(0.2);
        m.control.calls_active.set(2);
        let text = m.render();
        for (series, v) in [
            (
                "acs_gateway_incoming_calls_total{outcome=\"answered\"}",
                1.0,
            ),
            ("acs_gateway_incoming_calls_total{outcome=\"stale\"}", 0.0),
            (
                "acs_gateway_auth_rejections_total{reason=\"unknown_kid\"}",
                1.0,
            ),
            (
                "acs_gateway_auth_rejections_total{reason=\"bad_api_key\"}",
                0.0,
            ),
            (
                "acs_gateway_acs_requests_total{operation=\"answer_call\",status=\"503\"}",
                1.0,
            ),
            ("acs_gateway_callbacks_total{type=\"CallConnected\"}", 1.0),
            ("acs_gateway_answer_latency_seconds_count", 1.0),
            ("acs_gateway_calls_active", 2.0),
        ] {
            assert_eq!(scrape_value(&text, series), Some(v), "{series}");
        }
        assert!(!text.contains("made-up") && !text.contains("not-an-outcome"));
        assert_eq!(acs_status_label(418), "4xx");
        assert_eq!(acs_status_label(299), "2xx");
        assert_eq!(acs_status_label(599), "5xx");
        assert_eq!(acs_status_label(429), "429");
    }
}
