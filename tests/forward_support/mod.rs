//! Helpers shared by the forward sink's integration tests (`tests/forward_*.rs`): a forward
//! sink started through `SinkConfig` on the test's runtime, calls and frames, bounded waits.
//! Everything is loopback (127.0.0.1) with timeouts.
#![allow(dead_code)]

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::frame::{AudioFrame, CallEvent, CallInfo, EndReason, SinkMsg};
use acs_media_gateway::pipeline::playback::PlaybackTarget;
use acs_media_gateway::pipeline::sink::{contract, SinkHandle, SinkWorkers};
use acs_media_gateway::pipeline::StreamInfo;
use acs_media_gateway::sinks::forward::ForwardSinkConfig;
use acs_media_gateway::sinks::{SinkConfig, SinkContext};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../common/wait.rs"]
mod wait;
pub use wait::until;

/// Generous bound for any single step.
pub const STEP: Duration = Duration::from_secs(10);

/// A forward config for `url` with quick reconnects.
pub fn forward_cfg(url: String) -> ForwardSinkConfig {
    let mut c = ForwardSinkConfig::new(url);
    c.reconnect.initial_ms = 50;
    c.reconnect.max_ms = 200;
    c.reconnect.jitter = 0.5;
    c.connect_timeout_ms = 2000;
    c
}

/// The context of the test's runtime, playing back through `playback`.
pub fn context(metrics: &Arc<Metrics>, playback: Option<Arc<dyn PlaybackTarget>>) -> SinkContext {
    let ctx = SinkContext::new(metrics.clone(), tokio::runtime::Handle::current());
    match playback {
        Some(p) => ctx.with_playback(p),
        None => ctx,
    }
}

/// Starts `cfg` through `SinkConfig::start_with`, as the gateway does.
pub fn start(cfg: SinkConfig, ctx: &SinkContext) -> SinkWorkers {
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg.start_with(ctx).expect("sink starts")
}

/// Finishes the workers (off the async threads) and checks they all ended.
pub async fn finish(w: SinkWorkers) {
    let left = tokio::task::spawn_blocking(move || w.finish_and_join(Instant::now() + STEP))
        .await
        .unwrap();
    assert_eq!(left, 0, "sink workers ended");
}

/// Call `id` (label `contract-call-<id>`).
pub fn call(id: u64) -> Arc<CallInfo> {
    contract::call(id)
}

/// A stream of `call` (`participant: None` = ACS's mixed stream).
pub fn stream(
    call: &Arc<CallInfo>,
    id: u64,
    participant: Option<&str>,
    rate: u32,
) -> Arc<StreamInfo> {
    contract::stream(call, id, participant, rate)
}

/// Frame `i` of a test stream: 20 ms whose samples say where they belong (`base + i·1000 + k`
/// folded into 1..=30000, times `sign`), so order and origin can be checked sample by sample.
pub fn samples(i: u64, rate: u32, sign: i16) -> Vec<i16> {
    let n = (rate / 50) as u64;
    (0..n)
        .map(|k| (((i * 1000 + k) % 30_000) as i16 + 1) * sign)
        .collect()
}

/// Sends frames `range` of `stream` through `h`; returns the samples sent.
pub fn send_frames(
    h: &SinkHandle,
    call: u64,
    stream: u64,
    rate: u32,
    sign: i16,
    range: std::ops::Range<u64>,
) -> Vec<i16> {
    let mut all = Vec::new();
    let n = u64::from(rate / 50);
    for i in range {
        let s = samples(i, rate, sign);
        assert!(
            h.send_audio(&Arc::new(AudioFrame::new(call, stream, i * n, rate, &s))),
            "queued"
        );
        all.extend_from_slice(&s);
    }
    all
}

/// A call event message.
pub fn event(call: &Arc<CallInfo>, e: CallEvent) -> SinkMsg {
    SinkMsg::Event {
        call: call.clone(),
        event: Arc::new(e),
    }
}

/// The call's end.
pub fn ended(call: &Arc<CallInfo>) -> SinkMsg {
    SinkMsg::CallEnded {
        call: call.clone(),
        reason: EndReason::PeerClosed,
    }
}
