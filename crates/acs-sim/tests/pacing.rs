//! `acs-sim` pacing and connection behaviour against a tiny in-test WebSocket server on
//! 127.0.0.1 that records when each message arrives: real-time pacing holds 20 ms per frame
//! without drift, fast pacing is much quicker, ACS upgrade headers arrive, and the planned
//! disconnect / server-initiated close are reported. Every wait is bounded by a timeout.

use std::time::Duration;

use acs_sim::{acs_headers, plan_frames, play, Pacing, Participant, StreamEnd, StreamPlan};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What the test server saw on one connection.
#[derive(Debug, Default)]
struct Seen {
    headers: Vec<(String, String)>,
    /// Arrival time and text of every text message.
    texts: Vec<(Instant, String)>,
    /// Arrival time and code of the client's close frame, if any.
    close: Option<(Instant, u16)>,
    /// The connection ended without a close frame.
    eof_without_close: bool,
}

/// Accepts one WebSocket connection; closes it with 1008 after `close_after` text messages when
/// set. Returns what it saw.
async fn serve_one(close_after: Option<usize>) -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut seen = Seen::default();
        let mut headers = Vec::new();
        // The callback's error type is tungstenite's (an HTTP response), not ours to shrink.
        #[allow(clippy::result_large_err)]
        let cb = |req: &Request, resp: Response| {
            for (k, v) in req.headers() {
                headers.push((k.to_string(), v.to_str().unwrap_or_default().to_string()));
            }
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
        seen.headers = headers;
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    seen.texts.push((Instant::now(), t.to_string()));
                    if close_after == Some(seen.texts.len()) {
                        let _ = ws
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::Policy,
                                reason: "enough".into(),
                            })))
                            .await;
                    }
                }
                Ok(Message::Close(f)) => {
                    seen.close = Some((Instant::now(), f.map_or(0, |f| f.code.into())));
                    // Let tungstenite answer the close.
                    let _ = ws.flush().await;
                }
                Ok(_) => {}
                Err(_) => {
                    seen.eof_without_close = seen.close.is_none();
                    break;
                }
            }
        }
        if seen.close.is_none() {
            seen.eof_without_close = true;
        }
        seen
    });
    (url, handle)
}

/// 100 frames (2 s) of a loud 16 kHz mixed stream.
fn plan_100() -> StreamPlan {
    StreamPlan::mixed(16_000, vec![1000; 320 * 100])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_pacing_is_20ms_per_frame_without_drift() {
    let (url, server) = serve_one(None).await;
    let frames = plan_frames(&plan_100()).unwrap();
    assert_eq!(frames.len(), 101);
    let headers = acs_headers("call-42", "corr-42", Some("tok"));
    let report = tokio::time::timeout(
        Duration::from_secs(15),
        play(&url, &headers, frames, Pacing::Realtime),
    )
    .await
    .expect("play timed out")
    .expect("play failed");
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server timed out")
        .unwrap();

    match &report.end {
        StreamEnd::Completed { reply: Some(c) } => assert_eq!(c.code, 1000, "close reply"),
        other => panic!("{other:?}"),
    }
    assert!(report.clean());
    assert_eq!(report.audio_frames, vec![100]);
    assert_eq!(report.pcm_bytes, vec![64_000]);
    let h = |k: &str| {
        seen.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("x-ms-call-connection-id"), Some("call-42"));
    assert_eq!(h("x-ms-call-correlation-id"), Some("corr-42"));
    assert_eq!(h("authorization"), Some("Bearer tok"));

    assert_eq!(seen.texts.len(), 101);
    assert!(seen.texts[0].1.contains("AudioMetadata"));
    let audio: Vec<Instant> = seen.texts[1..].iter().map(|t| t.0).collect();
    let span = audio[99] - audio[0];
    let mean_ms = span.as_secs_f64() * 1e3 / 99.0;
    assert!(
        (19.0..=21.0).contains(&mean_ms),
        "mean inter-arrival {mean_ms:.3} ms"
    );
    let (close_at, code) = seen.close.expect("client close frame");
    assert_eq!(code, 1000);
    let total = close_at - seen.texts[0].0;
    assert!(
        total >= Duration::from_millis(1940) && total <= Duration::from_millis(2060),
        "total {total:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_pacing_finishes_far_quicker() {
    let (url, server) = serve_one(None).await;
    let frames = plan_frames(&plan_100()).unwrap();
    let t0 = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        play(&url, &[], frames, Pacing::Fast),
    )
    .await
    .expect("play timed out")
    .expect("play failed");
    let elapsed = t0.elapsed();
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(report.end, StreamEnd::Completed { .. }));
    assert_eq!(seen.texts.len(), 101);
    assert!(
        elapsed < Duration::from_millis(700),
        "fast took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_disconnect_sends_no_close_frame() {
    let (url, server) = serve_one(None).await;
    let mut plan = plan_100();
    plan.faults.disconnect_after = Some(10);
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        play(&url, &[], plan_frames(&plan).unwrap(), Pacing::Fast),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.end, StreamEnd::Disconnected);
    assert_eq!(report.audio_frames, vec![10]);
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.texts.len(), 11);
    assert!(seen.close.is_none());
    assert!(seen.eof_without_close);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_is_reported() {
    let (url, server) = serve_one(Some(6)).await;
    let plan = StreamPlan::new(
        16_000,
        vec![Participant {
            raw_id: Some("8:acs:x".into()),
            pcm: vec![1000; 320 * 100],
        }],
    );
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        play(&url, &[], plan_frames(&plan).unwrap(), Pacing::Realtime),
    )
    .await
    .unwrap()
    .unwrap();
    match &report.end {
        StreamEnd::ServerClosed(Some(c)) => {
            assert_eq!(c.code, 1008);
            assert_eq!(c.reason, "enough");
        }
        other => panic!("{other:?}"),
    }
    assert!(!report.clean());
    assert!(report.audio_frames[0] < 20, "{:?}", report.audio_frames);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

#[tokio::test]
async fn connection_refused_is_a_typed_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        play(
            &format!("ws://127.0.0.1:{port}/ws"),
            &[],
            Vec::new(),
            Pacing::Fast,
        ),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(
            err,
            acs_sim::SimError::Connect {
                kind: acs_sim::ConnectFailure::Refused,
                ..
            }
        ),
        "{err}"
    );
}
