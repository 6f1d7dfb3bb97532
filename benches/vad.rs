//! Per-frame cost of each speech detector (`silence.detector`): `energy`, `adaptive` (default)
//! and `neural`, at 16 and 24 kHz, plus the DTMF check alone. One iteration is one
//! `SilenceDetector::process` of a 20 ms frame (the classifier and the speech-edge rules) over a
//! second of speech-like audio in noise, so voiced and unvoiced frames both occur — what the
//! ingress hot path spends on silence detection per frame of one participant.
//!
//! `neural` runs Silero's network on every 512th 16 kHz sample (a chunk every 1.6 frames), so its
//! mean per iteration mixes frames that run the network (~170 µs) and frames that only buffer; the
//! network is loaded once, before the first measurement (the first `SilenceDetector::new`).

use acs_media_gateway::pipeline::silence::{DetectorKind, SilenceConfig, SilenceDetector};
use acs_media_gateway::pipeline::vad::DtmfDetector;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

/// One second of audio at `rate` in 20 ms frames: a 140 Hz voice with harmonics, switched on and
/// off every 200 ms, over white noise about 15 dB below it.
fn frames(rate: u32) -> Vec<Vec<i16>> {
    let per = rate as usize / 50;
    let mut noise = 0x2545_f491_u32;
    (0..50)
        .map(|k| {
            (0..per)
                .map(|j| {
                    let t = (k * per + j) as f64 / f64::from(rate);
                    let on = if (k / 10) % 2 == 0 { 1.0 } else { 0.0 };
                    let voice: f64 = (1..=12)
                        .map(|h| {
                            (std::f64::consts::TAU * 140.0 * f64::from(h) * t).sin() / f64::from(h)
                        })
                        .sum();
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    let n = f64::from(noise % 2001) - 1000.0;
                    (voice * on * 4000.0 + n) as i16
                })
                .collect()
        })
        .collect()
}

fn detectors(c: &mut Criterion) {
    let mut g = c.benchmark_group("vad_per_frame");
    for rate in [16_000u32, 24_000] {
        let input = frames(rate);
        for kind in [
            DetectorKind::Energy,
            DetectorKind::Adaptive,
            DetectorKind::Neural,
        ] {
            let cfg = SilenceConfig {
                detector: kind,
                ..SilenceConfig::default()
            };
            let mut d = SilenceDetector::new(&cfg, rate);
            let mut i = 0;
            g.bench_function(BenchmarkId::new(kind.as_str(), rate), |b| {
                b.iter(|| {
                    let f = &input[i % input.len()];
                    i += 1;
                    black_box(d.process(black_box(f), false))
                })
            });
        }
        let dtmf = DtmfDetector::new(rate);
        let f = &input[0];
        g.bench_function(BenchmarkId::new("dtmf_check", rate), |b| {
            b.iter(|| black_box(dtmf.is_dtmf(black_box(f))))
        });
    }
    g.finish();
}

criterion_group!(benches, detectors);
criterion_main!(benches);
