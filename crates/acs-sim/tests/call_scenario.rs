//! The `call` scenario (`acs_sim::scenario`) against a gateway double built from
//! the test doubles: a webhook that does the handshake and acknowledges IncomingCall, a task that
//! answers (or rejects) the fake ACS with a signed request like the gateway would, a callback
//! receiver and a media server that talks back. The real gateway is driven in
//! `sim_call_e2e.rs`.

mod sim_support;

use std::time::Duration;

use acs_protocol::auth::format_rfc1123;
use acs_protocol::events::{parse_webhook_events, WebhookPayload};
use acs_sim::acs::{CallEnd, FakeAcsHandle};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::jwt::unix_now;
use acs_sim::scenario::{run_call, summary, CallScenario};
use serde_json::json;
use sim_support::*;

/// Waits for the IncomingCall on `hook`, then answers (or rejects) it on the fake like a gateway.
fn gateway_double(
    acs: &FakeAcsHandle,
    hook: &Receiver,
    callbacks: String,
    media: String,
    reject: bool,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (base, key, host) = (
        acs.base_url.clone(),
        acs.access_key().to_vec(),
        acs.addr().to_string(),
    );
    let events = hook.clone();
    async move {
        let data = loop {
            let found = events.log().into_iter().find_map(|r| {
                parse_webhook_events(&r.body)
                    .ok()?
                    .into_iter()
                    .find_map(|e| match e.payload {
                        WebhookPayload::IncomingCall(d) => Some(d),
                        _ => None,
                    })
            });
            if let Some(d) = found {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (pq, body) = if reject {
            (
                "/calling/callConnections:reject?api-version=2026-03-12",
                json!({"incomingCallContext": data.incoming_call_context, "callRejectReason": "busy"}),
            )
        } else {
            (
                "/calling/callConnections:answer?api-version=2026-03-12",
                json!({
                    "incomingCallContext": data.incoming_call_context,
                    "callbackUri": callbacks,
                    "mediaStreamingOptions": {
                        "transportType": "websocket", "transportUrl": media, "contentType": "audio",
                        "audioChannelType": "mixed", "startMediaStreaming": true,
                        "enableBidirectional": true, "audioFormat": "pcm16KMono"
                    }
                }),
            )
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let date = format_rfc1123(unix_now()).unwrap();
        let s = acs_protocol::auth::sign(&key, "POST", pq, &host, &date, &bytes);
        let r = http()
            .post(format!("{base}{pq}"))
            .header("x-ms-date", &s.date)
            .header("x-ms-content-sha256", &s.content_hash)
            .header("authorization", &s.authorization)
            .header(
                "Repeatability-Request-ID",
                "4f0e0d0c-0b0a-4908-8706-050403020100",
            )
            .header("Repeatability-First-Sent", &date)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_with_bidirectional_audio() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    let cbs = Receiver::start().await;
    let media = MediaServer::start(TalkBack {
        frames: 25,
        pcm_bytes: 640,
        interval: Duration::from_millis(20),
        stop_audio: true,
    })
    .await;
    tokio::spawn(gateway_double(
        &acs,
        &hook,
        cbs.url("/api/callbacks/t"),
        media.url.clone(),
        false,
    ));
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let s = CallScenario {
        hangup_after: Duration::from_millis(1500),
        expect_bidirectional: true,
        outbound_wav: Some(wav.clone()),
        duplicates: 1,
        ..CallScenario::new(EventGridTarget::new(hook.url("/api/incomingCall")))
    };
    let r = tokio::time::timeout(Duration::from_secs(30), run_call(&acs, &s))
        .await
        .unwrap()
        .unwrap();
    let text = summary(&r);
    assert!(r.ok, "{text}");
    assert_eq!(r.outcome, "answered");
    assert!(r.handshake.as_ref().unwrap().ok);
    assert_eq!(
        r.delivery.as_ref().unwrap().attempts.len(),
        2,
        "one delivery + one duplicate"
    );
    assert_eq!(r.answer_signature_valid, Some(true));
    assert_eq!(
        r.answer_repeatability_request_id.as_deref(),
        Some("4f0e0d0c-0b0a-4908-8706-050403020100")
    );
    assert_eq!(r.answer_requests, 1);
    assert!(r.answer_latency_ms.unwrap() < 5000.0);
    assert!(r.media_start_ms.is_some());
    let m = r.media.as_ref().unwrap();
    assert!(
        m.audio_frames_sent >= 50,
        "{} frames in 1.5 s",
        m.audio_frames_sent
    );
    assert_eq!(m.outbound.audio_frames, 25);
    assert_eq!(m.outbound.stop_audio, 1);
    assert!(m.outbound.intervals.as_ref().unwrap().p50_ms > 5.0);
    assert!(m.outbound.stop_audio_latency_ms[0].is_some());
    assert_eq!(r.ended, Some(CallEnd::RemoteHangUp));
    let names: Vec<&str> = r
        .callbacks
        .iter()
        .map(|c| c.event_type.trim_start_matches("Microsoft.Communication."))
        .collect();
    assert_eq!(
        names,
        [
            "CallConnected",
            "ParticipantsUpdated",
            "MediaStreamingStarted",
            "MediaStreamingStopped",
            "CallDisconnected"
        ]
    );
    // The outbound WAV holds exactly what the media server sent.
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 16_000);
    assert_eq!(reader.len(), 25 * 320);
    // The media socket was closed by the far end's hang-up.
    media
        .wait_until("close", |c| c[0].closed == Some(1000))
        .await;
    for want in [
        "answered",
        "StopAudio",
        "pacing",
        "CallDisconnected",
        "result      ok",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    acs.shutdown().await;
}

#[tokio::test]
async fn no_answer_and_reject_are_reported() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    let s = CallScenario {
        answer_timeout: Duration::from_millis(300),
        handshake: false,
        ..CallScenario::new(EventGridTarget::new(hook.url("/api/incomingCall")))
    };
    let r = run_call(&acs, &s).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.outcome, "no answer");
    assert!(r.problems[0].contains("did not answer"), "{:?}", r.problems);

    let hook2 = Receiver::start().await;
    tokio::spawn(gateway_double(
        &acs,
        &hook2,
        String::new(),
        String::new(),
        true,
    ));
    let s = CallScenario {
        handshake: false,
        ..CallScenario::new(EventGridTarget::new(hook2.url("/api/incomingCall")))
    };
    let r = run_call(&acs, &s).await.unwrap();
    assert_eq!(r.outcome, "rejected (busy)");
    assert!(!r.ok);

    // A webhook that refuses the event: not delivered, reported.
    let hook3 = Receiver::start().await;
    hook3.script(&[400]);
    let r = run_call(
        &acs,
        &CallScenario {
            handshake: false,
            ..CallScenario::new(EventGridTarget::new(hook3.url("/x")))
        },
    )
    .await
    .unwrap();
    assert!(r.delivery.unwrap().dead_lettered);
    assert!(!r.ok);
    acs.shutdown().await;
}
