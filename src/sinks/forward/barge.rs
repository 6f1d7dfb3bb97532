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
//!    frame where the echo leaves at least half of the energy unexplained, in the whole window
//!    or in its newest frame ([`TALK_OVER_SHARE`]); a re-check of audio older than the
//!    playback's record (a stalled worker) keeps the echo verdict.
//!
//! The caller's audio is placed on the playback's timeline by its stream position (see
//! [`Guard::push`]), not by when the worker got to it.
//! 3. otherwise: barge-in — a new playback generation, the queue flushed, `StopAudio` to ACS
//!    ([`PlaybackTarget::barge_in`]) and `barge_in` (with the `generation`) to every connection
//!    of the call, ahead of queued audio.

use super::proto;
use crate::metrics::Metrics;
use crate::pipeline::echo::{EchoCheck, TALK_OVER_SHARE};
use crate::pipeline::frame::{CallId, StreamId};
use crate::pipeline::playback::PlaybackTarget;
use std::time::{Duration, Instant};

/// One caller stream's barge-in state.
#[derive(Debug)]
pub(crate) struct Guard {
    check: EchoCheck,
    /// The stream's latest samples (the check's window), oldest first.
    recent: Vec<i16>,
    /// In speech the echo explained: re-check every frame.
    suspect: bool,
    rate: u32,
    /// Stream position just after `recent`'s last sample.
    end: u64,
    /// The instant of stream position 0 as the least-delayed frame puts it (see [`Self::push`]).
    anchor: Option<Instant>,
    /// When the last frame was pushed.
    last_push: Option<Instant>,
}

/// How fast the anchor may move later (clock drift between ACS and this host): 1 ms per second.
const ANCHOR_CREEP: u32 = 1_000;

impl Guard {
    /// State for a stream at `rate`.
    pub(crate) fn new(rate: u32) -> Self {
        let check = EchoCheck::new(rate);
        let recent = vec![0; check.window()];
        Self {
            check,
            recent,
            suspect: false,
            rate: rate.max(1),
            end: 0,
            anchor: None,
            last_push: None,
        }
    }

    /// Keeps a frame's samples (`pos`: its first sample's stream position; `now`: when this
    /// worker got it); true when the stream is suspect (check it again).
    ///
    /// The caller's audio is placed on the playback's timeline by its stream position, not by
    /// when the frame got here: a frame reaches the sink worker late and in batches on a loaded
    /// host, so `now` says little about one frame, but the least-delayed frame so far pins where
    /// the stream's position 0 lies (`now - end / rate`, its minimum over the frames; it may
    /// move later by at most [`ANCHOR_CREEP`] to follow clock drift).
    pub(crate) fn push(&mut self, samples: &[i16], pos: u64, now: Instant) -> bool {
        let n = self.recent.len();
        let k = samples.len().min(n);
        self.recent.copy_within(k.., 0);
        self.recent[n - k..].copy_from_slice(&samples[samples.len() - k..]);
        self.end = pos.saturating_add(samples.len() as u64);
        if let Some(c) = now.checked_sub(self.span(self.end)) {
            self.anchor = Some(match self.anchor {
                Some(a) if a <= c => {
                    let dt = self
                        .last_push
                        .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
                    (a + dt / ANCHOR_CREEP).min(c)
                }
                _ => c,
            });
        }
        self.last_push = Some(now);
        self.suspect
    }

    fn span(&self, samples: u64) -> Duration {
        Duration::from_micros(samples.saturating_mul(1_000_000) / u64::from(self.rate))
    }

    /// When the caller's last sample was captured, by its stream position (see [`Self::push`]).
    fn caller_end(&self) -> Option<Instant> {
        self.anchor.map(|a| a + self.span(self.end))
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
    let verdict = guard
        .caller_end()
        .and_then(|at| pb.check_echo(call, &mut guard.check, &guard.recent, at));
    match verdict {
        // at a speech start the echo must explain nearly all; later the caller must be at least
        // as loud as the echo to barge in
        Some(v)
            if !v.talk
                || (!start
                    && v.residual_share < TALK_OVER_SHARE
                    && v.recent_share < TALK_OVER_SHARE) =>
        {
            if start {
                metrics.forward.barge_in_echo.inc();
                tracing::debug!(call, verdict = ?v, "speech start explained by the playback's echo");
            }
            guard.suspect = true;
            Decision::Nothing
        }
        // a re-check of audio older than the playback's record (a worker that stalled): keep
        // the verdict the echo had
        None if !start && guard.suspect => Decision::Nothing,
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
        let t0 = Instant::now();
        g.push(&[1; 320], 0, t0);
        g.push(&[2; 320], 320, t0);
        assert_eq!(
            (g.recent[w - 641], g.recent[w - 640], g.recent[w - 1]),
            (0, 1, 2)
        );
        // A frame longer than the window keeps its end.
        let long: Vec<i16> = (0..1200).map(|i| i as i16).collect();
        g.push(&long, 640, t0);
        assert_eq!((g.recent[0], g.recent[w - 1]), (240, 1199));
    }

    #[test]
    fn the_caller_is_placed_by_stream_position_not_by_arrival() {
        let mut g = Guard::new(16_000);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // frame k (20 ms) ends at t0 + 20(k+1) ms; frames 0-4 arrive on time, 5-9 all at once
        // 150 ms late (a stalled worker): each is still placed where its position says
        for k in 0..10u64 {
            let due = t0 + ms(20 * (k + 1));
            let now = if k < 5 { due } else { t0 + ms(350) };
            g.push(&[0; 320], k * 320, now);
            // (the anchor may creep 1 ms per second of waiting: 0.25 ms here)
            let end = g.caller_end().unwrap();
            assert!(
                end >= due && end <= due + ms(1),
                "frame {k}: {end:?} vs {due:?}"
            );
        }
        // a frame that comes earlier than any before pins the anchor earlier
        g.push(&[0; 320], 3200, t0 + ms(215));
        assert_eq!(g.caller_end(), Some(t0 + ms(215)));
        // later ones do not move it back by more than the drift allowance
        g.push(&[0; 320], 3520, t0 + ms(10_000));
        let end = g.caller_end().unwrap();
        assert!(
            end >= t0 + ms(235) && end <= t0 + ms(235) + ms(11),
            "{end:?}"
        );
    }
}
