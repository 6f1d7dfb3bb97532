//! The `acs-sim` simulator: plays audio into a media WebSocket exactly like ACS Call Automation
//! media streaming does (docs/PROTOCOL.md §1), with fault injection, runs load tests against the
//! gateway, and plays the ACS control plane: a fake ACS (signed REST API, callbacks, media
//! streaming, JWKS), an Event Grid emulator and a whole-call scenario (§3–§8, §11). The
//! `acs-sim` binary is a thin wrapper over [`cli`].
//!
//! | module | owns |
//! |---|---|
//! | [`plan`] | PURE: [`StreamPlan`] → [`plan_frames`]: the exact text of every message in send order, with faults |
//! | [`audio`] | WAV → mono PCM at 16/24 kHz (channel average, linear interpolation), generated test signal, frame levels |
//! | [`mod@play`] | EDGE: WebSocket client: ACS upgrade headers, drift-free real-time pacing, close/disconnect, [`StreamReport`] |
//! | [`load`] | EDGE: N concurrent calls × P participants, progress bar, send-lag histogram, [`LoadReport`] |
//! | [`engine`] | EDGE: the cheap sharded real-time engine behind `load` (raw upgrade, `try_write`, one timer per shard) |
//! | [`wsraw`] | EDGE: minimal WebSocket client pieces: hand-made upgrade, masked frames, server-frame parser |
//! | [`churn`] | EDGE: connect → stream → close cycles ([`churn::run_churn`]) and the WAV recordings check ([`churn::check_recordings`]) |
//! | [`scrape`] | EDGE: minimal HTTP GET of `/metrics`, [`GatewayFigures`] |
//! | [`procstat`] | EDGE: CPU time (user/system), RSS, open fds and open-file limits from `/proc` |
//! | [`ids`] | random UUID-shaped ids and participant raw ids |
//! | [`mod@acs`] | EDGE: the fake ACS ([`acs::FakeAcs`] → [`acs::FakeAcsHandle`]) |
//! | [`jwt`] | the fake ACS's RS256 tokens, JWKS and OpenID document |
//! | [`eventgrid`] | EDGE: Event Grid handshakes and IncomingCall deliveries with retries and duplicates |
//! | [`scenario`] | EDGE: one whole call through a running gateway ([`scenario::run_call`]) |
//! | [`proxy`] | EDGE: the round-robin TCP proxy in front of a gateway fleet ([`proxy::start`]) |
//! | [`cli`], [`cli_acs`] | the `acs-sim` command line (`stream`, `load`, `churn`; `acs`, `eventgrid`, `call`; `proxy`) |
//! | [`error`] | [`SimError`], [`ConnectFailure`] |
//!
//! Tests drive a gateway the way ACS would with [`plan_frames`] + [`play()`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), acs_sim::SimError> {
//! use acs_sim::{acs_headers, audio, plan_frames, play, Pacing, StreamPlan};
//! let mut plan = StreamPlan::mixed(16_000, audio::speech_like(16_000, 2_000));
//! plan.faults.gap_every = Some(10);
//! let frames = plan_frames(&plan)?;
//! let headers = acs_headers("call-1", "corr-1", None);
//! let report = play("ws://127.0.0.1:8080/ws", &headers, frames, Pacing::Fast).await?;
//! assert!(report.clean());
//! # Ok(()) }
//! ```

pub mod acs;
pub mod audio;
pub mod churn;
pub mod cli;
pub mod cli_acs;
pub mod engine;
pub mod error;
pub mod eventgrid;
pub mod ids;
pub mod jwt;
pub mod load;
pub mod plan;
pub mod play;
pub mod procstat;
pub mod proxy;
pub mod scenario;
pub mod scrape;
pub mod wsraw;

pub use error::{ConnectFailure, SimError};
pub use load::{run_load, LoadConfig, LoadReport};
pub use plan::{
    plan_frames, Delivery, Faults, Participant, PlannedFrame, PlannedKind, StreamPlan,
    MALFORMED_FRAME,
};
pub use play::{
    acs_headers, play, play_observed, CloseInfo, Pacing, PlayObserver, SentFrame, StreamEnd,
    StreamReport,
};
pub use scrape::GatewayFigures;

#[cfg(test)]
mod plan_tests;
