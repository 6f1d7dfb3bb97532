//! The bounded queue in front of each sink worker and its sending side, [`SinkHandle`]: the
//! audio lane (drop-newest, never blocks) and the lossless control lane (a reserve, then a
//! counted, bounded wait).

use crate::metrics::SinkMetrics;
use crate::pipeline::frame::{CallId, SharedFrame, SinkMsg};
use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// How often the worker calls [`Sink::flush`](super::Sink::flush).
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

pub(super) enum Cmd {
    Msg(SinkMsg),
    Finish,
}

/// The sending side of one sink: cheap to call from the hot path, never blocks.
#[derive(Clone)]
pub struct SinkHandle {
    pub(super) kind: &'static str,
    pub(super) queues: Arc<[Sender<Cmd>]>,
    /// Per queue: a control message already waited [`CONTROL_WAIT_LIMIT`] in vain, so the worker
    /// is stuck; further control messages fail fast (counted) until the queue has room again,
    /// instead of each holding a runtime thread for the whole limit.
    pub(super) stalled: Arc<[AtomicBool]>,
    pub(super) audio_capacity: usize,
    pub(super) metrics: SinkMetrics,
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
