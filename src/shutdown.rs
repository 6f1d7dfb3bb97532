//! Shutdown phases shared by every task: `Starting → Running → Draining → Stopped` on a watch
//! channel, plus an ordered log of the shutdown steps so tests can assert the order of docs/ARCHITECTURE.md
//! ("stop accepting → close 1001 → drain queues → finalise sinks → exit").

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The lifecycle phase of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Listeners bound, not yet ready.
    Starting,
    /// Accepting and serving.
    Running,
    /// Not accepting; open connections are being closed and sinks drained.
    Draining,
    /// Everything finalised.
    Stopped,
}

/// One recorded step of the shutdown sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The accept loop stopped taking new connections.
    StoppedAccepting,
    /// A media connection sent its close frame (code 1001) and ended its call pipeline.
    ConnectionClosed,
    /// All media connections are gone (or the grace timeout expired with `remaining` still open).
    ConnectionsDone {
        /// Connections still open when the wait ended (0 on a clean drain).
        remaining: usize,
    },
    /// A sink worker drained its queue and finalised its outputs.
    SinkFinalised {
        /// The sink kind (`wav`, ...).
        kind: &'static str,
    },
    /// Every sink worker ended (or the grace timeout expired).
    SinksDone {
        /// Workers that did not finish in time.
        unfinished: usize,
    },
    /// The recordings uploader finished the call folders queued (or the grace timeout expired).
    UploadsDone {
        /// Folders left for the next start (they keep their marker).
        left: usize,
    },
}

/// Cloneable shutdown token: a phase on a watch channel and the step log.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
    log: Arc<Mutex<Vec<(Step, Instant)>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token in [`Phase::Starting`].
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(Phase::Starting);
        Self {
            tx: Arc::new(tx),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Moves to `phase` (phases only move forward; an earlier phase is ignored).
    pub fn set(&self, phase: Phase) {
        self.tx.send_if_modified(|p| {
            if rank(phase) > rank(*p) {
                *p = phase;
                true
            } else {
                false
            }
        });
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// True once draining has begun.
    pub fn is_draining(&self) -> bool {
        rank(self.phase()) >= rank(Phase::Draining)
    }

    /// Resolves when the phase reaches [`Phase::Draining`] (or later).
    pub async fn draining(&self) {
        let mut rx = self.tx.subscribe();
        // `wait_for` only errors when the sender is dropped, which cannot happen while `self` lives.
        let _ = rx.wait_for(|p| rank(*p) >= rank(Phase::Draining)).await;
    }

    /// Appends a step to the shutdown log.
    pub fn record(&self, step: Step) {
        if let Ok(mut log) = self.log.lock() {
            log.push((step, Instant::now()));
        }
    }

    /// The steps recorded so far, in order.
    pub fn steps(&self) -> Vec<Step> {
        self.log
            .lock()
            .map(|l| l.iter().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default()
    }
}

fn rank(p: Phase) -> u8 {
    match p {
        Phase::Starting => 0,
        Phase::Running => 1,
        Phase::Draining => 2,
        Phase::Stopped => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_move_forward_only_and_wake_waiters() {
        let s = Shutdown::new();
        s.set(Phase::Running);
        assert_eq!(s.phase(), Phase::Running);
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.draining().await });
        s.set(Phase::Draining);
        tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .expect("waiter woke")
            .unwrap();
        s.set(Phase::Running);
        assert_eq!(s.phase(), Phase::Draining, "no going back");
        assert!(s.is_draining());
    }

    #[test]
    fn steps_are_logged_in_order() {
        let s = Shutdown::new();
        s.record(Step::StoppedAccepting);
        s.record(Step::ConnectionsDone { remaining: 0 });
        assert_eq!(
            s.steps(),
            vec![
                Step::StoppedAccepting,
                Step::ConnectionsDone { remaining: 0 }
            ]
        );
    }
}
