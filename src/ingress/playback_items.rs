//! Operator playbacks of one call ([`Items`]): the queue of whole clips the call's writer plays
//! before any audio a forward target returns, the bounded record of each playback, and how a
//! playback ends.
//!
//! A playback is `queued` → `playing` (its first frame was sent) → `completed` or `cancelled`.
//! Its last frame — a short one when the clip is not a whole number of 20 ms frames, so the
//! call hears exactly the clip — carries an audio mark whose id is the playback id
//! (`protocol::mark`). It completes when ACS answers that mark with `MarkData` (`Completed` or
//! `Cancelled`, source `acs`), or, when no `MarkData` arrives within [`MARK_WAIT`], from the
//! gateway's own queue (source `gateway`): completed, unless a `StopAudio` went out less than
//! [`CUT_WINDOW`] after its last frame (then cancelled, as ACS's playout buffer was flushed with
//! it). `stop-audio` (and a forward target's barge-in) cancels what is queued or playing at
//! once; the connection's end cancels what is left. Each end is reported once: to the sinks as
//! `CallEvent::PlaybackCompleted` / `PlaybackCancelled`, to the record, and to
//! `playbacks_total{outcome,source}`.

use crate::control::playback::{PlayError, PlayState, PlaybackRecord, MAX_QUEUED, MAX_RECORDS};
use crate::control::registry::{now_ms, rfc3339};
use crate::metrics::Metrics;
use crate::pipeline::{CallEvent, CallInfo, FanOut, PlaybackReport, SinkMsg};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long after a playback's last frame the gateway waits for ACS's `MarkData`.
pub(crate) const MARK_WAIT: Duration = Duration::from_millis(1_500);
/// A `StopAudio` this soon after a playback's last frame flushed (part of) it from ACS's
/// playout buffer: the jitter buffer's lead plus a frame.
pub(crate) const CUT_WINDOW: Duration = Duration::from_millis(60);

/// Where the call's events go (sinks) and what it is.
#[derive(Clone)]
pub struct Reporter {
    /// The pipeline's fan-out.
    pub fanout: FanOut,
    /// The call.
    pub call: Arc<CallInfo>,
}

struct Item {
    id: String,
    samples: Vec<i16>,
    pos: usize,
    frames: u64,
}

struct Awaiting {
    id: String,
    frames: u64,
    sent_at: Instant,
    deadline: Instant,
    /// A StopAudio went out within [`CUT_WINDOW`] of the last frame.
    cut: bool,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Item>,
    awaiting: Vec<Awaiting>,
    records: VecDeque<PlaybackRecord>,
    next_id: u64,
}

/// One call's operator playbacks (see the [module docs](self)).
pub struct Items {
    inner: Mutex<Inner>,
    reporter: Option<Reporter>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items").finish_non_exhaustive()
    }
}

impl Items {
    /// No playbacks; ends are reported to `reporter`'s sinks (none: metrics and records only).
    pub fn new(reporter: Option<Reporter>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            reporter,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a playback of `samples` at `rate`.
    pub fn push(&self, samples: Vec<i16>, rate: u32) -> Result<PlaybackRecord, PlayError> {
        let mut g = self.lock();
        if g.queue.len() >= MAX_QUEUED {
            return Err(PlayError::QueueFull);
        }
        g.next_id += 1;
        let id = format!("pb-{}", g.next_id);
        let n = samples.len() as u64;
        let rec = PlaybackRecord {
            id: id.clone(),
            state: PlayState::Queued,
            samples: n,
            sample_rate: rate,
            duration_ms: n * 1000 / u64::from(rate.max(1)),
            frames_sent: 0,
            samples_sent: 0,
            queued_at: rfc3339(now_ms()),
            started_at: None,
            last_frame_at: None,
            ended_at: None,
            source: None,
        };
        // forget the oldest finished record when full (at most MAX_QUEUED are unfinished)
        if g.records.len() >= MAX_RECORDS {
            if let Some(i) = g
                .records
                .iter()
                .position(|r| matches!(r.state, PlayState::Completed | PlayState::Cancelled))
            {
                g.records.remove(i);
            }
        }
        g.records.push_back(rec.clone());
        g.queue.push_back(Item {
            id,
            samples,
            pos: 0,
            frames: 0,
        });
        Ok(rec)
    }

    /// True when a playback has audio to send.
    pub fn ready(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Takes the next frame (up to `per` samples) of the current playback into `pcm` (PCM16LE
    /// bytes, cleared first). `None`: nothing to play. `Some(Some(id))`: this is the playback's
    /// last frame, to be sent with mark `id`.
    pub fn next_frame(&self, per: usize, pcm: &mut Vec<u8>) -> Option<Option<String>> {
        let mut g = self.lock();
        let item = g.queue.front_mut()?;
        let end = (item.pos + per).min(item.samples.len());
        pcm.clear();
        for s in &item.samples[item.pos..end] {
            pcm.extend_from_slice(&s.to_le_bytes());
        }
        let first = item.pos == 0;
        item.pos = end;
        item.frames += 1;
        let (id, frames, sent) = (item.id.clone(), item.frames, end as u64);
        let last = end == item.samples.len();
        let now = rfc3339(now_ms());
        if let Some(r) = g.records.iter_mut().find(|r| r.id == id) {
            r.state = PlayState::Playing;
            r.frames_sent = frames;
            r.samples_sent = sent;
            if first {
                r.started_at = Some(now.clone());
            }
            if last {
                r.last_frame_at = Some(now);
            }
        }
        if !last {
            return Some(None);
        }
        g.queue.pop_front();
        let t = Instant::now();
        g.awaiting.push(Awaiting {
            id: id.clone(),
            frames,
            sent_at: t,
            deadline: t + MARK_WAIT,
            cut: false,
        });
        Some(Some(id))
    }

    /// The earliest mark deadline, if a playback awaits its `MarkData`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().awaiting.iter().map(|a| a.deadline).min()
    }

    /// Ends the playbacks whose `MarkData` did not come in time (from the gateway's queue).
    pub fn expire(&self, now: Instant) {
        let done: Vec<Awaiting> = {
            let mut g = self.lock();
            // the writer calls this on every wake-up: nothing to do costs no allocation
            if !g.awaiting.iter().any(|a| a.deadline <= now) {
                return;
            }
            let (due, keep) = std::mem::take(&mut g.awaiting)
                .into_iter()
                .partition(|a| a.deadline <= now);
            g.awaiting = keep;
            due
        };
        for a in done {
            self.end(&a.id, a.frames, !a.cut, "gateway");
        }
    }

    /// ACS's `MarkData` for mark `id`: `status` `Completed` (anything else: cancelled). False
    /// when no playback awaits that mark (a forward target's own mark, or a late duplicate).
    pub fn on_mark(&self, id: &str, status: Option<&str>) -> bool {
        let found = {
            let mut g = self.lock();
            let i = g.awaiting.iter().position(|a| a.id == id);
            i.map(|i| g.awaiting.remove(i))
        };
        let Some(a) = found else { return false };
        let completed = status.is_some_and(|s| s.eq_ignore_ascii_case("completed"));
        self.end(&a.id, a.frames, completed, "acs");
        true
    }

    /// A `StopAudio` is going out: what is queued or playing is cancelled now; a playback whose
    /// last frame left less than [`CUT_WINDOW`] ago is cancelled if ACS does not say otherwise.
    /// Returns the cancelled records.
    pub fn stop(&self) -> Vec<PlaybackRecord> {
        let now = Instant::now();
        let cancelled: Vec<(String, u64)> = {
            let mut g = self.lock();
            for a in &mut g.awaiting {
                if now.saturating_duration_since(a.sent_at) < CUT_WINDOW {
                    a.cut = true;
                }
            }
            g.queue.drain(..).map(|i| (i.id, i.frames)).collect()
        };
        cancelled
            .into_iter()
            .filter_map(|(id, frames)| self.end(&id, frames, false, "gateway"))
            .collect()
    }

    /// The media connection ended: queued and playing playbacks are cancelled, those awaiting
    /// their mark end as the gateway sees them.
    pub fn finish(&self) {
        let (queued, awaiting) = {
            let mut g = self.lock();
            (
                g.queue.drain(..).collect::<Vec<_>>(),
                std::mem::take(&mut g.awaiting),
            )
        };
        for i in queued {
            self.end(&i.id, i.frames, false, "gateway");
        }
        for a in awaiting {
            self.end(&a.id, a.frames, !a.cut, "gateway");
        }
    }

    /// Every record, oldest first.
    pub fn records(&self) -> Vec<PlaybackRecord> {
        self.lock().records.iter().cloned().collect()
    }

    /// Records the end of playback `id` and reports it; `None` if it had already ended.
    fn end(
        &self,
        id: &str,
        frames: u64,
        completed: bool,
        source: &'static str,
    ) -> Option<PlaybackRecord> {
        let rec = {
            let mut g = self.lock();
            let r = g.records.iter_mut().find(|r| r.id == id)?;
            if matches!(r.state, PlayState::Completed | PlayState::Cancelled) {
                return None;
            }
            r.state = if completed {
                PlayState::Completed
            } else {
                PlayState::Cancelled
            };
            r.ended_at = Some(rfc3339(now_ms()));
            r.source = Some(source);
            r.clone()
        };
        let outcome = if completed { "completed" } else { "cancelled" };
        self.metrics
            .playbacks
            .with_label_values(&[outcome, source])
            .inc();
        tracing::info!(playback = id, outcome, source, frames, "playback ended");
        if let Some(rp) = &self.reporter {
            let report = PlaybackReport {
                id: id.to_owned(),
                frames,
                source,
            };
            let event = if completed {
                CallEvent::PlaybackCompleted(report)
            } else {
                CallEvent::PlaybackCancelled(report)
            };
            rp.fanout.control(SinkMsg::Event {
                call: rp.call.clone(),
                event: Arc::new(event),
            });
        }
        Some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Items {
        Items::new(None, Metrics::new())
    }

    #[test]
    fn a_clip_is_cut_into_frames_with_a_short_marked_last_one() {
        let it = items();
        let rec = it.push((0..700).collect(), 16_000).unwrap();
        assert_eq!((rec.state, rec.duration_ms), (PlayState::Queued, 43));
        let mut pcm = Vec::new();
        assert_eq!(it.next_frame(320, &mut pcm), Some(None));
        assert_eq!(pcm.len(), 640);
        assert_eq!(it.records()[0].state, PlayState::Playing);
        assert_eq!(it.next_frame(320, &mut pcm), Some(None));
        assert_eq!(it.next_frame(320, &mut pcm), Some(Some(rec.id.clone())));
        let want: Vec<u8> = (640i16..700).flat_map(i16::to_le_bytes).collect();
        assert_eq!(pcm, want);
        assert_eq!(it.next_frame(320, &mut pcm), None);
        assert!(it.next_deadline().is_some());
        // ACS confirms: completed by acs, once
        assert!(it.on_mark(&rec.id, Some("Completed")));
        assert!(!it.on_mark(&rec.id, Some("Completed")));
        let r = &it.records()[0];
        assert_eq!(
            (r.state, r.source, r.frames_sent, r.samples_sent),
            (PlayState::Completed, Some("acs"), 3, 700)
        );
    }

    #[test]
    fn without_mark_data_the_gateway_decides_and_stop_cancels() {
        let it = items();
        let a = it.push(vec![1; 320], 16_000).unwrap();
        let b = it.push(vec![2; 640], 16_000).unwrap();
        let mut pcm = Vec::new();
        assert_eq!(it.next_frame(320, &mut pcm), Some(Some(a.id.clone())));
        it.expire(Instant::now() + MARK_WAIT);
        assert_eq!(it.records()[0].source, Some("gateway"));
        assert_eq!(it.records()[0].state, PlayState::Completed);
        assert_eq!(it.next_frame(320, &mut pcm), Some(None));
        let cancelled = it.stop();
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0].id, b.id);
        assert_eq!(cancelled[0].state, PlayState::Cancelled);
        assert!(!it.ready());
        // a StopAudio right after the last frame cancels it unless ACS says otherwise
        let c = it.push(vec![3; 10], 16_000).unwrap();
        assert_eq!(it.next_frame(320, &mut pcm), Some(Some(c.id.clone())));
        it.stop();
        it.finish();
        assert_eq!(it.records()[2].state, PlayState::Cancelled);
    }

    #[test]
    fn queue_and_records_are_bounded() {
        let it = items();
        for _ in 0..MAX_QUEUED {
            it.push(vec![0; 10], 16_000).unwrap();
        }
        assert_eq!(it.push(vec![0; 10], 16_000), Err(PlayError::QueueFull));
        let mut pcm = Vec::new();
        for _ in 0..(MAX_RECORDS * 2) {
            while it.next_frame(320, &mut pcm).is_some() {}
            it.finish();
            it.push(vec![0; 10], 16_000).unwrap();
        }
        assert!(it.records().len() <= MAX_RECORDS);
    }
}
