//! A call's media stream: the audio resolved at the call's rate, the lazy frame source that runs
//! until the stream is stopped, the observer that records what the gateway sends back, and the
//! analysis of that outbound audio (pacing, `StopAudio` latency).
//!
//! Audio marks (preview): the fake plays outbound audio the moment it arrives, so an `AudioData`
//! carrying a mark is answered with `MarkData` `Completed` before the stream's next frame.
//!
//! Every outbound message is recorded with its arrival time and the caller's stream position
//! then (20 ms frames sent on that connection), so a test can line what came back up with what
//! the caller had said; [`CallAudio::first_audio_after`] holds the first `AudioData` back after
//! the `AudioMetadata`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::call::{Cmd, MediaOutcome};
use super::echo::EchoLine;
use super::state::Shared;
use super::{AfterAudio, AudioInput, CallAudio};
use crate::audio::{
    frame_dbfs, pcm_le_bytes, read_wav_mono, resample_linear, samples_per_frame, speech_like,
    to_i16, FRAME_MS,
};
use crate::error::SimError;
use crate::jwt::WEBSOCKET_TOKEN_LIFETIME;
use crate::plan::{plan_audio_frame, AudioSlot, PlannedFrame, PlannedKind};
use crate::play::{acs_headers, play_observed, Pacing, PlayObserver, SentFrame};
use acs_protocol::mark::{mark_data_json, outbound_mark_id, MARK_COMPLETED};
use acs_protocol::{inbound_audio_metadata_json, parse_outbound, Outbound};
use std::collections::VecDeque;

/// Silent frames before a voiced one that make it a speech onset (200 ms).
const ONSET_QUIET_FRAMES: u32 = 10;
/// A `StopAudio` more than this long after the last onset is not attributed to it.
const MAX_STOP_LATENCY: Duration = Duration::from_secs(10);
/// Audio received this soon after a `StopAudio` counts as played after the stop.
const AFTER_STOP_WINDOW: Duration = Duration::from_millis(500);

/// What the gateway sent on the media socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum OutboundKind {
    /// `AudioData` carrying this many PCM bytes.
    Audio {
        /// Decoded bytes.
        pcm_bytes: usize,
        /// Its audio mark id (preview), answered with `MarkData`.
        #[serde(skip_serializing_if = "Option::is_none")]
        mark: Option<String>,
    },
    /// `StopAudio`.
    StopAudio,
    /// A well-formed message of another kind.
    Other {
        /// Its `kind`.
        kind: String,
    },
    /// Not an outbound message (bad JSON, bad base64, …).
    Invalid {
        /// Why.
        reason: String,
    },
}

/// One message from the gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundEvent {
    /// Milliseconds since the call's first media connection opened.
    pub at_ms: f64,
    /// The caller's stream position when it arrived: 20 ms frames of the (first) inbound stream
    /// the fake had sent on this media connection (0: none yet). Its audio up to
    /// `stream_frames × 20 ms` had gone out.
    pub stream_frames: u64,
    /// Inbound stream time when it arrived (ms): the audio the fake had sent by then (the
    /// connection's first stream, frames × 20 ms).
    pub stream_ms: f64,
    /// What it was.
    pub kind: OutboundKind,
}

/// Distribution of intervals, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntervalStats {
    /// Intervals measured.
    pub count: usize,
    /// Smallest.
    pub min_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl IntervalStats {
    /// Statistics of `values` (`None` when empty). Percentiles are nearest-rank.
    pub fn of(values: &[f64]) -> Option<IntervalStats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Some(IntervalStats {
            count: v.len(),
            min_ms: v[0],
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: v[v.len() - 1],
        })
    }
}

/// What the gateway sent back on a call's media socket, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutboundSummary {
    /// `AudioData` messages.
    pub audio_frames: u64,
    /// PCM bytes they carried.
    pub pcm_bytes: u64,
    /// Audio duration they carried, at the call's rate.
    pub audio_ms: f64,
    /// From the first to the last `AudioData`, wall clock.
    pub span_ms: f64,
    /// Intervals between consecutive `AudioData` arrivals (its pacing).
    pub intervals: Option<IntervalStats>,
    /// `StopAudio` messages.
    pub stop_audio: u64,
    /// Audio frames received within 500 ms after a `StopAudio` (summed over the stops): audio
    /// a bot sent before it learned of a barge-in, played after the stop.
    pub audio_after_stop: u64,
    /// For each `StopAudio`: milliseconds since the latest speech onset the fake sent before
    /// it (`None`: no onset within 10 s before it).
    pub stop_audio_latency_ms: Vec<Option<f64>>,
    /// The same in stream time: the caller's audio sent from the onset's frame up to the
    /// `StopAudio`'s arrival (frames × 20 ms; a `StopAudio` that came right after the onset's
    /// frame is 20 ms). How late this test's own tasks ran on a loaded host does not count in
    /// it: the fake reads and sends in one loop.
    pub stop_audio_stream_latency_ms: Vec<Option<f64>>,
    /// `AudioData` messages carrying an audio mark (each answered with `MarkData`).
    pub marks: u64,
    /// Messages of other kinds.
    pub other: u64,
    /// Messages that were not valid outbound messages.
    pub invalid: u64,
}

/// Everything received on a call's media sockets (all its connections).
#[derive(Debug, Default)]
pub(crate) struct OutboundLog {
    epoch: Option<Instant>,
    sample_rate: u32,
    /// Each message: when it came, the inbound frames sent by then (stream time), what it was.
    events: Vec<(Instant, u64, OutboundKind)>,
    pcm: Vec<u8>,
    /// Speech onsets of the audio the fake sent (their time and slot), shared with the frame
    /// source.
    pub onsets: Arc<Mutex<Vec<(Instant, u64)>>>,
    /// Marks received and not yet answered, shared with the frame source (which sends their
    /// `MarkData`).
    pub marks: Arc<Mutex<VecDeque<String>>>,
    /// The call's echo line (with `CallAudio::echo`), shared with the frame source.
    pub echo: Option<Arc<Mutex<EchoLine>>>,
}

impl OutboundLog {
    fn ms(&self, t: Instant) -> f64 {
        self.epoch
            .map_or(0.0, |e| t.saturating_duration_since(e).as_secs_f64() * 1e3)
    }

    pub fn events(&self) -> Vec<OutboundEvent> {
        self.events
            .iter()
            .map(|(t, slots, k)| OutboundEvent {
                at_ms: self.ms(*t),
                stream_frames: *slots,
                stream_ms: (*slots * FRAME_MS) as f64,
                kind: k.clone(),
            })
            .collect()
    }

    pub fn pcm(&self) -> Vec<i16> {
        self.pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// A message from the gateway came at `at`, when `slots` inbound frames (of the first
    /// stream) had been sent.
    fn record(&mut self, at: Instant, slots: u64, payload: &[u8]) {
        let pos = slots * samples_per_frame(self.sample_rate.max(1)) as u64;
        let kind = match parse_outbound(payload) {
            Ok(Outbound::AudioData { data }) => {
                match base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) {
                    Ok(pcm) if pcm.len() % 2 == 0 => {
                        self.pcm.extend_from_slice(&pcm);
                        if let Some(Ok(mut e)) = self.echo.as_ref().map(|e| e.lock()) {
                            e.played(&pcm, pos);
                        }
                        let mark = outbound_mark_id(payload);
                        if let (Some(id), Ok(mut q)) = (&mark, self.marks.lock()) {
                            q.push_back(id.clone());
                        }
                        OutboundKind::Audio {
                            pcm_bytes: pcm.len(),
                            mark,
                        }
                    }
                    Ok(_) => OutboundKind::Invalid {
                        reason: "odd PCM byte count".into(),
                    },
                    Err(e) => OutboundKind::Invalid {
                        reason: format!("bad base64: {e}"),
                    },
                }
            }
            Ok(Outbound::StopAudio) => {
                if let Some(Ok(mut e)) = self.echo.as_ref().map(|e| e.lock()) {
                    e.stopped(pos);
                }
                OutboundKind::StopAudio
            }
            Ok(Outbound::Unknown { kind }) => OutboundKind::Other {
                kind: kind.into_owned(),
            },
            Err(e) => OutboundKind::Invalid {
                reason: e.to_string(),
            },
        };
        self.events.push((at, slots, kind));
    }

    pub fn summary(&self) -> OutboundSummary {
        let mut s = OutboundSummary::default();
        let mut audio_times = Vec::new();
        for (t, _, k) in &self.events {
            match k {
                OutboundKind::Audio { pcm_bytes, mark } => {
                    s.marks += u64::from(mark.is_some());
                    s.audio_frames += 1;
                    s.pcm_bytes += *pcm_bytes as u64;
                    audio_times.push(*t);
                }
                OutboundKind::StopAudio => s.stop_audio += 1,
                OutboundKind::Other { .. } => s.other += 1,
                OutboundKind::Invalid { .. } => s.invalid += 1,
            }
        }
        if self.sample_rate > 0 {
            s.audio_ms = s.pcm_bytes as f64 / 2.0 / f64::from(self.sample_rate) * 1e3;
        }
        if let (Some(first), Some(last)) = (audio_times.first(), audio_times.last()) {
            s.span_ms = last.saturating_duration_since(*first).as_secs_f64() * 1e3;
        }
        let intervals: Vec<f64> = audio_times
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]).as_secs_f64() * 1e3)
            .collect();
        s.intervals = IntervalStats::of(&intervals);
        let onsets = self.onsets.lock().map(|o| o.clone()).unwrap_or_default();
        for (t, slots, k) in &self.events {
            if *k == OutboundKind::StopAudio {
                s.audio_after_stop += self
                    .events
                    .iter()
                    .filter(|(a, _, k)| {
                        matches!(k, OutboundKind::Audio { .. })
                            && *a > *t
                            && a.saturating_duration_since(*t) <= AFTER_STOP_WINDOW
                    })
                    .count() as u64;
                let onset = onsets
                    .iter()
                    .filter(|o| o.0 <= *t)
                    .max()
                    .filter(|o| t.saturating_duration_since(o.0) <= MAX_STOP_LATENCY);
                s.stop_audio_latency_ms
                    .push(onset.map(|o| t.saturating_duration_since(o.0).as_secs_f64() * 1e3));
                s.stop_audio_stream_latency_ms.push(
                    onset
                        .filter(|o| o.1 < *slots)
                        .map(|o| ((*slots - o.1) * FRAME_MS) as f64),
                );
            }
        }
        s
    }
}

/// One talker's audio at the stream's rate, cut and encoded into 20 ms frames.
struct EncodedStream {
    raw_id: Option<String>,
    frames: Vec<(String, bool)>,
    /// The PCM (kept only when an echo is mixed in).
    pcm: Vec<i16>,
}

/// One stream's participant raw id (`None` when mixed) and its PCM.
type TalkerPcm = (Option<String>, Vec<i16>);

/// Resolves a call's audio at `rate`: one stream per source (`unmixed`), or their sum.
/// `raw_ids` are the sources' resolved participant ids. Reads WAV files: call it off the async
/// threads.
fn resolve_audio(
    audio: &CallAudio,
    raw_ids: &[String],
    rate: u32,
    unmixed: bool,
) -> Result<Vec<TalkerPcm>, SimError> {
    let pcms = audio
        .sources
        .iter()
        .map(|s| match &s.input {
            AudioInput::Generated { duration_ms } => Ok(speech_like(rate, *duration_ms)),
            AudioInput::Wav(p) => read_wav_mono(p, rate),
            AudioInput::Pcm {
                sample_rate,
                samples,
            } if *sample_rate == rate => Ok(samples.as_ref().clone()),
            AudioInput::Pcm {
                sample_rate,
                samples,
            } => {
                let f: Vec<f32> = samples.iter().map(|&x| f32::from(x) / 32768.0).collect();
                Ok(to_i16(&resample_linear(&f, *sample_rate, rate)))
            }
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    if unmixed {
        return Ok(pcms
            .into_iter()
            .enumerate()
            .map(|(i, p)| (raw_ids.get(i).cloned(), p))
            .collect());
    }
    let len = pcms.iter().map(Vec::len).max().unwrap_or(0);
    let mut mix = vec![0i32; len];
    for p in &pcms {
        for (m, &x) in mix.iter_mut().zip(p) {
            *m += i32::from(x);
        }
    }
    let mix = mix
        .into_iter()
        .map(|v| v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
        .collect();
    Ok(vec![(None, mix)])
}

fn encode(pcm: &[i16], rate: u32, threshold_dbfs: f64) -> Vec<(String, bool)> {
    let spf = samples_per_frame(rate);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut buf = vec![0i16; spf];
    pcm.chunks(spf)
        .map(|c| {
            buf.fill(0);
            buf[..c.len()].copy_from_slice(c);
            (
                b64.encode(pcm_le_bytes(&buf)),
                frame_dbfs(&buf) < threshold_dbfs,
            )
        })
        .collect()
}

/// The frames of a call's stream, produced lazily until `stop` is set or `max_slots` slots
/// have been sent: `AudioMetadata`, then one `AudioData` per stream per 20 ms slot.
struct CallFrames {
    metadata: Option<String>,
    streams: Vec<EncodedStream>,
    silence: String,
    after: AfterAudio,
    pcm_bytes: u32,
    slot: u64,
    p: usize,
    max_slots: u64,
    start_unix_ms: i64,
    /// The first `AudioData` goes this long after the `AudioMetadata`; every slot shifts by it.
    lead_in: Duration,
    stop: Arc<AtomicBool>,
    quiet: Vec<u32>,
    session_start: Option<Instant>,
    last_onset_slot: Option<u64>,
    onsets: Arc<Mutex<Vec<(Instant, u64)>>>,
    marks: Arc<Mutex<VecDeque<String>>>,
    echo: Option<Arc<Mutex<EchoLine>>>,
    /// A frame's PCM with the echo mixed in, and its encoding.
    echo_pcm: Vec<i16>,
    threshold_dbfs: f64,
}

impl CallFrames {
    /// The first stream's frame `idx` with the echo due then mixed in; None when no echo is due
    /// (the pre-encoded frame goes out).
    fn with_echo(&mut self, idx: usize, spf: usize) -> Option<(String, bool)> {
        let echo = self.echo.as_ref()?;
        let stream = self.streams.first()?;
        self.echo_pcm.clear();
        self.echo_pcm.resize(spf, 0);
        let len = stream.pcm.len();
        let from = if idx * spf < len || (self.after == AfterAudio::Loop && len > 0) {
            Some((idx * spf) % len.max(1))
        } else {
            None
        };
        if let Some(f) = from {
            for (k, o) in self.echo_pcm.iter_mut().enumerate() {
                *o = stream.pcm.get(f + k).copied().unwrap_or(0);
            }
        }
        let mixed = echo
            .lock()
            .ok()?
            .mix_into((idx * spf) as u64, &mut self.echo_pcm);
        if !mixed {
            return None;
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(pcm_le_bytes(&self.echo_pcm));
        Some((b64, frame_dbfs(&self.echo_pcm) < self.threshold_dbfs))
    }
}

impl Iterator for CallFrames {
    type Item = PlannedFrame;

    fn next(&mut self) -> Option<PlannedFrame> {
        // `play` asks for the first frame right after the handshake: that is the stream's t0.
        let start = *self.session_start.get_or_insert_with(Instant::now);
        // the inbound stream (slot 0) starts after the lead-in
        let audio_start = start + self.lead_in;
        if let Some(text) = self.metadata.take() {
            return Some(PlannedFrame {
                at: Duration::ZERO,
                kind: PlannedKind::AudioMetadata,
                text,
            });
        }
        if self.stop.load(Ordering::Acquire) || self.slot >= self.max_slots {
            return None;
        }
        // answer the marks received so far, at the next slot (before its audio)
        let mark = self.marks.lock().ok().and_then(|mut q| q.pop_front());
        if let Some(id) = mark {
            return Some(PlannedFrame {
                at: self.lead_in + Duration::from_millis(self.slot * FRAME_MS),
                kind: PlannedKind::MarkData,
                text: mark_data_json(&id, MARK_COMPLETED),
            });
        }
        let (slot, p) = (self.slot, self.p);
        let stream = self.streams.get(p)?;
        let idx = slot as usize;
        // which pre-encoded frame (None: silence)
        let (src, silent) = match stream.frames.get(idx) {
            Some((_, s)) => (Some(idx), *s),
            None if self.after == AfterAudio::Loop && !stream.frames.is_empty() => {
                let i = idx % stream.frames.len();
                (Some(i), stream.frames[i].1)
            }
            None => (None, true),
        };
        if silent {
            self.quiet[p] = self.quiet[p].saturating_add(1);
        } else {
            let first_voice = self.quiet[p] == u32::try_from(slot).unwrap_or(u32::MAX);
            if (self.quiet[p] >= ONSET_QUIET_FRAMES || first_voice)
                && self.last_onset_slot != Some(slot)
            {
                self.last_onset_slot = Some(slot);
                if let Ok(mut o) = self.onsets.lock() {
                    o.push((audio_start + Duration::from_millis(slot * FRAME_MS), slot));
                }
            }
            self.quiet[p] = 0;
        }
        let echoed = match p {
            0 if self.echo.is_some() => {
                let spf = (self.pcm_bytes / 2) as usize;
                self.with_echo(idx, spf)
            }
            _ => None,
        };
        let stream = &self.streams[p];
        let (b64, silent) = match (&echoed, src) {
            (Some((b, s)), _) => (b.as_str(), *s),
            (None, Some(i)) => (stream.frames[i].0.as_str(), silent),
            (None, None) => (self.silence.as_str(), silent),
        };
        self.p += 1;
        if self.p == self.streams.len() {
            self.p = 0;
            self.slot += 1;
        }
        let at = AudioSlot {
            slot,
            participant: p,
            pcm_bytes: self.pcm_bytes,
        };
        let mut frame = plan_audio_frame(
            self.start_unix_ms,
            at,
            b64,
            stream.raw_id.as_deref(),
            silent,
        );
        frame.at += self.lead_in;
        Some(frame)
    }
}

/// Everything a media task needs.
pub(crate) struct MediaParams {
    pub shared: Arc<Shared>,
    pub call_id: String,
    pub correlation_id: String,
    pub generation: u64,
    pub transport_url: String,
    pub sample_rate: u32,
    pub unmixed: bool,
    pub audio: CallAudio,
    pub raw_ids: Vec<String>,
    pub subscription_id: String,
    pub stop: Arc<AtomicBool>,
    pub tx: mpsc::UnboundedSender<Cmd>,
    pub pacing: Pacing,
    pub max_duration: Duration,
}

struct MediaObserver {
    shared: Arc<Shared>,
    call_id: String,
    generation: u64,
    tx: mpsc::UnboundedSender<Cmd>,
    /// Frames of the first stream sent so far (the stream time messages arrive at).
    slots: u64,
}

impl PlayObserver for MediaObserver {
    fn connected(&mut self, _connect_time: Duration) {
        let now = Instant::now();
        let at_ms = self.shared.elapsed_ms();
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.call_id) {
                c.info.media.connections += 1;
                c.info.media.first_connected_at_ms.get_or_insert(at_ms);
                c.outbound.epoch.get_or_insert(now);
            }
        });
        let _ = self.tx.send(Cmd::MediaUp {
            generation: self.generation,
        });
    }

    fn sent(&mut self, frame: &SentFrame<'_>) {
        if let PlannedKind::Audio {
            participant,
            frame: n,
            ..
        } = *frame.kind
        {
            if participant == 0 {
                self.slots = n;
            }
            // Counted without waking waiters: this runs 50 times a second per stream.
            if let Some(c) = self.shared.lock().call_mut(&self.call_id) {
                c.info.media.audio_frames_sent += 1;
            }
        }
    }

    fn received(&mut self, payload: &[u8]) {
        let now = Instant::now();
        let slots = self.slots;
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.call_id) {
                c.outbound.record(now, slots, payload);
            }
        });
    }
}

/// Streams a call's audio to its `transportUrl` until stopped, then reports to the call task.
pub(crate) async fn run(p: MediaParams) {
    let outcome = stream(&p).await;
    let _ = p.tx.send(Cmd::MediaDown {
        generation: p.generation,
        outcome,
    });
}

async fn stream(p: &MediaParams) -> MediaOutcome {
    let (audio, raw_ids, rate, unmixed) =
        (p.audio.clone(), p.raw_ids.clone(), p.sample_rate, p.unmixed);
    let threshold = p.audio.silent_threshold_dbfs;
    let (echo, lead_in) = (p.audio.echo, p.audio.first_audio_after);
    let resolved = tokio::task::spawn_blocking(move || {
        resolve_audio(&audio, &raw_ids, rate, unmixed).map(|streams| {
            streams
                .into_iter()
                .map(|(raw_id, pcm)| EncodedStream {
                    raw_id,
                    frames: encode(&pcm, rate, threshold),
                    pcm: if echo.is_some() { pcm } else { Vec::new() },
                })
                .collect::<Vec<_>>()
        })
    })
    .await;
    let streams = match resolved {
        Ok(Ok(s)) if !s.is_empty() => s,
        Ok(Ok(_)) => return MediaOutcome::AudioError("the call has no audio source".into()),
        Ok(Err(e)) => return MediaOutcome::AudioError(e.to_string()),
        Err(e) => return MediaOutcome::AudioError(e.to_string()),
    };
    let echo_line = echo.map(|e| Arc::new(Mutex::new(EchoLine::new(e, rate))));
    let (onsets, marks) = {
        let mut s = p.shared.lock();
        match s.call_mut(&p.call_id) {
            Some(c) => {
                c.outbound.sample_rate = rate;
                c.outbound.echo = echo_line.clone();
                c.info.media.sample_rate = rate;
                c.info.media.streams = streams.len();
                (
                    Arc::clone(&c.outbound.onsets),
                    Arc::clone(&c.outbound.marks),
                )
            }
            None => return MediaOutcome::AudioError("call vanished".into()),
        }
    };
    let spf = samples_per_frame(rate);
    let silence = base64::engine::general_purpose::STANDARD.encode(vec![0u8; spf * 2]);
    let mut max_slots = (p.max_duration.as_millis() / u128::from(FRAME_MS)) as u64;
    if p.pacing == Pacing::Fast {
        // As fast as possible has no "until hung up": the stream is the audio, once.
        let longest = streams.iter().map(|s| s.frames.len()).max().unwrap_or(0);
        max_slots = max_slots.min(longest as u64);
    }
    let frames = CallFrames {
        metadata: Some(inbound_audio_metadata_json(rate, &p.subscription_id)),
        quiet: vec![0; streams.len()],
        streams,
        silence,
        after: p.audio.after,
        pcm_bytes: (spf * 2) as u32,
        slot: 0,
        p: 0,
        max_slots,
        // timestamps are the wall clock of each frame's slot, after the lead-in
        start_unix_ms: chrono::Utc::now()
            .timestamp_millis()
            .saturating_add(i64::try_from(lead_in.as_millis()).unwrap_or(i64::MAX)),
        lead_in,
        stop: Arc::clone(&p.stop),
        session_start: None,
        last_onset_slot: None,
        onsets,
        marks,
        echo: echo_line,
        echo_pcm: Vec::new(),
        threshold_dbfs: threshold,
    };
    let token = match p.shared.signer().sign(WEBSOCKET_TOKEN_LIFETIME) {
        Ok(t) => t,
        Err(e) => return MediaOutcome::AudioError(e.to_string()),
    };
    let headers = acs_headers(&p.call_id, &p.correlation_id, Some(&token));
    let mut observer = MediaObserver {
        shared: Arc::clone(&p.shared),
        call_id: p.call_id.clone(),
        generation: p.generation,
        tx: p.tx.clone(),
        slots: 0,
    };
    match play_observed(&p.transport_url, &headers, frames, p.pacing, &mut observer).await {
        Ok(report) => MediaOutcome::Ended(report.end),
        Err(SimError::Connect { kind, detail, .. }) => MediaOutcome::ConnectFailed {
            failure: kind,
            detail,
        },
        Err(e) => MediaOutcome::ConnectFailed {
            failure: crate::ConnectFailure::Other,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_stats_nearest_rank() {
        let s = IntervalStats::of(&[20.0, 10.0, 30.0, 40.0]).unwrap();
        assert_eq!((s.count, s.min_ms, s.max_ms), (4, 10.0, 40.0));
        assert_eq!((s.p50_ms, s.p90_ms, s.mean_ms), (20.0, 40.0, 25.0));
        assert!(IntervalStats::of(&[]).is_none());
    }

    #[test]
    fn outbound_log_counts_audio_stops_and_junk() {
        let mut log = OutboundLog {
            sample_rate: 16_000,
            ..OutboundLog::default()
        };
        let t0 = Instant::now();
        log.epoch = Some(t0);
        log.onsets.lock().unwrap().push((t0, 0));
        let mut msg = String::new();
        acs_protocol::write_outbound_audio(&mut msg, &[1, 0, 2, 0]);
        log.record(t0 + Duration::from_millis(20), 1, msg.as_bytes());
        log.record(t0 + Duration::from_millis(40), 2, msg.as_bytes());
        // the host was busy: 150 ms of wall clock, 4 frames (80 ms) of stream
        log.record(
            t0 + Duration::from_millis(150),
            4,
            acs_protocol::STOP_AUDIO_JSON.as_bytes(),
        );
        log.record(t0 + Duration::from_millis(160), 4, b"{");
        acs_protocol::mark::write_outbound_audio_marked(&mut msg, &[5, 0], "pb-1");
        log.record(t0 + Duration::from_millis(170), 5, msg.as_bytes());
        assert_eq!(
            log.marks.lock().unwrap().pop_front().as_deref(),
            Some("pb-1")
        );
        let s = log.summary();
        assert_eq!((s.marks, s.audio_frames), (1, 3));
        log.events.pop();
        log.pcm.truncate(log.pcm.len() - 2);
        let s = log.summary();
        assert_eq!(
            (s.audio_frames, s.pcm_bytes, s.stop_audio, s.invalid),
            (2, 8, 1, 1)
        );
        assert_eq!(s.intervals.unwrap().count, 1);
        assert!((s.span_ms - 20.0).abs() < 1e-6);
        assert!((s.stop_audio_latency_ms[0].unwrap() - 150.0).abs() < 1e-6);
        assert_eq!(s.stop_audio_stream_latency_ms, vec![Some(80.0)]);
        assert_eq!(log.pcm(), vec![1, 2, 1, 2]);
        assert!((log.events()[2].at_ms - 150.0).abs() < 1e-6);
        assert_eq!(log.events()[2].stream_ms, 80.0);
        // each message carries the caller's stream position at its arrival
        let positions: Vec<u64> = log.events().iter().map(|e| e.stream_frames).collect();
        assert_eq!(positions, vec![1, 2, 4, 4]);
    }

    /// The frames of one mixed stream of `pcm` at 16 kHz, starting `lead_in` after the
    /// metadata, at most `max_slots` slots.
    fn frames_of(pcm: &[i16], lead_in: Duration, max_slots: u64) -> CallFrames {
        CallFrames {
            metadata: Some(inbound_audio_metadata_json(16_000, "sub")),
            quiet: vec![0],
            streams: vec![EncodedStream {
                raw_id: None,
                frames: encode(pcm, 16_000, -50.0),
                pcm: Vec::new(),
            }],
            silence: base64::engine::general_purpose::STANDARD.encode([0u8; 640]),
            after: AfterAudio::Silence,
            pcm_bytes: 640,
            slot: 0,
            p: 0,
            max_slots,
            start_unix_ms: 1_731_698_172_925,
            lead_in,
            stop: Arc::default(),
            session_start: None,
            last_onset_slot: None,
            onsets: Arc::default(),
            marks: Arc::default(),
            echo: None,
            echo_pcm: Vec::new(),
            threshold_dbfs: -50.0,
        }
    }

    /// (schedule, timestamp, PCM) of each `AudioData`.
    fn audio_frames(frames: Vec<PlannedFrame>) -> Vec<(Duration, i64, Vec<i16>)> {
        frames
            .iter()
            .filter_map(
                |f| match acs_protocol::parse_inbound(f.text.as_bytes()).ok()? {
                    acs_protocol::Inbound::AudioData(a) => {
                        let mut pcm = Vec::new();
                        acs_protocol::decode_base64_into(a.data.as_bytes(), &mut pcm).unwrap();
                        let ts = acs_protocol::parse_timestamp(a.timestamp.as_deref()?)?.unix_ms;
                        let pcm = pcm
                            .chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]]))
                            .collect();
                        Some((f.at, ts, pcm))
                    }
                    _ => None,
                },
            )
            .collect()
    }

    #[test]
    fn first_audio_after_holds_the_audio_back_and_shifts_its_clock() {
        // deterministic caller audio, 3.5 frames: the last one padded, then silence
        let pcm: Vec<i16> = (0..1120).map(|i| (i * 37 % 2001) as i16 - 1000).collect();
        let lead_in = Duration::from_millis(500);
        let mut it = frames_of(&pcm, lead_in, 5);
        let first = it.next().unwrap();
        assert_eq!(
            (first.kind, first.at),
            (PlannedKind::AudioMetadata, Duration::ZERO),
            "the metadata goes as the socket opens"
        );
        let onsets = Arc::clone(&it.onsets);
        let start = it.session_start.unwrap();
        let audio = audio_frames(it.collect());
        assert_eq!(audio.len(), 5);
        for (k, (at, ts, _)) in audio.iter().enumerate() {
            let k = k as u64;
            assert_eq!(*at, lead_in + Duration::from_millis(20 * k), "frame {k}");
            assert_eq!(
                *ts,
                1_731_698_172_925 + 20 * k as i64,
                "frame {k}'s timestamp"
            );
        }
        // the audio is exactly the PCM given, padded with silence
        let sent: Vec<i16> = audio.iter().flat_map(|(_, _, p)| p.clone()).collect();
        assert_eq!(&sent[..pcm.len()], &pcm[..]);
        assert!(sent[pcm.len()..].iter().all(|&x| x == 0));
        // the caller's speech onset is where its first frame went, after the lead-in
        assert_eq!(*onsets.lock().unwrap(), vec![(start + lead_in, 0)]);

        // no lead-in: the first frame follows the metadata at once
        let audio = audio_frames(frames_of(&pcm, Duration::ZERO, 2).collect());
        assert_eq!(audio[0].0, Duration::ZERO);
        assert_eq!(audio[1].0, Duration::from_millis(20));
    }

    #[test]
    fn a_mark_answer_waits_for_the_lead_in_too() {
        let mut it = frames_of(&[1000; 640], Duration::from_millis(300), 2);
        it.next(); // metadata
        it.marks.lock().unwrap().push_back("m-1".into());
        let mark = it.next().unwrap();
        assert_eq!(
            (mark.kind, mark.at),
            (PlannedKind::MarkData, Duration::from_millis(300))
        );
    }

    #[test]
    fn mixed_audio_is_summed_and_unmixed_keeps_ids() {
        let audio = CallAudio {
            sources: vec![
                super::super::AudioSource {
                    raw_id: None,
                    input: AudioInput::Pcm {
                        sample_rate: 16_000,
                        samples: Arc::new(vec![1000; 320]),
                    },
                },
                super::super::AudioSource {
                    raw_id: None,
                    input: AudioInput::Pcm {
                        sample_rate: 16_000,
                        samples: Arc::new(vec![32_000; 640]),
                    },
                },
            ],
            ..CallAudio::default()
        };
        let ids = vec!["8:acs:a".to_owned(), "8:acs:b".to_owned()];
        let mixed = resolve_audio(&audio, &ids, 16_000, false).unwrap();
        assert_eq!(mixed.len(), 1);
        assert_eq!(mixed[0].0, None);
        assert_eq!(mixed[0].1.len(), 640);
        assert_eq!((mixed[0].1[0], mixed[0].1[400]), (32_767, 32_000));
        let unmixed = resolve_audio(&audio, &ids, 24_000, true).unwrap();
        assert_eq!(unmixed[1].0.as_deref(), Some("8:acs:b"));
        assert_eq!(unmixed[0].1.len(), 480);
    }
}
