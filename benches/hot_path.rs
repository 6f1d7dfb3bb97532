//! The whole per-frame path — parse → base64 decode → timeline → ring → silence → (mixer) →
//! fan-out to no-op sinks — at 16 and 24 kHz, mixed and 4-participant unmixed. One iteration is
//! one AudioData message. Budget (DESIGN.md): under 1 µs per frame on one core.

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::sink::{spawn_blocking_sink, QueueConfig, SinkWorkers};
use acs_media_gateway::pipeline::{FanOut, Pipeline, PipelineConfig};
use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_media_gateway::sinks::null::NullSink;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

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

fn null_sinks(metrics: &Arc<Metrics>, n: usize) -> Vec<SinkWorkers> {
    let q = QueueConfig {
        audio_capacity: 1 << 14,
        ..QueueConfig::default()
    };
    (0..n)
        .map(|_| {
            let c = Arc::new(AtomicU64::new(0));
            spawn_blocking_sink(
                "null",
                move |_| Box::new(NullSink::new(c.clone())),
                &q,
                metrics.sink("null"),
            )
            .unwrap()
        })
        .collect()
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
        let metrics = Metrics::new();
        let sinks = null_sinks(&metrics, 2);
        let fan = FanOut::new(sinks.iter().map(|s| s.handle.clone()).collect());
        let pipeline = Pipeline::new(PipelineConfig::default(), fan, metrics.clone());
        // a long, continuous stream: the timeline sees contiguous timestamps throughout
        let msgs = messages(rate, parts, 3000);
        let mut call = pipeline.start_call(Some("bench".into()), None, None);
        call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
            .unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                if i == msgs.len() {
                    // start a new call so timestamps stay contiguous
                    call = pipeline.start_call(Some("bench".into()), None, None);
                    call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
                        .unwrap();
                    i = 0;
                }
                let r = call.handle(black_box(msgs[i].as_bytes()));
                i += 1;
                black_box(r)
            })
        });
        drop(call);
        let drops: u64 = metrics.sink("null").audio_drops.get();
        for s in sinks {
            s.finish_and_join(std::time::Instant::now() + std::time::Duration::from_secs(10));
        }
        eprintln!("{name}: null-sink queue drops during the run: {drops}");
    }
    g.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan_out_mixed_16k");
    g.throughput(Throughput::Elements(1));
    for n in [0usize, 1, 4, 8] {
        let metrics = Metrics::new();
        let sinks = null_sinks(&metrics, n);
        let fan = FanOut::new(sinks.iter().map(|s| s.handle.clone()).collect());
        let pipeline = Pipeline::new(PipelineConfig::default(), fan, metrics.clone());
        let msgs = messages(16_000, &[None], 3000);
        let mut call = pipeline.start_call(None, None, None);
        let mut i = 0usize;
        g.bench_function(format!("{n}_sinks"), |b| {
            b.iter(|| {
                if i == msgs.len() {
                    call = pipeline.start_call(None, None, None);
                    i = 0;
                }
                let r = call.handle(black_box(msgs[i].as_bytes()));
                i += 1;
                black_box(r)
            })
        });
        drop(call);
        for s in sinks {
            s.finish_and_join(std::time::Instant::now() + std::time::Duration::from_secs(10));
        }
    }
    g.finish();
}

criterion_group!(benches, per_frame, fan_out);
criterion_main!(benches);
