//! Shared helpers for the integration tests: start a gateway on 127.0.0.1:0 with its recordings
//! in a temporary folder, the one fake ACS the tests use (acs-sim's, [`fake_acs`]) and a gateway
//! pointed at it ([`Gw::start_with_acs`]), a call from that fake ACS into the gateway
//! ([`acs_call`], [`wait_acs_frames`], [`acs_hang_up`]), speak the ACS media protocol to it by
//! hand (tests about the frames themselves), read back WAVs,
//! call.json and /metrics, load committed fixtures ([`fixture_path`]) and wait for conditions
//! ([`wait`]). Everything is loopback with timeouts.
#![allow(dead_code)]

use acs_media_gateway::app::{self, AppHandle, ShutdownReport};
use acs_media_gateway::config::Config;
use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_media_gateway::sinks::SinkConfig;
use acs_sim::acs::{CallAudio, FakeAcs, FakeAcsConfig, FakeAcsHandle, IncomingCallSpec};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::jwt::SigningKeySource;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod azurite;
pub mod wait;
#[allow(unused_imports)]
pub use wait::{eventually, until, wait_until};

/// A client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// First frame time used by the tests (2024-11-15T19:16:12.925Z).
pub const T0: i64 = 1_731_698_172_925;
/// Generous bound for any single network step.
pub const STEP: Duration = Duration::from_secs(10);
/// Generous bound for what takes many steps (uploads, disk flushes on a loaded machine).
pub const LONG: Duration = Duration::from_secs(30);

/// A running gateway and its recordings folder.
pub struct Gw {
    /// The app.
    pub app: Option<AppHandle>,
    /// Bound address.
    pub addr: SocketAddr,
    /// Recordings root (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Gw {
    /// Starts a gateway with `tweak` applied to the default config (listen on port 0, WAV sink
    /// in a temp dir, load shedding on runtime lag off: a busy test machine must not turn
    /// upgrades into 503s in tests about something else; tests/overload.rs turns it on).
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.server.shed_lag_ms = 0;
        for s in &mut cfg.sinks {
            s.set_recordings_dir(dir.path());
        }
        tweak(&mut cfg);
        let app = app::start(cfg).await.expect("gateway starts");
        Gw {
            addr: app.addr(),
            app: Some(app),
            dir,
        }
    }

    /// Starts a gateway whose ACS endpoint, JWKS and token issuer/audience are the fake `acs`,
    /// then applies `tweak`.
    pub async fn start_with_acs(acs: &FakeAcsHandle, tweak: impl FnOnce(&mut Config)) -> Gw {
        let (cs, aud, iss, jwks) = (
            acs.connection_string(),
            acs.audience.clone(),
            acs.issuer.clone(),
            acs.jwks_url.clone(),
        );
        Gw::start(move |cfg| {
            cfg.acs.connection_string = cs;
            cfg.acs.resource_id = aud;
            cfg.acs.jwt.issuer = iss;
            cfg.acs.jwt.jwks_url = jwks;
            tweak(cfg);
        })
        .await
    }

    /// The app.
    pub fn app(&self) -> &AppHandle {
        self.app.as_ref().unwrap()
    }

    /// `ws://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Opens a media connection with the ACS upgrade headers.
    pub async fn connect(&self, path: &str, call_connection_id: &str) -> Ws {
        let mut req = self.url(path).into_client_request().unwrap();
        req.headers_mut().insert(
            "x-ms-call-connection-id",
            call_connection_id.parse().unwrap(),
        );
        req.headers_mut().insert(
            "x-ms-call-correlation-id",
            format!("corr-{call_connection_id}").parse().unwrap(),
        );
        let (ws, resp) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect in time")
            .expect("upgrade accepted");
        assert_eq!(resp.status(), 101);
        ws
    }

    /// Waits until no media connection is open.
    pub async fn wait_no_connections(&self) {
        let app = self.app();
        wait_until("connections end", STEP, || async {
            app.media_connections() == 0
        })
        .await;
    }

    /// Waits until the /metrics series `series` reaches at least `want`; panics after [`LONG`]
    /// with the last value.
    pub async fn wait_metric(&self, series: &str, want: f64) {
        eventually(&format!("{series} >= {want}"), LONG, || async {
            let v = self.metric(series).await;
            if v >= want {
                Ok(())
            } else {
                Err(v)
            }
        })
        .await
    }

    /// Graceful shutdown (finalises every recording).
    pub async fn shutdown(&mut self) -> ShutdownReport {
        let app = self.app.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), app.shutdown())
            .await
            .expect("shutdown in time")
    }

    /// The folder of a call: `<dir>/<date>/<label>`.
    pub fn call_dir(&self, label: &str) -> PathBuf {
        let day = std::fs::read_dir(self.dir.path())
            .unwrap()
            .next()
            .expect("a date folder")
            .unwrap()
            .path();
        day.join(label)
    }

    /// Waits until the operator API's record of call `id` (`GET /api/calls/{id}` with the
    /// operator key `key`) satisfies `f`, and returns it; panics after [`STEP`] with the last
    /// record, saying the call never got `what`.
    pub async fn wait_call(
        &self,
        key: &str,
        id: &str,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let url = format!("http://{}/api/calls/{id}", self.addr);
        eventually(&format!("call {id} {what}"), STEP, || async {
            let r = reqwest::Client::new()
                .get(&url)
                .bearer_auth(key)
                .timeout(STEP)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            if f(&v) {
                Ok(v)
            } else {
                Err(v)
            }
        })
        .await
    }

    /// GET a path, returning status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// The rendered /metrics.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// One series from /metrics (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        acs_sim::scrape::scrape_value(&self.metrics().await, series).unwrap_or(0.0)
    }
}

/// Minimal HTTP/1.1 GET with `Connection: close`.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf).to_string();
        let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    };
    tokio::time::timeout(STEP, fut).await.expect("http in time")
}

/// One request to the gateway's HTTP API at `addr` (operator routes): `bearer` as the
/// credentials, `body` sent as `content_type`, on a new connection each time (a proxy in front
/// balances connections, not requests). Returns the status and the JSON body (`Null` when there
/// is none), or status 0 when no answer came (refused, reset, or nothing within [`STEP`]).
pub async fn api(
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(bearer)
        .header("content-type", content_type)
        .body(body)
        .timeout(STEP)
        .send()
        .await;
    match r {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// One HTTP/1.1 response read off a raw connection: status, head (lowercased), body.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Status line and headers, lowercased.
    pub head: String,
    /// Body (`Content-Length` bytes of it).
    pub body: String,
}

impl RawResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Reads one response (head, then its `Content-Length` body) without waiting for the connection
/// to close; `None` when the connection ends (or fails) before a whole response.
pub async fn read_response(s: &mut TcpStream) -> Option<RawResponse> {
    let fut = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    let status = head.split(' ').nth(1)?.parse().ok()?;
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                    return Some(RawResponse { status, head, body });
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(STEP, fut)
        .await
        .expect("response or close in time")
}

/// Waits until the peer closes the connection (EOF or reset), reading and discarding anything
/// sent before; panics after [`STEP`].
pub async fn wait_closed(s: &mut TcpStream) {
    let fut = async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = s.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(STEP, fut)
        .await
        .expect("connection closed in time");
}

/// The path of a committed fixture: `rel` under the repository's `fixtures/` folder.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The bytes of a committed fixture (`rel` under `fixtures/`).
pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    let p = fixture_path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The text of a committed fixture (`rel` under `fixtures/`).
pub fn fixture_text(rel: &str) -> String {
    String::from_utf8(fixture_bytes(rel)).expect("UTF-8 fixture")
}

/// Samples of a committed fixture WAV (`name` under `fixtures/audio/`).
pub fn fixture(name: &str) -> (u32, Vec<i16>) {
    read_wav(&fixture_path(&format!("audio/{name}")))
}

/// The committed RS256 test key (kid `test-key-1` in `fixtures/keys/jwt_test_jwks.json`).
pub fn test_signing_key() -> SigningKeySource {
    SigningKeySource::Pem(fixture_text("keys/jwt_test_key_1.pem"))
}

/// The one fake ACS of the tests: acs-sim's (Call Automation REST with signature checks,
/// callbacks, JWKS, media streams), signing with [`test_signing_key`] and streaming
/// `fixtures/audio/speech_16k.wav` to each answered call, `tweak` applied.
pub async fn fake_acs(tweak: impl FnOnce(&mut FakeAcsConfig)) -> FakeAcsHandle {
    let mut cfg = FakeAcsConfig {
        signing_key: test_signing_key(),
        kid: Some("test-key-1".into()),
        audio: CallAudio::wavs([fixture_path("audio/speech_16k.wav")]),
        ..FakeAcsConfig::default()
    };
    tweak(&mut cfg);
    FakeAcs::start(cfg).await.expect("fake ACS starts")
}

/// [`fake_acs`] streaming `speaker_a_16k.wav` in real time and then silence (so a call outlasts
/// its clip), each stream capped at `max_stream`; `tweak` adjusts the rest.
pub async fn fake_acs_realtime(
    max_stream: Duration,
    tweak: impl FnOnce(&mut FakeAcsConfig),
) -> FakeAcsHandle {
    fake_acs(|cfg| {
        cfg.pacing = acs_sim::Pacing::Realtime;
        cfg.audio = CallAudio {
            sources: vec![acs_sim::acs::AudioSource {
                raw_id: None,
                input: acs_sim::acs::AudioInput::Wav(fixture_path("audio/speaker_a_16k.wav")),
            }],
            after: acs_sim::acs::AfterAudio::Silence,
            silent_threshold_dbfs: -50.0,
            echo: None,
            first_audio_after: Duration::ZERO,
        };
        cfg.max_stream_duration = max_stream;
        tweak(cfg);
    })
    .await
}

/// The fake ACS calls the gateway: an IncomingCall for `spec` delivered to its Event Grid webhook
/// (`/api/incomingCall`, no secret), answered, and media streaming started (the fake's media
/// client is on the gateway's WebSocket, playing the call's [`CallAudio`] and recording what
/// comes back: [`FakeAcsHandle::outbound_events`], [`FakeAcsHandle::outbound_pcm`]). Returns the
/// `callConnectionId` (the call's recordings folder).
pub async fn acs_call(acs: &FakeAcsHandle, gw: &Gw, spec: IncomingCallSpec) -> String {
    let mut target = EventGridTarget::new(format!("http://{}/api/incomingCall", gw.addr));
    target.attempt_timeout = STEP;
    target.retry_delays = vec![Duration::from_millis(200)];
    let data = acs.incoming_call(spec);
    let report = acs_sim::eventgrid::deliver_incoming_call(&target, &acs.topic(), &data, 0)
        .await
        .expect("IncomingCall delivered");
    assert!(report.delivered, "{report:?}");
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("the gateway answers")
        .call_connection_id;
    let media = |c: &acs_sim::acs::CallInfo| {
        c.callback_names()
            .iter()
            .any(|n| n.starts_with("MediaStreaming"))
    };
    let call = acs
        .wait_for(LONG, |h| h.call(&conn).filter(media))
        .await
        .or_else(|| acs.call(&conn));
    assert!(
        call.as_ref().is_some_and(|c| c
            .callback_names()
            .iter()
            .any(|n| n == "MediaStreamingStarted")),
        "media streaming started for {conn}: {call:#?}"
    );
    conn
}

/// `AudioData` frames the fake ACS has sent on call `conn` (all its connections).
pub fn acs_frames_sent(acs: &FakeAcsHandle, conn: &str) -> u64 {
    acs.call(conn).map_or(0, |c| c.media.audio_frames_sent)
}

/// Waits until the fake ACS has sent `n` audio frames on call `conn` (the caller's stream is
/// `n` × 20 ms along); panics after [`LONG`].
pub async fn wait_acs_frames(acs: &FakeAcsHandle, conn: &str, n: u64) {
    wait_until(&format!("{n} caller frames on {conn}"), LONG, || async {
        acs_frames_sent(acs, conn) >= n
    })
    .await;
}

/// The far end of call `conn` hangs up: the fake ACS closes the media socket (1000) and posts
/// the call's end; returns once the gateway has no media connection left.
pub async fn acs_hang_up(acs: &FakeAcsHandle, gw: &Gw, conn: &str) {
    assert!(acs.hang_up(conn), "call {conn} is live");
    acs.wait_for_callback(conn, "CallDisconnected", STEP)
        .await
        .unwrap_or_else(|| panic!("call {conn} ends"));
    gw.wait_no_connections().await;
}

/// Rate and samples of a mono 16-bit WAV.
pub fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample),
        (1, 16),
        "{}",
        path.display()
    );
    (
        spec.sample_rate,
        r.samples::<i16>().map(|s| s.unwrap()).collect(),
    )
}

/// The call.json of a call folder.
pub fn call_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("call.json")).unwrap()).unwrap()
}

/// AudioMetadata text.
pub fn metadata(rate: u32) -> String {
    inbound_audio_metadata_json(rate, "89e8cb59-b991-48b0-b154-1db84f16a077")
}

/// AudioData text for `samples` at frame index `k` (timestamp T0 + 20·k ms).
pub fn audio(samples: &[i16], k: i64, participant: Option<&str>, silent: bool) -> String {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    audio_bytes(&bytes, k, participant, silent)
}

/// AudioData text for raw PCM bytes.
pub fn audio_bytes(bytes: &[u8], k: i64, participant: Option<&str>, silent: bool) -> String {
    let mut ts = String::new();
    format_timestamp(T0 + 20 * k, &mut ts);
    audio_bytes_at(bytes, &ts, participant, silent)
}

/// AudioData text for raw PCM bytes with the timestamp text `ts` as it is.
pub fn audio_bytes_at(bytes: &[u8], ts: &str, participant: Option<&str>, silent: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::new();
    inbound_audio_data_json(&mut out, &b64, ts, participant, silent);
    out
}

/// Sends text messages.
pub async fn send_all(ws: &mut Ws, msgs: impl IntoIterator<Item = String>) {
    for m in msgs {
        tokio::time::timeout(STEP, ws.send(Message::text(m)))
            .await
            .expect("send in time")
            .expect("send");
    }
}

/// Sends a normal close and checks the server answers it with its own close frame (1000).
pub async fn close_normally(mut ws: Ws) {
    ws.send(Message::Close(Some(CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    let reply = tokio::time::timeout(STEP, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("close reply in time");
    assert_eq!(
        reply,
        Some(1000),
        "the gateway answers a close with a close"
    );
}

/// Reads until the server closes; returns its close code and reason.
pub async fn expect_close(ws: &mut Ws) -> (u16, String) {
    let fut = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(e) => panic!("error before close frame: {e}"),
            }
        }
        panic!("stream ended without a close frame")
    };
    tokio::time::timeout(STEP, fut)
        .await
        .expect("close in time")
}

/// Frames of 20 ms from a sample buffer (the last one zero-padded).
pub fn frames(samples: &[i16], per_frame: usize) -> Vec<Vec<i16>> {
    samples
        .chunks(per_frame)
        .map(|c| {
            let mut v = c.to_vec();
            v.resize(per_frame, 0);
            v
        })
        .collect()
}

/// The WAV sink config of a test gateway.
pub fn wav_only(cfg: &mut Config) -> &mut acs_media_gateway::sinks::wav::WavSinkConfig {
    match cfg.sinks.first_mut() {
        Some(SinkConfig::Wav(w)) => w,
        _ => panic!("default config has a wav sink first"),
    }
}

/// The NATS server of the NATS and cluster tests: `ACS_TEST_NATS_URL`, else 127.0.0.1:4222.
pub fn nats_url() -> String {
    std::env::var("ACS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A JetStream context on [`nats_url`], or `None`: the test then skips with a visible message
/// (under `CI` it fails instead). `.ci/run` starts `nats-server -js`.
pub async fn jetstream() -> Option<async_nats::jetstream::Context> {
    let url = nats_url();
    let skip = |why: String| {
        let msg = format!("SKIPPED: {why} (.ci/run starts nats-server -js; set ACS_TEST_NATS_URL)");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        None
    };
    let c = match tokio::time::timeout(Duration::from_secs(2), async_nats::connect(url.as_str()))
        .await
    {
        Ok(Ok(c)) => c,
        _ => return skip(format!("no nats-server reachable at {url}")),
    };
    let js = async_nats::jetstream::new(c);
    let probe = async_nats::jetstream::stream::Config {
        name: "acs-gw-test-probe".into(),
        subjects: vec!["acs-gw-test-probe".into()],
        ..Default::default()
    };
    if let Err(e) = js.get_or_create_stream(probe).await {
        return skip(format!(
            "the nats-server at {url} has no JetStream (-js): {e}"
        ));
    }
    Some(js)
}
