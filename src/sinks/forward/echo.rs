//! The echo bot: a WebSocket server speaking the forward protocol (the parent module's docs), for
//! the README demo (`examples/echo_bot.rs` is a thin CLI over [`EchoBot`]) and the tests, which
//! start it in-process on `127.0.0.1:0` and read what it received from its log.
//!
//! Per connection it remembers the `format` of `start`, then:
//!
//! * echoes every audio message back — binary as it came, ACS `AudioData` as an ACS outbound
//!   `AudioData` — after `delay`;
//! * plays its clip (if it has one) at real time, 20 ms per message with 60 ms lead, in the
//!   connection's format and mode: at `start` when `play_on_start`, on a `{"type":"play"}` text
//!   message, on a `dtmf` event (or ACS `DtmfData`), or when [`EchoBot::play`] asks; with
//!   `answer`, also when a caller's turn ends: a `speech_ended` whose `speech_started` came
//!   while it was silent (speech that starts while it plays is its own echo or a barge-in);
//! * on `barge_in`: after `reaction` (a bot's reaction time; zero by default: at once) drops
//!   pending echoes, stops playing and sends `{"type":"stop"}` (which acknowledges the barge-in's
//!   playback generation); what it sends meanwhile is stale;
//! * on `end`: closes (1000).
//!
//! Also here, for tests of anything that plays audio back: [`RecordingPlayback`], a
//! [`PlaybackTarget`] that records what it was asked to play and to stop.

use super::interp::{decode_pcm, encode_i16, Interp};
use super::{Encoding, ForwardMode};
use crate::pipeline::frame::CallId;
use crate::pipeline::playback::{Enqueued, PlaybackTarget};
use crate::protocol::b64::decode_base64_into;
use crate::protocol::media::{parse_inbound, write_outbound_audio, Inbound};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Audio played ahead of real time.
const LEAD: Duration = Duration::from_millis(60);
const FRAME: Duration = Duration::from_millis(20);

/// Errors loading the bot's clip.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// The WAV file could not be read.
    #[error("wav: {0}")]
    Wav(#[from] hound::Error),
    /// The WAV file holds no audio.
    #[error("the wav file holds no samples")]
    Empty,
}

/// Mono 16-bit audio the bot can play.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// Samples.
    pub samples: Vec<i16>,
    /// Samples per second.
    pub rate: u32,
}

impl Clip {
    /// Reads a WAV file (integer or float samples, any rate; channels are averaged).
    pub fn from_wav(path: &Path) -> Result<Self, EchoError> {
        let mut r = hound::WavReader::open(path)?;
        let spec = r.spec();
        let ch = usize::from(spec.channels.max(1));
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>()?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                r.samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()?
            }
        };
        let samples: Vec<i16> = interleaved
            .chunks_exact(ch)
            .map(|f| super::interp::f32_to_i16(f.iter().sum::<f32>() / ch as f32))
            .collect();
        if samples.is_empty() {
            return Err(EchoError::Empty);
        }
        Ok(Self {
            samples,
            rate: spec.sample_rate,
        })
    }

    /// The clip at `rate`.
    pub fn at_rate(&self, rate: u32) -> Vec<i16> {
        let mut out = Vec::with_capacity(self.samples.len() * rate as usize / self.rate as usize);
        let mut i = Interp::new(self.rate, rate);
        i.push(&self.samples, &mut out);
        i.finish(&mut out);
        out
    }
}

/// How the bot behaves.
#[derive(Clone, Debug, Default)]
pub struct EchoOptions {
    /// Echo delay.
    pub delay: Duration,
    /// What it plays on request.
    pub clip: Option<Arc<Clip>>,
    /// Play the clip as soon as `start` arrives.
    pub play_on_start: bool,
    /// How long after a `barge_in` the bot stops (it keeps playing meanwhile).
    pub reaction: Duration,
    /// Do not echo audio back (only the clip plays).
    pub no_echo: bool,
    /// Play the clip when a caller's turn ends: a `speech_ended` whose `speech_started` came
    /// while the bot was silent (a bot that answers each turn).
    pub answer: bool,
}

/// What the bot received.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// A connection was accepted (the request path).
    Connected(String),
    /// The `start` message.
    Start(Value),
    /// Any other JSON text message (ACS `AudioData` excepted).
    Text(Value),
    /// Audio, decoded to 16-bit samples (binary, or ACS `AudioData`).
    Audio(Vec<i16>),
    /// The connection ended (close frame, error or end of stream).
    Closed,
}

/// One log entry.
#[derive(Clone, Debug)]
pub struct Record {
    /// Connection number (1, 2, … in accept order).
    pub conn: u64,
    /// When it was received.
    pub at: Instant,
    /// What.
    pub what: Received,
}

impl Record {
    /// The message's `type` (text messages, `start` included).
    pub fn text_type(&self) -> Option<&str> {
        match &self.what {
            Received::Start(_) => Some("start"),
            Received::Text(v) => v.get("type").and_then(Value::as_str),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Record>>,
    changed: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn record(&self, conn: u64, what: Received) {
        if let Ok(mut l) = self.log.lock() {
            l.push(Record {
                conn,
                at: Instant::now(),
                what,
            });
        }
        self.changed.notify_waiters();
    }
}

/// A running echo bot.
pub struct EchoBot {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    play: broadcast::Sender<()>,
}

impl std::fmt::Debug for EchoBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoBot").field("addr", &self.addr).finish()
    }
}

impl EchoBot {
    /// Listens on `addr` (e.g. `127.0.0.1:0`) and serves connections until killed or dropped.
    pub async fn start(addr: impl ToSocketAddrs, opts: EchoOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (play, _) = broadcast::channel(16);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), opts, play.clone()));
        Ok(Self {
            addr,
            shared,
            accept,
            play,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn records(&self) -> Vec<Record> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Every `start` message so far.
    pub fn starts(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter_map(|r| match r.what {
                Received::Start(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Text messages of `type` so far, with their arrival times.
    pub fn texts(&self, ty: &str) -> Vec<(Instant, Value)> {
        self.records()
            .into_iter()
            .filter(|r| r.text_type() == Some(ty))
            .map(|r| match r.what {
                Received::Start(v) | Received::Text(v) => (r.at, v),
                _ => unreachable!("text_type is Some only for text"),
            })
            .collect()
    }

    /// All audio received on connection `conn` (`None`: all connections), in order.
    pub fn audio(&self, conn: Option<u64>) -> Vec<i16> {
        let mut out = Vec::new();
        for r in self.records() {
            if let Received::Audio(a) = r.what {
                if conn.is_none_or(|c| c == r.conn) {
                    out.extend_from_slice(&a);
                }
            }
        }
        out
    }

    /// Waits until `done(log)` holds, at most `timeout`; returns whether it did.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.shared.log.lock().map(|l| done(&l)).unwrap_or(false) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.shared.log.lock().map(|l| done(&l)).unwrap_or(false);
            }
        }
    }

    /// Asks every open connection to play the clip.
    pub fn play(&self) {
        let _ = self.play.send(());
    }

    /// Stops at once: the listener and every connection are dropped without a close frame, as
    /// when the process is killed. The port is free again when this returns.
    pub async fn kill(self) {
        self.accept.abort();
        let tasks = self
            .shared
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in &tasks {
            t.abort();
        }
        // aborted tasks drop their sockets when the runtime next polls them
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while (!self.accept.is_finished() || tasks.iter().any(|t| !t.is_finished()))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for EchoBot {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(tasks) = self.shared.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    opts: EchoOptions,
    play: broadcast::Sender<()>,
) {
    let mut n = 0u64;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        n += 1;
        let task = tokio::spawn(serve(
            tcp,
            n,
            shared.clone(),
            opts.clone(),
            play.subscribe(),
        ));
        if let Ok(mut t) = shared.tasks.lock() {
            t.retain(|t| !t.is_finished());
            t.push(task);
        }
    }
}

struct Fmt {
    rate: u32,
    encoding: Encoding,
    mode: ForwardMode,
}

struct Playing {
    samples: Vec<i16>,
    next: usize,
    due: tokio::time::Instant,
}

// the handshake callback's error type is tungstenite's
#[allow(clippy::result_large_err)]
async fn serve(
    tcp: tokio::net::TcpStream,
    conn: u64,
    shared: Arc<Shared>,
    opts: EchoOptions,
    mut play_rx: broadcast::Receiver<()>,
) {
    let _ = tcp.set_nodelay(true);
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    let callback =
        move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
              resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            if let Ok(mut p) = p2.lock() {
                *p = req.uri().to_string();
            }
            Ok(resp)
        };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let path = path.lock().map(|p| p.clone()).unwrap_or_default();
    shared.record(conn, Received::Connected(path));
    let (mut w, mut r) = ws.split();
    let mut fmt = Fmt {
        rate: 16_000,
        encoding: Encoding::PcmS16le,
        mode: ForwardMode::Pcm,
    };
    let mut echo: VecDeque<(tokio::time::Instant, Message)> = VecDeque::new();
    let mut playing: Option<Playing> = None;
    // when a barge-in's reaction time is up
    let mut react: Option<tokio::time::Instant> = None;
    // the caller's speech started while nothing played (their turn, see `answer`)
    let mut turn = false;
    let mut pcm = Vec::new();
    let mut carry = Vec::new();
    let mut json = String::new();
    let mut b64 = Vec::new();
    let mut bytes = Vec::new();
    let start_playing = |fmt: &Fmt| {
        opts.clip.as_ref().map(|c| Playing {
            samples: c.at_rate(fmt.rate),
            next: 0,
            due: tokio::time::Instant::now(),
        })
    };
    loop {
        let wake = [
            echo.front().map(|e| e.0),
            playing.as_ref().map(|p| p.due - LEAD),
            react,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            _ = async { match wake { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                let now = tokio::time::Instant::now();
                if react.is_some_and(|t| t <= now) {
                    react = None;
                    echo.clear();
                    playing = None;
                    if w.send(Message::text(r#"{"type":"stop"}"#)).await.is_err() { return; }
                }
                while echo.front().is_some_and(|e| e.0 <= now) {
                    let Some((_, m)) = echo.pop_front() else { break };
                    if w.send(m).await.is_err() { return; }
                }
                let mut done = false;
                if let Some(p) = playing.as_mut() {
                    let per = (fmt.rate / 50) as usize;
                    while p.due <= now + LEAD && p.next < p.samples.len() {
                        let end = (p.next + per).min(p.samples.len());
                        bytes.clear();
                        let msg = match fmt.mode {
                            ForwardMode::Pcm => {
                                encode_i16(fmt.encoding, &p.samples[p.next..end], &mut bytes);
                                Message::binary(bytes.clone())
                            }
                            ForwardMode::Acs => {
                                encode_i16(Encoding::PcmS16le, &p.samples[p.next..end], &mut bytes);
                                write_outbound_audio(&mut json, &bytes);
                                Message::text(json.as_str())
                            }
                        };
                        if w.send(msg).await.is_err() { return; }
                        p.next = end;
                        p.due += FRAME;
                    }
                    done = p.next >= p.samples.len();
                }
                if done { playing = None; }
            }
            Ok(()) = play_rx.recv() => playing = start_playing(&fmt),
            msg = r.next() => {
                let msg = match msg {
                    Some(Ok(m)) => m,
                    _ => { shared.record(conn, Received::Closed); return; }
                };
                match msg {
                    Message::Binary(b) => {
                        pcm.clear();
                        decode_pcm(fmt.encoding, &mut carry, &b, &mut pcm);
                        shared.record(conn, Received::Audio(pcm.clone()));
                        if !opts.no_echo {
                            echo.push_back((tokio::time::Instant::now() + opts.delay, Message::Binary(b)));
                        }
                    }
                    Message::Text(t) => {
                        if let Ok(Inbound::AudioData(a)) = parse_inbound(t.as_bytes()) {
                            if decode_base64_into(a.data.as_bytes(), &mut b64).is_ok() {
                                pcm.clear();
                                decode_pcm(Encoding::PcmS16le, &mut Vec::new(), &b64, &mut pcm);
                                shared.record(conn, Received::Audio(pcm.clone()));
                                write_outbound_audio(&mut json, &b64);
                                if !opts.no_echo {
                                    echo.push_back((tokio::time::Instant::now() + opts.delay, Message::text(json.as_str())));
                                }
                            }
                            continue;
                        }
                        let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                        let ty = v.get("type").and_then(Value::as_str).unwrap_or("").to_string();
                        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                        if ty == "start" {
                            fmt.rate = v["format"]["sampleRate"].as_u64().map_or(16_000, |r| r as u32);
                            fmt.encoding = v["format"]["encoding"].as_str().and_then(Encoding::from_wire).unwrap_or_default();
                            fmt.mode = if v["mode"] == "acs" { ForwardMode::Acs } else { ForwardMode::Pcm };
                            shared.record(conn, Received::Start(v));
                            if opts.play_on_start {
                                playing = start_playing(&fmt);
                            }
                            continue;
                        }
                        shared.record(conn, Received::Text(v.clone()));
                        match ty.as_str() {
                            "format" => {
                                if let Some(r) = v["sampleRate"].as_u64() { fmt.rate = r as u32; }
                                if let Some(e) = v["encoding"].as_str().and_then(Encoding::from_wire) { fmt.encoding = e; }
                            }
                            "play" | "dtmf" => playing = start_playing(&fmt),
                            "speech_started" => turn = playing.is_none(),
                            "speech_ended" if opts.answer && turn && playing.is_none() => {
                                turn = false;
                                playing = start_playing(&fmt);
                            }
                            "barge_in" if opts.reaction.is_zero() => {
                                echo.clear();
                                playing = None;
                                if w.send(Message::text(r#"{"type":"stop"}"#)).await.is_err() { return; }
                            }
                            "barge_in" => {
                                react.get_or_insert(tokio::time::Instant::now() + opts.reaction);
                            }
                            "end" => {
                                // what was due goes out first
                                let now = tokio::time::Instant::now();
                                while echo.front().is_some_and(|e| e.0 <= now) {
                                    let Some((_, m)) = echo.pop_front() else { break };
                                    if w.send(m).await.is_err() { return; }
                                }
                                let close = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
                                let _ = w.send(Message::Close(Some(close))).await;
                                // wait (bounded) for the peer's close reply
                                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                                    while let Some(Ok(_)) = r.next().await {}
                                }).await;
                                shared.record(conn, Received::Closed);
                                return;
                            }
                            _ if kind == "dtmfdata" => playing = start_playing(&fmt),
                            _ => {}
                        }
                    }
                    Message::Close(_) => { shared.record(conn, Received::Closed); return; }
                    _ => {}
                }
            }
        }
    }
}

/// One [`PlaybackTarget::enqueue`] a [`RecordingPlayback`] saw.
#[derive(Clone, Debug)]
pub struct Played {
    /// The call.
    pub call: CallId,
    /// When.
    pub at: Instant,
    /// The samples.
    pub samples: Vec<i16>,
    /// Their rate.
    pub rate: u32,
}

/// A [`PlaybackTarget`] for tests: calls are bidirectional once [`RecordingPlayback::add_call`]
/// names them; it records every enqueue and stop with its time.
#[derive(Debug, Default)]
pub struct RecordingPlayback {
    rates: Mutex<HashMap<CallId, u32>>,
    /// Every enqueue.
    pub enqueued: Mutex<Vec<Played>>,
    /// `(call, when)` per stop.
    pub stops: Mutex<Vec<(CallId, Instant)>>,
}

impl RecordingPlayback {
    /// An empty target.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `call` bidirectional at `rate`.
    pub fn add_call(&self, call: CallId, rate: u32) {
        if let Ok(mut r) = self.rates.lock() {
            r.insert(call, rate);
        }
    }

    /// Every sample enqueued for `call`, in order.
    pub fn samples(&self, call: CallId) -> Vec<i16> {
        let Ok(e) = self.enqueued.lock() else {
            return Vec::new();
        };
        e.iter()
            .filter(|x| x.call == call)
            .flat_map(|x| x.samples.iter().copied())
            .collect()
    }

    /// When `call` was stopped.
    pub fn stop_times(&self, call: CallId) -> Vec<Instant> {
        let Ok(s) = self.stops.lock() else {
            return Vec::new();
        };
        s.iter().filter(|x| x.0 == call).map(|x| x.1).collect()
    }
}

impl PlaybackTarget for RecordingPlayback {
    fn is_bidirectional(&self, call: CallId) -> bool {
        self.sample_rate(call).is_some()
    }

    fn enqueue(&self, call: CallId, samples: &[i16], sample_rate: u32) -> Enqueued {
        if !self.is_bidirectional(call) {
            return Enqueued::NoCall;
        }
        if let Ok(mut e) = self.enqueued.lock() {
            e.push(Played {
                call,
                at: Instant::now(),
                samples: samples.to_vec(),
                rate: sample_rate,
            });
        }
        Enqueued::Queued
    }

    fn stop(&self, call: CallId) -> bool {
        if let Ok(mut s) = self.stops.lock() {
            s.push((call, Instant::now()));
        }
        self.is_bidirectional(call)
    }

    fn sample_rate(&self, call: CallId) -> Option<u32> {
        self.rates.lock().ok()?.get(&call).copied()
    }
}
