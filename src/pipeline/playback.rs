//! The seam for bidirectional audio: what a sink (the forward sink) needs to play audio back into
//! a call and to stop it. The ingress implements it for each call's media WebSocket (its writer
//! paces 20 ms `AudioData` frames to ACS and sends `StopAudio`); sinks see only this trait, so the
//! pipeline and the sinks stay free of sockets.

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
}

/// Plays audio into calls.
pub trait PlaybackTarget: Send + Sync + 'static {
    /// True when `call` has a media connection that accepts outbound audio.
    fn is_bidirectional(&self, call: CallId) -> bool;
    /// Queues PCM at `sample_rate` (the call's negotiated rate) for `call`; it is cut into 20 ms
    /// frames and paced at real time by the call's writer. Never blocks.
    fn enqueue(&self, call: CallId, samples: &[i16], sample_rate: u32) -> Enqueued;
    /// Flushes what is queued for `call` and sends `StopAudio` to ACS; false when the call has no
    /// bidirectional connection.
    fn stop(&self, call: CallId) -> bool;
    /// The call's negotiated sample rate, when it has a bidirectional connection.
    fn sample_rate(&self, call: CallId) -> Option<u32>;
}
