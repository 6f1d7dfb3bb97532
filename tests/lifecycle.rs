//! Connection lifecycle and operations: health/readiness, graceful shutdown order (stop
//! accepting → close 1001 → drain → finalise → stopped), idle and handshake timeouts, bad
//! upgrades, socket-free connection handling over an in-memory pipe.

mod common;
use acs_media_gateway::shutdown::{Phase, Step};
use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_streams_with_1001_then_drains_and_finalises_in_order() {
    let mut gw = Gw::start(|_| {}).await;
    assert_eq!(gw.get("/readyz").await.0, 200);
    let (_, pcm) = fixture("speech_16k.wav");
    let fr = frames(&pcm, 320);
    let mut a = gw.connect("/ws", "drain-a").await;
    let mut b = gw.connect("/ws/tok-b", "drain-b").await;
    send_all(
        &mut a,
        std::iter::once(metadata(16_000)).chain(
            fr.iter()
                .take(50)
                .enumerate()
                .map(|(k, f)| audio(f, k as i64, None, false)),
        ),
    )
    .await;
    send_all(
        &mut b,
        std::iter::once(metadata(16_000)).chain(
            fr.iter()
                .take(30)
                .enumerate()
                .map(|(k, f)| audio(f, k as i64, None, false)),
        ),
    )
    .await;
    // make sure the gateway has read them before shutting down
    gw.wait_metric("acs_gateway_frames_total{kind=\"audio_data\"}", 80.0)
        .await;
    let token = gw.app().shutdown_token().clone();
    let app = gw.app.take().unwrap();
    let shutting = tokio::spawn(app.shutdown());
    let (ca, ra) = expect_close(&mut a).await;
    let (cb, _) = expect_close(&mut b).await;
    assert_eq!((ca, cb), (1001, 1001));
    assert!(ra.contains("shutting down"));
    let report = tokio::time::timeout(Duration::from_secs(30), shutting)
        .await
        .unwrap()
        .unwrap();
    assert!(report.clean(), "{report:?}");
    assert_eq!(token.phase(), Phase::Stopped);
    assert_eq!(
        report.steps,
        vec![
            Step::StoppedAccepting,
            Step::ConnectionClosed,
            Step::ConnectionClosed,
            Step::ConnectionsDone { remaining: 0 },
            Step::SinkFinalised { kind: "wav" },
            Step::SinksDone { unfinished: 0 },
        ]
    );
    // no new connections are taken
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err() || gw_refuses(&gw).await);
    let (_, got) = read_wav(&gw.call_dir("drain-a").join("mixed.wav"));
    assert_eq!(got, pcm[..50 * 320].to_vec());
    let (_, got) = read_wav(&gw.call_dir("drain-b").join("mixed.wav"));
    assert_eq!(got, pcm[..30 * 320].to_vec());
    let doc = call_json(&gw.call_dir("drain-a"));
    assert_eq!(doc["call"]["endReason"], "gateway shutdown");
    assert_eq!(doc["streams"][0]["complete"], true);
}

async fn gw_refuses(gw: &Gw) -> bool {
    // the listener is closed: a connect either fails or the socket is closed at once
    !matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(gw.url("/ws"))
        )
        .await,
        Ok(Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_and_its_audio_kept() {
    let mut gw = Gw::start(|c| c.server.idle_timeout_ms = 300).await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let mut ws = gw.connect("/ws", "idle").await;
    send_all(
        &mut ws,
        vec![metadata(16_000), audio(&tone[..320], 0, None, false)],
    )
    .await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1001, "idle timeout"));
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());
    assert_eq!(
        read_wav(&gw.call_dir("idle").join("mixed.wav")).1,
        tone[..320].to_vec()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshake_is_cut_and_counted_and_bad_upgrades_get_json_errors() {
    let mut gw = Gw::start(|c| c.server.handshake_timeout_ms = 200).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap(); // never finishes the head
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(STEP, tokio::io::AsyncReadExt::read(&mut s, &mut buf))
        .await
        .expect("closed in time");
    let text = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).to_string();
    assert!(text.is_empty() || text.contains("408"), "{text}");
    gw.wait_metric(
        "acs_gateway_ws_connections_rejected_total{reason=\"handshake_timeout\"}",
        1.0,
    )
    .await;
    // a plain GET on the media path is told what it is
    let (status, body) = gw.get("/ws").await;
    assert_eq!(status, 426);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("Upgrade"));
    let (status, body) = gw.get("/nowhere").await;
    assert_eq!(status, 404);
    assert!(body.contains("no route"));
    assert_eq!(
        gw.metric("acs_gateway_ws_connections_rejected_total{reason=\"bad_upgrade\"}")
            .await,
        1.0
    );
    let (status, body) = gw.get("/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    // the gateway runs in this process: its pid is ours (acs-sim finds a gateway's pid here)
    assert_eq!(health["pid"], std::process::id());
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_down_while_draining() {
    let mut gw = Gw::start(|_| {}).await;
    let ws = gw.connect("/ws", "keep").await;
    let app = gw.app.take().unwrap();
    let token = app.shutdown_token().clone();
    let addr = gw.addr;
    let shutting = tokio::spawn(app.shutdown());
    tokio::time::timeout(STEP, token.draining()).await.unwrap();
    assert!(token.is_draining());
    drop(ws);
    let report = tokio::time::timeout(Duration::from_secs(30), shutting)
        .await
        .unwrap()
        .unwrap();
    assert!(report.clean());
    let _ = addr;
}
