//! What an operator sees (issue 12, points 3 and 5): the tracing spans that put both ids of a
//! call on every log line of its media connection and of its control-plane operations; the
//! ids in `call.json`; sink errors logged once and then summarised instead of once per frame;
//! the startup banner; the pid on `/healthz` that `acs-sim load --gateway-pid auto` uses.
//!
//! The tests of this file share one process-wide log capture (a tracing subscriber writing to
//! memory) and look only at the lines that name their own call or sink.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use acs_media_gateway::pipeline::sink::{spawn_blocking_sink, QueueConfig};
use acs_media_gateway::pipeline::{
    AudioFrame, CallId, Sink, SinkError, SinkMsg, StreamId, StreamInfo, StreamStats,
};
use acs_sim::acs::{CallAudio, FakeAcs, FakeAcsConfig};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::jwt::SigningKeySource;
use acs_sim::scenario::{run_call, summary, CallScenario};
use common::Gw;

/// Everything logged so far (all tests of this binary).
fn logs() -> String {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(w.clone()))
            .init();
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ids_on_every_line_of_a_call_and_in_call_json() {
    logs();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let acs = FakeAcs::start(FakeAcsConfig {
        signing_key: SigningKeySource::Pem(
            std::fs::read_to_string(root.join("fixtures/keys/jwt_test_key_1.pem")).unwrap(),
        ),
        kid: Some("test-key-1".into()),
        audio: CallAudio::wavs([root.join("fixtures/audio/speech_16k.wav")]),
        ..FakeAcsConfig::default()
    })
    .await
    .unwrap();
    let (conn, audience, issuer, jwks) = (
        acs.connection_string(),
        acs.audience.clone(),
        acs.issuer.clone(),
        acs.jwks_url.clone(),
    );
    let mut gw = Gw::start(move |cfg| {
        cfg.acs.connection_string = conn;
        cfg.acs.resource_id = audience;
        cfg.acs.jwt.issuer = issuer;
        cfg.acs.jwt.jwks_url = jwks;
    })
    .await;
    let scenario = CallScenario {
        hangup_after: Duration::from_secs(1),
        ..CallScenario::new(EventGridTarget::new(format!(
            "http://{}/api/incomingCall",
            gw.addr
        )))
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_call(&acs, &scenario))
        .await
        .expect("scenario bounded")
        .expect("scenario runs");
    assert!(report.ok, "{}", summary(&report));
    let ccid = report.call_connection_id.clone().unwrap();
    let rec = gw.app().control().registry.get(&ccid).expect("call known");
    let server_call_id = rec.server_call_id.clone().expect("serverCallId known");
    assert!(!rec.from.is_empty() && !rec.to.is_empty());

    // the banner of a gateway with the control plane on
    let port = gw.addr.port();
    let text = logs();
    for want in [
        format!("media      ws://127.0.0.1:{port}/ws/{{token}} and ws://127.0.0.1:{port}/ws"),
        format!("metrics    http://127.0.0.1:{port}/metrics"),
        format!("health     http://127.0.0.1:{port}/healthz"),
        format!(
            "control    on: answering IncomingCall at http://127.0.0.1:{port}/api/incomingCall"
        ),
        "admission  call token (/ws/{token}) and ACS JWT required".to_string(),
        "sinks      wav".to_string(),
        format!("gateway    acs-media-gateway {}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(text.contains(&want), "banner lacks {want:?}:\n{text}");
    }

    gw.shutdown().await;
    let text = logs();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&rec.id)).collect();
    let ids = |l: &str| {
        l.contains(&format!("call_id={}", rec.id))
            && l.contains(&format!("call_connection_id={ccid}"))
            && l.contains(&format!("server_call_id={server_call_id}"))
    };
    // media connection (ingress span), callbacks (control span), the answer (its task's span)
    for msg in [
        "media connection open",
        "media connection ended",
        "callback",
        "call answered",
    ] {
        let line = mine
            .iter()
            .find(|l| l.contains(msg))
            .unwrap_or_else(|| panic!("no {msg:?} line naming the call:\n{}", mine.join("\n")));
        assert!(ids(line), "{msg}: not all ids: {line}");
    }
    let callbacks = mine.iter().filter(|l| l.contains("callback")).count();
    assert!(callbacks >= 3, "{}", mine.join("\n"));

    // call.json: the gateway call id, both ACS ids, from and to
    let doc = common::call_json(&gw.call_dir(&ccid));
    let call = &doc["call"];
    assert_eq!(call["gatewayCallId"], rec.id.as_str(), "{doc:#}");
    assert_eq!(call["callConnectionId"], ccid.as_str());
    assert_eq!(call["serverCallId"], server_call_id.as_str());
    assert_eq!(call["from"], rec.from.as_str());
    assert_eq!(call["to"], rec.to.as_str());
    acs.shutdown().await;
}

/// A sink that fails every write, like the WAV sink given frames of a stream it never opened.
struct Failing;

impl Sink for Failing {
    fn kind(&self) -> &'static str {
        "failing_test_sink"
    }
    fn open(&mut self, _s: &Arc<StreamInfo>) -> Result<(), SinkError> {
        Ok(())
    }
    fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
        Err(SinkError::UnknownStream(f.stream))
    }
    fn close(&mut self, _c: CallId, _s: StreamId, _st: &StreamStats) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_logs_its_error_once_then_a_summary_not_a_line_per_frame() {
    logs();
    let m = acs_media_gateway::metrics::Metrics::new();
    let w = spawn_blocking_sink(
        "failing_test_sink",
        |_| Box::new(Failing),
        &QueueConfig {
            audio_capacity: 4096,
            flush_interval: Duration::from_millis(20),
            ..QueueConfig::default()
        },
        m.sink("failing_test_sink"),
    )
    .unwrap();
    let call: CallId = 42;
    for i in 0..2_000u64 {
        let frame = Arc::new(AudioFrame::new(call, 7, i * 320, 16_000, &[0; 320]));
        while !w.handle.send_audio(&frame) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(w.handle.send_control(SinkMsg::CallEnded {
        call: acs_media_gateway::pipeline::sink::contract::call(call),
        reason: acs_media_gateway::pipeline::EndReason::PeerClosed,
    }));
    assert_eq!(
        w.finish_and_join(Instant::now() + Duration::from_secs(30)),
        0
    );
    assert_eq!(m.sink("failing_test_sink").write_errors.get(), 2_000);
    let text = logs();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("failing_test_sink"))
        .collect();
    let first: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("unknown stream 7"))
        .collect();
    assert_eq!(first.len(), 1, "{}", lines.join("\n"));
    assert!(
        first[0].contains("kind=\"unknown_stream\"") || first[0].contains("kind=unknown_stream")
    );
    // the rest are summarised (every 10 s while it lasts, and what is left at shutdown)
    let summarised: u64 = lines
        .iter()
        .filter(|l| l.contains("sink error repeated"))
        .map(|l| {
            let at = l.find("repeated=").expect("count field") + "repeated=".len();
            l[at..].split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(summarised, 1_999, "{}", lines.join("\n"));
    assert!(lines.len() <= 4, "{}", lines.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_pid_auto_finds_the_gateway_at_the_url() {
    let mut gw = Gw::start(|_| {}).await;
    let pid = acs_sim::scrape::resolve_pid(
        Some(acs_sim::scrape::PidSpec::Auto),
        &format!("ws://{}/ws", gw.addr),
    )
    .await
    .expect("pid from /healthz");
    // the gateway runs in this test process
    assert_eq!(pid, Some(std::process::id()));
    gw.shutdown().await;
}
