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
//! | [`cluster`] | cluster mode (`[cluster] nats_url`): the call registry, IncomingCall claims and media-socket routing shared between replicas on NATS JetStream ([`control::shared::ClusterLink`]'s JetStream side), the heartbeat, the `[cluster]` settings |
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
