//! The steady-state AudioData path, paced like ACS traffic, (parse → decode → timeline → ring → silence → mixer →
//! fan-out) makes no heap allocation: a counting global allocator watches the test thread while
//! thousands of frames go through, mixed and unmixed, at 16 and 24 kHz.
#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition; it only forwards to System

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::sink::{ManualSink, QueueConfig};
use acs_media_gateway::pipeline::{FanOut, Handled, Pipeline, PipelineConfig};
use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_media_gateway::sinks::null::NullSink;
use base64::Engine as _;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frames(rate: u32, participants: &[Option<&str>], n: usize, toggle: bool) -> Vec<String> {
    let per = rate as usize / 50;
    let mut out = Vec::new();
    for k in 0..n {
        for (i, p) in participants.iter().enumerate() {
            // speech-like: a tone switched on and off every 400 ms, so speech edges fire too
            let on = !toggle || (k / 20) % 2 == 0;
            let bytes: Vec<u8> = (0..per)
                .flat_map(|j| {
                    let t = (k * per + j) as f64 / f64::from(rate);
                    let s = if on {
                        (t * 440.0 * (i + 1) as f64 * std::f64::consts::TAU).sin() * 8000.0
                    } else {
                        0.0
                    };
                    (s as i16).to_le_bytes()
                })
                .collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut ts = String::new();
            format_timestamp(1_731_698_172_925 + 20 * k as i64, &mut ts);
            let mut msg = String::new();
            inbound_audio_data_json(&mut msg, &b64, &ts, *p, !on);
            out.push(msg);
        }
    }
    out
}

fn count_allocs(rate: u32, participants: &[Option<&str>], toggle: bool) -> (u64, usize) {
    let metrics = Metrics::new();
    let q = QueueConfig {
        audio_capacity: 1 << 16,
        ..QueueConfig::default()
    };
    // two null sinks drained by hand between ticks (as their worker threads would), so the
    // measurement does not depend on thread scheduling
    let (handles, mut sinks): (Vec<_>, Vec<ManualSink>) = (0..2)
        .map(|_| {
            ManualSink::new(
                Box::new(NullSink::new(Arc::new(AtomicU64::new(0)))),
                &q,
                metrics.sink("null"),
            )
        })
        .unzip();
    let pipeline = Pipeline::new(
        PipelineConfig::default(),
        FanOut::new(handles),
        metrics.clone(),
    );
    let mut call = pipeline.start_call(Some("alloc-test".into()), None, None, 1_700_000_000_000);
    call.handle(inbound_audio_metadata_json(rate, "sub").as_bytes())
        .unwrap();
    let msgs = frames(rate, participants, 300, toggle);
    let per_tick = participants.len();
    let warm = 100 * per_tick;
    for (i, m) in msgs.iter().enumerate() {
        let measuring = i >= warm;
        ON.with(|o| o.set(measuring));
        let r = call.handle(m.as_bytes());
        ON.with(|o| o.set(false));
        assert_eq!(r.unwrap(), Handled::Audio);
        if (i + 1) % per_tick == 0 {
            for s in &mut sinks {
                s.drain();
            }
        }
    }
    let n = COUNT.with(Cell::get);
    COUNT.with(|c| c.set(0));
    drop(call);
    for s in &mut sinks {
        s.drain();
    }
    assert_eq!(
        metrics.frame_pool_exhausted.get() + metrics.sink("null").audio_drops.get(),
        0
    );
    (n, msgs.len() - warm)
}

const CASES: [(u32, &[Option<&str>]); 4] = [
    (16_000, &[None]),
    (24_000, &[None]),
    (
        16_000,
        &[
            Some("8:acs:a"),
            Some("8:acs:b"),
            Some("8:acs:c"),
            Some("4:+14255550123"),
        ],
    ),
    (24_000, &[Some("8:acs:a"), Some("8:acs:b")]),
];

#[test]
fn steady_state_audio_path_does_not_allocate() {
    for (rate, parts) in CASES {
        let (allocs, frames) = count_allocs(rate, parts, false);
        assert_eq!(
            allocs,
            0,
            "{rate} Hz × {} participants: {allocs} allocations over {frames} frames",
            parts.len()
        );
    }
}

#[test]
fn only_speech_events_allocate_one_each() {
    for (rate, parts) in CASES {
        // speech toggles every 20 frames: 200 frames per participant → 10 edges each
        let (allocs, frames) = count_allocs(rate, parts, true);
        let edges = (frames / parts.len() / 20 * parts.len()) as u64;
        assert_eq!(
            allocs,
            edges,
            "{rate} Hz × {}: {allocs} allocations, {edges} speech edges",
            parts.len()
        );
    }
}

/// The outbound `AudioData` writer (playback to ACS, in the JS SDK helper's shape) reuses its
/// buffer: once it has room for a frame, writing further frames allocates nothing.
#[test]
fn outbound_audio_writer_does_not_allocate_per_frame() {
    use acs_media_gateway::protocol::media::write_outbound_audio;
    for frame_bytes in [640usize, 960] {
        let pcm: Vec<u8> = (0..frame_bytes).map(|i| (i * 31 % 251) as u8).collect();
        let mut json = String::new();
        write_outbound_audio(&mut json, &pcm); // warm-up: sizes the buffer
        COUNT.with(|c| c.set(0));
        ON.with(|o| o.set(true));
        for k in 0..1_000 {
            write_outbound_audio(&mut json, &pcm[..frame_bytes - (k % 2) * 2]);
        }
        ON.with(|o| o.set(false));
        assert_eq!(COUNT.with(Cell::get), 0, "{frame_bytes}-byte frames");
        assert!(
            json.ends_with(r#"","isSilent":false},"stopAudio":{}}"#),
            "{json}"
        );
    }
}

/// The call's outbound track (what the playback writer sent, recorded as the `bot` stream):
/// once warm, a paced frame and its hand-off to the sinks allocate nothing; only a pause (a gap,
/// one control message per utterance, no heap) or the stream's open and close are more.
#[test]
fn outbound_track_does_not_allocate_per_frame() {
    for rate in [16_000u32, 24_000] {
        let per = rate as usize / 50;
        let metrics = Metrics::new();
        let q = QueueConfig {
            audio_capacity: 1 << 16,
            ..QueueConfig::default()
        };
        let (handle, mut sink) = ManualSink::new(
            Box::new(NullSink::new(Arc::new(AtomicU64::new(0)))),
            &q,
            metrics.sink("null"),
        );
        let pipeline = Pipeline::new(
            PipelineConfig::default(),
            FanOut::new(vec![handle]),
            metrics.clone(),
        );
        let call = pipeline.start_call(Some("alloc-out".into()), None, None, 1_700_000_000_000);
        let mut track = call.outbound_track();
        let pcm: Vec<u8> = (0..per * 2).map(|i| (i * 31 % 251) as u8).collect();
        for k in 0..300u64 {
            // utterances of 40 frames with 10-frame pauses between them
            let live = k * per as u64 + (k / 40) * 10 * per as u64;
            ON.with(|o| o.set(k >= 100));
            track.sent(&pcm, rate, live);
            if k % 40 == 39 {
                track.stopped();
            }
            ON.with(|o| o.set(false));
            sink.drain();
        }
        assert_eq!(COUNT.with(Cell::get), 0, "{rate} Hz");
        COUNT.with(|c| c.set(0));
        drop(track);
        sink.drain();
        assert_eq!(
            metrics.frame_pool_exhausted.get() + metrics.sink("null").audio_drops.get(),
            0
        );
    }
}
