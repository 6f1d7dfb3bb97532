//! EDGE: the cheap real-time engine behind `acs-sim load` on `ws://` URLs (`run_sharded`).
//!
//! Cost per frame is what limits how many real-time streams one box can generate, so the hot
//! path avoids everything per frame that is not the write itself:
//!
//! - **Connect tasks** (one short-lived task per call) do the upgrade by hand on a raw
//!   [`TcpStream`](tokio::net::TcpStream) ([`super::wsraw::connect`]), send `AudioMetadata`,
//!   split the socket without a lock (`into_split`) and hand the write half to a shard. The same
//!   task then becomes the call's **reader**: it sleeps on the read half and only wakes when the
//!   server sends something (a close, a ping, bidirectional audio), parsing frames minimally.
//! - **Shards** (a few tasks, `--shards`, default one per core) own many connections each. Every
//!   connection has a fixed phase within the 20 ms period (golden-ratio spread, so phases are
//!   uniform even when all calls start at once); a shard keeps one [`Sleep`](tokio::time::Sleep),
//!   reset to the next due frame, and writes every due frame with `try_write`. A frame is built
//!   in the connection's reused buffer from [`FrameTemplates`]: the envelope and the shared
//!   pre-encoded base64 payload, cut once from [`acs_protocol::inbound_audio_data_json`]'s
//!   output (so byte-identical to it), with the timestamp copied in, masked in place with a
//!   fresh random key. No allocation, no lock, no per-frame timer.
//! - A socket that cannot take a whole frame keeps the rest pending; it is flushed before that
//!   connection's next frame (the shard polls pending sockets every millisecond) and the lag of
//!   those frames is counted when they complete. Over 1 MiB pending, the call fails with
//!   `backpressure`.
//! - Lag histograms are per shard and merged at the end; progress uses relaxed atomics and a
//!   once-a-second merge into the progress window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::io::AsyncReadExt as _;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::audio::FRAME_MS;
use super::error::SimError;
use super::ids::SimRng;
use super::load::{new_hist, EncodedSource, Shared, MAX_LAG_US};
use super::play::{acs_headers, DEFAULT_CONNECT_TIMEOUT};
use super::wsraw::{self, opcode, FrameParser, ServerEvent, WsUrl};
use acs_protocol::{format_timestamp, inbound_audio_data_json, inbound_audio_metadata_json};

/// Unsent bytes a connection may hold before the call fails with `backpressure`.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// How long a call waits for the server's answer to its close frame.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a shard retries sockets that could not take a whole frame.
const PENDING_RETRY: Duration = Duration::from_millis(1);

/// A timestamp-shaped probe used to cut frames into template pieces.
const TS_PROBE: &str = "2000-01-01T00:00:00.000Z";

/// `AudioData` frames cut into pieces around the timestamp, so a frame is four copies: `head`,
/// the timestamp, `"` + the participant piece, and the frame's `tail`. The pieces come from
/// [`inbound_audio_data_json`] itself, so the result is byte-identical to it (tested).
pub struct FrameTemplates {
    head: Vec<u8>,
    /// Per source frame: everything after the timestamp's closing quote.
    tails: Vec<Vec<u8>>,
}

impl FrameTemplates {
    /// Cuts every frame of `src`.
    pub fn new(src: &EncodedSource) -> Self {
        let mut full = String::new();
        let mut head = Vec::new();
        let tails = (0..src.len())
            .map(|i| {
                let (b64, silent) = src.frame(i);
                inbound_audio_data_json(&mut full, b64, TS_PROBE, None, silent);
                let at = full.find(TS_PROBE).unwrap_or(0);
                head = full.as_bytes()[..at].to_vec();
                full.as_bytes()[at + TS_PROBE.len() + 1..].to_vec()
            })
            .collect();
        FrameTemplates { head, tails }
    }

    /// The piece a participant adds after the timestamp (empty for a mixed stream).
    pub fn participant_piece(participant: Option<&str>) -> Vec<u8> {
        let Some(p) = participant else {
            return Vec::new();
        };
        let mut full = String::new();
        inbound_audio_data_json(&mut full, "", TS_PROBE, Some(p), false);
        let start = full.find(TS_PROBE).unwrap_or(0) + TS_PROBE.len() + 1;
        let end = full.len() - r#","data":"","silent":false}}"#.len();
        full.as_bytes()[start..end].to_vec()
    }

    /// Payload length of frame `i` with timestamp `ts` and participant piece `part`.
    pub fn len(&self, i: usize, ts: &str, part: &[u8]) -> usize {
        self.head.len() + ts.len() + 1 + part.len() + self.tails[i].len()
    }

    /// Appends frame `i`'s JSON to `out`.
    pub fn push(&self, out: &mut Vec<u8>, i: usize, ts: &str, part: &[u8]) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(ts.as_bytes());
        out.push(b'"');
        out.extend_from_slice(part);
        out.extend_from_slice(&self.tails[i]);
    }
}

/// What the engine needs per run.
pub struct EngineParams {
    /// Where to connect.
    pub url: WsUrl,
    /// The URL as given (for errors).
    pub url_text: String,
    /// Calls.
    pub calls: usize,
    /// Participants per call.
    pub participants: usize,
    /// 20 ms slots per call.
    pub slots: u64,
    /// Calls start evenly over this period.
    pub ramp: Duration,
    /// Sample rate (for `AudioMetadata`).
    pub sample_rate: u32,
    /// Shared frames.
    pub src: Arc<EncodedSource>,
    /// Bearer token.
    pub bearer: Option<String>,
    /// Shard count (≥ 1).
    pub shards: usize,
    /// Time zero of the run (the first call starts here).
    pub run_start: Instant,
}

/// How one call ended.
#[derive(Debug)]
pub struct CallOutcome {
    /// The upgrade succeeded.
    pub connected: bool,
    /// `None`: completed; else the failure label.
    pub failure: Option<String>,
    /// When the call ended.
    pub ended: Instant,
    /// Payload bytes of the `AudioMetadata` message (0 if not sent).
    pub metadata_bytes: u64,
    /// Messages received from the server.
    pub received: u64,
}

/// What a shard sent.
#[derive(Debug)]
pub struct ShardTotals {
    /// `AudioData` frames written completely.
    pub frames: u64,
    /// Their JSON payload bytes.
    pub payload_bytes: u64,
    /// Their PCM bytes.
    pub pcm_bytes: u64,
    /// Lag of each, µs.
    pub lag: Histogram<u64>,
}

/// Everything the engine measured.
#[derive(Debug)]
pub struct EngineResult {
    /// Per call, in call order.
    pub calls: Vec<CallOutcome>,
    /// Per shard.
    pub shards: Vec<ShardTotals>,
}

/// Set by a call's reader, read by its shard.
#[derive(Default)]
struct ConnCtl {
    /// Stop sending (the server closed, or the connection broke).
    stop: AtomicBool,
    /// The shard is writing (or wrote) our Close 1000: a close from the server is its reply.
    close_sent: AtomicBool,
    /// The server's close code to echo (0: none).
    close_code: AtomicU16,
    /// A ping payload waiting to be answered.
    pong: Mutex<Option<Vec<u8>>>,
    has_pong: AtomicBool,
}

/// What a shard tells a call's reader when it is done with the connection.
enum Done {
    /// Close 1000 was written; the write half is kept open until the close reply.
    Closed(OwnedWriteHalf),
    /// The call failed on the write side.
    Failed(&'static str),
}

/// A new connection for a shard.
struct NewConn {
    w: OwnedWriteHalf,
    ctl: Arc<ConnCtl>,
    done: oneshot::Sender<Done>,
    ids: Vec<Option<String>>,
    phase: Duration,
}

struct Conn {
    w: OwnedWriteHalf,
    ctl: Arc<ConnCtl>,
    done: Option<oneshot::Sender<Done>>,
    /// Per participant: [`FrameTemplates::participant_piece`].
    parts: Vec<Vec<u8>>,
    offsets: Vec<usize>,
    first_due: Instant,
    start_unix_ms: i64,
    /// Next slot to send (`slots`: the close is next).
    slot: u64,
    out: Vec<u8>,
    sent: usize,
    /// Frames not yet completely written: (end offset in `out`, due time, frame count).
    pending: VecDeque<(usize, Instant, u32)>,
    closing: bool,
    queued: bool,
}

/// Runs the calls; returns when every call has ended.
pub(crate) async fn run_sharded(
    p: EngineParams,
    shared: Arc<Shared>,
) -> Result<EngineResult, SimError> {
    let shards = p.shards.max(1);
    let mut txs = Vec::with_capacity(shards);
    let mut shard_tasks = Vec::with_capacity(shards);
    for s in 0..shards {
        let (tx, rx) = mpsc::unbounded_channel::<NewConn>();
        txs.push(tx);
        let ctx = ShardCtx {
            src: p.src.clone(),
            slots: p.slots,
            run_start: p.run_start,
            shared: shared.clone(),
            rng: SimRng::from_entropy(),
            seed: s as u64,
        };
        shard_tasks.push(tokio::spawn(shard(ctx, rx)));
    }
    let mut rng = SimRng::from_entropy();
    let url = Arc::new((p.url, p.url_text));
    let mut call_tasks = Vec::with_capacity(p.calls);
    for i in 0..p.calls {
        let start_at = p.run_start + p.ramp.mul_f64(i as f64 / p.calls as f64);
        // Golden-ratio spread: uniform phases over 20 ms for any number of calls.
        let phase = Duration::from_micros(
            ((i as f64 * 0.618_033_988_749_895).fract() * (FRAME_MS * 1000) as f64) as u64,
        );
        let ids: Vec<Option<String>> = if p.participants == 1 {
            vec![None]
        } else {
            (0..p.participants)
                .map(|_| Some(rng.participant_raw_id()))
                .collect()
        };
        let headers = acs_headers(&rng.uuid_like(), &rng.uuid_like(), p.bearer.as_deref());
        let metadata = inbound_audio_metadata_json(p.sample_rate, &rng.uuid_like());
        let tx = txs[i % shards].clone();
        let url = url.clone();
        let shared = shared.clone();
        let call_rng = SimRng::seeded(rng.next_u64());
        call_tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start_at).await;
            call(
                &url.0, &url.1, &headers, &metadata, ids, phase, tx, call_rng, &shared,
            )
            .await
        }));
    }
    drop(txs);
    let mut calls = Vec::with_capacity(p.calls);
    for t in call_tasks {
        calls.push(t.await.unwrap_or_else(|e| CallOutcome {
            connected: false,
            failure: Some(format!("task_panicked: {e}")),
            ended: Instant::now(),
            metadata_bytes: 0,
            received: 0,
        }));
    }
    let mut totals = Vec::with_capacity(shards);
    for t in shard_tasks {
        if let Ok(s) = t.await {
            totals.push(s);
        }
    }
    Ok(EngineResult {
        calls,
        shards: totals,
    })
}

/// One call: connect, metadata, hand the write half to a shard, then read until the end.
#[allow(clippy::too_many_arguments)]
async fn call(
    url: &WsUrl,
    url_text: &str,
    headers: &[(String, String)],
    metadata: &str,
    ids: Vec<Option<String>>,
    phase: Duration,
    tx: mpsc::UnboundedSender<NewConn>,
    mut rng: SimRng,
    shared: &Shared,
) -> CallOutcome {
    let mut out = CallOutcome {
        connected: false,
        failure: None,
        ended: Instant::now(),
        metadata_bytes: 0,
        received: 0,
    };
    let up = match wsraw::connect(url, url_text, headers, &mut rng, DEFAULT_CONNECT_TIMEOUT).await {
        Ok(u) => u,
        Err(e) => {
            out.failure = Some(match e {
                SimError::Connect { kind, .. } => kind.label(),
                _ => "error".into(),
            });
            shared.failed.fetch_add(1, Ordering::Relaxed);
            out.ended = Instant::now();
            return out;
        }
    };
    out.connected = true;
    shared.connected.fetch_add(1, Ordering::Relaxed);
    shared.active.fetch_add(1, Ordering::Relaxed);
    let failure = stream_call(up, metadata, ids, phase, tx, &mut rng, &mut out).await;
    shared.active.fetch_sub(1, Ordering::Relaxed);
    if failure.is_some() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    out.failure = failure;
    out.ended = Instant::now();
    out
}

async fn stream_call(
    up: wsraw::Upgraded,
    metadata: &str,
    ids: Vec<Option<String>>,
    phase: Duration,
    tx: mpsc::UnboundedSender<NewConn>,
    rng: &mut SimRng,
    out: &mut CallOutcome,
) -> Option<String> {
    use tokio::io::AsyncWriteExt as _;
    let wsraw::Upgraded {
        mut stream,
        leftover,
    } = up;
    let mut frame = Vec::with_capacity(metadata.len() + 8);
    wsraw::push_frame(
        &mut frame,
        opcode::TEXT,
        metadata.as_bytes(),
        wsraw::mask_key(rng),
    );
    if stream.write_all(&frame).await.is_err() {
        return Some("connection_lost".into());
    }
    out.metadata_bytes = metadata.len() as u64;
    let (mut r, w) = stream.into_split();
    let ctl = Arc::new(ConnCtl::default());
    let (done_tx, mut done_rx) = oneshot::channel();
    if tx
        .send(NewConn {
            w,
            ctl: ctl.clone(),
            done: done_tx,
            ids,
            phase,
        })
        .is_err()
    {
        return Some("error".into());
    }
    drop(tx);

    let mut parser = FrameParser::default();
    let mut buf = vec![0u8; 4096];
    let mut closed_by_us: Option<OwnedWriteHalf> = None;
    let sleep = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(sleep);
    let mut pending_events = Vec::new();
    let mut handle = |data: &[u8], events: &mut Vec<ServerEvent>| {
        parser.feed(data, |e| events.push(e));
    };
    handle(&leftover, &mut pending_events);
    loop {
        // Events from the last read (or the bytes that followed the 101).
        for e in pending_events.drain(..) {
            match e {
                ServerEvent::Message => out.received += 1,
                ServerEvent::Pong => {}
                ServerEvent::Ping(p) => {
                    if let Ok(mut slot) = ctl.pong.lock() {
                        *slot = Some(p);
                        ctl.has_pong.store(true, Ordering::Release);
                    }
                }
                ServerEvent::Close(code, _) => {
                    if closed_by_us.is_some() || ctl.close_sent.load(Ordering::Acquire) {
                        return None;
                    }
                    ctl.close_code.store(code, Ordering::Relaxed);
                    ctl.stop.store(true, Ordering::Release);
                    return Some(if code == 1005 {
                        "server_closed".into()
                    } else {
                        format!("server_closed_{code}")
                    });
                }
                ServerEvent::Invalid(_) => {
                    ctl.stop.store(true, Ordering::Release);
                    return Some("protocol_error".into());
                }
            }
        }
        tokio::select! {
            biased;
            d = &mut done_rx, if closed_by_us.is_none() => match d {
                Ok(Done::Closed(w)) => {
                    closed_by_us = Some(w);
                    sleep.as_mut().reset(Instant::now() + CLOSE_REPLY_TIMEOUT);
                }
                Ok(Done::Failed(label)) => return Some(label.into()),
                Err(_) => return Some("error".into()),
            },
            n = r.read(&mut buf) => match n {
                Ok(n) if n > 0 => handle(&buf[..n], &mut pending_events),
                _ => {
                    if closed_by_us.is_some() || ctl.close_sent.load(Ordering::Acquire) {
                        // Closed without a close reply: the stream itself completed.
                        return None;
                    }
                    ctl.stop.store(true, Ordering::Release);
                    // The shard may have failed the write side first; prefer its label.
                    return match tokio::time::timeout(Duration::from_millis(100), done_rx).await {
                        Ok(Ok(Done::Failed(label))) => Some(label.into()),
                        _ => Some("connection_lost".into()),
                    };
                }
            },
            () = &mut sleep, if closed_by_us.is_some() => return None,
        }
    }
}

struct ShardCtx {
    src: Arc<EncodedSource>,
    slots: u64,
    run_start: Instant,
    shared: Arc<Shared>,
    rng: SimRng,
    seed: u64,
}

/// Scratch space and counters of one shard.
struct Scratch {
    ts: String,
    rng: SimRng,
    totals: ShardTotals,
    window: Histogram<u64>,
    unreported_frames: u64,
}

impl Scratch {
    fn record(&mut self, due: Instant, now: Instant, frames: u32) {
        let us = (now.saturating_duration_since(due).as_micros() as u64).clamp(1, MAX_LAG_US);
        let n = u64::from(frames);
        let _ = self.totals.lag.record_n(us, n);
        let _ = self.window.record_n(us, n);
        self.totals.frames += n;
        self.unreported_frames += n;
    }
}

mod shards;
use shards::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_the_protocol_encoder_byte_for_byte() {
        let pcm = super::super::audio::speech_like(16_000, 1_000);
        let src = EncodedSource::new(&pcm, 16_000, -50.0);
        let tpl = FrameTemplates::new(&src);
        let mut want = String::new();
        let mut ts = String::new();
        let mut got = Vec::new();
        for (k, p) in [None, Some("8:acs:1234"), Some("we\"ird\\id\n")]
            .into_iter()
            .enumerate()
        {
            let part = FrameTemplates::participant_piece(p);
            for i in [0, 1, 7, src.len() - 1] {
                ts.clear();
                format_timestamp(1_731_698_172_925 + (i * 20 + k * 7) as i64, &mut ts);
                inbound_audio_data_json(&mut want, src.frame(i).0, &ts, p, src.frame(i).1);
                got.clear();
                tpl.push(&mut got, i, &ts, &part);
                assert_eq!(std::str::from_utf8(&got).unwrap(), want);
                assert_eq!(tpl.len(i, &ts, &part), want.len());
            }
        }
    }
}
