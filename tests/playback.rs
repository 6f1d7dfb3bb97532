//! Bidirectional playback over a real media WebSocket: audio queued for a call leaves as
//! outbound `AudioData` 20 ms frames paced at real time (small bounded lead), equal to what was
//! queued; `stop` flushes the queue and sends `StopAudio` at once; reading never waits on writing.
//! Timing bounds here are loose (wall clock, real sockets, a loaded test machine); the exact
//! 20 ms pacing and the immediate `StopAudio` are asserted on tokio's paused clock in
//! `tests/playback_paced.rs`.

mod common;
use acs_media_gateway::pipeline::playback::{Enqueued, PlaybackTarget};
use acs_media_gateway::protocol::b64::decode_base64_into;
use acs_media_gateway::protocol::media::{parse_outbound, Outbound};
use common::*;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Reads outbound messages until `n` audio frames (or a stop) arrived; returns them with arrival times.
async fn read_outbound(ws: &mut Ws, n: usize) -> Vec<(Instant, Option<Vec<i16>>)> {
    let mut out: Vec<(Instant, Option<Vec<i16>>)> = Vec::new();
    let mut buf = Vec::new();
    while out.iter().filter(|(_, a)| a.is_some()).count() < n {
        let m = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("outbound in time")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        match parse_outbound(t.as_bytes()).unwrap() {
            Outbound::AudioData { data } => {
                let k = decode_base64_into(data.as_bytes(), &mut buf).unwrap();
                let s: Vec<i16> = buf[..k]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                out.push((Instant::now(), Some(s)));
            }
            Outbound::StopAudio => {
                out.push((Instant::now(), None));
                return out;
            }
            Outbound::Unknown { kind } => panic!("unexpected outbound kind {kind}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_audio_is_paced_out_as_acs_frames_and_stop_flushes_at_once() {
    let mut gw = Gw::start(|c| c.media.bidirectional = true).await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let mut ws = gw.connect("/ws", "playback").await;
    send_all(
        &mut ws,
        vec![metadata(16_000), audio(&tone[..320], 0, None, false)],
    )
    .await;
    let hub = gw.app().playback().clone();
    let call = eventually("the call registers for playback", STEP, || async {
        hub.calls().first().copied().ok_or("no call")
    })
    .await;
    assert!(hub.is_bidirectional(call));
    assert_eq!(hub.sample_rate(call), Some(16_000));

    // one second of tone → 50 frames, equal to what was queued, paced at 20 ms
    assert_eq!(hub.enqueue(call, &tone, 16_000), Enqueued::Queued);
    let t0 = Instant::now();
    let frames = read_outbound(&mut ws, 50).await;
    let elapsed = t0.elapsed();
    let got: Vec<i16> = frames
        .iter()
        .flat_map(|(_, a)| a.clone().unwrap())
        .collect();
    assert_eq!(got, tone, "outbound audio equals the queued audio");
    assert!(frames.iter().all(|(_, a)| a.as_ref().unwrap().len() == 320));
    // 50 frames, one every 20 ms after the first: about 49 × 20 ms (paced, not a flood)
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed <= Duration::from_millis(2000),
        "{elapsed:?}"
    );
    let gaps: Vec<f64> = frames
        .windows(2)
        .skip(3)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1000.0)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!((mean - 20.0).abs() < 5.0, "mean interval {mean:.2} ms");
    let within = gaps.iter().filter(|g| (**g - 20.0).abs() <= 10.0).count();
    assert!(
        within * 10 >= gaps.len() * 8,
        "80% of frames within 20±10 ms: {gaps:?}"
    );

    // stop: queued audio is flushed and StopAudio follows immediately
    assert_eq!(hub.enqueue(call, &tone, 16_000), Enqueued::Queued);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t_stop = Instant::now();
    assert!(hub.stop(call));
    let rest = read_outbound(&mut ws, usize::MAX).await;
    let (t_last, last) = rest.last().unwrap();
    assert!(last.is_none(), "ends with StopAudio");
    assert!(
        t_last.duration_since(t_stop) < Duration::from_millis(250),
        "StopAudio soon after the stop"
    );
    assert!(
        rest.len() < 15,
        "the flushed second of audio was not sent: {} frames",
        rest.len()
    );
    // nothing is queued or playing now: a second stop sends no StopAudio (counted once below)
    assert!(!hub.stop(call), "nothing left to stop");
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(
        !hub.is_bidirectional(call),
        "unregistered when the call ends"
    );
    let m = gw.metrics().await;
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    assert!(v("acs_gateway_playback_frames_total") >= 50.0);
    assert_eq!(v("acs_gateway_playback_stops_total"), 1.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_bidirectional_refuse_playback() {
    let mut gw = Gw::start(|_| {}).await;
    let mut ws = gw.connect("/ws", "one-way").await;
    send_all(&mut ws, vec![metadata(16_000)]).await;
    let hub = gw.app().playback().clone();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(hub.calls().is_empty());
    assert_eq!(hub.enqueue(1, &[0; 320], 16_000), Enqueued::NoCall);
    assert!(!hub.stop(1));
    close_normally(ws).await;
    gw.shutdown().await;
}
