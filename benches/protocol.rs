//! Benchmarks for the inbound protocol hot path: JSON parsing (serde_json vs simd-json on the
//! same envelope types), base64 decoding (base64 vs base64-simd), timestamp parsing (ours vs
//! chrono), and the whole per-frame path.
//!
//! Run: `cargo bench --bench protocol -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use acs_media_gateway::protocol::media::InboundEnvelope;
use acs_media_gateway::protocol::{
    decode_base64_into, decode_base64_pcm16, inbound_audio_data_json, parse_inbound,
    parse_inbound_str, parse_timestamp, write_outbound_audio, Inbound,
};
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Participant raw id of an unmixed stream (ACS user, realistic length).
const PARTICIPANT: &str =
    "8:acs:3d20e1de-0f28-41c5-a6f3-0c8b4c2b1d22_0000001a-5c3e-7f21-85f4-343a0d00b1c2";
const TIMESTAMP: &str = "2024-11-15T19:16:12.925Z";

/// Deterministic pseudo-random PCM (noise-like, so base64 has no easy structure).
fn pcm(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Frame {
    name: &'static str,
    json: Vec<u8>,
    b64: String,
    pcm_len: usize,
}

fn frames() -> Vec<Frame> {
    let mut out = Vec::new();
    for (rate, pcm_len) in [("16k", 640usize), ("24k", 960)] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(pcm(pcm_len));
        for (suffix, participant) in [("", Some(PARTICIPANT)), ("_mixed", None)] {
            let mut json = String::new();
            inbound_audio_data_json(&mut json, &b64, TIMESTAMP, participant, false);
            let name: &'static str = Box::leak(format!("{rate}{suffix}").into_boxed_str());
            out.push(Frame {
                name,
                json: json.into_bytes(),
                b64: b64.clone(),
                pcm_len,
            });
        }
    }
    out
}

fn parse_simd<'a>(
    frame: &[u8],
    buf: &'a mut Vec<u8>,
    buffers: &mut simd_json::Buffers,
) -> Inbound<'a> {
    // The socket hands us immutable bytes; simd-json needs a mutable copy.
    buf.clear();
    buf.extend_from_slice(frame);
    let env: InboundEnvelope<'a> =
        simd_json::serde::from_slice_with_buffers(buf.as_mut_slice(), buffers).unwrap();
    env.into_inbound().unwrap()
}

fn bench_parse(c: &mut Criterion) {
    let frames = frames();
    let mut buf = Vec::with_capacity(4096);
    let mut buffers = simd_json::Buffers::new(4096);

    // Both parsers must agree before we time them.
    for f in &frames {
        let a = parse_inbound(&f.json).unwrap();
        let b = parse_simd(&f.json, &mut buf, &mut buffers);
        assert_eq!(a, b, "{}", f.name);
        let Inbound::AudioData(a) = a else { panic!() };
        assert_eq!(a.data, f.b64);
    }

    let mut g = c.benchmark_group("parse");
    for f in &frames {
        g.throughput(Throughput::Bytes(f.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("serde_json", f.name),
            &f.json,
            |b, json| {
                b.iter(|| {
                    let msg = parse_inbound(black_box(json)).unwrap();
                    black_box(&msg);
                })
            },
        );
        // Variant without the up-front UTF-8 check (serde_json validates strings itself, but
        // not strings it skips): shows what `parse_inbound`'s `from_utf8` + `from_str` costs.
        g.bench_with_input(
            BenchmarkId::new("serde_json_from_slice", f.name),
            &f.json,
            |b, json| {
                b.iter(|| {
                    let env: InboundEnvelope<'_> = serde_json::from_slice(black_box(json)).unwrap();
                    black_box(&env.into_inbound().unwrap());
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("simd_json", f.name), &f.json, |b, json| {
            b.iter(|| {
                let msg = parse_simd(black_box(json), &mut buf, &mut buffers);
                black_box(&msg);
            })
        });
    }
    g.finish();
}

fn bench_base64(c: &mut Criterion) {
    let mut g = c.benchmark_group("base64");
    for len in [640usize, 960] {
        let raw = pcm(len);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let mut dst = vec![0u8; len + 3];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("base64_crate", len), &b64, |b, s| {
            b.iter(|| {
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(black_box(s.as_bytes()), &mut dst)
                    .unwrap();
                black_box(&dst[..n]);
            })
        });
        // each result is checked by a run of its own, outside the timed closure: a filtered run
        // (`cargo bench -- frame`) skips the closure, and the check must not depend on it
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(b64.as_bytes(), &mut dst)
            .unwrap();
        assert_eq!(&dst[..n], &raw[..]);
        g.bench_with_input(BenchmarkId::new("base64_simd", len), &b64, |b, s| {
            b.iter(|| {
                let out = base64_simd::STANDARD
                    .decode(
                        black_box(s.as_bytes()),
                        base64_simd::Out::from_slice(&mut dst),
                    )
                    .unwrap();
                black_box(out);
            })
        });
        let mut vec = Vec::with_capacity(len);
        g.bench_with_input(BenchmarkId::new("decode_base64_into", len), &b64, |b, s| {
            b.iter(|| {
                let n = decode_base64_into(black_box(s.as_bytes()), &mut vec).unwrap();
                black_box(&vec[..n]);
            })
        });
        assert_eq!(decode_base64_into(b64.as_bytes(), &mut vec).unwrap(), len);
        assert_eq!(vec, raw);
    }
    g.finish();

    // Outbound direction: encoding into a reused String.
    let mut g = c.benchmark_group("base64_encode");
    let raw = pcm(960);
    let mut s = String::with_capacity(2048);
    g.throughput(Throughput::Bytes(960));
    g.bench_function(BenchmarkId::new("base64_crate", 960), |b| {
        b.iter(|| {
            s.clear();
            base64::engine::general_purpose::STANDARD.encode_string(black_box(&raw), &mut s);
            black_box(&s);
        })
    });
    g.bench_function(BenchmarkId::new("base64_simd", 960), |b| {
        b.iter(|| {
            s.clear();
            base64_simd::STANDARD.encode_append(black_box(&raw), &mut s);
            black_box(&s);
        })
    });
    g.bench_function(BenchmarkId::new("write_outbound_audio", 960), |b| {
        b.iter(|| {
            write_outbound_audio(&mut s, black_box(&raw));
            black_box(&s);
        })
    });
    g.finish();
}

fn bench_timestamp(c: &mut Criterion) {
    assert_eq!(
        parse_timestamp(TIMESTAMP).unwrap().unix_ms,
        chrono::DateTime::parse_from_rfc3339(TIMESTAMP)
            .unwrap()
            .timestamp_millis()
    );
    let mut g = c.benchmark_group("timestamp");
    g.bench_function("parse_timestamp", |b| {
        b.iter(|| black_box(parse_timestamp(black_box(TIMESTAMP)).unwrap().unix_ms))
    });
    g.bench_function("chrono_rfc3339", |b| {
        b.iter(|| {
            black_box(
                chrono::DateTime::parse_from_rfc3339(black_box(TIMESTAMP))
                    .unwrap()
                    .timestamp_millis(),
            )
        })
    });
    g.finish();
}

/// The whole per-frame inbound path: parse, timestamp, base64 → PCM into a reused buffer.
fn bench_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let mut pcm_buf = Vec::with_capacity(960);
    for f in frames() {
        g.bench_with_input(BenchmarkId::new("full", f.name), &f.json, |b, json| {
            b.iter(|| {
                let Ok(Inbound::AudioData(a)) = parse_inbound(black_box(json)) else {
                    unreachable!()
                };
                let ts = a.timestamp.as_deref().and_then(parse_timestamp);
                let n = decode_base64_into(a.data.as_bytes(), &mut pcm_buf).unwrap();
                black_box((ts, a.participant(), a.silent, &pcm_buf[..n]));
            })
        });
        let Ok(Inbound::AudioData(a)) = parse_inbound(&f.json) else {
            unreachable!()
        };
        decode_base64_into(a.data.as_bytes(), &mut pcm_buf).unwrap();
        assert_eq!(pcm_buf.len(), f.pcm_len);
        // the gateway's own path: the text message is already UTF-8 (tungstenite checked it),
        // and the audio is decoded straight into samples
        let text = std::str::from_utf8(&f.json).unwrap();
        let mut samples: Vec<i16> = Vec::new();
        g.bench_with_input(BenchmarkId::new("gateway", f.name), text, |b, text| {
            b.iter(|| {
                let Ok(Inbound::AudioData(a)) = parse_inbound_str(black_box(text)) else {
                    unreachable!()
                };
                let ts = a.timestamp.as_deref().and_then(parse_timestamp);
                let n = decode_base64_pcm16(a.data.as_bytes(), &mut samples).unwrap();
                black_box((ts, a.participant(), a.silent, &samples[..n / 2]));
            })
        });
        let Ok(Inbound::AudioData(a)) = parse_inbound_str(text) else {
            unreachable!()
        };
        assert_eq!(
            decode_base64_pcm16(a.data.as_bytes(), &mut samples).unwrap(),
            f.pcm_len
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_parse,
    bench_base64,
    bench_timestamp,
    bench_frame
);
criterion_main!(benches);
