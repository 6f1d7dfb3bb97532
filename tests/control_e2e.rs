//! End to end over loopback: a gateway from `app::start` with its ACS endpoint, JWKS and Graph
//! pointed at a minimal stub ACS written here (HMAC checked with `protocol::auth::verify`, RS256
//! tokens signed with the test key in `fixtures/keys/`). The test plays ACS: Event Grid delivers
//! an IncomingCall → the gateway answers (signed) → "ACS" connects to `transportUrl` with the call
//! token and its JWT and streams audio → a WAV is recorded → callbacks move the call through the
//! registry → the operator hangs up → "ACS" receives the signed DELETE and posts CallDisconnected.

mod common;

use acs_media_gateway::protocol::auth::{verify, SignedRequest};
use acs_media_gateway::protocol::events::{
    callbacks_body, CallbackEvent, CallbackKind, EventGridEvent, IncomingCallEventData,
    MediaStreamingStatus, MediaStreamingStatusDetails, MediaStreamingUpdate,
};
use acs_media_gateway::protocol::identifier::parse_raw_id;
use bytes::Bytes;
use common::{audio, fixture, frames, metadata, read_wav, send_all, Gw, STEP};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const KEY_B64: &str = "c3R1Yi1hY3Mta2V5LWZvci10aGUtZTJlLXRlc3Q=";
const AUD: &str = "99999999-8888-7777-6666-555555555555";
const ISS: &str = "https://stub-acs.test";
const OPERATOR_KEY: &str = "e2e-operator-key-0123456789";

/// One request the stub received, with the outcome of its HMAC check.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: Value,
    signature: Result<(), String>,
    repeatability_id: Option<String>,
}

#[derive(Default)]
struct StubState {
    seen: Vec<Seen>,
    /// The callback URI of the last answer (for CallDisconnected after a hang-up).
    callback_uri: Option<String>,
}

/// The minimal ACS: answer (200), reject/redirect (204), hang up (204, then CallDisconnected to
/// the call's callback URI), JWKS at /calling/keys. An answer whose context starts with
/// `stale` gets ACS's stale-call error; one starting with `busy` gets 503 every time.
struct StubAcs {
    addr: SocketAddr,
    state: Arc<Mutex<StubState>>,
    task: tokio::task::JoinHandle<()>,
}

fn key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(KEY_B64)
        .unwrap()
}

fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// An RS256 token as ACS signs it (test key 1, kid `test-key-1`).
fn acs_jwt(aud: &str, lifetime_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("test-key-1".into());
    let key =
        EncodingKey::from_rsa_pem(&fixture_bytes("fixtures/keys/jwt_test_key_1.pem")).unwrap();
    jsonwebtoken::encode(
        &h,
        &json!({"iss": ISS, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + lifetime_secs}),
        &key,
    )
    .unwrap()
}

/// Posts callback events to `uri` as ACS would (bearer JWT); returns the status.
async fn post_callbacks(uri: &str, events: &[CallbackEvent]) -> u16 {
    reqwest::Client::new()
        .post(uri)
        .bearer_auth(acs_jwt(AUD, 300))
        .header("content-type", "application/json")
        .body(callbacks_body(events))
        .timeout(STEP)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

impl StubAcs {
    async fn start() -> StubAcs {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<StubState>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let st = st.clone();
                            async move { Ok::<_, Infallible>(Self::serve(req, st).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        StubAcs { addr, state, task }
    }

    async fn serve(
        req: Request<hyper::body::Incoming>,
        st: Arc<Mutex<StubState>>,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let path = parts.uri.path_and_query().unwrap().as_str().to_owned();
        let reply = |status: u16, v: Option<Value>| {
            let mut r = Response::new(Full::new(
                v.map(|v| Bytes::from(v.to_string())).unwrap_or_default(),
            ));
            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            r
        };
        if path == "/calling/keys" {
            let jwks: Value =
                serde_json::from_slice(&fixture_bytes("fixtures/keys/jwt_test_jwks.json")).unwrap();
            return reply(200, Some(jwks));
        }
        let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
        let signature = verify(
            &key(),
            &SignedRequest {
                method: parts.method.as_str(),
                path_and_query: &path,
                host: h("host").unwrap_or(""),
                date: h("x-ms-date"),
                content_hash: h("x-ms-content-sha256"),
                authorization: h("authorization"),
                body: &body,
            },
            chrono::Utc::now().timestamp(),
            300,
        )
        .map_err(|e| e.to_string());
        let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        st.lock().unwrap().seen.push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            body: json_body.clone(),
            signature: signature.clone(),
            repeatability_id: h("repeatability-request-id").map(str::to_owned),
        });
        if signature.is_err() {
            return reply(
                401,
                Some(json!({"error": {"code": "Denied", "message": "bad signature"}})),
            );
        }
        let route = path.split('?').next().unwrap_or("");
        match (parts.method.as_str(), route) {
            ("POST", "/calling/callConnections:answer") => {
                let ctx = json_body["incomingCallContext"].as_str().unwrap_or("");
                if ctx.starts_with("stale") {
                    return reply(
                        400,
                        Some(
                            json!({"error": {"code": "8501", "message": "Action is invalid when call is not in Established state. Lifetime validation of the signed http request failed."}}),
                        ),
                    );
                }
                if ctx.starts_with("busy") {
                    return reply(
                        503,
                        Some(json!({"error": {"code": "ServiceUnavailable", "message": "busy"}})),
                    );
                }
                st.lock().unwrap().callback_uri =
                    json_body["callbackUri"].as_str().map(str::to_owned);
                reply(
                    200,
                    Some(
                        json!({"callConnectionId": "stub-conn-1", "serverCallId": "stub-server-1",
                        "correlationId": "stub-corr-1", "callConnectionState": "connecting"}),
                    ),
                )
            }
            ("DELETE", "/calling/callConnections/stub-conn-1") => {
                let uri = st.lock().unwrap().callback_uri.clone();
                if let Some(uri) = uri {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let ev = CallbackEvent::new(
                            CallbackKind::CallDisconnected,
                            "ev-disc",
                            "stub-conn-1",
                        );
                        post_callbacks(&uri, &[ev]).await;
                    });
                }
                reply(204, None)
            }
            _ => reply(
                404,
                Some(json!({"error": {"code": "NotFound", "message": route}})),
            ),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let s = self.seen();
            if f(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stub ACS: no {what}: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for StubAcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn gateway(stub: &StubAcs) -> Gw {
    let acs = format!("http://{}", stub.addr);
    Gw::start(move |c| {
        c.acs.connection_string = format!("endpoint={acs}/;accesskey={KEY_B64}");
        c.acs.resource_id = AUD.into();
        c.acs.jwt.issuer = ISS.into();
        c.acs.jwt.jwks_url = format!("{acs}/calling/keys");
        c.acs.max_retries = 1;
        c.acs.max_retry_after_ms = 20;
        c.control.operator_api_key = OPERATOR_KEY.into();
    })
    .await
}

fn incoming_call(event_id: &str, context: &str) -> String {
    let data = IncomingCallEventData {
        to: (&parse_raw_id("28:orgid:cc123456-5678-5678-1234-ccc123456789")).into(),
        from: (&parse_raw_id("4:+12065551212")).into(),
        server_call_id: Some("stub-server-1".into()),
        caller_display_name: Some("Caller".into()),
        custom_context: None,
        incoming_call_context: context.into(),
        correlation_id: Some("stub-corr-1".into()),
        on_behalf_of_callee: None,
    };
    let ev =
        EventGridEvent::incoming_call(event_id, "/subscriptions/x", "2025-01-01T00:00:00Z", &data);
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

async fn call_json(gw: &Gw, id: &str) -> Value {
    let (status, v) = operator(gw, reqwest::Method::GET, &format!("/api/calls/{id}"), None).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn wait_call(gw: &Gw, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let v = call_json(gw, id).await;
        if f(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "call never {what}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Tries a media upgrade; `Ok(ws)` or `Err(HTTP status)`.
async fn upgrade(url: &str, bearer: Option<&str>) -> Result<common::Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("x-ms-call-connection-id", "stub-conn-1".parse().unwrap());
    h.insert("x-ms-call-correlation-id", "stub-corr-1".parse().unwrap());
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

#[tokio::test]
async fn incoming_call_answer_media_callbacks_and_operator_hangup() {
    let stub = StubAcs::start().await;
    let mut gw = gateway(&stub).await;

    // 1. Event Grid delivers the IncomingCall (twice: at least once delivery).
    let body = incoming_call("evt-1", "ctx-e2e");
    let (status, v) = post_event_grid(&gw, body.clone()).await;
    assert_eq!(status, 200, "{v}");
    let call_id = v["accepted"][0].as_str().unwrap().to_owned();
    let (status, v) = post_event_grid(&gw, body).await;
    assert_eq!((status, v["duplicates"].as_u64()), (200, Some(1)));

    // 2. The answer reaches ACS signed, with our media and callback URLs.
    let seen = stub.wait_for("answer", |s| !s.is_empty()).await;
    let answer = &seen[0];
    assert_eq!(answer.signature, Ok(()));
    assert_eq!(
        answer.path,
        "/calling/callConnections:answer?api-version=2026-03-12"
    );
    assert!(answer.repeatability_id.is_some());
    let b = &answer.body;
    assert_eq!(b["incomingCallContext"], "ctx-e2e");
    let transport = b["mediaStreamingOptions"]["transportUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = b["callbackUri"].as_str().unwrap().to_owned();
    let token = transport.rsplit('/').next().unwrap();
    assert_eq!(transport, format!("ws://{}/ws/{token}", gw.addr));
    assert_eq!(
        callback,
        format!("http://{}/api/callbacks/{token}", gw.addr)
    );
    assert_eq!(b["mediaStreamingOptions"]["audioFormat"], "pcm16KMono");
    let v = wait_call(&gw, &call_id, "answered", |v| v["answeredAt"].is_string()).await;
    assert_eq!(v["callConnectionId"], "stub-conn-1");
    assert_eq!(v["state"], "answering");

    // 3. Media: refused without ACS's JWT, without a call token, with a forged one.
    assert_eq!(upgrade(&transport, None).await.err(), Some(401));
    assert_eq!(
        upgrade(&format!("ws://{}/ws", gw.addr), Some(&acs_jwt(AUD, 60)))
            .await
            .err(),
        Some(401)
    );
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("ws://{}/ws/{}{last}", gw.addr, &token[..token.len() - 1]);
    assert_eq!(
        upgrade(&forged, Some(&acs_jwt(AUD, 60))).await.err(),
        Some(401)
    );
    assert_eq!(
        upgrade(&transport, Some(&acs_jwt("another-resource", 60)))
            .await
            .err(),
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

    // ... and accepted with both.
    let mut ws = upgrade(&transport, Some(&acs_jwt(AUD, 86_400)))
        .await
        .expect("admitted");
    let connected = CallbackEvent::new(CallbackKind::CallConnected, "ev-1", "stub-conn-1");
    let started = CallbackEvent {
        media_streaming_update: Some(MediaStreamingUpdate {
            content_type: Some("Audio".into()),
            media_streaming_status: Some(MediaStreamingStatus::MediaStreamingStarted),
            media_streaming_status_details: Some(MediaStreamingStatusDetails::SubscriptionStarted),
        }),
        ..CallbackEvent::new(CallbackKind::MediaStreamingStarted, "ev-2", "stub-conn-1")
    };
    assert_eq!(post_callbacks(&callback, &[connected, started]).await, 200);
    let (_, speech) = fixture("speech_16k.wav");
    let sent: Vec<Vec<i16>> = frames(&speech, 320).into_iter().take(50).collect();
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        sent.iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, None, false)),
    );
    send_all(&mut ws, msgs).await;
    let v = wait_call(&gw, "stub-conn-1", "streaming", |v| {
        v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
    })
    .await;
    assert_eq!(v["id"], call_id.as_str());
    assert_eq!(v["mediaStreaming"]["details"], "subscriptionStarted");
    assert_eq!(v["callbacks"], 2);
    common::close_normally(ws).await;
    wait_call(&gw, &call_id, "media closed", |v| {
        v["mediaConnection"]["connected"] == false
    })
    .await;

    // A callback without ACS's JWT is refused and changes nothing.
    let r = reqwest::Client::new()
        .post(&callback)
        .body(callbacks_body(&[CallbackEvent::new(
            CallbackKind::CallDisconnected,
            "ev-x",
            "stub-conn-1",
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // 4. The operator hangs up: ACS gets the signed DELETE and reports CallDisconnected.
    let (status, v) = operator(
        &gw,
        reqwest::Method::POST,
        &format!("/api/calls/{call_id}/hangup"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let seen = stub
        .wait_for("hang up", |s| s.iter().any(|x| x.method == "DELETE"))
        .await;
    let del = seen.iter().find(|x| x.method == "DELETE").unwrap();
    assert_eq!(del.signature, Ok(()));
    assert_eq!(
        del.path,
        "/calling/callConnections/stub-conn-1?api-version=2026-03-12"
    );
    let v = wait_call(&gw, &call_id, "disconnected", |v| {
        v["state"] == "disconnected"
    })
    .await;
    assert!(v["endedAt"].is_string());
    assert_eq!(v["lastEvent"], "CallDisconnected");

    assert_eq!(
        gw.metric("acs_gateway_incoming_calls_total{outcome=\"answered\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_incoming_calls_total{outcome=\"duplicate\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_callbacks_total{type=\"CallConnected\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_callbacks_total{type=\"CallDisconnected\"}")
            .await,
        1.0
    );
    assert_eq!(gw.metric("acs_gateway_calls_active").await, 0.0);
    assert_eq!(
        gw.metric("acs_gateway_acs_requests_total{operation=\"answer_call\",status=\"200\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_acs_requests_total{operation=\"hang_up_call\",status=\"204\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_answer_latency_seconds_count").await,
        1.0
    );
    assert!(
        gw.metric("acs_gateway_jwks_fetches_total{result=\"ok\"}")
            .await
            >= 1.0
    );

    // 5. The audio ACS streamed is in the call's WAV, sample for sample.
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    let (rate, got) = read_wav(&gw.call_dir("stub-conn-1").join("mixed.wav"));
    assert_eq!(rate, 16_000);
    let want: Vec<i16> = sent.concat();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "recorded audio differs from what was streamed");
}

#[tokio::test]
async fn stale_and_failing_answers_over_http() {
    let stub = StubAcs::start().await;
    let gw = gateway(&stub).await;
    let (status, _) = post_event_grid(&gw, incoming_call("evt-stale", "stale-ctx")).await;
    assert_eq!(status, 200);
    let (status, _) = post_event_grid(&gw, incoming_call("evt-busy", "busy-ctx")).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + STEP;
    while gw
        .metric("acs_gateway_incoming_calls_total{outcome=\"stale\"}")
        .await
        < 1.0
        || gw
            .metric("acs_gateway_incoming_calls_total{outcome=\"failed\"}")
            .await
            < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outcomes not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = stub.seen();
    let busy: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.body["incomingCallContext"] == "busy-ctx")
        .collect();
    assert_eq!(busy.len(), 2, "one retry (acs.max_retries = 1)");
    assert_eq!(
        busy[0].repeatability_id, busy[1].repeatability_id,
        "same operation, same id"
    );
    assert!(seen.iter().all(|s| s.signature.is_ok()));
    assert_eq!(
        gw.metric("acs_gateway_acs_requests_total{operation=\"answer_call\",status=\"503\"}")
            .await,
        2.0
    );
    let (_, calls) = operator(&gw, reqwest::Method::GET, "/api/calls", None).await;
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c["state"] == "failed"));
    assert!(calls.iter().any(|c| c["lastError"]["message"]
        .as_str()
        .unwrap()
        .starts_with("stale IncomingCall")));
    // The media endpoint refuses a failed call's token.
    let seen_answer = seen
        .iter()
        .find(|s| s.body["incomingCallContext"] == "stale-ctx")
        .unwrap();
    let transport = seen_answer.body["mediaStreamingOptions"]["transportUrl"]
        .as_str()
        .unwrap();
    assert_eq!(
        upgrade(transport, Some(&acs_jwt(AUD, 60))).await.err(),
        Some(401)
    );
}
