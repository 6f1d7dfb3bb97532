//! PURE: the call's outbound audio as a recorded stream — every frame the gateway sent to ACS
//! (the forward target's audio, operator playbacks), laid on the call timeline so the recorder
//! writes it as its own track ([`StreamKind::Outbound`]) aligned sample for sample with the
//! inbound streams.
//!
//! # The timeline
//!
//! Positions are samples on the call timeline (the inbound streams' `call_offset` + position;
//! 0 is the call's first timestamped sample). The caller — the ingress's playback writer, which
//! reads the clock — says where the call's live edge is when it sends a frame (`live`: the
//! inbound position the gateway had heard by then, extrapolated on its clock) and
//! [`OutboundTimeline::place`] lays the frame:
//! - the first frame at `live`, with silence before it from position 0 (the track starts at the
//!   call's start, like the first inbound stream, so the files line up sample for sample);
//! - a frame sent while the previous one is still playing (it ended at most
//!   [`JITTER_MS`](super::echo::JITTER_MS) before `live`) right after it: ACS plays a paced
//!   stream back to back, and a wall-clock placement would cut clicks into it;
//! - otherwise (the bot paused, or a `StopAudio` cut the playback) at `live`, the silence in
//!   between recorded as a gap.
//!
//! Only frames actually sent are recorded: audio flushed by a stop, refused as stale after a
//! barge-in or beyond the queue never reaches [`OutboundTrack::sent`]. A frame ACS was still
//! playing when `StopAudio` arrived is recorded whole (the gateway sends at most a frame or two
//! ahead of real time).
//!
//! # The hand-off
//!
//! [`OutboundTrack`] turns sent frames into sink messages like the inbound path does: the stream
//! opens (a control message) at the first frame, silence goes as `Gap`, samples are copied once
//! into a slot of the track's own [`FramePool`] and offered to each sink's bounded audio queue
//! (drop-newest, counted in `sink_queue_drops_total{class="audio"}`; an exhausted pool in
//! `frame_pool_exhausted_total`): the writer never waits for a recorder and allocates nothing
//! per frame. The stream closes when the track is finished or dropped (the writer ends before
//! the call's end reaches the sinks).

use super::frame::{CallInfo, MAX_FRAME_SAMPLES};
use super::frame::{FramePool, SinkMsg, StreamInfo, StreamKind, StreamStats};
use super::{Pipeline, FRAME_POOL_INITIAL, FRAME_POOL_MAX};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where one sent frame goes on the call timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Silence before the frame (samples since the end of the previous frame, or since the
    /// call's start for the first one).
    pub gap: u64,
    /// Call-timeline position of the frame's first sample.
    pub pos: u64,
}

/// Lays sent frames on the call timeline (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct OutboundTimeline {
    jitter: u64,
    /// Position just after the last frame laid (0 before the first).
    end: u64,
    started: bool,
    /// A stop came after the last frame: the next one starts at the live edge.
    cut: bool,
}

impl OutboundTimeline {
    /// An empty timeline at `rate`.
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            jitter: u64::from(rate) * u64::from(super::echo::JITTER_MS) / 1000,
            end: 0,
            started: false,
            cut: false,
        }
    }

    /// Lays a frame of `n` samples sent when the call's live edge was at `live`.
    pub(crate) fn place(&mut self, live: u64, n: usize) -> Placed {
        let back_to_back = self.started && !self.cut && live <= self.end + self.jitter;
        let pos = if back_to_back {
            self.end
        } else {
            live.max(self.end)
        };
        let gap = pos - self.end;
        self.end = pos + n as u64;
        self.started = true;
        self.cut = false;
        Placed { gap, pos }
    }

    /// Playback was stopped (`StopAudio`): the next frame starts at the live edge.
    pub(crate) fn stop(&mut self) {
        self.cut = true;
    }

    /// Position just after the last frame laid.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }
}

/// The outbound track of one call: sent frames → the sinks (see the module docs). Made by
/// [`super::CallPipeline::outbound_track`]; owned by the call's playback writer.
pub struct OutboundTrack {
    shared: Arc<Pipeline>,
    call: Arc<CallInfo>,
    stream: Option<Arc<StreamInfo>>,
    timeline: OutboundTimeline,
    pool: FramePool,
    stats: StreamStats,
}

impl std::fmt::Debug for OutboundTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundTrack")
            .field("call", &self.call.id)
            .field("stream", &self.stream.as_ref().map(|s| s.id))
            .field("end", &self.timeline.end())
            .finish()
    }
}

impl OutboundTrack {
    fn new(shared: Arc<Pipeline>, call: Arc<CallInfo>) -> Self {
        Self {
            shared,
            call,
            stream: None,
            timeline: OutboundTimeline::new(16_000),
            pool: FramePool::new(FRAME_POOL_INITIAL, FRAME_POOL_MAX),
            stats: StreamStats::default(),
        }
    }

    /// The stream, once the first frame opened it.
    pub fn stream(&self) -> Option<&Arc<StreamInfo>> {
        self.stream.as_ref()
    }

    /// A frame (PCM16LE bytes at `rate`) went to ACS when the call's live edge was at `live`.
    /// A new rate (after `AudioMetadata` changed it) closes the stream and opens another.
    pub fn sent(&mut self, pcm_le: &[u8], rate: u32, live: u64) {
        if self.stream.as_ref().is_some_and(|s| s.sample_rate != rate) {
            self.finish();
        }
        let fan = &self.shared.fanout;
        let stream = match &self.stream {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(StreamInfo {
                    call: self.call.clone(),
                    id: self.shared.next_stream.fetch_add(1, Ordering::Relaxed),
                    kind: StreamKind::Outbound,
                    participant: None,
                    sample_rate: rate,
                    start_unix_ms: None,
                    call_offset: 0,
                });
                fan.control(SinkMsg::Open(s.clone()));
                self.timeline = OutboundTimeline::new(rate);
                self.stream = Some(s.clone());
                s
            }
        };
        let n = pcm_le.len() / 2;
        let placed = self.timeline.place(live, n);
        if placed.gap > 0 {
            self.stats.gaps += 1;
            self.stats.filled_samples += placed.gap;
            fan.control(SinkMsg::Gap {
                call: self.call.id,
                stream: stream.id,
                samples: placed.gap,
            });
        }
        let mut pos = placed.pos;
        for chunk in pcm_le.chunks(MAX_FRAME_SAMPLES * 2) {
            match self.pool.acquire() {
                Some(slot) => {
                    if let Some(f) = Arc::get_mut(slot) {
                        f.reuse(self.call.id, stream.id, pos, rate)
                            .set_le_bytes(chunk);
                    }
                    fan.audio(slot);
                }
                None => self.shared.metrics.frame_pool_exhausted.inc(),
            }
            pos += (chunk.len() / 2) as u64;
        }
        self.stats.frames += 1;
        self.stats.samples = self.timeline.end();
    }

    /// `StopAudio` went to ACS: the next frame starts at the live edge.
    pub fn stopped(&mut self) {
        self.timeline.stop();
    }

    /// Closes the stream (if a frame opened it). Idempotent; dropping the track does it too.
    pub fn finish(&mut self) {
        if let Some(s) = self.stream.take() {
            self.shared.fanout.control(SinkMsg::Close {
                call: self.call.id,
                stream: s.id,
                stats: Box::new(std::mem::take(&mut self.stats)),
            });
        }
    }
}

impl super::CallPipeline {
    /// Call-timeline position just after the latest inbound sample placed (any stream): where
    /// the call's live edge was when the last frame arrived. The playback writer lays outbound
    /// audio on the timeline from it.
    pub fn heard_position(&self) -> u64 {
        self.heard
    }

    /// The call's outbound track: what the playback writer sends to ACS, recorded as a stream
    /// of the call.
    pub fn outbound_track(&self) -> OutboundTrack {
        OutboundTrack::new(self.shared.clone(), self.call.clone())
    }
}

impl Drop for OutboundTrack {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_frame_sits_at_the_live_edge_after_silence_from_the_call_start() {
        let mut t = OutboundTimeline::new(16_000);
        assert_eq!(
            t.place(8_000, 320),
            Placed {
                gap: 8_000,
                pos: 8_000
            }
        );
        assert_eq!(t.end(), 8_320);
    }

    #[test]
    fn paced_frames_play_back_to_back_whatever_the_jitter_of_their_send_times() {
        for rate in [16_000u32, 24_000] {
            let per = rate as usize / 50;
            let mut t = OutboundTimeline::new(rate);
            let first = t.place(1_000, per);
            assert_eq!(first.pos, 1_000);
            // sent a bit late (up to 40 ms after the previous frame ended) or a bit early: next
            let jitter = u64::from(rate) * 40 / 1000;
            let mut end = 1_000 + per as u64;
            for live in [end + 5, end + 2 * per as u64 - 1, end + jitter, end] {
                let p = t.place(live.min(t.end() + jitter), per);
                assert_eq!(p, Placed { gap: 0, pos: end }, "rate {rate}");
                end += per as u64;
            }
        }
    }

    #[test]
    fn a_pause_longer_than_the_jitter_is_silence_and_the_next_frame_sits_at_the_live_edge() {
        let mut t = OutboundTimeline::new(16_000);
        t.place(0, 320);
        t.place(320, 320);
        // 640 ended; the bot speaks again 400 ms later
        assert_eq!(
            t.place(640 + 6_400, 320),
            Placed {
                gap: 6_400,
                pos: 7_040
            }
        );
        // 24 kHz: 41 ms after the end is a gap
        let mut t = OutboundTimeline::new(24_000);
        t.place(480, 480);
        assert_eq!(
            t.place(960 + 984, 480),
            Placed {
                gap: 984,
                pos: 1_944
            }
        );
    }

    #[test]
    fn after_a_stop_the_next_frame_is_not_laid_back_to_back() {
        let mut t = OutboundTimeline::new(16_000);
        t.place(0, 320);
        t.stop();
        // 10 ms later (within the jitter): still at the live edge, a 160-sample gap
        assert_eq!(t.place(480, 320), Placed { gap: 160, pos: 480 });
        // a stop while the live edge is behind the end never moves the track back
        t.stop();
        assert_eq!(t.place(100, 320), Placed { gap: 0, pos: 800 });
    }

    #[test]
    fn a_frame_sent_ahead_of_the_live_edge_never_overlaps_the_previous_one() {
        let mut t = OutboundTimeline::new(16_000);
        t.place(3_200, 320);
        t.stop();
        assert_eq!(t.place(0, 320).pos, 3_520);
    }
}
