//! End-to-end load on the whole server over loopback sockets: an in-process gateway
//! (`app::start`, listening on 127.0.0.1:0) and [`CONNS`] WebSocket clients on the same
//! multi-thread runtime. Each iteration connects the clients (untimed), then every client sends
//! `AudioMetadata` and floods [`FRAMES`] `AudioData` messages (640 bytes of 16 kHz PCM, timestamps
//! 20 ms apart) and closes; the time runs from the first send until the sink's processed-frame
//! counter (`acs_gateway_sink_frames_total{sink=…}`, read straight from the metrics) plus its
//! audio drops account for every frame sent. One element is one frame.
//!
//! * `e2e/wav` — the default configuration: the WAV recorder (recordings in a temp dir, deleted
//!   between iterations outside the timing).
//! * `e2e/null` — the null sink only (same 32 Ki-frame queue as the WAV sink), so the difference
//!   is the WAV sink's share.
//!
//! Clients and gateway share the machine's cores, so the figure is a whole-system one (client
//! JSON/WebSocket framing included), not the gateway's alone.

/// The binary's allocator (feature `mimalloc`, on by default), so the bench measures what
/// `acs-media-gateway` runs.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use acs_media_gateway::app::{self, AppHandle};
use acs_media_gateway::config::Config;
use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_media_gateway::sinks::null::NullSinkConfig;
use acs_media_gateway::sinks::SinkConfig;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Concurrent media connections per iteration.
const CONNS: usize = 50;
/// AudioData frames each connection sends per iteration (4 s of audio).
const FRAMES: usize = 200;
/// Bound on any wait (connect, drain, close).
const STEP: Duration = Duration::from_secs(30);
/// First frame time (2024-11-15T19:16:12.925Z).
const T0: i64 = 1_731_698_172_925;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The messages every connection sends: metadata, then `FRAMES` audio frames.
fn messages() -> (Utf8Bytes, Arc<Vec<Utf8Bytes>>) {
    let pcm: Vec<u8> = (0..320)
        .map(|j| ((j as f64 * 0.09).sin() * 6000.0) as i16)
        .flat_map(i16::to_le_bytes)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pcm);
    let frames = (0..FRAMES)
        .map(|k| {
            let mut ts = String::new();
            format_timestamp(T0 + 20 * k as i64, &mut ts);
            let mut m = String::new();
            inbound_audio_data_json(&mut m, &b64, &ts, None, false);
            Utf8Bytes::from(m)
        })
        .collect();
    (
        Utf8Bytes::from(inbound_audio_metadata_json(16_000, "sub")),
        Arc::new(frames),
    )
}

async fn start(sinks: Option<Vec<SinkConfig>>, dir: &Path) -> AppHandle {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.shed_lag_ms = 0;
    cfg.server.shed_queue_fill = 0.0;
    cfg.server.max_connections = CONNS * 4;
    if let Some(s) = sinks {
        cfg.sinks = s;
    }
    for s in &mut cfg.sinks {
        s.set_recordings_dir(dir);
    }
    app::start(cfg).await.expect("gateway starts")
}

async fn connect(app: &AppHandle, id: usize) -> Ws {
    let mut req = format!("ws://{}/ws", app.addr())
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert(
        "x-ms-call-connection-id",
        format!("bench-{id}").parse().unwrap(),
    );
    h.insert(
        "x-ms-call-correlation-id",
        format!("corr-bench-{id}").parse().unwrap(),
    );
    let (ws, resp) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")
        .expect("upgrade accepted");
    assert_eq!(resp.status(), 101);
    ws
}

/// Sends everything, then closes and waits for the server's close reply.
async fn client(mut ws: Ws, meta: Utf8Bytes, frames: Arc<Vec<Utf8Bytes>>) {
    ws.send(Message::Text(meta)).await.expect("send metadata");
    for f in frames.iter() {
        ws.send(Message::Text(f.clone())).await.expect("send audio");
    }
    ws.send(Message::Close(Some(CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    tokio::time::timeout(STEP, async {
        while let Some(m) = ws.next().await {
            if matches!(m, Ok(Message::Close(_)) | Err(_)) {
                break;
            }
        }
    })
    .await
    .expect("close reply in time");
}

/// Frames the sink has processed or dropped: every frame sent ends up in one of the two.
fn accounted(app: &AppHandle, sink: &'static str) -> u64 {
    let m = app.metrics().sink(sink);
    m.frames.get() + m.audio_drops.get()
}

/// One iteration: connect (untimed), send and wait until the sink accounted for every frame
/// (timed), then wait for the connections to end (untimed).
async fn iteration(
    app: &AppHandle,
    sink: &'static str,
    meta: &Utf8Bytes,
    frames: &Arc<Vec<Utf8Bytes>>,
) -> Duration {
    let mut conns = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        conns.push(connect(app, i).await);
    }
    let target = accounted(app, sink) + (CONNS * FRAMES) as u64;
    let t = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(client(ws, meta.clone(), frames.clone())))
        .collect();
    let deadline = t + STEP;
    while accounted(app, sink) < target {
        assert!(Instant::now() < deadline, "the gateway did not catch up");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = t.elapsed();
    for task in tasks {
        task.await.expect("client task");
    }
    let deadline = Instant::now() + STEP;
    while app.media_connections() > 0 {
        assert!(Instant::now() < deadline, "connections did not end");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    elapsed
}

/// Waits until every call's file is finalised, then deletes the call folders left by the
/// iteration before (untimed). Lagging one iteration behind keeps the deletion clear of the
/// `call.json` rewrite the sink does at call end; the disk holds at most two iterations.
async fn clear(app: &AppHandle, finalised: u64, dir: &Path, previous: &mut Vec<PathBuf>) {
    let deadline = Instant::now() + STEP;
    while app.metrics().recordings_finalised.get() < finalised {
        assert!(Instant::now() < deadline, "recordings were not finalised");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for p in previous.drain(..) {
        let _ = std::fs::remove_dir_all(p);
    }
    for day in std::fs::read_dir(dir).unwrap() {
        let day = day.unwrap().path();
        if let Ok(calls) = std::fs::read_dir(&day) {
            previous.extend(calls.map(|c| c.unwrap().path()));
        }
    }
}

fn bench(c: &mut Criterion, name: &str, sink: &'static str, sinks: Option<Vec<SinkConfig>>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = rt.block_on(start(sinks, dir.path()));
    let (meta, frames) = messages();
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements((CONNS * FRAMES) as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut previous = Vec::new();
                for _ in 0..iters {
                    let finalised = app.metrics().recordings_finalised.get()
                        + if sink == "wav" { CONNS as u64 } else { 0 };
                    total += iteration(&app, sink, &meta, &frames).await;
                    clear(&app, finalised, dir.path(), &mut previous).await;
                }
                total
            })
        })
    });
    g.finish();
    let m = app.metrics().sink(sink);
    let (drops, errors) = (m.audio_drops.get(), m.write_errors.get());
    if drops + errors > 0 {
        eprintln!("e2e/{name}: the {sink} sink dropped {drops} frames, {errors} write errors");
    }
    let report = rt.block_on(app.shutdown());
    assert!(report.clean(), "clean shutdown: {report:?}");
}

fn wav(c: &mut Criterion) {
    bench(c, "wav", "wav", None);
}

fn null(c: &mut Criterion) {
    let null = NullSinkConfig {
        queue_frames: 32 * 1024,
    };
    bench(c, "null", "null", Some(vec![SinkConfig::Null(null)]));
}

criterion_group!(benches, wav, null);
criterion_main!(benches);
