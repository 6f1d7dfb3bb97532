//! Handler tests of the Event Grid webhook and the answer task, over [`MockAcs`] (socket-free).

use super::*;
use crate::control::acs_client::AcsClientError;
use crate::control::http::MAX_BODY_BYTES;
use crate::control::mock::{MockAcs, MockReply};
use crate::control::policy::{AnswerRule, StreamingProfile, TranscriptionProfile};
use crate::control::registry::CallState;
use crate::control::testkit::{cfg, eventually, plane, read, req, vector, BASE, TOKEN_SECRET};
use crate::protocol::events::{CloudEvent, EventGridEvent};
use crate::protocol::rest::AcsError;
use crate::protocol::token;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn post(body: &str) -> Request<http_body_util::Full<Bytes>> {
    req(
        Method::POST,
        "/api/incomingCall",
        &[("aeg-event-type", "Notification")],
        body,
    )
}

/// An IncomingCall delivery (Event Grid schema) with the given ids and callee.
fn incoming(event_id: &str, context: &str, to: &str, from: &str) -> String {
    let mut data: IncomingCallEventData = serde_json::from_str(&vector(
        "eventgrid_incoming_call_data_teams_resource_account_tpe.json",
    ))
    .unwrap();
    data.incoming_call_context = context.into();
    data.to = (&crate::protocol::identifier::parse_raw_id(to)).into();
    data.from = (&crate::protocol::identifier::parse_raw_id(from)).into();
    let ev =
        EventGridEvent::incoming_call(event_id, "/subscriptions/x", "2025-01-01T00:00:00Z", &data);
    serde_json::to_string(&vec![ev]).unwrap()
}

#[tokio::test]
async fn subscription_validation_both_schemas_even_without_acs() {
    let cp = plane(&cfg(), None);
    let (status, body) = read(
        handle(
            &cp,
            post(&vector("eventgrid_subscription_validation_event.json")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let want: Value =
        serde_json::from_str(&vector("eventgrid_subscription_validation_response.json")).unwrap();
    assert_eq!(body, want);

    // CloudEvents: the OPTIONS abuse-protection handshake.
    let r = handle(
        &cp,
        req(
            Method::OPTIONS,
            "/api/incomingCall",
            &[("WebHook-Request-Origin", "eventgrid.azure.net")],
            "",
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("webhook-allowed-origin").unwrap(),
        "eventgrid.azure.net"
    );
    assert_eq!(r.headers().get("webhook-allowed-rate").unwrap(), "*");
    assert!(r
        .headers()
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("POST"));

    // Without ACS an IncomingCall cannot be answered: 503, counted as failed.
    let (status, body) = read(
        handle(
            &cp,
            post(&incoming("e1", "ctx", "8:acs:a", "4:+12065551212")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ACS not configured"));
    assert_eq!(cp.metrics.control.incoming_count("failed"), 1);
}

#[tokio::test]
async fn incoming_call_is_answered_with_the_profile_urls_and_token() {
    let mock = Arc::new(MockAcs::new());
    let cp = plane(&cfg(), Some(mock.clone()));
    let (status, body) = read(
        handle(
            &cp,
            post(&vector("eventgrid_incoming_call_eventgrid_schema.json")),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["accepted"][0].as_str().unwrap().to_owned();
    let reqs = mock.wait_for(1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].op.name(), "answer_call");
    let b = reqs[0].body.clone().unwrap();
    assert_eq!(b["incomingCallContext"], "{incoming-call-contextValue}");
    assert_eq!(b["operationContext"], call_id.as_str());
    let cb = b["callbackUri"].as_str().unwrap();
    let tok = cb
        .strip_prefix(&format!("{BASE}/api/callbacks/"))
        .unwrap_or_else(|| panic!("{cb}"));
    let m = &b["mediaStreamingOptions"];
    assert_eq!(m["transportUrl"], format!("wss://gw.contoso.test/ws/{tok}"));
    assert_eq!(m["transportType"], "websocket");
    assert_eq!(m["contentType"], "audio");
    assert_eq!(m["audioChannelType"], "mixed");
    assert_eq!(m["audioFormat"], "pcm16KMono");
    assert_eq!(m["startMediaStreaming"], true);
    assert_eq!(m["enableBidirectional"], false);
    assert_eq!(m["enableDtmfTones"], false);
    assert!(b.get("transcriptionOptions").is_none());
    // The token is the gateway's, for this call, expiring in 4 h.
    let now = chrono::Utc::now().timestamp();
    let t = token::verify(TOKEN_SECRET.as_bytes(), tok, now).unwrap();
    assert_eq!(t.call_id, call_id);
    assert!((t.expires_unix - now - 4 * 3600).abs() <= 5);
    // The registry learns the ids from the answer response.
    eventually("answered", || {
        cp.registry
            .get(&call_id)
            .is_some_and(|r| r.answered_at.is_some())
    })
    .await;
    let r = cp.registry.get("mock-conn-1").unwrap();
    assert_eq!(r.id, call_id);
    assert_eq!(r.state, CallState::Answering);
    assert_eq!(r.from, "{caller-id}");
    assert_eq!(r.decision, "answer:default");
    assert_eq!(r.server_call_id.as_deref(), Some("mock-server-1"));
    assert_eq!(cp.metrics.control.incoming_count("answered"), 1);
    assert_eq!(cp.metrics.control.answer_latency.get_sample_count(), 1);
    assert_eq!(cp.metrics.control.calls_active.get(), 1);
}

#[tokio::test]
async fn cloud_events_incoming_call_and_duplicates_answered_once() {
    let mock = Arc::new(MockAcs::new());
    let cp = plane(&cfg(), Some(mock.clone()));
    let data: IncomingCallEventData = serde_json::from_str(&vector(
        "eventgrid_incoming_call_data_teams_resource_account_tpe.json",
    ))
    .unwrap();
    let ce = CloudEvent::incoming_call("ce-1", "/acs", "2025-01-01T00:00:00Z", &data);
    let body = serde_json::to_string(&ce).unwrap();
    for _ in 0..3 {
        let (status, _) = read(handle(&cp, post(&body)).await).await;
        assert_eq!(status, 200);
    }
    // Same call (context) under another event id: still a duplicate.
    let mut again = ce.clone();
    again.id = "ce-2".into();
    let (_, b) = read(handle(&cp, post(&serde_json::to_string(&vec![again]).unwrap())).await).await;
    assert_eq!(b["duplicates"], 1);
    mock.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(mock.requests_of("answer_call").len(), 1, "answered once");
    assert_eq!(cp.metrics.control.incoming_count("duplicate"), 3);
    assert_eq!(cp.registry.len(), 1);
}

fn policy_cfg() -> crate::control::PlaneConfig {
    let mut c = cfg();
    c.answer.profiles.insert(
        "tpe".into(),
        StreamingProfile {
            audio_channel: "unmixed".into(),
            audio_format: "pcm24KMono".into(),
            enable_bidirectional: true,
            enable_dtmf_tones: true,
            transcription: Some(TranscriptionProfile::default()),
            ..Default::default()
        },
    );
    c.answer.rules = vec![
        AnswerRule {
            name: "support".into(),
            to: "28:orgid:cc123456-*".into(),
            profile: "tpe".into(),
            ..Default::default()
        },
        AnswerRule {
            name: "closed".into(),
            to: "4:+1800*".into(),
            action: "reject".into(),
            reject_reason: "busy".into(),
            ..Default::default()
        },
        AnswerRule {
            name: "overflow".into(),
            to: "8:acs:overflow*".into(),
            action: "redirect".into(),
            redirect_to: "4:+14255550199".into(),
            ..Default::default()
        },
    ];
    c
}

#[tokio::test]
async fn policy_rules_choose_profile_reject_and_redirect() {
    let mock = Arc::new(MockAcs::new());
    let cp = plane(&policy_cfg(), Some(mock.clone()));
    // The Teams resource account vector (to = {"kind":"unknown","rawId":"28:orgid:…"}).
    let data: IncomingCallEventData = serde_json::from_str(&vector(
        "eventgrid_incoming_call_data_teams_resource_account_tpe.json",
    ))
    .unwrap();
    let ev = EventGridEvent::incoming_call("tpe-1", "/s", "2025-01-01T00:00:00Z", &data);
    handle(&cp, post(&serde_json::to_string(&vec![ev]).unwrap())).await;
    handle(
        &cp,
        post(&incoming(
            "r-1",
            "ctx-r",
            "4:+18005550100",
            "4:+12065551212",
        )),
    )
    .await;
    handle(
        &cp,
        post(&incoming(
            "d-1",
            "ctx-d",
            "8:acs:overflow_1",
            "4:+12065551212",
        )),
    )
    .await;
    let reqs = mock.wait_for(3, WAIT).await;
    assert_eq!(reqs.len(), 3);
    let answer = mock.requests_of("answer_call").remove(0).body.unwrap();
    assert_eq!(answer["incomingCallContext"], "<CALL_CONTEXT VALUE>");
    let m = &answer["mediaStreamingOptions"];
    assert_eq!(m["audioChannelType"], "unmixed");
    assert_eq!(m["audioFormat"], "pcm24KMono");
    assert_eq!(m["enableBidirectional"], true);
    assert_eq!(m["enableDtmfTones"], true);
    let t = &answer["transcriptionOptions"];
    assert_eq!(t["locale"], "en-US");
    assert_eq!(t["transportType"], "websocket");
    assert_eq!(t["transportUrl"], m["transportUrl"]);
    let reject = mock.requests_of("reject_call").remove(0).body.unwrap();
    assert_eq!(
        reject,
        serde_json::json!({"incomingCallContext": "ctx-r", "callRejectReason": "busy"})
    );
    let redirect = mock.requests_of("redirect_call").remove(0).body.unwrap();
    assert_eq!(redirect["incomingCallContext"], "ctx-d");
    assert_eq!(redirect["target"]["rawId"], "4:+14255550199");
    assert_eq!(redirect["target"]["phoneNumber"]["value"], "+14255550199");
    eventually("outcomes", || {
        cp.metrics.control.incoming_count("answered") == 1
            && cp.metrics.control.incoming_count("rejected") == 1
            && cp.metrics.control.incoming_count("redirected") == 1
    })
    .await;
    let calls = cp.registry.list(crate::control::registry::now_ms());
    let state_of = |to: &str| calls.iter().find(|c| c.to == to).unwrap().clone();
    let tpe = state_of("28:orgid:cc123456-5678-5678-1234-ccc123456789");
    assert_eq!(tpe.rule.as_deref(), Some("support"));
    assert_eq!(tpe.decision, "answer:tpe");
    assert_eq!(state_of("4:+18005550100").state, CallState::Rejected);
    assert_eq!(state_of("8:acs:overflow_1").state, CallState::Redirected);
    assert_eq!(
        cp.metrics.control.calls_active.get(),
        1,
        "only the answered call is live"
    );
}

#[tokio::test]
async fn stale_and_failed_answers_are_counted_and_recorded() {
    let mock = Arc::new(MockAcs::new());
    mock.push(
        "answer_call",
        MockReply::Err(AcsClientError::Acs {
            operation: "answer_call",
            status: 400,
            error: AcsError::new(
                "BadRequest",
                "Lifetime validation of the signed http request failed.",
            ),
        }),
    );
    mock.push(
        "answer_call",
        MockReply::Err(AcsClientError::Acs {
            operation: "answer_call",
            status: 500,
            error: AcsError::new("HTTP 500", ""),
        }),
    );
    let cp = plane(&cfg(), Some(mock.clone()));
    let (_, b1) = read(
        handle(
            &cp,
            post(&incoming("s-1", "ctx-s", "8:acs:a", "4:+12065551212")),
        )
        .await,
    )
    .await;
    let (_, b2) = read(
        handle(
            &cp,
            post(&incoming("f-1", "ctx-f", "8:acs:a", "4:+12065551212")),
        )
        .await,
    )
    .await;
    eventually("outcomes", || {
        cp.metrics.control.incoming_count("stale") == 1
            && cp.metrics.control.incoming_count("failed") == 1
    })
    .await;
    let stale = cp
        .registry
        .get(b1["accepted"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(stale.state, CallState::Failed);
    let e = stale.last_error.unwrap();
    assert!(e.message.starts_with("stale IncomingCall"), "{e:?}");
    assert_eq!(e.code, Some(400));
    let failed = cp
        .registry
        .get(b2["accepted"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(failed.state, CallState::Failed);
    assert_eq!(failed.last_error.unwrap().source, "answer_call");
    assert_eq!(cp.metrics.control.calls_active.get(), 0);
}

#[tokio::test]
async fn webhook_secret_bad_bodies_and_full_registry() {
    let mock = Arc::new(MockAcs::new());
    let mut c = cfg();
    c.control.eventgrid_secret = "s3cret-value".into();
    c.control.registry_max_calls = 1;
    let cp = plane(&c, Some(mock.clone()));
    let body = incoming("e-1", "ctx-1", "8:acs:a", "4:+12065551212");
    let (status, _) = read(handle(&cp, post(&body)).await).await;
    assert_eq!(status, 401);
    let wrong = req(Method::POST, "/api/incomingCall?secret=nope", &[], &body);
    assert_eq!(read(handle(&cp, wrong).await).await.0, 401);
    assert_eq!(cp.metrics.control.incoming_count("unauthorized"), 2);
    assert_eq!(
        cp.metrics
            .control
            .auth_rejection_count("bad_webhook_secret"),
        2
    );
    assert!(mock.requests().is_empty());
    let ok = req(
        Method::POST,
        "/api/incomingCall?secret=s3cret-value",
        &[],
        &body,
    );
    assert_eq!(read(handle(&cp, ok).await).await.0, 200);
    let hdr = req(
        Method::POST,
        "/api/incomingCall",
        &[("x-webhook-secret", "s3cret-value")],
        &incoming("e-2", "ctx-2", "8:acs:a", "4:+12065551212"),
    );
    let (status, b) = read(handle(&cp, hdr).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        b["refused"].as_array().unwrap().len(),
        1,
        "registry full: {b}"
    );
    assert_eq!(cp.metrics.control.incoming_count("failed"), 1);

    let s = "?secret=s3cret-value";
    let uri = format!("/api/incomingCall{s}");
    let (status, b) = read(handle(&cp, req(Method::POST, &uri, &[], "{nope")).await).await;
    assert_eq!(status, 400);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    let (status, _) = read(handle(&cp, req(Method::POST, &uri, &[], "[{\"id\":1}]")).await).await;
    assert_eq!(status, 400);
    let big = "x".repeat(MAX_BODY_BYTES + 1);
    assert_eq!(
        read(handle(&cp, req(Method::POST, &uri, &[], &big)).await)
            .await
            .0,
        413
    );
    assert_eq!(
        read(handle(&cp, req(Method::GET, &uri, &[], "")).await)
            .await
            .0,
        405
    );
    let m = &cp.metrics.control;
    assert_eq!(m.bad_request_count("incoming_call", "malformed_json"), 1);
    assert_eq!(m.bad_request_count("incoming_call", "invalid_envelope"), 1);
    assert_eq!(m.bad_request_count("incoming_call", "too_large"), 1);
    assert_eq!(
        m.bad_request_count("incoming_call", "method_not_allowed"),
        1
    );
}
