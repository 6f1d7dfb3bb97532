//! The null sink: accepts everything, keeps nothing but counts. For benchmarks, load tests and as
//! the smallest example of the [`Sink`] contract.

use crate::pipeline::frame::{AudioFrame, CallId, StreamId, StreamInfo, StreamStats};
use crate::pipeline::sink::{QueueConfig, Sink, SinkError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `[[sinks]] type = "null"`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NullSinkConfig {
    /// Audio frames the queue holds.
    pub queue_frames: usize,
}

impl Default for NullSinkConfig {
    fn default() -> Self {
        Self { queue_frames: 4096 }
    }
}

impl NullSinkConfig {
    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        if (16..=1_000_000).contains(&self.queue_frames) {
            Vec::new()
        } else {
            vec![format!(
                "queue_frames {} must be between 16 and 1000000",
                self.queue_frames
            )]
        }
    }

    /// Queue settings.
    pub fn queue(&self) -> QueueConfig {
        QueueConfig {
            audio_capacity: self.queue_frames,
            ..QueueConfig::default()
        }
    }
}

/// Counts samples and frames; checks the contract's ordering rules.
#[derive(Debug, Default)]
pub struct NullSink {
    open: HashSet<StreamId>,
    /// Samples written (shared so tests and benches can read it).
    pub samples: Arc<AtomicU64>,
}

impl NullSink {
    /// A null sink counting into `samples`.
    pub fn new(samples: Arc<AtomicU64>) -> Self {
        Self {
            open: HashSet::new(),
            samples,
        }
    }
}

impl Sink for NullSink {
    fn kind(&self) -> &'static str {
        "null"
    }
    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        self.open.insert(stream.id);
        Ok(())
    }
    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        if !self.open.contains(&frame.stream) {
            return Err(SinkError::UnknownStream(frame.stream));
        }
        self.samples
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        if !self.open.contains(&stream) {
            return Err(SinkError::UnknownStream(stream));
        }
        self.samples.fetch_add(samples, Ordering::Relaxed);
        Ok(())
    }
    fn close(
        &mut self,
        _call: CallId,
        stream: StreamId,
        _stats: &StreamStats,
    ) -> Result<(), SinkError> {
        if self.open.remove(&stream) {
            Ok(())
        } else {
            Err(SinkError::UnknownStream(stream))
        }
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.open.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::contract;

    #[test]
    fn passes_the_sink_contract_and_counts_every_sample() {
        let n = Arc::new(AtomicU64::new(0));
        let mut s = NullSink::new(n.clone());
        contract::run(&mut s);
        // 2 streams × 10 frames × 320 + 640 gap + 480 on the stream left open
        assert_eq!(n.load(Ordering::Relaxed), 2 * 3200 + 640 + 480);
    }
}
