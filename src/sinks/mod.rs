//! Concrete sinks, one file each, and [`SinkConfig`], the `type`-tagged enum of their settings
//! that [`SinkConfig::build_sink`] turns into a sink instance and [`SinkConfig::start`] into
//! running workers. Only this module and `app` name concrete sinks; the pipeline sees the
//! [`crate::pipeline::Sink`] trait. A sink config may nest another (`resample` has `then`): the
//! outer sink owns the inner sink's instance and drives it on its own worker thread.

pub mod forward;
pub(crate) mod names;
pub mod nats;
pub mod null;
pub mod resample;
pub mod wav;

use crate::metrics::Metrics;
use crate::pipeline::playback::PlaybackTarget;
use crate::pipeline::sink::{spawn_blocking_sink, QueueConfig, Sink, SinkWorkers};
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
    /// Publishes audio and events to NATS.
    Nats(nats::NatsSinkConfig),
    /// Converts rate and format, then hands the stream to the sink in its `then`.
    Resample(resample::ResampleSinkConfig),
    /// Streams calls to a WebSocket target and plays its answers back into the call.
    Forward(forward::ForwardSinkConfig),
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
            SinkConfig::Nats(_) => "nats",
            SinkConfig::Resample(_) => "resample",
            SinkConfig::Forward(_) => "forward",
        }
    }

    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        match self {
            SinkConfig::Wav(c) => c.validate(),
            SinkConfig::Null(c) => c.validate(),
            SinkConfig::Nats(c) => c.validate(),
            SinkConfig::Resample(c) => c.validate(),
            SinkConfig::Forward(c) => c.validate(),
        }
    }

    /// Whether the sink takes f32 audio ([`Sink::write_f32`]), so a `resample` with
    /// `format = "f32"` may feed it (the forward sink does).
    pub fn takes_f32(&self) -> bool {
        match self {
            SinkConfig::Wav(_)
            | SinkConfig::Null(_)
            | SinkConfig::Nats(_)
            | SinkConfig::Resample(_) => false,
            SinkConfig::Forward(_) => true,
        }
    }

    /// Queue and worker settings. A `resample` sink uses its own `queue_frames` and its inner
    /// sink's workers and flush interval (the inner sink is flushed through it).
    pub fn queue(&self) -> QueueConfig {
        match self {
            SinkConfig::Wav(c) => c.queue(),
            SinkConfig::Null(c) => c.queue(),
            SinkConfig::Nats(c) => c.queue(),
            SinkConfig::Forward(c) => c.queue(),
            SinkConfig::Resample(c) => QueueConfig {
                audio_capacity: c.queue_frames,
                ..c.then.queue()
            },
        }
    }

    /// Points file-writing sinks at `dir` (the `--recordings-dir` flag).
    pub fn set_recordings_dir(&mut self, dir: &Path) {
        match self {
            SinkConfig::Wav(c) => c.dir = dir.to_path_buf(),
            SinkConfig::Resample(c) => c.then.set_recordings_dir(dir),
            SinkConfig::Null(_) | SinkConfig::Nats(_) | SinkConfig::Forward(_) => {}
        }
    }

    /// One sink instance (what one worker runs), nested sinks included; creates the recordings
    /// folder of file-writing sinks. `acs_gateway_recordings_finalised_total` counts WAV files,
    /// `acs_gateway_recordings_failed_total` those that could not be created or stopped short,
    /// `acs_gateway_recording_bytes_total` the PCM bytes written to them.
    pub fn build_sink(&self, metrics: &Arc<Metrics>) -> std::io::Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::Wav(c) => Box::new(build_wav(c, metrics)?),
            SinkConfig::Null(_) => Box::new(null::NullSink::new(Arc::new(AtomicU64::new(0)))),
            SinkConfig::Nats(c) => Box::new(nats::NatsSink::new(c.clone())),
            // without a context: the current runtime, no playback (see `build_sink_with`)
            SinkConfig::Forward(c) => Box::new(forward::ForwardSink::new(
                c.clone(),
                &SinkContext::current(metrics)?,
            )),
            SinkConfig::Resample(c) => Box::new(resample::ResampleSink::from_config(
                c,
                c.then.build_sink(metrics)?,
            )),
        })
    }

    /// The recordings folder of a file-writing sink (nested ones included), `None` for the others.
    pub fn recordings_dir(&self) -> Option<&Path> {
        match self {
            SinkConfig::Wav(c) => Some(&c.dir),
            SinkConfig::Resample(c) => c.then.recordings_dir(),
            SinkConfig::Null(_) | SinkConfig::Nats(_) | SinkConfig::Forward(_) => None,
        }
    }

    /// Starts the sink's workers, each with its own instance from [`SinkConfig::build_sink`].
    pub fn start(&self, metrics: &Arc<Metrics>) -> std::io::Result<SinkWorkers> {
        self.spawn_workers(|| self.build_sink(metrics), metrics)
    }

    /// Builds one sink per worker with `build` and starts the workers.
    fn spawn_workers(
        &self,
        mut build: impl FnMut() -> std::io::Result<Box<dyn Sink>>,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<SinkWorkers> {
        let kind = self.kind();
        let queue = self.queue();
        let mut sinks = (0..queue.workers.max(1))
            .map(|_| build())
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter();
        spawn_blocking_sink(
            kind,
            move |_| {
                sinks
                    .next()
                    .expect("spawn_blocking_sink asks for one sink per worker")
            },
            &queue,
            metrics.sink(kind),
        )
    }
}

/// A WAV sink counting its finalised and failed files in `metrics`; creates its folder.
fn build_wav(c: &wav::WavSinkConfig, metrics: &Arc<Metrics>) -> std::io::Result<wav::WavSink> {
    std::fs::create_dir_all(&c.dir)?;
    let m = metrics.clone();
    let finalised: Arc<dyn Fn() + Send + Sync> = Arc::new(move || m.recordings_finalised.inc());
    let m = metrics.clone();
    Ok(wav::WavSink::new(c.clone(), Some(finalised))
        .with_failure_hook(Arc::new(move |reason| m.recording_failed(reason)))
        .with_bytes_counter(metrics.recording_bytes.clone()))
}

/// What sinks may need from the running gateway besides their settings: the metrics, the tokio
/// runtime (the forward sink runs its connections there), where audio is played back into
/// calls (the ingress's playback hub; `None` when playback is off) and who takes the finished
/// call folders of WAV sinks (the recordings uploader; `None` when uploads are off).
#[derive(Clone)]
pub struct SinkContext {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The gateway's runtime.
    pub runtime: tokio::runtime::Handle,
    /// Bidirectional playback into calls.
    pub playback: Option<Arc<dyn PlaybackTarget>>,
    /// Called with each call folder a WAV sink has finalised.
    pub folders: Option<wav::FolderHook>,
}

impl std::fmt::Debug for SinkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkContext")
            .field("playback", &self.playback.is_some())
            .field("folders", &self.folders.is_some())
            .finish()
    }
}

impl SinkContext {
    /// A context on `runtime` without playback.
    pub fn new(metrics: Arc<Metrics>, runtime: tokio::runtime::Handle) -> Self {
        Self {
            metrics,
            runtime,
            playback: None,
            folders: None,
        }
    }

    /// A context on the runtime the caller runs in, without playback; an error outside one.
    pub fn current(metrics: &Arc<Metrics>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            std::io::Error::other(format!("the forward sink needs a tokio runtime: {e}"))
        })?;
        Ok(Self::new(metrics.clone(), runtime))
    }

    /// The same context playing audio back through `playback`.
    pub fn with_playback(mut self, playback: Arc<dyn PlaybackTarget>) -> Self {
        self.playback = Some(playback);
        self
    }

    /// The same context handing every finalised call folder of WAV sinks to `hook`.
    pub fn with_folder_hook(mut self, hook: wav::FolderHook) -> Self {
        self.folders = Some(hook);
        self
    }
}

impl SinkConfig {
    /// Like [`SinkConfig::build_sink`], with the runtime and playback target of `ctx` for the
    /// sinks that use them (the forward sink, also inside a `resample`).
    pub fn build_sink_with(&self, ctx: &SinkContext) -> std::io::Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::Forward(c) => Box::new(forward::ForwardSink::new(c.clone(), ctx)),
            SinkConfig::Resample(c) => Box::new(resample::ResampleSink::from_config(
                c,
                c.then.build_sink_with(ctx)?,
            )),
            SinkConfig::Wav(c) => {
                let sink = build_wav(c, &ctx.metrics)?;
                match &ctx.folders {
                    Some(hook) => Box::new(sink.with_folder_hook(hook.clone())),
                    None => Box::new(sink),
                }
            }
            _ => return self.build_sink(&ctx.metrics),
        })
    }

    /// Like [`SinkConfig::start`], building each worker's sink with [`SinkConfig::build_sink_with`].
    pub fn start_with(&self, ctx: &SinkContext) -> std::io::Result<SinkWorkers> {
        self.spawn_workers(|| self.build_sink_with(ctx), &ctx.metrics)
    }
}
