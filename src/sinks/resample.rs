//! The resample sink: converts every stream to one target rate (8000 … 48000 Hz) and sample
//! format (i16 or f32) with rubato and hands the converted stream to the sink it owns (`then`),
//! which runs on the resample sink's worker thread — `resample → wav`, later `resample → forward`.
//!
//! This module owns [`ResampleSinkConfig`] (with its validation), the quality profiles and their
//! mapping to rubato ([`plan`], the one place that chooses rubato settings), the per-stream
//! converter state and position bookkeeping, and [`ResampleSink`] itself.
//!
//! # Quality profiles
//!
//! Every profile uses rubato's synchronous FFT resampler ([`rubato::Fft`], both block sizes
//! fixed): our ratios are fixed and rational, and measured on this gateway's rates it is both the
//! most accurate (it reaches the 16-bit noise floor, ≈ 95 dB on a sweep to 80 % of the lower
//! Nyquist frequency) and the cheapest rubato resampler — rubato's asynchronous sinc resampler
//! (256 taps, cubic, BlackmanHarris²) topped out at 50–68 dB on the same sweep at 3–10× the cost,
//! and the polynomial one has no anti-aliasing filter. What the profiles trade is the FFT block
//! length, which sets both the added delay and how close to Nyquist the passband reaches, and the
//! window of the anti-aliasing filter:
//!
//! | `quality` | block (input) | window | added delay | passband (−1 dB) to 8 kHz / 16 kHz |
//! |---|---|---|---|---|
//! | `fast` | 5 ms | Hann² | ≈ 2.5 ms | ≈ 3.2 kHz / 7.2 kHz |
//! | `balanced` | 10 ms | Blackman² | ≈ 5 ms | ≈ 3.35 kHz / 7.3 kHz |
//! | `best` (default) | 20 ms | BlackmanHarris² | ≈ 10 ms | ≈ 3.5 kHz / 7.45 kHz |
//!
//! (The transition band narrows as the block grows; above it the FFT resampler rejects steady
//! tones by > 200 dB.) A block is rounded up to a whole number of the ratio's smallest blocks
//! (`rate / gcd` on each side) and to even sizes on both sides, so the delay (half a block:
//! `block_out / 2` output samples = `block_in / 2` input samples) is a whole number of output
//! samples, and it is removed exactly. Added delay in output samples (ms), checked by a unit test:
//!
//! | from → to | fast | balanced | best |
//! |---|---|---|---|
//! | 16000 or 24000 → 8000 | 20 (2.5) | 40 (5) | 80 (10) |
//! | 24000 → 16000 | 40 (2.5) | 80 (5) | 160 (10) |
//! | 16000 → 24000 | 60 (2.5) | 120 (5) | 240 (10) |
//! | 16000 → 22050 | 441 (20) | 441 (20) | 441 (20) |
//! | 24000 → 22050 | 147 (6.7) | 147 (6.7) | 294 (13.3) |
//! | 16000 or 24000 → 32000 | 80 (2.5) | 160 (5) | 320 (10) |
//! | 16000 → 44100 | 441 (10) | 441 (10) | 441 (10) |
//! | 24000 → 44100 | 147 (3.3) | 294 (6.7) | 441 (10) |
//! | 16000 or 24000 → 48000 | 120 (2.5) | 240 (5) | 480 (10) |
//! | same rate | 0 (pass-through) | 0 | 0 |
//!
//! 16000 → 22050 and 16000 → 44100 have large smallest blocks (320/441 and 160/441 samples,
//! made even: 40 ms and 20 ms), so every profile gets them. When a block is longer than the 20 ms
//! frames that arrive, audio also waits up to one block for it to fill (16000 → 22050). CPU
//! hardly differs between profiles (`benches/resample.rs`: a few µs per 20 ms frame).
//!
//! SNR of the i16 output against the exact sweep (20 Hz to 80 % of the lower Nyquist frequency,
//! −0.9 dBFS, 2 s) computed at the target rate, edges left out by the delay; the unit test
//! asserts each profile's floor over all four pairs. The 16-bit floor is ≈ 95–97 dB:
//!
//! | `quality` | 16k→48k | 24k→16k | 16k→8k | 16k→44.1k | floor asserted |
//! |---|---|---|---|---|---|
//! | `fast` | 93.8 | 95.5 | 39.7 | 94.1 | 35 dB |
//! | `balanced` | 95.1 | 96.0 | 76.2 | 94.2 | 70 dB |
//! | `best` | 95.0 | 96.0 | 97.1 | 94.3 | 90 dB |
//!
//! (16k→8k is the one pair whose sweep reaches into the shorter blocks' transition band.)
//!
//! # Streams, positions and gaps
//!
//! A stream at the target rate passes through untouched (no rubato, bit-exact). Otherwise each
//! stream gets its own resampler on `open`, and the inner sink's `open` gets a copy of the
//! [`StreamInfo`] with the target rate and `call_offset` scaled to it. Output frames hold at most
//! [`MAX_FRAME_SAMPLES`] samples and carry `pos` in output samples (gaps included) and the flags of
//! the input frame whose write produced them (a flushed tail: the last frame's). The resampler's startup delay is dropped, so output
//! sample `n` stands for input time `n / rate`. A timeline gap first flushes the resampler (the
//! audio before the gap comes out, followed by silence), then goes to the inner sink converted to
//! the target rate; `close` flushes the same way. Sample counts are converted as
//! `floor(total_in × to / from)` of the running totals, so fractions carry over and the output
//! has exactly that many samples at every gap and at the end. Speech events' positions and the
//! sample counts in [`StreamStats`] are converted the same way; other events, `end_call`,
//! `flush` and `shutdown` pass through (`end_call` and `shutdown` flush streams still open first).
//!
//! # f32 output
//!
//! [`AudioFrame`] carries i16 only, so with `format = "f32"` the converted samples go to the
//! inner sink's [`Sink::write_f32`] instead (full scale ±1.0, not clipped). Its default refuses
//! float audio, and [`ResampleSinkConfig::validate`] rejects `f32` in front of a sink whose
//! config does not take it ([`SinkConfig::takes_f32`]: the forward sink does; wav, null and nats
//! take i16 only). The path is tested end to end against a test sink that takes f32.
//!
//! # Allocation
//!
//! Each stream's input, block and output buffers are sized on `open` (for the largest frame) and
//! reused; i16 output frames are built on the stack, and rubato's `process_into_buffer` writes
//! into the preallocated block buffer. Steady-state writes make no heap allocation in this module
//! (a unit test checks the buffers keep their addresses and capacities).

use super::SinkConfig;
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamStats,
    MAX_FRAME_SAMPLES,
};
use crate::pipeline::sink::{Sink, SinkError};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::audioadapter_buffers::SizeError;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Target rates a resample sink accepts.
pub const RATES: [u32; 7] = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

/// i16 sample → f32 full scale.
const TO_F32: f32 = 1.0 / 32768.0;

/// Sample format the inner sink receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleFormat {
    /// 16-bit PCM in [`AudioFrame`]s ([`Sink::write`]).
    #[default]
    I16,
    /// 32-bit float, full scale ±1.0, through [`Sink::write_f32`].
    F32,
}

/// Resampling quality profile; see the module docs for what each means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// 5 ms FFT blocks, Hann² window: least delay, narrowest passband.
    Fast,
    /// 10 ms FFT blocks, Blackman² window.
    Balanced,
    /// 20 ms FFT blocks, BlackmanHarris² window: widest passband (≈ 0.9 of Nyquist), at the
    /// 16-bit noise floor.
    #[default]
    Best,
}

impl Quality {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Quality::Fast => "fast",
            Quality::Balanced => "balanced",
            Quality::Best => "best",
        }
    }
}

/// `[[sinks]] type = "resample"`: converts to `rate` and `format`, then hands the stream to
/// `then`, which runs on this sink's worker thread(s).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResampleSinkConfig {
    /// Target rate, one of [`RATES`].
    pub rate: u32,
    /// Sample format handed to `then`.
    #[serde(default)]
    pub format: SampleFormat,
    /// Quality profile.
    #[serde(default)]
    pub quality: Quality,
    /// Audio frames the sink's queue holds per worker (the inner sink's own `queue_frames` is
    /// unused: it is fed by this sink's worker, not by a queue; its `workers` and flush interval
    /// are used for this sink's workers).
    #[serde(default = "default_queue_frames")]
    pub queue_frames: usize,
    /// The sink that receives the converted stream.
    pub then: Box<SinkConfig>,
}

fn default_queue_frames() -> usize {
    4096
}

impl ResampleSinkConfig {
    /// A config converting to `rate` for `then`, with the default format, quality and queue.
    pub fn new(rate: u32, then: SinkConfig) -> Self {
        Self {
            rate,
            format: SampleFormat::default(),
            quality: Quality::default(),
            queue_frames: default_queue_frames(),
            then: Box::new(then),
        }
    }

    /// Problems with the values, the inner sink's included (prefixed `then (<kind>)`).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !RATES.contains(&self.rate) {
            p.push(format!(
                "rate {} must be one of {}",
                self.rate,
                RATES.map(|r| r.to_string()).join(", ")
            ));
        }
        if !(16..=1_000_000).contains(&self.queue_frames) {
            p.push(format!(
                "queue_frames {} must be between 16 and 1000000",
                self.queue_frames
            ));
        }
        let inner = self.then.kind();
        if matches!(*self.then, SinkConfig::Resample(_)) {
            p.push(
                "then must not be another resample: convert once, straight to the final rate"
                    .into(),
            );
        } else if self.format == SampleFormat::F32 && !self.then.takes_f32() {
            p.push(format!(
                "format \"f32\" needs a sink that takes f32 samples, and the {inner} sink takes \
                 i16 only (use format = \"i16\")"
            ));
        }
        p.extend(
            self.then
                .validate()
                .into_iter()
                .map(|problem| format!("then ({inner}): {problem}")),
        );
        p
    }
}

/// Why a stream could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// A rate of 0 Hz (the stream's or the target).
    #[error("cannot resample {from} Hz to {to} Hz")]
    BadRate {
        /// The stream's rate.
        from: u32,
        /// The target rate.
        to: u32,
    },
    /// rubato refused the settings.
    #[error("building the {from} Hz to {to} Hz resampler: {source}")]
    Build {
        /// The stream's rate.
        from: u32,
        /// The target rate.
        to: u32,
        /// rubato's reason.
        source: rubato::ResamplerConstructionError,
    },
    /// rubato chose other block sizes than [`plan`] computed (a rubato change).
    #[error("rubato chose {got_in}/{got_out} sample blocks, expected {want_in}/{want_out}")]
    BlockMismatch {
        /// Input block rubato chose.
        got_in: usize,
        /// Output block rubato chose.
        got_out: usize,
        /// Input block we planned.
        want_in: usize,
        /// Output block we planned.
        want_out: usize,
    },
    /// rubato failed on a block.
    #[error("resampling: {0}")]
    Process(#[from] rubato::ResampleError),
    /// A buffer did not fit rubato's adapter.
    #[error("resampler buffer: {0}")]
    Buffer(#[from] SizeError),
    /// A frame's rate differs from its stream's.
    #[error("a {frame} Hz frame on a {stream} Hz stream")]
    RateMismatch {
        /// The frame's rate.
        frame: u32,
        /// The stream's rate.
        stream: u32,
    },
}

impl From<ResampleError> for SinkError {
    fn from(e: ResampleError) -> Self {
        SinkError::Other(e.to_string())
    }
}

/// The rubato settings one (profile, from, to) triple maps to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Input samples per FFT block.
    pub block_in: usize,
    /// Output samples per FFT block.
    pub block_out: usize,
    /// Anti-aliasing window.
    pub window: WindowFunction,
}

impl Plan {
    /// Delay the resampler adds, in output samples (half a block; removed from the output).
    pub fn latency_samples(&self) -> usize {
        self.block_out / 2
    }

    /// The same delay in milliseconds.
    pub fn latency_ms(&self, to: u32) -> f64 {
        self.latency_samples() as f64 * 1000.0 / f64::from(to)
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// THE mapping from a quality profile to rubato settings (block length and window of the FFT
/// resampler) for `from` → `to` Hz; see the module docs. The only place that chooses them.
pub fn plan(quality: Quality, from: u32, to: u32) -> Result<Plan, ResampleError> {
    if from == 0 || to == 0 {
        return Err(ResampleError::BadRate { from, to });
    }
    let (block_us, window) = match quality {
        Quality::Fast => (5_000, WindowFunction::Hann2),
        Quality::Balanced => (10_000, WindowFunction::Blackman2),
        Quality::Best => (20_000, WindowFunction::BlackmanHarris2),
    };
    let (f, t) = (from as usize, to as usize);
    let g = gcd(f, t);
    let (min_in, min_out) = (f / g, t / g);
    let wanted_in = (f * block_us).div_ceil(1_000_000);
    let mut k = wanted_in.div_ceil(min_in).max(1);
    // Even blocks on both sides: the delay (half a block) is then a whole number of output
    // samples, and rubato 4's FFT resampler misaligns with odd input blocks (measured).
    if k % 2 == 1 && (min_in % 2 == 1 || min_out % 2 == 1) {
        k += 1;
    }
    Ok(Plan {
        block_in: k * min_in,
        block_out: k * min_out,
        window,
    })
}

/// One stream's sample-rate converter: rubato's FFT resampler and the reused buffers around it.
struct Converter {
    fft: Fft<f32>,
    block_in: usize,
    block_out: usize,
    delay: usize,
    /// Output samples still to drop (the startup delay of the current segment).
    skip: usize,
    /// Input not yet processed (less than a block between calls).
    input: Vec<f32>,
    /// One block's output.
    block: Vec<f32>,
    /// Converted samples ready to hand on.
    out: Vec<f32>,
}

impl Converter {
    fn new(quality: Quality, from: u32, to: u32) -> Result<Self, ResampleError> {
        let p = plan(quality, from, to)?;
        let fft = Fft::<f32>::new_custom(
            from as usize,
            to as usize,
            p.block_in,
            1,
            1,
            p.window,
            FixedSync::Both,
        )
        .map_err(|source| ResampleError::Build { from, to, source })?;
        let (got_in, got_out) = (fft.input_frames_next(), fft.output_frames_next());
        if (got_in, got_out) != (p.block_in, p.block_out) {
            return Err(ResampleError::BlockMismatch {
                got_in,
                got_out,
                want_in: p.block_in,
                want_out: p.block_out,
            });
        }
        // A write brings at most MAX_FRAME_SAMPLES; a flush at most a partial block plus the
        // delay, i.e. two more blocks.
        let blocks_per_write = MAX_FRAME_SAMPLES / p.block_in + 2;
        Ok(Self {
            fft,
            block_in: p.block_in,
            block_out: p.block_out,
            delay: p.latency_samples(),
            skip: p.latency_samples(),
            input: Vec::with_capacity(p.block_in + MAX_FRAME_SAMPLES),
            block: vec![0.0; p.block_out],
            out: Vec::with_capacity((blocks_per_write + 2) * p.block_out),
        })
    }

    /// Runs the block at the start of `input[start..]` through rubato and appends its output
    /// (less what remains of the startup delay) to `out`.
    fn process_block(&mut self, start: usize) -> Result<(), ResampleError> {
        let input =
            InterleavedSlice::new(&self.input[start..start + self.block_in], 1, self.block_in)?;
        let mut output = InterleavedSlice::new_mut(&mut self.block, 1, self.block_out)?;
        let (_, written) = self.fft.process_into_buffer(&input, &mut output, None)?;
        let skip = self.skip.min(written);
        self.skip -= skip;
        self.out.extend_from_slice(&self.block[skip..written]);
        Ok(())
    }

    /// Adds samples and converts every complete block.
    fn push(&mut self, samples: &[i16]) -> Result<(), ResampleError> {
        self.input
            .extend(samples.iter().map(|&s| f32::from(s) * TO_F32));
        let mut start = 0;
        let mut res = Ok(());
        while res.is_ok() && self.input.len() - start >= self.block_in {
            res = self.process_block(start);
            start += self.block_in;
        }
        self.input.drain(..start);
        res
    }

    /// Ends the segment: pushes the partial block and the delay out with silence until `out`
    /// holds `wanted` samples (no more), then starts afresh.
    fn finish(&mut self, wanted: usize) -> Result<(), ResampleError> {
        let mut res = Ok(());
        while res.is_ok() && self.out.len() < wanted {
            self.input.resize(self.block_in, 0.0);
            res = self.process_block(0);
            self.input.clear();
        }
        self.out.truncate(wanted);
        self.fft.reset();
        self.input.clear();
        self.skip = self.delay;
        res
    }
}

/// One open stream.
struct StreamState {
    call: CallId,
    from: u32,
    /// `None`: the stream is already at the target rate and passes through.
    conv: Option<Box<Converter>>,
    /// Input samples so far (gaps included).
    in_total: u64,
    /// Output samples handed on so far (gaps included).
    out_total: u64,
    /// `acs_silent` and `voiced` of the last frame written (for the flushed tail).
    flags: (bool, bool),
}

/// `n` samples at `from` Hz in samples at `to` Hz, rounded down.
fn scale(n: u64, from: u32, to: u32) -> u64 {
    if from == to || from == 0 {
        return n;
    }
    (u128::from(n) * u128::from(to) / u128::from(from)) as u64
}

/// Converts every stream to one rate and format and hands it to the sink it owns.
pub struct ResampleSink {
    rate: u32,
    format: SampleFormat,
    quality: Quality,
    inner: Box<dyn Sink>,
    streams: HashMap<StreamId, StreamState>,
    /// The frame handed to `inner`, refilled for every output block (its sample buffer keeps
    /// its capacity: no allocation per frame).
    out: AudioFrame,
}

impl ResampleSink {
    /// A sink converting to `rate` Hz and `format` with `quality`, feeding `inner`.
    pub fn new(rate: u32, format: SampleFormat, quality: Quality, inner: Box<dyn Sink>) -> Self {
        Self {
            rate,
            format,
            quality,
            inner,
            streams: HashMap::new(),
            out: AudioFrame::empty(),
        }
    }

    /// Built from its config around an already built inner sink.
    pub fn from_config(cfg: &ResampleSinkConfig, inner: Box<dyn Sink>) -> Self {
        Self::new(cfg.rate, cfg.format, cfg.quality, inner)
    }

    /// Hands the converter's output of `stream` to the inner sink in frames of at most
    /// [`MAX_FRAME_SAMPLES`], advancing the stream's output position. Every frame is offered
    /// even when one fails (positions stay right); the first error is returned.
    fn emit(&mut self, stream: StreamId, acs_silent: bool, voiced: bool) -> Result<(), SinkError> {
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(SinkError::UnknownStream(stream));
        };
        let Some(conv) = s.conv.as_mut() else {
            return Ok(());
        };
        let mut first_err = None;
        for chunk in conv.out.chunks(MAX_FRAME_SAMPLES) {
            let res = match self.format {
                SampleFormat::I16 => {
                    let mut pcm = [0i16; MAX_FRAME_SAMPLES];
                    for (d, &x) in pcm.iter_mut().zip(chunk) {
                        // `as` saturates: out-of-range values clip to i16::MIN/MAX
                        *d = (x * 32768.0).round() as i16;
                    }
                    let f = self.out.reuse(s.call, stream, s.out_total, self.rate);
                    f.set_samples(&pcm[..chunk.len()]);
                    f.acs_silent = acs_silent;
                    f.voiced = voiced;
                    self.inner.write(f)
                }
                SampleFormat::F32 => {
                    self.inner
                        .write_f32(stream, s.call, s.out_total, self.rate, chunk)
                }
            };
            s.out_total += chunk.len() as u64;
            if let Err(e) = res {
                first_err.get_or_insert(e);
            }
        }
        conv.out.clear();
        first_err.map_or(Ok(()), Err)
    }

    /// Brings `stream`'s output up to exactly `floor(in_total × to / from)` samples: the
    /// converter's pending input and delay come out, followed by silence.
    fn flush_stream(&mut self, stream: StreamId) -> Result<(), SinkError> {
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(SinkError::UnknownStream(stream));
        };
        let target = scale(s.in_total, s.from, self.rate);
        let Some(conv) = s.conv.as_mut() else {
            return Ok(());
        };
        let wanted = target.saturating_sub(s.out_total) as usize;
        let res = conv.finish(wanted);
        let (acs_silent, voiced) = s.flags;
        let emitted = self.emit(stream, acs_silent, voiced);
        res?;
        emitted
    }

    /// Flushes and forgets the streams matching `which`; returns the first error.
    fn flush_and_forget(&mut self, which: impl Fn(&StreamState) -> bool) -> Result<(), SinkError> {
        let ids: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| which(s))
            .map(|(id, _)| *id)
            .collect();
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.flush_stream(id) {
                first_err.get_or_insert(e);
            }
            self.streams.remove(&id);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `event` with its stream positions converted to the target rate, when it has any and its
    /// stream is resampled.
    fn convert_event(&self, event: &CallEvent) -> Option<CallEvent> {
        let from = |stream: &StreamId| {
            self.streams
                .get(stream)
                .filter(|s| s.conv.is_some())
                .map(|s| s.from)
        };
        match event {
            CallEvent::SpeechStarted { stream, pos } => {
                from(stream).map(|f| CallEvent::SpeechStarted {
                    stream: *stream,
                    pos: scale(*pos, f, self.rate),
                })
            }
            CallEvent::SpeechEnded { stream, start, end } => {
                from(stream).map(|f| CallEvent::SpeechEnded {
                    stream: *stream,
                    start: scale(*start, f, self.rate),
                    end: scale(*end, f, self.rate),
                })
            }
            _ => None,
        }
    }
}

impl Sink for ResampleSink {
    fn kind(&self) -> &'static str {
        "resample"
    }

    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        let from = stream.sample_rate;
        let (conv, info) = if from == self.rate {
            (None, stream.clone())
        } else {
            let conv = Converter::new(self.quality, from, self.rate)?;
            let info = Arc::new(StreamInfo {
                sample_rate: self.rate,
                call_offset: scale(stream.call_offset, from, self.rate),
                ..(**stream).clone()
            });
            (Some(Box::new(conv)), info)
        };
        self.inner.open(&info)?;
        self.streams.insert(
            stream.id,
            StreamState {
                call: stream.call.id,
                from,
                conv,
                in_total: 0,
                out_total: 0,
                flags: (false, false),
            },
        );
        Ok(())
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let Some(s) = self.streams.get_mut(&frame.stream) else {
            return Err(SinkError::UnknownStream(frame.stream));
        };
        if frame.sample_rate != s.from {
            return Err(ResampleError::RateMismatch {
                frame: frame.sample_rate,
                stream: s.from,
            }
            .into());
        }
        s.in_total += frame.len() as u64;
        s.flags = (frame.acs_silent, frame.voiced);
        let Some(conv) = s.conv.as_mut() else {
            s.out_total += frame.len() as u64;
            return match self.format {
                SampleFormat::I16 => self.inner.write(frame),
                SampleFormat::F32 => {
                    let mut buf = [0f32; MAX_FRAME_SAMPLES];
                    for (d, &x) in buf.iter_mut().zip(frame.samples()) {
                        *d = f32::from(x) * TO_F32;
                    }
                    self.inner.write_f32(
                        frame.stream,
                        frame.call,
                        frame.pos,
                        frame.sample_rate,
                        &buf[..frame.len()],
                    )
                }
            };
        };
        let res = conv.push(frame.samples());
        let emitted = self.emit(frame.stream, frame.acs_silent, frame.voiced);
        res?;
        emitted
    }

    fn gap(&mut self, call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        let flushed = self.flush_stream(stream);
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(SinkError::UnknownStream(stream));
        };
        s.in_total += samples;
        let out = scale(s.in_total, s.from, self.rate).saturating_sub(s.out_total);
        s.out_total += out;
        let res = self.inner.gap(call, stream, out);
        flushed?;
        res
    }

    fn event(&mut self, call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
        match self.convert_event(event) {
            Some(converted) => self.inner.event(call, &converted),
            None => self.inner.event(call, event),
        }
    }

    fn close(
        &mut self,
        call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError> {
        let flushed = self.flush_stream(stream);
        let Some(s) = self.streams.remove(&stream) else {
            return Err(SinkError::UnknownStream(stream));
        };
        let (from, to) = (s.from, self.rate);
        let stats = StreamStats {
            samples: scale(stats.samples, from, to),
            filled_samples: scale(stats.filled_samples, from, to),
            silent_samples: scale(stats.silent_samples, from, to),
            voiced_samples: scale(stats.voiced_samples, from, to),
            ..*stats
        };
        let res = self.inner.close(call, stream, &stats);
        flushed?;
        res
    }

    fn end_call(&mut self, call: &Arc<CallInfo>, reason: &EndReason) -> Result<(), SinkError> {
        let flushed = self.flush_and_forget(|s| s.call == call.id);
        let res = self.inner.end_call(call, reason);
        flushed?;
        res
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let flushed = self.flush_and_forget(|_| true);
        let res = self.inner.shutdown();
        flushed?;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::pipeline::frame::SinkMsg;
    use crate::pipeline::sink::contract;
    use crate::sinks::names::sanitize;
    use crate::sinks::null::NullSink;
    use crate::sinks::wav::WavSinkConfig;
    use std::collections::HashSet;
    use std::f64::consts::TAU;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    const QUALITIES: [Quality; 3] = [Quality::Fast, Quality::Balanced, Quality::Best];

    /// What the recording sink saw.
    #[derive(Default)]
    struct Seen {
        info: HashMap<StreamId, Arc<StreamInfo>>,
        open: HashSet<StreamId>,
        pcm: HashMap<StreamId, Vec<i16>>,
        float: HashMap<StreamId, Vec<f32>>,
        frames: Vec<AudioFrame>,
        gaps: HashMap<StreamId, Vec<u64>>,
        /// Samples so far per stream, gaps included (what the next `pos` must be).
        len: HashMap<StreamId, u64>,
        bad_pos: u64,
        closed: Vec<(StreamId, StreamStats)>,
        events: Vec<CallEvent>,
        ended: Vec<CallId>,
        shutdowns: u64,
    }

    /// A sink that records everything and checks positions; takes f32 when told to.
    struct Rec {
        seen: Arc<Mutex<Seen>>,
        takes_f32: bool,
    }

    impl Rec {
        fn new(takes_f32: bool) -> (Self, Arc<Mutex<Seen>>) {
            let seen = Arc::new(Mutex::new(Seen::default()));
            (
                Self {
                    seen: seen.clone(),
                    takes_f32,
                },
                seen,
            )
        }

        fn check(s: &mut Seen, stream: StreamId, pos: u64, n: usize) -> Result<(), SinkError> {
            if !s.open.contains(&stream) {
                return Err(SinkError::UnknownStream(stream));
            }
            assert!(n <= MAX_FRAME_SAMPLES, "frame of {n} samples");
            let len = s.len.entry(stream).or_default();
            if *len != pos {
                s.bad_pos += 1;
            }
            *len += n as u64;
            Ok(())
        }
    }

    impl Sink for Rec {
        fn kind(&self) -> &'static str {
            "rec"
        }
        fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
            let mut s = self.seen.lock().unwrap();
            s.open.insert(stream.id);
            s.info.insert(stream.id, stream.clone());
            Ok(())
        }
        fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
            let mut s = self.seen.lock().unwrap();
            Self::check(&mut s, frame.stream, frame.pos, frame.len())?;
            s.pcm
                .entry(frame.stream)
                .or_default()
                .extend_from_slice(frame.samples());
            s.frames.push(frame.clone());
            Ok(())
        }
        fn write_f32(
            &mut self,
            stream: StreamId,
            _call: CallId,
            pos: u64,
            _rate: u32,
            samples: &[f32],
        ) -> Result<(), SinkError> {
            if !self.takes_f32 {
                return Err(SinkError::Other("no f32 here".into()));
            }
            let mut s = self.seen.lock().unwrap();
            Self::check(&mut s, stream, pos, samples.len())?;
            s.float
                .entry(stream)
                .or_default()
                .extend_from_slice(samples);
            Ok(())
        }
        fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
            let mut s = self.seen.lock().unwrap();
            if !s.open.contains(&stream) {
                return Err(SinkError::UnknownStream(stream));
            }
            *s.len.entry(stream).or_default() += samples;
            s.gaps.entry(stream).or_default().push(samples);
            Ok(())
        }
        fn event(&mut self, _call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
            self.seen.lock().unwrap().events.push(event.clone());
            Ok(())
        }
        fn close(
            &mut self,
            _call: CallId,
            stream: StreamId,
            stats: &StreamStats,
        ) -> Result<(), SinkError> {
            let mut s = self.seen.lock().unwrap();
            if !s.open.remove(&stream) {
                return Err(SinkError::UnknownStream(stream));
            }
            s.closed.push((stream, *stats));
            Ok(())
        }
        fn end_call(&mut self, call: &Arc<CallInfo>, _r: &EndReason) -> Result<(), SinkError> {
            self.seen.lock().unwrap().ended.push(call.id);
            Ok(())
        }
        fn shutdown(&mut self) -> Result<(), SinkError> {
            let mut s = self.seen.lock().unwrap();
            s.shutdowns += 1;
            s.open.clear();
            Ok(())
        }
    }

    fn sink(rate: u32, format: SampleFormat, q: Quality) -> (ResampleSink, Arc<Mutex<Seen>>) {
        let (rec, seen) = Rec::new(format == SampleFormat::F32);
        (ResampleSink::new(rate, format, q, Box::new(rec)), seen)
    }

    /// Opens stream 1 of call 7 at `from` Hz, writes `input` in `frame`-sample frames, closes.
    fn run(sink: &mut dyn Sink, from: u32, input: &[i16], frame: usize) {
        let c = contract::call(7);
        sink.open(&contract::stream(&c, 1, None, from)).unwrap();
        let mut pos = 0;
        for chunk in input.chunks(frame) {
            sink.write(&AudioFrame::new(7, 1, pos, from, chunk))
                .unwrap();
            pos += chunk.len() as u64;
        }
        sink.close(7, 1, &StreamStats::default()).unwrap();
    }

    const AMP: f64 = 0.9;
    const F0: f64 = 20.0;

    /// A linear sweep from 20 Hz to `f1` over `dur` seconds, at `AMP` of full scale.
    fn sweep(t: f64, f1: f64, dur: f64) -> f64 {
        AMP * (TAU * (F0 * t + (f1 - F0) * t * t / (2.0 * dur))).sin()
    }

    fn sweep_pcm(rate: u32, f1: f64, dur: f64) -> Vec<i16> {
        let n = (f64::from(rate) * dur) as usize;
        (0..n)
            .map(|i| (sweep(i as f64 / f64::from(rate), f1, dur) * 32768.0).round() as i16)
            .collect()
    }

    /// SNR (dB) of `out` (full scale 1.0, at `rate`) against the exact sweep, leaving out
    /// `skip` samples at both ends.
    fn snr(out: &[f64], rate: u32, f1: f64, dur: f64, skip: usize) -> f64 {
        let (mut sig, mut err) = (0.0, 0.0);
        for (n, &y) in out.iter().enumerate().take(out.len() - skip).skip(skip) {
            let x = sweep(n as f64 / f64::from(rate), f1, dur);
            sig += x * x;
            err += (y - x) * (y - x);
        }
        10.0 * (sig / err).log10()
    }

    /// Resamples a 2 s sweep to 80 % of the lower Nyquist frequency through the sink; returns
    /// the SNR of the output against the sweep computed at the target rate.
    fn sweep_snr(q: Quality, from: u32, to: u32, format: SampleFormat) -> f64 {
        let dur = 2.0;
        let f1 = 0.4 * f64::from(from.min(to));
        let input = sweep_pcm(from, f1, dur);
        let (mut s, seen) = sink(to, format, q);
        run(&mut s, from, &input, from as usize / 50);
        let seen = seen.lock().unwrap();
        let out: Vec<f64> = match format {
            SampleFormat::I16 => seen.pcm[&1]
                .iter()
                .map(|&x| f64::from(x) / 32768.0)
                .collect(),
            SampleFormat::F32 => seen.float[&1].iter().map(|&x| f64::from(x)).collect(),
        };
        assert_eq!(
            out.len() as u64,
            scale(input.len() as u64, from, to),
            "exact output length"
        );
        assert_eq!(seen.bad_pos, 0);
        // the edges (signal onset and cut-off) ring for about the filter's delay
        let skip = plan(q, from, to).unwrap().latency_samples() + to as usize / 100;
        snr(&out, to, f1, dur, skip)
    }

    /// Lowest SNR each profile must reach on the sweep (module docs).
    fn snr_floor(q: Quality) -> f64 {
        match q {
            Quality::Fast => 35.0,
            Quality::Balanced => 70.0,
            Quality::Best => 90.0,
        }
    }

    #[test]
    fn sweep_snr_per_profile_against_the_exact_signal() {
        let mut low = Vec::new();
        for (from, to) in [
            (16000, 48000),
            (24000, 16000),
            (16000, 8000),
            (16000, 44100),
        ] {
            for q in QUALITIES {
                let db = sweep_snr(q, from, to, SampleFormat::I16);
                println!("{from} -> {to} {:>8}: SNR {db:.1} dB", q.name());
                if db < snr_floor(q) {
                    low.push(format!("{from}->{to} {}: {db:.1} dB", q.name()));
                }
            }
        }
        assert!(low.is_empty(), "below the profile's floor: {low:?}");
    }

    #[test]
    fn f32_output_reaches_the_inner_sink_unquantised() {
        let db = sweep_snr(Quality::Best, 16000, 48000, SampleFormat::F32);
        println!("16000 -> 48000 best, f32: SNR {db:.1} dB");
        assert!(db >= 90.0, "{db}");
        // f32 pass-through is the i16 samples scaled by 1/32768, exactly
        let (mut s, seen) = sink(16000, SampleFormat::F32, Quality::Best);
        let input: Vec<i16> = (0..1000).map(|i| (i * 37 - 18000) as i16).collect();
        run(&mut s, 16000, &input, 320);
        let seen = seen.lock().unwrap();
        let want: Vec<f32> = input.iter().map(|&x| f32::from(x) / 32768.0).collect();
        assert_eq!(seen.float[&1], want);
        assert!(seen.pcm.is_empty() && seen.frames.is_empty());
    }

    #[test]
    fn f32_into_a_sink_that_takes_only_i16_is_an_error() {
        let n = Arc::new(AtomicU64::new(0));
        let mut s = ResampleSink::new(
            48000,
            SampleFormat::F32,
            Quality::Fast,
            Box::new(NullSink::new(n.clone())),
        );
        let c = contract::call(1);
        s.open(&contract::stream(&c, 1, None, 16000)).unwrap();
        let e = s
            .write(&AudioFrame::new(1, 1, 0, 16000, &[5; 320]))
            .unwrap_err();
        assert!(e.to_string().contains("does not take f32"), "{e}");
    }

    #[test]
    fn passes_the_sink_contract_around_a_null_sink() {
        for rate in [48000, 16000, 8000, 44100] {
            for q in QUALITIES {
                let n = Arc::new(AtomicU64::new(0));
                let mut s = ResampleSink::new(
                    rate,
                    SampleFormat::I16,
                    q,
                    Box::new(NullSink::new(n.clone())),
                );
                contract::run(&mut s);
                // stream 1: 10 frames of 320 + a 640 gap; stream 2: 10 frames; the 24 kHz
                // stream left open: 480 samples, flushed by shutdown
                let want =
                    scale(3840, 16000, rate) + scale(3200, 16000, rate) + scale(480, 24000, rate);
                assert_eq!(n.load(Ordering::Relaxed), want, "{rate} {q:?}");
            }
        }
    }

    #[test]
    fn passes_the_sink_contract_with_f32_output() {
        let (mut s, seen) = sink(24000, SampleFormat::F32, Quality::Balanced);
        contract::run(&mut s);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.float[&1].len() as u64 + seen.gaps[&1][0], 3840 * 3 / 2);
        assert_eq!(seen.float[&2].len(), 3200 * 3 / 2);
        assert_eq!(seen.float[&3].len(), 480, "24 kHz stream passes through");
        assert_eq!(seen.bad_pos, 0);
        assert_eq!(seen.shutdowns, 1);
    }

    #[test]
    fn round_trips_keep_the_duration_and_the_signal() {
        for (a, b) in [(16000u32, 48000u32), (24000, 44100)] {
            for q in QUALITIES {
                let (rec, seen) = Rec::new(false);
                let back = ResampleSink::new(a, SampleFormat::I16, q, Box::new(rec));
                let mut there = ResampleSink::new(b, SampleFormat::I16, q, Box::new(back));
                let dur = 1.2345; // not a whole number of frames
                let f1 = 0.3 * f64::from(a);
                let input = sweep_pcm(a, f1, dur);
                run(&mut there, a, &input, a as usize / 50);
                let seen = seen.lock().unwrap();
                assert_eq!(seen.info[&1].sample_rate, a);
                let out = &seen.pcm[&1];
                let diff = out.len().abs_diff(input.len());
                assert!(diff <= a as usize / 50, "{a}->{b}->{a}: {diff} samples off");
                assert!(diff <= 1, "{a}->{b}->{a}: exact to the sample: {diff}");
                let out: Vec<f64> = out.iter().map(|&x| f64::from(x) / 32768.0).collect();
                let skip = 2 * plan(q, a, b).unwrap().latency_samples();
                let db = snr(&out, a, f1, dur, skip);
                println!("{a} -> {b} -> {a} {:>8}: SNR {db:.1} dB", q.name());
                assert!(db >= snr_floor(q) - 3.0, "{a}->{b}->{a} {q:?}: {db:.1} dB");
            }
        }
    }

    /// A tiny deterministic generator for odd sizes.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn gaps_convert_exactly_over_many_calls() {
        for (from, to) in [(24000u32, 22050u32), (16000, 44100), (24000, 8000)] {
            let (mut s, seen) = sink(to, SampleFormat::I16, Quality::Fast);
            let c = contract::call(3);
            s.open(&contract::stream(&c, 1, None, from)).unwrap();
            let mut rng = 42;
            let (mut total, mut pos) = (0u64, 0u64);
            for _ in 0..1500 {
                let n = 1 + (lcg(&mut rng) % 480) as usize;
                let samples: Vec<i16> = (0..n).map(|k| (k as i16) * 11).collect();
                s.write(&AudioFrame::new(3, 1, pos, from, &samples))
                    .unwrap();
                pos += n as u64;
                let g = lcg(&mut rng) % 50;
                s.gap(3, 1, g).unwrap();
                pos += g;
                total += n as u64 + g;
                // at every gap the inner stream is exactly floor(total × to / from) long
                assert_eq!(
                    seen.lock().unwrap().len[&1],
                    total * u64::from(to) / u64::from(from)
                );
            }
            s.close(3, 1, &StreamStats::default()).unwrap();
            let seen = seen.lock().unwrap();
            let gaps: u64 = seen.gaps[&1].iter().sum();
            assert_eq!(
                seen.pcm[&1].len() as u64 + gaps,
                total * u64::from(to) / u64::from(from)
            );
            assert_eq!(seen.bad_pos, 0);
        }
        // only gaps: one-sample gaps add up to exactly one second
        let (mut s, seen) = sink(22050, SampleFormat::I16, Quality::Best);
        let c = contract::call(4);
        s.open(&contract::stream(&c, 1, None, 24000)).unwrap();
        for _ in 0..24000 {
            s.gap(4, 1, 1).unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.gaps[&1].iter().sum::<u64>(), 22050);
        assert!(seen.gaps[&1].iter().all(|&g| g <= 1));
    }

    #[test]
    fn equal_rates_pass_through_bit_exact() {
        let (mut s, seen) = sink(16000, SampleFormat::I16, Quality::Fast);
        let c = contract::call(5);
        let info = Arc::new(StreamInfo {
            call_offset: 1234,
            ..(*contract::stream(&c, 1, Some("8:acs:a"), 16000)).clone()
        });
        s.open(&info).unwrap();
        let mut sent = Vec::new();
        let mut pos = 0;
        for i in 0..20u64 {
            let samples: Vec<i16> = (0..320)
                .map(|k| ((k * 7919 + i * 104729) % 65536) as u16 as i16)
                .collect();
            let mut f = AudioFrame::new(5, 1, pos, 16000, &samples);
            f.acs_silent = i % 3 == 0;
            f.voiced = i % 2 == 0;
            s.write(&f).unwrap();
            sent.push(f);
            pos += 320;
            if i == 10 {
                s.gap(5, 1, 333).unwrap();
                pos += 333;
            }
        }
        let ev = CallEvent::SpeechEnded {
            stream: 1,
            start: 17,
            end: 4711,
        };
        s.event(&c, &ev).unwrap();
        let stats = StreamStats {
            frames: 20,
            samples: 6733,
            ..Default::default()
        };
        s.close(5, 1, &stats).unwrap();
        let seen = seen.lock().unwrap();
        assert!(
            Arc::ptr_eq(&seen.info[&1], &info),
            "the stream info is handed on as is"
        );
        assert_eq!(seen.frames.len(), sent.len());
        for (got, want) in seen.frames.iter().zip(&sent) {
            assert_eq!(got.samples(), want.samples());
            assert_eq!(
                (got.pos, got.sample_rate, got.acs_silent, got.voiced),
                (want.pos, want.sample_rate, want.acs_silent, want.voiced)
            );
        }
        assert_eq!(seen.gaps[&1], vec![333]);
        assert_eq!(seen.events, vec![ev]);
        assert_eq!(seen.closed, vec![(1, stats)]);
        assert_eq!(seen.bad_pos, 0);
    }

    #[test]
    fn stream_info_events_stats_and_flags_are_converted() {
        let (mut s, seen) = sink(48000, SampleFormat::I16, Quality::Best);
        let c = contract::call(6);
        let info = Arc::new(StreamInfo {
            call_offset: 1000,
            ..(*contract::stream(&c, 1, Some("8:acs:b"), 16000)).clone()
        });
        s.open(&info).unwrap();
        let inner = seen.lock().unwrap().info[&1].clone();
        assert_eq!((inner.sample_rate, inner.call_offset), (48000, 3000));
        assert_eq!(
            StreamInfo {
                sample_rate: 16000,
                call_offset: 1000,
                ..(*inner).clone()
            },
            *info
        );
        for i in 0..5 {
            let mut f = AudioFrame::new(6, 1, i * 320, 16000, &[1000; 320]);
            f.voiced = true;
            f.acs_silent = i == 4;
            s.write(&f).unwrap();
        }
        s.event(
            &c,
            &CallEvent::SpeechStarted {
                stream: 1,
                pos: 161,
            },
        )
        .unwrap();
        let dtmf = CallEvent::Dtmf {
            tone: "7".into(),
            participant: None,
            unix_ms: Some(5),
        };
        s.event(&c, &dtmf).unwrap();
        let stats = StreamStats {
            frames: 5,
            samples: 1600,
            filled_samples: 7,
            voiced_samples: 1600,
            ..Default::default()
        };
        s.close(6, 1, &stats).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.events,
            vec![
                CallEvent::SpeechStarted {
                    stream: 1,
                    pos: 483
                },
                dtmf
            ]
        );
        let (_, st) = seen.closed[0];
        assert_eq!(
            (st.frames, st.samples, st.filled_samples, st.voiced_samples),
            (5, 4800, 21, 4800)
        );
        assert_eq!(seen.pcm[&1].len(), 4800);
        assert!(seen
            .frames
            .iter()
            .all(|f| f.voiced && f.sample_rate == 48000));
        assert!(seen.frames.iter().any(|f| f.acs_silent));
        assert!(seen.frames.iter().all(|f| f.len() <= 960));
    }

    #[test]
    fn end_call_and_shutdown_flush_streams_left_open() {
        let (mut s, seen) = sink(8000, SampleFormat::I16, Quality::Balanced);
        let c = contract::call(8);
        s.open(&contract::stream(&c, 1, None, 24000)).unwrap();
        s.open(&contract::stream(&c, 2, None, 24000)).unwrap();
        s.write(&AudioFrame::new(8, 1, 0, 24000, &[300; 500]))
            .unwrap();
        s.write(&AudioFrame::new(8, 2, 0, 24000, &[300; 700]))
            .unwrap();
        s.end_call(&c, &EndReason::PeerClosed).unwrap();
        let c2 = contract::call(9);
        s.open(&contract::stream(&c2, 3, None, 16000)).unwrap();
        s.write(&AudioFrame::new(9, 3, 0, 16000, &[300; 333]))
            .unwrap();
        s.shutdown().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.pcm[&1].len(), 166);
        assert_eq!(seen.pcm[&2].len(), 233);
        assert_eq!(seen.pcm[&3].len(), 166);
        assert_eq!(seen.ended, vec![8]);
        assert_eq!(seen.shutdowns, 1);
        assert!(s.streams.is_empty());
        drop(seen);
        assert!(matches!(
            s.write(&AudioFrame::new(8, 1, 0, 24000, &[1; 10])),
            Err(SinkError::UnknownStream(1))
        ));
    }

    #[test]
    fn a_frame_at_another_rate_than_its_stream_is_refused() {
        let (mut s, _) = sink(48000, SampleFormat::I16, Quality::Best);
        let c = contract::call(2);
        s.open(&contract::stream(&c, 1, None, 16000)).unwrap();
        let e = s
            .write(&AudioFrame::new(2, 1, 0, 24000, &[1; 480]))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("24000 Hz frame on a 16000 Hz stream"),
            "{e}"
        );
    }

    #[test]
    fn latency_per_profile_is_as_documented() {
        // (from, to, [fast, balanced, best]) in output samples: the module docs' table
        let table: [(u32, u32, [usize; 3]); 14] = [
            (16000, 8000, [20, 40, 80]),
            (24000, 8000, [20, 40, 80]),
            (24000, 16000, [40, 80, 160]),
            (16000, 24000, [60, 120, 240]),
            (16000, 22050, [441, 441, 441]),
            (24000, 22050, [147, 147, 294]),
            (16000, 32000, [80, 160, 320]),
            (24000, 32000, [80, 160, 320]),
            (16000, 44100, [441, 441, 441]),
            (24000, 44100, [147, 294, 441]),
            (16000, 48000, [120, 240, 480]),
            (24000, 48000, [120, 240, 480]),
            (48000, 16000, [40, 80, 160]),
            (44100, 16000, [160, 160, 160]),
        ];
        for (from, to, want) in table {
            for (q, want) in QUALITIES.into_iter().zip(want) {
                let p = plan(q, from, to).unwrap();
                assert_eq!(p.latency_samples(), want, "{from}->{to} {q:?}: {p:?}");
                assert_eq!(p.block_in % 2 + p.block_out % 2, 0, "even blocks");
                // and rubato agrees with the plan
                let c = Converter::new(q, from, to).unwrap();
                assert_eq!(c.fft.output_delay(), want);
            }
        }
        assert_eq!(
            plan(Quality::Best, 16000, 48000).unwrap().latency_ms(48000),
            10.0
        );
        assert!(plan(Quality::Best, 0, 48000).is_err());
    }

    #[test]
    fn steady_state_reuses_the_same_buffers() {
        for q in QUALITIES {
            let mut c = Converter::new(q, 24000, 16000).unwrap();
            let sizes = [480, 479, 960, 1, 320, 481, 959];
            let frame = [123i16; MAX_FRAME_SAMPLES];
            c.push(&frame[..480]).unwrap();
            c.out.clear();
            let before = (
                c.input.as_ptr(),
                c.input.capacity(),
                c.out.as_ptr(),
                c.out.capacity(),
                c.block.as_ptr(),
            );
            for i in 0..2000 {
                c.push(&frame[..sizes[i % sizes.len()]]).unwrap();
                c.out.clear();
                if i % 500 == 499 {
                    // what a flush asks for: the pending input, converted, and the delay
                    c.finish(c.input.len() * 2 / 3 + c.delay).unwrap();
                    c.out.clear();
                }
            }
            let after = (
                c.input.as_ptr(),
                c.input.capacity(),
                c.out.as_ptr(),
                c.out.capacity(),
                c.block.as_ptr(),
            );
            assert_eq!(before, after, "{q:?}: a buffer was reallocated");
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sinks {
        sinks: Vec<SinkConfig>,
    }

    #[test]
    fn validation_reports_rate_format_and_nesting_problems() {
        let wav = SinkConfig::Wav(WavSinkConfig::default());
        assert!(ResampleSinkConfig::new(8000, wav.clone())
            .validate()
            .is_empty());
        let mut c = ResampleSinkConfig::new(11025, wav.clone());
        c.format = SampleFormat::F32;
        c.queue_frames = 1;
        let p = SinkConfig::Resample(c).validate();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("rate 11025 must be one of 8000, 16000, 22050"));
        assert!(p[1].starts_with("queue_frames 1"));
        assert!(p[2].contains("format \"f32\"") && p[2].contains("wav sink takes i16 only"));
        let nested = ResampleSinkConfig::new(
            16000,
            SinkConfig::Resample(ResampleSinkConfig::new(48000, wav.clone())),
        );
        assert_eq!(
            nested.validate(),
            vec!["then must not be another resample: convert once, straight to the final rate"]
        );
        let broken = ResampleSinkConfig::new(
            48000,
            SinkConfig::Wav(WavSinkConfig {
                workers: 0,
                ..Default::default()
            }),
        );
        assert_eq!(
            broken.validate(),
            vec!["then (wav): workers 0 must be between 1 and 64"]
        );
        // values serde refuses
        for bad in [
            "rate = 8000\nquality = \"ultra\"\nthen = { type = \"null\" }",
            "rate = 8000\nformat = \"f64\"\nthen = { type = \"null\" }",
            "rate = 8000\nspeed = 2\nthen = { type = \"null\" }",
            "rate = 8000",
            "rate = 8000\nthen = { type = \"null\", colour = 1 }",
        ] {
            let text = format!("[[sinks]]\ntype = \"resample\"\n{bad}\n");
            assert!(toml::from_str::<Sinks>(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn recordings_dir_and_queue_settings_reach_the_inner_sink() {
        let mut c = SinkConfig::Resample(ResampleSinkConfig::new(
            8000,
            SinkConfig::Wav(WavSinkConfig {
                workers: 3,
                header_interval_ms: 250,
                ..Default::default()
            }),
        ));
        c.set_recordings_dir(std::path::Path::new("elsewhere"));
        let SinkConfig::Resample(r) = &c else {
            unreachable!()
        };
        let SinkConfig::Wav(w) = &*r.then else {
            unreachable!()
        };
        assert_eq!(w.dir, std::path::PathBuf::from("elsewhere"));
        let q = c.queue();
        assert_eq!(
            (q.audio_capacity, q.workers, q.flush_interval),
            (4096, 3, Duration::from_millis(250))
        );
        assert!(!c.takes_f32());
    }

    #[test]
    fn a_resample_wav_chain_from_toml_writes_a_wav_at_the_target_rate() {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "[[sinks]]\ntype = \"resample\"\nrate = 48000\nquality = \"balanced\"\n\
             then = {{ type = \"wav\", dir = '{}', participants = false }}\n",
            tmp.path().display()
        );
        let cfg: Sinks = toml::from_str(&text).unwrap();
        let c = &cfg.sinks[0];
        assert_eq!(c.kind(), "resample");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        // what --print-config writes loads back to the same config
        let printed = toml::to_string(&cfg).unwrap();
        assert_eq!(toml::from_str::<Sinks>(&printed).unwrap(), cfg, "{printed}");

        let metrics = Metrics::new();
        let w = c.start(&metrics).unwrap();
        let call = contract::call(11);
        w.handle
            .send_control(SinkMsg::Open(contract::stream(&call, 1, None, 16000)));
        let tone: Vec<i16> = (0..320)
            .map(|k| (8000.0 * (TAU * 440.0 * k as f64 / 16000.0).sin()) as i16)
            .collect();
        for i in 0..50 {
            assert!(w
                .handle
                .send_audio(&Arc::new(AudioFrame::new(11, 1, i * 320, 16000, &tone))));
        }
        w.handle.send_control(SinkMsg::Gap {
            call: 11,
            stream: 1,
            samples: 160,
        });
        w.handle.send_control(SinkMsg::Close {
            call: 11,
            stream: 1,
            stats: Box::default(),
        });
        w.handle.send_control(SinkMsg::CallEnded {
            call: call.clone(),
            reason: EndReason::PeerClosed,
        });
        assert_eq!(
            w.finish_and_join(Instant::now() + Duration::from_secs(10)),
            0
        );
        let day = std::fs::read_dir(tmp.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let dir = day.join(sanitize(&call.label));
        let mut r = hound::WavReader::open(dir.join("mixed.wav")).unwrap();
        assert_eq!(r.spec().sample_rate, 48000);
        let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(samples.len(), (50 * 320 + 160) * 3);
        assert!(samples[48000 / 10..48000 / 5].iter().any(|&s| s > 7000));
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("call.json")).unwrap()).unwrap();
        assert_eq!(doc["format"]["sampleRate"], 48000);
        assert_eq!(metrics.recordings_finalised.get(), 1);
        let m = metrics.sink("resample");
        assert_eq!((m.frames.get(), m.write_errors.get()), (50, 0));
    }
}
