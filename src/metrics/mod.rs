//! Prometheus metrics over the gateway's own [`prometheus::Registry`].
//!
//! Every handle the hot path touches is resolved once at start-up (label values are closed enums
//! here), never per frame, and no metric carries a per-call label, so cardinality stays bounded
//! whatever the callers send.
//!
//! Submodules: `labels` (the closed label sets), `control` (control plane), `forward` (the
//! forward sink), `process` (the `process_*` families and `acs_gateway_build_info`); this file
//! holds the media and sink metrics and [`Metrics`], which owns them all.

mod cluster;
mod control;
mod forward;
mod labels;
pub(crate) mod process;
mod register;

pub use cluster::ClusterMetrics;
pub use control::ControlMetrics;
pub use forward::ForwardMetrics;
pub use labels::{
    acs_status_label, BadFrame, ACS_STATUS_CODES, AUTH_REJECT_REASONS, CONTROL_ENDPOINTS,
    HTTP_CLOSE_REASONS, INCOMING_CALL_OUTCOMES, RECORDING_FAILURE_REASONS, REJECT_REASONS,
};

use crate::protocol::media::InboundKind;
use prometheus::{
    Encoder, Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};
use register::Reg;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Metric name prefix.
pub const PREFIX: &str = "acs_gateway";

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
    /// PCM bytes written to WAV recordings (audio and gap silence).
    pub recording_bytes: IntCounter,
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
    /// Playback samples refused because a barge-in ended their playback generation.
    pub playback_stale_samples: IntCounter,
    /// Operator playbacks ended, by outcome (completed, cancelled) and source (acs, gateway).
    pub playbacks: IntCounterVec,
    /// Control plane (webhook, answer, ACS client, callbacks, registry, authentication).
    pub control: ControlMetrics,
    /// Forward sink.
    pub forward: ForwardMetrics,
    /// Cluster mode (shared state on NATS JetStream).
    pub cluster: ClusterMetrics,
}

#[derive(Debug)]
struct SinkVecs {
    drops: IntCounterVec,
    errors: IntCounterVec,
    frames: IntCounterVec,
    depth: IntGaugeVec,
    control_waits: IntCounterVec,
}

impl Metrics {
    /// Builds and registers every metric, the process and build families included.
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let reg = Reg(&registry);
        let counter = |n: &str, help: &str| reg.counter(n, help);
        let gauge = |n: &str, help: &str| reg.gauge(n, help);
        let counter_vec = |n: &str, help: &str, labels: &[&str]| reg.counter_vec(n, help, labels);
        let gauge_vec = |n: &str, help: &str, labels: &[&str]| reg.gauge_vec(n, help, labels);
        process::register(&registry);

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
        let frame_seconds = reg.histogram(
            "frame_processing_seconds",
            "Time to process one AudioData frame: parse, decode, timeline, ring, silence, fan-out.",
            vec![
                0.25e-6, 0.5e-6, 1e-6, 2e-6, 4e-6, 8e-6, 16e-6, 32e-6, 64e-6, 128e-6, 512e-6, 2e-3,
            ],
        );

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

        let recordings_failed = counter_vec(
            "recordings_failed_total",
            "WAV recordings that could not be created or stopped short (their header states \
             the audio on disk), by reason: disk_full, io_error.",
            &["reason"],
        );
        for reason in RECORDING_FAILURE_REASONS {
            recordings_failed.with_label_values(&[reason]);
        }
        let control = ControlMetrics::new(&reg);
        let forward = ForwardMetrics::new(&reg);
        let cluster = ClusterMetrics::new(&reg);

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
            playback_stale_samples: counter(
                "playback_stale_samples_total",
                "Playback samples refused because a barge-in ended their playback generation.",
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
            recording_bytes: counter(
                "recording_bytes_total",
                "PCM bytes written to WAV recordings (audio and gap silence; the 44-byte headers \
                 not counted).",
            ),
            recordings_failed,
            control,
            forward,
            cluster,
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
            // the process collector's families keep their standard names
            assert!(
                line.starts_with("acs_gateway_") || line.starts_with("process_"),
                "{line}"
            );
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

    #[test]
    fn build_info_is_one_with_version_and_commit() {
        let text = Metrics::new().render();
        let series = format!(
            "acs_gateway_build_info{{commit=\"{}\",version=\"{}\"}}",
            process::COMMIT,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(scrape_value(&text, &series), Some(1.0), "{text}");
        assert_eq!(text.matches("acs_gateway_build_info{").count(), 1);
        let c = process::COMMIT;
        assert!(
            c == "unknown" || (c.len() == 12 && c.bytes().all(|b| b.is_ascii_hexdigit())),
            "{c}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_families_describe_this_process() {
        let text = Metrics::new().render();
        let value = |n: &str| scrape_value(&text, n).unwrap_or_else(|| panic!("{n} in {text}"));
        assert!(value("process_resident_memory_bytes") > 1024.0 * 1024.0);
        // this test's own stdin/stdout/stderr at least
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start > now - 86_400.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
    }
}
