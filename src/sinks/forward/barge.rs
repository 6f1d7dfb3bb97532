//! Barge-in for the forward sink: when a caller starts speaking over the call's playback, stop
//! it and tell the call's targets — but not for the playback's own echo, and not when nothing
//! plays.
//!
//! Per stream of a bidirectional call it keeps the caller's latest audio (one
//! [`echo::WINDOW_MS`](crate::pipeline::echo::WINDOW_MS) window, copied per frame into a buffer
//! made at stream open) and an [`EchoCheck`]. On `speech_started`:
//!
//! 1. nothing queued or playing ([`PlaybackTarget::is_playing`]): no `StopAudio`, no `barge_in`
//!    (counted `forward_barge_in_suppressed_total{reason="idle"}`);
//! 2. the playback's echo explains the caller's audio ([`PlaybackTarget::check_echo`]): no
//!    barge-in yet (`reason="echo"`), and every following frame of that speech is checked again
//!    while something plays — a caller who starts talking over the echo barges in on the first
//!    frame where the echo leaves at least half of the energy unexplained
//!    ([`TALK_OVER_SHARE`]);
//! 3. otherwise: barge-in — a new playback generation, the queue flushed, `StopAudio` to ACS
//!    ([`PlaybackTarget::barge_in`]) and `barge_in` (with the `generation`) to every connection
//!    of the call, ahead of queued audio.

use super::proto;
use crate::metrics::Metrics;
use crate::pipeline::echo::{EchoCheck, TALK_OVER_SHARE};
use crate::pipeline::frame::{CallId, StreamId};
use crate::pipeline::playback::PlaybackTarget;

/// One caller stream's barge-in state.
#[derive(Debug)]
pub(crate) struct Guard {
    check: EchoCheck,
    /// The stream's latest samples (the check's window), oldest first.
    recent: Vec<i16>,
    /// In speech the echo explained: re-check every frame.
    suspect: bool,
}

impl Guard {
    /// State for a stream at `rate`.
    pub(crate) fn new(rate: u32) -> Self {
        let check = EchoCheck::new(rate);
        let recent = vec![0; check.window()];
        Self {
            check,
            recent,
            suspect: false,
        }
    }

    /// Keeps a frame's samples; true when the stream is suspect (check it again).
    pub(crate) fn push(&mut self, samples: &[i16]) -> bool {
        let n = self.recent.len();
        let k = samples.len().min(n);
        self.recent.copy_within(k.., 0);
        self.recent[n - k..].copy_from_slice(&samples[samples.len() - k..]);
        self.suspect
    }

    /// The stream's speech ended.
    pub(crate) fn speech_ended(&mut self) {
        self.suspect = false;
    }
}

/// What [`decide`] concluded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Barge in now.
    BargeIn,
    /// Nothing to do.
    Nothing,
}

/// Judges a stream's speech (`start`: its speech just started; else a later frame of a suspect
/// stream) against the call's playback.
pub(crate) fn decide(
    pb: &dyn PlaybackTarget,
    call: CallId,
    guard: &mut Guard,
    start: bool,
    metrics: &Metrics,
) -> Decision {
    if !pb.is_playing(call) {
        if start {
            metrics.forward.barge_in_idle.inc();
        }
        guard.suspect = false;
        return Decision::Nothing;
    }
    match pb.check_echo(call, &mut guard.check, &guard.recent) {
        // at a speech start the echo must explain nearly all; later the caller must be at least
        // as loud as the echo to barge in
        Some(v) if !v.talk || (!start && v.residual_share < TALK_OVER_SHARE) => {
            if start {
                metrics.forward.barge_in_echo.inc();
                tracing::debug!(call, verdict = ?v, "speech start explained by the playback's echo");
            }
            guard.suspect = true;
            Decision::Nothing
        }
        _ => {
            guard.suspect = false;
            Decision::BargeIn
        }
    }
}

/// Barge-in: a new playback generation, the queue flushed and `StopAudio` sent; returns the
/// `barge_in` message for the call's connections (None: the call is not bidirectional).
pub(crate) fn barge_in(
    pb: &dyn PlaybackTarget,
    call: CallId,
    stream: StreamId,
    participant: Option<&str>,
    pos: u64,
    metrics: &Metrics,
) -> Option<String> {
    let generation = pb.barge_in(call)?;
    metrics.forward.barge_ins.inc();
    Some(proto::barge_in_message(
        stream,
        participant,
        pos,
        generation,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_keeps_the_latest_window() {
        let mut g = Guard::new(16_000);
        let w = g.recent.len();
        assert_eq!(w, 960);
        g.push(&[1; 320]);
        g.push(&[2; 320]);
        assert_eq!(
            (g.recent[w - 641], g.recent[w - 640], g.recent[w - 1]),
            (0, 1, 2)
        );
        // A frame longer than the window keeps its end.
        let long: Vec<i16> = (0..1200).map(|i| i as i16).collect();
        g.push(&long);
        assert_eq!((g.recent[0], g.recent[w - 1]), (240, 1199));
    }
}
