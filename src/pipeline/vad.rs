//! PURE: per-frame speech/non-speech classifiers behind the silence detector.
//!
//! Owns [`AdaptiveVad`] (the default: sub-band energies against noise floors it tracks per
//! stream), [`NeuralVad`] (Silero VAD's network, its weights compiled into the binary) and
//! [`DtmfDetector`] (Goertzel on the eight DTMF frequencies: a keypad tone is never speech).
//! [`super::silence::SilenceDetector`] turns their per-frame decisions into speech edges.
//!
//! # Adaptive detector
//!
//! Per frame it computes, in vectorised passes over the frame (the previous frame's last samples
//! feed the filters across the frame boundary; the buffers live in the detector, so nothing is
//! zeroed or allocated per frame), the energies of five fixed integer FIR bands: full band (the
//! level only), first difference (removes DC, hum and brown noise), `x[n] - x[n-2]` (a band
//! around a quarter of the rate), a DC-free low-mid band (`[1,1,1,1,-1,-1,-1,-1]`, about
//! 0.5–3 kHz at 16 kHz) and a low band (8 ones then 8 minus ones, about 250–900 Hz at 16 kHz:
//! the first formant and the pitch harmonics, where voiced speech stands out of white and pink
//! noise). Each band's noise floor is the minimum of its smoothed log energy over the last
//! ~1.3 s (minimum statistics over 8 sub-windows of 8 frames), so the floor follows the stream's
//! noise up or down within about a second and a half; a second estimate, the mean over frames
//! near the floor (within twice the swing and at least `NOISE_FEED_MIN_DB`, so a mean that sits
//! on its floor can still learn the swing; faster in a stream's first 20 frames), compensates the
//! minimum's bias and measures how far the noise swings. A frame is voiced when its level is
//! above [`ABS_FLOOR_DBFS`] and its sub-band SNRs over the noise mean, less a margin that grows
//! with the swing, are high enough (a weighted sum over the bands, the low band weighing most, or
//! one band alone).
//!
//! Babble (a crowd's voices) fools sub-band SNR: it swings like speech. So the low band is also
//! kept at 4 kHz (every 4th output at 16 kHz, every 6th at 24 kHz: its 16 taps are the
//! anti-alias filter) and each frame gets a periodicity, the highest normalised autocorrelation
//! of its last 24 ms at the pitch lags (80–400 Hz): near 1 for one voice's voiced sounds. The
//! mean periodicity of the frames the energy calls noise tells babble (0.45–0.55) from white,
//! pink, brown noise and hum (0.2–0.35); in babble a frame the energy calls speech must also be
//! periodic ([`PERIODIC_GATE`]) unless its excess is large. A stream starts as if its noise were
//! babble and leaves that mode once its noise frames prove aperiodic (about 0.4 s). A hangover of
//! 6 frames keeps the weak end of a word: it voices frames whose bands are still above their
//! noise's swing (a weighted sum, `HANG_SUM_DB`) and counts down on every frame that is not
//! clearly voiced, so one weaker frame does not end it.
//! Logarithms come from the float's exponent and a polynomial. Frames that are a DTMF dual tone
//! are unvoiced, and so is the frame after one (the filters still ring with the tone); only the
//! first voiced frame of a run is checked (a keypad tone starts after a pause), so the check
//! costs nothing in running speech. No allocation, no FFT.
//!
//! # Neural detector
//!
//! [`NeuralVad`] (in `vad/neural.rs`) runs Silero VAD, a recurrent network trained on thousands
//! of hours of speech and noise, through tract (pure-Rust ONNX inference) on 32 ms chunks at
//! 16 kHz; 24 kHz input is brought to 16 kHz by the 2/3 polyphase low-pass resampler below.
//! See that module for the loading, streaming and allocation details.

mod neural;

pub use neural::{
    warm_up as warm_up_neural, ModelError, NeuralVad, CONFIDENT, FLOOR_MARGIN_DB, VETO_BELOW,
};

/// Frames quieter than this (RMS dBFS) are never speech for the adaptive detector.
pub const ABS_FLOOR_DBFS: f32 = -60.0;

/// The eight DTMF frequencies (Hz): four rows, then four columns.
pub const DTMF_FREQS: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

/// Samples of history the band filters need (the longest has 8 taps).
const HIST: usize = 15;
const BANDS: usize = 5;
/// Sub-windows of the minimum-statistics search, and frames in each.
const SUBWINDOWS: usize = 8;
const SUBWINDOW_FRAMES: u32 = 8;
/// Smoothing of the per-band log energy before the minimum search (weight of the old value).
const SMOOTH: f32 = 0.7;
/// dB a band must exceed its noise by (on top of [`SPREAD_WEIGHT`] of its swing) before it counts
/// toward the summed SNR.
const BAND_MARGIN_DB: f32 = 1.2;
/// Share of the noise's swing (mean minus minimum) added to the margin: the mean already sits
/// above most noise frames, so the whole swing on top of it cost quiet speech.
const SPREAD_WEIGHT: f32 = 0.4;
/// Weight of each band's excess in the sum (the level band takes no part).
const BAND_WEIGHT: [f32; BANDS] = [0.0, 1.0, 0.5, 1.0, 1.5];
/// Summed excess (dB over the margins, all bands) that makes a frame voiced.
const SUM_THRESHOLD_DB: f32 = 3.0;
/// One band this far above its floor makes a frame voiced on its own.
const SINGLE_THRESHOLD_DB: f32 = 5.0;
/// Weight of the old value in the per-band noise mean (updated on unvoiced frames).
const NOISE_MEAN_KEEP: f32 = 0.95;
/// ...and in a stream's first [`NOISE_START_FRAMES`] frames, so the mean leaves the first frame's
/// value quickly (one low first frame made every later noise frame look like speech).
const NOISE_MEAN_KEEP_START: f32 = 0.8;
const NOISE_START_FRAMES: u32 = 20;
/// A frame feeds the noise mean when it is within twice the swing, and at least this many dB, of
/// the floor (plus the margin). Without the minimum a band whose mean sat on its floor could never
/// learn how far its noise swings: babble's frames all looked like speech.
const NOISE_FEED_MIN_DB: f32 = 2.0;
/// Frames kept voiced after the last clearly voiced one, while the bands are still above their noise.
const HANGOVER_FRAMES: u8 = 6;
/// A hangover frame needs this weighted sum (dB, [`BAND_WEIGHT`]) of the bands' SNR above their
/// noise's swing: one band alone poking above its swing (any noise does, often) is not enough.
const HANG_SUM_DB: f32 = 0.75;
/// Mean periodicity of the noise above which it is babble (white, pink, brown noise and hum
/// frames measure 0.2-0.35, their means 0.19-0.28 on the evaluation set; a crowd of voices
/// 0.45-0.55, mean 0.49).
const BABBLE_PERIODICITY: f32 = 0.34;
/// In babble, a frame is voiced only at this periodicity or more...
pub const PERIODIC_GATE: f32 = 0.8;
/// ...or with this summed excess (dB).
const BABBLE_OVERRIDE_DB: f32 = 25.0;
/// Weight of the old value in the noise's mean periodicity (updated on frames not called speech).
const NOISE_PERIOD_KEEP: f32 = 0.95;
/// The noise's mean periodicity at a stream's start: babble, the cautious guess. Until about
/// 0.4 s of noise frames has shown otherwise, a frame needs periodicity or a large excess; a
/// start that trusted the energy alone called the first words of babble speech.
const NOISE_PERIOD_START: f32 = 0.4;
/// Lowest energy a floor can hold (keeps logs finite in digital silence): -110 dBFS per sample.
const MIN_ENERGY: f32 = 1e-11 * 32768.0 * 32768.0;

/// `10·log10(x)` (x floored at [`MIN_ENERGY`]) to within 0.001 dB, from the float's exponent
/// and a polynomial for the log of its mantissa: a fraction of `log10`'s cost.
fn db(x: f32) -> f32 {
    let bits = x.max(MIN_ENERGY).to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    // ln on [1, 2): minimax polynomial, error < 1e-4.
    let ln_m = -1.741_793_9
        + (2.821_202_6 + (-1.469_956_8 + (0.447_179_55 - 0.056_570_85 * m) * m) * m) * m;
    10.0 * (e as f32 * std::f32::consts::LOG10_2 + ln_m * std::f32::consts::LOG10_E)
}

/// Samples of the frame buffer: the longest ACS frame and the filters' history.
const BUF: usize = super::frame::MAX_FRAME_SAMPLES + HIST;

/// The band filters' working memory for one frame. It is scratch, one per thread ([`SCRATCH`]):
/// only the last [`HIST`] samples (and the decimated low band) carry over from frame to frame, and
/// those live in the stream's detector. A per-stream copy (4 KiB) meant 60-odd cold cache lines written per frame when
/// hundreds of streams take turns.
#[derive(Clone, Debug)]
struct BandBuf {
    /// The frame as f32 with the previous frame's last HIST samples in front.
    x: [f32; BUF],
    /// Running 4-sample sums of `x` (`s4[i] = x[i] + x[i-1] + x[i-2] + x[i-3]`, from i = 3).
    s4: [f32; BUF],
    /// The low band's outputs over the frame (`band_sums` writes them; every `dec`-th feeds the
    /// periodicity).
    low: [f32; super::frame::MAX_FRAME_SAMPLES],
}

thread_local! {
    /// The thread's [`BandBuf`]: every detector on the thread borrows it for one frame.
    static SCRATCH: std::cell::RefCell<BandBuf> = const {
        std::cell::RefCell::new(BandBuf {
            x: [0.0; BUF],
            s4: [0.0; BUF],
            low: [0.0; super::frame::MAX_FRAME_SAMPLES],
        })
    };
}

/// Rate (Hz) of the decimated low band the periodicity is measured on.
const PITCH_RATE: usize = 4_000;
/// Window of the periodicity measure (samples at [`PITCH_RATE`]: 24 ms).
const PITCH_WINDOW: usize = 96;
/// Pitch lags searched (samples at [`PITCH_RATE`]): 400 Hz down to 80 Hz.
const PITCH_LAG_MIN: usize = 10;
const PITCH_LAG_MAX: usize = 50;
/// Decimated samples kept: the window and the longest lag (146), rounded up to whole 32-byte
/// lanes. A longer frame only shifts older samples through; the measure reads the newest 146.
/// (256 kept a whole 60 ms frame: 0.4 KiB more per stream to move and to miss in cache, for
/// samples nothing read.)
const PITCH_HIST: usize = (PITCH_WINDOW + PITCH_LAG_MAX).next_multiple_of(8);
const _: () = assert!(PITCH_HIST >= PITCH_WINDOW + PITCH_LAG_MAX);
/// Pitch lags searched.
const LAGS: usize = PITCH_LAG_MAX - PITCH_LAG_MIN + 1;

// The detector's two vector loops (band energies, pitch correlations) each have two builds: a
// portable one, the definition, and one in AVX vectors that runs where the CPU has AVX2. Both do
// the same operations per lane in the same order (Rust never fuses a multiply and an add), so
// their results are bit-identical and a detector's decisions never depend on the CPU (the test
// `avx2_builds_are_bit_identical_to_the_baseline`). They were the largest user-space item of
// the gateway at 400 real-time streams and in a flood (README "Performance").

/// Defines `$name` and `$avx2`, the two builds of the `#[inline(always)]` function `$body`,
/// which takes its vector kernel as its last argument: `$avx2` is compiled for AVX2 and passes
/// the AVX kernel (`$wide`, callable there), and `$name` runs `$avx2` where the CPU has AVX2 and
/// the portable build with the portable kernel (`$portable`) elsewhere.
macro_rules! avx2_dispatch {
    (
        $(#[$doc:meta])*
        fn $name:ident / $avx2:ident => $body:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
        kernels $portable:expr, $wide:expr
    ) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: `$avx2` only needs AVX2, which the CPU was just found to have.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg,)* $portable)
        }

        #[doc = concat!("[`", stringify!($name), "`] compiled for AVX2, with its AVX kernel.")]
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($arg: $ty),*) -> $ret {
            $body($($arg,)* $wide)
        }
    };
}

/// Pitch lags whose correlations are computed: [`LAGS`] rounded up to whole groups of four
/// (the last three are not read).
const LAGS_PADDED: usize = LAGS.next_multiple_of(4);
const _: () = assert!(PITCH_HIST - PITCH_WINDOW >= PITCH_LAG_MIN + LAGS_PADDED - 1);

avx2_dispatch! {
    /// The highest normalised autocorrelation of the newest [`PITCH_WINDOW`] samples of `y` at the
    /// pitch lags: near 1 for one voice's voiced sounds, low for noise and for a crowd's babble
    /// (many voices, no common period).
    fn periodicity / periodicity_avx2 => periodicity_body(y: &[f32; PITCH_HIST]) -> f32;
    kernels correlations, |y| correlations_avx2(y)
}

/// Sum of squares of `x` in eight lanes: lane `l` of each eight-sample chunk adds to accumulator
/// `l`, leftovers to lane 0 in order, lanes summed last (the result's definition, the same in
/// every build).
#[inline(always)]
fn sum_sq_lanes(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l] * c[l];
        }
    }
    for v in chunks.remainder() {
        acc[0] += v * v;
    }
    acc.iter().sum()
}

/// Correlations of the newest [`PITCH_WINDOW`] samples of `y` with the window `lag` samples
/// earlier, for lags `PITCH_LAG_MIN..PITCH_LAG_MIN + LAGS_PADDED`: eight lanes per lag (lane `l`
/// of each chunk into accumulator `l`, lanes summed last), the definition
/// `correlations_avx2` (x86-64) computes too, bit for bit.
fn correlations(y: &[f32; PITCH_HIST]) -> [f32; LAGS_PADDED] {
    let (n, w) = (PITCH_HIST, PITCH_WINDOW);
    let x = &y[n - w..];
    std::array::from_fn(|k| {
        let lag = PITCH_LAG_MIN + k;
        let seg = &y[n - w - lag..n - lag];
        let mut acc = [0f32; 8];
        for (a, b) in x.chunks_exact(8).zip(seg.chunks_exact(8)) {
            for l in 0..8 {
                acc[l] += a[l] * b[l];
            }
        }
        acc.iter().sum()
    })
}

/// [`correlations`] in AVX vectors, four lags at a time: four independent chains of vector
/// additions side by side instead of one lag's chain waiting on each addition (same operations
/// per lane in the same order, so the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn correlations_avx2(y: &[f32; PITCH_HIST]) -> [f32; LAGS_PADDED] {
    use std::arch::x86_64::{__m256, _mm256_add_ps, _mm256_mul_ps, _mm256_setzero_ps};
    const _: () = assert!(PITCH_WINDOW.is_multiple_of(8));
    let (n, w) = (PITCH_HIST, PITCH_WINDOW);
    let load = |at: usize| -> __m256 {
        let a: [f32; 8] = y[at..at + 8].try_into().expect("eight samples");
        bytemuck::cast(a)
    };
    let mut out = [0f32; LAGS_PADDED];
    for (g, out) in out.chunks_exact_mut(4).enumerate() {
        let first = PITCH_LAG_MIN + 4 * g;
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in (0..w).step_by(8) {
            let a = load(n - w + c);
            for (k, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(a, load(n - w - (first + k) + c)));
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            let lanes: [f32; 8] = bytemuck::cast(acc);
            *o = lanes.iter().sum();
        }
    }
    out
}

/// The body of [`periodicity`], inlined into each build of it.
#[inline(always)]
fn periodicity_body(
    y: &[f32; PITCH_HIST],
    correlations: impl FnOnce(&[f32; PITCH_HIST]) -> [f32; LAGS_PADDED],
) -> f32 {
    let w = PITCH_WINDOW;
    let n = PITCH_HIST;
    let e0 = sum_sq_lanes(&y[n - w..]);
    if e0 <= 0.0 {
        return 0.0;
    }
    let corr = correlations(y);
    let lo = PITCH_LAG_MIN;
    let mut el = sum_sq_lanes(&y[n - w - lo..n - lo]);
    let mut best = 0f32;
    for (lag, &c) in (lo..=PITCH_LAG_MAX).zip(&corr) {
        if lag > lo {
            let (add, drop) = (y[n - w - lag], y[n - lag]);
            el = (el + add * add - drop * drop).max(0.0);
        }
        if c > 0.0 && el > 0.0 {
            best = best.max(c * c / (e0 * el));
        }
    }
    best.sqrt().min(1.0)
}

avx2_dispatch! {
    /// Energies (sums of squares) of `x` through the five band filters: full band (`x[n]`), first
    /// difference (`x[n] - x[n-1]`), `x[n] - x[n-2]`, and two DC-free low bands built from running
    /// 4-sample sums `s4`: `s4[n] - s4[n-4]` (8 taps, ~0.5-3 kHz at 16 kHz) and
    /// `s4[n] + s4[n-4] - s4[n-8] - s4[n-12]` (16 taps, ~250-900 Hz, the first formant and pitch
    /// harmonics). `hist` holds the HIST samples before `x`; on return it holds the stream's last
    /// HIST samples. `b` is scratch.
    ///
    /// Every filter output is a sum of a few integer samples, exact in f32, and only the squares
    /// are rounded: differencing autocorrelations instead loses the quiet bands to cancellation
    /// when a loud low rumble (brown noise, hum) dominates the frame. The conversion and the
    /// running sums are plain zipped loops the compiler vectorises; the five sums of squares run
    /// in one pass ([`band_sums`], `band_sums_avx2`) with eight lanes per band (f32 addition is
    /// not associative).
    fn band_energies / band_energies_avx2 => band_energies_body(
        x: &[i16],
        hist: &mut [f32; HIST],
        y: &mut [f32; PITCH_HIST],
        b: &mut BandBuf,
        dec: usize,
    ) -> [f32; BANDS];
    kernels band_sums, |t, low| band_sums_avx2(t, low)
}

/// The body of [`band_energies`], inlined into each build of it.
#[inline(always)]
fn band_energies_body(
    x: &[i16],
    hist: &mut [f32; HIST],
    y: &mut [f32; PITCH_HIST],
    b: &mut BandBuf,
    dec: usize,
    sums: impl FnOnce([&[f32]; 7], &mut [f32]) -> [f32; BANDS],
) -> [f32; BANDS] {
    let n = x.len().min(super::frame::MAX_FRAME_SAMPLES);
    let end = HIST + n;
    b.x[..HIST].copy_from_slice(hist);
    for (d, &s) in b.x[HIST..end].iter_mut().zip(x) {
        *d = f32::from(s);
    }
    let xs = &b.x[..end];
    for (i, o) in b.s4[3..end].iter_mut().enumerate() {
        *o = (xs[i] + xs[i + 1]) + (xs[i + 2] + xs[i + 3]);
    }
    // The filter taps as slices of the frame's length (n), so the loop below has no bounds
    // checks left and vectorises.
    let v = &xs[HIST..end];
    let v1 = &xs[HIST - 1..end - 1];
    let v2 = &xs[HIST - 2..end - 2];
    let a0 = &b.s4[HIST..end];
    let a4 = &b.s4[HIST - 4..end - 4];
    let a8 = &b.s4[HIST - 8..end - 8];
    let a12 = &b.s4[HIST - 12..end - 12];
    let acc = sums([v, v1, v2, a0, a4, a8, a12], &mut b.low[..n]);
    // The low band at PITCH_RATE: every dec-th output, the frame's last one last (its 16 taps
    // are the anti-alias filter).
    let m = (n / dec).min(PITCH_HIST);
    y.copy_within(m.., 0);
    let newest = b.low[..n].iter().rev().step_by(dec);
    for (o, v) in y[PITCH_HIST - m..].iter_mut().rev().zip(newest) {
        *o = *v;
    }
    hist.copy_from_slice(&b.x[n..end]);
    acc
}

/// The five bands' sums of squares from the filter taps `[x[n], x[n-1], x[n-2], s4[n], s4[n-4],
/// s4[n-8], s4[n-12]]` (equally long slices): full band `x[n]`, `x[n] - x[n-1]`, `x[n] - x[n-2]`,
/// `s4[n] - s4[n-4]` and `(s4[n] + s4[n-4]) - (s4[n-8] + s4[n-12])`.
///
/// Each band has eight accumulators: lane `l` of each eight-sample chunk adds its square to
/// accumulator `l`, the leftover samples go to lane 0 in order, and the eight lanes are summed
/// last (f32 addition is not associative: this order is the result's definition, which
/// `band_sums_avx2` (x86-64) computes too, bit for bit).
fn band_sums(t: [&[f32]; 7], low: &mut [f32]) -> [f32; BANDS] {
    let n = t[0].len();
    let t = t.map(|x| &x[..n]);
    let mut acc = [[0f32; 8]; BANDS];
    let lanes = n / 8 * 8;
    for c in (0..lanes).step_by(8) {
        for l in 0..8 {
            let d = bands_at(&t, c + l);
            low[c + l] = d[BANDS - 1];
            for (a, d) in acc.iter_mut().zip(d) {
                a[l] += d * d;
            }
        }
    }
    band_sums_finish(acc, &t, lanes, low)
}

/// The five band filters' outputs at sample `k` of the taps (see [`band_sums`]).
#[inline(always)]
fn bands_at(t: &[&[f32]; 7], k: usize) -> [f32; BANDS] {
    let [x0, x1, x2, s0, s4, s8, s12] = t.map(|x| x[k]);
    [x0, x0 - x1, x0 - x2, s0 - s4, (s0 + s4) - (s8 + s12)]
}

/// [`band_sums`]'s end: the samples after the last whole chunk go to lane 0 in order, then each
/// band's eight lanes are summed.
#[inline(always)]
fn band_sums_finish(
    mut acc: [[f32; 8]; BANDS],
    t: &[&[f32]; 7],
    from: usize,
    low: &mut [f32],
) -> [f32; BANDS] {
    for (k, low) in (from..).zip(&mut low[from..t[0].len()]) {
        let d = bands_at(t, k);
        *low = d[BANDS - 1];
        for (a, d) in acc.iter_mut().zip(d) {
            a[0] += d * d;
        }
    }
    acc.map(|a| a.iter().sum())
}

/// [`band_sums`] in AVX vectors: the same operations per lane in the same order (no fused
/// multiply-add), so the same bits. All five bands run in one pass, five independent chains of
/// vector additions side by side; one pass per band (what the compiler made of the scalar
/// definition) waited on each addition's latency and was the gateway's largest user-space item
/// in a flood.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn band_sums_avx2(t: [&[f32]; 7], low: &mut [f32]) -> [f32; BANDS] {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_sub_ps,
    };
    let n = t[0].len();
    let t = t.map(|x| &x[..n]);
    let load = |x: &[f32], c: usize| -> __m256 {
        let a: [f32; 8] = x[c..c + 8].try_into().expect("eight samples");
        bytemuck::cast(a)
    };
    let mut acc = [_mm256_setzero_ps(); BANDS];
    let lanes = n / 8 * 8;
    for c in (0..lanes).step_by(8) {
        let [x0, x1, x2, s0, s4, s8, s12] = t.map(|x| load(x, c));
        let d = [
            x0,
            _mm256_sub_ps(x0, x1),
            _mm256_sub_ps(x0, x2),
            _mm256_sub_ps(s0, s4),
            _mm256_sub_ps(_mm256_add_ps(s0, s4), _mm256_add_ps(s8, s12)),
        ];
        let lo: [f32; 8] = bytemuck::cast(d[BANDS - 1]);
        low[c..c + 8].copy_from_slice(&lo);
        for (a, d) in acc.iter_mut().zip(d) {
            *a = _mm256_add_ps(*a, _mm256_mul_ps(d, d));
        }
    }
    band_sums_finish(acc.map(bytemuck::cast), &t, lanes, low)
}

/// The default detector: sub-band SNR against per-stream noise floors (see the module docs).
#[derive(Clone, Debug)]
pub struct AdaptiveVad {
    /// The stream's last [`HIST`] samples: the band filters' history.
    hist: [f32; HIST],
    /// The stream's low band at [`PITCH_RATE`] (every `dec`-th output), newest last.
    pitch: [f32; PITCH_HIST],
    /// Smoothed log energy per band (dB).
    smooth: [f32; BANDS],
    /// Minimum of each completed sub-window, per band (ring of SUBWINDOWS).
    sub_min: [[f32; BANDS]; SUBWINDOWS],
    /// Minimum of the sub-window being filled.
    cur_min: [f32; BANDS],
    sub_idx: usize,
    sub_filled: usize,
    frames_in_sub: u32,
    started: bool,
    /// Mean log energy per band over frames judged noise (dB).
    noise_mean: [f32; BANDS],
    hang: u8,
    /// Frames seen (saturating): the noise mean adapts faster in the first few.
    frames: u32,
    /// The previous frame was a DTMF tone: this one holds the band filters' tail of it.
    after_tone: bool,
    /// The previous frame was voiced speech (not a tone): this frame needs no DTMF check.
    speech_run: bool,
    /// In a run of frames the DTMF check rejected.
    tone_run: bool,
    dtmf: DtmfDetector,
    /// Input samples per sample of the decimated low band.
    dec: usize,
    /// Mean periodicity of the frames the energy calls noise.
    noise_period: f32,
}

impl AdaptiveVad {
    /// A detector for audio at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            hist: [0.0; HIST],
            pitch: [0.0; PITCH_HIST],
            smooth: [0.0; BANDS],
            sub_min: [[f32::INFINITY; BANDS]; SUBWINDOWS],
            cur_min: [f32::INFINITY; BANDS],
            sub_idx: 0,
            sub_filled: 0,
            frames_in_sub: 0,
            started: false,
            noise_mean: [f32::NEG_INFINITY; BANDS],
            hang: 0,
            frames: 0,
            after_tone: false,
            speech_run: false,
            tone_run: false,
            dtmf: DtmfDetector::new(sample_rate),
            dec: (sample_rate as usize / PITCH_RATE).max(1),
            noise_period: NOISE_PERIOD_START,
        }
    }

    /// The stream's DTMF tone detector (the neural option applies the same check).
    pub(super) fn dtmf(&self) -> &DtmfDetector {
        &self.dtmf
    }

    /// The last frame's periodicity (0-1, computed here) and the mean periodicity of the frames
    /// judged noise, for tests and tuning.
    pub fn periodicity(&self) -> (f32, f32) {
        (periodicity(&self.pitch), self.noise_period)
    }

    /// The current noise floor of each band (dB, energy per frame), for tests and tuning.
    pub fn floors(&self) -> [f32; BANDS] {
        let mut f = self.cur_min;
        for w in &self.sub_min[..self.sub_filled] {
            for (a, b) in f.iter_mut().zip(w) {
                *a = a.min(*b);
            }
        }
        f
    }

    /// Classifies one frame; returns (RMS dBFS, voiced).
    pub fn process(&mut self, x: &[i16]) -> (f32, bool) {
        if x.is_empty() {
            return (super::silence::SILENCE_FLOOR_DBFS, false);
        }
        let dec = self.dec;
        let bands =
            SCRATCH.with_borrow_mut(|b| band_energies(x, &mut self.hist, &mut self.pitch, b, dec));
        let n = x.len() as f32;
        let mean_sq = bands[0] / n;
        // 20·log10(32768) = 90.309 dB: full scale.
        let level = if mean_sq <= 0.0 {
            super::silence::SILENCE_FLOOR_DBFS
        } else {
            (db(mean_sq) - 90.309).max(super::silence::SILENCE_FLOOR_DBFS)
        };
        // Band energies per sample, in dB.
        let mut e = [0f32; BANDS];
        for (eb, v) in e.iter_mut().zip(&bands) {
            *eb = db(v / n);
        }
        if !self.started {
            self.started = true;
            self.smooth = e;
        } else {
            for (s, v) in self.smooth.iter_mut().zip(&e) {
                *s = SMOOTH * *s + (1.0 - SMOOTH) * v;
            }
        }
        // The floor before this frame joins the search (a frame does not mask itself).
        let floor = self.floors();
        self.track_minimum();

        // Per band (the full band only gives the level: its low end swings too much in brown
        // noise and hum): SNR against the noise reference, less a margin that grows with how far
        // the band's noise swings (mean minus minimum, about 2.5 standard deviations).
        let mut sum = 0f32;
        let mut best = f32::NEG_INFINITY;
        // Weighted SNR above the swing, for the hangover.
        let mut held = 0f32;
        for b in 1..BANDS {
            let f = floor[b];
            if !f.is_finite() {
                continue;
            }
            let mean = if self.noise_mean[b].is_finite() {
                self.noise_mean[b].max(f)
            } else {
                f
            };
            let spread = mean - f;
            let snr = e[b] - mean;
            let excess = snr - BAND_MARGIN_DB - SPREAD_WEIGHT * spread;
            sum += BAND_WEIGHT[b] * excess.max(0.0);
            best = best.max(excess);
            held += BAND_WEIGHT[b] * (snr - spread).max(0.0);
        }
        self.frames = self.frames.saturating_add(1);
        let loud_enough = level > ABS_FLOOR_DBFS;
        let energetic = loud_enough && (sum > SUM_THRESHOLD_DB || best > SINGLE_THRESHOLD_DB);
        // Babble: the noise is voices itself (its frames are as periodic as a crowd gets). A
        // frame the energy calls speech must then also be periodic (one voice) unless its
        // excess is large.
        let babble = self.noise_period > BABBLE_PERIODICITY;
        // The periodicity (41 correlations of 96 samples, most of the detector's cost) only
        // where it is read: frames the energy calls noise (the noise's mean) and the babble
        // gate's frames. The decisions are the same as computing it on every frame.
        let period = if !energetic || (babble && sum < BABBLE_OVERRIDE_DB) {
            periodicity(&self.pitch)
        } else {
            0.0
        };
        let clear = energetic && !(babble && period < PERIODIC_GATE && sum < BABBLE_OVERRIDE_DB);
        // The hangover counts down on every frame that is not clearly voiced and voices those
        // whose bands are still above their noise; one frame without does not end it.
        let mut voiced = if clear {
            self.hang = HANGOVER_FRAMES;
            true
        } else if self.hang > 0 && loud_enough && held > HANG_SUM_DB {
            self.hang -= 1;
            true
        } else {
            self.hang = self.hang.saturating_sub(1);
            false
        };
        if !energetic {
            self.noise_period =
                NOISE_PERIOD_KEEP * self.noise_period + (1.0 - NOISE_PERIOD_KEEP) * period;
        }
        if !voiced {
            // Only frames near the floor feed the mean, so missed speech cannot raise it.
            let keep = if self.frames <= NOISE_START_FRAMES {
                NOISE_MEAN_KEEP_START
            } else {
                NOISE_MEAN_KEEP
            };
            for ((m, v), f) in self.noise_mean.iter_mut().zip(&e).zip(&floor) {
                if !m.is_finite() || !f.is_finite() {
                    *m = *v;
                } else if *v < f + (2.0 * (*m - f)).max(NOISE_FEED_MIN_DB) + BAND_MARGIN_DB {
                    *m = keep * *m + (1.0 - keep) * v;
                }
            }
        }
        // A keypad tone starts after a pause: only the first voiced frame of a run is checked,
        // and a run of tone frames stays checked until it ends. The frame after a tone is not
        // speech either: its band filters still ring with the tone's last samples.
        let after_tone = std::mem::take(&mut self.after_tone);
        if voiced && !self.speech_run && self.dtmf.is_dtmf(x) {
            voiced = false;
            self.hang = 0;
            self.tone_run = true;
            self.after_tone = true;
        } else if !voiced {
            self.tone_run = false;
        } else if after_tone {
            voiced = false;
            self.hang = 0;
            self.tone_run = false;
        }
        self.speech_run = voiced && !self.tone_run;
        (level, voiced)
    }

    fn track_minimum(&mut self) {
        for (m, s) in self.cur_min.iter_mut().zip(&self.smooth) {
            *m = m.min(*s);
        }
        self.frames_in_sub += 1;
        if self.frames_in_sub >= SUBWINDOW_FRAMES {
            self.sub_min[self.sub_idx] = self.cur_min;
            self.sub_idx = (self.sub_idx + 1) % SUBWINDOWS;
            self.sub_filled = (self.sub_filled + 1).min(SUBWINDOWS);
            self.cur_min = [f32::INFINITY; BANDS];
            self.frames_in_sub = 0;
        }
    }
}

/// DTMF dual-tone detector: Goertzel power at the eight DTMF frequencies over one frame.
///
/// The frame is first averaged in blocks down to about 4 kHz (4 samples at 16 kHz, 6 at 24 kHz;
/// the highest DTMF tone is 1633 Hz), which keeps the 20 ms resolution the tones need and makes
/// the Goertzel recurrence, whose cost is its sample-to-sample latency, a quarter as long.
#[derive(Clone, Debug)]
pub struct DtmfDetector {
    coeff: [f32; 8],
    decimate: usize,
}

/// Share of the frame's energy the strongest row and column tones must hold together.
const DTMF_ENERGY_SHARE: f32 = 0.6;
/// Each of the two tones must hold at least this share (allows ~8 dB of twist).
const DTMF_TONE_SHARE: f32 = 0.08;

impl DtmfDetector {
    /// A detector for audio at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        let decimate = (sample_rate / 4_000).max(1) as usize;
        let rate = sample_rate as f32 / decimate as f32;
        let mut coeff = [0f32; 8];
        for (c, f) in coeff.iter_mut().zip(DTMF_FREQS) {
            *c = 2.0 * (std::f32::consts::TAU * f / rate).cos();
        }
        Self { coeff, decimate }
    }

    /// Whether `x` is a DTMF dual tone: the strongest row and the strongest column frequency
    /// together hold most of the frame's energy.
    pub fn is_dtmf(&self, x: &[i16]) -> bool {
        let m = x.len() / self.decimate;
        // Too short to resolve the tones (DTMF rows are 73 Hz apart): never a tone.
        if x.len() < 160 || m == 0 {
            return false;
        }
        let scale = 1.0 / self.decimate as f32;
        let mut s1 = [0f32; 8];
        let mut s2 = [0f32; 8];
        let mut energy = 0f32;
        for block in x.chunks_exact(self.decimate) {
            let v = block.iter().map(|&s| f32::from(s)).sum::<f32>() * scale;
            energy += v * v;
            for k in 0..8 {
                let s0 = v + self.coeff[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        if energy <= 0.0 {
            return false;
        }
        // Power of a sinusoid's share of Σv²: 2|X|²/M.
        let mut p = [0f32; 8];
        for k in 0..8 {
            let mag2 = s1[k] * s1[k] + s2[k] * s2[k] - self.coeff[k] * s1[k] * s2[k];
            p[k] = 2.0 * mag2.max(0.0) / m as f32 / energy;
        }
        let row = p[..4].iter().copied().fold(0.0, f32::max);
        let col = p[4..].iter().copied().fold(0.0, f32::max);
        row >= DTMF_TONE_SHARE && col >= DTMF_TONE_SHARE && row + col >= DTMF_ENERGY_SHARE
    }
}

/// 24 kHz → 16 kHz: upsample by 2 (zero stuffing), low-pass at 7 kHz, keep every third sample.
const RS_TAPS: usize = 24;

/// The 2/3 polyphase resampler of the neural detector's 24 kHz input.
#[derive(Clone, Debug)]
struct Down24To16 {
    /// Prototype low-pass at the 48 kHz intermediate rate.
    h: [f32; RS_TAPS],
    /// Input history, newest first.
    hist: [f32; RS_TAPS / 2 + 1],
    /// Input index modulo 3.
    phase: u8,
}

impl Down24To16 {
    fn new() -> Self {
        // Windowed sinc (Hamming), cutoff 7 kHz at 48 kHz, gain 2 to make up for the zeros.
        let mut h = [0f32; RS_TAPS];
        let fc = 7_000.0 / 48_000.0;
        let mid = (RS_TAPS - 1) as f32 / 2.0;
        for (i, t) in h.iter_mut().enumerate() {
            let m = i as f32 - mid;
            let sinc = (std::f32::consts::TAU * fc * m).sin() / (std::f32::consts::PI * m);
            let w = 0.54 - 0.46 * (std::f32::consts::TAU * i as f32 / (RS_TAPS - 1) as f32).cos();
            *t = 2.0 * sinc * w;
        }
        Self {
            h,
            hist: [0.0; RS_TAPS / 2 + 1],
            phase: 0,
        }
    }

    /// Feeds input sample t (48 kHz index 2t); returns the output whose 48 kHz index 3m is 2t
    /// (t ≡ 0 mod 3: taps `h[2j]` on `x[t-j]`) or 2t-1 (t ≡ 2 mod 3: taps `h[2j+1]` on `x[t-1-j]`).
    fn push(&mut self, v: i16) -> Option<i16> {
        self.hist.copy_within(0..RS_TAPS / 2, 1);
        self.hist[0] = f32::from(v);
        let phase = self.phase;
        self.phase = (self.phase + 1) % 3;
        let (taps, xs) = match phase {
            0 => (0, &self.hist[..RS_TAPS / 2]),
            2 => (1, &self.hist[1..]),
            _ => return None,
        };
        let y: f32 = xs
            .iter()
            .zip(self.h[taps..].iter().step_by(2))
            .map(|(x, c)| x * c)
            .sum();
        Some(y.round().clamp(-32768.0, 32767.0) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[f32], amp: f32, rate: u32, n: usize, start: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let s: f32 = freqs
                    .iter()
                    .map(|f| (std::f32::consts::TAU * f * t).sin())
                    .sum();
                (amp * 32767.0 * s) as i16
            })
            .collect()
    }

    /// A small deterministic white-noise source.
    fn noise(seed: &mut u64, amp: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                let u = (*seed >> 11) as f32 / (1u64 << 53) as f32;
                ((u * 2.0 - 1.0) * amp * 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn band_energies_match_direct_sums_across_frames() {
        let mut seed = 7;
        let a = noise(&mut seed, 0.3, 320);
        let b = noise(&mut seed, 0.3, 333);
        // one scratch shared by two streams, as on a runtime thread: another stream's frame in
        // between changes nothing, only the stream's own history carries over
        let mut buf = BandBuf {
            x: [0.0; BUF],
            s4: [0.0; BUF],
            low: [0.0; crate::pipeline::frame::MAX_FRAME_SAMPLES],
        };
        let (mut h1, mut h2) = ([0f32; HIST], [0f32; HIST]);
        let (mut y1, mut y2) = ([0f32; PITCH_HIST], [0f32; PITCH_HIST]);
        band_energies(&a, &mut h1, &mut y1, &mut buf, 4);
        band_energies(&noise(&mut seed, 0.9, 480), &mut h2, &mut y2, &mut buf, 4);
        let got = band_energies(&b, &mut h1, &mut y1, &mut buf, 4);
        let all: Vec<f64> = a.iter().chain(&b).map(|&v| f64::from(v)).collect();
        let taps: [&[f64]; BANDS] = [
            &[1.0],
            &[1.0, -1.0],
            &[1.0, 0.0, -1.0],
            &[1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0],
            &[
                1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0,
                -1.0,
            ],
        ];
        for (band, h) in taps.iter().enumerate() {
            let want: f64 = (320..all.len())
                .map(|n| {
                    let y: f64 = h.iter().enumerate().map(|(k, c)| c * all[n - k]).sum();
                    y * y
                })
                .sum();
            let rel = (f64::from(got[band]) - want).abs() / want;
            assert!(rel < 1e-5, "band {band}: {} vs {want}", got[band]);
        }
        // the pitch history ends with every 4th low-band output of `b`, its last sample last
        // (sums of integers: exact in f32)
        let low = |n: usize| -> f64 {
            taps[4]
                .iter()
                .enumerate()
                .map(|(k, c)| c * all[n - k])
                .sum()
        };
        let m = b.len() / 4;
        for k in 0..m {
            let at = all.len() - 1 - 4 * k;
            assert_eq!(f64::from(y1[PITCH_HIST - 1 - k]), low(at), "{k}");
        }
    }

    /// The AVX2 builds compute exactly what the baseline ones do (same operations per lane), so
    /// a detector's decisions never depend on the CPU it runs on.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_builds_are_bit_identical_to_the_baseline() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: only the baseline build runs here");
            return;
        }
        let mut seed = 11;
        let mut buf = BandBuf {
            x: [0.0; BUF],
            s4: [0.0; BUF],
            low: [0.0; crate::pipeline::frame::MAX_FRAME_SAMPLES],
        };
        let lens = (0..=17).chain([160, 240, 320, 333, 480, 959, 960]);
        for (len, dec) in lens.flat_map(|len| [(len, 4), (len, 6)]) {
            let (mut h1, mut h2) = ([0f32; HIST], [0f32; HIST]);
            let (mut y1, mut y2) = ([0f32; PITCH_HIST], [0f32; PITCH_HIST]);
            for amp in [0.001, 0.3, 1.0] {
                let x = noise(&mut seed, amp, len);
                let base = band_energies_body(&x, &mut h1, &mut y1, &mut buf, dec, band_sums);
                #[allow(unsafe_code)]
                // SAFETY: AVX2 was detected above.
                let wide = unsafe { band_energies_avx2(&x, &mut h2, &mut y2, &mut buf, dec) };
                assert_eq!(
                    base.map(f32::to_bits),
                    wide.map(f32::to_bits),
                    "{len} {amp}"
                );
                assert_eq!(h1.map(f32::to_bits), h2.map(f32::to_bits));
                assert_eq!(y1.map(f32::to_bits), y2.map(f32::to_bits));
                #[allow(unsafe_code)]
                // SAFETY: AVX2 was detected above.
                let p = unsafe { periodicity_avx2(&y1) };
                assert_eq!(periodicity_body(&y1, correlations).to_bits(), p.to_bits());
                #[allow(unsafe_code)]
                // SAFETY: AVX2 was detected above.
                let wide = unsafe { correlations_avx2(&y1) };
                assert_eq!(correlations(&y1).map(f32::to_bits), wide.map(f32::to_bits));
            }
        }
    }

    /// The vector builds' definitions, against sums in f64 in any order: only rounding apart.
    #[test]
    fn correlations_are_the_lagged_products() {
        let mut seed = 5;
        let y: [f32; PITCH_HIST] = noise(&mut seed, 0.5, PITCH_HIST)
            .iter()
            .map(|&v| f32::from(v))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let (n, w) = (PITCH_HIST, PITCH_WINDOW);
        for (k, got) in correlations(&y).iter().enumerate() {
            let lag = PITCH_LAG_MIN + k;
            let want: f64 = (0..w)
                .map(|i| f64::from(y[n - w + i]) * f64::from(y[n - w - lag + i]))
                .sum();
            let scale: f64 = (0..w).map(|i| f64::from(y[n - w + i]).powi(2)).sum();
            assert!((f64::from(*got) - want).abs() < 1e-5 * scale, "lag {lag}");
        }
        let want: f64 = y[n - w..].iter().map(|&v| f64::from(v).powi(2)).sum();
        assert!((f64::from(sum_sq_lanes(&y[n - w..])) - want).abs() < 1e-5 * want);
        assert_eq!(sum_sq_lanes(&[]), 0.0);
        assert_eq!(sum_sq_lanes(&[3.0; 9]), 81.0);
    }

    #[test]
    fn fast_db_matches_log10() {
        let mut x = MIN_ENERGY;
        while x < 1e12 {
            let want = 10.0 * f64::from(x).log10();
            assert!(
                (f64::from(db(x)) - want).abs() < 2e-3,
                "{x}: {} vs {want}",
                db(x)
            );
            x *= 1.37;
        }
        assert_eq!(db(0.0), db(MIN_ENERGY));
    }

    #[test]
    fn dtmf_tones_found_speechlike_tones_not() {
        for rate in [16_000, 24_000] {
            let n = rate as usize / 50;
            let d = DtmfDetector::new(rate);
            for (r, c) in [(697.0, 1209.0), (941.0, 1633.0), (852.0, 1477.0)] {
                let x = tone(&[r, c], 0.2, rate, n, 0);
                assert!(d.is_dtmf(&x), "{rate} {r}+{c}");
            }
            // One tone alone, a tone between the rows, a harmonic-rich buzz: not DTMF.
            let x = tone(&[697.0], 0.3, rate, n, 0);
            assert!(!d.is_dtmf(&x));
            let x = tone(&[1000.0, 1100.0], 0.2, rate, n, 0);
            assert!(!d.is_dtmf(&x));
            let x = tone(&[150.0, 300.0, 450.0, 600.0, 750.0, 900.0], 0.1, rate, n, 0);
            assert!(!d.is_dtmf(&x));
        }
    }

    #[test]
    fn adaptive_learns_noise_and_finds_a_louder_burst() {
        for rate in [16_000, 24_000] {
            let n = rate as usize / 50;
            let mut v = AdaptiveVad::new(rate);
            let mut seed = 99;
            let mut fa = 0;
            for _ in 0..200 {
                fa += usize::from(v.process(&noise(&mut seed, 0.05, n)).1);
            }
            // A loud noise floor (-32 dBFS) that an energy threshold would call speech.
            assert!(fa <= 10, "{rate}: {fa} of 200 noise frames voiced");
            let mut hit = 0;
            for k in 0..10 {
                let mut x = noise(&mut seed, 0.05, n);
                for (s, t) in x
                    .iter_mut()
                    .zip(tone(&[220.0, 440.0, 660.0], 0.1, rate, n, k * n))
                {
                    *s = s.saturating_add(t);
                }
                hit += usize::from(v.process(&x).1);
            }
            assert!(hit >= 9, "{rate}: {hit} of 10 voiced frames found");
        }
    }

    #[test]
    fn periodicity_tells_one_voice_from_noise_and_babble() {
        for rate in [16_000, 24_000] {
            let n = rate as usize / 50;
            let mut seed = 5;
            // One voice (140 Hz with harmonics over faint noise): periodic.
            let mut v = AdaptiveVad::new(rate);
            for k in 0..10 {
                let mut x = noise(&mut seed, 0.002, n);
                for (s, t) in
                    x.iter_mut()
                        .zip(tone(&[140.0, 280.0, 420.0, 560.0], 0.1, rate, n, k * n))
                {
                    *s = s.saturating_add(t);
                }
                v.process(&x);
            }
            assert!(
                v.periodicity().0 > PERIODIC_GATE,
                "{rate}: {:?}",
                v.periodicity()
            );
            // White noise: not, and its mean periodicity stays below babble's.
            let mut v = AdaptiveVad::new(rate);
            for _ in 0..100 {
                v.process(&noise(&mut seed, 0.05, n));
            }
            let (p, mean) = v.periodicity();
            assert!(p < 0.6 && mean < BABBLE_PERIODICITY, "{rate}: {p} {mean}");
        }
    }

    #[test]
    fn adaptive_rejects_dtmf_and_digital_silence() {
        let mut v = AdaptiveVad::new(16_000);
        for _ in 0..20 {
            assert!(!v.process(&[0; 320]).1);
        }
        for k in 0..20 {
            assert!(
                !v.process(&tone(&[770.0, 1336.0], 0.2, 16_000, 320, k * 320))
                    .1
            );
        }
    }

    #[test]
    fn the_frame_after_a_dtmf_tone_is_not_speech() {
        // Keypad digits over a -55 dBFS line: the first frame after each tone holds the band
        // filters' tail of it (the low band's 16 taps ring for 15 samples), which is no speech.
        for rate in [16_000, 24_000] {
            let n = rate as usize / 50;
            let mut v = AdaptiveVad::new(rate);
            let mut seed = 3;
            for _ in 0..50 {
                assert!(!v.process(&noise(&mut seed, 0.003, n)).1);
            }
            for digit in 0..10 {
                for k in 0..5 {
                    let x = tone(&[697.0, 1209.0], 0.2, rate, n, k * n);
                    assert!(!v.process(&x).1, "{rate}: digit {digit}, tone frame {k}");
                }
                for k in 0..5 {
                    let x = noise(&mut seed, 0.003, n);
                    assert!(!v.process(&x).1, "{rate}: digit {digit}, pause frame {k}");
                }
            }
        }
    }

    #[test]
    fn neural_at_16_and_24k_finds_a_voice_not_noise_silence_or_dtmf() {
        warm_up_neural().unwrap();
        // A committed speech clip (16 kHz; 24 kHz by linear interpolation) and its frame truth.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vad/en_us_m.flac");
        let clip: Vec<i16> = claxon::FlacReader::open(path)
            .unwrap()
            .samples()
            .map(|s| s.unwrap() as i16)
            .collect();
        for rate in [16_000, 24_000] {
            let n = rate as usize / 50;
            let speech: Vec<i16> = if rate == 16_000 {
                clip.clone()
            } else {
                (0..clip.len() * 3 / 2 - 2)
                    .map(|m| {
                        let (i, f) = (m * 2 / 3, (m * 2 % 3) as f32 / 3.0);
                        (f32::from(clip[i]) * (1.0 - f) + f32::from(clip[i + 1]) * f) as i16
                    })
                    .collect()
            };
            let mut v = NeuralVad::new(rate);
            let (mut hit, mut talk, mut fa) = (0, 0, 0);
            for f in speech.chunks_exact(n) {
                let voiced = v.process(f).1;
                if super::super::silence::dbfs(f) > -40.0 {
                    talk += 1;
                    hit += usize::from(voiced);
                } else if f.iter().all(|&s| s == 0) {
                    fa += usize::from(voiced);
                }
            }
            assert!(
                hit * 10 >= talk * 7,
                "{rate}: {hit} of {talk} loud frames voiced"
            );
            assert!(fa <= 10, "{rate}: {fa} digital-silence frames voiced");
            let mut v = NeuralVad::new(rate);
            for _ in 0..25 {
                assert!(!v.process(&vec![0; n]).1);
            }
            assert!(v.probability() < VETO_BELOW, "{rate}: {}", v.probability());
            // Loud white noise from a stream's start: the network is never sure of it, and once
            // the level floor has learnt it (1.3 s) no frame is voiced.
            let mut v = NeuralVad::new(rate);
            let (mut seed, mut fa, mut top) = (11, 0, 0f32);
            for k in 0..150 {
                let voiced = v.process(&noise(&mut seed, 0.05, n)).1;
                top = top.max(v.probability());
                fa += usize::from(voiced && k >= 75);
            }
            assert!(top < CONFIDENT, "{rate}: noise probability {top}");
            assert!(fa <= 3, "{rate}: {fa} of 75 noise frames voiced");
            for k in 0..25 {
                let x = tone(&[697.0, 1209.0], 0.2, rate, n, k * n);
                assert!(!v.process(&x).1, "{rate}: DTMF frame {k} voiced");
            }
        }
    }

    #[test]
    fn resampler_passes_speech_band_and_stops_above_8k() {
        for (f, lo, hi) in [
            (300.0, 0.95, 1.05),
            (1000.0, 0.95, 1.05),
            (3000.0, 0.95, 1.05),
            (10_000.0, 0.0, 0.1),
        ] {
            let x = tone(&[f], 0.5, 24_000, 4800, 0);
            let mut rs = Down24To16::new();
            let out: Vec<i16> = x.iter().filter_map(|&v| rs.push(v)).collect();
            assert_eq!(out.len(), 3200);
            let peak = out[100..]
                .iter()
                .fold(0f32, |m, &v| m.max(f32::from(v).abs()));
            let gain = peak / (0.5 * 32767.0);
            assert!(gain >= lo && gain <= hi, "{f} Hz: gain {gain}");
        }
        // And the output is that tone at 16 kHz: compare with a directly made one (delay aside).
        let x = tone(&[1000.0], 0.5, 24_000, 4800, 0);
        let mut rs = Down24To16::new();
        let out: Vec<i16> = x.iter().filter_map(|&v| rs.push(v)).collect();
        let direct = tone(&[1000.0], 0.5, 16_000, 3200, 0);
        // Group delay: 11.5 taps at 48 kHz = 3.83 samples at 16 kHz; find the best integer shift.
        let err = |d: usize| -> f32 {
            (200..3000)
                .map(|i| (f32::from(out[i + d]) - f32::from(direct[i])).abs())
                .sum::<f32>()
                / 2800.0
        };
        let best = (0..8).map(err).fold(f32::INFINITY, f32::min);
        assert!(best < 0.1 * 0.5 * 32767.0, "{best}");
    }
}
