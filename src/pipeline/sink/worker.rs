//! The worker threads behind the queues: [`spawn_blocking_sink`] runs a sink on `workers`
//! threads (calls sharded by id), [`ManualSink`] drives one by hand. A sink's errors are counted;
//! the first of each kind is logged, repeats are summarised every
//! [`SINK_ERROR_SUMMARY_EVERY`] ([`LogLimiter`]). A sink that panics is marked dead and its
//! messages are counted as dropped. Workers read no clock: their flush cadence comes as ticks
//! (whose instants are the log limiter's clock), the join deadline from the caller.

use super::queue::{Cmd, QueueConfig, SinkHandle};
use super::{Sink, SinkError};
use crate::metrics::SinkMetrics;
use crate::pipeline::frame::SinkMsg;
use crate::pipeline::log_limit::{LogLimiter, Summary, Verdict, SINK_ERROR_SUMMARY_EVERY};
use crossbeam_channel::{bounded, select, tick, Receiver, RecvTimeoutError, TryRecvError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
        // disconnected = every worker has returned from its loop (its thread is ending: join it)
        let all_done = matches!(
            self.exited.recv_deadline(deadline),
            Err(RecvTimeoutError::Disconnected)
        );
        let mut unfinished = 0;
        for t in self.threads {
            if all_done || t.is_finished() {
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
                guarded: Guarded::new(sink),
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
    errors: LogLimiter<&'static str>,
    /// The first flush tick's instant, and the time since it (the log limiter's clock).
    origin: Option<Instant>,
    now: Duration,
}

impl Guarded {
    fn new(sink: Box<dyn Sink>) -> Self {
        Self {
            sink,
            dead: false,
            errors: LogLimiter::new(SINK_ERROR_SUMMARY_EVERY),
            origin: None,
            now: Duration::ZERO,
        }
    }

    /// A flush tick delivered at `at`: advances the clock and logs the error summaries due.
    fn tick(&mut self, at: Instant) {
        let origin = *self.origin.get_or_insert(at);
        self.now = at.saturating_duration_since(origin);
        let kind = self.sink.kind();
        self.errors.due(self.now, |s| log_summary(kind, s));
    }

    /// Logs what is still pending (at shutdown).
    fn flush_error_log(&mut self) {
        let kind = self.sink.kind();
        self.errors.flush(self.now, |s| log_summary(kind, s));
    }

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
                if self.errors.hit(e.kind(), self.now) == Verdict::Log {
                    tracing::warn!(
                        sink = self.sink.kind(),
                        kind = e.kind(),
                        error = %e,
                        "sink error (repeats of this kind are summarised every {} s)",
                        SINK_ERROR_SUMMARY_EVERY.as_secs()
                    );
                }
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
    let mut g = Guarded::new(sink);
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
            if got.is_multiple_of(64) {
                if let Ok(at) = flush_due.try_recv() {
                    g.tick(at);
                    flush = true;
                    break;
                }
            }
        }
        if !flush {
            if let Ok(at) = flush_due.try_recv() {
                g.tick(at);
                flush = true;
            }
        }
        if flush {
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
                recv(flush_due) -> at => {
                    if let Ok(at) = at {
                        g.tick(at);
                    }
                    g.call(m, |s| s.flush());
                    m.queue_depth.set(rx.len() as i64);
                }
            }
        }
    }
    g.dead = false; // a panicked sink still gets the chance to finalise what it can
    g.call(m, |s| s.shutdown());
    g.flush_error_log();
    m.queue_depth.set(0);
}

fn log_summary(sink: &'static str, s: Summary<&'static str>) {
    tracing::warn!(
        sink,
        kind = s.kind,
        repeated = s.suppressed,
        over_secs = s.over.as_secs(),
        "sink error repeated {} more times in {} s",
        s.suppressed,
        s.over.as_secs()
    );
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
