//! End to end over loopback against the shared fake ACS (acs-sim's, started by
//! `common::fake_acs`): Event Grid delivers an IncomingCall (twice) → the gateway answers, signed
//! → the fake ACS connects to `transportUrl` with the call token and its RS256 JWT and streams
//! speech → its callbacks move the call through the registry → the operator hangs up → the fake
//! receives the signed DELETE and posts CallDisconnected → the WAV holds what was streamed. Media
//! upgrades without ACS's JWT, without or with a forged call token, or for another audience are
//! refused; a stale IncomingCall and an answer ACS keeps failing (503, retried once with the same
//! repeatability id) fail their calls.

mod common;

use acs_media_gateway::protocol::events::{
    callbacks_body, CallbackEvent, CallbackKind, EventGridEvent, IncomingCallEventData,
};
use acs_sim::acs::{FakeAcsHandle, Fault, FaultKind, IncomingCallSpec, RecordedRequest};
use acs_sim::jwt::AcsSigner;
use common::{fake_acs, fixture, read_wav, test_signing_key, Gw, STEP};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const OPERATOR_KEY: &str = "e2e-operator-key-0123456789";

async fn gateway(acs: &FakeAcsHandle) -> Gw {
    Gw::start_with_acs(acs, |c| {
        c.acs.max_retries = 1;
        c.acs.max_retry_after_ms = 20;
        c.control.operator_api_key = OPERATOR_KEY.into();
    })
    .await
}

/// An Event Grid delivery of one IncomingCall.
fn incoming_call(event_id: &str, data: &IncomingCallEventData) -> String {
    let ev =
        EventGridEvent::incoming_call(event_id, "/subscriptions/x", "2025-01-01T00:00:00Z", data);
    serde_json::to_string(&vec![ev]).unwrap()
}

async fn post_event_grid(gw: &Gw, body: String) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/incomingCall", gw.addr))
        .header("aeg-event-type", "Notification")
        .body(body)
        .timeout(STEP)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn operator(
    gw: &Gw,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method, format!("http://{}{path}", gw.addr))
        .bearer_auth(OPERATOR_KEY)
        .timeout(STEP);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Tries a media upgrade as call `conn`; `Ok(ws)` or `Err(HTTP status)`.
async fn upgrade(url: &str, conn: &str, bearer: Option<&str>) -> Result<common::Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("x-ms-call-connection-id", conn.parse().unwrap());
    h.insert("x-ms-call-correlation-id", "e2e-corr".parse().unwrap());
    if let Some(b) = bearer {
        h.insert("authorization", format!("Bearer {b}").parse().unwrap());
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("upgrade: {e}"),
    }
}

/// The answers the fake ACS received for `context`.
fn answers_for(acs: &FakeAcsHandle, context: &str) -> Vec<RecordedRequest> {
    acs.requests_of("answer_call")
        .into_iter()
        .filter(|r| r.body["incomingCallContext"] == context)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_call_answer_media_callbacks_and_operator_hangup() {
    let acs = fake_acs(|c| c.max_stream_duration = Duration::from_secs(60)).await;
    let mut gw = gateway(&acs).await;

    // 1. Event Grid delivers the IncomingCall (twice: at least once delivery).
    let data = acs.incoming_call(IncomingCallSpec::default());
    let body = incoming_call("evt-1", &data);
    let (status, v) = post_event_grid(&gw, body.clone()).await;
    assert_eq!(status, 200, "{v}");
    let call_id = v["accepted"][0].as_str().unwrap().to_owned();
    let (status, v) = post_event_grid(&gw, body).await;
    assert_eq!((status, v["duplicates"].as_u64()), (200, Some(1)));

    // 2. The answer reaches ACS signed, with our media and callback URLs.
    let call = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered");
    let conn = call.call_connection_id.clone();
    let answers = answers_for(&acs, &data.incoming_call_context);
    assert_eq!(answers.len(), 1, "answered once");
    let answer = &answers[0];
    assert!(answer.signature.is_valid(), "{:?}", answer.signature);
    assert_eq!(
        answer.path_and_query,
        "/calling/callConnections:answer?api-version=2026-03-12"
    );
    assert!(answer.repeatability_request_id.is_some());
    let b = &answer.body;
    let transport = b["mediaStreamingOptions"]["transportUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = b["callbackUri"].as_str().unwrap().to_owned();
    let token = transport.rsplit('/').next().unwrap().to_owned();
    assert_eq!(transport, format!("ws://{}/ws/{token}", gw.addr));
    assert_eq!(
        callback,
        format!("http://{}/api/callbacks/{token}", gw.addr)
    );
    assert_eq!(b["mediaStreamingOptions"]["audioFormat"], "pcm16KMono");
    let v = gw
        .wait_call(OPERATOR_KEY, &call_id, "answered", |v| {
            v["answeredAt"].is_string()
        })
        .await;
    assert_eq!(v["callConnectionId"], conn.as_str());

    // 3. Media: refused without ACS's JWT, without a call token, with a forged one, for another
    //    audience ...
    let jwt = acs.signer().sign(Duration::from_secs(60)).unwrap();
    assert_eq!(upgrade(&transport, &conn, None).await.err(), Some(401));
    assert_eq!(
        upgrade(&format!("ws://{}/ws", gw.addr), &conn, Some(&jwt))
            .await
            .err(),
        Some(401)
    );
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("ws://{}/ws/{}{last}", gw.addr, &token[..token.len() - 1]);
    assert_eq!(upgrade(&forged, &conn, Some(&jwt)).await.err(), Some(401));
    let elsewhere = AcsSigner::new(
        &test_signing_key(),
        Some("test-key-1".into()),
        acs.issuer.clone(),
        "another-resource",
    )
    .unwrap()
    .sign(Duration::from_secs(60))
    .unwrap();
    assert_eq!(
        upgrade(&transport, &conn, Some(&elsewhere)).await.err(),
        Some(401)
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_connections_rejected_total{reason=\"unauthorized\"}")
            .await,
        4.0
    );
    for (reason, n) in [
        ("missing", 1.0),
        ("token_missing", 1.0),
        ("wrong_audience", 1.0),
    ] {
        let series = format!("acs_gateway_auth_rejections_total{{reason=\"{reason}\"}}");
        assert_eq!(gw.metric(&series).await, n, "{reason}");
    }
    let forged_reason = gw
        .metric("acs_gateway_auth_rejections_total{reason=\"token_bad_signature\"}")
        .await
        + gw.metric("acs_gateway_auth_rejections_total{reason=\"token_malformed\"}")
            .await;
    assert_eq!(forged_reason, 1.0);

    // ... and accepted with both: the fake ACS streams, its callbacks arrive.
    let v = gw
        .wait_call(OPERATOR_KEY, &conn, "streaming", |v| {
            v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
        })
        .await;
    assert_eq!(v["id"], call_id.as_str());
    assert_eq!(v["mediaStreaming"]["details"], "subscriptionStarted");
    assert!(v["callbacks"].as_u64().unwrap() >= 2, "{v:#}");

    // A callback without ACS's JWT is refused and changes nothing.
    let r = reqwest::Client::new()
        .post(&callback)
        .body(callbacks_body(&[CallbackEvent::new(
            CallbackKind::CallDisconnected,
            "ev-x",
            &conn,
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (_, v) = operator(
        &gw,
        reqwest::Method::GET,
        &format!("/api/calls/{call_id}"),
        None,
    )
    .await;
    assert_eq!(v["state"], "streaming");

    // Let a second of audio arrive before the hang-up (step 5 compares it with the fixture).
    gw.wait_metric("acs_gateway_frames_total{kind=\"audio_data\"}", 60.0)
        .await;

    // 4. The operator hangs up: ACS gets the signed DELETE and reports CallDisconnected.
    let (status, v) = operator(
        &gw,
        reqwest::Method::POST,
        &format!("/api/calls/{call_id}/hangup"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let del = acs
        .wait_for(STEP, |h| h.requests_of("hang_up_call").into_iter().next())
        .await
        .expect("hang up reached the fake ACS");
    assert_eq!(del.method, "DELETE");
    assert!(del.signature.is_valid(), "{:?}", del.signature);
    assert_eq!(
        del.path_and_query,
        format!("/calling/callConnections/{conn}?api-version=2026-03-12")
    );
    let v = gw
        .wait_call(OPERATOR_KEY, &call_id, "disconnected", |v| {
            v["state"] == "disconnected"
        })
        .await;
    assert!(v["endedAt"].is_string());
    assert_eq!(v["lastEvent"], "CallDisconnected");

    for (series, want) in [
        (
            "acs_gateway_incoming_calls_total{outcome=\"answered\"}",
            1.0,
        ),
        (
            "acs_gateway_incoming_calls_total{outcome=\"duplicate\"}",
            1.0,
        ),
        ("acs_gateway_callbacks_total{type=\"CallConnected\"}", 1.0),
        (
            "acs_gateway_callbacks_total{type=\"CallDisconnected\"}",
            1.0,
        ),
        ("acs_gateway_calls_active", 0.0),
        (
            "acs_gateway_acs_requests_total{operation=\"answer_call\",status=\"200\"}",
            1.0,
        ),
        (
            "acs_gateway_acs_requests_total{operation=\"hang_up_call\",status=\"204\"}",
            1.0,
        ),
        ("acs_gateway_answer_latency_seconds_count", 1.0),
    ] {
        assert_eq!(gw.metric(series).await, want, "{series}");
    }
    assert!(
        gw.metric("acs_gateway_jwks_fetches_total{result=\"ok\"}")
            .await
            >= 1.0
    );

    // 5. The audio ACS streamed is in the call's WAV, sample for sample.
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    let (rate, got) = read_wav(&gw.call_dir(&conn).join("mixed.wav"));
    assert_eq!(rate, 16_000);
    let (_, speech) = fixture("speech_16k.wav");
    assert!(got.len() >= 50 * 320, "{} samples recorded", got.len());
    let n = got.len().min(speech.len());
    assert!(
        got[..n] == speech[..n],
        "recorded audio differs from what was streamed"
    );
    acs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_failing_answers_over_http() {
    let acs = fake_acs(|_| {}).await;
    let gw = gateway(&acs).await;

    // a context the fake ACS never issued: answering it gets ACS's stale-call error
    let mut stale = acs.incoming_call(IncomingCallSpec::default());
    stale.incoming_call_context = "stale-ctx-never-issued".into();
    let (status, _) = post_event_grid(&gw, incoming_call("evt-stale", &stale)).await;
    assert_eq!(status, 200);
    gw.wait_metric("acs_gateway_incoming_calls_total{outcome=\"stale\"}", 1.0)
        .await;

    // ACS is busy for every attempt (acs.max_retries = 1: two)
    acs.set_fault(Fault::new("answer_call", FaultKind::Status(503), 2));
    let busy_call = acs.incoming_call(IncomingCallSpec::default());
    let (status, _) = post_event_grid(&gw, incoming_call("evt-busy", &busy_call)).await;
    assert_eq!(status, 200);
    gw.wait_metric("acs_gateway_incoming_calls_total{outcome=\"failed\"}", 1.0)
        .await;

    let busy = answers_for(&acs, &busy_call.incoming_call_context);
    assert_eq!(busy.len(), 2, "one retry (acs.max_retries = 1)");
    assert_eq!(
        busy[0].repeatability_request_id, busy[1].repeatability_request_id,
        "same operation, same id"
    );
    assert!(acs
        .requests_of("answer_call")
        .iter()
        .all(|r| r.signature.is_valid()));
    assert_eq!(
        gw.metric("acs_gateway_acs_requests_total{operation=\"answer_call\",status=\"503\"}")
            .await,
        2.0
    );
    let (_, calls) = operator(&gw, reqwest::Method::GET, "/api/calls", None).await;
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c["state"] == "failed"), "{calls:#?}");
    assert!(calls.iter().any(|c| c["lastError"]["message"]
        .as_str()
        .unwrap()
        .starts_with("stale IncomingCall")));
    // The media endpoint refuses a failed call's token.
    let stale_answer = &answers_for(&acs, "stale-ctx-never-issued")[0];
    let transport = stale_answer.body["mediaStreamingOptions"]["transportUrl"]
        .as_str()
        .unwrap();
    let jwt = acs.signer().sign(Duration::from_secs(60)).unwrap();
    assert_eq!(
        upgrade(transport, "stale-conn", Some(&jwt)).await.err(),
        Some(401)
    );
    acs.shutdown().await;
}
