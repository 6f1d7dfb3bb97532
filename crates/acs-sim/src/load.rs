//! EDGE: `acs-sim load`: N concurrent real-time calls × P participants against a gateway, with a
//! live progress bar, send-lag histograms, gateway figures from `/metrics` before and after,
//! gateway CPU (user and system) per frame, memory and file descriptors from `/proc`, and the
//! generator's own CPU per frame ([`run_load`] → [`LoadReport`]).
//!
//! Calls start spread evenly over the ramp, stream `duration` of audio and close with 1000, so
//! a run lasts about `ramp + duration`. Send lag = time the write completed − scheduled time,
//! per `AudioData` frame, in microseconds. Two engines:
//!
//! - [`Engine::Shards`] (default): the cheap sharded engine of [`super::engine`] (raw
//!   upgrade, a few shard tasks writing every due frame with `try_write`); `ws://` only.
//! - [`Engine::Tasks`]: one task per call over tokio-tungstenite ([`play_observed`] with frames
//!   generated on the fly by [`LiveFrames`]); several times more CPU per frame, kept for
//!   comparison.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::audio::{frame_dbfs, pcm_le_bytes, samples_per_frame, ACS_RATES, FRAME_MS};
use super::engine::{run_sharded, EngineParams};
use super::error::SimError;
use super::ids::SimRng;
use super::plan::{plan_audio_frame, AudioSlot, PlannedFrame, PlannedKind, MAX_PARTICIPANTS};
use super::play::{acs_headers, play_observed, Pacing, PlayObserver, SentFrame, StreamEnd};
use super::procstat::{self, CpuTimes};
use super::scrape::{scrape_gateway, GatewayFigures};
use super::wsraw::WsUrl;
use acs_protocol::inbound_audio_metadata_json;

/// Highest lag the histograms track exactly (60 s, in µs); larger values are clamped.
pub(crate) const MAX_LAG_US: u64 = 60_000_000;

/// Which load engine runs the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// A few shard tasks own all connections (cheap; `ws://` only).
    #[default]
    Shards,
    /// One tokio-tungstenite task per call (the original engine).
    Tasks,
    /// Not real time: one tokio-tungstenite task per call sends its frames as fast as the socket
    /// takes them (a flood; `--duration-secs` sets how many frames: 50 per second), 16 frames
    /// per socket write ([`crate::play::FAST_BATCH`]). Measures the gateway's cost per frame
    /// when reads batch (a receiver that falls behind reads several frames per wake-up); send
    /// lag means nothing here.
    Flood,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Media WebSocket URL.
    pub url: String,
    /// Concurrent calls.
    pub calls: usize,
    /// Participants per call: 1 = mixed, 2..=4 unmixed.
    pub participants: usize,
    /// How long each call streams.
    pub duration: Duration,
    /// Calls start evenly over this period.
    pub ramp: Duration,
    /// 16000 or 24000.
    pub sample_rate: u32,
    /// Mono PCM at `sample_rate`, looped.
    pub source: Vec<i16>,
    /// What the source is, for the report (`"generated"` or a file name).
    pub source_name: String,
    /// Frames below this level (dBFS) are sent `silent`.
    pub silent_threshold_dbfs: f64,
    /// `Authorization: Bearer` token for every call.
    pub bearer: Option<String>,
    /// Gateway `/metrics` URL to scrape before and after (`None`: skip).
    pub metrics_url: Option<String>,
    /// Gateway process id, for CPU per frame.
    pub gateway_pid: Option<u32>,
    /// Draw the progress bar (it is hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Which engine runs the calls.
    pub engine: Engine,
    /// Shard tasks of [`Engine::Shards`] (0: one per core).
    pub shards: usize,
}

/// The source audio cut into 20 ms frames, base64-encoded once and shared by every call.
#[derive(Debug)]
pub struct EncodedSource {
    frames: Vec<(String, bool)>,
    pcm_bytes: u32,
}

impl EncodedSource {
    /// Encodes `pcm` (zero-padded to whole frames) and flags frames below `threshold_dbfs`
    /// silent.
    pub fn new(pcm: &[i16], sample_rate: u32, threshold_dbfs: f64) -> Self {
        let spf = samples_per_frame(sample_rate);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut buf = vec![0i16; spf];
        let frames = pcm
            .chunks(spf)
            .map(|c| {
                buf.fill(0);
                buf[..c.len()].copy_from_slice(c);
                (
                    b64.encode(pcm_le_bytes(&buf)),
                    frame_dbfs(&buf) < threshold_dbfs,
                )
            })
            .collect();
        EncodedSource {
            frames,
            pcm_bytes: (spf * 2) as u32,
        }
    }

    /// Number of 20 ms frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// No audio at all.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `i`: its base64 payload and whether it is silent.
    pub fn frame(&self, i: usize) -> (&str, bool) {
        let (b64, silent) = &self.frames[i];
        (b64, *silent)
    }

    /// PCM bytes per frame.
    pub fn pcm_bytes(&self) -> u32 {
        self.pcm_bytes
    }
}

/// A lazy, clean ACS stream for one call: `AudioMetadata`, then per 20 ms slot one `AudioData`
/// per participant, reading the shared source in a loop (participant `p` starts `p/P` of the way
/// into it, so participants differ).
#[derive(Debug)]
pub struct LiveFrames {
    src: Arc<EncodedSource>,
    ids: Vec<Option<String>>,
    offsets: Vec<usize>,
    slots: u64,
    slot: u64,
    p: usize,
    start_unix_ms: i64,
    metadata: Option<String>,
}

impl LiveFrames {
    /// `slots` slots for participants `ids` (`[None]` for a mixed stream).
    pub fn new(
        src: Arc<EncodedSource>,
        sample_rate: u32,
        subscription_id: &str,
        ids: Vec<Option<String>>,
        slots: u64,
        start_unix_ms: i64,
    ) -> Self {
        let n = ids.len().max(1);
        let offsets = (0..ids.len()).map(|p| p * src.len() / n).collect();
        LiveFrames {
            metadata: Some(inbound_audio_metadata_json(sample_rate, subscription_id)),
            src,
            ids,
            offsets,
            slots,
            slot: 0,
            p: 0,
            start_unix_ms,
        }
    }
}

impl Iterator for LiveFrames {
    type Item = PlannedFrame;

    fn next(&mut self) -> Option<PlannedFrame> {
        if let Some(text) = self.metadata.take() {
            return Some(PlannedFrame {
                at: Duration::ZERO,
                kind: PlannedKind::AudioMetadata,
                text,
            });
        }
        if self.slot >= self.slots || self.src.is_empty() || self.ids.is_empty() {
            return None;
        }
        let (slot, p) = (self.slot, self.p);
        let (b64, silent) = &self.src.frames[(self.offsets[p] + slot as usize) % self.src.len()];
        self.p += 1;
        if self.p == self.ids.len() {
            self.p = 0;
            self.slot += 1;
        }
        let at = AudioSlot {
            slot,
            participant: p,
            pcm_bytes: self.src.pcm_bytes,
        };
        Some(plan_audio_frame(
            self.start_unix_ms,
            at,
            b64,
            self.ids[p].as_deref(),
            *silent,
        ))
    }
}

/// Live counters shared by the call tasks and the progress bar.
pub(crate) struct Shared {
    pub(crate) connected: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) frames: AtomicU64,
    pub(crate) window: Mutex<Histogram<u64>>,
    pub(crate) done: AtomicBool,
}

pub(crate) fn new_hist() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; failure would be a programming error.
    Histogram::new_with_bounds(1, MAX_LAG_US, 3).expect("histogram bounds")
}

struct CallObserver {
    shared: Arc<Shared>,
    hist: Histogram<u64>,
    connected: bool,
}

impl PlayObserver for CallObserver {
    fn connected(&mut self, _connect_time: Duration) {
        self.connected = true;
        self.shared.connected.fetch_add(1, Ordering::Relaxed);
        self.shared.active.fetch_add(1, Ordering::Relaxed);
    }

    fn sent(&mut self, frame: &SentFrame<'_>) {
        if let PlannedKind::Audio { .. } = frame.kind {
            let us = (frame.lag.as_micros() as u64).clamp(1, MAX_LAG_US);
            self.hist.saturating_record(us);
            self.shared.frames.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut w) = self.shared.window.lock() {
                w.saturating_record(us);
            }
        }
    }
}

mod report;
pub use report::*;

/// Checks the configuration.
pub fn validate(cfg: &LoadConfig) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::InvalidOption(m));
    if !ACS_RATES.contains(&cfg.sample_rate) {
        return bad(format!("--rate {} (16000 or 24000)", cfg.sample_rate));
    }
    if cfg.calls == 0 {
        return bad("--calls 0".into());
    }
    if cfg.participants == 0 || cfg.participants > MAX_PARTICIPANTS {
        return bad(format!(
            "--participants {} (1 to {MAX_PARTICIPANTS})",
            cfg.participants
        ));
    }
    if cfg.duration < Duration::from_millis(FRAME_MS) {
        return bad("--duration-secs must cover at least one 20 ms frame".into());
    }
    if cfg.source.is_empty() {
        return bad("the audio source is empty".into());
    }
    if !cfg.url.starts_with("ws://") {
        return bad(format!(
            "--url {}: acs-sim load speaks plain ws:// only (point it at the gateway's own listener, not a TLS front end)",
            cfg.url
        ));
    }
    Ok(())
}

/// Why a call failed, as a report label; `None` if it completed.
fn failure_label(outcome: &Result<super::play::StreamReport, SimError>) -> Option<String> {
    match outcome {
        Ok(r) => match &r.end {
            StreamEnd::Completed { .. } | StreamEnd::Disconnected => None,
            StreamEnd::ServerClosed(Some(c)) => Some(format!("server_closed_{}", c.code)),
            StreamEnd::ServerClosed(None) => Some("server_closed".into()),
            StreamEnd::Failed(_) => Some("connection_lost".into()),
        },
        Err(SimError::Connect { kind, .. }) => Some(kind.label()),
        Err(_) => Some("error".into()),
    }
}

/// Samples a process's VmRSS every 100 ms until told to stop; returns the highest.
fn spawn_rss_sampler(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Option<u64>> {
    tokio::spawn(async move {
        let mut peak: Option<u64> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if let Ok((rss, _)) = procstat::rss_kib(pid) {
                peak = Some(peak.map_or(rss, |p| p.max(rss)));
            }
            if stop.load(Ordering::Relaxed) {
                return peak;
            }
        }
    })
}

/// Runs the load test (see the module docs) and returns the report; prints nothing except the
/// progress bar.
pub async fn run_load(cfg: LoadConfig) -> Result<LoadReport, SimError> {
    validate(&cfg)?;
    let mut report = LoadReport {
        url: cfg.url.clone(),
        participants: cfg.participants,
        duration_secs: cfg.duration.as_secs_f64(),
        ramp_secs: cfg.ramp.as_secs_f64(),
        sample_rate: cfg.sample_rate,
        source: cfg.source_name.clone(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        acs_sim_version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    };
    report.calls.requested = cfg.calls as u64;
    if let Some(limit) = procstat::open_files_limit() {
        let need = cfg.calls as u64 + 64;
        if limit < need {
            report.warnings.push(format!(
                "open-file limit {limit} is below the ~{need} this run needs; calls may fail with EMFILE (raise it with `ulimit -n {need}`)"
            ));
        }
    }

    let mut gateway = cfg.metrics_url.as_ref().map(|u| GatewaySection {
        metrics_url: u.clone(),
        ..Default::default()
    });
    if let Some(g) = gateway.as_mut() {
        match scrape_gateway(&g.metrics_url).await {
            Ok(f) => g.before = Some(f),
            Err(e) => g.errors.push(format!("before: {e}")),
        }
        if let Ok(text) = crate::scrape::http_get(&g.metrics_url, Duration::from_secs(5)).await {
            let id = crate::scrape::GatewayIdentity::from_exposition(&text);
            report.gateway_version = id.version;
            if id.records_wav {
                report.warnings.push(
                    "the gateway records every call of this run with its wav sink (its recordings folder fills up); for load runs start it with the null sink: ACS_GATEWAY_SINKS='[{type=\"null\"}]'".into(),
                );
            }
        }
    }
    let cpu_before = cfg.gateway_pid.map(|p| procstat::cpu_times(Some(p)));
    let mut process = cfg.gateway_pid.map(|pid| {
        let mut p = ProcessSection {
            pid,
            ..Default::default()
        };
        match procstat::rss_kib(pid) {
            Ok((rss, _)) => p.rss_before_kib = Some(rss),
            Err(e) => p.errors.push(e.to_string()),
        }
        match procstat::open_fds(Some(pid)) {
            Ok(n) => p.fds_before = Some(n),
            Err(e) => p.errors.push(e.to_string()),
        }
        p
    });
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = cfg
        .gateway_pid
        .map(|pid| spawn_rss_sampler(pid, sampler_stop.clone()));
    let self_before = procstat::cpu_times(None).ok();

    let src = Arc::new(EncodedSource::new(
        &cfg.source,
        cfg.sample_rate,
        cfg.silent_threshold_dbfs,
    ));
    let slots = (cfg.duration.as_millis() as u64) / FRAME_MS;
    let shared = Arc::new(Shared {
        connected: AtomicU64::new(0),
        active: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        window: Mutex::new(new_hist()),
        done: AtomicBool::new(false),
    });

    let run_start = Instant::now() + Duration::from_millis(50);
    let total_run = cfg.ramp + cfg.duration;
    let ticker = tokio::spawn(progress(
        shared.clone(),
        cfg.calls as u64,
        run_start,
        total_run,
        cfg.progress,
    ));

    let lag = match cfg.engine {
        Engine::Tasks | Engine::Flood => {
            run_tasks(&cfg, src, slots, &shared, run_start, &mut report).await
        }
        Engine::Shards => {
            let shards = if cfg.shards == 0 {
                std::thread::available_parallelism().map_or(2, |n| n.get())
            } else {
                cfg.shards
            };
            report.generator.shards = shards;
            let params = EngineParams {
                url: WsUrl::parse(&cfg.url)?,
                url_text: cfg.url.clone(),
                calls: cfg.calls,
                participants: cfg.participants,
                slots,
                ramp: cfg.ramp,
                sample_rate: cfg.sample_rate,
                src,
                bearer: cfg.bearer.clone(),
                shards,
                run_start,
            };
            let r = run_sharded(params, shared.clone()).await?;
            let mut lag = new_hist();
            let mut last_end = run_start;
            for c in &r.calls {
                last_end = last_end.max(c.ended);
                if c.connected {
                    report.calls.connected += 1;
                    report.messages_sent += u64::from(c.metadata_bytes > 0);
                    report.bytes_sent += c.metadata_bytes;
                }
                match &c.failure {
                    None => report.calls.completed += 1,
                    Some(label) => {
                        report.calls.failed += 1;
                        *report
                            .calls
                            .failure_reasons
                            .entry(label.clone())
                            .or_default() += 1;
                    }
                }
            }
            for s in &r.shards {
                let _ = lag.add(&s.lag);
                report.frames_sent += s.frames;
                report.messages_sent += s.frames;
                report.bytes_sent += s.payload_bytes;
                report.pcm_bytes_sent += s.pcm_bytes;
            }
            report.wall_secs = last_end.saturating_duration_since(run_start).as_secs_f64();
            lag
        }
    };
    shared.done.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    report.generator.engine = Some(cfg.engine);
    if let (Some(before), Ok(after)) = (self_before, procstat::cpu_times(None)) {
        let d = after.since(&before);
        fill_generator(&mut report.generator, d, report.frames_sent);
    }
    report.send_lag_us = LagSummary::of(&lag);

    if let Some(n) = report.calls.failure_reasons.get("emfile") {
        report.warnings.push(format!(
            "{n} call(s) could not connect: too many open files (EMFILE) in acs-sim; raise the limit with `ulimit -n {}`",
            cfg.calls + 64
        ));
    }

    // Let the gateway finish the last frames before reading its counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(g) = gateway.as_mut() {
        match scrape_gateway(&g.metrics_url).await {
            Ok(f) => g.after = Some(f),
            Err(e) => g.errors.push(format!("after: {e}")),
        }
        if let (Some(b), Some(a)) = (&g.before, &g.after) {
            let d = a.delta(b);
            g.frame_processing_mean_us = d.mean_frame_us();
            g.delta = Some(d);
        }
    }
    if let (Some(pid), Some(before)) = (cfg.gateway_pid, cpu_before) {
        let mut cpu = CpuSection {
            pid,
            ..Default::default()
        };
        match (before, procstat::cpu_times(Some(pid))) {
            (Ok(b), Ok(a)) => {
                let d = a.since(&b);
                cpu.cpu_seconds = Some(d.total());
                cpu.user_seconds = Some(d.user);
                cpu.system_seconds = Some(d.system);
                let gw_frames = gateway
                    .as_ref()
                    .and_then(|g| g.delta.as_ref())
                    .map(|d| d.audio_frames)
                    .filter(|f| *f > 0.0);
                let (frames, basis) = match gw_frames {
                    Some(f) => (f, "gateway"),
                    None => (report.frames_sent as f64, "sent"),
                };
                cpu.frames_basis = basis.into();
                if frames > 0.0 {
                    cpu.cpu_us_per_frame = Some(d.total() * 1e6 / frames);
                    cpu.user_us_per_frame = Some(d.user * 1e6 / frames);
                    cpu.system_us_per_frame = Some(d.system * 1e6 / frames);
                }
            }
            (Err(e), _) | (_, Err(e)) => cpu.error = Some(e.to_string()),
        }
        report.gateway_cpu = Some(cpu);
    }
    sampler_stop.store(true, Ordering::Relaxed);
    if let Some(p) = process.as_mut() {
        if let Some(Ok(peak)) = match sampler {
            Some(h) => Some(h.await),
            None => None,
        } {
            p.rss_peak_kib = peak;
        }
        match procstat::rss_kib(p.pid) {
            Ok((rss, hwm)) => {
                p.rss_after_kib = Some(rss);
                p.vm_hwm_kib = Some(hwm);
                p.rss_peak_kib = Some(p.rss_peak_kib.map_or(rss, |v| v.max(rss)));
            }
            Err(e) => p.errors.push(e.to_string()),
        }
        match procstat::open_fds(Some(p.pid)) {
            Ok(n) => p.fds_after = Some(n),
            Err(e) => p.errors.push(e.to_string()),
        }
        let streams = (cfg.calls * cfg.participants) as f64;
        if let (Some(b), Some(peak)) = (p.rss_before_kib, p.rss_peak_kib) {
            p.rss_per_stream_kib = Some(peak.saturating_sub(b) as f64 / streams);
        }
    }
    report.gateway_process = process;
    report.gateway = gateway;
    Ok(report)
}

fn fill_generator(g: &mut GeneratorSection, d: CpuTimes, frames: u64) {
    g.user_seconds = d.user;
    g.system_seconds = d.system;
    if frames > 0 {
        let f = frames as f64;
        g.cpu_us_per_frame = Some(d.total() * 1e6 / f);
        g.user_us_per_frame = Some(d.user * 1e6 / f);
        g.system_us_per_frame = Some(d.system * 1e6 / f);
    }
}

/// [`Engine::Tasks`]: one task per call over [`play_observed`]; fills the call counts and
/// totals of `report` and returns the merged lag histogram.
async fn run_tasks(
    cfg: &LoadConfig,
    src: Arc<EncodedSource>,
    slots: u64,
    shared: &Arc<Shared>,
    run_start: Instant,
    report: &mut LoadReport,
) -> Histogram<u64> {
    let mut tasks = Vec::with_capacity(cfg.calls);
    let mut rng = SimRng::from_entropy();
    let pacing = if cfg.engine == Engine::Flood {
        Pacing::Fast
    } else {
        Pacing::Realtime
    };
    for i in 0..cfg.calls {
        let start_at = run_start + cfg.ramp.mul_f64(i as f64 / cfg.calls as f64);
        let ids: Vec<Option<String>> = if cfg.participants == 1 {
            vec![None]
        } else {
            (0..cfg.participants)
                .map(|_| Some(rng.participant_raw_id()))
                .collect()
        };
        let headers = acs_headers(&rng.uuid_like(), &rng.uuid_like(), cfg.bearer.as_deref());
        let subscription_id = rng.uuid_like();
        let (url, src, shared, rate) = (
            cfg.url.clone(),
            src.clone(),
            shared.clone(),
            cfg.sample_rate,
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start_at).await;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let frames = LiveFrames::new(src, rate, &subscription_id, ids, slots, now_ms);
            let mut obs = CallObserver {
                shared: shared.clone(),
                hist: new_hist(),
                connected: false,
            };
            let outcome = play_observed(&url, &headers, frames, pacing, &mut obs).await;
            if obs.connected {
                shared.active.fetch_sub(1, Ordering::Relaxed);
            }
            if failure_label(&outcome).is_some() {
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
            (outcome, obs.hist)
        }));
    }

    let mut lag = new_hist();
    let mut last_end = run_start;
    for t in tasks {
        let (outcome, hist) = match t.await {
            Ok(v) => v,
            Err(e) => {
                *report
                    .calls
                    .failure_reasons
                    .entry("task_panicked".into())
                    .or_default() += 1;
                report.calls.failed += 1;
                report.warnings.push(format!("call task failed: {e}"));
                continue;
            }
        };
        last_end = last_end.max(Instant::now());
        let _ = lag.add(&hist);
        if let Some(label) = failure_label(&outcome) {
            report.calls.failed += 1;
            *report.calls.failure_reasons.entry(label).or_default() += 1;
        } else {
            report.calls.completed += 1;
        }
        if let Ok(r) = &outcome {
            report.calls.connected += 1;
            report.frames_sent += r.audio_frames.iter().sum::<u64>();
            report.messages_sent += r.messages_sent;
            report.bytes_sent += r.bytes_sent;
            report.pcm_bytes_sent += r.pcm_bytes.iter().sum::<u64>();
        }
    }
    report.wall_secs = last_end.saturating_duration_since(run_start).as_secs_f64();
    lag
}

/// Drives the progress bar until `shared.done`.
async fn progress(
    shared: Arc<Shared>,
    calls: u64,
    run_start: Instant,
    total: Duration,
    enabled: bool,
) {
    let bar = if enabled {
        indicatif::ProgressBar::new(total.as_millis() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_window = Instant::now();
    let mut p99 = 0u64;
    while !shared.done.load(Ordering::Relaxed) {
        tick.tick().await;
        if last_window.elapsed() >= Duration::from_secs(1) {
            last_window = Instant::now();
            if let Ok(mut w) = shared.window.lock() {
                if !w.is_empty() {
                    p99 = w.value_at_quantile(0.99);
                }
                w.reset();
            }
        }
        bar.set_position(
            (Instant::now()
                .saturating_duration_since(run_start)
                .as_millis() as u64)
                .min(total.as_millis() as u64),
        );
        bar.set_message(format!(
            "calls {}/{} (active {}) frames {} failures {} lag p99 {} µs",
            shared.connected.load(Ordering::Relaxed),
            calls,
            shared.active.load(Ordering::Relaxed),
            shared.frames.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
            p99
        ));
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use acs_protocol::{parse_inbound, Inbound};

    #[test]
    fn live_frames_are_a_clean_unmixed_stream() {
        let pcm = super::super::audio::speech_like(16_000, 1_000);
        let src = Arc::new(EncodedSource::new(&pcm, 16_000, -50.0));
        assert_eq!(src.len(), 50);
        let ids = vec![Some("8:acs:a".to_string()), Some("8:acs:b".to_string())];
        let frames: Vec<_> = LiveFrames::new(src, 16_000, "sub", ids, 60, 1_000).collect();
        assert_eq!(frames.len(), 1 + 120);
        assert!(matches!(
            parse_inbound(frames[0].text.as_bytes()).unwrap(),
            Inbound::AudioMetadata(_)
        ));
        let mut silent = 0;
        for (i, f) in frames[1..].iter().enumerate() {
            assert_eq!(f.at, Duration::from_millis((i / 2) as u64 * 20));
            let Inbound::AudioData(a) = parse_inbound(f.text.as_bytes()).unwrap() else {
                panic!("not audio")
            };
            assert_eq!(
                a.participant(),
                Some(if i % 2 == 0 { "8:acs:a" } else { "8:acs:b" })
            );
            silent += usize::from(a.silent);
        }
        assert!(silent > 30 && silent < 90, "{silent}");
    }

    #[test]
    fn config_is_validated() {
        let cfg = LoadConfig {
            url: "ws://127.0.0.1:1/ws".into(),
            calls: 1,
            participants: 5,
            duration: Duration::from_secs(1),
            ramp: Duration::ZERO,
            sample_rate: 16_000,
            source: vec![0; 320],
            source_name: "test".into(),
            silent_threshold_dbfs: -50.0,
            bearer: None,
            metrics_url: None,
            gateway_pid: None,
            progress: false,
            engine: Engine::Shards,
            shards: 0,
        };
        assert!(validate(&cfg).is_err());
        assert!(validate(&LoadConfig {
            participants: 4,
            ..cfg.clone()
        })
        .is_ok());
        assert!(validate(&LoadConfig {
            sample_rate: 8_000,
            participants: 1,
            ..cfg
        })
        .is_err());
    }

    #[tokio::test]
    async fn refused_calls_are_counted_by_reason() {
        // Bind then drop a listener to get a local port with nothing listening.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = LoadConfig {
            url: format!("ws://127.0.0.1:{port}/ws"),
            calls: 3,
            participants: 1,
            duration: Duration::from_millis(100),
            ramp: Duration::ZERO,
            sample_rate: 16_000,
            source: vec![0; 320],
            source_name: "test".into(),
            silent_threshold_dbfs: -50.0,
            bearer: None,
            metrics_url: Some(format!("http://127.0.0.1:{port}/metrics")),
            gateway_pid: None,
            progress: false,
            engine: Engine::Shards,
            shards: 0,
        };
        let r = tokio::time::timeout(Duration::from_secs(20), run_load(cfg))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.calls.failed, 3);
        assert_eq!(r.calls.connected, 0);
        // the report says when and by what it was made
        assert!(
            chrono::DateTime::parse_from_rfc3339(&r.started_at).is_ok(),
            "{}",
            r.started_at
        );
        assert_eq!(r.acs_sim_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(r.gateway_version, None, "nothing answered the scrape");
        assert_eq!(r.calls.failure_reasons.get("refused"), Some(&3));
        assert_eq!(r.gateway.unwrap().errors.len(), 2);
        let json = serde_json::to_value(LoadReport::default()).unwrap();
        assert!(json.get("send_lag_us").is_some());
    }

    /// A tiny tokio-tungstenite server that checks every message, counts `AudioData`, and
    /// closes the call with `close_with` after `close_after` frames (if given).
    async fn check_server(
        close_after: Option<(u64, u16)>,
    ) -> (String, tokio::task::JoinHandle<(u64, u64)>) {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::Message;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", l.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let mut conns = Vec::new();
            for _ in 0..3 {
                let (s, _) = l.accept().await.unwrap();
                conns.push(tokio::spawn(async move {
                    let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
                    let (mut audio, mut bad) = (0u64, 0u64);
                    while let Some(Ok(m)) = ws.next().await {
                        match m {
                            Message::Text(t) => match parse_inbound(t.as_bytes()) {
                                Ok(Inbound::AudioData(_)) => {
                                    audio += 1;
                                    if let Some((n, code)) = close_after {
                                        if audio == n {
                                            let _ = ws
                                                .send(Message::Close(Some(CloseFrame {
                                                    code: CloseCode::from(code),
                                                    reason: "".into(),
                                                })))
                                                .await;
                                        }
                                    }
                                }
                                Ok(Inbound::AudioMetadata(_)) => {}
                                _ => bad += 1,
                            },
                            Message::Close(_) => {}
                            _ => bad += 1,
                        }
                    }
                    (audio, bad)
                }));
            }
            let mut tot = (0, 0);
            for c in conns {
                let (a, b) = c.await.unwrap();
                tot = (tot.0 + a, tot.1 + b);
            }
            tot
        });
        (url, h)
    }

    fn small_cfg(url: String) -> LoadConfig {
        LoadConfig {
            url,
            calls: 3,
            participants: 2,
            duration: Duration::from_millis(200),
            ramp: Duration::ZERO,
            sample_rate: 16_000,
            source: super::super::audio::speech_like(16_000, 1_000),
            source_name: "test".into(),
            silent_threshold_dbfs: -50.0,
            bearer: Some("t".into()),
            metrics_url: None,
            gateway_pid: Some(std::process::id()),
            progress: false,
            engine: Engine::Shards,
            shards: 2,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sharded_engine_sends_clean_acs_streams() {
        let (url, server) = check_server(None).await;
        let r = tokio::time::timeout(Duration::from_secs(20), run_load(small_cfg(url)))
            .await
            .unwrap()
            .unwrap();
        let (audio, bad) = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.calls.completed, 3, "{:?}", r.calls);
        assert_eq!(r.frames_sent, 3 * 2 * 10);
        assert_eq!((audio, bad), (3 * 2 * 10, 0));
        assert_eq!(r.send_lag_us.count, 60);
        assert_eq!(r.messages_sent, 63);
        let p = r.gateway_process.as_ref().unwrap();
        assert!(p.rss_before_kib.is_some() && p.fds_after.is_some());
        assert!(r.gateway_cpu.as_ref().unwrap().user_seconds.is_some());
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["frames_sent"].is_u64());
        assert!(json["generator"]["user_seconds"].is_f64());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_close_is_a_failure_by_code() {
        let (url, server) = check_server(Some((4, 1011))).await;
        let mut cfg = small_cfg(url);
        cfg.duration = Duration::from_millis(400);
        cfg.participants = 1;
        cfg.gateway_pid = None;
        let r = tokio::time::timeout(Duration::from_secs(20), run_load(cfg))
            .await
            .unwrap()
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        assert_eq!(r.calls.failed, 3, "{:?}", r.calls);
        assert_eq!(r.calls.failure_reasons.get("server_closed_1011"), Some(&3));
        assert!(r.frames_sent < 3 * 20);
    }

    #[test]
    fn wss_is_refused_clearly() {
        let mut cfg = small_cfg("wss://example.invalid/ws".into());
        cfg.gateway_pid = None;
        let e = validate(&cfg).unwrap_err().to_string();
        assert!(e.contains("ws://"), "{e}");
    }
}
