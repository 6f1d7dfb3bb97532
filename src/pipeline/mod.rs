//! PURE: the per-call media pipeline (no sockets, no tokio).
//!
//! [`Pipeline`] is shared by all connections; [`Pipeline::start_call`] gives each media
//! connection a [`CallPipeline`], which takes every WebSocket message of that call through:
//! parse (borrowed strings) → base64 decode into a reused buffer → sample-alignment and length
//! checks → the participant's state (looked up by `participantRawID` in a small vector) →
//! [`timeline`] placement (gap fill, late/duplicate drop) → `ring` buffer → [`silence`]
//! detector (speech start/end events) → fan-out to every sink's bounded queue ([`sink`]). In
//! unmixed calls the `mixer` adds a mixed stream aligned on the call timeline. The steady-state
//! AudioData path does not allocate. `outbound` lays what a bidirectional call sent to ACS on
//! the same timeline, as the call's outbound stream. The crate's front page has a runnable
//! example: a pipeline with one sink, fed a media connection's first messages.

pub(crate) mod echo;
pub(crate) mod event_json;
pub mod frame;
pub(crate) mod log_limit;
pub(crate) mod mixer;
pub(crate) mod outbound;
pub(crate) mod pcm;
pub mod playback;
pub(crate) mod ring;
pub mod silence;
pub mod sink;
pub mod timeline;
pub mod vad;

pub use frame::{
    AudioFrame, CallEvent, CallId, CallIds, CallInfo, EndReason, PlaybackReport, SinkMsg, StreamId,
    StreamInfo, StreamKind, StreamStats,
};
pub use sink::{FanOut, Sink, SinkError, SinkHandle};

use crate::metrics::{BadFrame, Metrics};
use crate::protocol::b64::decode_base64_pcm16;
use crate::protocol::error::ProtocolError;
use crate::protocol::media::{
    parse_inbound, parse_inbound_str, AudioData, AudioMetadata, Inbound, InboundKind, ResultStatus,
};
use crate::protocol::timestamp::parse_timestamp;
use frame::{FramePool, Transcript, MAX_FRAME_SAMPLES};
use mixer::{MixInput, MixSource, Mixer};
use ring::{Cursor, Ring};
use silence::{SilenceConfig, SilenceDetector, VoiceEdge};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use timeline::{Placement, Timeline, TimelineConfig};
pub use timeline::{DEFAULT_GAP_FILL_SLACK_MS, DEFAULT_MAX_GAP_FILL_MS};

pub mod config;
pub use config::*;

/// Shared by every connection: settings, sinks, metrics, id counters.
#[derive(Debug)]
pub struct Pipeline {
    cfg: PipelineConfig,
    fanout: FanOut,
    metrics: Arc<Metrics>,
    next_call: AtomicU64,
    next_stream: AtomicU64,
}

impl Pipeline {
    /// A pipeline fanning out to `fanout`.
    pub fn new(cfg: PipelineConfig, fanout: FanOut, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            fanout,
            metrics,
            next_call: AtomicU64::new(1),
            next_stream: AtomicU64::new(1),
        })
    }

    /// The sinks.
    pub fn fanout(&self) -> &FanOut {
        &self.fanout
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// State for a new call (one media connection) opened at `now_unix_ms` (wall clock, ms since
    /// the Unix epoch: the caller reads the clock, the pipeline reads none).
    pub fn start_call(
        self: &Arc<Self>,
        call_connection_id: Option<String>,
        correlation_id: Option<String>,
        token: Option<String>,
        now_unix_ms: i64,
    ) -> CallPipeline {
        self.start_call_with_ids(
            call_connection_id,
            correlation_id,
            token,
            CallIds::default(),
            now_unix_ms,
        )
    }

    /// [`Pipeline::start_call`] for a call the control plane admitted: `ids` reach the sinks
    /// with the call's [`CallInfo`].
    pub fn start_call_with_ids(
        self: &Arc<Self>,
        call_connection_id: Option<String>,
        correlation_id: Option<String>,
        token: Option<String>,
        ids: CallIds,
        now_unix_ms: i64,
    ) -> CallPipeline {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let now = now_unix_ms;
        let call = Arc::new(
            CallInfo::new(id, call_connection_id, correlation_id, token, now).with_ids(ids),
        );
        CallPipeline {
            shared: self.clone(),
            call,
            rate: self.cfg.default_sample_rate,
            metadata: None,
            participants: Vec::new(),
            pcm: Vec::new(),
            call_origin_ms: None,
            heard: 0,
            elapsed_ms: 0,
            mix: None,
            pool: FramePool::new(FRAME_POOL_INITIAL, FRAME_POOL_MAX),
            local: LocalCounts::new(&self.metrics),
            ended: false,
        }
    }
}

struct Participant {
    key: Arc<str>,
    stream: Arc<StreamInfo>,
    timeline: Timeline,
    /// The participant's recent audio and the mixer's cursor in it — kept only while something
    /// reads it (today the mixer, for unmixed participants). ACS's own mixed stream has no reader,
    /// and writing a ring nobody reads cost a cold 640-byte copy per frame.
    ring: Option<(Ring<i16>, Cursor)>,
    /// Samples of the stream so far, gaps included (the next frame's position).
    written: u64,
    /// The call's elapsed time when the stream opened (ms, see [`CallPipeline::set_elapsed`]).
    opened_ms: u64,
    detector: SilenceDetector,
    acs_silent_frames: u64,
}

impl Participant {
    fn stats(&self) -> StreamStats {
        let t = self.timeline.stats();
        StreamStats {
            frames: t.frames,
            samples: self.timeline.position(),
            gaps: t.gaps,
            filled_samples: t.filled_samples,
            late: t.late,
            duplicates: t.duplicates,
            resyncs: t.resyncs,
            outliers: t.outliers,
            acs_silent_frames: self.acs_silent_frames,
            silent_samples: self.detector.silent_samples(),
            voiced_samples: self.detector.voiced_samples(),
        }
    }
}

impl MixSource for Participant {
    fn mix_input(&mut self) -> Option<MixInput<'_>> {
        // ACS's own mixed stream is not mixed again
        if self.stream.kind != StreamKind::Participant {
            return None;
        }
        let (ring, cursor) = self.ring.as_mut()?;
        Some(MixInput {
            ring: &*ring,
            offset: self.stream.call_offset,
            cursor,
        })
    }
}

struct MixState {
    mixer: Mixer,
    stream: Option<Arc<StreamInfo>>,
    frames: u64,
    samples: u64,
}

/// Per-frame counters a call accumulates locally and adds to the shared [`Metrics`] every
/// [`METRICS_FLUSH_FRAMES`] frames and when it ends: shared atomics written by every connection on
/// every frame bounce their cache lines between cores.
struct LocalCounts {
    pending: u32,
    frame_bytes: u64,
    audio_data: u64,
    audio_bytes: u64,
    silent_acs: u64,
    silent_detected: u64,
    frame_seconds: prometheus::local::LocalHistogram,
    /// Frame times observed since the last flush.
    timed: bool,
}

impl LocalCounts {
    fn new(m: &Metrics) -> Self {
        Self {
            pending: 0,
            frame_bytes: 0,
            audio_data: 0,
            audio_bytes: 0,
            silent_acs: 0,
            silent_detected: 0,
            frame_seconds: m.frame_seconds.local(),
            timed: false,
        }
    }

    fn flush(&mut self, m: &Metrics) {
        if self.pending == 0 && self.frame_bytes == 0 && !self.timed {
            return;
        }
        m.frame_bytes.inc_by(std::mem::take(&mut self.frame_bytes));
        m.frames_of(InboundKind::AudioData, std::mem::take(&mut self.audio_data));
        m.audio_bytes.inc_by(std::mem::take(&mut self.audio_bytes));
        m.silent_frames_acs
            .inc_by(std::mem::take(&mut self.silent_acs));
        m.silent_frames_detected
            .inc_by(std::mem::take(&mut self.silent_detected));
        self.frame_seconds.flush();
        self.timed = false;
        self.pending = 0;
    }
}

/// One call's pipeline state; owned by its connection task.
pub struct CallPipeline {
    shared: Arc<Pipeline>,
    call: Arc<CallInfo>,
    rate: u32,
    metadata: Option<u32>,
    participants: Vec<Participant>,
    /// Decoded samples of the message being handled: `pcm[..n]` (base64 decoded straight into
    /// it; grown to the largest payload seen, never shrunk).
    pcm: Vec<i16>,
    call_origin_ms: Option<i64>,
    /// Call-timeline position just after the latest sample heard from any stream.
    heard: u64,
    /// Time since the connection opened, as the connection last reported it (ms).
    elapsed_ms: u64,
    mix: Option<MixState>,
    pool: FramePool,
    local: LocalCounts,
    ended: bool,
}

impl std::fmt::Debug for CallPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallPipeline")
            .field("call", &self.call)
            .field("rate", &self.rate)
            .field("participants", &self.participants.len())
            .finish()
    }
}

impl CallPipeline {
    /// The call.
    pub fn call(&self) -> &Arc<CallInfo> {
        &self.call
    }

    /// The current sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Number of streams currently open (participants, or ACS's mixed stream).
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// The most recent `out.len()` samples of a participant, from its ring buffer; returns how
    /// many were copied. Rings are kept for the participants of an unmixed call while the mixer
    /// reads them; other streams (ACS's mixed stream) have none and give 0.
    pub fn latest_audio(&self, participant: Option<&str>, out: &mut [i16]) -> usize {
        let key = participant.unwrap_or("");
        self.participants
            .iter()
            .find(|p| &*p.key == key)
            .and_then(|p| p.ring.as_ref())
            .map_or(0, |(r, _)| r.latest(out))
    }

    /// Reports the time since the call's connection opened. The pipeline reads no clock for
    /// its timelines: the connection calls this on its housekeeping tick (about once a second),
    /// and each stream may fill gaps with at most its share of that time plus
    /// `media.gap_fill_slack_ms` of silence in total ([`timeline`]).
    pub fn set_elapsed(&mut self, elapsed: std::time::Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms = self.elapsed_ms.max(ms);
        for p in &mut self.participants {
            p.timeline
                .set_elapsed_ms(self.elapsed_ms.saturating_sub(p.opened_ms));
        }
    }

    /// Takes one WebSocket message (text or binary payload). `Err` means: close the connection
    /// with [`FrameError::close_code`]; everything already received is kept.
    ///
    /// The pipeline reads no clock: a caller that measures the time this took reports it with
    /// [`CallPipeline::record_frame_time`].
    pub fn handle(&mut self, frame: &[u8]) -> Result<Handled, FrameError> {
        self.local.frame_bytes += frame.len() as u64;
        self.dispatch(parse_inbound(frame))
    }

    /// [`CallPipeline::handle`] of a text message, which the WebSocket layer has already
    /// validated as UTF-8 (so its strings are not checked again); same results.
    pub fn handle_text(&mut self, frame: &str) -> Result<Handled, FrameError> {
        self.local.frame_bytes += frame.len() as u64;
        self.dispatch(parse_inbound_str(frame))
    }

    #[inline(always)]
    fn dispatch(
        &mut self,
        parsed: Result<Inbound<'_>, ProtocolError>,
    ) -> Result<Handled, FrameError> {
        let msg = match parsed {
            Ok(msg) => msg,
            Err(e) => {
                self.shared.metrics.bad_frame(BadFrame::from_protocol(&e));
                self.local.flush(&self.shared.metrics);
                return Err(e.into());
            }
        };
        if let Inbound::AudioData(a) = &msg {
            let r = self.audio(a);
            let local = &mut self.local;
            local.audio_data += 1;
            local.pending += 1;
            if local.pending >= METRICS_FLUSH_FRAMES {
                local.flush(&self.shared.metrics);
            }
            return Ok(r);
        }
        self.shared.metrics.frame(msg.kind());
        match msg {
            Inbound::AudioData(_) => unreachable!("handled above"),
            Inbound::AudioMetadata(meta) => {
                let m = self.shared.metrics.clone();
                self.apply_metadata(&meta, &m)
            }
            Inbound::DtmfData(d) => {
                let unix_ms = d
                    .timestamp
                    .as_deref()
                    .and_then(parse_timestamp)
                    .map(|t| t.unix_ms);
                self.event(CallEvent::Dtmf {
                    tone: d.data.to_string(),
                    participant: d
                        .participant_raw_id
                        .map(|p| p.into_owned())
                        .filter(|p| !p.is_empty()),
                    unix_ms,
                });
                Ok(Handled::Event)
            }
            Inbound::TranscriptionMetadata(t) => {
                self.event(CallEvent::TranscriptionStarted {
                    locale: t.locale.map(|s| s.into_owned()),
                    subscription_id: t.subscription_id.map(|s| s.into_owned()),
                });
                Ok(Handled::Event)
            }
            Inbound::TranscriptionData(t) => {
                self.event(CallEvent::Transcription(Transcript {
                    text: t.text.into_owned(),
                    participant: t.participant_raw_id.map(|s| s.into_owned()),
                    is_final: matches!(t.result_status, Some(ResultStatus::Final)),
                    confidence: t.confidence,
                    offset_ticks: t.offset,
                    duration_ticks: t.duration,
                }));
                Ok(Handled::Event)
            }
            Inbound::MarkData(mk) => {
                let id = mk
                    .id
                    .map(|s| s.into_owned())
                    .or_else(|| mk.sequence.map(|n| n.to_string()))
                    .unwrap_or_default();
                self.event(CallEvent::Mark {
                    id,
                    status: mk.status.map(|s| s.into_owned()),
                });
                Ok(Handled::Event)
            }
            Inbound::Unknown { kind } => {
                tracing::debug!(call = %self.call.label, kind = %kind, "unknown message kind skipped");
                Ok(Handled::Unknown)
            }
        }
    }

    fn event(&self, event: CallEvent) {
        self.shared.fanout.control(SinkMsg::Event {
            call: self.call.clone(),
            event: Arc::new(event),
        });
    }

    fn apply_metadata(
        &mut self,
        meta: &AudioMetadata<'_>,
        m: &Metrics,
    ) -> Result<Handled, FrameError> {
        let rate = meta.sample_rate.unwrap_or(self.rate);
        let channels = meta.channels.unwrap_or(1);
        let encoding_ok = meta
            .encoding
            .as_deref()
            .is_none_or(|e| e.eq_ignore_ascii_case("pcm"));
        if !(rate == 16_000 || rate == 24_000) || channels != 1 || !encoding_ok {
            m.bad_frame(BadFrame::UnsupportedFormat);
            return Err(FrameError::UnsupportedFormat(format!(
                "sampleRate={rate} channels={channels} encoding={}",
                meta.encoding.as_deref().unwrap_or("?")
            )));
        }
        if rate != self.rate && !self.participants.is_empty() {
            // a new format mid-call: the old streams end, new ones start with the next frames
            self.close_streams();
        }
        self.rate = rate;
        self.metadata = Some(rate);
        Ok(Handled::Metadata)
    }

    fn audio(&mut self, a: &AudioData<'_>) -> Handled {
        if self.metadata.is_none() {
            self.shared.metrics.frames_before_metadata.inc();
        }
        let pid = a.participant();
        if pid.is_some_and(|p| p.len() > MAX_PARTICIPANT_ID_LEN) {
            return refuse(&self.shared.metrics, BadFrame::ParticipantIdTooLong);
        }
        // decode and check the payload
        let bytes = match decode_base64_pcm16(a.data.as_bytes(), &mut self.pcm) {
            Ok(n) => n,
            Err(_) => return refuse(&self.shared.metrics, BadFrame::BadBase64),
        };
        let m = &*self.shared.metrics;
        if bytes == 0 {
            return refuse(m, BadFrame::Empty);
        }
        if bytes % 2 != 0 {
            return refuse(m, BadFrame::OddLength);
        }
        if bytes > self.rate as usize * 2 * MAX_PAYLOAD_MS / 1000 {
            return refuse(m, BadFrame::TooLong);
        }
        if bytes != pcm::frame_bytes(self.rate) {
            m.bad_frame(BadFrame::LengthMismatch); // accepted: whole samples, just not 20 ms
        }
        let n = bytes / 2;
        let ts = a.timestamp.as_deref().and_then(parse_timestamp);
        let idx = match self.participant_index(pid, ts.filter(|t| t.precise).map(|t| t.unix_ms)) {
            Some(i) => i,
            None => return refuse(&self.shared.metrics, BadFrame::TooManyParticipants),
        };
        let m = &*self.shared.metrics;
        self.local.audio_bytes += bytes as u64;
        if a.silent {
            self.local.silent_acs += 1;
        }

        let fan = &self.shared.fanout;
        let call = &self.call;
        let p = &mut self.participants[idx];
        let placement = p
            .timeline
            .place(ts.map(|t| t.unix_ms), ts.is_some_and(|t| t.precise), n);
        let (fill, resynced) = match placement {
            Placement::Late => {
                m.late_frames.inc();
                return Handled::Dropped;
            }
            Placement::Duplicate => {
                m.duplicate_frames.inc();
                return Handled::Dropped;
            }
            Placement::Append { fill, resynced } => (fill, resynced),
            Placement::Outlier => {
                m.timestamp_outliers.inc();
                (0, false)
            }
        };
        if resynced {
            m.timeline_resyncs.inc();
        }
        let stream_id = p.stream.id;
        if fill > 0 {
            m.gaps_filled.inc();
            m.gap_fill_samples.inc_by(fill);
            if let Some((ring, _)) = p.ring.as_mut() {
                ring.push_fill(0, fill);
            }
            p.written += fill;
            if let Some(edge) = p.detector.process_gap(fill) {
                emit_edge(fan, call, stream_id, edge, m);
            }
            fan.control(SinkMsg::Gap {
                call: call.id,
                stream: stream_id,
                samples: fill,
            });
        }
        if a.silent {
            p.acs_silent_frames += 1;
        }
        let mut pos = p.written;
        for chunk in self.pcm[..n].chunks(MAX_FRAME_SAMPLES) {
            let voice = p.detector.process(chunk, a.silent);
            if !voice.voiced {
                self.local.silent_detected += 1;
            }
            if let Some((ring, _)) = p.ring.as_mut() {
                ring.push(chunk);
            }
            match self.pool.acquire() {
                Some(slot) => {
                    if let Some(f) = Arc::get_mut(slot) {
                        let f = f.reuse(call.id, stream_id, pos, self.rate);
                        f.acs_silent = a.silent;
                        f.voiced = voice.voiced;
                        f.set_samples(chunk);
                    }
                    fan.audio(slot);
                }
                None => m.frame_pool_exhausted.inc(),
            }
            pos += chunk.len() as u64;
            p.written = pos;
            self.heard = self.heard.max(p.stream.call_offset + pos);
            if let Some(edge) = voice.edge {
                emit_edge(fan, call, stream_id, edge, m);
            }
        }
        self.pump_mix(false);
        Handled::Audio
    }

    /// Finds or creates the participant's state; `None` when the call is full.
    fn participant_index(&mut self, pid: Option<&str>, ts_ms: Option<i64>) -> Option<usize> {
        let key = pid.unwrap_or("");
        if let Some(i) = self.participants.iter().position(|p| &*p.key == key) {
            return Some(i);
        }
        if self.participants.len() >= self.shared.cfg.max_participants {
            return None;
        }
        if self.call_origin_ms.is_none() {
            self.call_origin_ms = ts_ms;
        }
        let call_offset = match (ts_ms, self.call_origin_ms) {
            (Some(t), Some(o)) if t > o => {
                ((t - o) as u64).saturating_mul(u64::from(self.rate)) / 1000
            }
            // no timestamps: the participant starts where the mix is now
            (None, _) => self.mix.as_ref().map_or(0, |x| x.mixer.position()),
            _ => 0,
        };
        let id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let key: Arc<str> = Arc::from(key);
        let stream = Arc::new(StreamInfo {
            call: self.call.clone(),
            id,
            kind: if pid.is_some() {
                StreamKind::Participant
            } else {
                StreamKind::Mixed
            },
            participant: pid.map(|_| key.clone()),
            sample_rate: self.rate,
            start_unix_ms: ts_ms,
            call_offset,
        });
        let cfg = &self.shared.cfg;
        // a ring only where it has a reader: the mixer of an unmixed call
        let ring = (pid.is_some() && cfg.mix_unmixed).then(|| {
            let ring = Ring::new(
                (self.rate as usize * cfg.ring_capacity_ms as usize / 1000).max(MAX_FRAME_SAMPLES),
            );
            let cursor = ring.cursor_at(0);
            (ring, cursor)
        });
        self.shared.fanout.control(SinkMsg::Open(stream.clone()));
        self.event(CallEvent::ParticipantJoined {
            stream: id,
            participant: stream.participant.clone(),
        });
        self.shared.metrics.participants.inc();
        if pid.is_some() && cfg.mix_unmixed && self.mix.is_none() {
            self.mix = Some(MixState {
                mixer: Mixer::new(
                    pcm::frame_samples(self.rate),
                    u64::from(cfg.mix_latency_ms) * u64::from(self.rate) / 1000,
                ),
                stream: None,
                frames: 0,
                samples: 0,
            });
        }
        self.participants.push(Participant {
            key,
            stream,
            timeline: Timeline::new(&cfg.timeline, self.rate),
            ring,
            written: 0,
            opened_ms: self.elapsed_ms,
            detector: SilenceDetector::new(&cfg.silence, self.rate),
            acs_silent_frames: 0,
        });
        Some(self.participants.len() - 1)
    }

    fn pump_mix(&mut self, flush: bool) {
        let Some(mix) = self.mix.as_mut() else { return };
        let fan = &self.shared.fanout;
        let call = &self.call;
        let metrics = &self.shared.metrics;
        let rate = self.rate;
        let origin = self.call_origin_ms;
        let stream_ids = &self.shared.next_stream;
        let pool = &mut self.pool;
        let MixState {
            mixer,
            stream,
            frames,
            samples,
        } = mix;
        let ensure = |stream: &mut Option<Arc<StreamInfo>>| -> Arc<StreamInfo> {
            stream
                .get_or_insert_with(|| {
                    let s = Arc::new(StreamInfo {
                        call: call.clone(),
                        id: stream_ids.fetch_add(1, Ordering::Relaxed),
                        kind: StreamKind::Mix,
                        participant: None,
                        sample_rate: rate,
                        start_unix_ms: origin,
                        call_offset: 0,
                    });
                    fan.control(SinkMsg::Open(s.clone()));
                    s
                })
                .clone()
        };
        let pending_gap = std::cell::Cell::new(0u64);
        let outcome = mixer.pump(
            &mut self.participants,
            flush,
            |g| pending_gap.set(pending_gap.get() + g),
            |pos, block| {
                let s = ensure(stream);
                if pending_gap.get() > 0 {
                    fan.control(SinkMsg::Gap {
                        call: call.id,
                        stream: s.id,
                        samples: pending_gap.take(),
                    });
                }
                let Some(slot) = pool.acquire() else {
                    metrics.frame_pool_exhausted.inc();
                    return;
                };
                if let Some(frame) = Arc::get_mut(slot) {
                    frame.reuse(call.id, s.id, pos, rate).set_samples(block);
                }
                fan.audio(slot);
                *frames += 1;
                *samples += block.len() as u64;
            },
        );
        if outcome.overrun > 0 {
            metrics.ring_overruns.inc_by(outcome.overrun);
        }
    }

    /// Ends every open stream: final speech edges, mixer flush, `Close` and `ParticipantLeft`.
    fn close_streams(&mut self) {
        self.pump_mix(true);
        let fan = &self.shared.fanout;
        let m = &self.shared.metrics;
        for mut p in self.participants.drain(..) {
            if let Some(edge) = p.detector.finish() {
                emit_edge(fan, &self.call, p.stream.id, edge, m);
            }
            fan.control(SinkMsg::Close {
                call: self.call.id,
                stream: p.stream.id,
                stats: Box::new(p.stats()),
            });
            fan.control(SinkMsg::Event {
                call: self.call.clone(),
                event: Arc::new(CallEvent::ParticipantLeft {
                    stream: p.stream.id,
                    participant: p.stream.participant.clone(),
                }),
            });
        }
        if let Some(mix) = self.mix.take() {
            if let Some(s) = mix.stream {
                let stats = StreamStats {
                    frames: mix.frames,
                    samples: mix.samples,
                    ..Default::default()
                };
                fan.control(SinkMsg::Close {
                    call: self.call.id,
                    stream: s.id,
                    stats: Box::new(stats),
                });
            }
        }
        self.call_origin_ms = None;
    }

    /// Records how long [`CallPipeline::handle`] took for one AudioData frame (the
    /// `frame_processing_seconds` histogram; batched with the other per-frame counts).
    #[inline]
    pub fn record_frame_time(&mut self, took: Duration) {
        self.local.frame_seconds.observe(took.as_secs_f64());
        self.local.timed = true;
    }

    /// Adds the per-frame counts this call has batched so far to the shared metrics (the
    /// connection calls it about once a second; [`CallPipeline::finish`] does it too).
    pub fn flush_metrics(&mut self) {
        self.local.flush(&self.shared.metrics);
    }

    /// Ends the call: closes every stream and tells the sinks why. Idempotent.
    pub fn finish(&mut self, reason: EndReason) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.local.flush(&self.shared.metrics);
        self.close_streams();
        self.shared.fanout.control(SinkMsg::CallEnded {
            call: self.call.clone(),
            reason,
        });
    }
}

impl Drop for CallPipeline {
    fn drop(&mut self) {
        // a connection task that ends without finish() (panic, cancellation) still closes its
        // streams so recordings are finalised
        self.finish(EndReason::Disconnected);
    }
}

fn refuse(m: &Metrics, why: BadFrame) -> Handled {
    m.bad_frame(why);
    Handled::Refused(why)
}

fn emit_edge(fan: &FanOut, call: &Arc<CallInfo>, stream: StreamId, edge: VoiceEdge, m: &Metrics) {
    let event = match edge {
        VoiceEdge::SpeechStart { at } => {
            m.speech_segments.inc();
            CallEvent::SpeechStarted { stream, pos: at }
        }
        VoiceEdge::SpeechEnd { at, started } => CallEvent::SpeechEnded {
            stream,
            start: started,
            end: at,
        },
    };
    fan.control(SinkMsg::Event {
        call: call.clone(),
        event: Arc::new(event),
    });
}

#[cfg(test)]
mod tests;
