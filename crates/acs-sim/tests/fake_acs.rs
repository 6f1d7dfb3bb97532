//! The fake ACS (`acs_sim::acs`) against local test doubles on 127.0.0.1:0: HMAC
//! authentication through the server (incl. the official vectors), repeatability, validation,
//! stale contexts, faults, answer → callbacks in order with RS256 tokens its JWKS validates →
//! media WebSocket with ACS headers and `AudioMetadata` first, outbound audio recording, and the
//! mid-call operations with their callbacks.

mod sim_support;

use std::time::Duration;

use acs_protocol::auth::{format_rfc1123, parse_rfc1123};
use acs_protocol::events::{parse_callbacks, CallbackKind};
use acs_protocol::rest::{AnswerCallRequest, CallConnectionProperties};
use acs_protocol::{parse_inbound, AcsError, Inbound};
use acs_sim::acs::{
    AudioInput, AudioSource, CallAudio, ContextOutcome, FakeAcsConfig, FakeAcsHandle, Fault,
    FaultKind, IncomingCallSpec, SignatureCheck,
};
use acs_sim::jwt::unix_now;
use base64::Engine as _;
use serde_json::{json, Value};
use sim_support::*;

const ANSWER: &str = "/calling/callConnections:answer?api-version=2026-03-12";

fn answer_body(ctx: &str, callback: &str, ws: Option<&str>) -> Value {
    let mut b = json!({ "incomingCallContext": ctx, "callbackUri": callback, "operationContext": "answer-ctx" });
    if let Some(url) = ws {
        b["mediaStreamingOptions"] = json!({
            "transportType": "websocket", "transportUrl": url, "contentType": "audio",
            "audioChannelType": "mixed", "startMediaStreaming": true,
            "enableBidirectional": true, "audioFormat": "pcm16KMono"
        });
    }
    b
}

fn call_path(id: &str, suffix: &str) -> String {
    format!("/calling/callConnections/{id}{suffix}?api-version=2026-03-12")
}

/// Answers a fresh incoming call; returns the call connection id.
async fn answer(acs: &FakeAcsHandle, callback: &str, ws: Option<&str>) -> String {
    let data = acs.incoming_call(IncomingCallSpec::default());
    let r = signed(
        acs,
        "POST",
        ANSWER,
        &answer_body(&data.incoming_call_context, callback, ws),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["callConnectionId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signature_is_verified_through_the_server() {
    let acs = start_fake(test_config()).await;
    let pq = call_path("nope", "");
    // Correctly signed: authenticated, then 404 for the unknown call.
    let ok = send(&acs, "GET", &pq, b"", &Signing::default())
        .await
        .unwrap();
    assert_eq!(ok.status, 404);
    assert_eq!(AcsError::from_body(&ok.body).unwrap().code, "NotFound");

    // Wrong key, tampered body, stale and future dates, no signature at all: 401 Denied.
    let data = acs.incoming_call(IncomingCallSpec::default());
    let body = serde_json::to_vec(&answer_body(
        &data.incoming_call_context,
        "http://127.0.0.1:9/cb",
        None,
    ))
    .unwrap();
    let cases = [
        Signing {
            key: Some(b"wrong key".to_vec()),
            ..Signing::default()
        },
        Signing {
            signed_body: Some(b"{\"other\":1}".to_vec()),
            ..Signing::default()
        },
        Signing {
            date_unix: Some(unix_now() - 3600),
            ..Signing::default()
        },
        Signing {
            date_unix: Some(unix_now() + 3600),
            ..Signing::default()
        },
        Signing {
            unsigned: true,
            ..Signing::default()
        },
    ];
    for how in &cases {
        let r = send(&acs, "POST", ANSWER, &body, how).await.unwrap();
        assert_eq!(r.status, 401, "{how:?}");
        let e = AcsError::from_body(&r.body).expect("ACS error body");
        assert_eq!(e.code, "Denied");
        assert!(e.inner_error.is_some(), "{e:?}");
        assert_eq!(
            r.headers.get("x-ms-error-code").map(String::as_str),
            Some("Denied")
        );
    }
    // None of them had a side effect; the log says why each failed.
    assert_eq!(
        acs.context_outcome(&data.incoming_call_context),
        Some(ContextOutcome::Pending)
    );
    let log = acs.requests_of("answer_call");
    assert_eq!(log.len(), 5);
    let reasons: Vec<String> = log
        .iter()
        .map(|r| match &r.signature {
            SignatureCheck::Invalid(why) => why.clone(),
            SignatureCheck::Valid => "valid".into(),
        })
        .collect();
    assert!(reasons[0].contains("signature mismatch"), "{reasons:?}");
    assert!(
        reasons[1].contains("does not match the body"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("away from now") && reasons[3].contains("away from now"),
        "{reasons:?}"
    );
    assert!(reasons[4].contains("missing"), "{reasons:?}");
    assert!(log.iter().all(|r| r.status == Some(401)));
    // A date within the skew (10 min old) is fine.
    let r = send(
        &acs,
        "POST",
        ANSWER,
        &body,
        &Signing {
            date_unix: Some(unix_now() - 600),
            ..Signing::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    acs.shutdown().await;
}

#[tokio::test]
async fn official_hmac_vectors_pass_through_the_server_path() {
    let v = vector("hmac_sha256_js_sdk_test_vectors.json");
    let key = base64::engine::general_purpose::STANDARD
        .decode(v["accessKey"].as_str().unwrap())
        .unwrap();
    let date = v["x-ms-date"].as_str().unwrap();
    let acs = start_fake(FakeAcsConfig {
        access_key: key,
        now_override: parse_rfc1123(date),
        ..test_config()
    })
    .await;
    for case in v["cases"].as_array().unwrap() {
        let url = case["url"].as_str().unwrap();
        let pq = &url["https://example.com".len()..];
        let auth = case["Authorization"].as_str().unwrap();
        let headers = |authorization: &str| {
            vec![
                ("host".to_owned(), "example.com".to_owned()),
                ("x-ms-date".to_owned(), date.to_owned()),
                (
                    "x-ms-content-sha256".to_owned(),
                    v["x-ms-content-sha256"].as_str().unwrap().to_owned(),
                ),
                ("authorization".to_owned(), authorization.to_owned()),
            ]
        };
        // The vector's exact headers authenticate (the path is no ACS route: 404 after auth).
        let r = send(
            &acs,
            "GET",
            pq,
            b"",
            &Signing {
                unsigned: true,
                extra: headers(auth),
                ..Signing::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(r.status, 404, "{pq}");
        // One character changed in the signature: 401.
        let mut bad = auth.to_owned().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let r = send(
            &acs,
            "GET",
            pq,
            b"",
            &Signing {
                unsigned: true,
                extra: headers(&String::from_utf8(bad).unwrap()),
                ..Signing::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(r.status, 401, "{pq}");
    }
    let log = acs.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(
        log.iter()
            .map(|r| r.signature.is_valid())
            .collect::<Vec<_>>(),
        [true, false, true, false]
    );
    assert!(log
        .iter()
        .all(|r| r.headers.get("host").map(String::as_str) == Some("example.com")));
    acs.shutdown().await;
}

#[tokio::test]
async fn answer_posts_callbacks_in_order_and_streams_media() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    let media = MediaServer::start(TalkBack::default()).await;
    let data = acs.incoming_call(IncomingCallSpec::default());
    let r = signed(
        &acs,
        "POST",
        ANSWER,
        &answer_body(
            &data.incoming_call_context,
            &hooks.url("/api/callbacks/tok"),
            Some(&media.url),
        ),
    )
    .await;
    assert_eq!(r.status, 200);

    // The response has the shape of the answer vector's 200 body.
    let body = r.json();
    let vec_body = &vector("rest_answer_call_2025-06-15.json")["responses"]["200"]["body"];
    for (k, v) in body.as_object().unwrap() {
        match vec_body.get(k) {
            Some(want) => assert_eq!(
                std::mem::discriminant(v),
                std::mem::discriminant(want),
                "{k}"
            ),
            // CallConnectionProperties fields of docs/PROTOCOL.md §4.2 the example leaves out.
            None => assert!(
                ["correlationId", "sourceDisplayName", "answeredBy"].contains(&k.as_str()),
                "{k}"
            ),
        }
    }
    for k in [
        "callConnectionId",
        "serverCallId",
        "targets",
        "callConnectionState",
        "callbackUri",
        "mediaStreamingSubscription",
        "source",
        "sourceCallerIdNumber",
        "answeredFor",
    ] {
        assert!(body.get(k).is_some(), "{k} missing: {body}");
    }
    let props: CallConnectionProperties = serde_json::from_value(body.clone()).unwrap();
    let id = props.call_connection_id.clone().unwrap();
    assert_eq!(props.correlation_id, data.correlation_id);
    assert_eq!(
        body["mediaStreamingSubscription"]["subscribedContentTypes"],
        json!(["audio"])
    );

    // Callbacks: CallConnected, ParticipantsUpdated, MediaStreamingStarted — in that order, each
    // a CloudEvents array with a 5-minute RS256 token.
    let got = hooks.wait_for(3).await;
    let names: Vec<CallbackKind> = got
        .iter()
        .map(|r| parse_callbacks(&r.body).unwrap().remove(0).kind)
        .collect();
    assert_eq!(
        names,
        [
            CallbackKind::CallConnected,
            CallbackKind::ParticipantsUpdated,
            CallbackKind::MediaStreamingStarted
        ]
    );
    for r in &got {
        assert_eq!(r.path, "/api/callbacks/tok");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let token = r
            .header("authorization")
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        let claims = validate_jwt(&acs, token).await;
        assert_eq!(claims.exp - claims.iat, 300);
        assert!((claims.iat - unix_now()).abs() < 30);
        let e = parse_callbacks(&r.body).unwrap().remove(0);
        assert_eq!(e.call_connection_id.as_deref(), Some(id.as_str()));
        assert_eq!(e.correlation_id, data.correlation_id);
        assert_eq!(e.server_call_id, data.server_call_id);
    }
    let connected = parse_callbacks(&got[0].body).unwrap().remove(0);
    assert_eq!(connected.operation_context.as_deref(), Some("answer-ctx"));
    let started = parse_callbacks(&got[2].body).unwrap().remove(0);
    assert_eq!(started.succeeded(), Some(true));
    assert!(started.media_streaming_update.unwrap().is_audio());
    let updated = parse_callbacks(&got[1].body).unwrap().remove(0);
    assert_eq!(
        updated.participants.unwrap()[0].identifier.raw_id(),
        "4:+14255550123"
    );

    // The media WebSocket: ACS headers, a 24 h token, AudioMetadata first, then AudioData.
    let conns = media
        .wait_until("10 messages", |c| {
            c.first().is_some_and(|c| c.texts.len() >= 10)
        })
        .await;
    let c = &conns[0];
    assert_eq!(c.path, "/ws/test-token");
    assert_eq!(c.header("x-ms-call-connection-id"), Some(id.as_str()));
    assert_eq!(
        c.header("x-ms-call-correlation-id"),
        data.correlation_id.as_deref()
    );
    let token = c
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let claims = validate_jwt(&acs, token).await;
    assert_eq!(claims.exp - claims.iat, 24 * 3600);
    match parse_inbound(c.texts[0].1.as_bytes()).unwrap() {
        Inbound::AudioMetadata(m) => {
            assert_eq!(m.sample_rate, Some(16_000));
            assert_eq!(m.length, Some(640));
        }
        other => panic!("first message {other:?}"),
    }
    for (_, t) in &c.texts[1..] {
        match parse_inbound(t.as_bytes()).unwrap() {
            Inbound::AudioData(a) => assert!(a.participant_raw_id.is_none()),
            other => panic!("{other:?}"),
        }
    }
    // Real time, not a flood: frames 1..9 are 8 periods of 20 ms apart on the sender's schedule
    // (160 ms); a late first frame lets the next ones catch up with the schedule, so on a loaded
    // box the span can be shorter, but never near the ~0 ms of a flood.
    let span = c.texts[9].0 - c.texts[1].0;
    assert!(span >= Duration::from_millis(100), "{span:?}");

    // The gateway hangs up: 204, the socket closes with 1000, then MediaStreamingStopped and
    // CallDisconnected.
    let r = signed(&acs, "DELETE", &call_path(&id, ""), &Value::Null).await;
    assert_eq!(r.status, 204);
    media
        .wait_until("close", |c| c[0].closed == Some(1000))
        .await;
    let got = hooks.wait_for(5).await;
    let last: Vec<CallbackKind> = got[3..]
        .iter()
        .map(|r| parse_callbacks(&r.body).unwrap().remove(0).kind)
        .collect();
    assert_eq!(
        last,
        [
            CallbackKind::MediaStreamingStopped,
            CallbackKind::CallDisconnected
        ]
    );
    let info = acs
        .wait_for_callback(&id, "CallDisconnected", WAIT)
        .await
        .unwrap();
    assert_eq!(
        info.callback_names(),
        [
            "CallConnected",
            "ParticipantsUpdated",
            "MediaStreamingStarted",
            "MediaStreamingStopped",
            "CallDisconnected"
        ]
    );
    assert!(info.callbacks.iter().all(|c| c.delivered()));
    assert!(info.media.audio_frames_sent >= 9);
    assert_eq!(info.media.connections, 1);
    // The call is gone for the REST API.
    assert_eq!(
        signed(&acs, "DELETE", &call_path(&id, ""), &Value::Null)
            .await
            .status,
        404
    );
    acs.shutdown().await;
}

#[tokio::test]
async fn repeated_request_id_is_the_same_request() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    let data = acs.incoming_call(IncomingCallSpec::default());
    let body = answer_body(&data.incoming_call_context, &hooks.url("/cb"), None);
    let first_sent = format_rfc1123(unix_now()).unwrap();
    let rid = "0f0e0d0c-0b0a-4908-8706-050403020100";
    let a = signed_repeatable(&acs, "POST", ANSWER, &body, rid, &first_sent).await;
    let b = signed_repeatable(&acs, "POST", ANSWER, &body, rid, &first_sent).await;
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.body, b.body, "same response");
    assert_eq!(
        b.headers.get("repeatability-result").map(String::as_str),
        Some("accepted")
    );
    assert_eq!(acs.calls().len(), 1, "one side effect");
    let log = acs.requests_of("answer_call");
    assert_eq!(
        log.iter().map(|r| r.replayed).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(log[0].repeatability_request_id.as_deref(), Some(rid));
    // A new request id for the same context is a second answer: refused.
    let c = signed_repeatable(
        &acs,
        "POST",
        ANSWER,
        &body,
        "1f0e0d0c-0b0a-4908-8706-050403020100",
        &first_sent,
    )
    .await;
    assert_eq!(c.status, 400);
    // The same id with another first-sent date is a client bug: rejected.
    let other = format_rfc1123(unix_now() - 5).unwrap();
    let d = signed_repeatable(&acs, "POST", ANSWER, &body, rid, &other).await;
    assert_eq!(d.status, 400);
    assert_eq!(
        d.headers.get("repeatability-result").map(String::as_str),
        Some("rejected")
    );
    // Half the pair, or a bad date: 400.
    let half = send(
        &acs,
        "POST",
        ANSWER,
        &serde_json::to_vec(&body).unwrap(),
        &Signing {
            extra: vec![("Repeatability-Request-ID".into(), rid.into())],
            ..Signing::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(half.status, 400);
    let bad_date = signed_repeatable(
        &acs,
        "POST",
        ANSWER,
        &body,
        "2f0e0d0c-0b0a-4908-8706-050403020100",
        "yesterday",
    )
    .await;
    assert_eq!(bad_date.status, 400);

    // A repeated add participant rings once and succeeds once.
    let id = a.json()["callConnectionId"].as_str().unwrap().to_owned();
    let add = json!({"participantToAdd": {"rawId": "8:acs:someone"}, "operationContext": "add-1"});
    let pq = call_path(&id, "/participants:add");
    let r1 = signed_repeatable(
        &acs,
        "POST",
        &pq,
        &add,
        "3f0e0d0c-0b0a-4908-8706-050403020100",
        &first_sent,
    )
    .await;
    let r2 = signed_repeatable(
        &acs,
        "POST",
        &pq,
        &add,
        "3f0e0d0c-0b0a-4908-8706-050403020100",
        &first_sent,
    )
    .await;
    assert_eq!((r1.status, r2.status), (202, 202));
    assert_eq!(r1.json()["invitationId"], r2.json()["invitationId"]);
    let info = acs
        .wait_for_callback(&id, "AddParticipantSucceeded", WAIT)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info2 = acs.call(&id).unwrap();
    let count = |i: &acs_sim::acs::CallInfo| {
        i.callback_names()
            .iter()
            .filter(|n| *n == "AddParticipantSucceeded")
            .count()
    };
    assert_eq!((count(&info), count(&info2)), (1, 1));
    acs.shutdown().await;
}

#[tokio::test]
async fn stale_unknown_and_reused_contexts_and_bad_bodies() {
    let acs = start_fake(FakeAcsConfig {
        incoming_call_ttl: Duration::from_millis(100),
        ..test_config()
    })
    .await;
    // Unknown context: the stale-call error the gateway recognises.
    let r = signed(
        &acs,
        "POST",
        ANSWER,
        &answer_body("never-issued", "http://127.0.0.1:9/cb", None),
    )
    .await;
    assert_eq!(r.status, 400);
    let e = AcsError::from_body(&r.body).unwrap();
    assert!(e.is_stale_incoming_call(), "{e:?}");
    assert!(
        e.message
            .starts_with("IDX23010: Lifetime validation of the signed http request failed."),
        "{}",
        e.message
    );
    // Expired context.
    let data = acs.incoming_call(IncomingCallSpec::default());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = signed(
        &acs,
        "POST",
        ANSWER,
        &answer_body(&data.incoming_call_context, "http://127.0.0.1:9/cb", None),
    )
    .await;
    assert!(AcsError::from_body(&r.body)
        .unwrap()
        .is_stale_incoming_call());
    // Rejected once: a second reject or an answer is refused (not stale).
    let data = acs.incoming_call(IncomingCallSpec::default());
    let reject =
        json!({"incomingCallContext": data.incoming_call_context, "callRejectReason": "busy"});
    let pq = "/calling/callConnections:reject?api-version=2026-03-12";
    assert_eq!(signed(&acs, "POST", pq, &reject).await.status, 204);
    assert_eq!(
        acs.context_outcome(&data.incoming_call_context),
        Some(ContextOutcome::Rejected(Some("busy".into())))
    );
    let again = signed(&acs, "POST", pq, &reject).await;
    assert_eq!(again.status, 400);
    assert!(!AcsError::from_body(&again.body)
        .unwrap()
        .is_stale_incoming_call());
    // Redirect.
    let data = acs.incoming_call(IncomingCallSpec::default());
    let redirect = json!({"incomingCallContext": data.incoming_call_context, "target": {"rawId": "4:+15550001111", "phoneNumber": {"value": "+15550001111"}}});
    assert_eq!(
        signed(
            &acs,
            "POST",
            "/calling/callConnections:redirect?api-version=2026-03-12",
            &redirect
        )
        .await
        .status,
        204
    );
    assert_eq!(
        acs.context_outcome(&data.incoming_call_context),
        Some(ContextOutcome::Redirected("4:+15550001111".into()))
    );

    // Bodies: missing field, invalid transport URL (field named), malformed JSON.
    let data = acs.incoming_call(IncomingCallSpec::default());
    let r = signed(
        &acs,
        "POST",
        ANSWER,
        &json!({"incomingCallContext": data.incoming_call_context}),
    )
    .await;
    assert_eq!(r.status, 400);
    let mut b = answer_body(
        &data.incoming_call_context,
        "http://127.0.0.1:9/cb",
        Some("ws://127.0.0.1:9/ws"),
    );
    b["mediaStreamingOptions"]["transportUrl"] = json!("http://not-a-websocket");
    let r = signed(&acs, "POST", ANSWER, &b).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        AcsError::from_body(&r.body).unwrap().target.as_deref(),
        Some("mediaStreamingOptions.transportUrl")
    );
    let r = send(&acs, "POST", ANSWER, b"{not json", &Signing::default())
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // No api-version.
    let r = signed(
        &acs,
        "POST",
        "/calling/callConnections:answer",
        &answer_body(&data.incoming_call_context, "http://127.0.0.1:9/cb", None),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        AcsError::from_body(&r.body).unwrap().code,
        "MissingApiVersionParameter"
    );
    // None of that used the context.
    assert_eq!(
        acs.context_outcome(&data.incoming_call_context),
        Some(ContextOutcome::Pending)
    );
    acs.shutdown().await;
}

#[tokio::test]
async fn injected_faults() {
    let acs = start_fake(test_config()).await;
    let data = acs.incoming_call(IncomingCallSpec::default());
    let body = answer_body(&data.incoming_call_context, "http://127.0.0.1:9/cb", None);
    acs.set_fault(Fault::new(
        "answer_call",
        FaultKind::TooManyRequests {
            retry_after_secs: 7,
        },
        1,
    ));
    acs.set_fault(Fault::new("answer_call", FaultKind::Status(500), 1));
    acs.set_fault(Fault::parse("answer_call:400").unwrap());
    acs.set_fault(Fault::parse("answer_call:401:1").unwrap());
    acs.set_fault(Fault::parse("answer_call:drop").unwrap());
    let r = signed(&acs, "POST", ANSWER, &body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("7"));
    assert_eq!(
        AcsError::from_body(&r.body).unwrap().code,
        "TooManyRequests"
    );
    assert_eq!(signed(&acs, "POST", ANSWER, &body).await.status, 500);
    assert_eq!(signed(&acs, "POST", ANSWER, &body).await.status, 400);
    assert_eq!(signed(&acs, "POST", ANSWER, &body).await.status, 401);
    let dropped = send(
        &acs,
        "POST",
        ANSWER,
        &serde_json::to_vec(&body).unwrap(),
        &Signing::default(),
    )
    .await;
    assert!(dropped.is_err(), "{dropped:?}");
    // No side effect so far.
    assert_eq!(
        acs.context_outcome(&data.incoming_call_context),
        Some(ContextOutcome::Pending)
    );
    // A slow answer still answers.
    acs.set_fault(Fault::parse("answer_call:delay=300").unwrap());
    let t0 = std::time::Instant::now();
    assert_eq!(signed(&acs, "POST", ANSWER, &body).await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let log = acs.requests_of("answer_call");
    assert_eq!(log.len(), 6);
    assert_eq!(log[4].status, None, "dropped");
    assert_eq!(
        log[5].fault,
        Some(FaultKind::Delay(Duration::from_millis(300)))
    );
    // A fault for another operation does not touch this one; `any` hits everything.
    acs.set_fault(Fault::parse("any:503").unwrap());
    assert_eq!(
        signed(&acs, "GET", &call_path("x", ""), &Value::Null)
            .await
            .status,
        503
    );
    assert!(Fault::parse("answer_call:teapot").is_err());
    assert!(Fault::parse("answer_call").is_err());
    acs.shutdown().await;
}

#[tokio::test]
async fn outbound_audio_is_recorded_with_pacing_and_stop_latency() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    let media = MediaServer::start(TalkBack {
        frames: 10,
        pcm_bytes: 640,
        interval: Duration::from_millis(20),
        stop_audio: true,
    })
    .await;
    let id = answer(&acs, &hooks.url("/cb"), Some(&media.url)).await;
    let info = acs
        .wait_for(WAIT, |h| {
            h.call(&id).filter(|c| c.media.outbound.stop_audio == 1)
        })
        .await
        .expect("outbound StopAudio recorded");
    let o = &info.media.outbound;
    assert_eq!(o.audio_frames, 10);
    assert_eq!(o.pcm_bytes, 6400);
    assert!((o.audio_ms - 200.0).abs() < 1e-6);
    let iv = o.intervals.as_ref().unwrap();
    assert_eq!(iv.count, 9);
    assert!(iv.mean_ms > 10.0 && iv.mean_ms < 40.0, "{iv:?}");
    // The talk-back starts at the first AudioData, a speech onset of the generated tone.
    let latency = o.stop_audio_latency_ms[0].expect("onset before StopAudio");
    assert!((150.0..2000.0).contains(&latency), "{latency}");
    let pcm = acs.outbound_pcm(&id).unwrap();
    assert_eq!(pcm.len(), 3200);
    let events = acs.outbound_events(&id).unwrap();
    assert_eq!(events.len(), 11);
    assert!(acs.hang_up(&id));
    acs.wait_for_callback(&id, "CallDisconnected", WAIT)
        .await
        .unwrap();
    assert!(!acs.hang_up(&id), "already over");
    acs.shutdown().await;
}

#[tokio::test]
async fn first_audio_after_and_given_pcm_and_outbound_stream_positions() {
    // the caller's audio is the test's PCM, held back 400 ms after the metadata
    let pcm: Vec<i16> = (0..16_000)
        .map(|i| (i * 7919 % 2001) as i16 - 1000)
        .collect();
    let lead_in = Duration::from_millis(400);
    let acs = start_fake(FakeAcsConfig {
        audio: CallAudio {
            sources: vec![AudioSource {
                raw_id: None,
                input: AudioInput::Pcm {
                    sample_rate: 16_000,
                    samples: std::sync::Arc::new(pcm.clone()),
                },
            }],
            first_audio_after: lead_in,
            ..CallAudio::default()
        },
        ..test_config()
    })
    .await;
    let hooks = Receiver::start().await;
    let media = MediaServer::start(TalkBack {
        frames: 5,
        pcm_bytes: 640,
        interval: Duration::from_millis(40),
        stop_audio: true,
    })
    .await;
    let id = answer(&acs, &hooks.url("/cb"), Some(&media.url)).await;
    let info = acs
        .wait_for(WAIT, |h| {
            h.call(&id).filter(|c| c.media.outbound.stop_audio == 1)
        })
        .await
        .expect("the talk-back and its StopAudio recorded");
    let conns = media
        .wait_until("15 audio frames", |c| {
            c.first().is_some_and(|c| c.texts.len() > 15)
        })
        .await;
    let texts = &conns[0].texts;
    assert!(matches!(
        parse_inbound(texts[0].1.as_bytes()).unwrap(),
        Inbound::AudioMetadata(_)
    ));
    // the metadata came at once, the audio only after the lead-in (arrival times: the metadata
    // may have been a little late itself, hence the slack)
    let gap = texts[1].0 - texts[0].0;
    assert!(gap >= lead_in - Duration::from_millis(100), "{gap:?}");
    // and it is the PCM given, frame by frame
    let mut sent = Vec::new();
    for (_, t) in &texts[1..] {
        let Inbound::AudioData(a) = parse_inbound(t.as_bytes()).unwrap() else {
            panic!("{t}")
        };
        let mut bytes = Vec::new();
        acs_protocol::decode_base64_into(a.data.as_bytes(), &mut bytes).unwrap();
        sent.extend(
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }
    assert_eq!(&sent[..], &pcm[..sent.len()]);

    // each message back carries the caller's stream position at its arrival: the talk-back
    // starts once the first frame arrived, and the position only grows
    let events = acs.outbound_events(&id).unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    let pos: Vec<u64> = events.iter().map(|e| e.stream_frames).collect();
    assert!(pos[0] >= 1, "{pos:?}");
    assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{pos:?}");
    assert!(
        pos[5] <= info.media.audio_frames_sent,
        "{pos:?} of {}",
        info.media.audio_frames_sent
    );
    // the StopAudio came 200 ms after the first talk-back frame: about 10 frames later
    assert!(pos[5] > pos[0], "{pos:?}");
    assert!(acs.hang_up(&id));
    acs.shutdown().await;
}

#[tokio::test]
async fn unmixed_24k_streams_one_participant_each() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    let media = MediaServer::start(TalkBack::default()).await;
    let tone = |n: usize| AudioSource {
        raw_id: Some(format!("8:acs:talker-{n}")),
        input: AudioInput::Pcm {
            sample_rate: 16_000,
            samples: std::sync::Arc::new(vec![4000; 16_000]),
        },
    };
    let spec = IncomingCallSpec {
        audio: Some(CallAudio {
            sources: vec![tone(1), tone(2)],
            ..CallAudio::default()
        }),
        ..IncomingCallSpec::default()
    };
    let data = acs.incoming_call(spec);
    let mut body = answer_body(
        &data.incoming_call_context,
        &hooks.url("/cb"),
        Some(&media.url),
    );
    body["mediaStreamingOptions"]["audioChannelType"] = json!("unmixed");
    body["mediaStreamingOptions"]["audioFormat"] = json!("pcm24KMono");
    let req: AnswerCallRequest = serde_json::from_value(body.clone()).unwrap();
    req.validate().unwrap();
    assert_eq!(signed(&acs, "POST", ANSWER, &body).await.status, 200);
    let conns = media
        .wait_until("7 messages", |c| {
            c.first().is_some_and(|c| c.texts.len() >= 7)
        })
        .await;
    let texts = &conns[0].texts;
    match parse_inbound(texts[0].1.as_bytes()).unwrap() {
        Inbound::AudioMetadata(m) => {
            assert_eq!((m.sample_rate, m.length), (Some(24_000), Some(960)))
        }
        other => panic!("{other:?}"),
    }
    let ids: Vec<String> = texts[1..7]
        .iter()
        .map(|(_, t)| match parse_inbound(t.as_bytes()).unwrap() {
            Inbound::AudioData(a) => {
                let mut pcm = Vec::new();
                acs_protocol::decode_base64_into(a.data.as_bytes(), &mut pcm).unwrap();
                assert_eq!(pcm.len(), 960);
                a.participant_raw_id.unwrap().into_owned()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        [
            "8:acs:talker-1",
            "8:acs:talker-2",
            "8:acs:talker-1",
            "8:acs:talker-2",
            "8:acs:talker-1",
            "8:acs:talker-2"
        ]
    );
    let call = acs.calls().remove(0);
    assert_eq!(call.media.streams, 2);
    assert_eq!(call.media.sample_rate, 24_000);
    // Both talkers are participants (the caller too).
    assert_eq!(call.participants.len(), 3);
    acs.shutdown().await;
}

#[tokio::test]
async fn mid_call_operations_post_their_callbacks() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    let media = MediaServer::start(TalkBack::default()).await;
    // Answered without starting media: start and stop it later.
    let data = acs.incoming_call(IncomingCallSpec::to_teams_resource_account(
        "+14255550123",
        "cc123456-5678-5678-1234-ccc123456789",
    ));
    assert_eq!(
        data.to.raw_id(),
        "28:orgid:cc123456-5678-5678-1234-ccc123456789"
    );
    let mut body = answer_body(
        &data.incoming_call_context,
        &hooks.url("/cb"),
        Some(&media.url),
    );
    body["mediaStreamingOptions"]["startMediaStreaming"] = json!(false);
    let r = signed(&acs, "POST", ANSWER, &body).await;
    assert_eq!(r.json()["mediaStreamingSubscription"]["state"], "inactive");
    let id = r.json()["callConnectionId"].as_str().unwrap().to_owned();
    acs.wait_for_callback(&id, "ParticipantsUpdated", WAIT)
        .await
        .unwrap();
    assert!(media.conns().is_empty());
    // Stop before start: 400.
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, ":stopMediaStreaming"),
            &json!({})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, ":startMediaStreaming"),
            &json!({"operationContext": "start-ms"})
        )
        .await
        .status,
        202
    );
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, ":startMediaStreaming"),
            &json!({})
        )
        .await
        .status,
        400
    );
    media
        .wait_until("a media connection", |c| c.len() == 1)
        .await;
    let info = acs
        .wait_for_callback(&id, "MediaStreamingStarted", WAIT)
        .await
        .unwrap();
    assert_eq!(
        info.callbacks.last().unwrap().operation_context.as_deref(),
        Some("start-ms")
    );
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, ":stopMediaStreaming"),
            &json!({"operationContext": "stop-ms"})
        )
        .await
        .status,
        202
    );
    media
        .wait_until("close", |c| c[0].closed == Some(1000))
        .await;
    let info = acs
        .wait_for_callback(&id, "MediaStreamingStopped", WAIT)
        .await
        .unwrap();
    assert_eq!(
        info.callbacks.last().unwrap().operation_context.as_deref(),
        Some("stop-ms")
    );

    // Participants: add (PSTN needs a caller id), a failing add, remove, get.
    let add = |raw: &str| json!({"participantToAdd": {"rawId": raw}, "operationContext": format!("add {raw}"), "sourceCallerIdNumber": {"value": "+18005550100"}});
    let pq = call_path(&id, "/participants:add");
    assert_eq!(
        signed(
            &acs,
            "POST",
            &pq,
            &json!({"participantToAdd": {"rawId": "4:+15551234567"}})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        signed(&acs, "POST", &pq, &add("4:+15551234567"))
            .await
            .status,
        202
    );
    acs.fail_participant("8:acs:busy");
    assert_eq!(
        signed(&acs, "POST", &pq, &add("8:acs:busy")).await.status,
        202
    );
    acs.wait_for(WAIT, |h| {
        h.call(&id).filter(|c| {
            c.callback_names()
                .iter()
                .any(|n| n == "AddParticipantFailed")
        })
    })
    .await
    .unwrap();
    let parts = signed(&acs, "GET", &call_path(&id, "/participants"), &Value::Null)
        .await
        .json();
    let raws: Vec<&str> = parts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["identifier"]["rawId"].as_str().unwrap())
        .collect();
    assert_eq!(raws, ["4:+14255550123", "4:+15551234567"]);
    let remove =
        json!({"participantToRemove": {"rawId": "4:+15551234567"}, "operationContext": "rm"});
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, "/participants:remove"),
            &remove
        )
        .await
        .status,
        202
    );
    assert_eq!(
        signed(
            &acs,
            "POST",
            &call_path(&id, "/participants:remove"),
            &remove
        )
        .await
        .status,
        404
    );
    acs.wait_for_callback(&id, "RemoveParticipantSucceeded", WAIT)
        .await
        .unwrap();

    // Recording by call connection id: started, then stopped; then one that fails.
    let rec = json!({"callConnectionId": id, "recordingStateCallbackUri": hooks.url("/rec"), "recordingContentType": "audio", "recordingChannelType": "mixed", "recordingFormatType": "wav"});
    let r = signed(
        &acs,
        "POST",
        "/calling/recordings?api-version=2026-03-12",
        &rec,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["recordingState"], "inactive");
    let rid = r.json()["recordingId"].as_str().unwrap().to_owned();
    let rec_path = format!(
        "/calling/recordings/{}?api-version=2026-03-12",
        acs_protocol::rest::encode_segment(&rid)
    );
    acs.wait_for_callback(&id, "RecordingStateChanged", WAIT)
        .await
        .unwrap();
    assert_eq!(
        signed(&acs, "GET", &rec_path, &Value::Null).await.json()["recordingState"],
        "active"
    );
    assert_eq!(
        signed(&acs, "DELETE", &rec_path, &Value::Null).await.status,
        204
    );
    acs.set_recording_fails(true);
    assert_eq!(
        signed(
            &acs,
            "POST",
            "/calling/recordings?api-version=2026-03-12",
            &rec
        )
        .await
        .status,
        200
    );
    acs.wait_for_callback(&id, "StartRecordingFailed", WAIT)
        .await
        .unwrap();
    let rec_events: Vec<_> = hooks
        .log()
        .into_iter()
        .filter(|r| r.path == "/rec")
        .map(|r| parse_callbacks(&r.body).unwrap().remove(0))
        .collect();
    assert_eq!(rec_events.len(), 3);
    assert_eq!(
        rec_events[0].recording_state,
        Some(acs_protocol::rest::RecordingState::Active)
    );
    assert_eq!(
        rec_events[1].recording_state,
        Some(acs_protocol::rest::RecordingState::Inactive)
    );
    assert_eq!(rec_events[2].kind, CallbackKind::StartRecordingFailed);
    assert!(rec_events[0].source.starts_with("calling/recordings/"));

    // Transfer ends the call for us: CallTransferAccepted, CallDisconnected.
    let t = json!({"targetParticipant": {"rawId": "8:orgid:agent"}, "operationContext": "xfer"});
    let r = signed(&acs, "POST", &call_path(&id, ":transferToParticipant"), &t).await;
    assert_eq!(
        (r.status, r.json()["operationContext"].clone()),
        (202, json!("xfer"))
    );
    let info = acs
        .wait_for_callback(&id, "CallDisconnected", WAIT)
        .await
        .unwrap();
    let names = info.callback_names();
    assert_eq!(
        &names[names.len() - 2..],
        ["CallTransferAccepted", "CallDisconnected"]
    );
    // Every callback went to its URI and parsed.
    for r in hooks.log() {
        assert!(!parse_callbacks(&r.body).unwrap().is_empty());
    }
    acs.shutdown().await;
}

#[tokio::test]
async fn media_connection_failure_is_reported() {
    let acs = start_fake(test_config()).await;
    let hooks = Receiver::start().await;
    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let id = answer(&acs, &hooks.url("/cb"), Some(&format!("ws://{closed}/ws"))).await;
    let info = acs
        .wait_for_callback(&id, "MediaStreamingFailed", WAIT)
        .await
        .unwrap();
    assert_eq!(info.media.connect_failures, 1);
    let got = hooks.wait_for(3).await;
    let e = parse_callbacks(&got[2].body).unwrap().remove(0);
    assert_eq!(e.succeeded(), Some(false));
    assert_eq!(e.result_information.unwrap().sub_code, Some(8603));
    acs.shutdown().await;
}

#[tokio::test]
async fn teams_token_exchange_and_extension_assignment() {
    let acs = start_fake(test_config()).await;
    let pq = "/teamsUser/:exchangeAccessToken?api-version=2023-10-01";
    let r = signed(
        &acs,
        "POST",
        pq,
        &json!({"token": "a.b.c", "appId": "app", "userId": "user"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    validate_jwt(&acs, &token).await;
    assert!(r.json()["expiresOn"].as_str().unwrap().ends_with('Z'));
    let r = signed(
        &acs,
        "POST",
        pq,
        &json!({"token": "not-a-jwt", "appId": "app", "userId": "user"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        AcsError::from_body(&r.body).unwrap().code,
        "InvalidAccessToken"
    );
    let v = vector("teams_extension_assignment_request_response.json");
    let path = v["request"]["path"]
        .as_str()
        .unwrap()
        .replace("{endpoint}", "");
    let r = signed(&acs, "PUT", &path, &v["request"]["body"]).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), v["response"]["body"]);
    assert_eq!(
        signed(&acs, "PUT", &path, &v["request"]["body"])
            .await
            .status,
        200
    );
    // The public documents need no signature.
    let fetched = acs.jwks_fetches();
    let jwks = http()
        .get(&acs.jwks_url)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "test-key-1");
    assert_eq!(
        jwks,
        serde_json::from_str::<Value>(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/keys/jwt_test_jwks.json"
            ))
            .unwrap()
        )
        .unwrap()
    );
    let oid = http()
        .get(format!(
            "{}/calling/.well-known/acsopenidconfiguration",
            acs.base_url
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(oid["jwks_uri"], acs.jwks_url.as_str());
    assert_eq!(
        oid["issuer"],
        "https://acscallautomation.communication.azure.com"
    );
    assert_eq!(acs.jwks_fetches(), fetched + 1);
    acs.shutdown().await;
}
