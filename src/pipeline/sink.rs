//! The sink contract and the machinery that keeps sinks from ever stalling ingress.
//!
//! A [`Sink`] is small and synchronous: open a stream, write frames, hear about gaps and events,
//! close the stream, end the call, flush now and then, shut down. Each configured sink runs on its
//! own worker thread(s) behind a bounded crossbeam queue ([`spawn_blocking_sink`]); the connection
//! task only ever calls [`SinkHandle::send_audio`] (never blocks) and
//! [`SinkHandle::send_control`] (never loses).
//!
//! Queue policy: one ordered queue per worker holds at most `audio_capacity` audio frames plus a
//! deep `control_reserve` that only control messages (open, close, gaps, events, call end) may
//! use, so everything for a call stays in order in one queue.
//! - **Audio lane: bounded, drop-newest.** When `audio_capacity` messages are waiting, the newest
//!   frame is dropped and counted (`acs_gateway_sink_queue_drops_total{class="audio"}`).
//! - **Control lane: lossless.** A control message always fits while the reserve has room; only
//!   when even the reserve is full (the sink is far behind and memory is at risk) does the
//!   producer wait for room, and that wait is counted
//!   (`acs_gateway_sink_control_waits_total`). It gives up only if the worker is gone or makes no
//!   room for [`CONTROL_WAIT_LIMIT`] (counted as a `class="control"` drop); after that the queue
//!   counts as stuck and further control messages fail fast (counted) until it has room again,
//!   so a stuck sink holds a runtime thread for one wait, not one per message.
//!
//! Workers neither spin nor sleep-poll when idle, and senders almost never wake them: after a
//! round that found messages a worker sleeps `poll_interval` so the next batch gathers (a send
//! finds nobody to wake: no syscall on the hot path); after a round that found the queue empty it
//! blocks until a message arrives (one wake per idle period) or the next flush is due.
//!
//! A call's messages always go to the same worker, so per-call order holds with several workers.
//! A sink that returns errors has them counted; a sink that panics is marked dead and its messages
//! are counted as dropped from then on.

use super::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, SharedFrame, SinkMsg, StreamId, StreamInfo,
    StreamStats,
};
use crate::metrics::SinkMetrics;
use crossbeam_channel::{
    bounded, select, tick, Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors a sink reports; counted per sink kind, never fatal to the call.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// File or socket I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A message named a stream the sink does not know (never opened, or already closed).
    #[error("unknown stream {0}")]
    UnknownStream(StreamId),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// The sink contract. Methods are called from one worker thread, in queue order.
pub trait Sink: Send + 'static {
    /// Short kind name, the `sink` metric label (`wav`, `null`, ...).
    fn kind(&self) -> &'static str;
    /// A stream starts; its format is in `stream`.
    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError>;
    /// A block of audio for an open stream.
    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError>;
    /// A block of 32-bit float audio (full scale ±1.0, i.e. i16 / 32768) for an open stream, as
    /// a resample sink with `format = "f32"` emits it: at most [`super::frame::MAX_FRAME_SAMPLES`]
    /// samples at `rate`, the first at `pos`. Sinks that take float audio override this; the
    /// default refuses it (config validation keeps such chains from being built).
    fn write_f32(
        &mut self,
        _stream: StreamId,
        _call: CallId,
        _pos: u64,
        _rate: u32,
        _samples: &[f32],
    ) -> Result<(), SinkError> {
        Err(SinkError::Other(format!(
            "the {} sink does not take f32 audio",
            self.kind()
        )))
    }
    /// `samples` of silence at the end of an open stream (a timeline gap).
    fn gap(&mut self, _call: CallId, _stream: StreamId, _samples: u64) -> Result<(), SinkError> {
        Ok(())
    }
    /// A call event.
    fn event(&mut self, _call: &Arc<CallInfo>, _event: &CallEvent) -> Result<(), SinkError> {
        Ok(())
    }
    /// A stream ends; the sink finalises what belongs to it.
    fn close(
        &mut self,
        call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError>;
    /// The call ended; all its streams were closed before.
    fn end_call(&mut self, _call: &Arc<CallInfo>, _reason: &EndReason) -> Result<(), SinkError> {
        Ok(())
    }
    /// Periodic (about once a second, and when the queue is idle): make outputs durable.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Process shutdown: finalise everything still open. Called once, last.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What a full queue does with the next audio frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Drop the frame being offered and count it (real-time sinks: never wait).
    #[default]
    DropNewest,
}

/// Longest a producer waits for room for a control message when a sink's whole queue (audio
/// and control reserve) is full. Only a sink that is stuck for this long loses a control message.
pub const CONTROL_WAIT_LIMIT: Duration = Duration::from_secs(2);

/// Default control reserve per worker queue: room for the open/close/event messages of thousands
/// of calls behind a slow sink (a slot is 48 bytes, so 16 Ki slots cost 0.75 MiB per worker).
pub const DEFAULT_CONTROL_RESERVE: usize = 16 * 1024;

/// Queue and worker settings of one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Audio frames a worker's queue holds.
    pub audio_capacity: usize,
    /// Extra room only control messages may use; past it, control messages wait (counted)
    /// rather than being lost.
    pub control_reserve: usize,
    /// How often the worker calls [`Sink::flush`].
    pub flush_interval: Duration,
    /// How long a busy worker lets a batch gather after draining its queue. While messages keep
    /// coming the worker sleeps this long between rounds instead of blocking on the channel, so a
    /// send never has to wake it (no syscall on the hot path), at the price of up to this much
    /// added latency. An idle worker blocks instead (no polling).
    pub poll_interval: Duration,
    /// Worker threads (calls are spread by call id).
    pub workers: usize,
    /// What a full queue does.
    pub overflow: Overflow,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            audio_capacity: 4096,
            control_reserve: DEFAULT_CONTROL_RESERVE,
            flush_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(5),
            workers: 1,
            overflow: Overflow::DropNewest,
        }
    }
}

enum Cmd {
    Msg(SinkMsg),
    Finish,
}

/// The sending side of one sink: cheap to call from the hot path, never blocks.
#[derive(Clone)]
pub struct SinkHandle {
    kind: &'static str,
    queues: Arc<[Sender<Cmd>]>,
    /// Per queue: a control message already waited [`CONTROL_WAIT_LIMIT`] in vain, so the worker
    /// is stuck; further control messages fail fast (counted) until the queue has room again,
    /// instead of each holding a runtime thread for the whole limit.
    stalled: Arc<[AtomicBool]>,
    audio_capacity: usize,
    metrics: SinkMetrics,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle")
            .field("kind", &self.kind)
            .field("workers", &self.queues.len())
            .finish()
    }
}

impl SinkHandle {
    /// The sink kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    fn queue(&self, call: CallId) -> &Sender<Cmd> {
        &self.queues[self.index(call)]
    }

    fn index(&self, call: CallId) -> usize {
        (call % self.queues.len() as u64) as usize
    }

    /// Offers one audio frame; drops and counts it when the sink is behind. Never blocks.
    #[inline]
    pub fn send_audio(&self, frame: &SharedFrame) -> bool {
        let q = self.queue(frame.call);
        if q.len() >= self.audio_capacity {
            self.metrics.audio_drops.inc();
            return false;
        }
        match q.try_send(Cmd::Msg(SinkMsg::Audio(Arc::clone(frame)))) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.audio_drops.inc();
                false
            }
        }
    }

    /// Delivers a control message (it may use the reserve). When even the reserve is full the
    /// caller waits for room (counted in `control_waits`), up to [`CONTROL_WAIT_LIMIT`]; `false`
    /// only if the worker is gone or stuck that long (counted as a control drop).
    pub fn send_control(&self, msg: SinkMsg) -> bool {
        let i = self.index(msg.call_id());
        let (q, stalled) = (&self.queues[i], &self.stalled[i]);
        match q.try_send(Cmd::Msg(msg)) {
            Ok(()) => {
                if stalled.load(Ordering::Relaxed) {
                    stalled.store(false, Ordering::Relaxed);
                }
                true
            }
            Err(TrySendError::Full(_)) if stalled.load(Ordering::Relaxed) => {
                self.metrics.control_drops.inc();
                false
            }
            Err(TrySendError::Full(cmd)) => {
                self.metrics.control_waits.inc();
                match q.send_timeout(cmd, CONTROL_WAIT_LIMIT) {
                    Ok(()) => true,
                    Err(SendTimeoutError::Timeout(_) | SendTimeoutError::Disconnected(_)) => {
                        stalled.store(true, Ordering::Relaxed);
                        tracing::error!(
                            sink = self.kind,
                            "sink stuck: a control message waited {CONTROL_WAIT_LIMIT:?} for room; \
                             control messages to it are dropped (counted) until it moves again"
                        );
                        self.metrics.control_drops.inc();
                        false
                    }
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.control_drops.inc();
                false
            }
        }
    }

    /// Fill of the fullest worker queue, as a fraction of its audio capacity (0 = empty, ≥ 1 =
    /// dropping audio). Cheap: reads two atomics per worker.
    pub fn fill(&self) -> f64 {
        let worst = self.queues.iter().map(|q| q.len()).max().unwrap_or(0);
        worst as f64 / self.audio_capacity as f64
    }

    /// Messages waiting, all workers together.
    pub fn depth(&self) -> usize {
        self.queues.iter().map(|q| q.len()).sum()
    }

    /// Asks every worker to finish: process what is queued, shut the sink down, exit.
    pub fn finish(&self) {
        for q in self.queues.iter() {
            // Blocking send is fine here: it is shutdown, not the hot path, and the worker is
            // draining; a dead worker has dropped its receiver and the send fails at once.
            let _ = q.send_timeout(Cmd::Finish, Duration::from_secs(5));
        }
    }
}

/// A running sink: its handle and worker threads.
pub struct SinkWorkers {
    /// The sending side.
    pub handle: SinkHandle,
    threads: Vec<JoinHandle<()>>,
    /// Disconnects when every worker has ended (each holds a sender until it returns).
    exited: Receiver<()>,
}

impl std::fmt::Debug for SinkWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkWorkers")
            .field("handle", &self.handle)
            .finish()
    }
}

impl SinkWorkers {
    /// Finishes and waits for the workers until `deadline`; returns how many did not end in time.
    pub fn finish_and_join(self, deadline: Instant) -> usize {
        self.handle.finish();
        // every worker holds a sender of `exited` until it ends: the channel disconnects when the
        // last one is done (the wait is bounded by the deadline the caller computed)
        let _ = self.exited.recv_deadline(deadline);
        let mut unfinished = 0;
        for t in self.threads {
            if t.is_finished() {
                let _ = t.join();
            } else {
                unfinished += 1;
            }
        }
        unfinished
    }
}

/// Starts a blocking sink: `workers` threads, each with its own sink from `make(worker_index)`
/// and its own bounded queue. `on_finalised` runs on each worker after its sink shut down.
pub fn spawn_blocking_sink<F>(
    kind: &'static str,
    mut make: F,
    cfg: &QueueConfig,
    metrics: SinkMetrics,
) -> std::io::Result<SinkWorkers>
where
    F: FnMut(usize) -> Box<dyn Sink>,
{
    let workers = cfg.workers.max(1);
    let mut senders = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    let (exit_tx, exited) = bounded::<()>(1);
    for i in 0..workers {
        let (tx, rx) = bounded(cfg.audio_capacity.max(1) + cfg.control_reserve.max(1));
        let sink = make(i);
        let metrics = metrics.clone();
        let interval = cfg.flush_interval;
        let poll = cfg.poll_interval.max(Duration::from_micros(100));
        let t = std::thread::Builder::new()
            .name(format!("sink-{kind}-{i}"))
            .spawn({
                let exit_tx = exit_tx.clone();
                move || {
                    run_worker(sink, rx, interval, poll, &metrics);
                    drop(exit_tx);
                }
            })?;
        senders.push(tx);
        threads.push(t);
    }
    Ok(SinkWorkers {
        handle: SinkHandle {
            kind,
            stalled: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            queues: senders.into(),
            audio_capacity: cfg.audio_capacity.max(1),
            metrics,
        },
        threads,
        exited,
    })
}

/// A sink driven by hand instead of by a worker thread: [`ManualSink::drain`] processes what is
/// queued on the calling thread. For benchmarks that measure the producer's cost on one core, and
/// for tests that want deterministic delivery.
pub struct ManualSink {
    guarded: Guarded,
    rx: Receiver<Cmd>,
    metrics: SinkMetrics,
}

impl ManualSink {
    /// A sink and the handle that feeds it (one queue).
    pub fn new(
        sink: Box<dyn Sink>,
        cfg: &QueueConfig,
        metrics: SinkMetrics,
    ) -> (SinkHandle, ManualSink) {
        let (tx, rx) = bounded(cfg.audio_capacity.max(1) + cfg.control_reserve.max(1));
        let handle = SinkHandle {
            kind: sink.kind(),
            stalled: vec![AtomicBool::new(false)].into(),
            queues: vec![tx].into(),
            audio_capacity: cfg.audio_capacity.max(1),
            metrics: metrics.clone(),
        };
        (
            handle,
            ManualSink {
                guarded: Guarded { sink, dead: false },
                rx,
                metrics,
            },
        )
    }

    /// Processes every queued message; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(cmd) = self.rx.try_recv() {
            if let Cmd::Msg(msg) = cmd {
                dispatch(&mut self.guarded, &self.metrics, msg);
            }
            n += 1;
        }
        n
    }
}

impl std::fmt::Debug for ManualSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualSink")
            .field("queued", &self.rx.len())
            .finish()
    }
}

struct Guarded {
    sink: Box<dyn Sink>,
    dead: bool,
}

impl Guarded {
    /// Runs one sink call, counting errors and containing panics.
    fn call(
        &mut self,
        m: &SinkMetrics,
        f: impl FnOnce(&mut dyn Sink) -> Result<(), SinkError>,
    ) -> bool {
        if self.dead {
            return false;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| f(sink.as_mut()))) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                m.write_errors.inc();
                tracing::warn!(sink = self.sink.kind(), error = %e, "sink error");
                false
            }
            Err(_) => {
                m.write_errors.inc();
                tracing::error!(
                    sink = self.sink.kind(),
                    "sink panicked; its messages are dropped from now on"
                );
                self.dead = true;
                false
            }
        }
    }
}

fn run_worker(
    sink: Box<dyn Sink>,
    rx: Receiver<Cmd>,
    interval: Duration,
    batch: Duration,
    m: &SinkMetrics,
) {
    let mut g = Guarded { sink, dead: false };
    // the flush clock is handed in as ticks (a crossbeam ticker): the worker reads no clock
    let flush_due = tick(interval);
    let mut finishing = false;
    let mut disconnected = false;
    loop {
        // one round: drain what is queued (looking at the ticker every 64 messages only)
        let mut got = 0usize;
        let mut flush = false;
        loop {
            match rx.try_recv() {
                Ok(Cmd::Msg(msg)) => dispatch(&mut g, m, msg),
                Ok(Cmd::Finish) => finishing = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
            got += 1;
            if got.is_multiple_of(64) && flush_due.try_recv().is_ok() {
                flush = true;
                break;
            }
        }
        if flush || flush_due.try_recv().is_ok() {
            g.call(m, |s| s.flush());
            m.queue_depth.set(rx.len() as i64);
        }
        if (finishing && rx.is_empty()) || disconnected {
            break;
        }
        if !rx.is_empty() {
            continue;
        }
        if got > 0 {
            // busy: let the next batch gather; producers find nobody to wake
            std::thread::sleep(batch.min(interval));
        } else {
            // idle: block until a message comes (one wake per idle period) or a flush is due
            select! {
                recv(rx) -> cmd => match cmd {
                    Ok(Cmd::Msg(msg)) => dispatch(&mut g, m, msg),
                    Ok(Cmd::Finish) => finishing = true,
                    Err(_) => break,
                },
                recv(flush_due) -> _ => {
                    g.call(m, |s| s.flush());
                    m.queue_depth.set(rx.len() as i64);
                }
            }
        }
    }
    g.dead = false; // a panicked sink still gets the chance to finalise what it can
    g.call(m, |s| s.shutdown());
    m.queue_depth.set(0);
}

fn dispatch(g: &mut Guarded, m: &SinkMetrics, msg: SinkMsg) {
    if g.dead {
        if matches!(msg, SinkMsg::Audio(_)) {
            m.audio_drops.inc();
        } else {
            m.control_drops.inc();
        }
        return;
    }
    match msg {
        SinkMsg::Open(info) => {
            g.call(m, |s| s.open(&info));
        }
        SinkMsg::Audio(frame) => {
            if g.call(m, |s| s.write(&frame)) {
                m.frames.inc();
            }
        }
        SinkMsg::Gap {
            call,
            stream,
            samples,
        } => {
            g.call(m, |s| s.gap(call, stream, samples));
        }
        SinkMsg::Event { call, event } => {
            g.call(m, |s| s.event(&call, &event));
        }
        SinkMsg::Close {
            call,
            stream,
            stats,
        } => {
            g.call(m, |s| s.close(call, stream, &stats));
        }
        SinkMsg::CallEnded { call, reason } => {
            g.call(m, |s| s.end_call(&call, &reason));
        }
    }
}

/// Every sink a call's audio and events go to.
#[derive(Clone, Debug, Default)]
pub struct FanOut {
    sinks: Vec<SinkHandle>,
}

impl FanOut {
    /// Fans out to `sinks`.
    pub fn new(sinks: Vec<SinkHandle>) -> Self {
        Self { sinks }
    }

    /// The sinks.
    pub fn sinks(&self) -> &[SinkHandle] {
        &self.sinks
    }

    /// Offers a frame to every sink (each decides alone whether it has room).
    #[inline]
    pub fn audio(&self, frame: &SharedFrame) {
        for s in &self.sinks {
            s.send_audio(frame);
        }
    }

    /// Sends a control message to every sink.
    pub fn control(&self, msg: SinkMsg) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for s in rest {
                s.send_control(msg.clone());
            }
            last.send_control(msg);
        }
    }
}

/// The shared contract every sink must pass, used by each sink's tests: a scripted two-stream
/// call with gaps, events and closes, plus misuse (unknown streams, writes after close, repeated
/// shutdown) that must give errors, never panics.
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod contract {
    use super::*;
    use crate::pipeline::frame::{CallInfo, StreamKind};

    /// The scripted call's info.
    pub fn call(id: CallId) -> Arc<CallInfo> {
        Arc::new(CallInfo::new(
            id,
            Some(format!("contract-call-{id}")),
            Some("corr".into()),
            None,
            1_700_000_000_000,
        ))
    }

    /// A stream of the scripted call.
    pub fn stream(
        call: &Arc<CallInfo>,
        id: StreamId,
        participant: Option<&str>,
        rate: u32,
    ) -> Arc<StreamInfo> {
        Arc::new(StreamInfo {
            call: call.clone(),
            id,
            kind: if participant.is_some() {
                StreamKind::Participant
            } else {
                StreamKind::Mixed
            },
            participant: participant.map(Arc::from),
            sample_rate: rate,
            start_unix_ms: Some(1_700_000_000_000),
            call_offset: 0,
        })
    }

    /// Runs the contract against `sink`; returns the number of frames written per stream
    /// (stream 1 and 2) so the caller can check its outputs.
    pub fn run(sink: &mut dyn Sink) -> (u64, u64) {
        let c = call(42);
        let a = stream(&c, 1, Some("8:acs:alice"), 16_000);
        let b = stream(&c, 2, Some("../../etc/passwd"), 16_000);
        sink.open(&a).expect("open a");
        sink.open(&b).expect("open b");
        let ev = CallEvent::ParticipantJoined {
            stream: 1,
            participant: a.participant.clone(),
        };
        sink.event(&c, &ev).expect("event");
        let mut pos = 0u64;
        for i in 0..10i16 {
            let samples: Vec<i16> = (0..320).map(|k| (k as i16).wrapping_mul(i)).collect();
            let f = AudioFrame::new(c.id, 1, pos, 16_000, &samples);
            sink.write(&f).expect("write a");
            let f = AudioFrame::new(c.id, 2, pos, 16_000, &samples);
            sink.write(&f).expect("write b");
            pos += 320;
        }
        sink.gap(c.id, 1, 640).expect("gap");
        sink.event(
            &c,
            &CallEvent::Dtmf {
                tone: "5".into(),
                participant: None,
                unix_ms: None,
            },
        )
        .expect("dtmf");
        sink.flush().expect("flush");
        // misuse must be an error, not a panic
        assert!(
            sink.write(&AudioFrame::new(c.id, 99, 0, 16_000, &[1, 2]))
                .is_err(),
            "write to unknown stream"
        );
        sink.close(
            c.id,
            1,
            &StreamStats {
                frames: 10,
                ..Default::default()
            },
        )
        .expect("close a");
        assert!(
            sink.write(&AudioFrame::new(c.id, 1, 0, 16_000, &[1, 2]))
                .is_err(),
            "write after close"
        );
        sink.close(
            c.id,
            2,
            &StreamStats {
                frames: 10,
                ..Default::default()
            },
        )
        .expect("close b");
        sink.end_call(&c, &EndReason::PeerClosed).expect("end call");
        // a stream left open is finalised by shutdown
        let c2 = call(43);
        let d = stream(&c2, 3, None, 24_000);
        sink.open(&d).expect("open d");
        sink.write(&AudioFrame::new(c2.id, 3, 0, 24_000, &[100; 480]))
            .expect("write d");
        sink.shutdown().expect("shutdown");
        (10, 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::Mutex;

    /// Records what it saw; optionally slow, failing or panicking.
    struct Probe {
        seen: Arc<Mutex<Vec<String>>>,
        delay: Duration,
        fail_writes: bool,
        panic_after: Option<u64>,
        writes: u64,
        open: std::collections::HashSet<StreamId>,
    }

    impl Probe {
        fn new(seen: Arc<Mutex<Vec<String>>>) -> Self {
            Self {
                seen,
                delay: Duration::ZERO,
                fail_writes: false,
                panic_after: None,
                writes: 0,
                open: Default::default(),
            }
        }
    }

    impl Sink for Probe {
        fn kind(&self) -> &'static str {
            "probe"
        }
        fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
            self.open.insert(s.id);
            self.seen.lock().unwrap().push(format!("open {}", s.id));
            Ok(())
        }
        fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
            if !self.open.contains(&f.stream) {
                return Err(SinkError::UnknownStream(f.stream));
            }
            self.writes += 1;
            if self.panic_after.is_some_and(|n| self.writes > n) {
                panic!("probe told to panic");
            }
            std::thread::sleep(self.delay);
            if self.fail_writes {
                return Err(SinkError::Other("told to fail".into()));
            }
            self.seen
                .lock()
                .unwrap()
                .push(format!("audio {} {}", f.stream, f.pos));
            Ok(())
        }
        fn close(&mut self, _c: CallId, s: StreamId, _st: &StreamStats) -> Result<(), SinkError> {
            if !self.open.remove(&s) {
                return Err(SinkError::UnknownStream(s));
            }
            self.seen.lock().unwrap().push(format!("close {s}"));
            Ok(())
        }
        fn shutdown(&mut self) -> Result<(), SinkError> {
            self.seen.lock().unwrap().push("shutdown".into());
            Ok(())
        }
    }

    #[test]
    fn probe_passes_the_contract() {
        let mut p = Probe::new(Arc::default());
        contract::run(&mut p);
    }

    fn cfg(audio: usize) -> QueueConfig {
        QueueConfig {
            audio_capacity: audio,
            control_reserve: 8,
            flush_interval: Duration::from_millis(20),
            poll_interval: Duration::from_millis(1),
            workers: 1,
            overflow: Overflow::DropNewest,
        }
    }

    #[test]
    fn order_is_kept_and_close_follows_its_audio() {
        let m = Metrics::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let w = spawn_blocking_sink(
            "probe",
            move |_| Box::new(Probe::new(s2.clone())),
            &cfg(64),
            m.sink("probe"),
        )
        .unwrap();
        let c = contract::call(1);
        w.handle
            .send_control(SinkMsg::Open(contract::stream(&c, 7, None, 16_000)));
        for i in 0..20 {
            assert!(w.handle.send_audio(&Arc::new(AudioFrame::new(
                1,
                7,
                i * 320,
                16_000,
                &[0; 320]
            ))));
        }
        w.handle.send_control(SinkMsg::Close {
            call: 1,
            stream: 7,
            stats: Box::default(),
        });
        assert_eq!(
            w.finish_and_join(Instant::now() + Duration::from_secs(5)),
            0
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first().unwrap(), "open 7");
        assert_eq!(seen[20], "audio 7 6080");
        assert_eq!(seen[21], "close 7");
        assert_eq!(seen.last().unwrap(), "shutdown");
    }

    #[test]
    fn slow_sink_drops_and_counts_without_blocking_the_sender_or_other_sinks() {
        let m = Metrics::new();
        let slow_seen = Arc::new(Mutex::new(Vec::new()));
        let fast_seen = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (slow_seen.clone(), fast_seen.clone());
        let slow = spawn_blocking_sink(
            "slow",
            move |_| {
                let mut p = Probe::new(a.clone());
                p.delay = Duration::from_millis(20);
                Box::new(p)
            },
            &cfg(4),
            m.sink("slow"),
        )
        .unwrap();
        let fast = spawn_blocking_sink(
            "fast",
            move |_| Box::new(Probe::new(b.clone())),
            &cfg(1024),
            m.sink("fast"),
        )
        .unwrap();
        let fan = FanOut::new(vec![slow.handle.clone(), fast.handle.clone()]);
        let c = contract::call(1);
        fan.control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
        let t0 = Instant::now();
        for i in 0..500u64 {
            fan.audio(&Arc::new(AudioFrame::new(1, 1, i * 320, 16_000, &[1; 320])));
        }
        let offered = t0.elapsed();
        // 500 offers to a sink that takes 20 ms per frame would take 10 s if anything waited.
        assert!(
            offered < Duration::from_secs(2),
            "fan-out waited on the slow sink: {offered:?}"
        );
        fan.control(SinkMsg::Close {
            call: 1,
            stream: 1,
            stats: Box::default(),
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(fast.finish_and_join(deadline), 0);
        let fast_audio = fast_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("audio"))
            .count();
        assert_eq!(fast_audio, 500, "the fast sink lost nothing");
        let slow_drops = m.sink("slow").audio_drops.get();
        assert!(slow_drops > 400, "slow sink drops counted: {slow_drops}");
        assert_eq!(slow.finish_and_join(deadline), 0);
        let slow_audio = slow_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("audio"))
            .count() as u64;
        assert_eq!(
            slow_audio + slow_drops,
            500,
            "every frame is either written or counted"
        );
        assert!(
            slow_seen.lock().unwrap().contains(&"close 1".to_string()),
            "control survived the flood"
        );
    }

    #[test]
    fn failing_and_panicking_sinks_are_counted_and_contained() {
        let m = Metrics::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let failing = spawn_blocking_sink(
            "failing",
            move |_| {
                let mut p = Probe::new(s.clone());
                p.fail_writes = true;
                Box::new(p)
            },
            &cfg(64),
            m.sink("failing"),
        )
        .unwrap();
        let s = seen.clone();
        let panicking = spawn_blocking_sink(
            "panicking",
            move |_| {
                let mut p = Probe::new(s.clone());
                p.panic_after = Some(3);
                Box::new(p)
            },
            &cfg(64),
            m.sink("panicking"),
        )
        .unwrap();
        let fan = FanOut::new(vec![failing.handle.clone(), panicking.handle.clone()]);
        let c = contract::call(3);
        fan.control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
        for i in 0..10u64 {
            fan.audio(&Arc::new(AudioFrame::new(3, 1, i * 320, 16_000, &[1; 320])));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(failing.finish_and_join(deadline), 0);
        assert_eq!(panicking.finish_and_join(deadline), 0);
        assert_eq!(m.sink("failing").write_errors.get(), 10);
        assert_eq!(m.sink("failing").frames.get(), 0);
        assert_eq!(m.sink("panicking").frames.get(), 3);
        assert_eq!(m.sink("panicking").write_errors.get(), 1);
        assert_eq!(
            m.sink("panicking").audio_drops.get(),
            6,
            "after the panic, frames are counted as dropped"
        );
    }

    /// A probe whose `open` blocks until the gate opens: a sink stuck for as long as a test wants.
    struct OpensWhenGateOpens(Probe, Arc<AtomicBool>);

    impl Sink for OpensWhenGateOpens {
        fn kind(&self) -> &'static str {
            "gated"
        }
        fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
            while !self.1.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.0.open(s)
        }
        fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
            self.0.write(f)
        }
        fn close(&mut self, c: CallId, s: StreamId, st: &StreamStats) -> Result<(), SinkError> {
            self.0.close(c, s, st)
        }
    }

    #[test]
    fn control_messages_past_the_reserve_wait_for_room_and_are_never_lost() {
        let m = Metrics::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let gate = Arc::new(AtomicBool::new(false));
        let g2 = gate.clone();
        let w = spawn_blocking_sink(
            "gated2",
            move |_| Box::new(OpensWhenGateOpens(Probe::new(s.clone()), g2.clone())),
            &cfg(4), // 4 audio + 8 reserve
            m.sink("gated2"),
        )
        .unwrap();
        let c = contract::call(1);
        w.handle
            .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
        std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
        for i in 0..4u64 {
            assert!(w.handle.send_audio(&Arc::new(AudioFrame::new(
                1,
                1,
                i * 320,
                16_000,
                &[0; 320]
            ))));
        }
        assert!(
            w.handle.fill() >= 1.0,
            "audio part full: {}",
            w.handle.fill()
        );
        // 8 control messages fill the reserve; the next ones wait until the sink moves again
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            gate.store(true, Ordering::Release);
        });
        for _ in 0..12 {
            assert!(w.handle.send_control(SinkMsg::Gap {
                call: 1,
                stream: 1,
                samples: 1
            }));
        }
        assert!(w.handle.send_control(SinkMsg::Close {
            call: 1,
            stream: 1,
            stats: Box::default()
        }));
        release.join().unwrap();
        assert_eq!(
            w.finish_and_join(Instant::now() + Duration::from_secs(5)),
            0
        );
        let sm = m.sink("gated2");
        assert!(sm.control_waits.get() >= 1, "someone had to wait");
        assert_eq!(sm.control_drops.get(), 0, "nothing lost");
        assert_eq!(sm.audio_drops.get(), 0);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().filter(|s| s.starts_with("audio")).count(), 4);
        assert_eq!(seen.last().map(String::as_str), Some("close 1"), "{seen:?}");
    }

    #[test]
    fn a_stuck_sink_costs_one_wait_then_control_messages_fail_fast_until_it_moves() {
        let m = Metrics::new();
        let gate = Arc::new(AtomicBool::new(false));
        let g2 = gate.clone();
        let w = spawn_blocking_sink(
            "stuck",
            move |_| Box::new(OpensWhenGateOpens(Probe::new(Arc::default()), g2.clone())),
            &cfg(4), // 4 audio + 8 reserve
            m.sink("stuck"),
        )
        .unwrap();
        let c = contract::call(1);
        w.handle
            .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
        std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
        let gap = || SinkMsg::Gap {
            call: 1,
            stream: 1,
            samples: 1,
        };
        for _ in 0..12 {
            assert!(w.handle.send_control(gap()), "fits audio + reserve");
        }
        let t = Instant::now();
        assert!(
            !w.handle.send_control(gap()),
            "stuck: gives up after the limit"
        );
        assert!(t.elapsed() >= CONTROL_WAIT_LIMIT);
        let t = Instant::now();
        assert!(!w.handle.send_control(gap()), "then fails fast");
        assert!(t.elapsed() < CONTROL_WAIT_LIMIT / 2, "{:?}", t.elapsed());
        let sm = m.sink("stuck");
        assert_eq!(sm.control_drops.get(), 2);
        assert_eq!(sm.control_waits.get(), 1, "one wait, not one per message");
        // the sink moves again: control messages are accepted again
        gate.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.handle.depth() > 0 {
            assert!(Instant::now() < deadline, "drains");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(w.handle.send_control(gap()));
        assert_eq!(
            w.finish_and_join(Instant::now() + Duration::from_secs(5)),
            0
        );
    }

    #[test]
    fn control_messages_use_the_reserve_when_audio_fills_the_queue() {
        let m = Metrics::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let gate = Arc::new(Mutex::new(()));
        let hold = gate.lock().unwrap();
        let g2 = gate.clone();
        struct Gated(Probe, Arc<Mutex<()>>);
        impl Sink for Gated {
            fn kind(&self) -> &'static str {
                "gated"
            }
            fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
                let _g = self.1.lock().unwrap();
                self.0.open(s)
            }
            fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
                self.0.write(f)
            }
            fn close(&mut self, c: CallId, s: StreamId, st: &StreamStats) -> Result<(), SinkError> {
                self.0.close(c, s, st)
            }
        }
        let w = spawn_blocking_sink(
            "gated",
            move |_| Box::new(Gated(Probe::new(s.clone()), g2.clone())),
            &cfg(4),
            m.sink("gated"),
        )
        .unwrap();
        let c = contract::call(1);
        w.handle
            .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
        std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
        let accepted = (0..10u64)
            .filter(|i| {
                w.handle
                    .send_audio(&Arc::new(AudioFrame::new(1, 1, i * 320, 16_000, &[0; 320])))
            })
            .count();
        assert_eq!(accepted, 4);
        assert!(w.handle.send_control(SinkMsg::Close {
            call: 1,
            stream: 1,
            stats: Box::default()
        }));
        drop(hold);
        assert_eq!(
            w.finish_and_join(Instant::now() + Duration::from_secs(5)),
            0
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().filter(|s| s.starts_with("audio")).count(), 4);
        assert_eq!(seen.iter().filter(|s| *s == "close 1").count(), 1);
        assert_eq!(m.sink("gated").audio_drops.get(), 6);
    }
}
