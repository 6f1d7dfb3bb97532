//! The NATS sink (async-nats): publishes every stream's audio and the call's events to NATS
//! subjects, so consumers on other machines scale out with queue groups or JetStream.
//!
//! | subject | payload | headers |
//! |---|---|---|
//! | `<prefix>.<call>.audio.<stream>` | PCM 16-bit little-endian mono, one 20 ms block | `Acs-Format` (`pcm_s16le;rate=16000;channels=1`), `Acs-Seq` (0, 1, 2… per stream, gap-free unless the sink dropped), `Acs-Pos` (sample position in the stream, gaps included), `Acs-Timestamp` (ISO-8601 of the block's first sample, when ACS timestamps are known), `Acs-Participant` (rawId), `Acs-Stream-Kind` (`participant`/`mixed`/`mix`), `Acs-Silent` (`1` when ACS flagged it), `Acs-Voiced` (`1` when our detector heard speech) |
//! | `<prefix>.<call>.events` | JSON: `{"type": …, …}` for `stream_open`, `gap`, `stream_close`, `call_ended` and every call event (`participant_joined`, `speech_started`, `dtmf`, `transcription`, …) | `Acs-Call` |
//!
//! `<call>` and `<stream>` are sanitised tokens (NATS subject tokens cannot hold `.`, `*`, `>` or
//! spaces): the call label and the participant rawId (`mixed` for ACS's mixed stream, `mix` for
//! the gateway's own mix). The sink runs on its own thread with a one-thread tokio runtime for
//! the client; the client reconnects by itself, and publishes that fail are counted as sink write
//! errors.

use super::names::sanitize_no_dots;
use crate::pipeline::event_json::EventJson;
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamKind,
    StreamStats,
};
use crate::pipeline::sink::{QueueConfig, Sink, SinkError};
use crate::protocol::timestamp::format_timestamp;
use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `[[sinks]] type = "nats"`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSinkConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// First subject tokens.
    pub subject_prefix: String,
    /// Audio frames the queue holds.
    pub queue_frames: usize,
    /// Publish participant streams.
    pub participants: bool,
    /// Publish mixed streams (ACS's mixed stream and the gateway's mix).
    pub mixed: bool,
    /// Time allowed for each connection attempt (ms); the client keeps retrying in the
    /// background, so the gateway starts even when NATS is down.
    pub connect_timeout_ms: u64,
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "acs.calls".into(),
            queue_frames: 8192,
            participants: true,
            mixed: true,
            connect_timeout_ms: 2000,
        }
    }
}

impl NatsSinkConfig {
    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.url.trim().is_empty() {
            p.push("url must not be empty".into());
        }
        if self.subject_prefix.is_empty()
            || self
                .subject_prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>', ' ']))
        {
            p.push(format!(
                "subject_prefix {:?} must be dot-separated tokens without *, > or spaces",
                self.subject_prefix
            ));
        }
        if !(16..=1_000_000).contains(&self.queue_frames) {
            p.push(format!(
                "queue_frames {} must be between 16 and 1000000",
                self.queue_frames
            ));
        }
        if !(100..=60_000).contains(&self.connect_timeout_ms) {
            p.push(format!(
                "connect_timeout_ms {} must be between 100 and 60000",
                self.connect_timeout_ms
            ));
        }
        p
    }

    /// Queue settings.
    pub fn queue(&self) -> QueueConfig {
        QueueConfig {
            audio_capacity: self.queue_frames,
            ..QueueConfig::default()
        }
    }
}

/// A NATS subject token from an id: the file-name rules without `.` (distinct ids stay distinct).
pub fn subject_token(id: &str) -> String {
    sanitize_no_dots(id)
}

struct StreamRec {
    subject: String,
    info: Arc<StreamInfo>,
    format: String,
    seq: u64,
    wanted: bool,
}

/// Publishes to NATS.
pub struct NatsSink {
    cfg: NatsSinkConfig,
    conn: Option<(tokio::runtime::Runtime, async_nats::Client)>,
    streams: HashMap<StreamId, StreamRec>,
    calls: HashMap<CallId, String>,
    bytes: Vec<u8>,
}

impl NatsSink {
    /// A sink that connects on first use, on its own worker thread (the client needs a runtime
    /// of its own, which must not be entered from the gateway's async threads).
    pub fn new(cfg: NatsSinkConfig) -> Self {
        Self {
            cfg,
            conn: None,
            streams: HashMap::new(),
            calls: HashMap::new(),
            bytes: Vec::with_capacity(2048),
        }
    }

    /// The runtime and client, connecting (or starting to retry in the background) on first use.
    fn conn(&mut self) -> Result<&(tokio::runtime::Runtime, async_nats::Client), SinkError> {
        if self.conn.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sink-nats-io")
                .enable_all()
                .build()?;
            let opts = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_millis(self.cfg.connect_timeout_ms))
                .retry_on_initial_connect()
                .name("acs-media-gateway");
            let client = rt
                .block_on(opts.connect(self.cfg.url.as_str()))
                .map_err(|e| SinkError::Other(format!("nats connect {}: {e}", self.cfg.url)))?;
            self.conn = Some((rt, client));
        }
        Ok(self.conn.as_ref().expect("set above"))
    }

    fn publish(
        &mut self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), SinkError> {
        let (rt, client) = self.conn()?;
        rt.block_on(client.publish_with_headers(subject, headers, payload))
            .map_err(|e| SinkError::Other(format!("nats publish: {e}")))
    }

    fn call_subject(&mut self, call: &CallInfo) -> String {
        let prefix = &self.cfg.subject_prefix;
        self.calls
            .entry(call.id)
            .or_insert_with(|| format!("{prefix}.{}", subject_token(&call.label)))
            .clone()
    }

    fn publish_event(&mut self, call: &CallInfo, body: serde_json::Value) -> Result<(), SinkError> {
        let subject = format!("{}.events", self.call_subject(call));
        let mut h = HeaderMap::new();
        h.insert("Acs-Call", call.label.as_str());
        let payload =
            Bytes::from(serde_json::to_vec(&body).map_err(|e| SinkError::Other(e.to_string()))?);
        self.publish(subject, h, payload)
    }

    fn stream_event(&mut self, stream: StreamId, body: serde_json::Value) -> Result<(), SinkError> {
        let Some(call) = self.streams.get(&stream).map(|s| s.info.call.clone()) else {
            return Err(SinkError::UnknownStream(stream));
        };
        self.publish_event(&call, body)
    }
}

fn kind_str(k: StreamKind) -> &'static str {
    match k {
        StreamKind::Participant => "participant",
        StreamKind::Mixed => "mixed",
        StreamKind::Mix => "mix",
        StreamKind::Outbound => "outbound",
    }
}

impl Sink for NatsSink {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        let wanted = match stream.kind {
            StreamKind::Participant => self.cfg.participants,
            StreamKind::Mixed | StreamKind::Mix => self.cfg.mixed,
            // the call's own playback is the WAV recorder's (`record_outbound`), not published
            StreamKind::Outbound => false,
        };
        let token = match (&stream.participant, stream.kind) {
            (Some(p), _) => subject_token(p),
            (None, StreamKind::Mix) => "mix".into(),
            (None, StreamKind::Outbound) => "outbound".into(),
            (None, _) => "mixed".into(),
        };
        let subject = format!("{}.audio.{token}", self.call_subject(&stream.call));
        let format = format!("pcm_s16le;rate={};channels=1", stream.sample_rate);
        self.streams.insert(
            stream.id,
            StreamRec {
                subject: subject.clone(),
                info: stream.clone(),
                format,
                seq: 0,
                wanted,
            },
        );
        self.stream_event(
            stream.id,
            json!({"type": "stream_open", "subject": subject, "kind": kind_str(stream.kind),
                   "participantRawId": stream.participant.as_deref(), "sampleRate": stream.sample_rate,
                   "startTime": stream.start_unix_ms.map(ts), "callOffsetSamples": stream.call_offset}),
        )
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let s = self
            .streams
            .get_mut(&frame.stream)
            .ok_or(SinkError::UnknownStream(frame.stream))?;
        if !s.wanted {
            return Ok(());
        }
        let mut h = HeaderMap::new();
        h.insert("Acs-Format", s.format.as_str());
        h.insert("Acs-Seq", s.seq.to_string().as_str());
        h.insert("Acs-Pos", frame.pos.to_string().as_str());
        if let Some(start) = s.info.start_unix_ms {
            let ms = start + (frame.pos * 1000 / u64::from(frame.sample_rate.max(1))) as i64;
            h.insert("Acs-Timestamp", ts(ms).as_str());
        }
        if let Some(p) = &s.info.participant {
            h.insert("Acs-Participant", &**p);
        }
        h.insert("Acs-Stream-Kind", kind_str(s.info.kind));
        if frame.acs_silent {
            h.insert("Acs-Silent", "1");
        }
        if frame.voiced {
            h.insert("Acs-Voiced", "1");
        }
        s.seq += 1;
        self.bytes.clear();
        for x in frame.samples() {
            self.bytes.extend_from_slice(&x.to_le_bytes());
        }
        let payload = Bytes::copy_from_slice(&self.bytes);
        let subject = s.subject.clone();
        self.publish(subject, h, payload)
    }

    fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        self.stream_event(
            stream,
            json!({"type": "gap", "stream": stream, "samples": samples}),
        )
    }

    fn event(&mut self, call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
        let stream = match event {
            CallEvent::SpeechStarted { stream, .. } | CallEvent::SpeechEnded { stream, .. } => {
                Some(*stream)
            }
            _ => None,
        };
        let speaker = stream
            .and_then(|s| self.streams.get(&s))
            .and_then(|r| r.info.participant.as_deref());
        let body = serde_json::to_value(EventJson {
            event,
            stream_participant: speaker,
        })
        .map_err(|e| SinkError::Other(format!("event JSON: {e}")))?;
        self.publish_event(call, body)
    }

    fn close(
        &mut self,
        _call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError> {
        let res = self.stream_event(
            stream,
            json!({"type": "stream_close", "stream": stream, "frames": stats.frames, "samples": stats.samples,
                   "gapsFilled": stats.gaps, "lateFrames": stats.late, "duplicateFrames": stats.duplicates}),
        );
        self.streams.remove(&stream);
        res
    }

    fn end_call(&mut self, call: &Arc<CallInfo>, reason: &EndReason) -> Result<(), SinkError> {
        let res = self.publish_event(
            call,
            json!({"type": "call_ended", "reason": reason.to_string()}),
        );
        self.calls.remove(&call.id);
        self.streams.retain(|_, s| s.info.call.id != call.id);
        res
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let Some((rt, client)) = self.conn.as_ref() else {
            return Ok(()); // nothing published yet
        };
        match rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), client.flush()).await })
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SinkError::Other(format!("nats flush: {e}"))),
            Err(_) => Err(SinkError::Other("nats flush timed out".into())),
        }
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let r = self.flush();
        self.streams.clear();
        self.calls.clear();
        r
    }
}

fn ts(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    format_timestamp(ms, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens_are_safe() {
        for id in ["8:acs:a.b", "a b*c>d", "../x", ""] {
            let t = subject_token(id);
            assert!(!t.is_empty() && !t.contains(['.', '*', '>', ' ']), "{t}");
        }
        assert_eq!(subject_token("plain-id_1"), "plain-id_1");
    }

    #[test]
    fn validation() {
        assert!(NatsSinkConfig::default().validate().is_empty());
        let bad = NatsSinkConfig {
            url: " ".into(),
            subject_prefix: "a..b".into(),
            queue_frames: 1,
            connect_timeout_ms: 1,
            ..Default::default()
        };
        assert_eq!(bad.validate().len(), 4);
        let bad = NatsSinkConfig {
            subject_prefix: "acs.>".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().len(), 1);
    }
}
