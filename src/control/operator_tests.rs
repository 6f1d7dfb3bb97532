//! Operator API handler tests over [`MockAcs`] (socket-free, except the Graph lookup which talks
//! to a local stub server).

use super::*;
use crate::control::acs_client::AcsClientError;
use crate::control::mock::{MockAcs, MockReply};
use crate::control::registry::{CallState, NewCall};
use crate::control::testkit::{cfg, op, plane, read, req, API_KEY, BASE};
use crate::control::testserver::{Reply, TestServer};
use crate::protocol::rest::AcsError;

/// A plane with one answered call `call-1` (callConnectionId `conn-1`).
fn with_call(c: &crate::control::PlaneConfig, mock: Option<Arc<MockAcs>>) -> Arc<ControlPlane> {
    let cp = plane(c, mock);
    let now = now_ms();
    let (token, expires) = cp.tokens.issue("call-1", now / 1000).unwrap();
    cp.registry
        .insert(
            NewCall {
                id: "call-1".into(),
                from: "4:+12065551212".into(),
                to: "28:orgid:cc1".into(),
                caller_display_name: None,
                server_call_id: None,
                correlation_id: None,
                decision: "answer:default".into(),
                rule: None,
                token,
                token_expires_unix: expires,
            },
            now,
        )
        .unwrap();
    cp.registry.update("call-1", now, |r| {
        r.call_connection_id = Some("conn-1".into());
        r.state = CallState::Connected;
    });
    cp
}

async fn call(cp: &Arc<ControlPlane>, method: Method, uri: &str, body: &str) -> (u16, Value) {
    read(handle(cp, op(method, uri, body)).await).await
}

#[tokio::test]
async fn auth_disabled_and_listing() {
    let mut c = cfg();
    c.control.operator_api_key = String::new();
    let cp = plane(&c, None);
    let (status, b) = call(&cp, Method::GET, "/api/calls", "").await;
    assert_eq!(status, 404, "disabled without a key: {b}");

    let cp = with_call(&cfg(), None);
    let (status, _) = read(handle(&cp, req(Method::GET, "/api/calls", &[], "")).await).await;
    assert_eq!(status, 401);
    let (status, _) = read(
        handle(
            &cp,
            req(
                Method::GET,
                "/api/calls",
                &[("authorization", "Bearer wrong-key-0123456789")],
                "",
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = read(
        handle(
            &cp,
            req(Method::GET, "/api/calls", &[("authorization", API_KEY)], ""),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401, "not a bearer credential");
    assert_eq!(cp.metrics.control.auth_rejection_count("bad_api_key"), 3);

    let (status, b) = call(&cp, Method::GET, "/api/calls", "").await;
    assert_eq!(status, 200);
    assert_eq!(b["calls"][0]["id"], "call-1");
    assert_eq!(b["calls"][0]["state"], "connected");
    let (_, by_id) = call(&cp, Method::GET, "/api/calls/call-1", "").await;
    let (_, by_conn) = call(&cp, Method::GET, "/api/calls/conn-1", "").await;
    assert_eq!(by_id, by_conn);
    assert_eq!(by_id["callConnectionId"], "conn-1");
    assert_eq!(call(&cp, Method::GET, "/api/calls/nope", "").await.0, 404);
    assert_eq!(call(&cp, Method::GET, "/api/nothing", "").await.0, 404);
    assert_eq!(call(&cp, Method::PUT, "/api/calls", "").await.0, 405);
    // No ACS: listing works, operations are 503.
    let (status, b) = call(&cp, Method::POST, "/api/calls/call-1/hangup", "").await;
    assert_eq!(status, 503, "{b}");
}

#[tokio::test]
async fn each_operation_builds_the_right_request() {
    let mock = Arc::new(MockAcs::new());
    let cp = with_call(&cfg(), Some(mock.clone()));
    let ok = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1
    };
    ok(call(&cp, Method::POST, "/api/calls/call-1/hangup", "").await);
    let b = ok(call(
        &cp,
        Method::POST,
        "/api/calls/conn-1/hangup",
        r#"{"forEveryone":true}"#,
    )
    .await);
    assert_eq!(b["operation"], "terminate_call");
    let b = ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/participants",
        r#"{"phoneNumber":"+14255550123","sourceCallerIdNumber":"+18005550100","invitationTimeoutInSeconds":30,"operationContext":"pstn"}"#,
    )
    .await);
    assert_eq!(b["result"]["invitationId"], "mock-inv-3");
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/participants",
        r#"{"teamsUserId":"aaaa-bbbb"}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/participants",
        r#"{"teamsExtensionUser":{"userId":"user-1","tenantId":"tenant-1"}}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::DELETE,
        "/api/calls/call-1/participants/4%3A%2B14255550123",
        "",
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/transfer",
        r#"{"phoneNumber":"+14255550199","sourceCallerIdNumber":"+18005550100"}"#,
    )
    .await);
    let b = ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/recording/start",
        r#"{"channel":"unmixed"}"#,
    )
    .await);
    assert_eq!(b["result"]["recordingId"], "mock-rec-8");
    assert_eq!(
        cp.registry.get("call-1").unwrap().recording.id.as_deref(),
        Some("mock-rec-8")
    );
    ok(call(&cp, Method::POST, "/api/calls/call-1/recording/stop", "").await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/media-streaming/start",
        r#"{"operationContext":"go"}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/media-streaming/stop",
        "{}",
    )
    .await);
    let b = ok(call(
        &cp,
        Method::POST,
        "/api/agents/token",
        r#"{"token":"entra-token","appId":"app-1","userId":"user-1"}"#,
    )
    .await);
    assert_eq!(b["token"], "mock-acs-token");

    let r = mock.requests();
    let names: Vec<&str> = r.iter().map(|x| x.op.name()).collect();
    assert_eq!(
        names,
        [
            "hang_up_call",
            "terminate_call",
            "add_participant",
            "add_participant",
            "add_participant",
            "remove_participant",
            "transfer_to_participant",
            "start_recording",
            "stop_recording",
            "start_media_streaming",
            "stop_media_streaming",
            "exchange_teams_user_access_token",
        ]
    );
    assert!(r[..11]
        .iter()
        .all(|x| x.op.call_connection_id().is_none_or(|c| c == "conn-1")));
    let body = |i: usize| r[i].body.clone().unwrap_or(Value::Null);
    assert_eq!(r[0].body, None, "leave: DELETE without a body");
    let pstn = body(2);
    assert_eq!(pstn["participantToAdd"]["rawId"], "4:+14255550123");
    assert_eq!(
        pstn["participantToAdd"]["phoneNumber"]["value"],
        "+14255550123"
    );
    assert_eq!(pstn["sourceCallerIdNumber"]["value"], "+18005550100");
    assert_eq!(pstn["invitationTimeoutInSeconds"], 30);
    assert_eq!(pstn["operationContext"], "pstn");
    assert_eq!(body(3)["participantToAdd"]["rawId"], "8:orgid:aaaa-bbbb");
    let tpe = body(4);
    assert_eq!(
        tpe["participantToAdd"]["rawId"],
        "8:acs:11111111-2222-3333-4444-555555555555_tenant-1_user-1",
        "resourceId defaults to acs.resource_id"
    );
    assert_eq!(
        tpe["participantToAdd"]["teamsExtensionUser"]["tenantId"],
        "tenant-1"
    );
    assert_eq!(body(5)["participantToRemove"]["rawId"], "4:+14255550123");
    assert_eq!(body(6)["targetParticipant"]["rawId"], "4:+14255550199");
    assert_eq!(body(6)["sourceCallerIdNumber"]["value"], "+18005550100");
    let rec = body(7);
    assert_eq!(rec["callConnectionId"], "conn-1");
    assert!(rec.get("callLocator").is_none());
    assert_eq!(rec["recordingContentType"], "audio");
    assert_eq!(rec["recordingChannelType"], "unmixed");
    assert_eq!(rec["recordingFormatType"], "wav");
    let cb = rec["recordingStateCallbackUri"].as_str().unwrap();
    assert!(cb.starts_with(&format!("{BASE}/api/callbacks/")), "{cb}");
    assert_eq!(
        r[8].op,
        crate::protocol::rest::AcsOperation::StopRecording {
            recording_id: "mock-rec-8".into()
        }
    );
    assert_eq!(body(9)["operationContext"], "go");
    assert_eq!(
        body(11),
        serde_json::json!({"token":"entra-token","appId":"app-1","userId":"user-1"})
    );
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let mock = Arc::new(MockAcs::new());
    let cp = with_call(&cfg(), Some(mock.clone()));
    let p = "/api/calls/call-1/participants";
    for (uri, body, field) in [
        (
            "/api/calls/call-1/hangup",
            r#"{"forEveryone":"yes"}"#,
            "forEveryone",
        ),
        ("/api/calls/call-1/hangup", "[1]", "body"),
        ("/api/calls/call-1/hangup", "{oops", "body"),
        (p, "{}", "participant"),
        (
            p,
            r#"{"phoneNumber":"+14255550123"}"#,
            "sourceCallerIdNumber",
        ),
        (
            p,
            r#"{"phoneNumber":"555-0123","sourceCallerIdNumber":"+18005550100"}"#,
            "phoneNumber",
        ),
        (
            p,
            r#"{"phoneNumber":"+14255550123","sourceCallerIdNumber":"x"}"#,
            "sourceCallerIdNumber",
        ),
        (
            p,
            r#"{"teamsUserId":"a","phoneNumber":"+14255550123"}"#,
            "teamsUserId",
        ),
        (p, r#"{"teamsUserId":"a/../b"}"#, "teamsUserId"),
        (
            p,
            r#"{"teamsUserId":"a","invitationTimeoutInSeconds":500}"#,
            "invitationTimeoutInSeconds",
        ),
        (
            p,
            r#"{"teamsExtensionUser":{"tenantId":"t"}}"#,
            "teamsExtensionUser.userId",
        ),
        (p, r#"{"teamsExtensionUser":"x"}"#, "teamsExtensionUser"),
        (p, r#"{"rawId":"48:whatever"}"#, "rawId"),
        (
            "/api/calls/call-1/transfer",
            r#"{"teamsExtensionUser":{}}"#,
            "teamsExtensionUser",
        ),
        (
            "/api/calls/call-1/transfer",
            r#"{"teamsUserId":"u","transferee":"zz"}"#,
            "transferee",
        ),
        (
            "/api/calls/call-1/recording/start",
            r#"{"channel":"stereo"}"#,
            "channel",
        ),
        (
            "/api/calls/call-1/recording/start",
            r#"{"format":"flac"}"#,
            "format",
        ),
        (
            "/api/agents/token",
            r#"{"token":"t","userId":"u"}"#,
            "appId",
        ),
        (
            "/api/agents/token",
            r#"{"token":"","appId":"a","userId":"u"}"#,
            "token",
        ),
    ] {
        let (status, b) = call(&cp, Method::POST, uri, body).await;
        assert_eq!(status, 400, "{uri} {body}: {b}");
        assert_eq!(b["error"]["field"], field, "{uri} {body}: {b}");
        assert!(b["error"]["message"].as_str().unwrap().starts_with(field));
    }
    assert!(mock.requests().is_empty(), "nothing reached ACS");
    assert_eq!(
        cp.metrics
            .control
            .bad_request_count("operator", "bad_field"),
        19
    );
    // Conflicts: no recording yet; no callConnectionId; ended call.
    assert_eq!(
        call(&cp, Method::POST, "/api/calls/call-1/recording/stop", "")
            .await
            .0,
        409
    );
    cp.registry
        .update("call-1", now_ms(), |r| r.call_connection_id = None);
    assert_eq!(
        call(&cp, Method::POST, "/api/calls/call-1/hangup", "")
            .await
            .0,
        409
    );
    cp.registry
        .set_state("call-1", CallState::Disconnected, now_ms());
    let (status, b) = call(
        &cp,
        Method::POST,
        "/api/calls/call-1/media-streaming/start",
        "",
    )
    .await;
    assert_eq!(status, 409, "{b}");
}

#[tokio::test]
async fn acs_failures_map_to_502_and_504() {
    let mock = Arc::new(MockAcs::new());
    let cp = with_call(&cfg(), Some(mock.clone()));
    let acs_err = |status: u16, code: &str| {
        MockReply::Err(AcsClientError::Acs {
            operation: "terminate_call",
            status,
            error: AcsError::new(code, "nope"),
        })
    };
    mock.push("terminate_call", acs_err(400, "8523"));
    mock.push("terminate_call", acs_err(401, "InvalidAccessToken"));
    mock.push("terminate_call", acs_err(429, "TooManyRequests"));
    mock.push("terminate_call", acs_err(500, "HTTP 500"));
    mock.push(
        "terminate_call",
        MockReply::Err(AcsClientError::Timeout {
            operation: "terminate_call",
            attempts: 4,
        }),
    );
    let hang = r#"{"forEveryone":true}"#;
    for (want_status, acs_status, code) in [
        (502, 400, "8523"),
        (502, 401, "InvalidAccessToken"),
        (502, 429, "TooManyRequests"),
        (502, 500, "HTTP 500"),
    ] {
        let (status, b) = call(&cp, Method::POST, "/api/calls/call-1/hangup", hang).await;
        assert_eq!(status, want_status, "{b}");
        assert_eq!(b["error"]["acs"]["status"], acs_status);
        assert_eq!(b["error"]["acs"]["code"], code);
    }
    let (status, b) = call(&cp, Method::POST, "/api/calls/call-1/hangup", hang).await;
    assert_eq!(status, 504, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("timed out"));
}

#[tokio::test]
async fn resource_accounts_from_graph() {
    let graph = TestServer::start(|r, _| {
        if r.header("authorization") == Some("Bearer graph-token") {
            Reply::json(
                200,
                &serde_json::json!({"value": [{"id": "cc1", "displayName": "Support line", "appId": "app-1"}]}),
            )
        } else {
            Reply::json(403, &serde_json::json!({"error": {"code": "Forbidden", "message": "no"}}))
        }
    })
    .await;
    let mut c = cfg();
    c.control.graph_base_url = graph.url();
    let cp = plane(&c, None);
    let (status, b) = call(&cp, Method::GET, "/api/resource-accounts", "").await;
    assert_eq!(status, 400);
    assert_eq!(b["error"]["field"], "X-Graph-Token");
    let auth = format!("Bearer {API_KEY}");
    let r = req(
        Method::GET,
        "/api/resource-accounts?appId=app-1",
        &[("authorization", &auth), ("x-graph-token", "graph-token")],
        "",
    );
    let (status, b) = read(handle(&cp, r).await).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["value"][0]["rawId"], "28:orgid:cc1");
    assert_eq!(b["value"][0]["displayName"], "Support line");
    assert!(
        graph.requests()[0].path_and_query.contains("%24filter")
            || graph.requests()[0].path_and_query.contains("$filter")
    );
    let r = req(
        Method::GET,
        "/api/resource-accounts",
        &[("authorization", &auth), ("x-graph-token", "other")],
        "",
    );
    let (status, b) = read(handle(&cp, r).await).await;
    assert_eq!(status, 502, "{b}");
    let (status, b) = call(&cp, Method::GET, "/api/resource-accounts?appId=a'b", "").await;
    assert_eq!((status, b["error"]["field"].as_str()), (400, Some("appId")));
}

/// The routes of every other defined operation: GETs without a body, the PUT with its body,
/// targets from the path or the caller, and the right operation each time.
#[tokio::test]
async fn get_put_hold_dtmf_and_the_other_operations() {
    let mock = Arc::new(MockAcs::new());
    let cp = with_call(&cfg(), Some(mock.clone()));
    let ok = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1
    };
    ok(call(&cp, Method::GET, "/api/calls/call-1/connection", "").await);
    mock.push(
        "get_participants",
        MockReply::Ok(
            200,
            serde_json::json!({"value": [{"identifier": {"rawId": "4:+12065551212", "phoneNumber": {"value": "+12065551212"}}, "isOnHold": false}], "nextLink": "https://x/next"}),
        ),
    );
    // the second page (the gateway follows nextLink)
    mock.push(
        "get_participants",
        MockReply::Ok(
            200,
            serde_json::json!({"value": [{"identifier": {"rawId": "4:+12065551213", "phoneNumber": {"value": "+12065551213"}}}]}),
        ),
    );
    let b = ok(call(&cp, Method::GET, "/api/calls/call-1/participants", "").await);
    assert_eq!(b["result"]["value"][0]["rawId"], "4:+12065551212");
    assert_eq!(b["result"]["value"][1]["rawId"], "4:+12065551213");
    assert!(b["result"].get("nextLink").is_none(), "{b}");
    let p = "/api/calls/call-1/participants/4%3A%2B12065551212";
    ok(call(
        &cp,
        Method::POST,
        &format!("{p}/mute"),
        r#"{"operationContext":"m"}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        &format!("{p}/hold"),
        r#"{"playFileUri":"https://music.contoso.com/hold.wav"}"#,
    )
    .await);
    ok(call(&cp, Method::POST, &format!("{p}/unhold"), "").await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/invitations/inv-9/cancel",
        "",
    )
    .await);
    let b = ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/dtmf/send",
        r#"{"tones":"12#*a","operationContext":"ivr"}"#,
    )
    .await);
    assert_eq!(b["acsStatus"], 202);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/dtmf/recognition/start",
        "",
    )
    .await);
    assert_eq!(
        cp.registry
            .get("call-1")
            .unwrap()
            .dtmf
            .recognition
            .as_deref(),
        Some("active")
    );
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/dtmf/recognition/stop",
        r#"{"rawId":"4:+14255550199"}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/recording/pause",
        r#"{"recordingId":"rec-1"}"#,
    )
    .await);
    ok(call(
        &cp,
        Method::POST,
        "/api/calls/call-1/recording/resume",
        r#"{"recordingId":"rec-1"}"#,
    )
    .await);
    let b = ok(call(
        &cp,
        Method::PUT,
        "/api/teams-extension/tenants/tenant-1/assignments/oid-1",
        "",
    )
    .await);
    assert_eq!(
        (b["acsStatus"].as_u64(), b["result"]["objectId"].as_str()),
        (Some(201), Some("oid-1"))
    );

    let r = mock.requests();
    let names: Vec<&str> = r.iter().map(|x| x.op.name()).collect();
    assert_eq!(
        names,
        [
            "get_call",
            "get_participants",
            "get_participants",
            "mute_participants",
            "hold",
            "unhold",
            "cancel_add_participant",
            "send_dtmf_tones",
            "start_continuous_dtmf_recognition",
            "stop_continuous_dtmf_recognition",
            "pause_recording",
            "resume_recording",
            "put_teams_extension_assignment",
        ]
    );
    let body = |i: usize| r[i].body.clone().unwrap_or(Value::Null);
    assert_eq!(
        (r[0].body.clone(), r[1].body.clone(), r[2].body.clone()),
        (None, None, None),
        "GETs carry no body"
    );
    assert_eq!(body(3)["targetParticipants"][0]["rawId"], "4:+12065551212");
    assert_eq!(body(3)["operationContext"], "m");
    assert_eq!(body(4)["targetParticipant"]["rawId"], "4:+12065551212");
    assert_eq!(
        body(4)["playSourceInfo"],
        serde_json::json!({"kind": "file", "file": {"uri": "https://music.contoso.com/hold.wav"}})
    );
    assert!(body(5).get("playSourceInfo").is_none());
    assert_eq!(body(6)["invitationId"], "inv-9");
    assert_eq!(
        body(7)["tones"],
        serde_json::json!(["one", "two", "pound", "asterisk", "a"])
    );
    assert_eq!(
        body(7)["targetParticipant"]["rawId"],
        "4:+12065551212",
        "default target: the caller"
    );
    assert_eq!(body(8)["targetParticipant"]["rawId"], "4:+12065551212");
    assert_eq!(body(9)["targetParticipant"]["rawId"], "4:+14255550199");
    assert_eq!(
        r[10].op,
        crate::protocol::rest::AcsOperation::PauseRecording {
            recording_id: "rec-1".into()
        }
    );
    assert_eq!(r[10].body, None);
    assert_eq!(
        r[12].op,
        crate::protocol::rest::AcsOperation::PutTeamsExtensionAssignment {
            tenant_id: "tenant-1".into(),
            object_id: "oid-1".into()
        }
    );
    assert_eq!(
        body(12),
        serde_json::json!({"principalType": "teamsResourceAccount"})
    );

    // Bad input: 400 naming the field, nothing sent to ACS, counted.
    let before = mock.requests().len();
    for (method, uri, b, field) in [
        (
            Method::POST,
            "/api/calls/call-1/dtmf/send",
            r#"{"tones":"12x"}"#,
            "tones",
        ),
        (
            Method::POST,
            "/api/calls/call-1/dtmf/send",
            r#"{"tones":"1234567890123456789"}"#,
            "tones",
        ),
        (
            Method::POST,
            "/api/calls/call-1/dtmf/send",
            r#"{}"#,
            "tones",
        ),
        (
            Method::POST,
            "/api/calls/call-1/dtmf/send",
            r#"{"tones":"1","rawId":"8:acs:x"}"#,
            "rawId",
        ),
        (
            Method::POST,
            &format!("{p}/hold"),
            r#"{"playFileUri":"ftp://x"}"#,
            "playFileUri",
        ),
        (
            Method::POST,
            &format!("{p}/mute"),
            r#"{"playFileUri":"https://x/y.wav"}"#,
            "playFileUri",
        ),
        (
            Method::POST,
            "/api/calls/call-1/participants/48%3Ax/hold",
            "",
            "rawId",
        ),
        (
            Method::PUT,
            "/api/teams-extension/tenants/t/assignments/o",
            r#"{"principalType":"user"}"#,
            "principalType",
        ),
        (
            Method::PUT,
            "/api/teams-extension/tenants/t%20x/assignments/o",
            "",
            "tenantId",
        ),
    ] {
        let (status, v) = call(&cp, method, uri, b).await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (400, Some(field)),
            "{uri} {b}: {v}"
        );
    }
    assert_eq!(mock.requests().len(), before);
    let (status, _) = call(&cp, Method::DELETE, "/api/calls/call-1/connection", "").await;
    assert_eq!(status, 405);
    let (status, _) = call(
        &cp,
        Method::POST,
        "/api/calls/nope/dtmf/send",
        r#"{"tones":"1"}"#,
    )
    .await;
    assert_eq!(status, 404);
}
