//! The sink contract and the machinery that keeps sinks from ever stalling ingress.
//!
//! A [`Sink`] is small and synchronous: open a stream, write frames, hear about gaps and events,
//! close the stream, end the call, flush now and then, shut down. Each configured sink runs on its
//! own worker thread(s) behind a bounded crossbeam queue ([`spawn_blocking_sink`]); the connection
//! task only ever calls [`SinkHandle::send_audio`] (never blocks) and
//! [`SinkHandle::send_control`] (never loses).
//!
//! Queue policy: one ordered queue per worker holds at most `audio_capacity` audio frames plus a
//! deep `control_reserve` that only control messages (open, close, gaps, events, call end) may
//! use, so everything for a call stays in order in one queue.
//! - **Audio lane: bounded, drop-newest.** When `audio_capacity` messages are waiting, the newest
//!   frame is dropped and counted (`acs_gateway_sink_queue_drops_total{class="audio"}`).
//! - **Control lane: lossless.** A control message always fits while the reserve has room; only
//!   when even the reserve is full (the sink is far behind and memory is at risk) does the
//!   producer wait for room, and that wait is counted
//!   (`acs_gateway_sink_control_waits_total`). It gives up only if the worker is gone or makes no
//!   room for [`CONTROL_WAIT_LIMIT`] (counted as a `class="control"` drop); after that the queue
//!   counts as stuck and further control messages fail fast (counted) until it has room again,
//!   so a stuck sink holds a runtime thread for one wait, not one per message.
//!
//! Workers neither spin nor sleep-poll when idle, and senders almost never wake them: after a
//! round that found messages a worker sleeps `poll_interval` so the next batch gathers (a send
//! finds nobody to wake: no syscall on the hot path); after a round that found the queue empty it
//! blocks until a message arrives (one wake per idle period) or the next flush is due.
//!
//! | module | owns |
//! |---|---|
//! | `queue` | [`QueueConfig`], the queue policy and [`SinkHandle`], the sending side |
//! | `worker` | [`spawn_blocking_sink`], [`SinkWorkers`], [`ManualSink`]: the worker loop, error and panic containment |
//! | `fanout` | [`FanOut`]: every sink a call goes to |
//! | `contract` | the shared contract every sink's tests run (feature `testkit`) |
//!
//! A call's messages always go to the same worker, so per-call order holds with several workers.
//! A sink that returns errors has them counted; a sink that panics is marked dead and its messages
//! are counted as dropped from then on.

#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod contract;
pub(crate) mod fanout;
pub(crate) mod queue;
pub(crate) mod worker;

pub use fanout::FanOut;
pub use queue::{Overflow, QueueConfig, SinkHandle, CONTROL_WAIT_LIMIT, DEFAULT_CONTROL_RESERVE};
pub use worker::{spawn_blocking_sink, ManualSink, SinkWorkers};

use super::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamStats,
};
use std::sync::Arc;

/// Errors a sink reports; counted per sink kind, never fatal to the call.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// File or socket I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A message named a stream the sink does not know (never opened, or already closed).
    #[error("unknown stream {0}")]
    UnknownStream(StreamId),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// A short name of the error's kind (log rate limiting, the `kind` log field).
    pub fn kind(&self) -> &'static str {
        match self {
            SinkError::Io(_) => "io",
            SinkError::UnknownStream(_) => "unknown_stream",
            SinkError::Other(_) => "other",
        }
    }
}

/// The sink contract. Methods are called from one worker thread, in queue order.
pub trait Sink: Send + 'static {
    /// Short kind name, the `sink` metric label (`wav`, `null`, ...).
    fn kind(&self) -> &'static str;
    /// A stream starts; its format is in `stream`.
    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError>;
    /// A block of audio for an open stream.
    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError>;
    /// A block of 32-bit float audio (full scale ±1.0, i.e. i16 / 32768) for an open stream, as
    /// a resample sink with `format = "f32"` emits it: at most [`super::frame::MAX_FRAME_SAMPLES`]
    /// samples at `rate`, the first at `pos`. Sinks that take float audio override this; the
    /// default refuses it (config validation keeps such chains from being built).
    fn write_f32(
        &mut self,
        _stream: StreamId,
        _call: CallId,
        _pos: u64,
        _rate: u32,
        _samples: &[f32],
    ) -> Result<(), SinkError> {
        Err(SinkError::Other(format!(
            "the {} sink does not take f32 audio",
            self.kind()
        )))
    }
    /// `samples` of silence at the end of an open stream (a timeline gap).
    fn gap(&mut self, _call: CallId, _stream: StreamId, _samples: u64) -> Result<(), SinkError> {
        Ok(())
    }
    /// A call event.
    fn event(&mut self, _call: &Arc<CallInfo>, _event: &CallEvent) -> Result<(), SinkError> {
        Ok(())
    }
    /// A stream ends; the sink finalises what belongs to it.
    fn close(
        &mut self,
        call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError>;
    /// The call ended; all its streams were closed before.
    fn end_call(&mut self, _call: &Arc<CallInfo>, _reason: &EndReason) -> Result<(), SinkError> {
        Ok(())
    }
    /// Periodic (about once a second, and when the queue is idle): make outputs durable.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Process shutdown: finalise everything still open. Called once, last.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
