//! Hostile AudioData timestamps over a real connection: a sender whose timestamps jump ahead on
//! every frame gets no more silence written than real time allows (the WAV stays bounded), and
//! one far-future timestamp among real frames costs no real frame. Every frame sent is in the
//! recording, sample-exact.

mod common;
use common::*;
use std::time::Instant;

/// A 20 ms frame at 16 kHz whose samples are all non-zero and tell frames apart, so a WAV read
/// back splits into silence fill (zeros) and frames (everything else).
fn coded_frame(k: usize) -> Vec<i16> {
    (0..320).map(|i| ((k * 7 + i) % 2000 + 1) as i16).collect()
}

fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_on_every_frame_writes_no_more_silence_than_real_time() {
    // default gap fill slack (5 s); 1 s gaps at most, so main writes 1 s per jumping frame
    let mut gw = Gw::start(|c| c.media.max_gap_fill_ms = 1000).await;
    let started = Instant::now();
    let mut ws = gw.connect("/ws", "jumper").await;
    let mut msgs = vec![metadata(16_000)];
    let mut sent: Vec<i16> = Vec::new();
    let mut k = 0i64; // timestamp slot (T0 + 20 k ms)
    let mut push = |msgs: &mut Vec<String>, k: i64, n: usize| {
        let f = coded_frame(n);
        msgs.push(audio(&f, k, None, false));
        sent.extend_from_slice(&f);
    };
    let mut n = 0;
    for _ in 0..5 {
        push(&mut msgs, k, n);
        k += 1;
        n += 1;
    }
    // 300 frames, each stamped 1.5 s after the one before (past max_gap_fill_ms every time)
    for _ in 0..300 {
        k += 75;
        push(&mut msgs, k, n);
        n += 1;
    }
    // then 50 real frames on from the last one
    for _ in 0..50 {
        k += 1;
        push(&mut msgs, k, n);
        n += 1;
    }
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    let wall = started.elapsed();
    let m = gw.metrics().await;
    assert!(gw.shutdown().await.clean());

    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    let path = gw.call_dir("jumper").join("mixed.wav");
    let (_, got) = read_wav(&path);
    let fill: Vec<i16> = got.iter().copied().filter(|s| *s == 0).collect();
    let frames: Vec<i16> = got.iter().copied().filter(|s| *s != 0).collect();
    assert!(
        frames == sent,
        "every frame recorded, in order, sample-exact"
    );
    assert_eq!(fill.len() as f64, v("acs_gateway_gap_fill_samples_total"));
    // silence: at most the slack (5 s) plus the time the call really lasted, plus a second
    let bound = (5.0 + wall.as_secs_f64() + 1.0) * 16_000.0;
    assert!(
        (fill.len() as f64) <= bound,
        "{} samples of fill in a {wall:?} call (bound {bound})",
        fill.len()
    );
    let bytes = std::fs::metadata(&path).unwrap().len() as f64;
    assert!(
        bytes <= 44.0 + 2.0 * (sent.len() as f64 + bound),
        "{bytes} bytes on disk"
    );
    assert!(
        v("acs_gateway_timestamp_outliers_total") >= 250.0,
        "the refused jumps are counted"
    );
    assert_eq!(v("acs_gateway_late_frames_total"), 0.0);
    let s = &call_json(&gw.call_dir("jumper"))["streams"][0];
    assert_eq!(s["frames"], 355);
    assert_eq!(
        s["timestampOutliers"].as_f64(),
        Some(v("acs_gateway_timestamp_outliers_total"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_far_future_timestamp_among_real_frames_costs_no_real_frame() {
    let mut gw = Gw::start(|_| {}).await;
    const Y9999: &str = "9999-12-31T23:59:59.999Z";
    // "replaced": frame 10 carries the absurd stamp; "extra": an additional frame does
    let mut expected = Vec::new();
    for call in ["replaced", "extra"] {
        let mut ws = gw.connect("/ws", call).await;
        let mut msgs = vec![metadata(16_000)];
        let mut want: Vec<i16> = Vec::new();
        for k in 0..60usize {
            let f = coded_frame(k);
            if k == 10 {
                let odd = coded_frame(1000);
                msgs.push(audio_bytes_at(&pcm_bytes(&odd), Y9999, None, false));
                want.extend_from_slice(&odd);
                if call == "replaced" {
                    continue;
                }
            }
            msgs.push(audio(&f, k as i64, None, false));
            want.extend_from_slice(&f);
        }
        send_all(&mut ws, msgs).await;
        close_normally(ws).await;
        gw.wait_no_connections().await;
        expected.push((call, want));
    }
    let m = gw.metrics().await;
    assert!(gw.shutdown().await.clean());
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    for (call, want) in &expected {
        let (_, got) = read_wav(&gw.call_dir(call).join("mixed.wav"));
        assert_eq!(got.len(), want.len(), "{call}: no silence, no frame lost");
        assert!(got == *want, "{call}: sample-exact");
        let s = &call_json(&gw.call_dir(call))["streams"][0];
        assert_eq!(s["timestampOutliers"], 1, "{call}");
        assert_eq!(s["lateFrames"], 0, "{call}");
        assert_eq!(s["filledSamples"], 0, "{call}");
    }
    assert_eq!(v("acs_gateway_timestamp_outliers_total"), 2.0);
    assert_eq!(v("acs_gateway_late_frames_total"), 0.0);
    assert_eq!(v("acs_gateway_gap_fill_samples_total"), 0.0);
    assert_eq!(v("acs_gateway_timeline_resyncs_total"), 0.0);
}
