//! The resample sink's cost per 20 ms input frame, for each quality profile, 16 kHz → 48 kHz,
//! 24 kHz → 16 kHz and 16 kHz → 8 kHz (and pass-through as the baseline). One iteration is one
//! `Sink::write` of a 20 ms frame of speech-like audio into a resample sink whose inner sink is a
//! null sink: the conversion, building the i16 output frames and handing them on — what the
//! resample sink's worker thread spends per frame of one stream.

use acs_media_gateway::pipeline::frame::{AudioFrame, CallInfo, StreamInfo, StreamKind};
use acs_media_gateway::pipeline::Sink;
use acs_media_gateway::sinks::null::NullSink;
use acs_media_gateway::sinks::resample::{Quality, ResampleSink, SampleFormat};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One second of speech-like audio at `rate` in 20 ms frames: a 140 Hz voice with harmonics,
/// syllable-rate amplitude modulation and a little noise.
fn frames(rate: u32) -> Vec<AudioFrame> {
    let per = rate as usize / 50;
    let mut noise = 0x2545_f491_u32;
    (0..50)
        .map(|k| {
            let samples: Vec<i16> = (0..per)
                .map(|j| {
                    let t = (k * per + j) as f64 / f64::from(rate);
                    let env = 0.5 + 0.5 * (std::f64::consts::TAU * 4.0 * t).sin();
                    let voice: f64 = (1..=12)
                        .map(|h| {
                            (std::f64::consts::TAU * 140.0 * f64::from(h) * t).sin() / f64::from(h)
                        })
                        .sum();
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    let n = f64::from(noise % 2001) - 1000.0;
                    (voice * env * 6000.0 + n) as i16
                })
                .collect();
            AudioFrame::new(1, 1, (k * per) as u64, rate, &samples)
        })
        .collect()
}

fn stream(rate: u32) -> Arc<StreamInfo> {
    Arc::new(StreamInfo {
        call: Arc::new(CallInfo::new(1, Some("bench".into()), None, None, 0)),
        id: 1,
        kind: StreamKind::Mixed,
        participant: None,
        sample_rate: rate,
        start_unix_ms: None,
        call_offset: 0,
    })
}

fn per_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample_per_20ms_frame");
    g.throughput(Throughput::Elements(1));
    let cases = [
        (
            16000,
            48000,
            &[Quality::Fast, Quality::Balanced, Quality::Best][..],
        ),
        (
            24000,
            16000,
            &[Quality::Fast, Quality::Balanced, Quality::Best][..],
        ),
        (
            16000,
            8000,
            &[Quality::Fast, Quality::Balanced, Quality::Best][..],
        ),
        (16000, 16000, &[Quality::Best][..]),
    ];
    for (from, to, qualities) in cases {
        let input = frames(from);
        for &q in qualities {
            let null = NullSink::new(Arc::new(AtomicU64::new(0)));
            let mut sink = ResampleSink::new(to, SampleFormat::I16, q, Box::new(null));
            sink.open(&stream(from)).expect("open");
            let name = if from == to { "pass_through" } else { q.name() };
            let mut i = 0;
            g.bench_function(BenchmarkId::new(format!("{from}->{to}"), name), |b| {
                b.iter(|| {
                    sink.write(black_box(&input[i % input.len()]))
                        .expect("write");
                    i += 1;
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, per_frame);
criterion_main!(benches);
