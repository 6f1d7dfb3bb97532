//! Forward sink metrics: downstream WebSocket connections, what was dropped, returned audio and
//! barge-in.

use super::register::Reg;
use prometheus::{IntCounter, IntGauge};

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
    /// Returned messages refused because a barge-in ended their playback generation.
    pub playback_stale: IntCounter,
    /// Speech starts that stopped nothing because nothing was playing.
    pub barge_in_idle: IntCounter,
    /// Speech starts the playback's own echo explained (no barge-in while that lasts).
    pub barge_in_echo: IntCounter,
}

impl ForwardMetrics {
    /// Registers every forward sink metric.
    pub(super) fn new(r: &Reg<'_>) -> Self {
        let fwd_dropped = r.counter_vec(
            "forward_dropped_total",
            "Messages the forward sink did not deliver downstream, by class (audio, control) and \
             reason (queue_full, disconnected).",
            &["class", "reason"],
        );
        let fwd_refused = r.counter_vec(
            "forward_playback_refused_total",
            "Messages forward targets sent back that were not played, by reason \
             (not_bidirectional, malformed, stale).",
            &["reason"],
        );
        let fwd_suppressed = r.counter_vec(
            "forward_barge_in_suppressed_total",
            "Caller speech starts that did not barge in, by reason (idle: nothing was playing; \
             echo: the playback's own echo).",
            &["reason"],
        );
        let fwd_stops = r.counter_vec(
            "forward_playback_stops_total",
            "Playback stops caused by the forward sink, by source (target, barge_in).",
            &["source"],
        );
        ForwardMetrics {
            connections_active: r.gauge(
                "forward_connections_active",
                "Forward sink downstream connections open now.",
            ),
            connects: r.counter(
                "forward_connects_total",
                "Forward sink downstream connections made (first connections and reconnections).",
            ),
            reconnects: r.counter(
                "forward_reconnects_total",
                "Forward sink connections made after a lost connection or a failed attempt.",
            ),
            connect_failures: r.counter(
                "forward_connect_failures_total",
                "Forward sink connection attempts that failed (refused, timeout, TLS, handshake).",
            ),
            frames_sent: r.counter(
                "forward_frames_sent_total",
                "Audio frames the forward sink sent downstream.",
            ),
            dropped_audio_queue_full: fwd_dropped.with_label_values(&["audio", "queue_full"]),
            dropped_audio_disconnected: fwd_dropped.with_label_values(&["audio", "disconnected"]),
            dropped_control_queue_full: fwd_dropped.with_label_values(&["control", "queue_full"]),
            dropped_control_disconnected: fwd_dropped
                .with_label_values(&["control", "disconnected"]),
            playback_samples: r.counter(
                "forward_playback_samples_total",
                "Samples forward targets sent back that were queued for playback.",
            ),
            playback_not_bidirectional: fwd_refused.with_label_values(&["not_bidirectional"]),
            playback_malformed: fwd_refused.with_label_values(&["malformed"]),
            stops_target: fwd_stops.with_label_values(&["target"]),
            barge_ins: fwd_stops.with_label_values(&["barge_in"]),
            playback_stale: fwd_refused.with_label_values(&["stale"]),
            barge_in_idle: fwd_suppressed.with_label_values(&["idle"]),
            barge_in_echo: fwd_suppressed.with_label_values(&["echo"]),
        }
    }
}
