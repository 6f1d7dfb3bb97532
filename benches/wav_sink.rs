//! The WAV recorder sink's own costs, driven by hand on the bench thread (no queue, no worker):
//!
//! * `wav_sink/write/{16000,24000}` — one 20 ms frame into an open participant file, with the
//!   header refresh (`Sink::flush`) every 25 frames as the 500 ms header tick does. One element
//!   is one frame.
//! * `wav_sink/gap/1s_16000` — one second of gap fill (16 000 zero samples). One element is one
//!   gap.
//! * `wav_sink/open_close` — a call's whole life with no audio: open a stream (call folder, file,
//!   `call.json`), close it and end the call (finalise, `call.json` rewritten). One element is one
//!   call; this is what a connect/close churn test pays per call.
//!
//! Everything is written into a temporary directory. Files are closed and deleted outside the
//! timed part every few thousand frames, so the disk use stays bounded however long criterion
//! runs.

use acs_media_gateway::pipeline::frame::{AudioFrame, CallInfo, EndReason, StreamStats};
use acs_media_gateway::pipeline::sink::{contract, Sink};
use acs_media_gateway::sinks::wav::{WavSink, WavSinkConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames written into one file before it is closed and deleted (outside the timing).
const FRAMES_PER_FILE: u64 = 15_000;
/// Frames between header refreshes: the default 500 ms header tick at 20 ms per frame.
const FRAMES_PER_FLUSH: u64 = 25;

fn sink(dir: &Path) -> WavSink {
    WavSink::new(
        WavSinkConfig {
            dir: dir.into(),
            ..Default::default()
        },
        None,
    )
}

/// A speech-like frame of `n` samples.
fn frame_samples(n: usize) -> Vec<i16> {
    (0..n)
        .map(|j| ((j as f64 * 0.09).sin() * 6000.0) as i16)
        .collect()
}

/// One recorded call at a time: a participant stream in its own call folder.
struct Recording {
    sink: WavSink,
    call: Arc<CallInfo>,
    next_call: u64,
    root: tempfile::TempDir,
    written: u64,
    rate: u32,
}

impl Recording {
    fn new(rate: u32) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut r = Self {
            sink: sink(root.path()),
            call: contract::call(1),
            next_call: 1,
            root,
            written: 0,
            rate,
        };
        r.open();
        r
    }

    fn open(&mut self) {
        self.call = contract::call(self.next_call);
        let s = contract::stream(&self.call, self.next_call, Some("8:acs:alice"), self.rate);
        self.sink.open(&s).unwrap();
        self.written = 0;
    }

    /// Closes the current call, deletes its files and opens the next one (untimed).
    fn rotate(&mut self) {
        let id = self.call.id;
        self.sink.close(id, id, &StreamStats::default()).unwrap();
        self.sink
            .end_call(&self.call, &EndReason::PeerClosed)
            .unwrap();
        for day in std::fs::read_dir(self.root.path()).unwrap() {
            std::fs::remove_dir_all(day.unwrap().path()).unwrap();
        }
        self.next_call += 1;
        self.open();
    }
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("wav_sink/write");
    g.throughput(Throughput::Elements(1));
    for rate in [16_000u32, 24_000] {
        let samples = frame_samples(rate as usize / 50);
        g.bench_function(rate.to_string(), |b| {
            let mut rec = Recording::new(rate);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if rec.written >= FRAMES_PER_FILE {
                        rec.rotate();
                    }
                    let n = left.min(FRAMES_PER_FILE - rec.written);
                    let id = rec.call.id;
                    let mut pos = rec.written * samples.len() as u64;
                    let t = Instant::now();
                    for k in 0..n {
                        let f = AudioFrame::new(id, id, pos, rate, &samples);
                        rec.sink.write(black_box(&f)).unwrap();
                        pos += samples.len() as u64;
                        if (rec.written + k + 1).is_multiple_of(FRAMES_PER_FLUSH) {
                            rec.sink.flush().unwrap();
                        }
                    }
                    total += t.elapsed();
                    rec.written += n;
                    left -= n;
                }
                total
            });
        });
    }
    g.finish();
}

fn gap(c: &mut Criterion) {
    let mut g = c.benchmark_group("wav_sink/gap");
    g.throughput(Throughput::Elements(1));
    const RATE: u32 = 16_000;
    // one second is 50 frames' worth of file
    const GAPS_PER_FILE: u64 = FRAMES_PER_FILE / 50;
    g.bench_function("1s_16000", |b| {
        let mut rec = Recording::new(RATE);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if rec.written >= GAPS_PER_FILE {
                    rec.rotate();
                }
                let n = left.min(GAPS_PER_FILE - rec.written);
                let id = rec.call.id;
                let t = Instant::now();
                for _ in 0..n {
                    rec.sink.gap(id, id, black_box(u64::from(RATE))).unwrap();
                }
                total += t.elapsed();
                rec.written += n;
                left -= n;
            }
            total
        });
    });
    g.finish();
}

fn open_close(c: &mut Criterion) {
    const CALLS_PER_DIR: u64 = 2_000;
    let mut g = c.benchmark_group("wav_sink");
    g.throughput(Throughput::Elements(1));
    g.bench_function("open_close", |b| {
        let root = tempfile::tempdir().unwrap();
        let mut sink = sink(root.path());
        let mut next = 1u64;
        let mut in_dir = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if in_dir >= CALLS_PER_DIR {
                    for day in std::fs::read_dir(root.path()).unwrap() {
                        std::fs::remove_dir_all(day.unwrap().path()).unwrap();
                    }
                    in_dir = 0;
                }
                let n = left.min(CALLS_PER_DIR - in_dir);
                // call infos built outside the timing (the gateway builds them at accept)
                let calls: Vec<_> = (next..next + n)
                    .map(|id| {
                        let c = contract::call(id);
                        let s = contract::stream(&c, id, None, 16_000);
                        (c, s)
                    })
                    .collect();
                let t = Instant::now();
                for (c, s) in &calls {
                    sink.open(s).unwrap();
                    sink.close(c.id, s.id, &StreamStats::default()).unwrap();
                    sink.end_call(c, &EndReason::PeerClosed).unwrap();
                }
                total += t.elapsed();
                next += n;
                in_dir += n;
                left -= n;
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, write, gap, open_close);
criterion_main!(benches);
