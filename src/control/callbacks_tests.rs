//! Callback endpoint and admission ([`super::super::gate`]) tests: call tokens, ACS JWTs (test
//! keys from `fixtures/keys/`, JWKS served by a local stub), every callback vector applied.

use super::*;
use crate::control::jwt::tests::{claims, token as jwt, AUD, ISS};
use crate::control::registry::{CallState, NewCall};
use crate::control::testkit::{cfg, plane, read, req, vector};
use crate::control::testserver::{Reply, TestServer};
use crate::control::tokens::CallTokens;
use crate::protocol::events::callbacks_body;
use hyper::header::HeaderMap;
use serde_json::Value;

fn add_call(cp: &ControlPlane, id: &str) -> String {
    let now = now_ms();
    let (token, expires) = cp.tokens.issue(id, now / 1000).unwrap();
    cp.registry
        .insert(
            NewCall {
                id: id.into(),
                from: "4:+12065551212".into(),
                to: "8:acs:x".into(),
                caller_display_name: None,
                server_call_id: None,
                correlation_id: None,
                decision: "answer:default".into(),
                rule: None,
                token: token.clone(),
                token_expires_unix: expires,
            },
            now,
        )
        .unwrap();
    token
}

fn post(
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<http_body_util::Full<bytes::Bytes>> {
    req(
        Method::POST,
        &format!("/api/callbacks/{token}"),
        headers,
        body,
    )
}

#[tokio::test]
async fn every_vector_updates_the_registry_in_order() {
    let cp = plane(&cfg(), None);
    let t = add_call(&cp, "call-1");
    let mut states = Vec::new();
    for name in [
        "callback_call_connected_2022.json",
        "callback_participants_updated_2022.json",
        "callback_media_streaming_started.json",
        "callback_recording_state_changed.json",
        "callback_play_failed.json",
        "callback_media_streaming_failed.json",
        "callback_media_streaming_stopped.json",
        "callback_remove_participant_succeeded.json",
    ] {
        let (status, b) = read(handle(&cp, post(&t, &[], &vector(name)), &t).await).await;
        assert_eq!(status, 200, "{name}: {b}");
        assert_eq!(b["applied"], 1, "{name}");
        states.push(cp.registry.get("call-1").unwrap().state);
    }
    use CallState::*;
    assert_eq!(
        states,
        [Connected, Connected, Streaming, Streaming, Streaming, Connected, Connected, Connected]
    );
    // An unknown event type and a known one in one array: both applied, in order.
    let mut unknown =
        CallbackEvent::new(CallbackKind::Unknown("SomethingNew".into()), "u1", "conn");
    unknown.raw_type = "Microsoft.Communication.SomethingNew".into();
    let gone = CallbackEvent::new(CallbackKind::CallDisconnected, "d1", "conn");
    let body = String::from_utf8(callbacks_body(&[unknown, gone.clone()])).unwrap();
    let (status, b) = read(handle(&cp, post(&t, &[], &body), &t).await).await;
    assert_eq!((status, b["applied"].as_u64()), (200, Some(2)));
    let r = cp.registry.get("call-1").unwrap();
    assert_eq!(r.state, Disconnected);
    assert_eq!(r.last_event.as_deref(), Some("CallDisconnected"));
    // Redelivered: counted, not applied twice.
    let body = String::from_utf8(callbacks_body(&[gone])).unwrap();
    let (_, b) = read(handle(&cp, post(&t, &[], &body), &t).await).await;
    assert_eq!(b["duplicates"], 1);
    let m = &cp.metrics.control;
    assert_eq!(m.callback_count("CallConnected"), 1);
    assert_eq!(m.callback_count("MediaStreamingFailed"), 1);
    assert_eq!(m.callback_count("unknown"), 1);
    assert_eq!(m.callback_count("CallDisconnected"), 2);
    assert_eq!(m.calls_active.get(), 0);
    // Late events for an ended (not yet evicted) call are still accepted.
    let (status, _) = read(
        handle(
            &cp,
            post(&t, &[], &vector("callback_recording_state_changed.json")),
            &t,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn call_tokens_are_checked() {
    let cp = plane(&cfg(), None);
    let good = add_call(&cp, "call-1");
    let body = vector("callback_call_connected_2022.json");
    let forged = CallTokens::new("another-secret-0123456789", 3600)
        .unwrap()
        .issue("call-1", now_ms() / 1000)
        .unwrap()
        .0;
    let expired = cp.tokens.issue("call-1", 1_000).unwrap().0;
    let unknown = cp.tokens.issue("no-such-call", now_ms() / 1000).unwrap().0;
    for (tok, reason) in [
        ("garbage", "token_malformed"),
        (forged.as_str(), "token_bad_signature"),
        (expired.as_str(), "token_expired"),
        (unknown.as_str(), "unknown_call"),
        ("", "token_missing"),
    ] {
        let (status, b) = read(handle(&cp, post(tok, &[], &body), tok).await).await;
        assert_eq!(status, 401, "{reason}: {b}");
        assert_eq!(
            cp.metrics.control.auth_rejection_count(reason),
            1,
            "{reason}"
        );
    }
    assert_eq!(cp.registry.get("call-1").unwrap().callbacks, 0);
    let (status, b) = read(handle(&cp, post(&good, &[], "{nope"), &good).await).await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(
        cp.metrics
            .control
            .bad_request_count("callbacks", "malformed_json"),
        1
    );
    let r = handle(
        &cp,
        req(Method::GET, &format!("/api/callbacks/{good}"), &[], ""),
        &good,
    )
    .await;
    assert_eq!(r.status(), 405);
}

async fn jwks() -> TestServer {
    let jwks: Value =
        serde_json::from_slice(&crate::control::testkit::fixture("keys/jwt_test_jwks.json"))
            .unwrap();
    TestServer::start(move |_, _| Reply::json(200, &jwks)).await
}

fn jwt_cfg(server: &TestServer) -> crate::control::PlaneConfig {
    let mut c = cfg();
    c.acs.jwt.enabled = None; // on because acs.resource_id is set
    c.acs.resource_id = AUD.into();
    c.acs.jwt.issuer = ISS.into();
    c.acs.jwt.jwks_url = format!("{}/calling/keys", server.url());
    c
}

#[tokio::test]
async fn acs_jwts_on_callbacks() {
    let server = jwks().await;
    let cp = plane(&jwt_cfg(&server), None);
    assert!(cp.jwt.is_some(), "on by default with a resource id");
    let t = add_call(&cp, "call-1");
    let body = vector("callback_call_connected_2022.json");
    let bearer = |tok: String| format!("Bearer {tok}");
    let cases = [
        (None, "missing"),
        (Some("Basic abc".to_owned()), "malformed"),
        (
            Some(bearer(jwt(2, Some("test-key-1"), claims(ISS, AUD, 300)))),
            "bad_signature",
        ),
        (
            Some(bearer(jwt(1, Some("test-key-1"), claims(ISS, AUD, -600)))),
            "expired",
        ),
        (
            Some(bearer(jwt(
                1,
                Some("test-key-1"),
                claims(ISS, "other", 300),
            ))),
            "wrong_audience",
        ),
        (
            Some(bearer(jwt(
                1,
                Some("test-key-1"),
                claims("https://evil", AUD, 300),
            ))),
            "wrong_issuer",
        ),
        (
            Some(bearer(jwt(1, Some("test-key-9"), claims(ISS, AUD, 300)))),
            "unknown_kid",
        ),
    ];
    for (auth, reason) in cases {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let (status, b) = read(handle(&cp, post(&t, &headers, &body), &t).await).await;
        assert_eq!(status, 401, "{reason}: {b}");
        assert_eq!(
            cp.metrics.control.auth_rejection_count(reason),
            1,
            "{reason}"
        );
    }
    let good = bearer(jwt(1, Some("test-key-1"), claims(ISS, AUD, 300)));
    let (status, b) =
        read(handle(&cp, post(&t, &[("authorization", &good)], &body), &t).await).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        cp.registry.get("call-1").unwrap().state,
        CallState::Connected
    );
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[tokio::test]
async fn media_admission() {
    // ACS configured → a call token is required.
    let cp = plane(&cfg(), None);
    assert!(cp.require_call_token);
    let t = add_call(&cp, "call-1");
    let none = HeaderMap::new();
    let r = cp.authorize_media(None, &none).await.unwrap_err();
    assert_eq!((r.status.as_u16(), r.reason), (401, "token_missing"));
    assert_eq!(
        cp.authorize_media(Some("x"), &none)
            .await
            .unwrap_err()
            .reason,
        "token_malformed"
    );
    let g = cp.authorize_media(Some(&t), &none).await.unwrap();
    assert_eq!(g.call_id.as_deref(), Some("call-1"));
    cp.registry.update("call-1", now_ms(), |r| {
        r.call_connection_id = Some("conn-1".into())
    });
    let g = cp.authorize_media(Some(&t), &none).await.unwrap();
    assert_eq!(g.call_connection_id.as_deref(), Some("conn-1"));
    cp.registry
        .set_state("call-1", CallState::Disconnected, now_ms());
    let r = cp.authorize_media(Some(&t), &none).await.unwrap_err();
    assert_eq!(
        r.reason, "unknown_call",
        "media for an ended call is refused"
    );

    // No ACS → tokens optional; /ws and any label work as before.
    let mut c = cfg();
    c.acs.connection_string = String::new();
    let cp = plane(&c, None);
    assert!(!cp.require_call_token);
    assert_eq!(cp.authorize_media(None, &none).await.unwrap().call_id, None);
    assert_eq!(
        cp.authorize_media(Some("my-label"), &none)
            .await
            .unwrap()
            .call_id,
        None
    );
    let t = add_call(&cp, "call-2");
    assert_eq!(
        cp.authorize_media(Some(&t), &none)
            .await
            .unwrap()
            .call_id
            .as_deref(),
        Some("call-2"),
        "a valid token still links the connection"
    );

    // JWT on: the upgrade needs ACS's bearer token too.
    let server = jwks().await;
    let cp = plane(&jwt_cfg(&server), None);
    let t = add_call(&cp, "call-3");
    assert_eq!(
        cp.authorize_media(Some(&t), &none)
            .await
            .unwrap_err()
            .reason,
        "missing"
    );
    let good = format!(
        "Bearer {}",
        jwt(1, Some("test-key-1"), claims(ISS, AUD, 300))
    );
    let g = cp
        .authorize_media(Some(&t), &headers(&[("authorization", &good)]))
        .await
        .unwrap();
    assert_eq!(g.call_id.as_deref(), Some("call-3"));
}
