//! # acs-media-gateway
//!
//! A media gateway between Azure Communication Services (ACS) Call Automation media streaming and
//! speech, AI and recording back ends.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | PURE, its own crate (`crates/acs-protocol`, re-exported here): the ACS wire formats — media messages (with the AudioData fast path), timestamps, base64, identifiers (rawId), HMAC request signing, call tokens, Event Grid and callback events, REST bodies |
//! | [`pipeline`] | PURE: PCM decoding, ring buffer, timeline (gap filler), silence detector, mixer, shared frames, the [`pipeline::Sink`] trait and fan-out, the playback seam, the rate limiter of repeated sink errors (`log_limit`) |
//! | [`sinks`] | one file per sink (wav, resample, forward, nats, null); [`sinks::SinkConfig`] is the `type`-tagged config enum |
//! | [`ingress`] | EDGE: HTTP listener, WebSocket upgrade, one task per media connection, the paced playback writer, overload protection (`headroom`: 503 while the runtime lags or sink queues fill) |
//! | [`control`] | EDGE: health/readiness/metrics routes, Event Grid webhook, answer policy, ACS REST client, callbacks and call registry, operator API, JWT and call-token admission |
//! | [`upload`] | recordings to Azure Blob Storage: the queue of finalised call folders of the WAV sinks, upload workers with retries, the `[upload]` settings |
//! | `cluster` | cluster mode (`[cluster] nats_url`): the call registry, IncomingCall claims and media-socket routing shared between replicas on NATS JetStream (`control::shared::ClusterLink`'s JetStream side), the heartbeat, the `[cluster]` settings |
//! | [`app`] | wiring: builds everything from [`config::Config`]; [`app::AppHandle`] |
//! | [`config`] | the configuration tree: loads, validates, and embeds or builds each module's own settings type |
//! | [`metrics`], [`shutdown`] | leaves: Prometheus registry, shutdown phases |
//!
//! # Dependency line
//!
//! A module uses only the modules listed after its arrow, so the graph has no cycle
//! (`tests/module_graph.rs` reads this list and checks every `crate::` path in `src/` outside
//! test modules against it):
//!
//! - `app` → `config`, `ingress`, `cluster`, `control`, `sinks`, `upload`, `pipeline`, `metrics`, `shutdown`
//! - `config` → `cluster`, `control`, `sinks`, `upload`, `pipeline`
//! - `cluster` → `control`, `metrics`
//! - `upload` → `sinks`, `metrics`
//! - `ingress` → `control`, `pipeline`, `metrics`, `shutdown`
//! - `control` → `metrics`, `shutdown`
//! - `sinks` → `pipeline`, `metrics`
//! - `pipeline` → `metrics`
//! - `metrics` → (none)
//! - `shutdown` → (none)
//!
//! Every module may use [`protocol`]. Each module owns its settings type (`control::config`,
//! [`pipeline::PipelineConfig`], [`sinks::SinkConfig`]); [`config`] embeds or builds them, never
//! the other way. The control plane is built before the listener's state, which is handed it.
//! [`pipeline`] reads no clock: its callers hand it `now`. Sinks reach calls for playback only
//! through [`pipeline::playback::PlaybackTarget`]. The emulator, `acs-sim`, is a separate crate
//! (`crates/acs-sim`) that uses `acs-protocol` for every message it sends or checks and is never
//! part of the gateway's build; the gateway's tests use it as a dev-dependency. Test doubles
//! shared with `tests/` and `benches/` (`pipeline::sink::contract`, `sinks::forward::echo`) exist
//! only with the `testkit` feature, which only test, bench and example builds turn on; the scripted
//! fake ACS client of the control plane's unit tests (`control::mock`) only in `cfg(test)`.
//!
//! # Visibility
//!
//! `pub` is the library's API: what `src/main.rs`, `tests/`, `benches/` and `examples/` use
//! (the app, the configuration tree, the pipeline and its `Sink` trait, the sinks, the metrics
//! registry, the control plane, the protocol re-export). Everything else is `pub(crate)` or
//! private; `unreachable_pub` is denied below, so a `pub` that nothing outside can reach does not
//! compile.
//!
//! # Examples
//!
//! Starting and stopping the whole gateway: [`app::start`].
//!
//! ## Load a configuration
//!
//! A configuration from TOML text ([`config::Config::load`] reads a file, with the environment
//! and the flags on top); keys left out keep their defaults:
//!
//! ```
//! use acs_media_gateway::config::Config;
//!
//! let cfg: Config = toml::from_str(
//!     r#"
//!     [server]
//!     listen = "127.0.0.1:0"
//!
//!     [[sinks]]
//!     type = "null"
//!     "#,
//! )
//! .unwrap();
//! cfg.validate().unwrap();
//! assert_eq!(cfg.server.listen, "127.0.0.1:0");
//! assert_eq!(cfg.server.max_connections, Config::default().server.max_connections);
//!
//! // a typo is an error, not a silent default
//! assert!(toml::from_str::<Config>("[server]\nlisen = \"127.0.0.1:0\"").is_err());
//! ```
//!
//! ## Feed a pipeline
//!
//! A pipeline with one sink, fed the first two messages of a media connection (the metadata, then
//! 20 ms of audio): the sink sees one stream open and its 320 samples.
//!
//! ```
//! use acs_media_gateway::metrics::Metrics;
//! use acs_media_gateway::pipeline::sink::{ManualSink, QueueConfig};
//! use acs_media_gateway::pipeline::{
//!     AudioFrame, CallId, EndReason, FanOut, Handled, Pipeline, PipelineConfig, Sink, SinkError,
//!     StreamId, StreamInfo, StreamStats,
//! };
//! use acs_media_gateway::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
//! use base64::Engine as _;
//! use std::sync::{Arc, Mutex};
//!
//! /// Counts the streams opened and the samples written.
//! struct Counter(Arc<Mutex<(usize, usize)>>);
//!
//! impl Sink for Counter {
//!     fn kind(&self) -> &'static str {
//!         "counter"
//!     }
//!     fn open(&mut self, _stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
//!         self.0.lock().unwrap().0 += 1;
//!         Ok(())
//!     }
//!     fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
//!         self.0.lock().unwrap().1 += frame.samples().len();
//!         Ok(())
//!     }
//!     fn close(&mut self, _: CallId, _: StreamId, _: &StreamStats) -> Result<(), SinkError> {
//!         Ok(())
//!     }
//! }
//!
//! let metrics = Metrics::new();
//! let seen = Arc::new(Mutex::new((0, 0)));
//! // a queue drained by hand here; the gateway gives each queue a worker thread
//! let (handle, mut sink) = ManualSink::new(
//!     Box::new(Counter(seen.clone())),
//!     &QueueConfig::default(),
//!     metrics.sink("counter"),
//! );
//! let pipeline = Pipeline::new(PipelineConfig::default(), FanOut::new(vec![handle]), metrics);
//!
//! // one call per media connection, opened at a time the caller read (ms since the Unix epoch)
//! let mut call = pipeline.start_call(None, None, None, 1_731_698_172_925);
//! let metadata = inbound_audio_metadata_json(16_000, "89e8cb59-b991-48b0-b154-1db84f16a077");
//! assert_eq!(call.handle(metadata.as_bytes()).unwrap(), Handled::Metadata);
//!
//! let pcm = base64::engine::general_purpose::STANDARD.encode([0u8; 640]); // 320 samples
//! let mut frame = String::new();
//! inbound_audio_data_json(&mut frame, &pcm, "2024-11-15T19:16:12.925Z", None, false);
//! assert_eq!(call.handle(frame.as_bytes()).unwrap(), Handled::Audio);
//!
//! call.finish(EndReason::PeerClosed);
//! sink.drain();
//! assert_eq!(*seen.lock().unwrap(), (1, 320));
//! ```
#![deny(missing_docs)]
#![deny(unreachable_pub)]

pub mod app;
pub(crate) mod cluster;
pub mod config;
pub mod control;
pub mod ingress;
pub mod metrics;
pub mod pipeline;
/// The ACS wire formats: the [`acs_protocol`] crate, re-exported so the gateway's modules and
/// users name them `protocol::…`.
pub use acs_protocol as protocol;
pub mod shutdown;
pub mod sinks;
pub mod upload;
