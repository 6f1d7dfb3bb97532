//! The forward sink (`[[sinks]] type = "forward"`): streams each call's audio and events to a
//! downstream WebSocket server (a speech recogniser, an AI voice bot), one connection per call or
//! per participant stream, and plays the audio the server sends back into the call
//! (bidirectional playback, with barge-in).
//!
//! This module owns the forward sink's configuration ([`ForwardSinkConfig`]), the routing of a
//! call's messages to its downstream connections ([`ForwardSink`], a blocking [`Sink`] on its
//! worker thread that never touches the network), and the downstream protocol below. Its parts:
//! `conn` (each connection's task on the gateway's tokio runtime: connect, keepalive,
//! reconnect, returned audio), `proto` (the messages), [`interp`] (sample conversions) and
//! `echo` (feature `testkit`: the echo bot of `examples/echo_bot.rs`, also used by the tests).
//!
//! # How messages flow
//!
//! The worker routes each message into the connection's bounded tokio channel with `try_send`
//! (`queue_frames` audio frames plus a reserve of 64 for control messages); a full channel drops
//! the frame and counts it (`acs_gateway_forward_dropped_total{class,reason="queue_full"}`), so a
//! slow target never slows ingress or other sinks. Each connection runs as a task: it connects
//! (`connect_timeout_ms` for TCP, TLS and upgrade together; messages wait in the channel
//! meanwhile), sends `start`, then everything in order; pings every `ping_interval_ms` and treats
//! a target silent for two intervals (or a send stalled that long) as lost. A lost connection is
//! retried after `min(max_ms, initial_ms · 2ⁿ) · (1 − jitter · r)` (`r` uniform in `[0, 1)`; the
//! schedule restarts after a connection that held for a second); frames and events that arrive
//! during the backoff are dropped and counted (`reason="disconnected"`), and every new connection
//! starts with `start` again. At call end (per participant: stream end) the task sends what is
//! queued, `end`, and closes with 1000; reconnects stop.
//!
//! # Downstream protocol (gateway → target)
//!
//! The URL template's `{call}` is the call label (ACS call connection id, else correlation id,
//! else the `/ws/{token}`, else `call-<n>`), `{participant}` the participant's rawId (`mixed` for
//! ACS's mixed stream, `mix` for the gateway's mix; only with `per = "participant"`); both are
//! percent-encoded (everything but `A-Za-z0-9-._~`; an empty or all-dots value gets a leading
//! `_`), so no id can change the path. The upgrade carries `x-ms-call-connection-id` and
//! `x-ms-call-correlation-id` when known, as ACS's does.
//!
//! The connection opens when the call is known — at the call's first stream `Open` (per call) or
//! at the stream's `Open` (per participant) — not at the first frame. Messages:
//!
//! 1. `start` (text, always first, on every connection):
//!    ```json
//!    {"type":"start","protocol":1,
//!     "call":{"id":7,"label":"<call label>","callConnectionId":"…"|null,"correlationId":"…"|null},
//!     "per":"call"|"participant",
//!     "participant":"8:acs:…"|null,
//!     "stream":{"id":12,"kind":"participant"|"mixed"|"mix","participant":"8:acs:…"|null,
//!               "sampleRate":16000,"startTime":"2024-11-15T19:16:12.925Z"|null}|null,
//!     "streams":[ …every forwarded stream open now, same objects; "stream" is the first… ],
//!     "format":{"encoding":"pcm_s16le"|"pcm_f32le","sampleRate":16000,"channels":1},
//!     "mode":"pcm"|"acs","bidirectional":true|false,
//!     "connection":1}
//!    ```
//!    `connection` counts this downstream connection's connects (2 and up: a reconnect).
//!    `bidirectional` says whether audio sent back will be played into the call.
//! 2. In `acs` mode, an ACS `AudioMetadata` message (`{"kind":"AudioMetadata",…}`) right after
//!    `start`, as ACS itself opens a media stream.
//! 3. Audio, 20 ms blocks in order: `pcm` mode — binary messages of raw samples in `format`
//!    (mono, little-endian; no header: per call only one stream's audio is carried, see
//!    `streams`); `acs` mode — ACS `AudioData` text messages exactly as ACS sends them
//!    (`{"kind":"AudioData","audioData":{"timestamp","participantRawID","data","silent"}}`).
//! 4. Text events, interleaved in call order, each `{"type":…}`: `stream_open` (`stream`: the
//!    object above), `stream_close` (`stream` id, `frames`, `samples`, `gapsFilled`,
//!    `lateFrames`, `duplicateFrames`), `format` (`encoding`, `sampleRate`, `channels`: the
//!    audio that follows changed rate), `gap` (`stream`, `samples` of silence not sent),
//!    the call events in their one wire shape
//!    (`event_json`, shared with the NATS sink):
//!    `participant_joined` / `participant_left` (`stream`, `participantRawId`),
//!    `speech_started` (`stream`, `participantRawId`, `pos`), `speech_ended` (`stream`,
//!    `participantRawId`, `start`, `end`), `dtmf` (`tone`, `participantRawId`, `time`; in `acs`
//!    mode an ACS `DtmfData` instead), `transcription` (`text`, `participantRawId`, `final`,
//!    `confidence`, `offsetTicks`, `durationTicks`), `transcription_started` (`locale`,
//!    `subscriptionId`), `mark` (`id`, `status`); and `barge_in` (`stream`, `participant`,
//!    `pos`, `generation`) — sent ahead of queued audio. (Changed: call events named the participant
//!    `participant` before; they now use ACS's `participantRawId` like the NATS sink.)
//!    Positions are in samples of the stream. Per participant, stream events go to that stream's
//!    connection and call-wide events (DTMF, transcription, marks) to every connection of the call.
//! 5. `{"type":"end","reason":"peer closed"|"disconnected"|"gateway shutdown"|"stream closed"|…}`,
//!    then a close frame 1000.
//!
//! # Upstream protocol (target → gateway)
//!
//! * Binary messages: samples to play, in the connection's encoding (`format.encoding`), mono,
//!   at `format.sampleRate` — the rate of the audio the gateway forwards (after a `format`
//!   message from the gateway, the new rate) — unless the target declared its own with
//!   `{"type":"format","sampleRate":24000,"encoding":"pcm_s16le"}` (8000–48000 Hz). Audio at
//!   another rate than the call's is converted (windowed-sinc, about 80 dB SNR for speech
//!   frequencies, 1.5 ms look-ahead that is let out when the target pauses for 40 ms; see
//!   [`interp`]). Message boundaries do not matter (a split sample is completed by the next
//!   message).
//! * ACS outbound `AudioData` text (`{"kind":"audioData","audioData":{"data":"<base64>"}}`, every
//!   casing ACS SDKs use): PCM16 at the same rate rule; ACS `StopAudio`, `{"type":"stop"}` or
//!   `{"type":"clear"}`: stop — the call's playback queue is flushed and ACS gets `StopAudio`
//!   (only when something was queued or playing). A stop also acknowledges the latest
//!   `barge_in` (see below).
//! * Other messages are ignored; unreadable ones are counted.
//!
//! Returned audio goes to the call's [`PlaybackTarget`] (the ingress cuts it into 20 ms frames
//! and paces them to ACS), only when the call's media connection is bidirectional (answered with
//! `enableBidirectional`); otherwise it is counted
//! (`acs_gateway_forward_playback_refused_total{reason="not_bidirectional"}`) and dropped.
//!
//! **Barge-in** (`barge_in = true`, default; `barge`): when our silence detector hears a caller
//! start speaking (`speech_started` on any stream of a bidirectional call) while something is
//! queued or playing, and the call's own playback echoed back does not explain what the caller's
//! stream holds (a delay/level search against the audio played in the last 400 ms; a caller
//! talking over that echo barges in on the first frame the echo no longer explains), the sink
//! stops playback at once from its worker thread: a new **playback generation** starts, the
//! ingress flushes the queue and sends ACS `StopAudio`, and `barge_in` (with `generation`) goes
//! to every connection of the call, ahead of queued audio. Audio a target sends after that is
//! refused (counted `acs_gateway_forward_playback_refused_total{reason="stale"}`) until the
//! target acknowledges with `{"type":"stop"}`, `{"type":"clear"}` or ACS `StopAudio`: audio it
//! sent before it learned of the barge-in (one connection, in order) is never played after the
//! stop. Speech with nothing to stop sends neither `StopAudio` nor `barge_in`
//! (`forward_barge_in_suppressed_total{reason="idle"}`; the playback's echo: `reason="echo"`).
//!
//! # Streams
//!
//! `streams` picks what audio is forwarded: `"participants"` (one stream per unmixed
//! participant), `"mixed"` (ACS's mixed stream), `"mix"` (the gateway's mix of an unmixed call).
//! Default per call: `["mixed", "mix"]` — the call as one stream whichever way ACS sends it; per
//! participant: `["participants", "mixed"]` — every stream ACS sends, one connection each.
//! `pcm` mode per call carries one stream: `participants` needs `per = "participant"` or
//! `mode = "acs"` (where each `AudioData` names its participant, as ACS's unmixed audio does).
//! Events are forwarded whatever `streams` says.
//!
//! # Settings
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `url` | `ws://127.0.0.1:9100/calls/{call}` | target URL template (ws:// or wss://) |
//! | `per` | `call` | `call` or `participant`: one connection per call or per stream |
//! | `mode` | `pcm` | `pcm` (binary audio) or `acs` (ACS JSON `AudioData`) |
//! | `encoding` | `pcm_s16le` | `pcm_s16le` or `pcm_f32le` (`pcm` mode only) |
//! | `streams` | by `per` | see above |
//! | `queue_frames` | `250` | audio frames buffered per connection (5 s); more are dropped |
//! | `ping_interval_ms` | `5000` | keepalive ping; `0` turns it off |
//! | `connect_timeout_ms` | `3000` | TCP + TLS + upgrade |
//! | `reconnect.initial_ms` | `200` | first retry delay |
//! | `reconnect.max_ms` | `5000` | longest retry delay |
//! | `reconnect.jitter` | `0.2` | share of a delay taken off at random (0–1) |
//! | `barge_in` | `true` | stop playback and tell the target when a caller starts speaking over it (not for its echo) |
//!
//! wss:// uses rustls (ring) with the webpki root certificates.

pub(crate) mod barge;
mod config;
pub(crate) mod conn;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod echo;
pub mod interp;
pub(crate) mod proto;

pub use config::{Encoding, ForwardMode, ForwardSinkConfig, Per, ReconnectConfig, StreamSelect};

use super::SinkContext;
use crate::metrics::Metrics;
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamKind,
    StreamStats,
};
use crate::pipeline::playback::PlaybackTarget;
use crate::pipeline::sink::{QueueConfig, Sink, SinkError};
use bytes::Bytes;
use conn::{ConnSpec, Down};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Room for control messages beyond `queue_frames` in each connection's channel.
pub const CONTROL_RESERVE: usize = 64;
/// Events kept for a call that has no connection yet (they follow `start` when it opens).
pub const MAX_PENDING: usize = 64;
/// Frames the worker queue in front of the sink holds (it only routes, so it rarely fills).
pub const WORKER_QUEUE_FRAMES: usize = 4096;
/// How long [`Sink::shutdown`] waits for the connections to say `end` and close.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
struct Selection {
    participants: bool,
    mixed: bool,
    mix: bool,
}

impl Selection {
    fn from(list: &[StreamSelect]) -> Self {
        Self {
            participants: list.contains(&StreamSelect::Participants),
            mixed: list.contains(&StreamSelect::Mixed),
            mix: list.contains(&StreamSelect::Mix),
        }
    }

    fn wants(self, kind: StreamKind) -> bool {
        match kind {
            StreamKind::Participant => self.participants,
            StreamKind::Mixed => self.mixed,
            StreamKind::Mix => self.mix,
            // the call's own playback is never sent back to the bot
            StreamKind::Outbound => false,
        }
    }
}

/// The sending side of one connection task.
struct Conn {
    /// The stream it is for (`per = "participant"`).
    stream: Option<StreamId>,
    tx: mpsc::Sender<Down>,
    urgent: mpsc::Sender<String>,
}

/// What the sink knows about a call.
struct CallRoute {
    conns: Vec<Conn>,
    /// Messages for the call before its first connection existed.
    pending: Vec<Down>,
    /// `pcm` per call: the stream whose audio the connection carries.
    bound: Option<StreamId>,
}

struct StreamRoute {
    info: Arc<StreamInfo>,
    forwarded: bool,
    /// Barge-in state (with `barge_in` on and a playback target).
    guard: Option<barge::Guard>,
}

/// Starts connection tasks.
struct Spawner {
    cfg: Arc<ForwardSinkConfig>,
    rt: Handle,
    playback: Option<Arc<dyn PlaybackTarget>>,
    metrics: Arc<Metrics>,
}

impl Spawner {
    /// A connection for `call`; `stream` names it (per participant) and fills `{participant}`;
    /// `initial` is the forwarded stream open when it starts (listed in its first `start`).
    fn spawn(
        &self,
        call: &Arc<CallInfo>,
        stream: Option<&Arc<StreamInfo>>,
        initial: Option<Arc<StreamInfo>>,
        rate: u32,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Conn {
        let (tx, rx) = mpsc::channel(self.cfg.queue_frames + CONTROL_RESERVE);
        let (utx, urx) = mpsc::channel(CONTROL_RESERVE);
        let spec = ConnSpec {
            cfg: self.cfg.clone(),
            url: proto::render_url(self.cfg.url.trim(), call, stream.map(|s| &**s)),
            call: call.clone(),
            participant: stream.and_then(|s| s.participant.clone()),
            streams: initial.into_iter().collect(),
            rate,
            playback: self.playback.clone(),
            metrics: self.metrics.clone(),
        };
        tasks.push(self.rt.spawn(conn::run(spec, rx, urx)));
        Conn {
            stream: stream.map(|s| s.id),
            tx,
            urgent: utx,
        }
    }
}

/// Forwards calls to WebSocket targets; see the module docs.
pub struct ForwardSink {
    want: Selection,
    spawner: Spawner,
    calls: HashMap<CallId, CallRoute>,
    streams: HashMap<StreamId, StreamRoute>,
    tasks: Vec<JoinHandle<()>>,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for ForwardSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardSink")
            .field("url", &self.spawner.cfg.url)
            .field("calls", &self.calls.len())
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl ForwardSink {
    /// A sink whose connection tasks run on `ctx.runtime` and play returned audio through
    /// `ctx.playback` (without one, returned audio is counted and dropped).
    pub fn new(cfg: ForwardSinkConfig, ctx: &SinkContext) -> Self {
        let want = Selection::from(&cfg.selected());
        Self {
            want,
            spawner: Spawner {
                cfg: Arc::new(cfg),
                rt: ctx.runtime.clone(),
                playback: ctx.playback.clone(),
                metrics: ctx.metrics.clone(),
            },
            calls: HashMap::new(),
            streams: HashMap::new(),
            tasks: Vec::new(),
            bytes: Vec::with_capacity(4096),
        }
    }

    fn cfg(&self) -> &ForwardSinkConfig {
        &self.spawner.cfg
    }

    fn send_audio(&self, conn: &Conn, down: Down) {
        let f = &self.spawner.metrics.forward;
        if conn.tx.capacity() <= CONTROL_RESERVE {
            f.dropped_audio_queue_full.inc();
            return;
        }
        match conn.tx.try_send(down) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => f.dropped_audio_queue_full.inc(),
            Err(mpsc::error::TrySendError::Closed(_)) => f.dropped_audio_disconnected.inc(),
        }
    }

    fn send_control(metrics: &Metrics, conn: &Conn, down: Down) {
        match conn.tx.try_send(down) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics.forward.dropped_control_queue_full.inc()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics.forward.dropped_control_disconnected.inc()
            }
        }
    }

    /// Sends a control message to `call`'s connections (`only`: just that stream's, per
    /// participant), or keeps it for the first connection when there is none yet.
    fn send_call_control(
        &mut self,
        call: &Arc<CallInfo>,
        only: Option<StreamId>,
        make: impl Fn() -> Down,
    ) {
        let metrics = &self.spawner.metrics;
        let route = self.calls.entry(call.id).or_insert_with(CallRoute::new);
        if route.conns.is_empty() {
            if only.is_none() || self.spawner.cfg.per == Per::Call {
                if route.pending.len() < MAX_PENDING {
                    route.pending.push(make());
                } else {
                    metrics.forward.dropped_control_queue_full.inc();
                }
            }
            return;
        }
        for c in &route.conns {
            if only.is_none() || c.stream.is_none() || c.stream == only {
                Self::send_control(metrics, c, make());
            }
        }
    }

    fn frame_conn(&self, stream: StreamId) -> Result<Option<&Conn>, SinkError> {
        let r = self
            .streams
            .get(&stream)
            .ok_or(SinkError::UnknownStream(stream))?;
        if !r.forwarded {
            return Ok(None);
        }
        let Some(call) = self.calls.get(&r.info.call.id) else {
            return Ok(None);
        };
        Ok(match self.spawner.cfg.per {
            Per::Call => call.conns.first(),
            Per::Participant => call.conns.iter().find(|c| c.stream == Some(stream)),
        })
    }

    fn forward_payload(
        &mut self,
        stream: StreamId,
        pos: u64,
        silent: bool,
    ) -> Result<(), SinkError> {
        let payload = Bytes::copy_from_slice(&self.bytes);
        if let Some(conn) = self.frame_conn(stream)? {
            self.send_audio(
                conn,
                Down::Audio {
                    stream,
                    pos,
                    silent,
                    payload,
                },
            );
        }
        Ok(())
    }
}

impl CallRoute {
    fn new() -> Self {
        Self {
            conns: Vec::new(),
            pending: Vec::new(),
            bound: None,
        }
    }
}

impl Sink for ForwardSink {
    fn kind(&self) -> &'static str {
        "forward"
    }

    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        if stream.kind == StreamKind::Outbound {
            // what the call plays (this sink's target's audio among it): known, so its frames
            // are no errors, but never forwarded, never a barge-in source, never a connection
            self.streams.insert(
                stream.id,
                StreamRoute {
                    info: stream.clone(),
                    forwarded: false,
                    guard: None,
                },
            );
            return Ok(());
        }
        let mut forwarded = self.want.wants(stream.kind);
        let per = self.spawner.cfg.per;
        let pcm = self.spawner.cfg.mode == ForwardMode::Pcm;
        let metrics = &self.spawner.metrics;
        let route = self
            .calls
            .entry(stream.call.id)
            .or_insert_with(CallRoute::new);
        if forwarded && per == Per::Call && pcm {
            if let Some(bound) = route.bound {
                tracing::warn!(call = %stream.call.label, bound, stream = stream.id,
                    "pcm mode carries one stream per call; this stream is not forwarded");
                forwarded = false;
            } else {
                route.bound = Some(stream.id);
            }
        }
        let fresh = route.conns.is_empty();
        let initial = forwarded.then(|| stream.clone());
        let spawned = match per {
            Per::Call if fresh => Some(self.spawner.spawn(
                &stream.call,
                None,
                initial,
                stream.sample_rate,
                &mut self.tasks,
            )),
            Per::Call => {
                if let (Some(s), Some(c)) = (initial, route.conns.first()) {
                    Self::send_control(metrics, c, Down::StreamOpen(s));
                }
                None
            }
            Per::Participant if forwarded => Some(self.spawner.spawn(
                &stream.call,
                Some(stream),
                initial,
                stream.sample_rate,
                &mut self.tasks,
            )),
            Per::Participant => None,
        };
        if let Some(conn) = spawned {
            if fresh {
                for down in route.pending.drain(..) {
                    Self::send_control(metrics, &conn, down);
                }
            }
            route.conns.push(conn);
        }
        let guard = (self.spawner.cfg.barge_in && self.spawner.playback.is_some())
            .then(|| barge::Guard::new(stream.sample_rate, stream.call_offset));
        self.streams.insert(
            stream.id,
            StreamRoute {
                info: stream.clone(),
                forwarded,
                guard,
            },
        );
        Ok(())
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let suspect = match self.streams.get_mut(&frame.stream) {
            // the call's own playback: nothing to encode or send
            Some(r) if r.info.kind == StreamKind::Outbound => return Ok(()),
            r => r
                .and_then(|r| r.guard.as_mut())
                .is_some_and(|g| g.push(frame.samples(), frame.pos)),
        };
        if suspect {
            self.judge_speech(frame.stream, frame.pos, false);
        }
        self.bytes.clear();
        interp::encode_i16(self.cfg().encoding, frame.samples(), &mut self.bytes);
        self.forward_payload(frame.stream, frame.pos, frame.acs_silent)
    }

    fn write_f32(
        &mut self,
        stream: StreamId,
        _call: CallId,
        pos: u64,
        _rate: u32,
        samples: &[f32],
    ) -> Result<(), SinkError> {
        self.bytes.clear();
        interp::encode_f32(self.cfg().encoding, samples, &mut self.bytes);
        self.forward_payload(stream, pos, false)
    }

    fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        if let Some(conn) = self.frame_conn(stream)? {
            Self::send_control(
                &self.spawner.metrics,
                conn,
                Down::Text(proto::gap_message(stream, samples)),
            );
        }
        Ok(())
    }

    fn event(&mut self, call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
        let text = proto::event_message(self.cfg().mode, event, |s| {
            self.streams
                .get(&s)
                .and_then(|r| r.info.participant.clone())
        });
        let only = match event {
            CallEvent::ParticipantJoined { stream, .. }
            | CallEvent::ParticipantLeft { stream, .. }
            | CallEvent::SpeechStarted { stream, .. }
            | CallEvent::SpeechEnded { stream, .. } => Some(*stream),
            _ => None,
        };
        match event {
            CallEvent::SpeechStarted { stream, pos } => self.judge_speech(*stream, *pos, true),
            CallEvent::SpeechEnded { stream, .. } => {
                if let Some(g) = self.streams.get_mut(stream).and_then(|r| r.guard.as_mut()) {
                    g.speech_ended();
                }
            }
            _ => {}
        }
        self.send_call_control(call, only, || Down::Text(text.clone()));
        Ok(())
    }

    fn close(
        &mut self,
        call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError> {
        let r = self
            .streams
            .remove(&stream)
            .ok_or(SinkError::UnknownStream(stream))?;
        if !r.forwarded {
            return Ok(());
        }
        let metrics = self.spawner.metrics.clone();
        let Some(route) = self.calls.get_mut(&call) else {
            return Ok(());
        };
        let close = Down::StreamClose {
            stream,
            stats: *stats,
        };
        match self.spawner.cfg.per {
            Per::Call => {
                if route.bound == Some(stream) {
                    route.bound = None;
                }
                if let Some(c) = route.conns.first() {
                    Self::send_control(&metrics, c, close);
                }
            }
            Per::Participant => {
                if let Some(i) = route.conns.iter().position(|c| c.stream == Some(stream)) {
                    let c = route.conns.remove(i);
                    Self::send_control(&metrics, &c, close);
                    Self::send_control(&metrics, &c, Down::End("stream closed".into()));
                }
            }
        }
        Ok(())
    }

    fn end_call(&mut self, call: &Arc<CallInfo>, reason: &EndReason) -> Result<(), SinkError> {
        if let Some(route) = self.calls.remove(&call.id) {
            for c in &route.conns {
                Self::send_control(&self.spawner.metrics, c, Down::End(reason.to_string()));
            }
        }
        self.streams.retain(|_, r| r.info.call.id != call.id);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.tasks.retain(|t| !t.is_finished());
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        for (_, route) in self.calls.drain() {
            for c in &route.conns {
                Self::send_control(
                    &self.spawner.metrics,
                    c,
                    Down::End(EndReason::Shutdown.to_string()),
                );
            }
        }
        self.streams.clear();
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while self.tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        Ok(())
    }
}

impl ForwardSink {
    /// Barge-in ([`barge`]): a caller's speech started (`start`), or a frame of speech the
    /// playback's echo explained so far arrived; stop playback and tell the call's targets when
    /// something plays and the caller is talking.
    fn judge_speech(&mut self, stream: StreamId, pos: u64, start: bool) {
        let Some(pb) = &self.spawner.playback else {
            return;
        };
        let Some(route) = self.streams.get_mut(&stream) else {
            return;
        };
        let call = route.info.call.id;
        let Some(guard) = route.guard.as_mut() else {
            return;
        };
        if !pb.is_bidirectional(call) {
            return;
        }
        let metrics = &self.spawner.metrics;
        if barge::decide(&**pb, call, guard, start, metrics) != barge::Decision::BargeIn {
            return;
        }
        let participant = route.info.participant.clone();
        let Some(text) = barge::barge_in(&**pb, call, stream, participant.as_deref(), pos, metrics)
        else {
            return;
        };
        if let Some(route) = self.calls.get(&call) {
            for c in &route.conns {
                if c.urgent.try_send(text.clone()).is_err() {
                    metrics.forward.dropped_control_queue_full.inc();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::contract;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A URL nothing listens on: a port taken from the OS and released.
    fn dead_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("ws://127.0.0.1:{port}/calls/{{call}}")
    }

    #[test]
    fn passes_the_contract_with_no_reachable_target() {
        let rt = runtime();
        let metrics = Metrics::new();
        let ctx = SinkContext::new(metrics.clone(), rt.handle().clone());
        for (per, mode) in [
            (Per::Call, ForwardMode::Pcm),
            (Per::Participant, ForwardMode::Pcm),
            (Per::Participant, ForwardMode::Acs),
        ] {
            let mut cfg = ForwardSinkConfig::new(dead_url());
            cfg.per = per;
            cfg.mode = mode;
            cfg.reconnect.initial_ms = 10;
            cfg.reconnect.max_ms = 20;
            assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
            let mut sink = ForwardSink::new(cfg, &ctx);
            let started = Instant::now();
            contract::run(&mut sink);
            assert!(
                started.elapsed() < SHUTDOWN_WAIT + Duration::from_secs(1),
                "shutdown did not wait on the network"
            );
            assert!(sink.tasks.is_empty());
        }
        let f = &metrics.forward;
        assert_eq!(f.connects.get(), 0);
        assert!(f.connect_failures.get() >= 1, "attempts were made");
        assert_eq!(f.frames_sent.get(), 0);
        assert_eq!(f.connections_active.get(), 0);
    }

    #[test]
    fn validation() {
        assert!(ForwardSinkConfig::default().validate().is_empty());
        let bad = ForwardSinkConfig {
            url: "http://x/{call}".into(),
            queue_frames: 1,
            ping_interval_ms: 5,
            connect_timeout_ms: 1,
            reconnect: ReconnectConfig {
                initial_ms: 1,
                max_ms: 0,
                jitter: 2.0,
            },
            ..Default::default()
        };
        assert_eq!(bad.validate().len(), 7, "{:?}", bad.validate());
        let p = ForwardSinkConfig::new("ws://h/{call}/{participant}/{who}").validate();
        assert_eq!(p.len(), 2, "{p:?}");
        let mut c = ForwardSinkConfig::new("ws://h/{call}/{participant}");
        c.per = Per::Participant;
        assert!(c.validate().is_empty());
        c.mode = ForwardMode::Acs;
        c.encoding = Encoding::PcmF32le;
        assert_eq!(c.validate().len(), 1);
        let mut c = ForwardSinkConfig {
            streams: Some(vec![StreamSelect::Participants]),
            ..Default::default()
        };
        assert_eq!(c.validate().len(), 1, "pcm per call carries one stream");
        c.mode = ForwardMode::Acs;
        assert!(c.validate().is_empty());
        c.ping_interval_ms = 0;
        assert!(c.validate().is_empty(), "0 turns pings off");
    }

    #[test]
    fn default_streams_follow_per() {
        let c = ForwardSinkConfig::default();
        assert_eq!(c.selected(), [StreamSelect::Mixed, StreamSelect::Mix]);
        let c = ForwardSinkConfig {
            per: Per::Participant,
            ..Default::default()
        };
        assert_eq!(
            c.selected(),
            [StreamSelect::Participants, StreamSelect::Mixed]
        );
    }

    #[test]
    fn toml_round_trip() {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct Wrap {
            sinks: Vec<crate::sinks::SinkConfig>,
        }
        let text = r#"
            [[sinks]]
            type = "forward"
            url = "wss://bot.example/{call}/{participant}"
            per = "participant"
            mode = "acs"
            streams = ["participants"]
            queue_frames = 100
            reconnect = { initial_ms = 100, max_ms = 2000, jitter = 0.5 }
            barge_in = false
        "#;
        let w: Wrap = toml::from_str(text).unwrap();
        let crate::sinks::SinkConfig::Forward(c) = &w.sinks[0] else {
            panic!("{w:?}")
        };
        assert_eq!(c.per, Per::Participant);
        assert_eq!(c.mode, ForwardMode::Acs);
        assert_eq!(c.reconnect.max_ms, 2000);
        assert!(!c.barge_in);
        assert!(
            w.sinks[0].validate().is_empty(),
            "{:?}",
            w.sinks[0].validate()
        );
        let printed = toml::to_string(&w).unwrap();
        assert_eq!(toml::from_str::<Wrap>(&printed).unwrap(), w, "{printed}");
        let unknown = toml::from_str::<Wrap>("[[sinks]]\ntype = \"forward\"\nurll = \"ws://x\"");
        assert!(unknown.is_err());
    }
}
