//! One media connection: reads WebSocket messages, hands each to the call's
//! [`CallPipeline`], and closes with the documented code when
//! something is wrong or the gateway shuts down. Generic over the byte stream, so tests drive it
//! through an in-memory duplex pipe without sockets.
//!
//! | event | close code | reason (prefix) | metric |
//! |---|---|---|---|
//! | message over `max_frame_bytes` | 1009 | `message too large` | `decode_errors_total{reason="frame_too_large"}` |
//! | text message not UTF-8 (whole or across fragments) | 1007 | `text message is not valid UTF-8` | `decode_errors_total{reason="not_utf8"}` |
//! | WebSocket protocol violation (unmasked, reserved bits, bad opcode, stray continuation, ...) | 1002 | `protocol violation: ...` | `decode_errors_total{reason="protocol_violation"}` |
//! | not UTF-8 / not JSON / no kind / no payload | 1007 | the parse error | `decode_errors_total{reason=...}` |
//! | AudioMetadata with an unsupported format | 1003 | `unsupported audio format` | `decode_errors_total{reason="unsupported_format"}` |
//! | no message for `idle_timeout_ms` | 1001 | `idle timeout` | `ws_closes_total{code="1001"}` |
//! | gateway shutdown | 1001 | `gateway shutting down` | `ws_closes_total{code="1001"}` |
//!
//! Audio problems inside a well-formed message (bad base64, odd length, ...) drop that message
//! only and are counted; the connection goes on. Whatever ends the connection, every stream of
//! the call is closed and its recordings finalised.
//!
//! A close the gateway starts ends gracefully, also after tungstenite gave up reading (a
//! WebSocket error leaves its stream unreadable, but it can still send): the close frame is
//! flushed, the peer's close awaited, then the write half is shut (FIN) and whatever the peer
//! still sends is read and discarded until it closes or [`CLOSE_WAIT`] has passed. Dropping a
//! socket with unread input makes the kernel send a reset, and a reset discards the close frame
//! a peer has not read yet.
//!
//! The connection also gives its call the time since it opened ([`CallPipeline::set_elapsed`])
//! on every housekeeping tick: the timeline fills gaps only as far as that time allows.

use super::{IngressState, MediaSlot};
use crate::metrics::BadFrame;
use crate::pipeline::{CallInfo, CallPipeline, EndReason};
use tracing::Instrument;

use super::playback::{run_writer, CallPlayback, WriterCmd};
use crate::pipeline::Handled;
use crate::protocol::{parse_inbound, Inbound};
use crate::shutdown::Step;
use futures_util::stream::SplitStream;
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// tungstenite's read buffer per connection (see `run`).
pub(crate) const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How long the gateway waits for the peer's answer to its close frame.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Longest interval of the connection's one housekeeping timer: it flushes the call's batched
/// metrics and checks the idle timeout (a quarter of `idle_timeout` when that is shorter).
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// The span of one media connection, entered by its task and its playback writer, so every log
/// line of the connection carries the call's ids: `call` (the label), `conn` (the gateway's
/// connection number) and, when known, `call_id` (the gateway call id the control plane gave
/// the IncomingCall), `call_connection_id` and `server_call_id` — the same field names the
/// control plane's spans use (`control::trace`).
pub(crate) fn span(call: &CallInfo) -> tracing::Span {
    let span = tracing::info_span!(
        "media",
        call = %call.label,
        conn = call.id,
        call_id = tracing::field::Empty,
        call_connection_id = tracing::field::Empty,
        server_call_id = tracing::field::Empty,
    );
    let fields = [
        ("call_id", &call.ids.gateway_call_id),
        ("call_connection_id", &call.call_connection_id),
        ("server_call_id", &call.ids.server_call_id),
    ];
    for (name, v) in fields {
        if let Some(v) = v {
            span.record(name, tracing::field::display(v));
        }
    }
    span
}

/// Serves one upgraded media connection to its end.
///
/// `bidirectional`: the connection accepts outbound audio (the call was answered with
/// `enableBidirectional`, or `media.bidirectional` is set); it is then registered with the
/// playback hub and a writer task owning the socket's sending half paces playback to ACS.
/// Otherwise the reading task owns the whole socket: no writer task, no lock per message.
pub(crate) async fn run<S>(
    io: S,
    mut call: CallPipeline,
    st: Arc<IngressState>,
    slot: MediaSlot,
    bidirectional: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // tungstenite zero-fills its read buffer up to `read_buffer_size` before every read (and a
    // readiness poll reads twice per message): its 128 KiB default made memset 26 % of the
    // gateway's CPU under load. An ACS message is 0.9-1.4 KiB; 4 KiB still takes a few per read.
    let cfg = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(st.cfg.max_frame_bytes))
        .max_frame_size(Some(st.cfg.max_frame_bytes));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg)).await;
    let call_id = call.call().id;
    tracing::info!(call = %call.call().label, id = call_id, bidirectional, "media connection open");
    let (reason, ws, linger_until) = if bidirectional {
        let (sink, stream) = ws.split();
        let pb = st.playback.register_call(
            call.call(),
            call.sample_rate(),
            st.pipeline.fanout().clone(),
        );
        // what the writer sends is recorded as the call's outbound stream
        pb.record_outbound(call.outbound_track());
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let writer = tokio::spawn(
            run_writer(sink, Some(pb.clone()), cmd_rx, st.metrics.clone())
                .instrument(tracing::Span::current()),
        );
        let mut conn = Conn::new(Io::Split {
            rx: stream,
            writer: cmd_tx,
        });
        let reason = serve(&mut conn, &mut call, &st, Some(&pb)).await;
        st.playback.unregister(call_id);
        let linger_until = conn.linger_until;
        let Io::Split { rx, writer: cmds } = conn.io else {
            unreachable!("built split above")
        };
        drop(cmds); // the writer ends (after the close frame, if one was asked for)
        let ws = match tokio::time::timeout(CLOSE_WAIT, writer).await {
            Ok(Ok(sink)) => rx.reunite(sink).ok(),
            _ => None,
        };
        // operator playbacks still pending end now, before the call's end reaches the sinks
        pb.items.finish();
        (reason, ws, linger_until)
    } else {
        let mut conn = Conn::new(Io::Whole(Box::new(ws)));
        let reason = serve(&mut conn, &mut call, &st, None).await;
        let Io::Whole(ws) = conn.io else {
            unreachable!("built whole above")
        };
        (reason, Some(*ws), conn.linger_until)
    };
    tracing::info!(call = %call.call().label, id = call_id, %reason, "media connection ended");
    let shutting_down = reason == EndReason::Shutdown;
    call.finish(reason);
    if let (Some(mut ws), Some(until)) = (ws, linger_until) {
        linger(ws.get_mut(), until).await;
    }
    if shutting_down {
        st.shutdown.record(Step::ConnectionClosed);
    }
    drop(slot);
}

/// After the gateway's close frame: shuts the write half (FIN, so the peer reads the close frame
/// and then end of stream) and reads and discards whatever the peer still sends until it closes
/// or `until`. A socket dropped with unread input is reset, and the reset would destroy the close
/// frame on a peer that has not read it yet.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, until: Instant) {
    let _ = tokio::time::timeout_at(until, async {
        let _ = io.shutdown().await;
        let mut sink = [0u8; 2048];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// What a WebSocket read error means for the connection: the close to send (code, reason and
/// the counted reason), or `None` when the peer is simply gone.
fn ws_error_close(e: &WsError) -> Option<(u16, BadFrame, String)> {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => Some((
            1009,
            BadFrame::FrameTooLarge,
            format!("message too large: {size} bytes, limit {max_size}"),
        )),
        WsError::Capacity(c) => Some((1009, BadFrame::FrameTooLarge, format!("{c}"))),
        // a text message (whole, or put together from fragments split anywhere, even inside a
        // character) that is not UTF-8: invalid data, like a binary frame that is not UTF-8
        WsError::Utf8(_) => Some((
            1007,
            BadFrame::NotUtf8,
            "text message is not valid UTF-8".into(),
        )),
        // the TCP connection ended without a close frame: nobody to tell
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(p) => Some((
            1002,
            BadFrame::ProtocolViolation,
            cut_reason(format!("protocol violation: {p}")),
        )),
        WsError::AttackAttempt => Some((
            1002,
            BadFrame::ProtocolViolation,
            "protocol violation: attack attempt".into(),
        )),
        _ => None,
    }
}

/// A close reason fits in 123 bytes: cut on a char boundary at 120.
fn cut_reason(mut s: String) -> String {
    if s.len() > 120 {
        let mut cut = 120;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The socket as the reading task holds it, and when the gateway started closing it.
struct Conn<S> {
    io: Io<S>,
    /// Set when the gateway sent a close frame: the end of the close handshake and of the
    /// linger after it ([`linger`]).
    linger_until: Option<Instant>,
}

/// Whole (the reading task also writes the close frames), or the reading half of a
/// bidirectional connection whose writer task sends everything.
enum Io<S> {
    Whole(Box<WebSocketStream<S>>),
    Split {
        rx: SplitStream<WebSocketStream<S>>,
        writer: mpsc::Sender<WriterCmd>,
    },
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn new(io: Io<S>) -> Self {
        Self {
            io,
            linger_until: None,
        }
    }

    async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        match &mut self.io {
            Io::Whole(ws) => ws.next().await,
            Io::Split { rx, .. } => rx.next().await,
        }
    }

    /// The peer sent a close frame: tungstenite queued the reply; send it.
    async fn answer_close(&mut self) {
        match &mut self.io {
            Io::Whole(ws) => {
                // a flush writes the queued reply (a send would be refused after the peer's close)
                let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::flush(&mut **ws)).await;
            }
            Io::Split { writer, .. } => {
                let _ = writer.send(WriterCmd::Finish).await;
            }
        }
    }

    /// Sends a close frame, then waits (bounded) for the peer's close. Works after a read error
    /// too (tungstenite still sends then; its stream just ends); the socket is closed after
    /// [`linger`] once the call is finished.
    async fn close(&mut self, st: &IngressState, code: u16, reason: &str) {
        st.metrics.closed_with(code);
        let until = Instant::now() + CLOSE_WAIT;
        self.linger_until = Some(until);
        let _ = tokio::time::timeout_at(until, async {
            let sent = match &mut self.io {
                Io::Whole(ws) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.to_owned().into(),
                    };
                    ws.send(Message::Close(Some(frame))).await.is_ok()
                }
                Io::Split { writer, .. } => writer
                    .send(WriterCmd::Close(code, reason.to_owned()))
                    .await
                    .is_ok(),
            };
            if sent {
                while let Some(Ok(_)) = self.recv().await {}
            }
        })
        .await;
    }
}

/// The connection's view of the gateway's drain signal, cheap to poll on every message: the
/// shared notification (a lock-protected waiter list every connection is on) is polled only
/// when it has woken this connection, otherwise a poll is one atomic swap.
struct DrainWatch<F> {
    inner: Pin<Box<F>>,
    flag: Arc<WakeFlag>,
}

#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future<Output = ()>> DrainWatch<F> {
    fn new(inner: F) -> Self {
        let flag = Arc::new(WakeFlag::default());
        flag.woken.store(true, Ordering::Relaxed); // the first poll registers with the signal
        Self {
            inner: Box::pin(inner),
            flag,
        }
    }
}

impl<F: Future<Output = ()>> Future for DrainWatch<F> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.flag.task.register(cx.waker());
        if this.flag.woken.swap(false, Ordering::AcqRel) {
            let waker = Waker::from(this.flag.clone());
            if this
                .inner
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

async fn serve<S>(
    conn: &mut Conn<S>,
    call: &mut CallPipeline,
    st: &IngressState,
    pb: Option<&CallPlayback>,
) -> EndReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One drain subscription and one timer for the connection's whole life, never one per
    // message: the timer ticks at most once a second to flush the call's metrics and to check
    // the idle timeout against a message counter (no clock read per message).
    let mut drain = DrainWatch::new(st.shutdown.draining());
    let idle_timeout = st.cfg.idle_timeout;
    let tick = TICK.min(idle_timeout / 4).max(Duration::from_millis(1));
    let timer = tokio::time::sleep(tick);
    tokio::pin!(timer);
    let opened = Instant::now();
    let mut last_activity = opened;
    let mut messages: u64 = 0;
    let mut seen_at_tick: u64 = 0;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut drain => {
                conn.close(st, 1001, "gateway shutting down").await;
                return EndReason::Shutdown;
            }
            () = &mut timer => {
                let now = Instant::now();
                if messages != seen_at_tick {
                    seen_at_tick = messages;
                    last_activity = now;
                }
                call.set_elapsed(now.saturating_duration_since(opened));
                call.flush_metrics();
                if now.saturating_duration_since(last_activity) >= idle_timeout {
                    let reason = "idle timeout";
                    conn.close(st, 1001, reason).await;
                    return EndReason::ClosedByGateway {
                        code: 1001,
                        reason: reason.into(),
                    };
                }
                let idle_at = last_activity + idle_timeout;
                timer.as_mut().reset(idle_at.min(now + tick));
                continue;
            }
            n = conn.recv() => n,
        };
        messages += 1;
        let msg = match next {
            None => return EndReason::Disconnected,
            Some(Ok(m)) => m,
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return EndReason::PeerClosed
            }
            Some(Err(e)) => {
                tracing::debug!(call = %call.call().label, error = %e, "websocket error");
                let Some((code, counted, reason)) = ws_error_close(&e) else {
                    return EndReason::Disconnected;
                };
                st.metrics.bad_frame(counted);
                tracing::warn!(call = %call.call().label, code, %reason, "closing media connection");
                conn.close(st, code, &reason).await;
                return EndReason::ClosedByGateway { code, reason };
            }
        };
        let payload: &[u8] = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            Message::Close(_) => {
                conn.answer_close().await;
                return EndReason::PeerClosed;
            }
            // tungstenite answers pings itself; pongs and raw frames carry nothing for us
            _ => continue,
        };
        let started = std::time::Instant::now();
        let handled = match &msg {
            // tungstenite validated the text's UTF-8: the pipeline does not check it again
            Message::Text(t) => call.handle_text(t.as_str()),
            _ => call.handle(payload),
        };
        if let Ok(h) = handled {
            if h.was_audio_data() {
                call.record_frame_time(started.elapsed());
            }
        }
        match handled {
            Ok(Handled::Audio) => {
                if let Some(pb) = pb {
                    pb.heard(started, call.heard_position());
                }
            }
            Ok(Handled::Metadata) => {
                if let Some(pb) = pb {
                    pb.set_rate(call.sample_rate());
                }
            }
            // events are rare (never AudioData): parsing again to find a MarkData costs nothing
            // on the audio path
            Ok(Handled::Event) => {
                if let (Some(pb), Ok(Inbound::MarkData(m))) = (pb, parse_inbound(payload)) {
                    if let Some(id) = m.id.as_deref() {
                        pb.items.on_mark(id, m.status.as_deref());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let (code, reason) = (e.close_code(), e.close_reason());
                tracing::warn!(call = %call.call().label, code, %reason, "closing media connection");
                conn.close(st, code, &reason).await;
                return EndReason::ClosedByGateway { code, reason };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Socket-free: the connection task runs over an in-memory duplex pipe.
    use super::*;
    use crate::ingress::{IngressConfig, IngressState};
    use crate::metrics::Metrics;
    use crate::pipeline::sink::{spawn_blocking_sink, QueueConfig};
    use crate::pipeline::{FanOut, Pipeline, PipelineConfig};
    use crate::shutdown::Shutdown;
    use crate::sinks::null::NullSink;
    use futures_util::SinkExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn state(
        max_frame_bytes: usize,
        idle: Duration,
    ) -> (
        Arc<IngressState>,
        Arc<AtomicU64>,
        crate::pipeline::sink::SinkWorkers,
    ) {
        let metrics = Metrics::new();
        let samples = Arc::new(AtomicU64::new(0));
        let s2 = samples.clone();
        let w = spawn_blocking_sink(
            "null",
            move |_| Box::new(NullSink::new(s2.clone())),
            &QueueConfig::default(),
            metrics.sink("null"),
        )
        .unwrap();
        let pipeline = Pipeline::new(
            PipelineConfig::default(),
            FanOut::new(vec![w.handle.clone()]),
            metrics.clone(),
        );
        let st = IngressState::new(
            IngressConfig {
                max_connections: 4,
                max_frame_bytes,
                handshake_timeout: Duration::from_secs(1),
                max_body_bytes: crate::control::http::MAX_BODY_BYTES,
                body_timeout: Duration::from_secs(1),
                idle_timeout: idle,
                bidirectional: false,
                headroom: crate::ingress::headroom::HeadroomConfig::OFF,
            },
            pipeline,
            metrics.clone(),
            Shutdown::new(),
            crate::ingress::playback::PlaybackHub::new(metrics),
            None,
        );
        (st, samples, w)
    }

    async fn pair(
        st: &Arc<IngressState>,
    ) -> (
        WebSocketStream<tokio::io::DuplexStream>,
        tokio::task::JoinHandle<()>,
    ) {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        assert!(st.try_reserve_media());
        st.metrics.connections_active.inc();
        let slot = MediaSlot(st.clone());
        let call = st
            .pipeline
            .start_call(Some("duplex".into()), None, None, 1_700_000_000_000);
        let task = tokio::spawn(run(server_io, call, st.clone(), slot, false));
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        (client, task)
    }

    async fn close_of(ws: &mut WebSocketStream<tokio::io::DuplexStream>) -> (u16, String) {
        while let Some(m) = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            if let Ok(Message::Close(Some(f))) = m {
                return (u16::from(f.code), f.reason.to_string());
            }
        }
        panic!("no close frame")
    }

    #[tokio::test]
    async fn audio_flows_and_a_bad_frame_closes_1007_over_a_pipe() {
        let (st, samples, w) = state(64 * 1024, Duration::from_secs(5));
        let (mut ws, task) = pair(&st).await;
        let meta = crate::protocol::media::inbound_audio_metadata_json(16_000, "s");
        ws.send(Message::text(meta)).await.unwrap();
        let mut msg = String::new();
        crate::protocol::media::inbound_audio_data_json(
            &mut msg,
            &{
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode([0u8; 640])
            },
            "2024-11-15T19:16:12.925Z",
            None,
            false,
        );
        ws.send(Message::text(msg)).await.unwrap();
        ws.send(Message::text("{nope")).await.unwrap();
        let (code, reason) = close_of(&mut ws).await;
        assert_eq!(code, 1007);
        assert!(reason.starts_with("malformed JSON"), "{reason}");
        task.await.unwrap();
        assert_eq!(st.media_connections(), 0, "slot released");
        assert_eq!(st.metrics.connections_active.get(), 0);
        w.finish_and_join(std::time::Instant::now() + Duration::from_secs(5));
        assert_eq!(samples.load(Ordering::Relaxed), 320);
    }

    #[tokio::test]
    async fn oversized_message_closes_1009_and_shutdown_closes_1001() {
        let (st, _samples, _w) = state(1024, Duration::from_secs(5));
        let (mut ws, task) = pair(&st).await;
        ws.send(Message::binary(vec![b'x'; 4096])).await.unwrap();
        let (code, reason) = close_of(&mut ws).await;
        assert_eq!(code, 1009, "{reason}");
        task.await.unwrap();
        assert_eq!(st.metrics.bad_frame_count(BadFrame::FrameTooLarge), 1);

        let (mut ws, task) = pair(&st).await;
        st.shutdown.set(crate::shutdown::Phase::Draining);
        let (code, reason) = close_of(&mut ws).await;
        assert_eq!((code, reason.as_str()), (1001, "gateway shutting down"));
        drop(ws);
        task.await.unwrap();
        assert_eq!(st.shutdown.steps(), vec![Step::ConnectionClosed]);
    }
}
