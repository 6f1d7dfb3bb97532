//! Concrete sinks, one file each, and [`SinkConfig`], the `type`-tagged enum of their settings
//! that [`SinkConfig::start`] turns into running workers. Only this module and `app` name
//! concrete sinks; the pipeline sees the [`crate::pipeline::Sink`] trait.

pub mod names;
pub mod null;
pub mod wav;

use crate::metrics::Metrics;
use crate::pipeline::sink::{spawn_blocking_sink, SinkWorkers};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One `[[sinks]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// WAV recorder.
    Wav(wav::WavSinkConfig),
    /// Counts and discards.
    Null(null::NullSinkConfig),
}

impl SinkConfig {
    /// The default sink: WAV files under `./recordings`.
    pub fn default_wav() -> Self {
        SinkConfig::Wav(wav::WavSinkConfig::default())
    }

    /// The `type` name (also the `sink` metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Wav(_) => "wav",
            SinkConfig::Null(_) => "null",
        }
    }

    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        match self {
            SinkConfig::Wav(c) => c.validate(),
            SinkConfig::Null(c) => c.validate(),
        }
    }

    /// Points file-writing sinks at `dir` (the `--recordings-dir` flag).
    pub fn set_recordings_dir(&mut self, dir: &Path) {
        if let SinkConfig::Wav(c) = self {
            c.dir = dir.to_path_buf();
        }
    }

    /// Starts the sink's workers (`acs_gateway_recordings_finalised_total` counts WAV files).
    pub fn start(&self, metrics: &Arc<Metrics>) -> std::io::Result<SinkWorkers> {
        let kind = self.kind();
        match self {
            SinkConfig::Wav(c) => {
                std::fs::create_dir_all(&c.dir)?;
                let m = metrics.clone();
                let cfg = c.clone();
                let finalised: Arc<dyn Fn() + Send + Sync> =
                    Arc::new(move || m.recordings_finalised.inc());
                spawn_blocking_sink(
                    kind,
                    move |_| Box::new(wav::WavSink::new(cfg.clone(), Some(finalised.clone()))),
                    &c.queue(),
                    metrics.sink(kind),
                )
            }
            SinkConfig::Null(c) => {
                let counter = Arc::new(AtomicU64::new(0));
                spawn_blocking_sink(
                    kind,
                    move |_| Box::new(null::NullSink::new(counter.clone())),
                    &c.queue(),
                    metrics.sink(kind),
                )
            }
        }
    }
}
