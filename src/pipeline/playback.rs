//! The seam for bidirectional audio: what a sink (the forward sink) needs to play audio back into
//! a call and to stop it. The ingress implements it for each call's media WebSocket (its writer
//! paces 20 ms `AudioData` frames to ACS and sends `StopAudio`); sinks see only this trait, so the
//! pipeline and the sinks stay free of sockets.
//!
//! Barge-in needs three more things from the target: whether anything is playing (a `StopAudio`
//! is sent only when it stops something), a playback generation (audio a bot sent before it
//! learned of a barge-in is refused, never played after the stop), and what the call is playing
//! now, to tell the playback's echo from a caller talking (`super::echo`).

use super::echo::{EchoCheck, Verdict};
use super::frame::CallId;

/// What [`PlaybackTarget::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// All samples were queued.
    Queued,
    /// The call's playback queue was full; this many samples were dropped (counted as overrun).
    Overrun(usize),
    /// The call has no bidirectional media connection (not answered with `enableBidirectional`,
    /// or already gone).
    NoCall,
    /// The audio belongs to a playback generation a barge-in ended: refused.
    Stale,
}

/// Plays audio into calls.
pub trait PlaybackTarget: Send + Sync + 'static {
    /// True when `call` has a media connection that accepts outbound audio.
    fn is_bidirectional(&self, call: CallId) -> bool;
    /// Queues PCM at `sample_rate` (the call's negotiated rate) for `call`; it is cut into 20 ms
    /// frames and paced at real time by the call's writer. Never blocks.
    fn enqueue(&self, call: CallId, samples: &[i16], sample_rate: u32) -> Enqueued;
    /// Flushes what is queued for `call` and sends `StopAudio` to ACS when something was queued
    /// or playing; true when it stopped something.
    fn stop(&self, call: CallId) -> bool;
    /// The call's negotiated sample rate, when it has a bidirectional connection.
    fn sample_rate(&self, call: CallId) -> Option<u32>;
    /// True when audio is queued for `call` or ACS may still be playing what was sent.
    fn is_playing(&self, call: CallId) -> bool {
        self.is_bidirectional(call)
    }
    /// The call's playback generation (0 until the first barge-in).
    fn generation(&self, _call: CallId) -> u64 {
        0
    }
    /// Barge-in: starts a new playback generation, flushes the queue and stops what plays (as
    /// [`Self::stop`]); returns the new generation, or None when the call is not bidirectional.
    fn barge_in(&self, call: CallId) -> Option<u64> {
        self.is_bidirectional(call).then(|| {
            self.stop(call);
            0
        })
    }
    /// Queues audio of playback `generation` (see [`Self::enqueue`]); refused as
    /// [`Enqueued::Stale`] when a barge-in started a newer generation.
    fn enqueue_generation(
        &self,
        call: CallId,
        samples: &[i16],
        sample_rate: u32,
        generation: u64,
    ) -> Enqueued {
        let _ = generation;
        self.enqueue(call, samples, sample_rate)
    }
    /// Runs `check` on `caller` (a caller's latest audio, whose last sample ends at call-timeline
    /// position `caller_end`: the stream's `call_offset` + position) against what `call`
    /// played; None when the target cannot tell (then any speech counts as talk);
    /// `Verdict::stale` when it no longer holds what played then.
    fn check_echo(
        &self,
        _call: CallId,
        _check: &mut EchoCheck,
        _caller: &[i16],
        _caller_end: u64,
    ) -> Option<Verdict> {
        None
    }
}
