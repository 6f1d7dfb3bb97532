//! The whole per-frame path — parse → base64 decode → timeline → ring → silence → (mixer) →
//! fan-out to no-op sinks — at 16 and 24 kHz, mixed and 4-participant unmixed. One iteration is
//! one AudioData message. Budget (README "Performance"): under 1 µs per frame on one core. `many_calls`
//! runs the same path over 400 open calls in turn, so each frame meets its call's state cold.
//!
//! The null sinks are drained by hand between timed batches of 16 frames, so the figure is the
//! ingress task's own cost on one core; with sink threads running alongside on a 2-core machine
//! the numbers mostly measure the scheduler.

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::sink::{ManualSink, QueueConfig};
use acs_media_gateway::pipeline::SinkHandle;
use acs_media_gateway::pipeline::{FanOut, Pipeline, PipelineConfig};
use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_media_gateway::sinks::null::NullSink;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` ticks of speech-like audio for each participant, with advancing timestamps.
fn messages(rate: u32, participants: &[Option<&str>], n: usize) -> Vec<String> {
    let per = rate as usize / 50;
    let mut out = Vec::with_capacity(n * participants.len());
    for k in 0..n {
        for (i, p) in participants.iter().enumerate() {
            let on = (k / 25) % 2 == 0;
            let bytes: Vec<u8> = (0..per)
                .map(|j| {
                    let t = (k * per + j) as f64 / f64::from(rate);
                    let a = if on { 6000.0 } else { 30.0 };
                    ((t * 300.0 * (i + 1) as f64 * std::f64::consts::TAU).sin() * a) as i16
                })
                .flat_map(i16::to_le_bytes)
                .collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut ts = String::new();
            format_timestamp(1_731_698_172_925 + 20 * k as i64, &mut ts);
            let mut m = String::new();
            inbound_audio_data_json(&mut m, &b64, &ts, *p, !on);
            out.push(m);
        }
    }
    out
}

/// `n` no-op (null) sinks driven by hand, so the bench thread measures only its own work:
/// everything the ingress task does per frame, on one core, without another core stealing the
/// cache lines it writes.
fn null_sinks(metrics: &Arc<Metrics>, n: usize) -> (Vec<SinkHandle>, Vec<ManualSink>) {
    let q = QueueConfig {
        audio_capacity: 1 << 14,
        ..QueueConfig::default()
    };
    (0..n)
        .map(|_| {
            ManualSink::new(
                Box::new(NullSink::new(Arc::new(AtomicU64::new(0)))),
                &q,
                metrics.sink("null"),
            )
        })
        .unzip()
}

/// Times `iters` frames in batches of one 20 ms tick's worth for a few calls; the sinks drain
/// between batches, outside the timed part (as their own threads would).
fn run(
    pipeline: &Arc<Pipeline>,
    sinks: &mut [ManualSink],
    rate: u32,
    msgs: &[String],
    state: &mut (acs_media_gateway::pipeline::CallPipeline, usize),
    iters: u64,
) -> Duration {
    const BATCH: u64 = 16;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BATCH.min(iters - done);
        // A frame is parsed right after the socket read copied it into tungstenite's buffer, so
        // it is in cache; touch the batch first so the timing does not measure RAM latency.
        for k in 0..n as usize {
            let m = &msgs[(state.1 + k) % msgs.len()];
            black_box(m.as_bytes().iter().fold(0u8, |a, &b| a ^ b));
        }
        let t = Instant::now();
        for _ in 0..n {
            let (call, i) = state;
            if *i == msgs.len() {
                // a new call so timestamps stay contiguous
                *call = pipeline.start_call(Some("bench".into()), None, None, 1_700_000_000_000);
                call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
                    .unwrap();
                *i = 0;
            }
            black_box(call.handle(black_box(msgs[*i].as_bytes())).ok());
            *i += 1;
        }
        total += t.elapsed();
        for s in sinks.iter_mut() {
            s.drain();
        }
        done += n;
    }
    total
}

fn per_frame(c: &mut Criterion) {
    let unmixed = [
        Some("8:acs:3d20e1de-0f28-41c5-a6f3-0c8b4c2b1d22_0000001a-aaaa"),
        Some("8:acs:3d20e1de-0f28-41c5-a6f3-0c8b4c2b1d22_0000001a-bbbb"),
        Some("4:+14255550123"),
        Some("28:orgid:6b45c5b6-1c34-47c0-8980-11e98d47d23f"),
    ];
    let mut g = c.benchmark_group("per_frame");
    g.throughput(Throughput::Elements(1));
    for (name, rate, parts) in [
        ("mixed_16k", 16_000u32, &[None][..]),
        ("mixed_24k", 24_000, &[None][..]),
        ("unmixed4_16k", 16_000, &unmixed[..]),
        ("unmixed4_24k", 24_000, &unmixed[..]),
    ] {
        bench_case(&mut g, name, rate, parts, 2);
    }
    g.finish();
}

fn bench_case(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rate: u32,
    parts: &[Option<&str>],
    sinks: usize,
) {
    let metrics = Metrics::new();
    let (handles, mut manual) = null_sinks(&metrics, sinks);
    let pipeline = Pipeline::new(
        PipelineConfig::default(),
        FanOut::new(handles),
        metrics.clone(),
    );
    let msgs = messages(rate, parts, 3000);
    let mut call = pipeline.start_call(Some("bench".into()), None, None, 1_700_000_000_000);
    call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
        .unwrap();
    let mut state = (call, 0usize);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| run(&pipeline, &mut manual, rate, &msgs, &mut state, iters))
    });
    drop(state);
    for s in &mut manual {
        s.drain();
    }
    let lost = metrics.sink("null").audio_drops.get() + metrics.frame_pool_exhausted.get();
    assert_eq!(lost, 0, "{name}: every frame reached every sink");
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan_out_mixed_16k");
    g.throughput(Throughput::Elements(1));
    for n in [0usize, 1, 4, 8] {
        bench_case(&mut g, &format!("{n}_sinks"), 16_000, &[None], n);
    }
    g.finish();
}

/// Calls served at once by `many_calls`: the real-time load `acs-sim load --calls 400` offers.
const MANY: usize = 400;

/// The same path with [`MANY`] calls open, each getting one frame in turn (as ACS sends them: one
/// frame per call every 20 ms), so every frame finds its call's state — participant, timeline,
/// detector, frame pool, buffers — as cold as it is in the server, 399 other calls later. The
/// single-call groups above keep that state in L1 and show the instructions; this one shows what
/// a frame costs when the working set is hundreds of calls.
fn many_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("many_calls");
    g.throughput(Throughput::Elements(1));
    for (name, rate) in [
        ("mixed_16k_400_calls", 16_000u32),
        ("mixed_24k_400_calls", 24_000),
    ] {
        let metrics = Metrics::new();
        let (handles, mut manual) = null_sinks(&metrics, 1);
        let pipeline = Pipeline::new(
            PipelineConfig::default(),
            FanOut::new(handles),
            metrics.clone(),
        );
        let msgs = messages(rate, &[None], 500);
        let start = |k: usize| {
            let mut call =
                pipeline.start_call(Some(format!("bench-{k}")), None, None, 1_700_000_000_000);
            call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
                .unwrap();
            call
        };
        let mut calls: Vec<_> = (0..MANY).map(|k| (start(k), 0usize)).collect();
        // one reused receive buffer, as the socket read fills the connection's buffer right
        // before the frame is parsed
        let mut rx = Vec::with_capacity(4096);
        let mut next = 0usize;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (call, i) = &mut calls[next];
                    if *i == msgs.len() {
                        *call = start(next); // timestamps stay contiguous
                        *i = 0;
                    }
                    rx.clear();
                    rx.extend_from_slice(msgs[*i].as_bytes());
                    let t = Instant::now();
                    black_box(call.handle(black_box(&rx)).ok());
                    total += t.elapsed();
                    *i += 1;
                    next = (next + 1) % MANY;
                    if next.is_multiple_of(16) {
                        for s in &mut manual {
                            s.drain();
                        }
                    }
                }
                total
            })
        });
        drop(calls);
        for s in &mut manual {
            s.drain();
        }
        let lost = metrics.sink("null").audio_drops.get() + metrics.frame_pool_exhausted.get();
        assert_eq!(lost, 0, "{name}: every frame reached the sink");
    }
    g.finish();
}

criterion_group!(benches, per_frame, fan_out, many_calls);
criterion_main!(benches);
