//! The gateway against `acs-sim`'s fake ACS and Event Grid emulator (`acs_sim::acs`,
//! `acs_sim::eventgrid`), all on 127.0.0.1: the Event Grid handshakes, an IncomingCall delivered
//! at least once → one signed answer → the fake ACS streams real-time audio to the `transportUrl`
//! with its RS256 token → callbacks (signed too) move the call through the registry → every
//! operator operation reaches the fake ACS signed and its callbacks come back → hang-up →
//! CallDisconnected → the WAV is finalised. A second call is transferred away. ACS rotating its
//! signing key mid-call is picked up at once, and made-up key ids cost a bounded number of
//! JWKS downloads.

mod common;

use acs_media_gateway::control::REFETCH_BURST;
use acs_sim::acs::{FakeAcsConfig, FakeAcsHandle, IncomingCallSpec};
use acs_sim::eventgrid::{self, EventGridTarget, Schema};
use acs_sim::jwt::{AcsSigner, SigningKeySource};
use common::{eventually, read_wav, until, Gw, LONG, STEP};
use serde_json::{json, Value};
use std::time::Duration;

const OPERATOR_KEY: &str = "fake-acs-operator-key-0123";
const SECRET: &str = "eventgrid-secret-123";
const RESOURCE_ACCOUNT: &str = "cc123456-5678-5678-1234-ccc123456789";

async fn fake_acs() -> FakeAcsHandle {
    fake_acs_ringing(Duration::from_millis(100)).await
}

/// The fake ACS; an invited participant rings for `ring_time`.
async fn fake_acs_ringing(ring_time: Duration) -> FakeAcsHandle {
    fake_acs_with(|c| c.ring_time = ring_time).await
}

/// The fake ACS with more settings.
async fn fake_acs_with(tweak: impl FnOnce(&mut FakeAcsConfig)) -> FakeAcsHandle {
    common::fake_acs_realtime(Duration::from_secs(60), tweak).await
}

async fn gateway(acs: &FakeAcsHandle) -> Gw {
    gateway_with(acs, |_| {}).await
}

/// [`gateway`] with more settings.
async fn gateway_with(
    acs: &FakeAcsHandle,
    tweak: impl FnOnce(&mut acs_media_gateway::config::Config),
) -> Gw {
    Gw::start_with_acs(acs, move |c| {
        c.control.operator_api_key = OPERATOR_KEY.into();
        c.control.eventgrid_secret = SECRET.into();
        tweak(c);
    })
    .await
}

async fn operator(gw: &Gw, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, v) = operator_status(gw, method.clone(), path, body).await;
    assert_eq!(status, 200, "{method} {path}: {v:#}");
    v
}

async fn operator_status(
    gw: &Gw,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.clone(), format!("http://{}{path}", gw.addr))
        .bearer_auth(OPERATOR_KEY)
        .json(&body)
        .timeout(STEP)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn callback(acs: &FakeAcsHandle, conn: &str, event: &str) {
    let c = acs
        .wait_for_callback(conn, event, STEP)
        .await
        .unwrap_or_else(|| panic!("no {event}"));
    let posted: Vec<_> = c
        .callbacks
        .iter()
        .filter(|p| p.event_type.ends_with(event))
        .collect();
    assert!(
        posted.iter().all(|p| p.delivered()),
        "{event} not accepted by the gateway: {posted:#?}"
    );
}

fn target(gw: &Gw) -> EventGridTarget {
    let mut t = EventGridTarget::new(format!(
        "http://{}/api/incomingCall?secret={SECRET}",
        gw.addr
    ));
    t.attempt_timeout = STEP;
    t.retry_delays = vec![Duration::from_millis(200)];
    t
}

#[tokio::test]
async fn a_whole_call_and_every_operator_operation_through_the_fake_acs() {
    let acs = fake_acs().await;
    let mut gw = gateway(&acs).await;
    let mut t = target(&gw);
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        t.schema = schema;
        let h = eventgrid::validate_subscription(&t).await.unwrap();
        assert!(h.ok, "{schema:?} handshake: {h:?}");
    }
    t.schema = Schema::EventGrid;

    // A Teams Phone extensibility call, delivered three times (at least once).
    let data = acs.incoming_call(IncomingCallSpec::to_teams_resource_account(
        "+14255550123",
        RESOURCE_ACCOUNT,
    ));
    let report = eventgrid::deliver_incoming_call(&t, &acs.topic(), &data, 2)
        .await
        .unwrap();
    assert!(report.delivered, "{report:?}");
    let call = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered");
    let conn = call.call_connection_id.clone();
    callback(&acs, &conn, "MediaStreamingStarted").await;
    let v = gw
        .wait_call(OPERATOR_KEY, &conn, "streaming", |v| {
            v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
        })
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["to"], format!("28:orgid:{RESOURCE_ACCOUNT}"));
    assert_eq!(acs.requests_of("answer_call").len(), 1, "answered once");

    // Every operator operation reaches the fake ACS; its callbacks come back.
    let base = format!("/api/calls/{id}");
    let post = reqwest::Method::POST;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/recording/start"),
        json!({"channel": "mixed"}),
    )
    .await;
    callback(&acs, &conn, "RecordingStateChanged").await;
    gw.wait_call(OPERATOR_KEY, &id, "recording", |v| {
        v["recording"]["state"] == "active"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/participants"),
        json!({"phoneNumber": "+14255550199", "sourceCallerIdNumber": "+18005550100",
               "invitationTimeoutInSeconds": 30, "operationContext": "pstn"}),
    )
    .await;
    callback(&acs, &conn, "AddParticipantSucceeded").await;
    gw.wait_call(OPERATOR_KEY, &id, "with the PSTN participant", |v| {
        v["participants"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["rawId"] == "4:+14255550199"))
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/participants"),
        json!({"teamsExtensionUser": {"userId": "agent-1", "tenantId": "tenant-1"}}),
    )
    .await;
    operator(
        &gw,
        reqwest::Method::DELETE,
        &format!("{base}/participants/4%3A%2B14255550199"),
        json!({}),
    )
    .await;
    callback(&acs, &conn, "RemoveParticipantSucceeded").await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/media-streaming/stop"),
        json!({}),
    )
    .await;
    callback(&acs, &conn, "MediaStreamingStopped").await;
    gw.wait_call(OPERATOR_KEY, &id, "connected again", |v| {
        v["state"] == "connected"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/media-streaming/start"),
        json!({}),
    )
    .await;
    gw.wait_call(OPERATOR_KEY, &id, "streaming again", |v| {
        v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/recording/stop"),
        json!({}),
    )
    .await;
    let token = operator(
        &gw,
        post.clone(),
        "/api/agents/token",
        json!({"token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZ2VudCJ9.c2ln", "appId": "app-1", "userId": "agent-1"}),
    )
    .await;
    assert!(token["token"].is_string(), "{token}");

    // Hang up for everyone: media stops, CallDisconnected reaches the registry.
    operator(
        &gw,
        post.clone(),
        &format!("{base}/hangup"),
        json!({"forEveryone": true}),
    )
    .await;
    callback(&acs, &conn, "CallDisconnected").await;
    let v = gw
        .wait_call(OPERATOR_KEY, &id, "disconnected", |v| {
            v["state"] == "disconnected"
        })
        .await;
    assert_eq!(v["mediaConnection"]["connections"], 2);

    // A second call, transferred away.
    let data2 = acs.incoming_call(IncomingCallSpec::phone("+14255550124", "+18005550100"));
    assert!(
        eventgrid::deliver_incoming_call(&t, &acs.topic(), &data2, 0)
            .await
            .unwrap()
            .delivered
    );
    let conn2 = acs
        .wait_for_answer(&data2.incoming_call_context, STEP)
        .await
        .expect("second call answered")
        .call_connection_id;
    callback(&acs, &conn2, "CallConnected").await;
    operator(
        &gw,
        post.clone(),
        &format!("/api/calls/{conn2}/transfer"),
        json!({"phoneNumber": "+14255550111", "sourceCallerIdNumber": "+18005550100"}),
    )
    .await;
    callback(&acs, &conn2, "CallDisconnected").await;
    gw.wait_call(OPERATOR_KEY, &conn2, "transferred away", |v| {
        v["state"] == "disconnected"
    })
    .await;

    // Everything the gateway sent was signed, and ACS's tokens were checked with its JWKS.
    let reqs = acs.requests();
    assert!(reqs.len() >= 12, "{reqs:#?}");
    for r in &reqs {
        assert!(
            r.signature.is_valid(),
            "{} {}: {:?}",
            r.method,
            r.path_and_query,
            r.signature
        );
    }
    assert!(acs.jwks_fetches() >= 1);
    assert_eq!(
        gw.metric("acs_gateway_incoming_calls_total{outcome=\"answered\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("acs_gateway_incoming_calls_total{outcome=\"duplicate\"}")
            .await,
        2.0
    );
    assert_eq!(gw.metric("acs_gateway_calls_active").await, 0.0);

    let sent = acs.call(&conn).unwrap().media.audio_frames_sent;
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    // Two media connections (streaming stopped and restarted): two recordings of the call.
    let mut recorded = 0;
    for dir in [conn.clone(), format!("{conn}-2")] {
        let (rate, samples) = read_wav(&gw.call_dir(&dir).join("mixed.wav"));
        assert_eq!(rate, 16_000);
        assert!(!samples.is_empty(), "{dir}");
        recorded += samples.len() as u64;
    }
    assert_eq!(
        recorded,
        sent * 320,
        "every frame the fake ACS streamed was recorded"
    );
    acs.shutdown().await;
}

#[tokio::test]
async fn a_signing_key_rotation_mid_call_is_picked_up_at_once() {
    let acs = fake_acs().await;
    let gw = gateway(&acs).await;
    let t = target(&gw);
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550125", "+18005550100"));
    assert!(
        eventgrid::deliver_incoming_call(&t, &acs.topic(), &data, 0)
            .await
            .unwrap()
            .delivered
    );
    let call = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered");
    let conn = call.call_connection_id.clone();
    callback(&acs, &conn, "MediaStreamingStarted").await;
    let v = gw
        .wait_call(OPERATOR_KEY, &conn, "streaming", |v| {
            v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
        })
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let fetches = "acs_gateway_jwks_fetches_total{result=\"ok\"}";
    assert_eq!(gw.metric(fetches).await, 1.0, "key A fetched once");

    // ACS rotates to key B mid-call.
    let pem = common::fixture_text("keys/jwt_test_key_2.pem");
    let b = AcsSigner::new(
        &SigningKeySource::Pem(pem),
        Some("test-key-2".into()),
        acs.issuer.clone(),
        acs.audience.clone(),
    )
    .unwrap();
    acs.rotate_signer(b);
    assert_eq!(acs.signer().kid(), "test-key-2");

    // The very next callback (MediaStreamingStopped) and media upgrade carry key B: both are
    // accepted at once, after one more JWKS download.
    let base = format!("/api/calls/{id}");
    let post = reqwest::Method::POST;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/media-streaming/stop"),
        json!({}),
    )
    .await;
    callback(&acs, &conn, "MediaStreamingStopped").await;
    gw.wait_call(OPERATOR_KEY, &id, "connected again", |v| {
        v["state"] == "connected"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/media-streaming/start"),
        json!({}),
    )
    .await;
    let v = gw
        .wait_call(OPERATOR_KEY, &id, "streaming with key B", |v| {
            v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
        })
        .await;
    assert_eq!(v["mediaConnection"]["connections"], 2, "{v:#}");
    assert_eq!(gw.metric(fetches).await, 2.0, "one extra download");
    let unknown_kid = "acs_gateway_auth_rejections_total{reason=\"unknown_kid\"}";
    assert_eq!(gw.metric(unknown_kid).await, 0.0);

    // A flood of callbacks with made-up key ids: all refused, a bounded number of downloads.
    let callback_uri = acs.call(&conn).unwrap().callback_uri;
    let http = reqwest::Client::new();
    let now = acs_sim::jwt::unix_now();
    let claims =
        json!({"iss": acs.issuer, "aud": acs.audience, "iat": now, "nbf": now, "exp": now + 300});
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(acs.signer().private_key_pem().as_bytes()).unwrap();
    const FLOOD: u32 = 30;
    for i in 0..FLOOD {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("made-up-{i}"));
        let forged = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let r = http
            .post(&callback_uri)
            .bearer_auth(forged)
            .json(&json!([]))
            .timeout(STEP)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "made-up kid {i}");
    }
    assert_eq!(gw.metric(unknown_kid).await, f64::from(FLOOD));
    let after = gw.metric(fetches).await;
    assert!(
        after - 2.0 <= f64::from(REFETCH_BURST),
        "{after} downloads for {FLOOD} made-up kids"
    );
    let limited = gw.metric("acs_gateway_jwks_refetches_limited_total").await;
    assert_eq!(
        limited + (after - 2.0),
        f64::from(FLOOD),
        "every miss downloaded or counted"
    );
    // The real key still works: the call keeps streaming and hangs up cleanly.
    operator(
        &gw,
        post,
        &format!("{base}/hangup"),
        json!({"forEveryone": true}),
    )
    .await;
    callback(&acs, &conn, "CallDisconnected").await;
    acs.shutdown().await;
}

/// The operations beyond answer/hang-up: get call and participants (GET), mute, hold / unhold
/// with hold audio, HoldFailed, send DTMF (completed and failed), continuous DTMF recognition
/// with keys pressed, cancel add participant, pause / resume recording and the Teams extension
/// assignment (PUT) — each signed, at api-version 2026-03-12 (the PUT at 2025-06-30), with the
/// fake ACS's callbacks accepted in ACS's order and reflected in the call record.
#[tokio::test]
async fn get_put_hold_dtmf_mute_cancel_and_recording_pause_through_the_fake_acs() {
    const CALLER: &str = "4:+14255550123";
    const OTHER: &str = "4:+14255550199";
    let acs = fake_acs_ringing(Duration::from_secs(3)).await;
    let mut gw = gateway(&acs).await;
    let t = target(&gw);
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550123", "+18005550100"));
    assert!(
        eventgrid::deliver_incoming_call(&t, &acs.topic(), &data, 0)
            .await
            .unwrap()
            .delivered
    );
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered")
        .call_connection_id;
    callback(&acs, &conn, "MediaStreamingStarted").await;
    let id = gw
        .wait_call(OPERATOR_KEY, &conn, "streaming", |v| {
            v["state"] == "streaming"
        })
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/api/calls/{id}");
    let (get, post, put) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
    );

    // GETs: the call and its participants, from ACS.
    let v = operator(&gw, get.clone(), &format!("{base}/connection"), Value::Null).await;
    assert_eq!(v["result"]["callConnectionId"], conn.as_str());
    assert_eq!(v["result"]["callConnectionState"], "connected");
    let v = operator(
        &gw,
        get.clone(),
        &format!("{base}/participants"),
        Value::Null,
    )
    .await;
    assert!(
        v["result"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rawId"] == CALLER),
        "{v:#}"
    );

    // Mute: ParticipantsUpdated says so.
    let caller = format!("{base}/participants/4%3A%2B14255550123");
    operator(&gw, post.clone(), &format!("{caller}/mute"), json!({})).await;
    gw.wait_call(OPERATOR_KEY, &id, "with the caller muted", |v| {
        v["participants"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["rawId"] == CALLER && p["isMuted"] == true)
        })
    })
    .await;

    // Hold with music, then unhold.
    operator(
        &gw,
        post.clone(),
        &format!("{caller}/hold"),
        json!({"playFileUri": "https://music.contoso.com/hold.wav", "operationContext": "hold-1"}),
    )
    .await;
    callback(&acs, &conn, "HoldAudioStarted").await;
    gw.wait_call(OPERATOR_KEY, &id, "with the caller on hold", |v| {
        v["participants"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["rawId"] == CALLER && p["isOnHold"] == true)
        })
    })
    .await;
    operator(&gw, post.clone(), &format!("{caller}/unhold"), json!({})).await;
    callback(&acs, &conn, "HoldAudioCompleted").await;
    gw.wait_call(OPERATOR_KEY, &id, "with the caller off hold", |v| {
        v["participants"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["rawId"] == CALLER && p["isOnHold"] == false)
        })
    })
    .await;

    // DTMF to the caller (the default target), then continuous recognition of their keys.
    let v = operator(
        &gw,
        post.clone(),
        &format!("{base}/dtmf/send"),
        json!({"tones": "12#", "operationContext": "ivr"}),
    )
    .await;
    assert_eq!(v["result"]["operationContext"], "ivr");
    callback(&acs, &conn, "SendDtmfTonesCompleted").await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/dtmf/recognition/start"),
        json!({"operationContext": "keys"}),
    )
    .await;
    assert!(acs.press_dtmf(&conn, CALLER, "4#2"));
    gw.wait_call(OPERATOR_KEY, &id, "with the pressed keys", |v| {
        v["dtmf"]["tones"] == "4#2" && v["dtmf"]["recognition"] == "active"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/dtmf/recognition/stop"),
        json!({}),
    )
    .await;
    callback(&acs, &conn, "ContinuousDtmfRecognitionStopped").await;
    gw.wait_call(OPERATOR_KEY, &id, "with recognition stopped", |v| {
        v["dtmf"]["recognition"] == "stopped"
    })
    .await;
    assert!(acs.press_dtmf(&conn, CALLER, "9"), "call still live");

    // An invitation cancelled while it rings; another participant whose hold and DTMF fail.
    let v = operator(
        &gw,
        post.clone(),
        &format!("{base}/participants"),
        json!({"phoneNumber": "+14255550177", "sourceCallerIdNumber": "+18005550100"}),
    )
    .await;
    let invitation = v["result"]["invitationId"].as_str().unwrap().to_owned();
    operator(
        &gw,
        post.clone(),
        &format!("{base}/invitations/{invitation}/cancel"),
        json!({"operationContext": "never mind"}),
    )
    .await;
    callback(&acs, &conn, "CancelAddParticipantSucceeded").await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/participants"),
        json!({"phoneNumber": "+14255550199", "sourceCallerIdNumber": "+18005550100"}),
    )
    .await;
    callback(&acs, &conn, "AddParticipantSucceeded").await;
    acs.fail_participant(OTHER);
    operator(
        &gw,
        post.clone(),
        &format!("{base}/participants/4%3A%2B14255550199/hold"),
        json!({}),
    )
    .await;
    callback(&acs, &conn, "HoldFailed").await;
    gw.wait_call(OPERATOR_KEY, &id, "with HoldFailed as last error", |v| {
        v["lastError"]["source"] == "HoldFailed"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/dtmf/send"),
        json!({"tones": "5", "rawId": OTHER}),
    )
    .await;
    callback(&acs, &conn, "SendDtmfTonesFailed").await;
    // Someone not in the call: ACS's 404 comes back as 502 with ACS's status.
    let (status, v) = operator_status(
        &gw,
        post.clone(),
        &format!("{base}/participants/4%3A%2B19995550100/unhold"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["acs"]["status"].as_u64()),
        (502, Some(404)),
        "{v}"
    );

    // Recording: start, pause, resume.
    operator(
        &gw,
        post.clone(),
        &format!("{base}/recording/start"),
        json!({}),
    )
    .await;
    gw.wait_call(OPERATOR_KEY, &id, "recording", |v| {
        v["recording"]["state"] == "active"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/recording/pause"),
        json!({}),
    )
    .await;
    gw.wait_call(OPERATOR_KEY, &id, "recording paused", |v| {
        v["recording"]["state"] == "inactive"
    })
    .await;
    operator(
        &gw,
        post.clone(),
        &format!("{base}/recording/resume"),
        json!({}),
    )
    .await;
    gw.wait_call(OPERATOR_KEY, &id, "recording resumed", |v| {
        v["recording"]["state"] == "active"
    })
    .await;

    // The Teams extension assignment: created, then already there.
    let path = format!("/api/teams-extension/tenants/tenant-1/assignments/{RESOURCE_ACCOUNT}");
    let v = operator(&gw, put.clone(), &path, json!({})).await;
    assert_eq!(v["acsStatus"], 201, "{v}");
    assert_eq!(v["result"]["objectId"], RESOURCE_ACCOUNT);
    let v = operator(
        &gw,
        put.clone(),
        &path,
        json!({"principalType": "teamsResourceAccount"}),
    )
    .await;
    assert_eq!(v["acsStatus"], 200, "{v}");

    // The callbacks came in ACS's order and the gateway took every one.
    let posted: Vec<String> = acs
        .call(&conn)
        .unwrap()
        .callbacks
        .iter()
        .inspect(|c| assert!(c.delivered(), "{c:?}"))
        .map(|c| {
            c.event_type
                .trim_start_matches("Microsoft.Communication.")
                .to_owned()
        })
        .collect();
    let expected = [
        "ParticipantsUpdated", // mute
        "HoldAudioStarted",
        "ParticipantsUpdated",
        "HoldAudioCompleted",
        "ParticipantsUpdated",
        "SendDtmfTonesCompleted",
        "ContinuousDtmfRecognitionToneReceived",
        "ContinuousDtmfRecognitionToneReceived",
        "ContinuousDtmfRecognitionToneReceived",
        "ContinuousDtmfRecognitionStopped",
        "CancelAddParticipantSucceeded",
        "AddParticipantSucceeded",
        "ParticipantsUpdated",
        "HoldFailed",
        "SendDtmfTonesFailed",
        "RecordingStateChanged",
        "RecordingStateChanged",
        "RecordingStateChanged",
    ];
    let start = posted
        .iter()
        .position(|e| e == "MediaStreamingStarted")
        .unwrap()
        + 1;
    assert_eq!(posted[start..], expected, "{posted:#?}");
    assert_eq!(
        gw.metric("acs_gateway_callbacks_total{type=\"ContinuousDtmfRecognitionToneReceived\"}")
            .await,
        3.0,
        "the key pressed after stop was not reported"
    );

    // Every request signed; GETs without a body; Call Automation at 2026-03-12.
    let reqs = acs.requests();
    for r in &reqs {
        assert!(
            r.signature.is_valid(),
            "{} {}: {:?}",
            r.method,
            r.path_and_query,
            r.signature
        );
        if r.method == "GET" {
            assert_eq!(r.body, Value::Null, "{}", r.path_and_query);
            assert_eq!(
                r.headers.get("x-ms-content-sha256").map(String::as_str),
                Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
            );
        }
        let version = if r.method == "PUT" {
            "2025-06-30"
        } else {
            "2026-03-12"
        };
        assert!(
            r.path_and_query
                .ends_with(&format!("api-version={version}")),
            "{}",
            r.path_and_query
        );
    }
    for op in [
        "get_call",
        "get_participants",
        "mute_participants",
        "hold",
        "unhold",
        "send_dtmf_tones",
        "start_continuous_dtmf_recognition",
        "stop_continuous_dtmf_recognition",
        "cancel_add_participant",
        "pause_recording",
        "resume_recording",
        "put_teams_extension_assignment",
    ] {
        assert!(!acs.requests_of(op).is_empty(), "{op} never reached ACS");
    }
    assert_eq!(acs.requests_of("put_teams_extension_assignment").len(), 2);

    operator(
        &gw,
        post,
        &format!("{base}/hangup"),
        json!({"forEveryone": true}),
    )
    .await;
    callback(&acs, &conn, "CallDisconnected").await;
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    acs.shutdown().await;
}

/// A POST with a raw body and Content-Type; status and JSON answer.
async fn post_bytes(gw: &Gw, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{}{path}", gw.addr))
        .bearer_auth(OPERATOR_KEY)
        .header("content-type", content_type)
        .body(body)
        .timeout(STEP)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn sine(rate: u32, hz: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (8_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()).round()
                as i16
        })
        .collect()
}

fn wav_bytes(rate: u32, samples: &[i16]) -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut c, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    c.into_inner()
}

/// Waits until playback `pid` of call `id` is in `state`; its record.
async fn wait_playback(gw: &Gw, id: &str, pid: &str, state: &str) -> Value {
    let path = format!("/api/calls/{id}/playbacks/{pid}");
    eventually(&format!("playback {pid} {state}"), LONG, || async {
        let (status, v) = operator_status(gw, reqwest::Method::GET, &path, Value::Null).await;
        if status == 200 && v["state"] == state {
            Ok(v)
        } else {
            Err((status, v))
        }
    })
    .await
}

/// Operator playback end to end: a WAV at the call's rate, a WAV file at 24 kHz from
/// `control.playback_dir` (resampled to the call's 16 kHz) and raw PCM are queued on the call's
/// bidirectional socket; the fake ACS records exactly the first and the third, the second within
/// 60 dB SNR, answers each playback's mark with `MarkData`, and the playbacks end `completed`
/// (source `acs`) in the operator API, in `playbacks_total` and in the WAV sink's call.json
/// (`PlaybackCompleted` reached the sinks). `stop-audio` cancels a playing clip and sends
/// `StopAudio`. Bad requests get clear 4xx JSON errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_stop_audio_and_playback_status_through_the_fake_acs() {
    // ACS pages the participant list: one participant a page here
    let acs = fake_acs_with(|c| c.participants_page_size = 1).await;
    let clips = tempfile::tempdir().unwrap();
    let tone24 = sine(24_000, 1_000.0, 12_000);
    std::fs::write(clips.path().join("tone24.wav"), wav_bytes(24_000, &tone24)).unwrap();
    let dir = clips.path().to_str().unwrap().to_owned();
    let mut gw = gateway_with(&acs, move |c| {
        c.control.playback_dir = dir;
        for p in c.answer.profiles.values_mut() {
            p.enable_bidirectional = true;
        }
    })
    .await;
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550123", "+18005550100"));
    assert!(
        eventgrid::deliver_incoming_call(&target(&gw), &acs.topic(), &data, 0)
            .await
            .unwrap()
            .delivered
    );
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered")
        .call_connection_id;
    callback(&acs, &conn, "MediaStreamingStarted").await;
    let v = gw
        .wait_call(OPERATOR_KEY, &conn, "streaming", |v| {
            v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
        })
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let base = format!("/api/calls/{id}");

    // The participant list is paged: the gateway follows nextLink to the end.
    operator(
        &gw,
        reqwest::Method::POST,
        &format!("{base}/participants"),
        json!({"phoneNumber": "+14255550199", "sourceCallerIdNumber": "+18005550100"}),
    )
    .await;
    callback(&acs, &conn, "AddParticipantSucceeded").await;
    let known = acs.call(&conn).unwrap().participants.len();
    assert!(known >= 2, "a page per participant needs two of them");
    let v = operator(
        &gw,
        reqwest::Method::GET,
        &format!("{base}/participants"),
        Value::Null,
    )
    .await;
    assert_eq!(
        v["result"]["value"].as_array().unwrap().len(),
        known,
        "{v:#}"
    );
    assert!(v["result"].get("nextLink").is_none(), "{v:#}");
    let pages = acs.requests_of("get_participants");
    assert_eq!(pages.len(), known, "one signed GET a page");
    assert!(pages.iter().all(|r| r.signature.is_valid()));
    assert!(
        pages[1].path_and_query.contains("skip=1"),
        "{:?}",
        pages[1].path_and_query
    );

    // Refusals, each a clear JSON error.
    let (s, v) = post_bytes(&gw, "/api/calls/nope/play", "audio/wav", vec![1]).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = post_bytes(
        &gw,
        &format!("{base}/play"),
        "audio/wav",
        b"RIFFjunk".to_vec(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("WAV"),
        "{v}"
    );
    let (s, v) = post_bytes(&gw, &format!("{base}/play"), "text/plain", b"hi".to_vec()).await;
    assert_eq!(s, 415, "{v}");
    let (s, v) = post_bytes(&gw, &format!("{base}/play"), "audio/pcm", vec![0; 640]).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("rate"),
        "{v}"
    );
    let (s, v) = operator_status(
        &gw,
        reqwest::Method::POST,
        &format!("{base}/play"),
        json!({"file": "../tone24.wav"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = operator_status(
        &gw,
        reqwest::Method::GET,
        &format!("{base}/playbacks/pb-99"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 404, "{v}");

    // Three playbacks, queued at once: WAV at the call's rate, a 24 kHz file, raw PCM.
    let (rate, tone16) = common::fixture("tone_1k_16k.wav");
    assert_eq!(rate, 16_000);
    let wav = common::fixture_bytes("audio/tone_1k_16k.wav");
    let (s, p1) = post_bytes(&gw, &format!("{base}/play"), "audio/wav", wav).await;
    assert_eq!(s, 202, "{p1}");
    let (s, p2) = operator_status(
        &gw,
        reqwest::Method::POST,
        &format!("{base}/play"),
        json!({"file": "tone24.wav"}),
    )
    .await;
    assert_eq!(s, 202, "{p2}");
    let raw: Vec<i16> = (0..1_650)
        .map(|i| ((i * 37) % 2_000 - 1_000) as i16)
        .collect();
    let raw_bytes: Vec<u8> = raw.iter().flat_map(|s| s.to_le_bytes()).collect();
    let (s, p3) = post_bytes(
        &gw,
        &format!("{base}/play"),
        "audio/pcm;rate=16000",
        raw_bytes,
    )
    .await;
    assert_eq!(s, 202, "{p3}");
    let ids: Vec<String> = [&p1, &p2, &p3]
        .iter()
        .map(|p| p["playbackId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(p1["playback"]["state"], "queued");
    assert_eq!(
        p2["playback"]["samples"], 8_000,
        "0.5 s at the call's 16 kHz"
    );
    for pid in &ids {
        let r = wait_playback(&gw, &id, pid, "completed").await;
        assert_eq!(r["source"], "acs", "MarkData ended it: {r:#}");
        assert!(
            r["startedAt"].is_string() && r["endedAt"].is_string(),
            "{r:#}"
        );
    }
    let r = wait_playback(&gw, &id, &ids[2], "completed").await;
    assert_eq!(
        (r["framesSent"].as_u64(), r["samplesSent"].as_u64()),
        (Some(6), Some(1_650))
    );

    // What the fake ACS recorded: the clips back to back, marks on their last frames.
    let out = acs.outbound_pcm(&conn).unwrap();
    let (n1, n2) = (tone16.len(), 8_000);
    assert_eq!(out.len(), n1 + n2 + raw.len(), "exactly the three clips");
    assert_eq!(&out[..n1], &tone16[..], "same rate: bit-exact");
    assert_eq!(&out[n1 + n2..], &raw[..], "raw PCM: bit-exact");
    let want = sine(16_000, 1_000.0, n2);
    let (mut sig, mut noise) = (0f64, 0f64);
    for i in 320..n2 - 320 {
        sig += f64::from(want[i]).powi(2);
        noise += (f64::from(out[n1 + i]) - f64::from(want[i])).powi(2);
    }
    let snr = 10.0 * (sig / noise.max(1e-9)).log10();
    assert!(snr >= 60.0, "24 kHz → 16 kHz: SNR {snr:.1} dB");
    let marks: Vec<String> = acs
        .outbound_events(&conn)
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            acs_sim::acs::OutboundKind::Audio { mark, .. } => mark.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(marks, ids);

    // stop-audio cancels a playing clip and sends StopAudio.
    let long: Vec<u8> = sine(16_000, 500.0, 16_000 * 5)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let (s, p4) = post_bytes(&gw, &format!("{base}/play"), "audio/pcm;rate=16000", long).await;
    assert_eq!(s, 202, "{p4}");
    let pid4 = p4["playbackId"].as_str().unwrap().to_owned();
    wait_playback(&gw, &id, &pid4, "playing").await;
    let v = operator(
        &gw,
        reqwest::Method::POST,
        &format!("{base}/stop-audio"),
        Value::Null,
    )
    .await;
    assert_eq!(v["cancelled"], json!([pid4]));
    let r = wait_playback(&gw, &id, &pid4, "cancelled").await;
    assert_eq!(r["source"], "gateway");
    let stops = || {
        acs.outbound_events(&conn)
            .unwrap()
            .iter()
            .filter(|e| e.kind == acs_sim::acs::OutboundKind::StopAudio)
            .count()
    };
    assert!(
        until(STEP, || stops() > 0).await,
        "no StopAudio reached the fake ACS"
    );
    let (s, v) = operator_status(
        &gw,
        reqwest::Method::GET,
        &format!("{base}/playbacks"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (s, v["playbacks"].as_array().unwrap().len()),
        (200, 4),
        "{v:#}"
    );
    assert_eq!(
        gw.metric("acs_gateway_playbacks_total{outcome=\"completed\",source=\"acs\"}")
            .await,
        3.0
    );
    assert_eq!(
        gw.metric("acs_gateway_playbacks_total{outcome=\"cancelled\",source=\"gateway\"}")
            .await,
        1.0
    );

    // The sinks saw the ends: the WAV sink's call.json lists them.
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    let cj = common::call_json(&gw.call_dir(&conn));
    let ends: Vec<(String, String)> = cj["marks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"].is_string())
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_owned(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = ids
        .iter()
        .map(|i| ("playback_completed".to_owned(), i.clone()))
        .collect();
    want.push(("playback_cancelled".to_owned(), pid4));
    assert_eq!(ends, want, "{cj:#}");
    acs.shutdown().await;
}
