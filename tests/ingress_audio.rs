//! End to end over real WebSockets on 127.0.0.1: committed WAV fixtures streamed the way ACS
//! streams them (mixed, unmixed with 3 participants, 24 kHz, with gaps, reordering, duplicates
//! and silent frames) come out as WAV files equal sample for sample, with call.json and /metrics
//! telling the same story.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_16k_stream_is_recorded_sample_for_sample() {
    let mut gw = Gw::start(|_| {}).await;
    let (rate, pcm) = fixture("speech_16k.wav");
    assert_eq!(rate, 16_000);
    let fr = frames(&pcm, 320);
    let mut ws = gw.connect("/ws", "call-mixed-16k").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        fr.iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, None, false)),
    );
    msgs.push(r#"{"kind":"DtmfData","dtmfData":{"data":"4"}}"#.to_string());
    msgs.push(r#"{"kind":"DtmfData","dtmfData":{"data":"2"}}"#.to_string());
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");

    let dir = gw.call_dir("call-mixed-16k");
    let (r, got) = read_wav(&dir.join("mixed.wav"));
    assert_eq!(r, 16_000);
    assert_eq!(got.len(), pcm.len());
    assert!(got == pcm, "recording differs from the fixture");

    let doc = call_json(&dir);
    assert_eq!(doc["call"]["callConnectionId"], "call-mixed-16k");
    assert_eq!(doc["call"]["correlationId"], "corr-call-mixed-16k");
    assert_eq!(doc["call"]["endReason"], "peer closed");
    assert_eq!(doc["format"]["sampleRate"], 16_000);
    assert_eq!(doc["dtmfDigits"], "42");
    let s = &doc["streams"][0];
    assert_eq!(s["kind"], "mixed");
    assert_eq!(s["frames"], fr.len());
    assert_eq!(s["samples"], pcm.len());
    assert_eq!(s["gapsFilled"], 0);
    assert_eq!(s["complete"], true);
    assert_eq!(s["startTime"], "2024-11-15T19:16:12.925Z");
    // two sentences with a 700 ms pause (> 400 ms hang): two speech segments
    let segs = s["speechSegments"].as_array().unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    let (a0, a1) = (
        segs[0]["startMs"].as_u64().unwrap(),
        segs[0]["endMs"].as_u64().unwrap(),
    );
    let b0 = segs[1]["startMs"].as_u64().unwrap();
    assert!(
        (250..=400).contains(&a0) && (1400..=1560).contains(&a1),
        "{segs:?}"
    );
    assert!((2100..=2260).contains(&b0), "{segs:?}");
    let ratio = s["silenceRatio"].as_f64().unwrap();
    assert!((0.2..0.6).contains(&ratio), "silence ratio {ratio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmixed_three_participants_get_their_own_files_and_an_aligned_mix() {
    let mut gw = Gw::start(|_| {}).await;
    let ids = ["8:acs:alice-0001", "8:acs:bob-0002", "4:+14255550123"];
    let pcms: Vec<Vec<i16>> = [
        "speaker_a_16k.wav",
        "speaker_b_16k.wav",
        "speaker_c_16k.wav",
    ]
    .iter()
    .map(|n| fixture(n).1)
    .collect();
    // bob starts 10 frames (200 ms) after the others: the mix must place him there
    let starts = [0usize, 10, 0];
    let per: Vec<Vec<Vec<i16>>> = pcms.iter().map(|p| frames(p, 320)).collect();
    let ticks = per
        .iter()
        .zip(starts)
        .map(|(f, s)| f.len() + s)
        .max()
        .unwrap();
    let mut msgs = vec![metadata(16_000)];
    for k in 0..ticks {
        for (i, id) in ids.iter().enumerate() {
            if k >= starts[i] && k - starts[i] < per[i].len() {
                msgs.push(audio(&per[i][k - starts[i]], k as i64, Some(id), false));
            }
        }
    }
    let mut ws = gw.connect("/ws/tok-unmixed", "call-unmixed").await;
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());

    let dir = gw.call_dir("call-unmixed");
    let doc = call_json(&dir);
    let streams = doc["streams"].as_array().unwrap();
    let mut expected_mix = vec![0i32; ticks * 320];
    for (i, id) in ids.iter().enumerate() {
        let s = streams
            .iter()
            .find(|s| s["participantRawId"] == *id)
            .expect("stream in call.json");
        let (_, got) = read_wav(&dir.join(s["file"].as_str().unwrap()));
        assert!(got == pcms[i], "participant {id} differs");
        assert_eq!(s["callOffsetMs"], (starts[i] * 20) as u64);
        for (j, x) in pcms[i].iter().enumerate() {
            expected_mix[starts[i] * 320 + j] += i32::from(*x);
        }
    }
    let expected_mix: Vec<i16> = expected_mix
        .iter()
        .map(|x| (*x).clamp(-32768, 32767) as i16)
        .collect();
    let mix = streams
        .iter()
        .find(|s| s["kind"] == "mix")
        .expect("mix stream");
    assert_eq!(mix["file"], "mixed.wav");
    let (_, got) = read_wav(&dir.join("mixed.wav"));
    assert_eq!(got.len(), expected_mix.len());
    assert!(got == expected_mix, "mix differs from the aligned sum");
    // files were named from sanitised ids
    assert!(dir
        .join(
            streams
                .iter()
                .find(|s| s["participantRawId"] == "4:+14255550123")
                .unwrap()["file"]
                .as_str()
                .unwrap()
        )
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_at_24k_is_recorded_at_24k() {
    let mut gw = Gw::start(|_| {}).await;
    let (rate, pcm) = fixture("speech_24k.wav");
    assert_eq!(rate, 24_000);
    let fr = frames(&pcm, 480);
    let mut ws = gw.connect("/ws", "call-24k").await;
    let mut msgs = vec![metadata(24_000)];
    msgs.extend(
        fr.iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, None, false)),
    );
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    let metrics = gw.metrics().await;
    assert!(gw.shutdown().await.clean());
    let (r, got) = read_wav(&gw.call_dir("call-24k").join("mixed.wav"));
    assert_eq!(r, 24_000);
    assert!(got == pcm);
    let v = |s: &str| acs_sim::scrape::scrape_value(&metrics, s).unwrap_or(0.0);
    assert_eq!(
        v("acs_gateway_frames_total{kind=\"audio_data\"}"),
        fr.len() as f64
    );
    assert_eq!(v("acs_gateway_frames_total{kind=\"audio_metadata\"}"), 1.0);
    assert_eq!(v("acs_gateway_audio_bytes_total"), (pcm.len() * 2) as f64);
    assert_eq!(
        v("acs_gateway_decode_errors_total{reason=\"length_mismatch\"}"),
        0.0
    );
    assert_eq!(
        v("acs_gateway_frame_processing_seconds_count"),
        fr.len() as f64
    );
    assert_eq!(v("acs_gateway_frames_before_metadata_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_reordering_duplicates_and_silent_frames() {
    let mut gw = Gw::start(|_| {}).await;
    let (_, pcm) = fixture("speech_16k.wav");
    let fr = frames(&pcm, 320);
    // send order: frame 10 never sent (gap); 21 before 20 (20 arrives late); 30 twice;
    // frames of digital silence flagged silent as ACS does
    let mut order: Vec<usize> = (0..fr.len()).filter(|k| *k != 10).collect();
    let i20 = order.iter().position(|k| *k == 20).unwrap();
    order.swap(i20, i20 + 1);
    let i30 = order.iter().position(|k| *k == 30).unwrap();
    order.insert(i30 + 1, 30);
    let mut msgs = vec![metadata(16_000)];
    let mut silent = 0;
    for k in &order {
        let is_silent = fr[*k].iter().all(|s| *s == 0);
        silent += usize::from(is_silent);
        msgs.push(audio(&fr[*k], *k as i64, None, is_silent));
    }
    let mut ws = gw.connect("/ws", "call-faults").await;
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    let metrics = gw.metrics().await;
    assert!(gw.shutdown().await.clean());

    let mut expected = pcm.clone();
    for k in [10usize, 20] {
        expected[k * 320..(k + 1) * 320].fill(0);
    }
    let dir = gw.call_dir("call-faults");
    let (_, got) = read_wav(&dir.join("mixed.wav"));
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "gap and late frame become silence, the rest is intact"
    );
    let s = &call_json(&dir)["streams"][0];
    assert_eq!(s["gapsFilled"], 2);
    assert_eq!(s["filledSamples"], 640);
    assert_eq!(s["lateFrames"], 1);
    assert_eq!(s["duplicateFrames"], 1);
    assert_eq!(s["frames"], fr.len() - 2);
    assert!(silent > 10);
    // the stream counts accepted frames only: not the late frame 20, not the second 30
    let dropped_silent = [20usize, 30]
        .iter()
        .filter(|k| fr[**k].iter().all(|x| *x == 0))
        .count();
    assert_eq!(s["acsSilentFrames"], silent - dropped_silent);
    let v = |n: &str| acs_sim::scrape::scrape_value(&metrics, n).unwrap_or(-1.0);
    assert_eq!(v("acs_gateway_gaps_filled_total"), 2.0);
    assert_eq!(v("acs_gateway_gap_fill_samples_total"), 640.0);
    assert_eq!(v("acs_gateway_late_frames_total"), 1.0);
    assert_eq!(v("acs_gateway_duplicate_frames_total"), 1.0);
    assert_eq!(v("acs_gateway_silent_frames_acs_total"), silent as f64);
    assert_eq!(v("acs_gateway_speech_segments_total"), 2.0);
}
