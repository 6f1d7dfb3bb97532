//! Handing audio frames to a sink worker through the real queue machinery
//! (`spawn_blocking_sink`, `SinkHandle`, `FanOut`) with a `NullSink` on the other side. One
//! iteration is a batch of [`BATCH`] shared 20 ms frames (320 samples, 16 kHz); criterion's
//! throughput figure is per frame.
//!
//! * `sink_handoff/send_audio` — the producer's side only: `SinkHandle::send_audio` of one
//!   frame (an `Arc` clone of the same frame each time). The worker drains the batch outside the
//!   timed part.
//! * `sink_handoff/end_to_end/{1,2}_workers` — from the first `FanOut::audio` until the worker(s)
//!   have written every frame (the null sink's sample counter, polled with a bounded wait). With 2
//!   workers the frames alternate between two calls so both workers get half. This includes the
//!   worker's batching sleep (`QueueConfig::poll_interval`, 5 ms by default) — the real latency
//!   a frame sees, amortised over the batch.
//! * `sink_handoff/end_to_end/1_workers_poll_100us` — the same with the smallest batching sleep
//!   (100 µs), so the figure is closer to the hand-off and processing cost itself.

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::frame::{AudioFrame, SharedFrame, SinkMsg};
use acs_media_gateway::pipeline::sink::{contract, spawn_blocking_sink, QueueConfig, SinkWorkers};
use acs_media_gateway::pipeline::FanOut;
use acs_media_gateway::sinks::null::NullSink;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames per timed batch (well under the default 4096-frame queue, so nothing is dropped).
const BATCH: u64 = 1024;
/// Samples per frame: 20 ms at 16 kHz.
const FRAME: usize = 320;
/// Longest the bench waits for a worker to catch up before it gives up.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// A null sink behind `workers` worker threads, with one open stream per call in `calls`.
struct Rig {
    workers: SinkWorkers,
    fanout: FanOut,
    samples: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    frames: Vec<SharedFrame>,
}

impl Rig {
    fn new(workers: usize, calls: u64, poll: Duration) -> Self {
        let metrics = Metrics::new();
        let samples = Arc::new(AtomicU64::new(0));
        let s2 = samples.clone();
        let w = spawn_blocking_sink(
            "null",
            move |_| Box::new(NullSink::new(s2.clone())),
            &QueueConfig {
                workers,
                poll_interval: poll,
                ..QueueConfig::default()
            },
            metrics.sink("null"),
        )
        .unwrap();
        let pcm: Vec<i16> = (0..FRAME)
            .map(|j| ((j as f64 * 0.09).sin() * 6000.0) as i16)
            .collect();
        let mut frames = Vec::new();
        // call ids 1..=calls: with 2 workers, call % 2 puts one call on each worker
        for id in 1..=calls {
            let call = contract::call(id);
            let stream = contract::stream(&call, id, Some("8:acs:alice"), 16_000);
            assert!(w.handle.send_control(SinkMsg::Open(stream)));
            frames.push(Arc::new(AudioFrame::new(id, id, 0, 16_000, &pcm)));
        }
        Self {
            fanout: FanOut::new(vec![w.handle.clone()]),
            workers: w,
            samples,
            metrics,
            frames,
        }
    }

    /// Waits (bounded) until the sink has written `target` samples in all.
    fn wait_for(&self, target: u64) {
        let deadline = Instant::now() + WAIT_LIMIT;
        while self.samples.load(Ordering::Relaxed) < target {
            assert!(
                Instant::now() < deadline,
                "sink worker did not catch up in {WAIT_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    fn finish(self) {
        let drops = self.metrics.sink("null").audio_drops.get();
        assert_eq!(drops, 0, "every frame reached the sink");
        let left = self
            .workers
            .finish_and_join(Instant::now() + Duration::from_secs(5));
        assert_eq!(left, 0, "workers finished");
    }
}

fn send_audio(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink_handoff");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let rig = Rig::new(1, 1, QueueConfig::default().poll_interval);
    let handle = rig.workers.handle.clone();
    let frame = rig.frames[0].clone();
    g.bench_function("send_audio", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = rig.samples.load(Ordering::Relaxed) + BATCH * FRAME as u64;
                let t = Instant::now();
                for _ in 0..BATCH {
                    black_box(handle.send_audio(black_box(&frame)));
                }
                total += t.elapsed();
                // untimed: let the worker drain before the next batch
                rig.wait_for(target);
            }
            total
        })
    });
    g.finish();
    rig.finish();
}

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink_handoff/end_to_end");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    let default_poll = QueueConfig::default().poll_interval;
    for (workers, poll, suffix) in [
        (1usize, default_poll, ""),
        (2, default_poll, ""),
        (1, Duration::from_micros(100), "_poll_100us"),
    ] {
        let rig = Rig::new(workers, workers as u64, poll);
        g.bench_function(format!("{workers}_workers{suffix}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let target = rig.samples.load(Ordering::Relaxed) + BATCH * FRAME as u64;
                    let t = Instant::now();
                    for k in 0..BATCH as usize {
                        rig.fanout.audio(&rig.frames[k % rig.frames.len()]);
                    }
                    rig.wait_for(target);
                    total += t.elapsed();
                }
                total
            })
        });
        rig.finish();
    }
    g.finish();
}

criterion_group!(benches, send_audio, end_to_end);
criterion_main!(benches);
