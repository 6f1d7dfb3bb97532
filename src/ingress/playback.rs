//! Bidirectional playback into calls: the [`PlaybackHub`] keeps one bounded queue per call whose
//! media connection accepts outbound audio, and each such connection runs a writer
//! ([`run_writer`]) that cuts the queue into 20 ms frames and, after a jitter buffer of
//! [`PREBUFFER_FRAMES`], sends one every 20 ms to ACS as outbound `AudioData`; [`PlaybackTarget::stop`] flushes
//! the queue and sends `StopAudio`. The writer owns the socket's sending half, so writing to ACS
//! never blocks reading from it. Underruns (the queue ran dry in the middle of playback) and
//! overruns (audio refused because the queue was full) are counted.
//!
//! Operator playbacks (`POST /api/calls/{id}/play`, `Player`) are whole clips in the call's
//! `Items`: they need no jitter buffer, start at the next slot, and take precedence over audio
//! a forward target returns (which waits in its queue meanwhile); see
//! `playback_items` for how each one ends.
//!
//! Every frame the writer sends (and every `StopAudio`) also goes to the call's outbound track
//! (`CallPlayback::record_outbound`, `pipeline::outbound`), which the recorder writes as the
//! call's `bot` track. The track is laid on the call timeline at the live edge: the connection
//! reports each inbound frame's arrival (`CallPlayback::heard`) and the writer extrapolates from
//! the most timely one on its clock.

use super::playback_items::{Items, Reporter};
use crate::control::playback::{PlayError, PlaybackRecord, Player};
use crate::metrics::Metrics;
use crate::pipeline::echo::{self, EchoCheck, PlayedAudio, Verdict};
use crate::pipeline::frame::CallId;
use crate::pipeline::outbound::OutboundTrack;
use crate::pipeline::playback::{Enqueued, PlaybackTarget};
use crate::pipeline::{CallInfo, FanOut};
use crate::protocol::mark::write_outbound_audio_marked;
use crate::protocol::media::{write_outbound_audio, STOP_AUDIO_JSON};
use futures_util::{Sink, SinkExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Frames queued before playback starts: a small jitter buffer that absorbs irregular arrival
/// from the bot, so frames leave at a steady 20 ms. It is also all the lead playback ever has
/// over real time, which bounds what `StopAudio` has to cut on ACS's side.
pub const PREBUFFER_FRAMES: usize = 2;
/// Lateness beyond which the 20 ms grid is re-anchored rather than caught up with a burst.
const SLACK: Duration = Duration::from_millis(5);
/// Most queued playback per call (ms); more is refused and counted as overrun.
pub const MAX_QUEUE_MS: usize = 10_000;
/// After this long without new audio, a partial last frame is sent as it is.
const TAIL_WAIT: Duration = Duration::from_millis(60);
/// How long after its last frame ACS may still be playing it (its own buffering and the
/// network): a `StopAudio` within this time still stops something.
pub const PLAYING_TAIL: Duration = Duration::from_millis(100);

/// One call's playback state, shared by the hub and the connection's writer.
#[derive(Debug)]
pub struct CallPlayback {
    rate: AtomicU32,
    queue: Mutex<VecDeque<i16>>,
    stop: AtomicBool,
    wake: Notify,
    last_push: Mutex<Option<tokio::time::Instant>>,
    /// Playback generation: a barge-in starts a new one; audio of an older one is refused.
    /// Locked before `queue` when both are.
    generation: Mutex<u64>,
    /// What ACS is playing, on the call timeline (the echo reference of barge-in).
    played: Mutex<PlayedAudio>,
    /// Where what was sent ends on this host's clock, as ACS plays it back to back (None after
    /// a stop): whether ACS may still be playing.
    wall_end: Mutex<Option<std::time::Instant>>,
    /// Operator playbacks.
    pub items: Items,
    /// Names the operator API finds the call by (gateway call id, `callConnectionId`).
    keys: Vec<String>,
    /// The call's outbound track, until the writer takes it.
    recorder: Mutex<Option<OutboundTrack>>,
    /// The clock origin of [`CallPlayback::heard`].
    epoch: std::time::Instant,
    /// µs after `epoch` at which the call timeline's position 0 was live, as the most timely
    /// inbound frame tells (`i64::MAX`: no frame yet).
    origin_us: AtomicI64,
    /// The call timeline heard so far (the latest inbound frame's end): where a frame sent now
    /// lies on the echo reference.
    heard_pos: AtomicU64,
}

impl CallPlayback {
    fn new(rate: u32, items: Items, keys: Vec<String>) -> Self {
        Self {
            rate: AtomicU32::new(rate),
            queue: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            last_push: Mutex::new(None),
            generation: Mutex::new(0),
            played: Mutex::new(PlayedAudio::new(rate)),
            wall_end: Mutex::new(None),
            items,
            keys,
            recorder: Mutex::new(None),
            epoch: std::time::Instant::now(),
            origin_us: AtomicI64::new(i64::MAX),
            heard_pos: AtomicU64::new(0),
        }
    }

    /// Records what the writer sends on `track` (the writer takes it when it starts).
    pub fn record_outbound(&self, track: OutboundTrack) {
        if let Ok(mut r) = self.recorder.lock() {
            *r = Some(track);
        }
    }

    /// An inbound frame arrived at `at`, the call timeline heard up to `pos` (samples at the
    /// call's rate): the live edge is at least `pos` at `at`. Two atomics per frame.
    pub fn heard(&self, at: std::time::Instant, pos: u64) {
        let at_us = at.saturating_duration_since(self.epoch).as_micros() as i64;
        let pos_us = (pos.saturating_mul(1_000_000) / u64::from(self.rate().max(1))) as i64;
        self.origin_us
            .fetch_min(at_us.saturating_sub(pos_us), Ordering::Relaxed);
        self.heard_pos.fetch_max(pos, Ordering::Relaxed);
    }

    /// The call timeline's live edge at `now`: extrapolated from the most timely inbound frame
    /// (before any arrived: the time since the connection opened).
    fn live_pos(&self, now: std::time::Instant) -> u64 {
        let origin = match self.origin_us.load(Ordering::Relaxed) {
            i64::MAX => 0,
            o => o,
        };
        let now_us = now.saturating_duration_since(self.epoch).as_micros() as i64;
        let us = now_us.saturating_sub(origin).max(0) as u64;
        us.saturating_mul(u64::from(self.rate())) / 1_000_000
    }

    /// Sets the negotiated rate (after AudioMetadata).
    pub fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Relaxed);
        if let Ok(mut p) = self.played.lock() {
            if p.rate() != rate {
                *p = PlayedAudio::new(rate);
            }
        }
    }

    /// A frame (PCM16LE bytes) goes to ACS now: laid on the echo reference at the position
    /// heard, and on the clock.
    fn sent(&self, pcm: &[u8]) {
        let heard = self.heard_pos.load(Ordering::Relaxed);
        if let Ok(mut p) = self.played.lock() {
            p.push_le_bytes(pcm, heard);
        }
        let rate = u64::from(self.rate().max(1));
        let dur = Duration::from_micros((pcm.len() / 2) as u64 * 1_000_000 / rate);
        let now = std::time::Instant::now();
        if let Ok(mut e) = self.wall_end.lock() {
            let jitter = Duration::from_millis(u64::from(echo::JITTER_MS));
            let start = match *e {
                Some(end) if now <= end + jitter => end,
                _ => now,
            };
            *e = Some(start + dur);
        }
    }

    /// Playback stopped now: nothing plays, what was laid ahead of the position heard is cut.
    fn stopped(&self) {
        let heard = self.heard_pos.load(Ordering::Relaxed);
        if let Ok(mut p) = self.played.lock() {
            p.stop(heard);
        }
        if let Ok(mut e) = self.wall_end.lock() {
            *e = None;
        }
    }

    /// True when audio is queued, an operator playback is ready, or ACS may still be playing
    /// what was sent (within [`PLAYING_TAIL`]).
    pub fn is_playing(&self) -> bool {
        if self.queued() > 0 || self.items.ready() {
            return true;
        }
        let soon = std::time::Instant::now()
            .checked_sub(PLAYING_TAIL)
            .unwrap_or_else(std::time::Instant::now);
        self.wall_end
            .lock()
            .is_ok_and(|e| e.is_some_and(|end| end > soon))
    }

    fn rate(&self) -> u32 {
        self.rate.load(Ordering::Relaxed)
    }

    fn since_push(&self, now: tokio::time::Instant) -> Duration {
        self.last_push
            .lock()
            .ok()
            .and_then(|t| *t)
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t))
    }

    /// Samples waiting.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }
}

/// Every call that can play audio back.
#[derive(Debug)]
pub struct PlaybackHub {
    calls: Mutex<HashMap<CallId, Arc<CallPlayback>>>,
    metrics: Arc<Metrics>,
}

impl PlaybackHub {
    /// An empty hub.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Makes `call` bidirectional (its connection runs [`run_writer`] with the returned state);
    /// operator playbacks cannot find it (no keys) and report to no sink.
    pub fn register(&self, call: CallId, rate: u32) -> Arc<CallPlayback> {
        let items = Items::new(None, self.metrics.clone());
        self.insert(call, CallPlayback::new(rate, items, Vec::new()))
    }

    /// Makes `call` bidirectional; the operator API finds it by its token (the gateway call id)
    /// and `callConnectionId`, and playback ends are reported to `fanout`'s sinks.
    pub fn register_call(
        &self,
        call: &Arc<CallInfo>,
        rate: u32,
        fanout: FanOut,
    ) -> Arc<CallPlayback> {
        let reporter = Reporter {
            fanout,
            call: call.clone(),
        };
        let items = Items::new(Some(reporter), self.metrics.clone());
        let keys = [&call.token, &call.call_connection_id]
            .into_iter()
            .flatten()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        self.insert(call.id, CallPlayback::new(rate, items, keys))
    }

    fn insert(&self, call: CallId, pb: CallPlayback) -> Arc<CallPlayback> {
        let pb = Arc::new(pb);
        if let Ok(mut m) = self.calls.lock() {
            m.insert(call, pb.clone());
        }
        pb
    }

    /// The call's playback state, found by any of `keys`.
    fn find(&self, keys: &[&str]) -> Option<Arc<CallPlayback>> {
        let m = self.calls.lock().ok()?;
        m.values()
            .find(|pb| pb.keys.iter().any(|k| keys.contains(&k.as_str())))
            .cloned()
    }

    /// Forgets `call` (its connection ended).
    pub fn unregister(&self, call: CallId) {
        if let Ok(mut m) = self.calls.lock() {
            m.remove(&call);
        }
    }

    /// Calls registered for playback.
    pub fn calls(&self) -> Vec<CallId> {
        self.calls
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    fn get(&self, call: CallId) -> Option<Arc<CallPlayback>> {
        self.calls.lock().ok()?.get(&call).cloned()
    }
}

impl PlaybackTarget for PlaybackHub {
    fn is_bidirectional(&self, call: CallId) -> bool {
        self.get(call).is_some()
    }

    fn enqueue(&self, call: CallId, samples: &[i16], sample_rate: u32) -> Enqueued {
        let current = self.generation(call);
        self.enqueue_generation(call, samples, sample_rate, current)
    }

    fn enqueue_generation(
        &self,
        call: CallId,
        samples: &[i16],
        sample_rate: u32,
        generation: u64,
    ) -> Enqueued {
        let Some(pb) = self.get(call) else {
            return Enqueued::NoCall;
        };
        let max = pb.rate() as usize * MAX_QUEUE_MS / 1000;
        let dropped = {
            let Ok(g) = pb.generation.lock() else {
                return Enqueued::NoCall;
            };
            if generation < *g {
                self.metrics
                    .playback_stale_samples
                    .inc_by(samples.len() as u64);
                return Enqueued::Stale;
            }
            let Ok(mut q) = pb.queue.lock() else {
                return Enqueued::NoCall;
            };
            let room = max.saturating_sub(q.len());
            let take = samples.len().min(room);
            q.extend(&samples[..take]);
            samples.len() - take
        };
        let _ = sample_rate; // callers resample to the call's rate (see `sample_rate`)
        if let Ok(mut t) = pb.last_push.lock() {
            *t = Some(tokio::time::Instant::now());
        }
        pb.wake.notify_one();
        if dropped > 0 {
            self.metrics.playback_overrun_samples.inc_by(dropped as u64);
            Enqueued::Overrun(dropped)
        } else {
            Enqueued::Queued
        }
    }

    fn stop(&self, call: CallId) -> bool {
        let Some(pb) = self.get(call) else {
            return false;
        };
        if !pb.is_playing() {
            return false;
        }
        stop_call(&pb);
        true
    }

    fn sample_rate(&self, call: CallId) -> Option<u32> {
        self.get(call).map(|p| p.rate())
    }

    fn is_playing(&self, call: CallId) -> bool {
        self.get(call).is_some_and(|p| p.is_playing())
    }

    fn generation(&self, call: CallId) -> u64 {
        self.get(call)
            .and_then(|p| p.generation.lock().ok().map(|g| *g))
            .unwrap_or(0)
    }

    fn barge_in(&self, call: CallId) -> Option<u64> {
        let pb = self.get(call)?;
        let mut g = pb.generation.lock().ok()?;
        *g += 1;
        // under the generation lock: no audio of the old generation gets in after the flush
        if pb.is_playing() {
            stop_call(&pb);
        }
        Some(*g)
    }

    fn check_echo(
        &self,
        call: CallId,
        check: &mut EchoCheck,
        caller: &[i16],
        caller_end: u64,
    ) -> Option<Verdict> {
        let pb = self.get(call)?;
        {
            let p = pb.played.lock().ok()?;
            // a frame more: what was laid as the caller's last frame arrived
            let end = caller_end + u64::from(p.rate() / 50);
            if !p.holds(end.saturating_sub(check.span() as u64)) {
                return Some(Verdict::stale());
            }
            check.load(&p, end);
        }
        Some(check.judge(caller))
    }
}

/// Flushes the call's queues (operator playbacks are cancelled) and has the writer send
/// `StopAudio`; returns the cancelled playbacks.
fn stop_call(pb: &CallPlayback) -> Vec<PlaybackRecord> {
    if let Ok(mut q) = pb.queue.lock() {
        q.clear();
    }
    // nothing plays from now on: a second stop before the writer sends this one (the target
    // acknowledging a barge-in) finds nothing to stop and sends no second `StopAudio`
    if let Ok(mut e) = pb.wall_end.lock() {
        *e = None;
    }
    let cancelled = pb.items.stop();
    pb.stop.store(true, Ordering::Release);
    pb.wake.notify_one();
    cancelled
}

impl Player for PlaybackHub {
    fn rate(&self, keys: &[&str]) -> Option<u32> {
        self.find(keys).map(|p| p.rate())
    }

    fn play(&self, keys: &[&str], samples: Vec<i16>) -> Result<PlaybackRecord, PlayError> {
        let pb = self.find(keys).ok_or(PlayError::NotBidirectional)?;
        let rec = pb.items.push(samples, pb.rate())?;
        pb.wake.notify_one();
        Ok(rec)
    }

    fn stop(&self, keys: &[&str]) -> Result<Vec<PlaybackRecord>, PlayError> {
        let pb = self.find(keys).ok_or(PlayError::NotBidirectional)?;
        Ok(stop_call(&pb))
    }

    fn playbacks(&self, keys: &[&str]) -> Vec<PlaybackRecord> {
        self.find(keys)
            .map(|p| p.items.records())
            .unwrap_or_default()
    }
}

/// What the reader asks the writer to do.
#[derive(Debug)]
pub enum WriterCmd {
    /// Send a close frame and stop.
    Close(u16, String),
    /// The peer closed: flush the close reply tungstenite queued, and stop.
    Finish,
}

/// Writes to ACS: paced playback from `pb` (when the call is bidirectional) and the close frame
/// the reader asks for. Ends after sending a close or when `cmds` closes, and gives the sending
/// half back (the connection puts the socket together again to close it gracefully).
pub async fn run_writer<S>(
    mut sink: S,
    pb: Option<Arc<CallPlayback>>,
    mut cmds: mpsc::Receiver<WriterCmd>,
    metrics: Arc<Metrics>,
) -> S
where
    S: Sink<Message> + Unpin,
{
    let mut json = String::with_capacity(2048);
    let mut pcm = Vec::with_capacity(1920);
    let frame_dur = Duration::from_millis(20);
    let mut rec = pb
        .as_ref()
        .and_then(|p| p.recorder.lock().ok().and_then(|mut r| r.take()));
    // the time the next frame is due; None while idle (nothing playing)
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let wait = async {
            match &pb {
                Some(pb) => pb.wake.notified().await,
                None => std::future::pending::<()>().await,
            }
        };
        // while playing, wake at the next send slot (idle: when audio arrives), and when a
        // playback's mark is overdue
        let next_slot = due;
        let mark_due = pb.as_ref().and_then(|p| p.items.next_deadline());
        tokio::select! {
            biased;
            cmd = cmds.recv() => {
                match cmd {
                    Some(WriterCmd::Close(code, reason)) => {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    Some(WriterCmd::Finish) | None => {
                        let _ = sink.flush().await;
                    }
                }
                return sink;
            }
            _ = wait => {}
            _ = async { match next_slot { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
            _ = async { match mark_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
        }
        let Some(pb) = &pb else { continue };
        pb.items.expire(tokio::time::Instant::now());
        if pb.stop.swap(false, Ordering::AcqRel) {
            due = None;
            // nothing plays after this: recorded before ACS (or anyone watching the socket) can
            // see the StopAudio, so a stop that follows it finds nothing left to stop (a frame
            // sent between `stop_call` and here set the playing tracker again)
            pb.stopped();
            if sink.send(Message::text(STOP_AUDIO_JSON)).await.is_err() {
                return sink;
            }
            metrics.playback_stops.inc();
            if let Some(r) = rec.as_mut() {
                r.stopped();
            }
            continue;
        }
        // send the frame whose slot has come (one per 20 ms)
        loop {
            let now = tokio::time::Instant::now();
            let per = pb.rate() as usize / 50;
            let queued = pb.queued();
            let tail = queued > 0 && pb.since_push(now) >= TAIL_WAIT;
            let clip = pb.items.ready();
            let slot = match due {
                // idle: start once the jitter buffer holds PREBUFFER_FRAMES, or an utterance's
                // tail has waited long enough, or at once for an operator playback
                None if clip || queued >= PREBUFFER_FRAMES * per || tail => now,
                None => break,
                Some(d) if d > now => break,
                Some(d) => d,
            };
            // an operator playback's frame (its last one carries the mark) comes first
            if let Some(mark) = pb.items.next_frame(per, &mut pcm) {
                match &mark {
                    Some(id) => write_outbound_audio_marked(&mut json, &pcm, id),
                    None => write_outbound_audio(&mut json, &pcm),
                }
                // laid on the echo reference before the send: it is at ACS no earlier than that
                pb.sent(&pcm);
                if sink.send(Message::text(json.as_str())).await.is_err() {
                    return sink;
                }
                if let Some(r) = rec.as_mut() {
                    r.sent(&pcm, pb.rate(), pb.live_pos(std::time::Instant::now()));
                }
                metrics.playback_frames.inc();
                due = Some(if now > slot + SLACK {
                    now + frame_dur
                } else {
                    slot + frame_dur
                });
                continue;
            }
            let take = {
                let Ok(mut q) = pb.queue.lock() else {
                    return sink;
                };
                let n = if q.len() >= per {
                    per
                } else if tail {
                    q.len()
                } else {
                    0
                };
                pcm.clear();
                for s in q.drain(..n) {
                    pcm.extend_from_slice(&s.to_le_bytes());
                }
                n
            };
            if take == 0 {
                // the slot came with less than a frame queued: an underrun if audio is still
                // arriving (otherwise the utterance simply ended); prebuffer again
                if pb.since_push(now) < Duration::from_millis(100) {
                    metrics.playback_underruns.inc();
                }
                due = None;
                break;
            }
            write_outbound_audio(&mut json, &pcm);
            // laid on the echo reference before the send: it is at ACS no earlier than that
            pb.sent(&pcm);
            if sink.send(Message::text(json.as_str())).await.is_err() {
                return sink;
            }
            if let Some(r) = rec.as_mut() {
                r.sent(&pcm, pb.rate(), pb.live_pos(std::time::Instant::now()));
            }
            metrics.playback_frames.inc();
            // on time: keep the 20 ms grid; late (scheduling, slow socket): re-anchor instead of
            // bursting to catch up
            due = Some(if now > slot + SLACK {
                now + frame_dur
            } else {
                slot + frame_dur
            });
        }
    }
}
