//! [`HttpAcsClient`] against a scripted HTTP server on 127.0.0.1: signatures checked with
//! `protocol::auth::verify`, retries counted, repeatability headers compared across attempts.

use super::*;
use crate::control::testserver::{Recorded, Reply, TestServer};
use crate::protocol::auth::{verify, SignedRequest};
use std::time::Instant;

const KEY_B64: &str = "dGVzdC1rZXktZm9yLXRoZS1nYXRld2F5LWNsaWVudA==";

fn client(
    server: &TestServer,
    max_retries: u32,
    timeout_ms: u64,
) -> (Arc<dyn AcsApi>, Arc<Metrics>) {
    let metrics = Metrics::new();
    let connection =
        ConnectionString::parse(&format!("endpoint={}/;accesskey={KEY_B64}", server.url()))
            .unwrap();
    let c = HttpAcsClient::new(
        AcsClientConfig {
            connection,
            api_version: "2025-06-15".into(),
            request_timeout: Duration::from_millis(timeout_ms),
            max_retries,
            max_retry_after: Duration::from_millis(50),
            initial_backoff: Duration::from_millis(5),
        },
        reqwest::Client::new(),
        metrics.clone(),
    );
    (Arc::new(c), metrics)
}

fn key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(KEY_B64)
        .unwrap()
}

/// Checks the HMAC signature exactly as the fake ACS would.
fn assert_signed(r: &Recorded) {
    let req = SignedRequest {
        method: &r.method,
        path_and_query: &r.path_and_query,
        host: r.header("host").unwrap(),
        date: r.header("x-ms-date"),
        content_hash: r.header("x-ms-content-sha256"),
        authorization: r.header("authorization"),
        body: &r.body,
    };
    verify(&key(), &req, chrono::Utc::now().timestamp(), 300)
        .unwrap_or_else(|e| panic!("signature of {} {}: {e}", r.method, r.path_and_query));
}

fn answer_req() -> AnswerCallRequest {
    AnswerCallRequest::new("ctx-1", "http://127.0.0.1:1/api/callbacks/T")
}

#[tokio::test]
async fn signed_retried_on_503_with_the_same_repeatability_headers() {
    let server = TestServer::start(|_, i| {
        if i < 2 {
            Reply::json(
                503,
                &json!({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
            )
        } else {
            Reply::json(
                200,
                &json!({"callConnectionId": "conn-1", "serverCallId": "srv"}),
            )
        }
    })
    .await;
    let (acs, metrics) = client(&server, 3, 2_000);
    let props = acs.answer_call(&answer_req()).await.unwrap();
    assert_eq!(props.call_connection_id.as_deref(), Some("conn-1"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "two retries then success");
    for r in &reqs {
        assert_signed(r);
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.path_and_query,
            "/calling/callConnections:answer?api-version=2025-06-15"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, reqs[0].body, "the same bytes each time");
    }
    let id = reqs[0].header("repeatability-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let first = reqs[0].header("repeatability-first-sent").unwrap();
    assert!(parse_rfc1123(first).is_some(), "{first}");
    for r in &reqs[1..] {
        assert_eq!(r.header("repeatability-request-id"), Some(id));
        assert_eq!(r.header("repeatability-first-sent"), Some(first));
    }
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["incomingCallContext"], "ctx-1");
    assert_eq!(metrics.control.acs_request_count("answer_call", "503"), 2);
    assert_eq!(metrics.control.acs_request_count("answer_call", "200"), 1);

    // A second logical operation gets a new id.
    acs.answer_call(&answer_req()).await.unwrap();
    let reqs = server.requests();
    assert_ne!(reqs[3].header("repeatability-request-id"), Some(id));
}

#[tokio::test]
async fn server_errors_retried_then_fail_and_client_errors_do_not_retry() {
    let server = TestServer::start(|r, _| {
        if r.path_and_query.contains(":reject") {
            Reply::json(
                400,
                &json!({"error": {"code": "8523", "message": "Invalid request"}}),
            )
        } else if r.path_and_query.contains(":redirect") {
            Reply::json(
                401,
                &json!({"error": {"code": "InvalidAccessToken", "message": "no"}}),
            )
        } else {
            Reply::empty(500)
        }
    })
    .await;
    let (acs, metrics) = client(&server, 2, 2_000);
    let e = acs.answer_call(&answer_req()).await.unwrap_err();
    assert_eq!(server.requests().len(), 3, "1 + max_retries attempts");
    let AcsClientError::Acs { status, error, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 500);
    assert_eq!(error.code, "HTTP 500");
    assert_eq!(e.http_status(), StatusCode::BAD_GATEWAY);

    let e = acs
        .reject_call(&RejectCallRequest {
            incoming_call_context: "c".into(),
            call_reject_reason: None,
        })
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 4, "400 is not retried");
    let AcsClientError::Acs { status, error, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*status, error.code.as_str()), (400, "8523"));
    let j = e.to_json();
    assert_eq!(j["error"]["acs"]["code"], "8523");
    assert_eq!(j["error"]["acs"]["status"], 400);

    let e = acs
        .redirect_call(&RedirectCallRequest {
            incoming_call_context: "c".into(),
            target: (&crate::protocol::identifier::parse_raw_id("4:+14255550123")).into(),
        })
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 5, "401 is not retried");
    assert!(matches!(e, AcsClientError::Acs { status: 401, .. }));
    assert_eq!(metrics.control.acs_request_count("answer_call", "500"), 3);
    assert_eq!(metrics.control.acs_request_count("reject_call", "400"), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let server = TestServer::start(|_, i| {
        if i == 0 {
            let mut r = Reply::json(
                429,
                &json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            );
            r.headers.push(("retry-after", "3600".into()));
            r
        } else {
            Reply::empty(204)
        }
    })
    .await;
    let (acs, metrics) = client(&server, 3, 2_000);
    let t = Instant::now();
    assert_eq!(acs.hang_up("conn-1", true).await.unwrap(), 204);
    assert!(t.elapsed() < Duration::from_secs(2), "capped at 50 ms");
    assert!(t.elapsed() >= Duration::from_millis(40), "but waited");
    assert_eq!(
        metrics.control.acs_request_count("terminate_call", "429"),
        1
    );
    assert_eq!(retry_after("7", 0), Some(Duration::from_secs(7)));
    assert_eq!(
        retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4),
        Some(Duration::from_secs(6))
    );
    assert_eq!(
        retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 40),
        Some(Duration::ZERO)
    );
    assert_eq!(retry_after("soon", 0), None);
}

#[tokio::test]
async fn timeouts_and_unreachable() {
    let server = TestServer::start(|_, _| {
        let mut r = Reply::empty(204);
        r.delay = Duration::from_millis(800);
        r
    })
    .await;
    let (acs, metrics) = client(&server, 1, 100);
    let e = acs.hang_up("conn-1", false).await.unwrap_err();
    assert!(
        matches!(e, AcsClientError::Timeout { attempts: 2, .. }),
        "{e:?}"
    );
    assert_eq!(e.http_status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        metrics.control.acs_request_count("hang_up_call", "timeout"),
        2
    );
    let r = server.requests();
    assert_eq!(r[0].method, "DELETE");
    assert_eq!(
        r[0].path_and_query,
        "/calling/callConnections/conn-1?api-version=2025-06-15"
    );
    assert!(
        r[0].header("repeatability-request-id").is_none(),
        "not for DELETE"
    );
    assert_signed(&r[0]);

    // Nothing listens on the port once the server is gone.
    let addr = server.addr;
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = Metrics::new();
    let c = HttpAcsClient::new(
        AcsClientConfig {
            connection: ConnectionString::parse(&format!(
                "endpoint=http://{addr}/;accesskey={KEY_B64}"
            ))
            .unwrap(),
            api_version: "2025-06-15".into(),
            request_timeout: Duration::from_millis(500),
            max_retries: 1,
            max_retry_after: Duration::from_millis(10),
            initial_backoff: Duration::from_millis(1),
        },
        reqwest::Client::new(),
        metrics.clone(),
    );
    let acs: Arc<dyn AcsApi> = Arc::new(c);
    let e = acs.hang_up("x", false).await.unwrap_err();
    assert!(
        matches!(e, AcsClientError::Transport { attempts: 2, .. }),
        "{e:?}"
    );
    assert_eq!(e.http_status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn stale_incoming_call_and_identity_api_version() {
    let server = TestServer::start(|r, _| {
        if r.path_and_query.starts_with("/teamsUser") {
            Reply::json(200, &json!({"token": "acs-token", "expiresOn": "2030-01-01T00:00:00Z"}))
        } else {
            Reply::json(
                400,
                &json!({"error": {"code": "BadRequest", "message": "Lifetime validation of the signed http request failed."}}),
            )
        }
    })
    .await;
    let (acs, _) = client(&server, 3, 2_000);
    let e = acs.answer_call(&answer_req()).await.unwrap_err();
    assert!(e.is_stale_incoming_call(), "{e:?}");
    let t = acs
        .exchange_teams_user_token(&TeamsUserExchangeTokenRequest {
            token: "entra".into(),
            app_id: "app".into(),
            user_id: "user".into(),
        })
        .await
        .unwrap();
    assert_eq!(t.token, "acs-token");
    let r = server.requests();
    assert_eq!(
        r[1].path_and_query, "/teamsUser/:exchangeAccessToken?api-version=2023-10-01",
        "the identity API keeps its own version"
    );
    assert_signed(&r[1]);
}

/// GET goes without a body or content type, signed with the empty-body hash; PUT carries its
/// JSON body; both at their api-versions (Call Automation: the configured one, default what the
/// SDKs 1.6.0 send; the Teams extension assignment keeps 2025-06-30).
#[tokio::test]
async fn get_and_put_are_signed_without_and_with_a_body() {
    let server = TestServer::start(|r, _| match r.method.as_str() {
        "PUT" => Reply::json(
            201,
            &json!({"objectId": "oid-1", "tenantId": "tenant-1", "principalType": "teamsResourceAccount"}),
        ),
        _ if r.path_and_query.contains("/participants") => Reply::json(
            200,
            &json!({"value": [{"identifier": {"rawId": "4:+14255550123", "phoneNumber": {"value": "+14255550123"}}, "isMuted": false}]}),
        ),
        _ => Reply::json(200, &json!({"callConnectionId": "conn-1", "callConnectionState": "connected"})),
    })
    .await;
    let metrics = Metrics::new();
    let connection =
        ConnectionString::parse(&format!("endpoint={}/;accesskey={KEY_B64}", server.url()))
            .unwrap();
    let acs: Arc<dyn AcsApi> = Arc::new(HttpAcsClient::new(
        AcsClientConfig {
            connection,
            api_version: crate::control::config::AcsConfig::default().api_version,
            request_timeout: Duration::from_millis(2_000),
            max_retries: 0,
            max_retry_after: Duration::from_millis(50),
            initial_backoff: Duration::from_millis(5),
        },
        reqwest::Client::new(),
        metrics.clone(),
    ));
    let props = acs.get_call("conn-1").await.unwrap();
    assert_eq!(props.call_connection_id.as_deref(), Some("conn-1"));
    let parts = acs.get_participants("conn-1").await.unwrap();
    assert_eq!(parts.value[0].identifier.raw_id(), "4:+14255550123");
    let (status, a) = acs
        .put_teams_extension_assignment(
            "tenant-1",
            "oid-1",
            &crate::protocol::rest::TeamsExtensionAssignmentRequest {
                principal_type:
                    crate::protocol::rest::TeamsExtensionPrincipalType::TeamsResourceAccount,
            },
        )
        .await
        .unwrap();
    assert_eq!((status, a.object_id.as_str()), (201, "oid-1"));

    let r = server.requests();
    assert_eq!(r.len(), 3);
    for (req, pq) in r.iter().zip([
        "/calling/callConnections/conn-1?api-version=2026-03-12",
        "/calling/callConnections/conn-1/participants?api-version=2026-03-12",
        "/access/teamsExtension/tenants/tenant-1/assignments/oid-1?api-version=2025-06-30",
    ]) {
        assert_eq!(req.path_and_query, pq);
        assert_signed(req);
        assert!(req.header("repeatability-request-id").is_none(), "{pq}");
    }
    for get in &r[..2] {
        assert_eq!(get.method, "GET");
        assert!(get.body.is_empty());
        assert!(get.header("content-type").is_none());
        assert_eq!(
            get.header("x-ms-content-sha256"),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        );
    }
    assert_eq!(r[2].method, "PUT");
    assert_eq!(
        &r[2].body[..],
        br#"{"principalType":"teamsResourceAccount"}"#
    );
    assert_eq!(r[2].header("content-type"), Some("application/json"));
    assert_eq!(metrics.control.acs_request_count("get_call", "200"), 1);
    assert_eq!(
        metrics
            .control
            .acs_request_count("put_teams_extension_assignment", "201"),
        1
    );
}

/// A `nextLink` is followed only on the configured endpoint and the operation's own path, and
/// each page is signed (the server checks every signature).
#[test]
fn next_links_stay_on_the_endpoint_and_the_operation() {
    let c = HttpAcsClient::new(
        AcsClientConfig {
            connection: ConnectionString::parse(&format!(
                "endpoint=https://acs.example.com/;accesskey={KEY_B64}"
            ))
            .unwrap(),
            api_version: "2026-03-12".into(),
            request_timeout: Duration::from_millis(100),
            max_retries: 0,
            max_retry_after: Duration::from_millis(10),
            initial_backoff: Duration::from_millis(1),
        },
        reqwest::Client::new(),
        Metrics::new(),
    );
    let op = AcsOperation::GetParticipants {
        call_connection_id: "conn-1".into(),
    };
    let path = op.path();
    assert_eq!(
        c.next_link_path(
            &op,
            &format!("https://acs.example.com{path}?api-version=2026-03-12&skip=2")
        )
        .as_deref(),
        Some(format!("{path}?api-version=2026-03-12&skip=2").as_str())
    );
    assert_eq!(
        c.next_link_path(&op, &format!("https://acs.example.com{path}?skipToken=x"))
            .as_deref(),
        Some(format!("{path}?skipToken=x&api-version=2026-03-12").as_str())
    );
    for bad in [
        format!("https://evil.example.com{path}?skip=2"),
        format!("https://acs.example.com.evil.com{path}?skip=2"),
        "https://acs.example.com/calling/callConnections/other/participants?skip=2".to_owned(),
        "https://acs.example.com/calling/recordings?skip=2".to_owned(),
    ] {
        assert_eq!(c.next_link_path(&op, &bad), None, "{bad}");
    }
}
