//! Test doubles for the fake ACS and Event Grid emulator tests, all on 127.0.0.1:0 with bounded
//! waits: a webhook receiver (records requests, answers scripted statuses, does both Event Grid
//! handshakes), a media WebSocket server (records upgrade headers and messages, can talk back),
//! and an HMAC-signed client for the fake ACS.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_protocol::auth;
use acs_sim::acs::{FakeAcs, FakeAcsConfig, FakeAcsHandle};
use acs_sim::jwt::{AcsClaims, SigningKeySource};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// The committed test signing key (fixtures/keys, kid `test-key-1` in its JWKS).
pub fn test_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/keys/jwt_test_key_1.pem"
    ))
    .unwrap()
}

/// A fake ACS config with the test key, fast (as-fast-as-possible is not used: real time keeps
/// the media assertions meaningful; the streams are short).
pub fn test_config() -> FakeAcsConfig {
    FakeAcsConfig {
        signing_key: SigningKeySource::Pem(test_key_pem()),
        kid: Some("test-key-1".into()),
        resource_id: "11111111-2222-3333-4444-555555555555".into(),
        ..FakeAcsConfig::default()
    }
}

pub async fn start_fake(cfg: FakeAcsConfig) -> FakeAcsHandle {
    FakeAcs::start(cfg).await.unwrap()
}

/// Loads a JSON vector.
pub fn vector(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// -------------------------------------------------------------------------------------------
// Signed client
// -------------------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .no_proxy()
        .build()
        .unwrap()
}

/// How to sign a request (defaults: the right key, now, the body sent).
#[derive(Debug, Clone, Default)]
pub struct Signing {
    pub key: Option<Vec<u8>>,
    pub date_unix: Option<i64>,
    /// Sign this body but send the real one.
    pub signed_body: Option<Vec<u8>>,
    pub unsigned: bool,
    pub extra: Vec<(String, String)>,
}

pub async fn send(
    acs: &FakeAcsHandle,
    method: &str,
    pq: &str,
    body: &[u8],
    how: &Signing,
) -> Result<Resp, reqwest::Error> {
    let host = acs.addr().to_string();
    let date = auth::format_rfc1123(how.date_unix.unwrap_or_else(acs_sim::jwt::unix_now)).unwrap();
    let key = how.key.clone().unwrap_or_else(|| acs.access_key().to_vec());
    let signed_body = how.signed_body.as_deref().unwrap_or(body);
    let s = auth::sign(&key, method, pq, &host, &date, signed_body);
    let mut req = http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{pq}", acs.base_url),
        )
        .header("content-type", "application/json");
    if !how.unsigned {
        req = req
            .header("x-ms-date", &s.date)
            .header("x-ms-content-sha256", &s.content_hash)
            .header("authorization", &s.authorization);
    }
    for (k, v) in &how.extra {
        req = req.header(k, v);
    }
    let r = req.body(body.to_vec()).send().await?;
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = r.bytes().await?.to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// A correctly signed request.
pub async fn signed(acs: &FakeAcsHandle, method: &str, pq: &str, body: &serde_json::Value) -> Resp {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    send(acs, method, pq, &bytes, &Signing::default())
        .await
        .unwrap()
}

/// A correctly signed request with repeatability headers.
pub async fn signed_repeatable(
    acs: &FakeAcsHandle,
    method: &str,
    pq: &str,
    body: &serde_json::Value,
    request_id: &str,
    first_sent: &str,
) -> Resp {
    let how = Signing {
        extra: vec![
            ("Repeatability-Request-ID".into(), request_id.into()),
            ("Repeatability-First-Sent".into(), first_sent.into()),
        ],
        ..Signing::default()
    };
    send(acs, method, pq, &serde_json::to_vec(body).unwrap(), &how)
        .await
        .unwrap()
}

/// Validates an RS256 token against the fake's JWKS (fetched over HTTP); returns its claims.
pub async fn validate_jwt(acs: &FakeAcsHandle, token: &str) -> AcsClaims {
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(&acs.jwks_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[&acs.issuer]);
    v.set_audience(&[&acs.audience]);
    jsonwebtoken::decode::<AcsClaims>(token, &key, &v)
        .unwrap()
        .claims
}

// -------------------------------------------------------------------------------------------
// Webhook receiver
// -------------------------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct ReceiverState {
    log: Vec<Received>,
    /// Statuses to answer, in order; then 200.
    script: VecDeque<u16>,
    /// Sleep this long before answering.
    delay: Option<Duration>,
    /// Answer the Event Grid validation and the CloudEvents OPTIONS handshake.
    handshakes: bool,
}

/// An HTTP server that records every request (clones share it).
#[derive(Clone)]
pub struct Receiver {
    pub base_url: String,
    state: Arc<Mutex<ReceiverState>>,
    changed: Arc<Notify>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState {
            handshakes: true,
            ..ReceiverState::default()
        }));
        let changed = Arc::new(Notify::new());
        let (st, ch) = (Arc::clone(&state), Arc::clone(&changed));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (st, ch) = (Arc::clone(&st), Arc::clone(&ch));
                tokio::spawn(async move {
                    let svc = service_fn(move |req| receive(Arc::clone(&st), Arc::clone(&ch), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Receiver {
            base_url,
            state,
            changed,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    pub fn set_delay(&self, d: Option<Duration>) {
        self.state.lock().unwrap().delay = d;
    }

    pub fn set_handshakes(&self, on: bool) {
        self.state.lock().unwrap().handshakes = on;
    }

    pub fn log(&self) -> Vec<Received> {
        self.state.lock().unwrap().log.clone()
    }

    /// Waits until at least `n` requests arrived (bounded by [`WAIT`]); returns the log.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let log = self.log();
            if log.len() >= n {
                return log;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {n} requests; got {}: {:?}",
                    log.len(),
                    log.iter().map(|r| (&r.method, &r.path)).collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn receive(
    state: Arc<Mutex<ReceiverState>>,
    changed: Arc<Notify>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (status, delay, handshakes) = {
        let mut s = state.lock().unwrap();
        s.log.push(Received {
            method: method.clone(),
            path,
            headers: headers.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        (s.script.pop_front().unwrap_or(200), s.delay, s.handshakes)
    };
    changed.notify_waiters();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = Response::builder().status(status);
    let mut out = Bytes::new();
    if handshakes && method == "OPTIONS" {
        if let Some(origin) = headers.get("webhook-request-origin") {
            resp = resp
                .header("WebHook-Allowed-Origin", origin.as_str())
                .header("Allow", "POST");
        }
    }
    if handshakes
        && headers.get("aeg-event-type").map(String::as_str) == Some("SubscriptionValidation")
    {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let code = v[0]["data"]["validationCode"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        out = Bytes::from(
            serde_json::to_vec(&serde_json::json!({ "validationResponse": code })).unwrap(),
        );
        resp = resp.header("content-type", "application/json");
    }
    Ok(resp.body(Full::new(out)).unwrap())
}

// -------------------------------------------------------------------------------------------
// Media WebSocket server
// -------------------------------------------------------------------------------------------

/// What a media connection saw.
#[derive(Debug, Clone, Default)]
pub struct MediaConn {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub texts: Vec<(Instant, String)>,
    pub closed: Option<u16>,
    pub ended: bool,
}

impl MediaConn {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the media server sends back once the first `AudioData` arrives.
#[derive(Debug, Clone, Default)]
pub struct TalkBack {
    /// Outbound `AudioData` messages to send, each this many PCM bytes, one every `interval`.
    pub frames: usize,
    pub pcm_bytes: usize,
    pub interval: Duration,
    /// Then a `StopAudio`.
    pub stop_audio: bool,
}

/// A WebSocket server accepting any number of media connections.
pub struct MediaServer {
    pub url: String,
    conns: Arc<Mutex<Vec<MediaConn>>>,
    changed: Arc<Notify>,
}

impl MediaServer {
    pub async fn start(talk_back: TalkBack) -> MediaServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws/test-token", listener.local_addr().unwrap());
        let conns: Arc<Mutex<Vec<MediaConn>>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (c2, ch2) = (Arc::clone(&conns), Arc::clone(&changed));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (conns, changed, talk) = (Arc::clone(&c2), Arc::clone(&ch2), talk_back.clone());
                tokio::spawn(async move { media_conn(tcp, conns, changed, talk).await });
            }
        });
        MediaServer {
            url,
            conns,
            changed,
        }
    }

    pub fn conns(&self) -> Vec<MediaConn> {
        self.conns.lock().unwrap().clone()
    }

    /// Waits until `f` holds on the connections (bounded by [`WAIT`]).
    pub async fn wait_until(&self, what: &str, f: impl Fn(&[MediaConn]) -> bool) -> Vec<MediaConn> {
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let c = self.conns();
            if f(&c) {
                return c;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}: {:?}",
                    c.iter()
                        .map(|c| (c.texts.len(), c.closed, c.ended))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn media_conn(
    tcp: tokio::net::TcpStream,
    conns: Arc<Mutex<Vec<MediaConn>>>,
    changed: Arc<Notify>,
    talk: TalkBack,
) {
    let mut seen = MediaConn::default();
    #[allow(clippy::result_large_err)]
    let cb = |req: &WsRequest, resp: WsResponse| {
        seen.path = req.uri().path().to_owned();
        for (k, v) in req.headers() {
            seen.headers.insert(
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            );
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
        return;
    };
    let idx = {
        let mut c = conns.lock().unwrap();
        c.push(seen);
        c.len() - 1
    };
    changed.notify_waiters();
    let (mut tx, mut rx) = ws.split();
    let mut talking = false;
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let is_audio = t.contains("\"AudioData\"");
                    conns.lock().unwrap()[idx].texts.push((Instant::now(), t.to_string()));
                    changed.notify_waiters();
                    if is_audio && !talking && (talk.frames > 0 || talk.stop_audio) {
                        talking = true;
                        let (out_tx, talk) = (out_tx.clone(), talk.clone());
                        tokio::spawn(async move {
                            let mut msg = String::new();
                            let mut next = Instant::now();
                            for i in 0..talk.frames {
                                let pcm: Vec<u8> = (0..talk.pcm_bytes).map(|b| ((b + i) % 251) as u8 & 0xFE).collect();
                                acs_protocol::write_outbound_audio(&mut msg, &pcm);
                                let _ = out_tx.send(Message::Text(msg.clone().into()));
                                next += talk.interval;
                                tokio::time::sleep_until(next).await;
                            }
                            if talk.stop_audio {
                                let _ = out_tx.send(Message::Text(acs_protocol::STOP_AUDIO_JSON.into()));
                            }
                        });
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    conns.lock().unwrap()[idx].closed = Some(f.map_or(1005, |f| f.code.into()));
                    changed.notify_waiters();
                    let _ = tx.flush().await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            Some(out) = out_rx.recv() => {
                if tx.send(out).await.is_err() { break; }
            }
        }
    }
    conns.lock().unwrap()[idx].ended = true;
    changed.notify_waiters();
}
