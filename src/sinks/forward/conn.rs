//! One downstream connection, as a task on the gateway's tokio runtime: connect (ws or wss, with a
//! timeout), send `start`, then forward what the sink's worker routes to it through a bounded
//! channel, keep the connection alive with pings, hand the audio the target sends back to the
//! call's [`PlaybackTarget`], reconnect with exponential backoff and jitter when the connection is
//! lost, and close cleanly (`end`, then close 1000) when the call or stream ends.
//!
//! Sending and receiving are separate tasks over the split socket, so a target that stops reading
//! never delays playback of what it sent, and each send has a stall limit. Messages wait in the
//! channel while a connection attempt runs; during the backoff between attempts they are taken out
//! and dropped (counted), so a target that comes back gets current audio, not a backlog.

use super::interp::{decode_pcm, Interp};
use super::proto::{
    end_message, format_message, parse_upstream_text, sample_time, start_message,
    stream_close_message, stream_open_message, Start, Upstream,
};
use super::{Encoding, ForwardMode, ForwardSinkConfig, ReconnectConfig};
use crate::metrics::Metrics;
use crate::pipeline::frame::{CallInfo, StreamId, StreamInfo, StreamStats};
use crate::pipeline::playback::{Enqueued, PlaybackTarget};
use crate::protocol::b64::decode_base64_into;
use crate::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Largest message a target may send (a few seconds of audio at once is fine).
pub(crate) const MAX_UPSTREAM_MESSAGE: usize = 4 << 20;
/// A connection that lasted at least this long resets the backoff.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(1);
/// How long the close handshake at the end may take.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long returned audio may pause before the rate converter lets out what it holds.
const TAIL_FLUSH: Duration = Duration::from_millis(40);
/// Send stall limit when pings are off.
const STALL_WITHOUT_PING: Duration = Duration::from_secs(10);

/// What the sink's worker sends a connection task, in call order.
#[derive(Debug)]
pub(crate) enum Down {
    /// One block of audio, already encoded (PCM bytes in the sink's encoding).
    Audio {
        /// The stream.
        stream: StreamId,
        /// Position of the first sample.
        pos: u64,
        /// ACS flagged it silent.
        silent: bool,
        /// PCM bytes.
        payload: Bytes,
    },
    /// A forwarded stream starts.
    StreamOpen(Arc<StreamInfo>),
    /// A forwarded stream ends.
    StreamClose {
        /// The stream.
        stream: StreamId,
        /// Its counters.
        stats: StreamStats,
    },
    /// A text message, rendered (events, gaps).
    Text(String),
    /// The call (or, per participant, the stream) ended: send `end` with this reason, close.
    End(String),
}

/// Everything a connection task needs.
pub(crate) struct ConnSpec {
    /// The sink's settings.
    pub cfg: Arc<ForwardSinkConfig>,
    /// The rendered URL.
    pub url: String,
    /// The call.
    pub call: Arc<CallInfo>,
    /// The participant the connection is for (`per = "participant"`).
    pub participant: Option<Arc<str>>,
    /// Forwarded streams already open when the connection starts.
    pub streams: Vec<Arc<StreamInfo>>,
    /// Sample rate of the call's streams when the connection opens.
    pub rate: u32,
    /// Where returned audio goes.
    pub playback: Option<Arc<dyn PlaybackTarget>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Exponential backoff with jitter: attempt `n` (from 0) waits
/// `min(max, initial · 2ⁿ) · (1 − jitter · r)` with `r` uniform in `[0, 1)`, so jitter only ever
/// shortens a wait and never pushes it past `max`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    attempt: u32,
}

impl Backoff {
    /// A fresh schedule.
    pub(crate) fn new(cfg: &ReconnectConfig) -> Self {
        Self {
            initial: Duration::from_millis(cfg.initial_ms),
            max: Duration::from_millis(cfg.max_ms.max(cfg.initial_ms)),
            jitter: cfg.jitter.clamp(0.0, 1.0),
            attempt: 0,
        }
    }

    /// The wait before the next attempt; `r` (in `[0, 1)`) picks the jitter.
    pub(crate) fn next_delay(&mut self, r: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(24))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(1.0 - self.jitter * r.clamp(0.0, 1.0))
    }

    /// Back to the first step (after a connection that held).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The byte stream under a downstream WebSocket (TCP, or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A downstream WebSocket.
pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The URL is not a ws:// or wss:// URL with a host.
    #[error("bad url {url}: {why}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// TCP, TLS and WebSocket handshake together took longer than `connect_timeout_ms`.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// TCP connect failed.
    #[error("tcp: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup or handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The WebSocket handshake failed (HTTP status, bad upgrade).
    #[error("websocket handshake: {0}")]
    Handshake(#[from] tungstenite::Error),
}

fn tls_config() -> Result<Arc<tokio_rustls::rustls::ClientConfig>, ConnectError> {
    use tokio_rustls::rustls;
    static CFG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CFG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    })
    .clone()
    .map_err(ConnectError::Tls)
}

/// Connects to `url` (ws:// or wss://, the latter with the webpki roots), within `timeout`. The
/// upgrade carries `x-ms-call-connection-id` and `x-ms-call-correlation-id` when known, as ACS's
/// own upgrade does.
pub(crate) async fn connect(
    url: &str,
    call: &CallInfo,
    timeout: Duration,
) -> Result<Ws, ConnectError> {
    tokio::time::timeout(timeout, connect_inner(url, call))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn connect_inner(url: &str, call: &CallInfo) -> Result<Ws, ConnectError> {
    let bad = |why: &str| ConnectError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let mut req = url.into_client_request()?;
    for (name, value) in [
        ("x-ms-call-connection-id", &call.call_connection_id),
        ("x-ms-call-correlation-id", &call.correlation_id),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            req.headers_mut().insert(name, v);
        }
    }
    let uri = req.uri().clone();
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("the scheme must be ws or wss")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = if tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_UPSTREAM_MESSAGE))
        .max_frame_size(Some(MAX_UPSTREAM_MESSAGE));
    let (ws, _response) = tokio_tungstenite::client_async_with_config(req, io, Some(cfg)).await?;
    Ok(ws)
}

/// What the connection task keeps across reconnects.
struct State {
    /// Forwarded streams open now, in open order.
    streams: Vec<Arc<StreamInfo>>,
    /// The rate of the audio being forwarded (shared with the reader: the default rate of
    /// returned audio).
    rate: Arc<AtomicU32>,
    /// Connections made so far.
    connections: u32,
}

enum Outcome {
    /// The call or stream ended, or the sink went away: the task is done.
    Ended,
    /// The connection was lost: reconnect.
    Lost,
}

/// Runs one downstream connection until the call (or stream) ends.
pub(crate) async fn run(
    spec: ConnSpec,
    mut rx: mpsc::Receiver<Down>,
    mut urgent: mpsc::Receiver<String>,
) {
    let m = spec.metrics.clone();
    let mut st = State {
        streams: spec.streams.clone(),
        rate: Arc::new(AtomicU32::new(spec.rate)),
        connections: 0,
    };
    let mut backoff = Backoff::new(&spec.cfg.reconnect);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let timeout = Duration::from_millis(spec.cfg.connect_timeout_ms);
    let mut failed_before = false;
    loop {
        // Messages wait in the channel while an attempt runs (bounded by the timeout).
        match connect(&spec.url, &spec.call, timeout).await {
            Ok(ws) => {
                m.forward.connects.inc();
                if failed_before {
                    m.forward.reconnects.inc();
                }
                st.connections += 1;
                tracing::info!(call = %spec.call.label, url = %spec.url, connection = st.connections, "forward target connected");
                let began = Instant::now();
                m.forward.connections_active.inc();
                let outcome = session(&spec, &mut st, ws, &mut rx, &mut urgent).await;
                m.forward.connections_active.dec();
                if matches!(outcome, Outcome::Ended) {
                    return;
                }
                tracing::warn!(call = %spec.call.label, url = %spec.url, "forward target connection lost; reconnecting");
                if began.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
            }
            Err(e) => {
                m.forward.connect_failures.inc();
                tracing::warn!(call = %spec.call.label, url = %spec.url, error = %e, "forward target connect failed");
            }
        }
        failed_before = true;
        // Back off; what arrives meanwhile is dropped and counted (stream opens and closes are
        // kept: the next `start` lists the open streams).
        let sleep = tokio::time::sleep(backoff.next_delay(rng.random::<f64>()));
        tokio::pin!(sleep);
        let mut urgent_open = true;
        loop {
            tokio::select! {
                biased;
                _ = &mut sleep => break,
                msg = rx.recv() => {
                    if absorb(&spec, &mut st, msg) {
                        return;
                    }
                }
                u = urgent.recv(), if urgent_open => match u {
                    Some(_) => m.forward.dropped_control_disconnected.inc(),
                    None => urgent_open = false,
                },
            }
        }
    }
}

/// Handles a message while there is no connection; true when the task should end.
fn absorb(spec: &ConnSpec, st: &mut State, msg: Option<Down>) -> bool {
    let f = &spec.metrics.forward;
    match msg {
        None | Some(Down::End(_)) => return true,
        Some(Down::Audio { .. }) => f.dropped_audio_disconnected.inc(),
        Some(Down::Text(_)) => f.dropped_control_disconnected.inc(),
        Some(Down::StreamOpen(s)) => {
            st.rate.store(s.sample_rate, Ordering::Relaxed);
            st.streams.push(s);
        }
        Some(Down::StreamClose { stream, .. }) => st.streams.retain(|s| s.id != stream),
    }
    false
}

type Writer = SplitSink<Ws, Message>;

async fn send(w: &mut Writer, msg: Message, stall: Duration) -> Result<(), ()> {
    match tokio::time::timeout(stall, w.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Liveness shared with the reader: when the target was last heard from.
struct Live {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Live {
    fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn silent_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

async fn session(
    spec: &ConnSpec,
    st: &mut State,
    ws: Ws,
    rx: &mut mpsc::Receiver<Down>,
    urgent: &mut mpsc::Receiver<String>,
) -> Outcome {
    let cfg = &spec.cfg;
    let f = &spec.metrics.forward;
    let (mut w, r) = ws.split();
    let live = Arc::new(Live {
        epoch: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let mut reader = tokio::spawn(read_loop(
        r,
        Reader {
            call: spec.call.id,
            playback: spec.playback.clone(),
            metrics: spec.metrics.clone(),
            rate: st.rate.clone(),
            live: live.clone(),
        },
        cfg.encoding,
    ));
    let ping_every = Duration::from_millis(cfg.ping_interval_ms);
    let stall = if cfg.ping_interval_ms == 0 {
        STALL_WITHOUT_PING
    } else {
        (ping_every * 2).max(Duration::from_secs(2))
    };
    let rate = st.rate.load(Ordering::Relaxed);
    let bidirectional = spec
        .playback
        .as_ref()
        .is_some_and(|p| p.is_bidirectional(spec.call.id));
    let start = start_message(&Start {
        call: &spec.call,
        per: cfg.per,
        mode: cfg.mode,
        encoding: cfg.encoding,
        rate,
        participant: spec.participant.as_deref(),
        streams: &st.streams,
        bidirectional,
        connection: st.connections,
    });
    let mut first = vec![Message::text(start)];
    if cfg.mode == ForwardMode::Acs {
        first.push(Message::text(inbound_audio_metadata_json(
            rate,
            &spec.call.label,
        )));
    }
    for msg in first {
        if send(&mut w, msg, stall).await.is_err() {
            reader.abort();
            return Outcome::Lost;
        }
    }
    let mut ping = tokio::time::interval(if ping_every.is_zero() {
        Duration::from_secs(3600)
    } else {
        ping_every
    });
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is immediate
    let mut json = String::with_capacity(2048);
    let mut time = String::with_capacity(32);
    let mut urgent_open = true;
    loop {
        let mut audio = false;
        let out: Vec<Message> = tokio::select! {
            biased;
            _ = &mut reader => return Outcome::Lost,
            u = urgent.recv(), if urgent_open => match u {
                Some(text) => vec![Message::text(text)],
                None => { urgent_open = false; continue; }
            },
            _ = ping.tick(), if !ping_every.is_zero() => {
                if live.silent_for() > ping_every * 2 {
                    tracing::warn!(call = %spec.call.label, "forward target answers no pings");
                    reader.abort();
                    return Outcome::Lost;
                }
                vec![Message::Ping(Bytes::new())]
            }
            msg = rx.recv() => match msg {
                None => {
                    finish(&mut w, &mut reader, "sink stopped", stall).await;
                    return Outcome::Ended;
                }
                Some(Down::End(reason)) => {
                    finish(&mut w, &mut reader, &reason, stall).await;
                    return Outcome::Ended;
                }
                Some(Down::Audio { stream, pos, silent, payload }) => {
                    audio = true;
                    match cfg.mode {
                    ForwardMode::Pcm => vec![Message::Binary(payload)],
                    ForwardMode::Acs => {
                        let info = st.streams.iter().find(|s| s.id == stream);
                        match info {
                            Some(s) => sample_time(s, pos, &mut time),
                            None => time.clear(),
                        }
                        let participant = info.and_then(|s| s.participant.as_deref());
                        let b64 = base64_simd::STANDARD.encode_to_string(&payload);
                        inbound_audio_data_json(&mut json, &b64, &time, participant, silent);
                        vec![Message::text(json.as_str())]
                    }
                    }
                }
                Some(Down::StreamOpen(s)) => {
                    let mut msgs = Vec::with_capacity(3);
                    if s.sample_rate != st.rate.load(Ordering::Relaxed) {
                        st.rate.store(s.sample_rate, Ordering::Relaxed);
                        msgs.push(Message::text(format_message(cfg.encoding, s.sample_rate)));
                        if cfg.mode == ForwardMode::Acs {
                            msgs.push(Message::text(inbound_audio_metadata_json(s.sample_rate, &spec.call.label)));
                        }
                    }
                    msgs.push(Message::text(stream_open_message(&s)));
                    st.streams.push(s);
                    msgs
                }
                Some(Down::StreamClose { stream, stats }) => {
                    st.streams.retain(|s| s.id != stream);
                    vec![Message::text(stream_close_message(stream, &stats))]
                }
                Some(Down::Text(text)) => vec![Message::text(text)],
            },
        };
        for msg in out {
            if send(&mut w, msg, stall).await.is_err() {
                if audio {
                    f.dropped_audio_disconnected.inc();
                } else {
                    f.dropped_control_disconnected.inc();
                }
                reader.abort();
                return Outcome::Lost;
            }
        }
        if audio {
            f.frames_sent.inc();
        }
    }
}

/// Sends `end`, closes with 1000 and waits (bounded) for the target's close reply.
async fn finish(
    w: &mut Writer,
    reader: &mut tokio::task::JoinHandle<()>,
    reason: &str,
    stall: Duration,
) {
    let _ = send(w, Message::text(end_message(reason)), stall).await;
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "call ended".into(),
    };
    let _ = send(w, Message::Close(Some(close)), stall).await;
    if tokio::time::timeout(CLOSE_WAIT, &mut *reader)
        .await
        .is_err()
    {
        reader.abort();
    }
}

/// The receiving half's context.
struct Reader {
    call: crate::pipeline::frame::CallId,
    playback: Option<Arc<dyn PlaybackTarget>>,
    metrics: Arc<Metrics>,
    rate: Arc<AtomicU32>,
    live: Arc<Live>,
}

/// Returned audio of one connection: the declared format and the conversion state.
struct Returned {
    rate: Option<u32>,
    encoding: Encoding,
    carry: Vec<u8>,
    interp: Option<Interp>,
    samples: Vec<i16>,
    converted: Vec<i16>,
    b64: Vec<u8>,
    /// The playback generation this target's audio belongs to: the call's at connect, and the
    /// call's current one whenever the target stops playback (its acknowledgement of a
    /// barge-in). Audio sent before that acknowledgement is older than the barge-in: refused.
    generation: u64,
}

impl Returned {
    fn play(&mut self, ctx: &Reader) {
        let f = &ctx.metrics.forward;
        let pb = match &ctx.playback {
            Some(pb) if pb.is_bidirectional(ctx.call) => pb,
            _ => {
                f.playback_not_bidirectional.inc();
                self.samples.clear();
                return;
            }
        };
        let from = self
            .rate
            .unwrap_or_else(|| ctx.rate.load(Ordering::Relaxed));
        let to = pb.sample_rate(ctx.call).unwrap_or(from);
        let samples = if from == to {
            &self.samples
        } else {
            let interp = match &mut self.interp {
                Some(i) if i.rates() == (from, to) => i,
                slot => slot.insert(Interp::new(from, to)),
            };
            self.converted.clear();
            interp.push(&self.samples, &mut self.converted);
            &self.converted
        };
        if !samples.is_empty() {
            match pb.enqueue_generation(ctx.call, samples, to, self.generation) {
                Enqueued::Queued => f.playback_samples.inc_by(samples.len() as u64),
                Enqueued::Overrun(lost) => f
                    .playback_samples
                    .inc_by(samples.len().saturating_sub(lost) as u64),
                Enqueued::NoCall => f.playback_not_bidirectional.inc(),
                Enqueued::Stale => f.playback_stale.inc(),
            }
        }
        self.samples.clear();
    }

    /// Plays what the rate converter still holds (the target went quiet) and resets it.
    fn flush(&mut self, ctx: &Reader) {
        if let Some(mut interp) = self.interp.take() {
            self.converted.clear();
            interp.finish(&mut self.converted);
            let to = interp.rates().1;
            if !self.converted.is_empty() {
                if let Some(pb) = ctx
                    .playback
                    .as_ref()
                    .filter(|p| p.is_bidirectional(ctx.call))
                {
                    if let Enqueued::Queued =
                        pb.enqueue_generation(ctx.call, &self.converted, to, self.generation)
                    {
                        ctx.metrics
                            .forward
                            .playback_samples
                            .inc_by(self.converted.len() as u64);
                    }
                }
            }
        }
    }

    fn stop(&mut self, ctx: &Reader) {
        self.interp = None;
        self.carry.clear();
        match &ctx.playback {
            Some(pb) if pb.is_bidirectional(ctx.call) => {
                self.generation = pb.generation(ctx.call);
                if pb.stop(ctx.call) {
                    ctx.metrics.forward.stops_target.inc();
                }
            }
            _ => ctx.metrics.forward.playback_not_bidirectional.inc(),
        }
    }
}

async fn read_loop(mut r: SplitStream<Ws>, ctx: Reader, encoding: Encoding) {
    let mut ret = Returned {
        rate: None,
        encoding,
        carry: Vec::new(),
        interp: None,
        samples: Vec::with_capacity(4096),
        converted: Vec::with_capacity(4096),
        b64: Vec::with_capacity(4096),
        generation: ctx
            .playback
            .as_ref()
            .map_or(0, |pb| pb.generation(ctx.call)),
    };
    ctx.live.touch();
    read_messages(&mut r, &ctx, &mut ret).await;
    ret.flush(&ctx); // the connection ended: what the converter holds still plays
}

async fn read_messages(r: &mut SplitStream<Ws>, ctx: &Reader, ret: &mut Returned) {
    loop {
        // a converter holding the tail of an utterance lets it out once the target goes quiet
        let next = if ret.interp.is_some() {
            match tokio::time::timeout(TAIL_FLUSH, r.next()).await {
                Ok(m) => m,
                Err(_) => {
                    ret.flush(ctx);
                    continue;
                }
            }
        } else {
            r.next().await
        };
        let Some(msg) = next else { return };
        ctx.live.touch();
        match msg {
            Ok(Message::Binary(b)) => {
                decode_pcm(ret.encoding, &mut ret.carry, &b, &mut ret.samples);
                ret.play(ctx);
            }
            Ok(Message::Text(t)) => match parse_upstream_text(t.as_bytes()) {
                Ok(Upstream::AcsAudio(data)) => {
                    if decode_base64_into(data.as_bytes(), &mut ret.b64).is_ok() {
                        let mut carry = Vec::new(); // ACS messages hold whole samples
                        decode_pcm(Encoding::PcmS16le, &mut carry, &ret.b64, &mut ret.samples);
                        ret.play(ctx);
                    } else {
                        ctx.metrics.forward.playback_malformed.inc();
                    }
                }
                Ok(Upstream::Stop) => ret.stop(ctx),
                Ok(Upstream::Format { rate, encoding }) => {
                    ret.flush(ctx);
                    if rate.is_some() {
                        ret.rate = rate;
                    }
                    if let Some(e) = encoding {
                        ret.encoding = e;
                    }
                    ret.carry.clear();
                }
                Ok(Upstream::Ignored) => {}
                Err(e) => {
                    ctx.metrics.forward.playback_malformed.inc();
                    tracing::debug!(error = %e, "forward target sent a message the gateway cannot read");
                }
            },
            Ok(Message::Close(_)) => return,
            Ok(_) => {} // pings are answered by tungstenite; pongs only prove liveness
            Err(e) => {
                tracing::debug!(error = %e, "forward target connection error");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;

    fn cfg(initial_ms: u64, max_ms: u64, jitter: f64) -> ReconnectConfig {
        ReconnectConfig {
            initial_ms,
            max_ms,
            jitter,
        }
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(&cfg(100, 1000, 0.0));
        let got: Vec<u64> = (0..7).map(|_| ms(b.next_delay(0.99))).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(ms(b.next_delay(0.5)), 100);
        // many attempts never overflow
        let mut b = Backoff::new(&cfg(100, 60_000, 0.0));
        for _ in 0..200 {
            assert!(b.next_delay(0.0) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn jitter_only_shortens_and_is_deterministic_for_a_seed() {
        let schedule = |seed: u64| -> Vec<u64> {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut b = Backoff::new(&cfg(200, 5000, 0.5));
            (0..8)
                .map(|_| ms(b.next_delay(rng.random::<f64>())))
                .collect()
        };
        let a = schedule(7);
        assert_eq!(a, schedule(7), "same seed, same schedule");
        assert_ne!(a, schedule(8), "another seed, another schedule");
        let bases = [200u64, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for (d, base) in a.iter().zip(bases) {
            assert!(*d <= base && *d >= base / 2, "{d} vs base {base}");
        }
        // injected extremes
        let mut b = Backoff::new(&cfg(200, 5000, 0.5));
        assert_eq!(ms(b.next_delay(0.0)), 200);
        assert_eq!(ms(b.next_delay(1.0)), 200, "400 · (1 − 0.5)");
    }
}
