//! The playback writer's timing on tokio's paused clock (no socket: the writer sends into a
//! recording sink). Here the pacing and `StopAudio` bounds are exact: every frame leaves 20 ms
//! after the one before it and `StopAudio` leaves at the instant playback is stopped, so a test
//! machine's load cannot make them flaky. The wall-clock tests over real sockets
//! (`tests/playback.rs`, `tests/bidirectional_e2e.rs`, `tests/sim_bidirectional_e2e.rs`) check
//! the same behaviour end to end with loose bounds.

use acs_media_gateway::ingress::playback::{run_writer, PlaybackHub, WriterCmd};
use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::playback::{Enqueued, PlaybackTarget};
use acs_media_gateway::protocol::b64::decode_base64_into;
use acs_media_gateway::protocol::media::{parse_outbound, Outbound};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What the writer sent, with the (paused) clock's time of each message.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<(Instant, Message)>>>);

impl futures_util::Sink<Message> for Sent {
    type Error = std::convert::Infallible;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, m: Message) -> Result<(), Self::Error> {
        self.0.lock().unwrap().push((Instant::now(), m));
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// An outbound message: `Some(samples)` for AudioData, `None` for StopAudio.
fn decode(m: &Message) -> Option<Vec<i16>> {
    let Message::Text(t) = m else {
        panic!("not text: {m:?}")
    };
    match parse_outbound(t.as_bytes()).unwrap() {
        Outbound::AudioData { data } => {
            let mut buf = Vec::new();
            let k = decode_base64_into(data.as_bytes(), &mut buf).unwrap();
            Some(
                buf[..k]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            )
        }
        Outbound::StopAudio => None,
        Outbound::Unknown { kind } => panic!("unexpected outbound kind {kind}"),
    }
}

#[tokio::test(start_paused = true)]
async fn frames_leave_every_20_ms_and_stop_audio_leaves_at_once() {
    let metrics = Metrics::new();
    let hub = PlaybackHub::new(metrics.clone());
    let pb = hub.register(1, 16_000);
    let sent = Sent::default();
    let (cmds, rx) = tokio::sync::mpsc::channel(4);
    let writer = tokio::spawn(run_writer(sent.clone(), Some(pb), rx, metrics.clone()));

    // one second of audio → 50 frames of 320 samples, equal to what was queued
    let audio: Vec<i16> = (0..16_000).map(|i| ((i % 40) as i16 - 20) * 500).collect();
    assert_eq!(hub.enqueue(1, &audio, 16_000), Enqueued::Queued);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let frames: Vec<(Instant, Vec<i16>)> = sent
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(t, m)| (*t, decode(m).expect("no StopAudio yet")))
        .collect();
    assert_eq!(frames.len(), 50);
    assert!(frames.iter().all(|(_, f)| f.len() == 320));
    let got: Vec<i16> = frames.iter().flat_map(|(_, f)| f.clone()).collect();
    assert_eq!(got, audio, "outbound audio equals the queued audio");
    // pacing: 20 ms between consecutive frames, every one of them (20 ± 5 ms on the wall clock)
    for w in frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, Duration::from_millis(20));
    }
    assert_eq!(metrics.playback_frames.get(), 50);

    // stop mid-playback: the rest of the queue is flushed and StopAudio leaves at once
    // (within 50 ms on the wall clock)
    sent.0.lock().unwrap().clear();
    assert_eq!(hub.enqueue(1, &audio, 16_000), Enqueued::Queued);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t_stop = Instant::now();
    assert!(hub.stop(1));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after: Vec<(Instant, Option<Vec<i16>>)> = sent
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(t, m)| (*t, decode(m)))
        .collect();
    let stop_at = after
        .iter()
        .position(|(_, m)| m.is_none())
        .expect("StopAudio sent");
    assert_eq!(stop_at, after.len() - 1, "nothing follows StopAudio");
    assert_eq!(after[stop_at].0, t_stop, "StopAudio leaves when stopped");
    assert!(
        (4..=6).contains(&stop_at),
        "100 ms of playback before the stop, the rest flushed: {stop_at} frames"
    );
    assert_eq!(metrics.playback_stops.get(), 1);

    cmds.send(WriterCmd::Finish).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("writer ends")
        .unwrap();
}
