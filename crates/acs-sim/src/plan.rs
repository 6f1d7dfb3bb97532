//! PURE: turns decoded audio and options into the exact sequence of WebSocket text messages ACS
//! would send ([`plan_frames`]), including deliberate faults.
//!
//! # Schedule
//!
//! Messages are placed on 20 ms *slots*: slot `s` is sent at `s · 20 ms` after the start. Audio
//! frame `n` (1-based, per participant) belongs to slot `n − 1` and carries the timestamp
//! `start + (n − 1) · 20 ms`, whatever happens to it. Within a slot the order is:
//! `AudioMetadata` (slot 0 only), `TranscriptionMetadata` (slot 0 only), then each participant in
//! order with its audio (normal frame, its duplicate, a frame delayed by reordering, that
//! frame's duplicate, late copies), then `DtmfData`, then the final `TranscriptionData` (last
//! slot), then a planned disconnect.
//!
//! # Faults (all frame numbers are 1-based and per participant)
//!
//! | option | effect |
//! |---|---|
//! | `gap_every: N` | frames `N, 2N, …` are not sent; later timestamps still advance |
//! | `duplicate_every: N` | frames `N, 2N, …` are sent twice in a row |
//! | `reorder_every: N` (≥ 2) | frame `N` is held back and sent right after frame `N + 1` (in slot `N`), so the two arrive swapped; no swap if `N + 1` is a gap or there is no `N + 1` |
//! | `late_every: N` | frames `N, 2N, …` are sent normally **and** again, unchanged, after 5 more frames (slot `N + 4`) |
//! | `malformed_at: K` | participant 0's frame `K` is replaced by the truncated JSON [`MALFORMED_FRAME`] |
//! | `disconnect_after: K` | nothing from slot `K` on is sent; a [`PlannedKind::Disconnect`] follows slot `K − 1` (right after the metadata when `K` is 0) |
//!
//! A gapped frame is neither duplicated, reordered nor sent late; the malformed frame replaces
//! all of that for its frame.

use std::time::Duration;

use base64::Engine as _;

use super::audio::{frame_dbfs, pcm_le_bytes, samples_per_frame, ACS_RATES, FRAME_MS};
use super::error::SimError;
use super::ids::SimRng;
use acs_protocol::{
    format_timestamp, inbound_audio_data_json, inbound_audio_metadata_json, DtmfData, Inbound,
    ResultStatus, TranscriptionData, TranscriptionMetadata, Word,
};

/// What is sent instead of the frame chosen by [`Faults::malformed_at`]: an `AudioData` message
/// cut off after its payload key (not valid JSON).
pub const MALFORMED_FRAME: &str = r#"{"kind":"AudioData","audioData":"#;

/// Most participants ACS streams unmixed ("the four most dominant speakers").
pub const MAX_PARTICIPANTS: usize = 4;

/// The late copy of a frame is sent this many frames after the original.
pub const LATE_BY_FRAMES: u64 = 5;

/// One audio source: a participant in unmixed mode, or the single mixed stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// `participantRawID` to send; `None` for the mixed stream (the key is omitted).
    pub raw_id: Option<String>,
    /// Mono 16-bit PCM at the plan's sample rate.
    pub pcm: Vec<i16>,
}

/// Fault injection; every field `None` means a clean stream. See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Skip every Nth frame.
    pub gap_every: Option<u64>,
    /// Send every Nth frame twice.
    pub duplicate_every: Option<u64>,
    /// Swap every Nth frame with the next one (N ≥ 2).
    pub reorder_every: Option<u64>,
    /// Send every Nth frame again after 5 more frames, with its original timestamp.
    pub late_every: Option<u64>,
    /// Replace participant 0's frame K with [`MALFORMED_FRAME`].
    pub malformed_at: Option<u64>,
    /// Drop the TCP connection (no close frame) after K frames.
    pub disconnect_after: Option<u64>,
}

/// Everything needed to plan one simulated media stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    /// 16000 or 24000.
    pub sample_rate: u32,
    /// 1 to [`MAX_PARTICIPANTS`] sources; more than one must all have raw ids (unmixed).
    pub participants: Vec<Participant>,
    /// `AudioMetadata.subscriptionId` (and `TranscriptionMetadata.subscriptionId`).
    pub subscription_id: String,
    /// Timestamp of frame 1, Unix milliseconds.
    pub start_unix_ms: i64,
    /// How many times each participant's audio is played back to back (≥ 1).
    pub loops: u32,
    /// Frames whose RMS level is below this (dBFS) are sent with `"silent":true`;
    /// `f64::NEG_INFINITY` never flags a frame.
    pub silent_threshold_dbfs: f64,
    /// DTMF tones to send, spread evenly over the stream (e.g. `"12#"`).
    pub dtmf: String,
    /// When set, a `TranscriptionMetadata` at the start and a final `TranscriptionData` with
    /// this text at the end.
    pub transcript: Option<String>,
    /// `callConnectionId` for `TranscriptionMetadata`.
    pub call_connection_id: Option<String>,
    /// `correlationId` for `TranscriptionMetadata`.
    pub correlation_id: Option<String>,
    /// Fault injection.
    pub faults: Faults,
}

impl StreamPlan {
    /// A clean plan with defaults: random subscription id, frame 1 stamped "now", one loop,
    /// silence threshold −50 dBFS, no DTMF, no transcript, no faults.
    pub fn new(sample_rate: u32, participants: Vec<Participant>) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        StreamPlan {
            sample_rate,
            participants,
            subscription_id: SimRng::from_entropy().uuid_like(),
            start_unix_ms: now_ms,
            loops: 1,
            silent_threshold_dbfs: -50.0,
            dtmf: String::new(),
            transcript: None,
            call_connection_id: None,
            correlation_id: None,
            faults: Faults::default(),
        }
    }

    /// A mixed stream (no `participantRawID`) from one source.
    pub fn mixed(sample_rate: u32, pcm: Vec<i16>) -> Self {
        Self::new(sample_rate, vec![Participant { raw_id: None, pcm }])
    }

    /// Checks rates, participant counts and ids, and fault parameters.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::InvalidOption(m));
        if !ACS_RATES.contains(&self.sample_rate) {
            return bad(format!(
                "sample rate {} (ACS streams 16000 or 24000)",
                self.sample_rate
            ));
        }
        let n = self.participants.len();
        if n == 0 || n > MAX_PARTICIPANTS {
            return bad(format!(
                "{n} participants (1 to {MAX_PARTICIPANTS} supported)"
            ));
        }
        if n > 1 {
            let mut ids = Vec::new();
            for p in &self.participants {
                match p.raw_id.as_deref() {
                    None | Some("") => {
                        return bad("every unmixed participant needs a raw id".into())
                    }
                    Some(id) if ids.contains(&id) => {
                        return bad(format!("participant id {id:?} given twice"))
                    }
                    Some(id) => ids.push(id),
                }
            }
        }
        if self.loops == 0 {
            return bad("loop count 0".into());
        }
        if self.silent_threshold_dbfs.is_nan() {
            return bad("silence threshold NaN".into());
        }
        let f = &self.faults;
        for (name, v) in [
            ("gap-every", f.gap_every),
            ("duplicate-every", f.duplicate_every),
            ("late-every", f.late_every),
        ] {
            if v == Some(0) {
                return bad(format!("--{name} 0 (must be ≥ 1)"));
            }
        }
        if matches!(f.reorder_every, Some(0 | 1)) {
            return bad("--reorder-every must be ≥ 2".into());
        }
        if f.malformed_at == Some(0) {
            return bad("--malformed-at counts from 1".into());
        }
        Ok(())
    }

    /// Frames per participant (including loops): `ceil(samples / frame) · loops`.
    pub fn frames_of(&self, participant: usize) -> u64 {
        let spf = samples_per_frame(self.sample_rate) as u64;
        self.participants.get(participant).map_or(0, |p| {
            (p.pcm.len() as u64).div_ceil(spf.max(1)) * u64::from(self.loops)
        })
    }

    /// Slots in the stream: the longest participant's frame count.
    pub fn slots(&self) -> u64 {
        (0..self.participants.len())
            .map(|p| self.frames_of(p))
            .max()
            .unwrap_or(0)
    }
}

/// How an audio frame is being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In its own slot.
    Normal,
    /// A second copy right after the first.
    Duplicate,
    /// Held back one slot and sent after the next frame.
    Reordered,
    /// A copy sent [`LATE_BY_FRAMES`] frames later.
    Late,
}

/// What a [`PlannedFrame`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedKind {
    /// `AudioMetadata`.
    AudioMetadata,
    /// `AudioData`.
    Audio {
        /// Index into [`StreamPlan::participants`].
        participant: usize,
        /// 1-based frame number within that participant's stream.
        frame: u64,
        /// How it is delivered.
        delivery: Delivery,
        /// PCM bytes carried (640 at 16 kHz, 960 at 24 kHz).
        pcm_bytes: u32,
    },
    /// The malformed message replacing a frame.
    Malformed {
        /// Index into [`StreamPlan::participants`].
        participant: usize,
        /// 1-based frame number replaced.
        frame: u64,
    },
    /// `DtmfData`.
    Dtmf,
    /// `TranscriptionMetadata`.
    TranscriptionMetadata,
    /// `TranscriptionData`.
    TranscriptionData,
    /// `MarkData`: the answer to an audio mark the gateway sent.
    MarkData,
    /// Not a message: drop the connection here without a close frame (`text` is empty).
    Disconnect,
}

/// One message to send, in send order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFrame {
    /// When to send it, relative to the start of the stream (a multiple of 20 ms, plus the
    /// lead-in of a fake ACS stream with `CallAudio::first_audio_after`).
    pub at: Duration,
    /// What it is.
    pub kind: PlannedKind,
    /// The exact WebSocket text message (empty for [`PlannedKind::Disconnect`]).
    pub text: String,
}

/// The `AudioData` message of frame `slot + 1`: timestamp `start_unix_ms + slot · 20 ms`, the
/// base64 payload `b64`, the participant's raw id (`None` for the mixed stream) and the silent
/// flag. The one place every planner (this module's [`plan_frames`], the fake ACS's media
/// streams, `load`) writes an audio frame's text.
pub fn audio_data_text(
    start_unix_ms: i64,
    slot: u64,
    b64: &str,
    raw_id: Option<&str>,
    silent: bool,
) -> String {
    let mut ts = String::with_capacity(24);
    format_timestamp(start_unix_ms + (slot * FRAME_MS) as i64, &mut ts);
    let mut text = String::with_capacity(b64.len() + 160);
    inbound_audio_data_json(&mut text, b64, &ts, raw_id, silent);
    text
}

/// Where an audio frame stands in a live stream: its slot (frame `slot + 1`), the participant's
/// index and the PCM bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSlot {
    /// 0-based slot; the frame is sent at `slot · 20 ms`.
    pub slot: u64,
    /// Index of the participant (0 for the mixed stream).
    pub participant: usize,
    /// PCM bytes carried (640 at 16 kHz, 960 at 24 kHz).
    pub pcm_bytes: u32,
}

/// One audio frame delivered normally in its own slot: the [`PlannedFrame`] live planners (the
/// fake ACS's media streams, `load`) emit for each slot and participant, its text from
/// [`audio_data_text`].
pub fn plan_audio_frame(
    start_unix_ms: i64,
    at: AudioSlot,
    b64: &str,
    raw_id: Option<&str>,
    silent: bool,
) -> PlannedFrame {
    PlannedFrame {
        at: Duration::from_millis(at.slot * FRAME_MS),
        kind: PlannedKind::Audio {
            participant: at.participant,
            frame: at.slot + 1,
            delivery: Delivery::Normal,
            pcm_bytes: at.pcm_bytes,
        },
        text: audio_data_text(start_unix_ms, at.slot, b64, raw_id, silent),
    }
}

/// Ordering groups within a slot.
const G_META: u8 = 0;
const G_TMETA: u8 = 1;
const G_AUDIO: u8 = 2;
const G_DTMF: u8 = 3;
const G_TDATA: u8 = 4;
const G_DISCONNECT: u8 = 5;

/// Ranks within one participant's audio in a slot.
const R_NORMAL: u8 = 0;
const R_DUP: u8 = 1;
const R_REORDERED: u8 = 2;
const R_REORDERED_DUP: u8 = 3;
const R_LATE: u8 = 4;

struct Ev {
    key: (u64, u8, usize, u8, u64),
    kind: PlannedKind,
    text: String,
}

/// Plans every message of a stream, in send order (see the module docs for the schedule and the
/// faults). Pure: the same plan always gives the same frames.
pub fn plan_frames(plan: &StreamPlan) -> Result<Vec<PlannedFrame>, SimError> {
    plan.validate()?;
    let rate = plan.sample_rate;
    let spf = samples_per_frame(rate);
    let pcm_bytes = (spf * 2) as u32;
    let slots = plan.slots();
    let f = plan.faults;
    let every = |n: u64, k: Option<u64>| k.is_some_and(|k| n.is_multiple_of(k));
    let ts = |slot: u64| {
        let mut s = String::with_capacity(24);
        format_timestamp(plan.start_unix_ms + (slot * FRAME_MS) as i64, &mut s);
        s
    };

    let mut evs: Vec<Ev> = Vec::new();
    evs.push(Ev {
        key: (0, G_META, 0, 0, 0),
        kind: PlannedKind::AudioMetadata,
        text: inbound_audio_metadata_json(rate, &plan.subscription_id),
    });
    let first_id = plan.participants[0].raw_id.clone();
    if plan.transcript.is_some() {
        let msg = Inbound::TranscriptionMetadata(TranscriptionMetadata {
            subscription_id: Some(plan.subscription_id.as_str().into()),
            locale: Some("en-US".into()),
            call_connection_id: plan.call_connection_id.as_deref().map(Into::into),
            correlation_id: plan.correlation_id.as_deref().map(Into::into),
            speech_recognition_model_endpoint_id: None,
        });
        evs.push(Ev {
            key: (0, G_TMETA, 0, 0, 0),
            kind: PlannedKind::TranscriptionMetadata,
            text: serde_json::to_string(&msg)?,
        });
    }

    let b64 = base64::engine::general_purpose::STANDARD;
    for (p, part) in plan.participants.iter().enumerate() {
        let total = plan.frames_of(p);
        let per_loop = (part.pcm.len() as u64).div_ceil(spf as u64);
        let mut frame_buf = vec![0i16; spf];
        let mut audio = |n: u64| -> String {
            let start = (((n - 1) % per_loop) as usize) * spf;
            let end = (start + spf).min(part.pcm.len());
            frame_buf.fill(0);
            frame_buf[..end - start].copy_from_slice(&part.pcm[start..end]);
            let silent = frame_dbfs(&frame_buf) < plan.silent_threshold_dbfs;
            audio_data_text(
                plan.start_unix_ms,
                n - 1,
                &b64.encode(pcm_le_bytes(&frame_buf)),
                part.raw_id.as_deref(),
                silent,
            )
        };
        let gap = |n: u64| every(n, f.gap_every);
        for n in 1..=total {
            let slot = n - 1;
            let audio_kind = |delivery| PlannedKind::Audio {
                participant: p,
                frame: n,
                delivery,
                pcm_bytes,
            };
            if p == 0 && f.malformed_at == Some(n) {
                evs.push(Ev {
                    key: (slot, G_AUDIO, p, R_NORMAL, n),
                    kind: PlannedKind::Malformed {
                        participant: p,
                        frame: n,
                    },
                    text: MALFORMED_FRAME.to_string(),
                });
                continue;
            }
            if gap(n) {
                continue;
            }
            let text = audio(n);
            let reorder = every(n, f.reorder_every) && n < total && !gap(n + 1);
            let (send_slot, rank, dup_rank) = if reorder {
                (slot + 1, R_REORDERED, R_REORDERED_DUP)
            } else {
                (slot, R_NORMAL, R_DUP)
            };
            let delivery = if reorder {
                Delivery::Reordered
            } else {
                Delivery::Normal
            };
            if every(n, f.duplicate_every) {
                evs.push(Ev {
                    key: (send_slot, G_AUDIO, p, dup_rank, n),
                    kind: audio_kind(Delivery::Duplicate),
                    text: text.clone(),
                });
            }
            if every(n, f.late_every) {
                evs.push(Ev {
                    key: (slot + LATE_BY_FRAMES, G_AUDIO, p, R_LATE, n),
                    kind: audio_kind(Delivery::Late),
                    text: text.clone(),
                });
            }
            evs.push(Ev {
                key: (send_slot, G_AUDIO, p, rank, n),
                kind: audio_kind(delivery),
                text,
            });
        }
    }

    let digits: Vec<char> = plan.dtmf.chars().collect();
    let m = digits.len() as u64;
    for (i, d) in digits.iter().enumerate() {
        let slot = if slots == 0 {
            0
        } else {
            ((i as u64 + 1) * slots / (m + 1)).min(slots - 1)
        };
        let msg = Inbound::DtmfData(DtmfData {
            data: d.to_string().into(),
            timestamp: Some(ts(slot).into()),
            participant_raw_id: first_id.as_deref().map(Into::into),
        });
        evs.push(Ev {
            key: (slot, G_DTMF, 0, 0, i as u64),
            kind: PlannedKind::Dtmf,
            text: serde_json::to_string(&msg)?,
        });
    }

    if let Some(text) = &plan.transcript {
        evs.push(Ev {
            key: (slots.saturating_sub(1), G_TDATA, 0, 0, 0),
            kind: PlannedKind::TranscriptionData,
            text: serde_json::to_string(&transcription(text, slots, first_id.as_deref()))?,
        });
    }

    if let Some(k) = f.disconnect_after {
        evs.retain(|e| e.key.0 < k || matches!(e.key.1, G_META | G_TMETA));
        evs.push(Ev {
            key: (k.saturating_sub(1), G_DISCONNECT, 0, 0, 0),
            kind: PlannedKind::Disconnect,
            text: String::new(),
        });
    }

    evs.sort_by_key(|e| e.key);
    Ok(evs
        .into_iter()
        .map(|e| PlannedFrame {
            at: Duration::from_millis(e.key.0 * FRAME_MS),
            kind: e.kind,
            text: e.text,
        })
        .collect())
}

/// A final `TranscriptionData` covering `slots` frames, words spread evenly over it. Offsets
/// and durations are in 100 ns ticks from the start of the stream.
fn transcription(text: &str, slots: u64, participant: Option<&str>) -> Inbound<'static> {
    const TICKS_PER_MS: u64 = 10_000;
    let duration = slots * FRAME_MS * TICKS_PER_MS;
    let words: Vec<&str> = text.split_whitespace().collect();
    let per_word = duration / (words.len() as u64).max(1);
    Inbound::TranscriptionData(TranscriptionData {
        text: text.to_string().into(),
        format: Some("display".into()),
        confidence: Some(0.92),
        offset: Some(0),
        duration: Some(duration),
        words: words
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.to_lowercase().into(),
                offset: Some(i as u64 * per_word),
                duration: Some(per_word),
            })
            .collect(),
        participant_raw_id: participant.map(|p| p.to_string().into()),
        result_status: Some(ResultStatus::Final),
        sentiment: None,
        language_identified: None,
    })
}
