//! The values that flow from a call's pipeline to the sinks: call and stream descriptions,
//! audio frames (reference-counted slots of a per-call pool whose sample buffers keep their
//! capacity, so fanning a frame out to a bounded queue refills a slot and never touches the
//! heap), call events and end-of-stream summaries.

use std::sync::Arc;

/// Most samples one [`AudioFrame`] carries: 20 ms at 48 kHz (ACS sends 320 or 480; resampled
/// streams may need more). Longer decoded payloads are split.
pub const MAX_FRAME_SAMPLES: usize = 960;

/// A frame shared by every sink it is fanned out to (one copy of the samples, reference counted;
/// the buffers come from a per-call [`FramePool`], so steady-state fan-out does not allocate).
pub type SharedFrame = Arc<AudioFrame>;

/// Reusable shared frames for one producer. Slots are kept in the order they were handed out;
/// since every sink consumes in order, the oldest slot is the first to be free again (every sink
/// dropped its reference, so `Arc::get_mut` succeeds). `acquire` looks at that one slot only —
/// O(1), one atomic load — and otherwise grows the pool, up to `max` slots; beyond that it says
/// `None` (the sinks are far behind; the caller counts the loss).
#[derive(Debug)]
pub struct FramePool {
    slots: std::collections::VecDeque<SharedFrame>,
    max: usize,
}

impl FramePool {
    /// A pool with `initial` slots allocated now, growing up to `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        let slots = (0..initial.clamp(1, max))
            .map(|_| Arc::new(AudioFrame::empty()))
            .collect();
        Self { slots, max }
    }

    /// Slots allocated so far.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no slot exists (never, after construction).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A free slot to fill and fan out, or `None` when the oldest slot is still held and the pool
    /// is at `max`.
    #[inline]
    pub fn acquire(&mut self) -> Option<&mut SharedFrame> {
        let oldest_free = self
            .slots
            .front_mut()
            .is_some_and(|s| Arc::get_mut(s).is_some());
        if oldest_free {
            self.slots.rotate_left(1);
        } else if self.slots.len() < self.max {
            self.slots.push_back(Arc::new(AudioFrame::empty()));
        } else {
            return None;
        }
        self.slots.back_mut()
    }
}

/// Gateway-unique id of a call (one media WebSocket connection).
pub type CallId = u64;
/// Gateway-unique id of one audio stream (a participant, ACS's mixed stream, or our mix).
pub type StreamId = u64;

/// What the gateway knows about a call when its media connection opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// Gateway-unique id.
    pub id: CallId,
    /// `x-ms-call-connection-id` upgrade header, when ACS sent it.
    pub call_connection_id: Option<String>,
    /// `x-ms-call-correlation-id` upgrade header, when ACS sent it.
    pub correlation_id: Option<String>,
    /// The token from the `/ws/{token}` path, if any.
    pub token: Option<String>,
    /// Human-meaningful name used for folders and logs: the connection id, else the correlation
    /// id, else the token, else `call-<id>` (not yet sanitised).
    pub label: String,
    /// Unix ms when the connection opened.
    pub opened_unix_ms: i64,
    /// What the control plane knew about the call when it admitted the connection (empty for
    /// media that came without a call token).
    pub ids: CallIds,
}

/// The Call Automation side of a call, as the control plane knew it when the media connection
/// was admitted with the call's token: handed to the pipeline by the ingress (so `pipeline`
/// does not depend on `control`), written by sinks into their call metadata (`call.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallIds {
    /// The gateway's call id (the UUID given to the IncomingCall; the registry key).
    pub gateway_call_id: Option<String>,
    /// ACS `serverCallId`.
    pub server_call_id: Option<String>,
    /// Caller rawId.
    pub from: Option<String>,
    /// Callee rawId.
    pub to: Option<String>,
}

impl CallInfo {
    /// Builds the info, choosing the label as documented on [`CallInfo::label`].
    pub fn new(
        id: CallId,
        call_connection_id: Option<String>,
        correlation_id: Option<String>,
        token: Option<String>,
        opened_unix_ms: i64,
    ) -> Self {
        let label = [&call_connection_id, &correlation_id, &token]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("call-{id}"));
        Self {
            id,
            call_connection_id,
            correlation_id,
            token,
            label,
            opened_unix_ms,
            ids: CallIds::default(),
        }
    }

    /// The same info with the control plane's ids of the call.
    pub fn with_ids(mut self, ids: CallIds) -> Self {
        self.ids = ids;
        self
    }
}

/// What a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// ACS's mixed stream (AudioData without `participantRawID`).
    Mixed,
    /// One participant of an unmixed stream.
    Participant,
    /// The gateway's own mix of the unmixed participants, aligned on the call timeline.
    Mix,
    /// What the gateway sent to ACS (the bot's or an operator's playback), laid on the call
    /// timeline (`pipeline::outbound`); no participant, never forwarded back to a bot.
    Outbound,
}

/// An audio stream, announced to sinks before its first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The call it belongs to.
    pub call: Arc<CallInfo>,
    /// Gateway-unique id.
    pub id: StreamId,
    /// What it carries.
    pub kind: StreamKind,
    /// The participant's rawId for [`StreamKind::Participant`].
    pub participant: Option<Arc<str>>,
    /// Samples per second (16000 or 24000).
    pub sample_rate: u32,
    /// Unix ms of the stream's first sample, from the frame timestamps when ACS sent them.
    pub start_unix_ms: Option<i64>,
    /// Where the stream's first sample sits on the call timeline (samples from the call's first
    /// timestamped sample), for aligning participants.
    pub call_offset: u64,
}

/// One block of PCM (≤ [`MAX_FRAME_SAMPLES`] samples) with its place in its stream.
///
/// The samples live in a buffer of their own that keeps its capacity when the frame is refilled
/// ([`AudioFrame::set_samples`]): a pool slot costs what its call's frames need (640 bytes at
/// 16 kHz), not the 48 kHz maximum. Slots were 1.9 KiB with the samples inline, and a flood
/// that fills the sink queues (64 Ki frames at the WAV sink's defaults) pinned three times the
/// memory.
#[derive(Clone, Debug)]
pub struct AudioFrame {
    /// The stream.
    pub stream: StreamId,
    /// The call (routes the frame to the same sink worker as the call's other messages).
    pub call: CallId,
    /// Position of the first sample in the stream (samples since the stream's start, gaps
    /// included).
    pub pos: u64,
    /// Samples per second.
    pub sample_rate: u32,
    /// ACS flagged this frame `silent`.
    pub acs_silent: bool,
    /// Our detector judged it voiced.
    pub voiced: bool,
    samples: Vec<i16>,
}

impl AudioFrame {
    /// A frame holding `samples` (at most [`MAX_FRAME_SAMPLES`]; extra samples are not stored —
    /// callers split longer payloads).
    pub fn new(
        call: CallId,
        stream: StreamId,
        pos: u64,
        sample_rate: u32,
        samples: &[i16],
    ) -> Self {
        Self {
            stream,
            call,
            pos,
            sample_rate,
            acs_silent: false,
            voiced: false,
            samples: samples[..samples.len().min(MAX_FRAME_SAMPLES)].to_vec(),
        }
    }

    /// A frame with no samples (a pool slot; its buffer is allocated by its first fill).
    pub fn empty() -> Self {
        Self::new(0, 0, 0, 0, &[])
    }

    /// Readies a pool slot for a new block: its place (`call`, `stream`, `pos`, `sample_rate`),
    /// neither ACS-silent nor voiced; the caller sets the samples and any flag.
    #[inline]
    pub(crate) fn reuse(
        &mut self,
        call: CallId,
        stream: StreamId,
        pos: u64,
        sample_rate: u32,
    ) -> &mut Self {
        self.call = call;
        self.stream = stream;
        self.pos = pos;
        self.sample_rate = sample_rate;
        self.acs_silent = false;
        self.voiced = false;
        self
    }

    /// Replaces the samples (truncated to [`MAX_FRAME_SAMPLES`]). Allocates only when the
    /// frame never held this many samples before.
    #[inline]
    pub fn set_samples(&mut self, samples: &[i16]) {
        let n = samples.len().min(MAX_FRAME_SAMPLES);
        self.samples.clear();
        self.samples.extend_from_slice(&samples[..n]);
    }

    /// Replaces the samples with PCM16LE bytes (truncated to [`MAX_FRAME_SAMPLES`]; an odd
    /// last byte is ignored). Allocates only as [`AudioFrame::set_samples`] does.
    pub fn set_le_bytes(&mut self, pcm: &[u8]) {
        let n = (pcm.len() / 2).min(MAX_FRAME_SAMPLES);
        self.samples.clear();
        self.samples.extend(
            pcm[..n * 2]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }

    /// The samples.
    #[inline]
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the frame holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Something that happened in a call, delivered to every sink in order with the audio.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// A participant's (or the mixed) stream started.
    ParticipantJoined {
        /// The stream.
        stream: StreamId,
        /// rawId, `None` for ACS's mixed stream.
        participant: Option<Arc<str>>,
    },
    /// A participant's stream ended (call end, or a format change).
    ParticipantLeft {
        /// The stream.
        stream: StreamId,
        /// rawId, `None` for ACS's mixed stream.
        participant: Option<Arc<str>>,
    },
    /// Our detector found the start of speech.
    SpeechStarted {
        /// The stream.
        stream: StreamId,
        /// Sample position in the stream.
        pos: u64,
    },
    /// Our detector found the end of speech.
    SpeechEnded {
        /// The stream.
        stream: StreamId,
        /// Position of the segment's first sample.
        start: u64,
        /// Position just after its last voiced sample.
        end: u64,
    },
    /// A DTMF tone.
    Dtmf {
        /// The tone (`0`-`9`, `*`, `#`, `A`-`D`).
        tone: String,
        /// Who pressed it, when ACS said.
        participant: Option<String>,
        /// ACS's timestamp, unix ms.
        unix_ms: Option<i64>,
    },
    /// A transcription result.
    Transcription(Transcript),
    /// TranscriptionMetadata: transcription started with this locale.
    TranscriptionStarted {
        /// Locale, e.g. `en-US`.
        locale: Option<String>,
        /// Subscription id.
        subscription_id: Option<String>,
    },
    /// An audio mark (preview) was played or cancelled.
    Mark {
        /// Mark id (or sequence as text).
        id: String,
        /// `Completed` / `Cancelled`.
        status: Option<String>,
    },
    /// A playback queued through the operator API was played to its end.
    PlaybackCompleted(PlaybackReport),
    /// A playback queued through the operator API was stopped (`stop-audio`, the call ended)
    /// before all of it was played.
    PlaybackCancelled(PlaybackReport),
}

/// What [`CallEvent::PlaybackCompleted`] / [`CallEvent::PlaybackCancelled`] report (written by
/// sinks as `{"type":"playback_completed"|"playback_cancelled","id","frames","source"}`, see
/// `pipeline::event_json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaybackReport {
    /// The playback's id (also its mark id on the wire).
    pub id: String,
    /// 20 ms frames sent (the last may be shorter).
    pub frames: u64,
    /// Who said so: `"acs"` (ACS's `MarkData`) or `"gateway"` (the gateway's own queue).
    pub source: &'static str,
}

/// One transcription result.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The text.
    pub text: String,
    /// Who said it.
    pub participant: Option<String>,
    /// `true` for a final result, `false` for an intermediate one.
    pub is_final: bool,
    /// Recogniser confidence.
    pub confidence: Option<f64>,
    /// Offset in 100 ns ticks.
    pub offset_ticks: Option<u64>,
    /// Duration in 100 ns ticks.
    pub duration_ticks: Option<u64>,
}

/// Counters of one stream, sent to sinks when it closes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// Frames accepted.
    pub frames: u64,
    /// Samples written, silence fill included.
    pub samples: u64,
    /// Gaps filled.
    pub gaps: u64,
    /// Samples of silence inserted for gaps.
    pub filled_samples: u64,
    /// Late frames dropped.
    pub late: u64,
    /// Duplicate frames dropped.
    pub duplicates: u64,
    /// Timeline resynchronisations.
    pub resyncs: u64,
    /// Frames whose timestamp jumped beyond the stream's fill budget (written in arrival order).
    pub outliers: u64,
    /// Frames ACS flagged silent.
    pub acs_silent_frames: u64,
    /// Samples our detector judged silent (gaps included).
    pub silent_samples: u64,
    /// Samples our detector judged voiced.
    pub voiced_samples: u64,
}

impl StreamStats {
    /// Share of the stream that was silence (0..=1), from our detector.
    pub fn silence_ratio(&self) -> f64 {
        let total = self.silent_samples + self.voiced_samples;
        if total == 0 {
            1.0
        } else {
            self.silent_samples as f64 / total as f64
        }
    }
}

/// Why a call's media stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The peer closed the WebSocket.
    PeerClosed,
    /// The connection broke without a close frame.
    Disconnected,
    /// The gateway closed it (code and reason as sent).
    ClosedByGateway {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Gateway shutdown.
    Shutdown,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::PeerClosed => f.write_str("peer closed"),
            EndReason::Disconnected => f.write_str("disconnected"),
            EndReason::ClosedByGateway { code, reason } => {
                write!(f, "closed by gateway ({code}: {reason})")
            }
            EndReason::Shutdown => f.write_str("gateway shutdown"),
        }
    }
}

/// A message on a sink's queue. Order is preserved per queue; a call always uses one queue.
#[derive(Clone, Debug)]
pub enum SinkMsg {
    /// A stream starts.
    Open(Arc<StreamInfo>),
    /// Audio (shared with the other sinks).
    Audio(SharedFrame),
    /// `samples` of silence at the current end of `stream` (a timeline gap).
    Gap {
        /// The call.
        call: CallId,
        /// The stream.
        stream: StreamId,
        /// How many samples.
        samples: u64,
    },
    /// A call event.
    Event {
        /// The call.
        call: Arc<CallInfo>,
        /// What happened, with the call-relative unix ms when known.
        event: Arc<CallEvent>,
    },
    /// A stream ends; no more audio follows for it.
    Close {
        /// The call.
        call: CallId,
        /// The stream.
        stream: StreamId,
        /// Its counters (boxed: it is the largest payload, and boxing it keeps every queue slot
        /// small, which matters for the deep control reserve).
        stats: Box<StreamStats>,
    },
    /// The call's media connection ended; every stream of it was closed before.
    CallEnded {
        /// The call.
        call: Arc<CallInfo>,
        /// Why.
        reason: EndReason,
    },
}

impl SinkMsg {
    /// The call the message belongs to (routing key).
    pub fn call_id(&self) -> CallId {
        match self {
            SinkMsg::Open(s) => s.call.id,
            SinkMsg::Audio(f) => f.call,
            SinkMsg::Gap { call, .. } | SinkMsg::Close { call, .. } => *call,
            SinkMsg::Event { call, .. } | SinkMsg::CallEnded { call, .. } => call.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_keeps_at_most_max_samples() {
        let long = vec![7i16; MAX_FRAME_SAMPLES + 10];
        let f = AudioFrame::new(1, 2, 0, 24_000, &long);
        assert_eq!(f.len(), MAX_FRAME_SAMPLES);
        let f = AudioFrame::new(1, 2, 0, 16_000, &[1, 2, 3]);
        assert_eq!(f.samples(), &[1, 2, 3]);
        assert!(!f.is_empty());
    }

    #[test]
    fn a_refilled_frame_keeps_its_sample_buffer() {
        let mut f = AudioFrame::empty();
        f.set_samples(&[1; 480]);
        let buf = f.samples().as_ptr();
        for n in [320, 0, 480, 17, 480] {
            f.set_samples(&vec![n as i16; n]);
            assert_eq!(f.samples(), &vec![n as i16; n][..]);
            assert_eq!(f.samples().as_ptr(), buf, "refill of {n} reallocated");
        }
        f.set_le_bytes(&[1, 0, 0xff, 0xff, 7]);
        assert_eq!(
            f.samples(),
            &[1, -1],
            "little-endian pairs, odd byte ignored"
        );
        assert_eq!(f.samples().as_ptr(), buf);
        f.set_le_bytes(&vec![0; 4 * MAX_FRAME_SAMPLES]);
        assert_eq!(f.len(), MAX_FRAME_SAMPLES, "truncated to the maximum");
    }

    #[test]
    fn pool_reuses_slots_sinks_released_and_grows_only_to_max() {
        let mut pool = FramePool::new(2, 3);
        let held: Vec<SharedFrame> = (0..3)
            .map(|i| {
                let slot = pool.acquire().expect("a slot");
                Arc::get_mut(slot).unwrap().pos = i;
                slot.clone() // a sink holds it
            })
            .collect();
        assert_eq!(pool.len(), 3, "grew from 2 to max 3");
        assert!(pool.acquire().is_none(), "all held");
        drop(held);
        let slot = pool.acquire().expect("released slots are reused");
        assert!(Arc::get_mut(slot).is_some());
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn call_label_prefers_connection_id_then_correlation_then_token() {
        let c = CallInfo::new(
            5,
            Some("conn".into()),
            Some("corr".into()),
            Some("tok".into()),
            0,
        );
        assert_eq!(c.label, "conn");
        let c = CallInfo::new(5, None, Some("corr".into()), Some("tok".into()), 0);
        assert_eq!(c.label, "corr");
        let c = CallInfo::new(5, None, None, Some("tok".into()), 0);
        assert_eq!(c.label, "tok");
        let c = CallInfo::new(5, Some(String::new()), Some("corr".into()), None, 0);
        assert_eq!(c.label, "corr");
        let c = CallInfo::new(5, Some(String::new()), None, None, 0);
        assert_eq!(c.label, "call-5");
    }

    #[test]
    fn silence_ratio() {
        let s = StreamStats {
            silent_samples: 30,
            voiced_samples: 10,
            ..Default::default()
        };
        assert!((s.silence_ratio() - 0.75).abs() < 1e-9);
        assert_eq!(StreamStats::default().silence_ratio(), 1.0);
    }
}
