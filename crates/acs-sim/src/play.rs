//! EDGE: plays planned frames into a media WebSocket like ACS does: connect with ACS's upgrade
//! headers, send each frame at its scheduled time, close with 1000 (or drop the connection when
//! the plan says so), and report what happened ([`play`], [`play_observed`]).
//!
//! Real-time pacing never drifts: frame `k` is sent at `start + at_k` by `sleep_until` on an
//! absolute deadline, so a late wake-up makes the next frames go out back to back (burst catch-up)
//! rather than shifting the rest of the stream. While waiting, server messages are read, so a
//! close from the server is noticed at once and pings are answered.

use std::time::Duration;

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::audio::FRAME_MS;
use super::error::{ConnectFailure, SimError};
use super::plan::{PlannedFrame, PlannedKind};

/// How long to wait for the server's answer to our close frame.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Default bound on TCP connect + WebSocket handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client side of a media WebSocket.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames per socket write with [`Pacing::Fast`].
pub const FAST_BATCH: usize = 16;

/// When frames are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pacing {
    /// Each frame at `start + at` (20 ms per slot), like ACS.
    Realtime,
    /// As fast as the socket takes them, written in batches of [`FAST_BATCH`] frames (one
    /// `write` each), so the receiver reads several frames per wake-up, as from a sender that
    /// is ahead of it.
    Fast,
}

/// A close frame (code and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// Close code, e.g. 1000.
    pub code: u16,
    /// Close reason text.
    pub reason: String,
}

impl From<CloseFrame> for CloseInfo {
    fn from(f: CloseFrame) -> Self {
        CloseInfo {
            code: f.code.into(),
            reason: f.reason.to_string(),
        }
    }
}

impl std::fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.code, self.reason)
    }
}

/// How a played stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every frame was sent and we closed with 1000; `reply` is the server's close frame, if
    /// one arrived within 2 s.
    Completed {
        /// The server's close frame.
        reply: Option<CloseInfo>,
    },
    /// The server sent a close frame before we were done (`None`: a close frame without a
    /// payload).
    ServerClosed(Option<CloseInfo>),
    /// The plan dropped the connection without a close frame.
    Disconnected,
    /// The connection broke (I/O error, reset, EOF without a close frame).
    Failed(String),
}

/// What [`play`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// Messages sent (every kind, duplicates and malformed included).
    pub messages_sent: u64,
    /// WebSocket payload bytes sent.
    pub bytes_sent: u64,
    /// `AudioData` messages sent per participant index (copies included).
    pub audio_frames: Vec<u64>,
    /// PCM bytes carried by those messages, per participant index.
    pub pcm_bytes: Vec<u64>,
    /// Malformed messages sent.
    pub malformed_sent: u64,
    /// Text/binary messages received from the server.
    pub messages_received: u64,
    /// TCP connect + WebSocket handshake time.
    pub connect_time: Duration,
    /// From the end of the handshake to the close (or disconnect, or failure).
    pub duration: Duration,
    /// Worst send lag (actual − scheduled send time) in real-time pacing.
    pub max_lag: Duration,
    /// How it ended.
    pub end: StreamEnd,
}

impl StreamReport {
    /// Ended as planned: completed, or disconnected on purpose.
    pub fn clean(&self) -> bool {
        matches!(
            self.end,
            StreamEnd::Completed { .. } | StreamEnd::Disconnected
        )
    }

    fn count(&mut self, kind: &PlannedKind, bytes: usize) {
        self.messages_sent += 1;
        self.bytes_sent += bytes as u64;
        match *kind {
            PlannedKind::Audio {
                participant,
                pcm_bytes,
                ..
            } => {
                if self.audio_frames.len() <= participant {
                    self.audio_frames.resize(participant + 1, 0);
                    self.pcm_bytes.resize(participant + 1, 0);
                }
                self.audio_frames[participant] += 1;
                self.pcm_bytes[participant] += u64::from(pcm_bytes);
            }
            PlannedKind::Malformed { .. } => self.malformed_sent += 1,
            _ => {}
        }
    }
}

/// One sent message, as shown to a [`PlayObserver`].
#[derive(Debug, Clone, Copy)]
pub struct SentFrame<'a> {
    /// What was sent.
    pub kind: &'a PlannedKind,
    /// Payload bytes.
    pub bytes: usize,
    /// Actual − scheduled send time (after the write completed); zero in fast pacing.
    pub lag: Duration,
}

/// Hooks into [`play_observed`] (live counters and lag histograms for load runs).
pub trait PlayObserver: Send {
    /// The WebSocket handshake completed after `connect_time`.
    fn connected(&mut self, connect_time: Duration) {
        let _ = connect_time;
    }
    /// A message was written to the socket.
    fn sent(&mut self, frame: &SentFrame<'_>) {
        let _ = frame;
    }
    /// A text or binary message arrived from the server (bidirectional audio, for instance).
    /// Called as soon as it is read; reads happen while waiting for the next send slot, so in
    /// real-time pacing a message is seen within a frame's time of its arrival.
    fn received(&mut self, payload: &[u8]) {
        let _ = payload;
    }
}

/// The observer that does nothing.
impl PlayObserver for () {}

/// The upgrade headers ACS sends: `x-ms-call-connection-id`, `x-ms-call-correlation-id`, and
/// `Authorization: Bearer <token>` when a token is given.
pub fn acs_headers(
    call_connection_id: &str,
    correlation_id: &str,
    bearer: Option<&str>,
) -> Vec<(String, String)> {
    let mut h = vec![
        (
            "x-ms-call-connection-id".to_string(),
            call_connection_id.to_string(),
        ),
        (
            "x-ms-call-correlation-id".to_string(),
            correlation_id.to_string(),
        ),
    ];
    if let Some(t) = bearer {
        h.push(("authorization".to_string(), format!("Bearer {t}")));
    }
    h
}

/// Classifies an I/O error from connecting.
pub fn classify_io(e: &std::io::Error) -> ConnectFailure {
    // EMFILE (per process) and ENFILE (system-wide) are 24 and 23 on Linux and macOS.
    if let Some(24 | 23) = e.raw_os_error() {
        return ConnectFailure::TooManyOpenFiles;
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
        std::io::ErrorKind::TimedOut => ConnectFailure::Timeout,
        _ => ConnectFailure::Other,
    }
}

/// Opens the media WebSocket at `url` (`ws://` or `wss://`… only `ws://` is useful against a
/// local gateway) with extra upgrade `headers`, Nagle disabled, bounded by `timeout`.
pub async fn connect(
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<WsStream, SimError> {
    let mut req = url.into_client_request().map_err(|e| SimError::Url {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    for (name, value) in headers {
        let bad = |reason: String| SimError::Header {
            name: name.clone(),
            reason,
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let v = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        req.headers_mut().insert(n, v);
    }
    let fail = |kind, detail: String| SimError::Connect {
        url: url.to_string(),
        kind,
        detail,
    };
    match tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async_with_config(req, None, true),
    )
    .await
    {
        Err(_) => Err(fail(
            ConnectFailure::Timeout,
            format!("no handshake within {timeout:?}"),
        )),
        Ok(Ok((ws, _resp))) => Ok(ws),
        Ok(Err(e)) => Err(match e {
            WsError::Io(io) => fail(classify_io(&io), io.to_string()),
            WsError::Http(resp) => {
                let status = resp.status();
                fail(
                    ConnectFailure::HttpStatus(status.as_u16()),
                    status.to_string(),
                )
            }
            WsError::Url(u) => SimError::Url {
                url: url.to_string(),
                reason: u.to_string(),
            },
            other => fail(ConnectFailure::Other, other.to_string()),
        }),
    }
}

/// Connects and plays `frames` (see [`play_observed`]).
pub async fn play<I>(
    url: &str,
    headers: &[(String, String)],
    frames: I,
    pacing: Pacing,
) -> Result<StreamReport, SimError>
where
    I: IntoIterator<Item = PlannedFrame>,
    I::IntoIter: Send,
{
    play_observed(url, headers, frames, pacing, &mut ()).await
}

/// Connects to `url` with `headers`, sends `frames` in order (each at `start + at` in real-time
/// pacing, `start` being the end of the handshake), then closes with 1000 — 20 ms after the last
/// frame's slot in real-time pacing, i.e. when its audio would have finished — and waits up to
/// 2 s for the server's close. A [`PlannedKind::Disconnect`] frame drops the connection there
/// instead. `frames` may be a lazy iterator (load runs generate frames on the fly).
///
/// Only a failure to connect is an error; everything after the handshake ends up in
/// [`StreamReport::end`].
pub async fn play_observed<I, O>(
    url: &str,
    headers: &[(String, String)],
    frames: I,
    pacing: Pacing,
    observer: &mut O,
) -> Result<StreamReport, SimError>
where
    I: IntoIterator<Item = PlannedFrame>,
    I::IntoIter: Send,
    O: PlayObserver + ?Sized,
{
    let t0 = Instant::now();
    let ws = connect(url, headers, DEFAULT_CONNECT_TIMEOUT).await?;
    let start = Instant::now();
    let mut report = StreamReport {
        messages_sent: 0,
        bytes_sent: 0,
        audio_frames: Vec::new(),
        pcm_bytes: Vec::new(),
        malformed_sent: 0,
        messages_received: 0,
        connect_time: start - t0,
        duration: Duration::ZERO,
        max_lag: Duration::ZERO,
        end: StreamEnd::Failed(String::new()),
    };
    observer.connected(report.connect_time);

    let (mut tx, rx) = ws.split();
    let mut rx = Reader { rx, received: 0 };
    let realtime = pacing == Pacing::Realtime;
    let mut last_at = Duration::ZERO;
    let mut ended: Option<StreamEnd> = None;
    // Fast pacing: frames fed but not yet flushed to the socket.
    let mut unflushed = 0usize;

    for frame in frames {
        if let Some(end) = rx.drain(observer) {
            ended = Some(end);
            break;
        }
        let scheduled = start + frame.at;
        if realtime {
            if let Some(end) = rx.wait_until(scheduled, observer).await {
                ended = Some(end);
                break;
            }
        }
        last_at = frame.at;
        if frame.kind == PlannedKind::Disconnect {
            ended = Some(StreamEnd::Disconnected);
            break;
        }
        let bytes = frame.text.len();
        let msg = Message::Text(frame.text.into());
        let sent = if realtime {
            tx.send(msg).await
        } else {
            unflushed += 1;
            match tx.feed(msg).await {
                Ok(()) if unflushed >= FAST_BATCH => {
                    unflushed = 0;
                    tx.flush().await
                }
                r => r,
            }
        };
        if let Err(e) = sent {
            ended = Some(rx.after_send_error(e, observer).await);
            break;
        }
        let lag = if realtime {
            Instant::now().saturating_duration_since(scheduled)
        } else {
            Duration::ZERO
        };
        report.max_lag = report.max_lag.max(lag);
        report.count(&frame.kind, bytes);
        observer.sent(&SentFrame {
            kind: &frame.kind,
            bytes,
            lag,
        });
    }

    // What fast pacing fed goes out before the normal end or a planned disconnect.
    if unflushed > 0 && matches!(ended, None | Some(StreamEnd::Disconnected)) {
        if let Err(e) = tx.flush().await {
            ended = Some(rx.after_send_error(e, observer).await);
        }
    }
    if ended.is_none() && realtime {
        ended = rx
            .wait_until(start + last_at + Duration::from_millis(FRAME_MS), observer)
            .await;
    }
    report.end = match ended {
        Some(StreamEnd::Disconnected) => {
            report.duration = start.elapsed();
            report.messages_received = rx.received;
            report.end = StreamEnd::Disconnected;
            // Dropping both halves closes the TCP connection with no close frame.
            drop(tx);
            drop(rx);
            return Ok(report);
        }
        Some(StreamEnd::ServerClosed(info)) => {
            report.duration = start.elapsed();
            // Flush tungstenite's queued close reply; the server may already be gone.
            let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, tx.close()).await;
            StreamEnd::ServerClosed(info)
        }
        Some(other) => {
            report.duration = start.elapsed();
            other
        }
        None => {
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }));
            let sent = tx.send(close).await;
            report.duration = start.elapsed();
            match sent {
                Ok(()) => StreamEnd::Completed {
                    reply: rx.close_reply(observer).await,
                },
                Err(e) => rx.after_send_error(e, observer).await,
            }
        }
    };
    report.messages_received = rx.received;
    Ok(report)
}

/// The read half plus what it has seen.
struct Reader {
    rx: futures_util::stream::SplitStream<WsStream>,
    received: u64,
}

impl Reader {
    /// Handles one read result; `Some` when the connection is over.
    fn on<O: PlayObserver + ?Sized>(
        &mut self,
        m: Option<Result<Message, WsError>>,
        observer: &mut O,
    ) -> Option<StreamEnd> {
        match m {
            Some(Ok(Message::Close(f))) => Some(StreamEnd::ServerClosed(f.map(CloseInfo::from))),
            Some(Ok(Message::Text(t))) => {
                self.received += 1;
                observer.received(t.as_bytes());
                None
            }
            Some(Ok(Message::Binary(b))) => {
                self.received += 1;
                observer.received(&b);
                None
            }
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(StreamEnd::Failed(e.to_string())),
            None => Some(StreamEnd::Failed(
                "connection closed without a close frame".into(),
            )),
        }
    }

    /// Reads whatever is already buffered, without waiting.
    fn drain<O: PlayObserver + ?Sized>(&mut self, observer: &mut O) -> Option<StreamEnd> {
        while let Some(m) = self.rx.next().now_or_never() {
            if let Some(end) = self.on(m, observer) {
                return Some(end);
            }
        }
        None
    }

    /// Reads until `deadline`; `Some` if the connection ended first.
    async fn wait_until<O: PlayObserver + ?Sized>(
        &mut self,
        deadline: Instant,
        observer: &mut O,
    ) -> Option<StreamEnd> {
        loop {
            tokio::select! {
                biased;
                m = self.rx.next() => {
                    if let Some(end) = self.on(m, observer) {
                        return Some(end);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// After a failed send: a close frame the server sent (read within 500 ms) explains it
    /// better than the write error.
    async fn after_send_error<O: PlayObserver + ?Sized>(
        &mut self,
        e: WsError,
        observer: &mut O,
    ) -> StreamEnd {
        let deadline = Instant::now() + Duration::from_millis(500);
        match tokio::time::timeout_at(deadline, async {
            loop {
                let m = self.rx.next().await;
                match self.on(m, observer) {
                    Some(end @ StreamEnd::ServerClosed(_)) => return Some(end),
                    Some(_) => return None,
                    None => {}
                }
            }
        })
        .await
        {
            Ok(Some(end)) => end,
            _ => StreamEnd::Failed(e.to_string()),
        }
    }

    /// Waits (bounded) for the server's answer to our close frame.
    async fn close_reply<O: PlayObserver + ?Sized>(
        &mut self,
        observer: &mut O,
    ) -> Option<CloseInfo> {
        tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
            loop {
                let m = self.rx.next().await;
                match self.on(m, observer) {
                    Some(StreamEnd::ServerClosed(info)) => return info,
                    Some(_) => return None,
                    None => {}
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}
