//! PURE: is a caller's speech the call's own playback coming back (echo), or a caller talking?
//!
//! Owns [`PlayedAudio`] (what the call is playing, on the call timeline: the ingress writes each
//! frame it sends to ACS into it) and [`EchoCheck`] (a single-path echo model fitted by a
//! delay/level search, and the double-talk decision barge-in relies on).
//!
//! # The model
//!
//! ACS plays the frames we send in order, each no earlier than it arrives; its echo comes back in
//! the caller's stream `delay` later, `level` dB down (a loudspeaker and a microphone, or a
//! far-end line echo). [`PlayedAudio`] lays the frames sent on the call timeline (samples of the
//! caller's streams, the positions their frames carry), each at the position the gateway had
//! heard when it sent it (`now`: the caller's audio received so far, no clock) or right after the
//! previous frame when that ended at most [`JITTER_MS`] before `now` (a jitter buffer plays a
//! stream back to back); a stop cuts what was laid ahead of `now`; positions nothing was played
//! at hold zero. Both sides of the comparison are stream positions, so a host that runs the
//! gateway late (frames read in bursts, workers behind) shifts neither against the other.
//!
//! [`EchoCheck::check`] takes the caller's latest [`WINDOW_MS`] and the played audio of the
//! [`MAX_DELAY_MS`] before it, finds the delay whose played audio best explains the caller's
//! (normalised cross-correlation on a 4:1 block-averaged copy, then refined at full rate around
//! it; a delay found once is tried first next time), fits the gain by least squares and measures
//! what the echo does not explain: the residual's share of the caller's energy. The caller is
//! talking when that share is above [`TALK_SHARE`] and the residual is above
//! [`TALK_FLOOR_DBFS`] (or the fit needs an echo louder than the playback, over
//! [`MAX_ECHO_GAIN_DB`]); a window with no played audio behind it is all caller. Linear echo (a
//! delay and a level, as a line or a fake ACS makes it) is explained to within the noise; a voice
//! over it is not. Nonlinear or filtered echo explains less and counts as talk — barge-in then
//! behaves as it did without the check.

/// Caller audio judged per check (ms).
pub(crate) const WINDOW_MS: u32 = 60;
/// Longest echo delay searched (ms).
pub(crate) const MAX_DELAY_MS: u32 = 400;
/// Residual energy share above which the caller is talking over the playback. Low: a linear echo
/// leaves next to nothing, while a voice's own short-term periodicity can make a delayed copy of
/// it fit to 70–90 % (a sustained vowel matches itself a few pitch periods later).
pub(crate) const TALK_SHARE: f32 = 0.1;
/// Once a speech start was the echo, a later window is the caller talking over it only when the
/// echo leaves at least this share unexplained (the caller at least as loud as the echo, as a
/// classic double-talk detector asks): a window whose fit merely degrades (the echo path's delay
/// drifting with scheduling, a frame laid differently) does not stop the playback.
pub(crate) const TALK_OVER_SHARE: f32 = 0.5;
/// An echo is never louder than this relative to what was played (dB).
pub(crate) const MAX_ECHO_GAIN_DB: f32 = 6.0;
/// A residual quieter than this (RMS dBFS) is never talk.
pub(crate) const TALK_FLOOR_DBFS: f32 = -55.0;
/// Played audio kept (ms): the longest delay plus the window, with room for a sink worker
/// that runs late (a check of audio older than this cannot be judged: `Verdict::stale`).
pub(crate) const KEEP_MS: u32 = MAX_DELAY_MS + WINDOW_MS + 540;
/// Frames arriving at most this late after the previous one ended play back to back (ms).
pub(crate) const JITTER_MS: u32 = 40;
/// Block averaging of the coarse delay search.
const DECIMATE: usize = 4;

/// What the call is playing, on the call timeline (see the module docs).
#[derive(Debug)]
pub struct PlayedAudio {
    rate: u32,
    /// Ring of the last `ring.len()` timeline samples; `ring[pos % len]`.
    ring: Vec<i16>,
    /// Timeline position just after the last sample laid (what ACS holds ends here).
    end: u64,
    /// Positions below this are written (zeros where nothing played); equals `end`.
    written: u64,
    /// A stop came after the last frame: nothing plays.
    stopped: bool,
}

impl PlayedAudio {
    /// An empty timeline at `rate`.
    pub fn new(rate: u32) -> Self {
        let len = (rate as usize * KEEP_MS as usize / 1000).max(1);
        Self {
            rate,
            ring: vec![0; len],
            end: 0,
            written: 0,
            stopped: false,
        }
    }

    /// The sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Zeros up to `pos` (nothing was played there).
    fn fill_to(&mut self, pos: u64) {
        let len = self.ring.len() as u64;
        if pos > self.written + len {
            self.written = pos - len;
        }
        while self.written < pos {
            let i = (self.written % len) as usize;
            self.ring[i] = 0;
            self.written += 1;
        }
    }

    /// Where a frame sent at position `now` plays: right after the previous one when that ends
    /// at most [`JITTER_MS`] before `now` (ACS's jitter buffer plays a stream back to back), else
    /// at `now`.
    fn start_of(&self, now: u64) -> u64 {
        let jitter = u64::from(self.rate * JITTER_MS / 1000);
        if self.written > 0 && !self.stopped && now <= self.end + jitter {
            self.end
        } else {
            now.max(self.end)
        }
    }

    /// A frame sent to ACS when the call was heard up to `now`: laid after what is still
    /// playing, or at `now`.
    pub fn push(&mut self, samples: &[i16], now: u64) {
        let start = self.start_of(now);
        self.fill_to(start);
        let len = self.ring.len() as u64;
        for &s in samples {
            let i = (self.written % len) as usize;
            self.ring[i] = s;
            self.written += 1;
        }
        self.end = self.written;
        self.stopped = false;
    }

    /// [`Self::push`] of PCM16LE bytes.
    pub fn push_le_bytes(&mut self, pcm: &[u8], now: u64) {
        let start = self.start_of(now);
        self.fill_to(start);
        let len = self.ring.len() as u64;
        for b in pcm.chunks_exact(2) {
            let i = (self.written % len) as usize;
            self.ring[i] = i16::from_le_bytes([b[0], b[1]]);
            self.written += 1;
        }
        self.end = self.written;
        self.stopped = false;
    }

    /// Playback stopped at position `now`: what was laid ahead of it is not played.
    pub fn stop(&mut self, now: u64) {
        self.stopped = true;
        if self.end > now {
            // Reads stop at `written`; what lies beyond is overwritten by later frames.
            self.written = now.max(self.written.saturating_sub(self.ring.len() as u64));
            self.end = self.written;
        }
    }

    /// Whether anything is still playing at position `at` (laid audio ends after it, no stop
    /// since).
    pub fn playing_at(&self, at: u64) -> bool {
        !self.stopped && self.end > at
    }

    /// Whether the ring still holds timeline position `from` (a check of older caller audio, from
    /// a worker that stalled, cannot be judged).
    pub fn holds(&self, from: u64) -> bool {
        from + self.ring.len() as u64 >= self.written
    }

    /// Copies the played audio of timeline positions `[to - out.len(), to)` into `out` (zeros
    /// where nothing played or the ring no longer holds it).
    pub fn copy_ending_at(&self, to: u64, out: &mut [i16]) {
        let len = self.ring.len() as u64;
        let n = out.len() as u64;
        let from = to.saturating_sub(n);
        let lead = (n - (to - from)) as usize;
        out[..lead].fill(0);
        for (k, p) in (from..to).enumerate() {
            out[lead + k] = if p + len >= self.written && p < self.written {
                self.ring[(p % len) as usize]
            } else {
                0
            };
        }
    }
}

/// What one check found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The caller is talking (not only the playback's echo).
    pub talk: bool,
    /// Best delay found (ms), when played audio was behind the window.
    pub delay_ms: Option<f32>,
    /// Echo gain fitted (dB), when played audio was behind the window.
    pub gain_db: Option<f32>,
    /// The residual's share of the caller's energy (1.0: nothing explained).
    pub residual_share: f32,
    /// The same share in the window's newest [`PIECES`]th (the latest frame, at 60 ms / 3):
    /// a caller who starts talking over the echo shows here first.
    pub recent_share: f32,
    /// The caller's level in that newest piece (RMS dBFS).
    pub recent_dbfs: f32,
    /// What the echo leaves of it (RMS dBFS).
    pub recent_residual_dbfs: f32,
    /// The played audio behind the window is no longer kept (the check came too late): nothing
    /// was judged.
    pub stale: bool,
}

impl Verdict {
    /// The verdict on audio older than the played audio kept.
    pub fn stale() -> Self {
        Self {
            talk: false,
            delay_ms: None,
            gain_db: None,
            residual_share: 1.0,
            recent_share: 1.0,
            recent_dbfs: super::silence::SILENCE_FLOOR_DBFS,
            recent_residual_dbfs: super::silence::SILENCE_FLOOR_DBFS,
            stale: true,
        }
    }
}

/// The double-talk check of one caller stream (see the module docs). Buffers are made once.
#[derive(Debug)]
pub struct EchoCheck {
    rate: u32,
    window: usize,
    max_delay: usize,
    /// Played audio behind the window: `max_delay + window` samples.
    reference: Vec<i16>,
    coarse_x: Vec<f32>,
    coarse_r: Vec<f32>,
    /// The delay (samples) found last time.
    last_delay: Option<usize>,
    /// `reference` holds played audio at this stream's rate.
    loaded: bool,
}

impl EchoCheck {
    /// A check for a stream at `rate`.
    pub fn new(rate: u32) -> Self {
        let window = (rate * WINDOW_MS / 1000) as usize;
        let max_delay = (rate * MAX_DELAY_MS / 1000) as usize;
        Self {
            rate,
            window,
            max_delay,
            reference: vec![0; window + max_delay],
            coarse_x: vec![0.0; window / DECIMATE],
            coarse_r: vec![0.0; (window + max_delay) / DECIMATE],
            last_delay: None,
            loaded: false,
        }
    }

    /// Samples of played audio a check needs behind the caller's last sample.
    pub fn span(&self) -> usize {
        self.reference.len()
    }

    /// Samples of caller audio a check looks at.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Judges `caller` (its last [`Self::window`] samples are used; fewer: all of them), whose
    /// last sample the gateway received at timeline position `end` of `played`.
    pub fn check(&mut self, caller: &[i16], played: &PlayedAudio, end: u64) -> Verdict {
        self.load(played, end);
        self.judge(caller)
    }

    /// Copies the played audio behind a window ending at `end` (hold `played`'s lock only for
    /// this; [`Self::judge`] does the work).
    pub fn load(&mut self, played: &PlayedAudio, end: u64) {
        self.loaded = played.rate() == self.rate;
        if self.loaded {
            played.copy_ending_at(end, &mut self.reference);
        }
    }

    /// Judges `caller` (its last [`Self::window`] samples; fewer: all of them) against the
    /// played audio [`Self::load`]ed, whose end is the caller's last sample.
    pub fn judge(&mut self, caller: &[i16]) -> Verdict {
        let x = &caller[caller.len().saturating_sub(self.window)..];
        let n = x.len();
        let ex: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let all_talk = Verdict {
            talk: rms_dbfs(ex, n) > TALK_FLOOR_DBFS,
            delay_ms: None,
            gain_db: None,
            residual_share: 1.0,
            recent_share: 1.0,
            recent_dbfs: rms_dbfs(ex, n),
            recent_residual_dbfs: rms_dbfs(ex, n),
            stale: false,
        };
        if n < DECIMATE * 8 || !self.loaded {
            return all_talk;
        }
        let span = n + self.max_delay;
        let r = &self.reference[self.reference.len() - span..];
        if r.iter().all(|&v| v == 0) {
            return all_talk;
        }
        // The window at delay d is r[span - n - d .. span - d].
        let fit = |d: usize| fit_at(x, r, d);
        let score = |d: usize| explained(fit(d));
        // Try the delay found before; search all delays when it no longer explains the window.
        let mut best = None;
        let piece = n / PIECES;
        if let Some(d0) = self.last_delay {
            let lo = d0.saturating_sub(DECIMATE * 2);
            let hi = (d0 + DECIMATE * 2).min(self.max_delay);
            let (s, d) = best_of(lo..=hi, &score);
            if s >= ex * (1.0 - f64::from(TALK_SHARE)) {
                best = Some(d);
            } else if let Some((mut v, d)) = older_explained(x, r, lo..=hi, piece, ex, self.rate) {
                // the echo path is where it was: what is new is in the newest piece (a caller
                // starting to talk, or the path jumped there)
                self.last_delay = Some(d);
                let (cx, cr) = (&mut self.coarse_x, &mut self.coarse_r);
                refit_newest(x, r, piece, cx, cr, self.max_delay, &mut v);
                return v;
            }
        }
        let d = match best {
            Some(d) => d,
            None => {
                let dc = coarse(x, r, &mut self.coarse_x, &mut self.coarse_r, self.max_delay);
                let lo = dc.saturating_sub(DECIMATE);
                let hi = (dc + DECIMATE).min(self.max_delay);
                best_of(lo..=hi, &score).1
            }
        };
        let (xr, rr) = fit(d);
        if rr <= 0.0 {
            return all_talk;
        }
        let mut g = (xr / rr).abs();
        let mut residual = (ex - xr * xr / rr).max(0.0);
        let mut share = if ex > 0.0 { residual / ex } else { 0.0 };
        // the newest piece under the same fit
        let (mut recent, mut recent_e) = {
            let gain = xr / rr;
            let seg = &r[span - piece - d..span - d];
            let (mut res, mut e) = (0f64, 0f64);
            for (&a, &b) in x[n - piece..].iter().zip(seg) {
                let (a, b) = (f64::from(a), f64::from(b));
                let v = a - gain * b;
                res += v * v;
                e += a * a;
            }
            (res, e)
        };
        if share < f64::from(TALK_SHARE) {
            self.last_delay = Some(d);
        } else if let Some(pc) =
            piecewise(x, r, &mut self.coarse_x, &mut self.coarse_r, self.max_delay)
        {
            // The playout jumped inside the window (a jitter buffer that ran dry and restarted
            // later, a frame laid differently than we assumed): each piece has its own delay.
            if pc.residual < residual {
                residual = pc.residual;
                share = if ex > 0.0 { residual / ex } else { 0.0 };
                g = pc.gain;
                (recent, recent_e) = pc.recent;
            }
        }
        let mut v = Fitted {
            d,
            gain: g,
            residual,
            share,
            recent,
            recent_e,
        }
        .verdict(ex, n, piece, self.rate);
        let (cx, cr) = (&mut self.coarse_x, &mut self.coarse_r);
        refit_newest(x, r, piece, cx, cr, self.max_delay, &mut v);
        v
    }
}

/// A newest piece the window's fit leaves more than this share of: fitted again on its own.
const REFIT_SHARE: f32 = 1e-3;

/// When the window's fit leaves more than [`REFIT_SHARE`] of the newest `piece` of `x` (and
/// more than the talk floor), fits that piece alone at its own delay and keeps the better of
/// the two in `v`'s `recent_*`: the echo path may have jumped inside the window (a jitter buffer
/// that restarted, a frame laid differently than we assumed), and then the newest audio is echo
/// at another delay, while a caller's voice is explained at none.
fn refit_newest(
    x: &[i16],
    r: &[i16],
    piece: usize,
    cx: &mut [f32],
    cr: &mut [f32],
    max_delay: usize,
    v: &mut Verdict,
) {
    if v.recent_share <= REFIT_SHARE || v.recent_residual_dbfs <= TALK_FLOOR_DBFS {
        return;
    }
    let xb = &x[x.len() - piece..];
    if piece < DECIMATE * 8 || xb.iter().all(|&s| s == 0) {
        return;
    }
    let max_delay = max_delay.min(r.len() - piece);
    let fit = |d: usize| fit_at(xb, r, d);
    let dc = coarse(xb, r, cx, cr, max_delay);
    let (_, d) = best_of(
        dc.saturating_sub(DECIMATE)..=(dc + DECIMATE).min(max_delay),
        &|d| explained(fit(d)),
    );
    let (xr, rr) = fit(d);
    let e: f64 = xb.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if rr <= 0.0 || e <= 0.0 {
        return;
    }
    let res = (e - xr * xr / rr).max(0.0);
    let share = (res / e) as f32;
    if share < v.recent_share {
        v.recent_share = share;
        v.recent_residual_dbfs = rms_dbfs(res, piece);
    }
}

/// When the window `x` without its newest `piece` samples is explained at a delay in `range`
/// (around the one found before): the verdict on the whole window under that part's fit, and
/// the delay; None otherwise.
fn older_explained(
    x: &[i16],
    r: &[i16],
    range: std::ops::RangeInclusive<usize>,
    piece: usize,
    ex: f64,
    rate: u32,
) -> Option<(Verdict, usize)> {
    let n = x.len();
    let older = &x[..n - piece];
    // the older part at delay d lines up with r ending `piece + d` before r's end
    let fit = |d: usize| fit_at(older, &r[..r.len() - piece], d);
    let (_, d) = best_of(range, &|d| explained(fit(d)));
    let (xr, rr) = fit(d);
    let eo: f64 = older.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if rr <= 0.0 || eo <= 0.0 || eo - xr * xr / rr >= eo * f64::from(TALK_SHARE) {
        return None;
    }
    let g = xr / rr;
    let span = r.len();
    let seg = &r[span - n - d..span - d];
    let (mut residual, mut recent, mut recent_e) = (0f64, 0f64, 0f64);
    for (k, (&a, &b)) in x.iter().zip(seg).enumerate() {
        let (a, b) = (f64::from(a), f64::from(b));
        let v = (a - g * b) * (a - g * b);
        residual += v;
        if k >= n - piece {
            recent += v;
            recent_e += a * a;
        }
    }
    let v = Fitted {
        d,
        gain: g,
        residual,
        share: residual / ex,
        recent,
        recent_e,
    }
    .verdict(ex, n, piece, rate);
    Some((v, d))
}

/// What a fit of the caller's window (`n` samples, energy `ex`) against what was played leaves.
struct Fitted {
    /// The delay (samples) and gain of the fit.
    d: usize,
    gain: f64,
    /// The residual energy over the window and its share of the window's energy.
    residual: f64,
    share: f64,
    /// The newest piece's residual and energy.
    recent: f64,
    recent_e: f64,
}

impl Fitted {
    /// The verdict: talk when the fit leaves a loud enough share of the window, or when the
    /// window is louder than any echo can be (a gain above [`MAX_ECHO_GAIN_DB`]).
    fn verdict(&self, ex: f64, n: usize, piece: usize, rate: u32) -> Verdict {
        let gain_db = 20.0 * (self.gain.abs().max(1e-9)).log10() as f32;
        Verdict {
            talk: (self.share > f64::from(TALK_SHARE)
                && rms_dbfs(self.residual, n) > TALK_FLOOR_DBFS)
                || (gain_db > MAX_ECHO_GAIN_DB && rms_dbfs(ex, n) > TALK_FLOOR_DBFS),
            delay_ms: Some(self.d as f32 * 1000.0 / rate as f32),
            gain_db: Some(gain_db),
            residual_share: self.share as f32,
            recent_share: if self.recent_e > 0.0 {
                (self.recent / self.recent_e) as f32
            } else {
                0.0
            },
            recent_dbfs: rms_dbfs(self.recent_e, piece),
            recent_residual_dbfs: rms_dbfs(self.recent, piece),
            stale: false,
        }
    }
}

/// What [`piecewise`] found.
struct Pieces {
    /// Summed residual energy of the pieces.
    residual: f64,
    /// The newest piece's residual and energy.
    recent: (f64, f64),
    /// The largest gain of a piece.
    gain: f64,
}

/// The cross term and the reference energy of `x` against the part of `r` it lines up with at
/// delay `d` (`r`'s end is `x`'s end at delay 0): `(Σ x·r, Σ r²)`.
fn fit_at(x: &[i16], r: &[i16], d: usize) -> (f64, f64) {
    let end = r.len() - d;
    let seg = &r[end - x.len()..end];
    let (mut xr, mut rr) = (0f64, 0f64);
    for (&a, &b) in x.iter().zip(seg) {
        let (a, b) = (f64::from(a), f64::from(b));
        xr += a * b;
        rr += b * b;
    }
    (xr, rr)
}

/// The energy of the window a least-squares gain on the reference explains: `(Σ x·r)² / Σ r²`.
fn explained((xr, rr): (f64, f64)) -> f64 {
    if rr <= 0.0 {
        0.0
    } else {
        xr * xr / rr
    }
}

/// The window `x` (whose end is `r`'s end at delay 0) fitted in [`PIECES`] pieces, each at its
/// own delay: the summed residual and the largest gain; None when the window is too short or a
/// piece has nothing behind it.
fn piecewise(
    x: &[i16],
    r: &[i16],
    cx: &mut [f32],
    cr: &mut [f32],
    max_delay: usize,
) -> Option<Pieces> {
    let len = x.len() / PIECES / DECIMATE * DECIMATE;
    if len < DECIMATE * 8 {
        return None;
    }
    let (mut residual, mut gain) = (0f64, 0f64);
    let mut recent = (0f64, 0f64);
    for p in 0..PIECES {
        // piece p ends `back` samples before the window's end
        let back = p * len;
        let xb = &x[x.len() - back - len..x.len() - back];
        let rb = &r[..r.len() - back];
        // a frame the gateway filled in (it came too late or never): digital zero, nothing to
        // explain
        if xb.iter().all(|&v| v == 0) {
            continue;
        }
        let span = rb.len();
        let fit = |d: usize| fit_at(xb, rb, d);
        let score = |d: usize| explained(fit(d));
        let max_delay = max_delay.min(span - len);
        let dc = coarse(xb, rb, cx, cr, max_delay);
        let (_, d) = best_of(
            dc.saturating_sub(DECIMATE)..=(dc + DECIMATE).min(max_delay),
            &score,
        );
        let (xr, rr) = fit(d);
        let e: f64 = xb.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        if rr <= 0.0 {
            return None;
        }
        let res = (e - xr * xr / rr).max(0.0);
        if p == 0 {
            recent = (res, e);
        }
        residual += res;
        gain = gain.max((xr / rr).abs());
    }
    Some(Pieces {
        residual,
        recent,
        gain,
    })
}

/// Pieces of the window [`EchoCheck`] fits separately when one delay does not explain it.
const PIECES: usize = 3;

/// The delay in `range` with the highest score, and that score.
fn best_of(range: std::ops::RangeInclusive<usize>, score: &impl Fn(usize) -> f64) -> (f64, usize) {
    let start = *range.start();
    range.fold((f64::NEG_INFINITY, start), |best, d| {
        let s = score(d);
        if s > best.0 {
            (s, d)
        } else {
            best
        }
    })
}

/// Coarse delay (samples) of `x` in `r` (whose end is `x`'s end at delay 0): the best
/// normalised correlation on 4:1 block averages.
fn coarse(x: &[i16], r: &[i16], cx: &mut [f32], cr: &mut [f32], max_delay: usize) -> usize {
    let avg = |src: &[i16], dst: &mut [f32]| {
        for (d, b) in dst.iter_mut().zip(src.chunks_exact(DECIMATE)) {
            *d = b.iter().map(|&v| f32::from(v)).sum::<f32>();
        }
    };
    let nx = x.len() / DECIMATE;
    let nr = r.len() / DECIMATE;
    // Align the ends: x's last block is r's last block at delay 0.
    avg(&x[x.len() - nx * DECIMATE..], &mut cx[..nx]);
    avg(&r[r.len() - nr * DECIMATE..], &mut cr[..nr]);
    let xs = &cx[..nx];
    let rs = &cr[..nr];
    let max_dc = (nr - nx).min(max_delay / DECIMATE);
    // Running energy of the reference window ending at nr - dc.
    let mut rr: f32 = rs[nr - nx..].iter().map(|v| v * v).sum();
    let mut best = (0usize, f32::NEG_INFINITY);
    for dc in 0..=max_dc {
        let seg = &rs[nr - nx - dc..nr - dc];
        if dc > 0 {
            let add = seg[0];
            let drop = rs[nr - dc];
            rr = (rr + add * add - drop * drop).max(0.0);
        }
        if rr > 0.0 {
            let xr: f32 = xs.iter().zip(seg).map(|(a, b)| a * b).sum();
            let s = xr * xr / rr;
            if s > best.1 {
                best = (dc, s);
            }
        }
    }
    best.0 * DECIMATE
}

fn rms_dbfs(energy: f64, n: usize) -> f32 {
    if n == 0 || energy <= 0.0 {
        return super::silence::SILENCE_FLOOR_DBFS;
    }
    (10.0 * (energy / n as f64 / (32768.0 * 32768.0)).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like test audio: a gliding harmonic voice with syllable envelope, deterministic.
    fn voice(n: usize, rate: u32, f0: f32, seed: u32) -> Vec<i16> {
        let mut s = seed | 1;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let f = f0 * (1.0 + 0.1 * (t * 3.0).sin());
                let env = (0.5 + 0.5 * (t * 25.0).sin()).powi(2);
                let v: f32 = (1..8)
                    .map(|h| (std::f32::consts::TAU * f * h as f32 * t).sin() / h as f32)
                    .sum();
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let n = (s % 200) as f32 - 100.0;
                (v * env * 6000.0 + n) as i16
            })
            .collect()
    }

    /// The caller stream: `bot` as played, `delay_ms` later at `level_db`, plus `talk` (added
    /// from sample `talk_at`).
    fn caller(
        bot: &[i16],
        level_db: f32,
        delay_ms: u32,
        talk: Option<(&[i16], usize)>,
    ) -> Vec<i16> {
        let d = (16_000 * delay_ms / 1000) as usize;
        let g = 10f32.powf(level_db / 20.0);
        let mut caller = vec![0i16; bot.len()];
        for i in d..bot.len() {
            caller[i] = (f32::from(bot[i - d]) * g) as i16;
        }
        if let Some((t, at)) = talk {
            for (c, v) in caller[at..].iter_mut().zip(t) {
                *c = c.saturating_add(*v);
            }
        }
        caller
    }

    /// Plays `bot` in real time (a frame every 20 ms, one frame ahead) and checks the caller's
    /// stream every frame from 0.5 s; returns (end sample, verdict) per check.
    fn run(bot: &[i16], caller: &[i16]) -> Vec<(usize, Verdict)> {
        let mut p = PlayedAudio::new(16_000);
        let mut c = EchoCheck::new(16_000);
        let mut sent = 0;
        let mut out = Vec::new();
        for end in (320..bot.len()).step_by(320) {
            while sent < bot.len() && sent <= end {
                p.push(&bot[sent..(sent + 320).min(bot.len())], sent as u64);
                sent += 320;
            }
            if end >= 8_000 {
                out.push((end, c.check(&caller[..end], &p, end as u64)));
            }
        }
        out
    }

    #[test]
    fn echo_alone_is_explained_at_each_level_and_delay() {
        let bot = voice(16_000 * 2, 16_000, 140.0, 3);
        for (level, delay) in [(-6.0, 40), (-10.0, 100), (-20.0, 200), (0.0, 390)] {
            let caller = caller(&bot, level, delay, None);
            for (end, v) in run(&bot, &caller) {
                assert!(!v.talk, "{level} dB / {delay} ms at {end}: {v:?}");
                let d = v.delay_ms.unwrap();
                assert!((d - delay as f32).abs() <= 1.0, "{d} vs {delay}");
                assert!((v.gain_db.unwrap() - level).abs() < 1.0, "{v:?}");
            }
        }
    }

    #[test]
    fn a_voice_over_the_echo_is_talk_within_a_frame_or_two() {
        let bot = voice(16_000 * 2, 16_000, 140.0, 3);
        let other = voice(16_000, 16_000, 210.0, 9);
        for (level, delay) in [(-6.0, 40), (-10.0, 100), (-20.0, 200)] {
            let onset = 16_000;
            let caller = caller(&bot, level, delay, Some((&other, onset)));
            let mut first = None;
            for (end, v) in run(&bot, &caller) {
                if end <= onset {
                    assert!(!v.talk, "{level}/{delay} before the onset at {end}: {v:?}");
                } else if v.talk && first.is_none() {
                    first = Some(end - onset);
                }
            }
            let first = first.expect("talk found");
            assert!(
                first <= 640,
                "{level}/{delay}: talk found {first} samples in"
            );
        }
    }

    #[test]
    fn a_jump_of_the_echo_path_leaves_the_newest_frame_explained_and_a_voice_not() {
        let bot = voice(16_000 * 2, 16_000, 140.0, 3);
        // the echo at 100 ms until 1.0 s, at 160 ms after it (a jitter buffer that restarted)
        let (a, b) = (caller(&bot, -6.0, 100, None), caller(&bot, -6.0, 160, None));
        let jump = 16_000;
        let mut x: Vec<i16> = a[..jump].to_vec();
        x.extend_from_slice(&b[jump..]);
        let end = jump + 320;
        // played as it goes: up to the window's end
        let mut p = PlayedAudio::new(16_000);
        for k in (0..end).step_by(320) {
            p.push(&bot[k..k + 320], k as u64);
        }
        let mut c = EchoCheck::new(16_000);
        // settle on 100 ms, then a window whose older part is at 100 ms and newest frame at 160
        c.check(&x[..jump], &p, jump as u64);
        let v = c.check(&x[..end], &p, end as u64);
        assert!(v.recent_share < 1e-3, "{v:?}");
        // a voice 20 dB under the echo in that newest frame is not explained at any delay
        let other = voice(320, 16_000, 210.0, 9);
        let mut y = x[..end].to_vec();
        for (s, o) in y[jump..].iter_mut().zip(&other) {
            *s = s.saturating_add(o / 10);
        }
        let mut c = EchoCheck::new(16_000);
        c.check(&x[..jump], &p, jump as u64);
        let v = c.check(&y, &p, end as u64);
        assert!(v.recent_share > 3e-3, "{v:?}");
    }

    #[test]
    fn nothing_played_means_talk_and_silence_is_not() {
        let p = PlayedAudio::new(16_000);
        let mut c = EchoCheck::new(16_000);
        let talk = voice(2000, 16_000, 180.0, 5);
        assert!(c.check(&talk, &p, 16_000).talk);
        assert!(!c.check(&[0; 960], &p, 16_000).talk);
    }

    #[test]
    fn played_audio_is_laid_in_order_and_a_stop_cuts_the_rest() {
        let mut p = PlayedAudio::new(16_000);
        // Three frames sent at once (a burst): laid one after the other from 0.
        for k in 0..3 {
            p.push(&[k as i16 + 1; 320], 0);
        }
        assert!(p.playing_at(800));
        assert!(!p.playing_at(960));
        let mut out = vec![0; 960];
        p.copy_ending_at(960, &mut out);
        assert_eq!((out[0], out[320], out[959]), (1, 2, 3));
        // Stopped at 30 ms (480): the rest of frame 2 and frame 3 are not played.
        p.stop(480);
        assert!(!p.playing_at(496));
        p.copy_ending_at(960, &mut out);
        assert_eq!((out[0], out[479], out[480], out[959]), (1, 2, 0, 0));
        // Sent later, after a pause (at 100 ms, 1600): laid there, zeros before it.
        p.push(&[9; 320], 1600);
        let mut out = vec![7; 2000];
        p.copy_ending_at(1920, &mut out);
        assert_eq!(
            (out[0], out[80], out[80 + 1599], out[80 + 1600]),
            (0, 1, 0, 9)
        );
    }
}
