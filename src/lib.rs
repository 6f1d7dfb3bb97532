//! # acs-media-gateway
//!
//! A media gateway between Azure Communication Services (ACS) Call Automation media streaming and
//! speech, AI and recording back ends.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | PURE: the ACS wire formats (inbound/outbound media messages, timestamps) |
//! | [`pipeline`] | PURE: PCM decoding, ring buffer, timeline (gap filler), silence detector, mixer, the [`pipeline::Sink`] trait and fan-out |
//! | [`sinks`] | one file per sink; [`sinks::SinkConfig`] is the `type`-tagged config enum |
//! | [`ingress`] | EDGE: HTTP listener, WebSocket upgrade, one task per media connection |
//! | [`control`] | EDGE: HTTP routes (health, readiness, metrics) |
//! | [`app`] | wiring: builds everything from [`config::Config`]; [`app::AppHandle`] |
//! | [`config`], [`metrics`], [`shutdown`] | leaves: configuration tree, Prometheus registry, shutdown phases |
//! | [`sim`] | `acs-sim`: ACS media-stream simulator (plan frames with faults, play, load test) |
//!
//! Dependency direction: `main → app → {ingress, control} → pipeline → protocol`; `app → sinks → pipeline`.

pub mod app;
pub mod config;
pub mod control;
pub mod ingress;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod shutdown;
pub mod sim;
pub mod sinks;
