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
}

impl BadFrame {
    /// Every reason, in label order.
    pub const ALL: [BadFrame; 13] = [
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
pub const REJECT_REASONS: [&str; 6] = [
    "connection_limit",
    "socket_limit",
    "draining",
    "bad_upgrade",
    "handshake_timeout",
    "unauthorized",
];

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
}

/// All gateway metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open media WebSocket connections.
    pub connections_active: IntGauge,
    /// Media WebSocket connections accepted since start.
    pub connections_total: IntCounter,
    rejected: Vec<IntCounter>,
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
}

#[derive(Debug)]
struct SinkVecs {
    drops: IntCounterVec,
    errors: IntCounterVec,
    frames: IntCounterVec,
    depth: IntGaugeVec,
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
        };

        Arc::new(Self {
            connections_active: gauge("ws_connections_active", "Open media WebSocket connections."),
            connections_total: counter(
                "ws_connections_total",
                "Media WebSocket connections accepted.",
            ),
            rejected,
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
            recordings_finalised: counter(
                "recordings_finalised_total",
                "WAV recordings finalised with a complete header.",
            ),
            registry,
        })
    }

    /// Counts one inbound message of `kind`.
    #[inline]
    pub fn frame(&self, kind: InboundKind) {
        let i = InboundKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.frames[i].inc();
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

/// Reads one sample's value out of a rendered exposition (`name` with exact `{labels}` text, or no
/// labels). For tests and `acs-sim`, which compare before/after figures.
pub fn scrape_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
