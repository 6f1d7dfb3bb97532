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
//!    while something plays — a caller who starts talking over the echo barges in on the second
//!    frame in a row whose newest 20 ms the echo does not explain: what the echo leaves there
//!    is [`TALK_OVER_MARGIN_DB`] above what it leaves of the echo alone (the stream's
//!    residual floor, learnt from the frames the echo explained; at least
//!    [`TALK_OVER_MIN_SHARE`] of the energy, at most [`TALK_OVER_SHARE`]) and above the
//!    talk floor (or the fit needs an echo louder than the playback). A linear echo
//!    (a line, `acs-sim`) leaves next to nothing, so a caller 20 dB under it is heard on their
//!    first frames; a poorer echo path raises the floor and asks for a louder caller. Two frames
//!    in a row, because a frame where the echo path jumped (a jitter buffer restarting) is
//!    misfitted once, rarely twice. Audio older than the playback's record (a sink worker
//!    running late) is not judged: no barge-in, the stream stays suspect.
//! 3. otherwise: barge-in — a new playback generation, the queue flushed, `StopAudio` to ACS
//!    ([`PlaybackTarget::barge_in`]) and `barge_in` (with the `generation`) to every connection
//!    of the call, ahead of queued audio.
//!
//! The caller's audio is placed on the playback's timeline by its call-timeline position (see
//! [`Guard::push`]), not by when the worker got to it.

use super::proto;
use crate::metrics::Metrics;
use crate::pipeline::echo::{
    EchoCheck, Verdict, MAX_ECHO_GAIN_DB, TALK_FLOOR_DBFS, TALK_OVER_SHARE,
};
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
    /// Where the stream starts on the call timeline.
    offset: u64,
    /// Stream position just after `recent`'s last sample.
    end: u64,
    /// What the echo alone leaves of the newest piece (dB of its energy, smoothed over the
    /// frames the echo explained); None until one was loud enough to tell.
    floor_db: Option<f32>,
    /// Frames in a row (of suspect speech) the echo did not explain.
    strikes: u8,
}

/// How far above the residual floor the newest piece's residual must be to count (dB).
pub(crate) const TALK_OVER_MARGIN_DB: f32 = 20.0;
/// The least residual share of the newest piece that counts as the caller talking over the
/// echo (−25 dB), however well the echo was explained before.
pub(crate) const TALK_OVER_MIN_SHARE: f32 = 0.003;
/// Frames in a row the echo must leave unexplained for a barge-in (see the module docs).
pub(crate) const TALK_OVER_FRAMES: u8 = 2;
/// A newest piece quieter than this (RMS dBFS) says nothing about the residual floor.
const FLOOR_LEVEL_DBFS: f32 = -50.0;
/// Weight of a new frame in the residual floor.
const FLOOR_ALPHA: f32 = 0.2;

impl Guard {
    /// State for a stream at `rate` starting at call-timeline position `offset`.
    pub(crate) fn new(rate: u32, offset: u64) -> Self {
        let check = EchoCheck::new(rate);
        let recent = vec![0; check.window()];
        Self {
            check,
            recent,
            suspect: false,
            offset,
            end: 0,
            floor_db: None,
            strikes: 0,
        }
    }

    /// The newest piece's residual share above which the caller is talking over the echo.
    fn talk_over_share(&self) -> f32 {
        self.floor_db.map_or(TALK_OVER_SHARE, |f| {
            10f32
                .powf((f + TALK_OVER_MARGIN_DB) / 10.0)
                .clamp(TALK_OVER_MIN_SHARE, TALK_OVER_SHARE)
        })
    }

    /// Whether a suspect frame's verdict says the caller talks over the echo: the newest piece
    /// is not explained (older ones may be misfitted after the echo path jumped: that is no
    /// caller starting to talk), or the fit needs an echo louder than the playback.
    fn talks_over(&self, v: &Verdict) -> bool {
        (v.recent_share > self.talk_over_share() && v.recent_residual_dbfs > TALK_FLOOR_DBFS)
            || (v.talk && v.gain_db.is_some_and(|g| g > MAX_ECHO_GAIN_DB))
    }

    /// The echo explained the newest piece: learn what it leaves.
    fn learn_floor(&mut self, v: &Verdict) {
        if v.recent_dbfs < FLOOR_LEVEL_DBFS || v.delay_ms.is_none() {
            return;
        }
        let db = 10.0 * v.recent_share.max(1e-9).log10();
        self.floor_db = Some(match self.floor_db {
            Some(f) => f + FLOOR_ALPHA * (db - f),
            None => db,
        });
    }

    /// Keeps a frame's samples (`pos`: its first sample's stream position); true when the
    /// stream is suspect (check it again). The check places the window by its position on the
    /// call timeline ([`PlaybackTarget::check_echo`]), not by when this worker got the frame:
    /// a frame reaches a sink worker late and in batches on a loaded host.
    pub(crate) fn push(&mut self, samples: &[i16], pos: u64) -> bool {
        let n = self.recent.len();
        let k = samples.len().min(n);
        self.recent.copy_within(k.., 0);
        self.recent[n - k..].copy_from_slice(&samples[samples.len() - k..]);
        self.end = pos.saturating_add(samples.len() as u64);
        self.suspect
    }

    /// The stream's speech ended.
    pub(crate) fn speech_ended(&mut self) {
        self.suspect = false;
    }
}

/// What [`decide`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    let verdict = pb.check_echo(
        call,
        &mut guard.check,
        &guard.recent,
        guard.offset + guard.end,
    );
    match verdict {
        // audio older than the playback's record (a worker that runs late): not judged, and no
        // reason to stop the bot; the following frames are checked as they come
        Some(v) if v.stale => {
            guard.suspect = true;
            Decision::Nothing
        }
        // at a speech start the echo must explain nearly all
        Some(v) if start && !v.talk => {
            metrics.forward.barge_in_echo.inc();
            tracing::debug!(call, verdict = ?v, "speech start explained by the playback's echo");
            guard.learn_floor(&v);
            guard.suspect = true;
            guard.strikes = 0;
            Decision::Nothing
        }
        // later the echo must leave the newest frame unexplained twice in a row
        Some(v) if !start => {
            if !guard.talks_over(&v) {
                guard.learn_floor(&v);
                guard.strikes = 0;
                return Decision::Nothing;
            }
            guard.strikes += 1;
            tracing::debug!(call, verdict = ?v, strikes = guard.strikes, "the echo leaves the caller's newest frame unexplained");
            if guard.strikes < TALK_OVER_FRAMES {
                return Decision::Nothing;
            }
            guard.suspect = false;
            guard.strikes = 0;
            Decision::BargeIn
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
        let mut g = Guard::new(16_000, 0);
        let w = g.recent.len();
        assert_eq!(w, 960);
        g.push(&[1; 320], 0);
        g.push(&[2; 320], 320);
        assert_eq!(
            (g.recent[w - 641], g.recent[w - 640], g.recent[w - 1]),
            (0, 1, 2)
        );
        // A frame longer than the window keeps its end.
        let long: Vec<i16> = (0..1200).map(|i| i as i16).collect();
        g.push(&long, 640);
        assert_eq!((g.recent[0], g.recent[w - 1]), (240, 1199));
    }

    /// A playback target that plays and answers the echo check with scripted verdicts.
    struct Scripted(std::sync::Mutex<Vec<Verdict>>);

    impl PlaybackTarget for Scripted {
        fn is_bidirectional(&self, _call: CallId) -> bool {
            true
        }
        fn enqueue(
            &self,
            _call: CallId,
            _samples: &[i16],
            _rate: u32,
        ) -> crate::pipeline::playback::Enqueued {
            crate::pipeline::playback::Enqueued::Queued
        }
        fn stop(&self, _call: CallId) -> bool {
            true
        }
        fn sample_rate(&self, _call: CallId) -> Option<u32> {
            Some(16_000)
        }
        fn is_playing(&self, _call: CallId) -> bool {
            true
        }
        fn check_echo(
            &self,
            _call: CallId,
            _check: &mut EchoCheck,
            _caller: &[i16],
            _caller_end: u64,
        ) -> Option<Verdict> {
            let mut v = self.0.lock().unwrap();
            (!v.is_empty()).then(|| v.remove(0))
        }
    }

    /// A verdict on a frame whose newest piece (at `dbfs`) the echo leaves `share` of.
    fn verdict(share: f32, dbfs: f32) -> Verdict {
        Verdict {
            talk: false,
            delay_ms: Some(100.0),
            gain_db: Some(-6.0),
            residual_share: share / 3.0,
            recent_share: share,
            recent_dbfs: dbfs,
            recent_residual_dbfs: dbfs + 10.0 * share.log10(),
            stale: false,
        }
    }

    fn decisions(script: Vec<Verdict>) -> Vec<Decision> {
        let n = script.len();
        let pb = Scripted(std::sync::Mutex::new(script));
        let metrics = Metrics::new();
        let mut g = Guard::new(16_000, 0);
        (0..n)
            .map(|k| decide(&pb, 1, &mut g, k == 0, &metrics))
            .collect()
    }

    #[test]
    fn a_quiet_caller_over_a_well_explained_echo_barges_in_on_the_second_frame() {
        use Decision::{BargeIn, Nothing};
        // the echo alone leaves 1e-7; then a caller 20 dB under it (share 0.01, at -41 dBFS)
        let mut script = vec![verdict(1e-7, -20.0); 6];
        script.extend([verdict(0.01, -21.0), verdict(0.01, -21.0)]);
        let d = decisions(script);
        assert_eq!(d[..7], [Nothing; 7]);
        assert_eq!(d[7], BargeIn);
        // one misfitted frame (the echo path jumped) is not enough
        let mut script = vec![verdict(1e-7, -20.0); 6];
        script.extend([
            verdict(0.9, -21.0),
            verdict(1e-7, -20.0),
            verdict(0.9, -21.0),
        ]);
        assert!(decisions(script).iter().all(|d| *d == Nothing));
        // nor is a residual under the talk floor
        let mut script = vec![verdict(1e-7, -20.0); 6];
        script.extend([verdict(0.01, -60.0); 3]);
        assert!(decisions(script).iter().all(|d| *d == Nothing));
    }

    #[test]
    fn a_poorly_explained_echo_asks_for_a_caller_as_loud_as_the_echo() {
        use Decision::{BargeIn, Nothing};
        // nonlinear echo: 10 % left of it; a caller at 20 % is no barge-in, at 60 % it is
        let mut script = vec![verdict(0.1, -20.0); 12];
        script.extend([verdict(0.2, -20.0); 3]);
        assert!(decisions(script).iter().all(|d| *d == Nothing));
        let mut script = vec![verdict(0.1, -20.0); 12];
        script.extend([verdict(0.6, -20.0); 2]);
        assert_eq!(decisions(script)[13], BargeIn);
    }

    #[test]
    fn audio_older_than_the_playback_record_is_not_judged() {
        use Decision::Nothing;
        // a speech start checked too late: no barge-in, and the stream stays suspect
        let pb = Scripted(std::sync::Mutex::new(vec![Verdict::stale()]));
        let metrics = Metrics::new();
        let mut g = Guard::new(16_000, 0);
        assert_eq!(decide(&pb, 1, &mut g, true, &metrics), Nothing);
        assert!(g.push(&[0; 320], 0));
    }
}
