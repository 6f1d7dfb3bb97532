//! EDGE: `acs-sim churn`: many short media connections, to find leaks and lost control messages
//! in the gateway ([`run_churn`] → [`ChurnReport`]), and the check that the gateway's WAV sink
//! finalised every call ([`check_recordings`], [`wait_for_recordings`]).
//!
//! A cycle is: connect (fresh unique `x-ms-call-connection-id`, so each cycle gets its own
//! recordings folder) → `AudioMetadata` → `frames` × `AudioData` (unpaced) → Close 1000 → wait
//! for the server's close reply. `concurrency` workers run cycles back to back, or at `rate`
//! cycles per second overall. With the gateway's pid, its open fds and RSS are compared before
//! and after; with its recordings folder, every call folder, `call.json` and `.wav` is checked.
//!
//! `warmup_cycles` run first, unmeasured (their recordings are waited for and left alone): a
//! process that has never served this concurrency touches memory once for it (its allocator's
//! working set, code pages run for the first time), and growth measured from a cold process
//! mixes that one-time step with what churn itself keeps. The report gives both: the cold RSS
//! and the growth of the measured cycles after the warm-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::audio::{ACS_RATES, FRAME_MS};
use super::error::SimError;
use super::ids::SimRng;
use super::load::EncodedSource;
use super::play::{acs_headers, DEFAULT_CONNECT_TIMEOUT};
use super::procstat;
use super::wsraw::{self, opcode, FrameParser, ServerEvent, WsUrl};
use acs_protocol::{format_timestamp, inbound_audio_data_json, inbound_audio_metadata_json};

/// How long a cycle waits for the server's close reply.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// Media WebSocket URL (`ws://`).
    pub url: String,
    /// Connect/stream/close cycles.
    pub cycles: u64,
    /// `AudioData` frames per cycle.
    pub frames: u64,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Cycles started per second overall (`None`: as fast as the workers go).
    pub rate: Option<f64>,
    /// 16000 or 24000.
    pub sample_rate: u32,
    /// Mono PCM, looped.
    pub source: Vec<i16>,
    /// `Authorization: Bearer` token.
    pub bearer: Option<String>,
    /// Gateway process id (fds and RSS before/after).
    pub gateway_pid: Option<u32>,
    /// The gateway's WAV recordings folder, to check after the run.
    pub recordings_dir: Option<PathBuf>,
    /// How long to wait for the recordings to be finalised after the last close.
    pub finalise_timeout: Duration,
    /// Cycles run before the measured ones, not counted (see the module docs).
    pub warmup_cycles: u64,
}

impl ChurnConfig {
    /// `cycles` cycles of `frames` frames against `url`, 50 workers, a generated 16 kHz tone.
    pub fn new(url: &str, cycles: u64, frames: u64) -> Self {
        ChurnConfig {
            url: url.to_string(),
            cycles,
            frames,
            concurrency: 50,
            rate: None,
            sample_rate: 16_000,
            source: super::audio::speech_like(16_000, 1_000),
            bearer: None,
            gateway_pid: None,
            recordings_dir: None,
            finalise_timeout: Duration::from_secs(5),
            warmup_cycles: 0,
        }
    }
}

/// How long after the run's "after" sample the gateway's RSS is read again
/// ([`ChurnProcess::rss_settled_kib`]).
pub const RSS_SETTLE: Duration = Duration::from_secs(2);

/// Gateway process figures before and after.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnProcess {
    /// Gateway pid.
    pub pid: u32,
    /// Open fds before.
    pub fds_before: Option<u64>,
    /// Open fds after (and after the recordings wait, if any).
    pub fds_after: Option<u64>,
    /// VmRSS before, KiB.
    pub rss_before_kib: Option<u64>,
    /// VmRSS after, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) per 1,000 ok cycles, KiB (negative: shrank).
    pub rss_growth_per_1000_kib: Option<f64>,
    /// VmRSS [`RSS_SETTLE`] after the "after" sample, KiB: what the gateway keeps once it has
    /// had a moment to give back the memory of the burst (its allocator returns freed memory
    /// lazily), so growth here is what stays.
    pub rss_settled_kib: Option<u64>,
    /// (settled − before) per 1,000 ok cycles, KiB.
    pub rss_settled_growth_per_1000_kib: Option<f64>,
    /// Read errors.
    pub errors: Vec<String>,
}

/// What [`check_recordings`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordingsCheck {
    /// Folder checked.
    pub dir: PathBuf,
    /// Call folders expected.
    pub expected_calls: u64,
    /// Call folders found (`<dir>/<date>/<prefix>…`).
    pub call_folders: u64,
    /// Folders whose `call.json` parses and has `call.endedAt`.
    pub finalised_calls: u64,
    /// `.wav` files found.
    pub wav_files: u64,
    /// `.wav` files whose RIFF and data sizes do not match their length.
    pub unfinalised_wavs: u64,
    /// Seconds from the last close until everything was finalised (`None`: it never was
    /// within the timeout, or no wait was made).
    pub finalised_after_secs: Option<f64>,
    /// The first few problems, for humans.
    pub problems: Vec<String>,
}

impl RecordingsCheck {
    /// Every expected call has a finalised folder and every WAV is finalised.
    pub fn complete(&self) -> bool {
        self.call_folders == self.expected_calls
            && self.finalised_calls == self.expected_calls
            && self.unfinalised_wavs == 0
    }
}

/// The unmeasured cycles run first ([`ChurnConfig::warmup_cycles`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnWarmup {
    /// Cycles run.
    pub cycles: u64,
    /// Of which completed.
    pub cycles_ok: u64,
    /// The gateway's VmRSS before the warm-up (a cold process: before it served any of this),
    /// KiB; the measured run's "before" is taken [`RSS_SETTLE`] after the warm-up's recordings
    /// were finalised.
    pub rss_cold_kib: Option<u64>,
}

/// Everything a churn run measured; serialized as the `--report` JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnReport {
    /// URL.
    pub url: String,
    /// Cycles asked for.
    pub cycles_requested: u64,
    /// Cycles that completed (server replied to our close).
    pub cycles_ok: u64,
    /// Cycles that did not.
    pub cycles_failed: u64,
    /// Failures by reason (`http_503`, `no_close_reply`, `server_closed_1011`, …).
    pub failure_reasons: BTreeMap<String, u64>,
    /// Frames per cycle.
    pub frames_per_cycle: u64,
    /// Workers.
    pub concurrency: usize,
    /// Wall-clock seconds of the cycles.
    pub wall_secs: f64,
    /// Cycles per second.
    pub cycles_per_sec: f64,
    /// The `x-ms-call-connection-id` prefix of this run (`<prefix><n>`).
    pub call_id_prefix: String,
    /// The warm-up, when one ran.
    pub warmup: Option<ChurnWarmup>,
    /// Gateway process figures (of the measured cycles).
    pub gateway: Option<ChurnProcess>,
    /// Recordings check.
    pub recordings: Option<RecordingsCheck>,
}

impl ChurnReport {
    /// Nothing failed and nothing was lost.
    pub fn clean(&self) -> bool {
        self.cycles_failed == 0 && self.recordings.as_ref().is_none_or(|r| r.complete())
    }
}

impl std::fmt::Display for ChurnReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "acs-sim churn: {}", self.url)?;
        writeln!(
            f,
            "  cycles     requested {}  ok {}  failed {}  ({} frames each, {} workers)",
            self.cycles_requested,
            self.cycles_ok,
            self.cycles_failed,
            self.frames_per_cycle,
            self.concurrency
        )?;
        for (reason, n) in &self.failure_reasons {
            writeln!(f, "             {n} × {reason}")?;
        }
        writeln!(
            f,
            "  rate       {:.0} cycles/s over {:.1} s",
            self.cycles_per_sec, self.wall_secs
        )?;
        let o = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        if let Some(w) = &self.warmup {
            let before = self.gateway.as_ref().and_then(|g| g.rss_before_kib);
            writeln!(
                f,
                "  warm-up    {} cycles first ({} ok), not measured; RSS cold {} KiB → {} KiB when the measured cycles began",
                w.cycles,
                w.cycles_ok,
                o(w.rss_cold_kib),
                o(before),
            )?;
        }
        if let Some(g) = &self.gateway {
            let per = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:+.1}"));
            writeln!(
                f,
                "  gateway    pid {}: fds {} → {}; RSS {} → {} KiB ({} KiB per 1,000 connections), {} KiB {} s later ({} per 1,000)",
                g.pid,
                o(g.fds_before),
                o(g.fds_after),
                o(g.rss_before_kib),
                o(g.rss_after_kib),
                per(g.rss_growth_per_1000_kib),
                o(g.rss_settled_kib),
                RSS_SETTLE.as_secs(),
                per(g.rss_settled_growth_per_1000_kib),
            )?;
            for e in &g.errors {
                writeln!(f, "  gateway    {e}")?;
            }
        }
        if let Some(r) = &self.recordings {
            writeln!(
                f,
                "  recordings {} call folders (expected {}), {} finalised calls, {} WAVs ({} unfinalised); {}",
                r.call_folders,
                r.expected_calls,
                r.finalised_calls,
                r.wav_files,
                r.unfinalised_wavs,
                match r.finalised_after_secs {
                    Some(s) => format!("all finalised {s:.2} s after the last close"),
                    None => "NOT all finalised".to_string(),
                }
            )?;
            for p in &r.problems {
                writeln!(f, "             {p}")?;
            }
        }
        Ok(())
    }
}

/// Checks the configuration.
pub fn validate(cfg: &ChurnConfig) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::InvalidOption(m));
    if !ACS_RATES.contains(&cfg.sample_rate) {
        return bad(format!(
            "--sample-rate {} (16000 or 24000)",
            cfg.sample_rate
        ));
    }
    if cfg.cycles == 0 || cfg.concurrency == 0 {
        return bad("--cycles and --concurrency must be ≥ 1".into());
    }
    if cfg.source.is_empty() {
        return bad("the audio source is empty".into());
    }
    if let Some(r) = cfg.rate {
        if !(r.is_finite() && r > 0.0) {
            return bad(format!("--rate {r}"));
        }
    }
    WsUrl::parse(&cfg.url).map(|_| ())
}

/// Shared between the workers.
struct Run {
    url: WsUrl,
    url_text: String,
    prefix: String,
    bearer: Option<String>,
    metadata: String,
    src: EncodedSource,
    frames: u64,
    next: AtomicU64,
    cycles: u64,
    start: Instant,
    rate: Option<f64>,
    outcome: Mutex<(u64, BTreeMap<String, u64>, Option<Instant>)>,
}

/// Runs the churn (see the module docs), then the recordings check if asked; prints nothing.
pub async fn run_churn(cfg: ChurnConfig) -> Result<ChurnReport, SimError> {
    validate(&cfg)?;
    let mut rng = SimRng::from_entropy();
    let warmup = match cfg.warmup_cycles {
        0 => None,
        n => {
            let rss_cold_kib = cfg
                .gateway_pid
                .and_then(|pid| procstat::rss_kib(pid).ok().map(|(rss, _)| rss));
            let prefix = format!("churnw-{:08x}-", rng.next_u64() as u32);
            let done = run_cycles(&cfg, n, &prefix, &mut rng).await?;
            if let Some(dir) = &cfg.recordings_dir {
                let last = done.last_close.unwrap_or_else(Instant::now);
                wait_for_recordings(dir, &prefix, done.ok, last, cfg.finalise_timeout).await;
            }
            tokio::time::sleep(RSS_SETTLE).await;
            Some(ChurnWarmup {
                cycles: n,
                cycles_ok: done.ok,
                rss_cold_kib,
            })
        }
    };
    let prefix = format!("churn-{:08x}-", rng.next_u64() as u32);
    let mut gateway = cfg.gateway_pid.map(|pid| {
        let mut g = ChurnProcess {
            pid,
            ..Default::default()
        };
        match procstat::open_fds(Some(pid)) {
            Ok(n) => g.fds_before = Some(n),
            Err(e) => g.errors.push(e.to_string()),
        }
        match procstat::rss_kib(pid) {
            Ok((rss, _)) => g.rss_before_kib = Some(rss),
            Err(e) => g.errors.push(e.to_string()),
        }
        g
    });
    let Cycles {
        ok,
        reasons,
        last_close,
        wall,
    } = run_cycles(&cfg, cfg.cycles, &prefix, &mut rng).await?;
    let failed = reasons.values().sum();
    let mut report = ChurnReport {
        url: cfg.url.clone(),
        cycles_requested: cfg.cycles,
        cycles_ok: ok,
        cycles_failed: failed,
        failure_reasons: reasons,
        frames_per_cycle: cfg.frames,
        concurrency: cfg.concurrency,
        wall_secs: wall.as_secs_f64(),
        cycles_per_sec: (ok + failed) as f64 / wall.as_secs_f64().max(1e-9),
        call_id_prefix: prefix.clone(),
        warmup,
        gateway: None,
        recordings: None,
    };
    let last_close = last_close.unwrap_or_else(Instant::now);
    if let Some(dir) = &cfg.recordings_dir {
        report.recordings =
            Some(wait_for_recordings(dir, &prefix, ok, last_close, cfg.finalise_timeout).await);
    } else {
        // Give the gateway a moment to release the last connections.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(g) = gateway.as_mut() {
        match procstat::open_fds(Some(g.pid)) {
            Ok(n) => g.fds_after = Some(n),
            Err(e) => g.errors.push(e.to_string()),
        }
        match procstat::rss_kib(g.pid) {
            Ok((rss, _)) => g.rss_after_kib = Some(rss),
            Err(e) => g.errors.push(e.to_string()),
        }
        tokio::time::sleep(RSS_SETTLE).await;
        match procstat::rss_kib(g.pid) {
            Ok((rss, _)) => g.rss_settled_kib = Some(rss),
            Err(e) => g.errors.push(e.to_string()),
        }
        let per_1000 = |a: Option<u64>| match (g.rss_before_kib, a) {
            (Some(b), Some(a)) if ok > 0 => Some((a as f64 - b as f64) * 1000.0 / ok as f64),
            _ => None,
        };
        g.rss_growth_per_1000_kib = per_1000(g.rss_after_kib);
        g.rss_settled_growth_per_1000_kib = per_1000(g.rss_settled_kib);
    }
    report.gateway = gateway;
    Ok(report)
}

/// What one batch of cycles came to.
struct Cycles {
    ok: u64,
    reasons: BTreeMap<String, u64>,
    last_close: Option<Instant>,
    wall: Duration,
}

/// Runs `cycles` cycles with call ids `<prefix><n>`, `cfg.concurrency` at a time.
async fn run_cycles(
    cfg: &ChurnConfig,
    cycles: u64,
    prefix: &str,
    rng: &mut SimRng,
) -> Result<Cycles, SimError> {
    let run = Arc::new(Run {
        url: WsUrl::parse(&cfg.url)?,
        url_text: cfg.url.clone(),
        prefix: prefix.to_string(),
        bearer: cfg.bearer.clone(),
        metadata: inbound_audio_metadata_json(cfg.sample_rate, &rng.uuid_like()),
        src: EncodedSource::new(&cfg.source, cfg.sample_rate, -50.0),
        frames: cfg.frames,
        next: AtomicU64::new(0),
        cycles,
        start: Instant::now(),
        rate: cfg.rate,
        outcome: Mutex::new((0, BTreeMap::new(), None)),
    });
    let workers: Vec<_> = (0..cfg.concurrency.min(cycles as usize))
        .map(|_| {
            let run = run.clone();
            let rng = SimRng::seeded(rng.next_u64());
            tokio::spawn(worker(run, rng))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let wall = run.start.elapsed();
    let (ok, reasons, last_close) = run.outcome.lock().map(|g| g.clone()).unwrap_or_default();
    Ok(Cycles {
        ok,
        reasons,
        last_close,
        wall,
    })
}

async fn worker(run: Arc<Run>, mut rng: SimRng) {
    let mut buf = Vec::with_capacity(4096);
    let mut json = String::with_capacity(2048);
    let mut ts = String::with_capacity(32);
    loop {
        let n = run.next.fetch_add(1, Ordering::Relaxed);
        if n >= run.cycles {
            return;
        }
        if let Some(rate) = run.rate {
            tokio::time::sleep_until(run.start + Duration::from_secs_f64(n as f64 / rate)).await;
        }
        let result = cycle(&run, n, &mut rng, &mut buf, &mut json, &mut ts).await;
        if let Ok(mut g) = run.outcome.lock() {
            match result {
                Ok(()) => {
                    g.0 += 1;
                    let now = Instant::now();
                    g.2 = Some(g.2.map_or(now, |t| t.max(now)));
                }
                Err(label) => *g.1.entry(label).or_default() += 1,
            }
        }
    }
}

/// One connect → metadata → frames → close → close reply cycle.
async fn cycle(
    run: &Run,
    n: u64,
    rng: &mut SimRng,
    buf: &mut Vec<u8>,
    json: &mut String,
    ts: &mut String,
) -> Result<(), String> {
    let ccid = format!("{}{n}", run.prefix);
    let headers = acs_headers(&ccid, &format!("corr-{ccid}"), run.bearer.as_deref());
    let up = wsraw::connect(
        &run.url,
        &run.url_text,
        &headers,
        rng,
        DEFAULT_CONNECT_TIMEOUT,
    )
    .await
    .map_err(|e| match e {
        SimError::Connect { kind, .. } => kind.label(),
        _ => "error".to_string(),
    })?;
    let mut stream = up.stream;
    buf.clear();
    wsraw::push_frame(
        buf,
        opcode::TEXT,
        run.metadata.as_bytes(),
        wsraw::mask_key(rng),
    );
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for k in 0..run.frames {
        ts.clear();
        format_timestamp(start_ms + (k * FRAME_MS) as i64, ts);
        let (b64, silent) = run.src.frame(k as usize % run.src.len());
        inbound_audio_data_json(json, b64, ts, None, silent);
        wsraw::push_frame(buf, opcode::TEXT, json.as_bytes(), wsraw::mask_key(rng));
    }
    wsraw::push_close(buf, 1000, wsraw::mask_key(rng));
    let mut parser = FrameParser::default();
    let mut close: Option<u16> = None;
    let mut invalid = false;
    parser.feed(&up.leftover, |e| match e {
        ServerEvent::Close(c, _) => close = close.or(Some(c)),
        ServerEvent::Invalid(_) => invalid = true,
        _ => {}
    });
    if let Some(c) = close {
        return Err(format!("server_closed_{c}"));
    }
    if stream.write_all(buf).await.is_err() {
        return Err("connection_lost".into());
    }
    let mut rbuf = [0u8; 2048];
    let read = async {
        loop {
            match stream.read(&mut rbuf).await {
                Ok(0) | Err(_) => return Err("connection_lost".to_string()),
                Ok(k) => {
                    parser.feed(&rbuf[..k], |e| match e {
                        ServerEvent::Close(c, _) => close = close.or(Some(c)),
                        ServerEvent::Invalid(_) => invalid = true,
                        _ => {}
                    });
                    if invalid {
                        return Err("protocol_error".to_string());
                    }
                    match close {
                        Some(1000) => return Ok(()),
                        Some(c) => return Err(format!("server_closed_{c}")),
                        None => {}
                    }
                }
            }
        }
    };
    match tokio::time::timeout(CLOSE_REPLY_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err("no_close_reply".into()),
    }
}

/// Polls [`check_recordings`] every 50 ms until it is complete or `timeout` after `last_close`
/// has passed; the result carries the time from `last_close` to completion.
pub async fn wait_for_recordings(
    dir: &Path,
    prefix: &str,
    expected: u64,
    last_close: Instant,
    timeout: Duration,
) -> RecordingsCheck {
    let deadline = last_close + timeout;
    loop {
        let dir2 = dir.to_path_buf();
        let prefix2 = prefix.to_string();
        let mut check =
            tokio::task::spawn_blocking(move || check_recordings(&dir2, &prefix2, expected))
                .await
                .unwrap_or_default();
        if check.complete() {
            check.finalised_after_secs = Some(last_close.elapsed().as_secs_f64());
            return check;
        }
        if Instant::now() >= deadline {
            return check;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scans the WAV sink's output under `dir` (`<dir>/<YYYY-MM-DD>/<call folder>/`) for call
/// folders whose name starts with `prefix`: counts them, the ones whose `call.json` parses and
/// has a `call.endedAt`, and the `.wav` files whose RIFF and data chunk sizes disagree with their
/// length (not finalised). Blocking file I/O.
pub fn check_recordings(dir: &Path, prefix: &str, expected: u64) -> RecordingsCheck {
    let mut c = RecordingsCheck {
        dir: dir.to_path_buf(),
        expected_calls: expected,
        ..Default::default()
    };
    let problem = |c: &mut RecordingsCheck, p: String| {
        if c.problems.len() < 10 {
            c.problems.push(p);
        }
    };
    let days = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => {
            problem(&mut c, format!("{}: {e}", dir.display()));
            return c;
        }
    };
    for day in days.flatten() {
        if !day.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(calls) = std::fs::read_dir(day.path()) else {
            continue;
        };
        for call in calls.flatten() {
            let name = call.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) || !call.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            c.call_folders += 1;
            let folder = call.path();
            match std::fs::read(folder.join("call.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                Some(v) if v.pointer("/call/endedAt").is_some_and(|e| !e.is_null()) => {
                    c.finalised_calls += 1;
                }
                Some(_) => problem(&mut c, format!("{name}: call.json has no endedAt")),
                None => problem(&mut c, format!("{name}: no readable call.json")),
            }
            let Ok(files) = std::fs::read_dir(&folder) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "wav") {
                    c.wav_files += 1;
                    if let Err(why) = wav_finalised(&p) {
                        c.unfinalised_wavs += 1;
                        problem(
                            &mut c,
                            format!("{name}/{}: {why}", f.file_name().to_string_lossy()),
                        );
                    }
                }
            }
        }
    }
    c
}

/// `Ok` if the RIFF size is the file length − 8 and the `data` chunk runs exactly to the end.
pub fn wav_finalised(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    wav_bytes_finalised(&bytes)
}

/// [`wav_finalised`] on the file's bytes.
pub fn wav_bytes_finalised(b: &[u8]) -> Result<(), String> {
    let u32_at = |i: usize| -> Option<u64> {
        Some(u64::from(u32::from_le_bytes(
            b.get(i..i + 4)?.try_into().ok()?,
        )))
    };
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let len = b.len() as u64;
    let riff = u32_at(4).unwrap_or(0);
    if riff + 8 != len {
        return Err(format!("RIFF size {riff} but file length {len}"));
    }
    let mut i = 12usize;
    while i + 8 <= b.len() {
        let size = u32_at(i + 4).unwrap_or(0);
        if &b[i..i + 4] == b"data" {
            let end = i as u64 + 8 + size;
            return if end == len {
                Ok(())
            } else {
                Err(format!(
                    "data size {size} but {} bytes follow",
                    len - i as u64 - 8
                ))
            };
        }
        i += 8 + size as usize + (size as usize & 1);
    }
    Err("no data chunk".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(samples: u32) -> Vec<u8> {
        let mut c = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut c, spec).unwrap();
        for i in 0..samples {
            w.write_sample(i as i16).unwrap();
        }
        w.finalize().unwrap();
        c.into_inner()
    }

    #[test]
    fn wav_headers_are_checked() {
        let good = wav(100);
        assert!(wav_bytes_finalised(&good).is_ok());
        let mut grown = good.clone();
        grown.extend_from_slice(&[0; 64]);
        assert!(wav_bytes_finalised(&grown).is_err());
        assert!(wav_bytes_finalised(b"RIFX").is_err());
    }

    #[test]
    fn recordings_are_counted_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2026-01-01");
        for (name, ended) in [("churn-x-1", true), ("churn-x-2", false), ("other", true)] {
            let f = day.join(name);
            std::fs::create_dir_all(&f).unwrap();
            let ended = if ended {
                "\"2026-01-01T00:00:00.000Z\""
            } else {
                "null"
            };
            std::fs::write(
                f.join("call.json"),
                format!("{{\"call\":{{\"endedAt\":{ended}}}}}"),
            )
            .unwrap();
            std::fs::write(f.join("mixed.wav"), wav(10)).unwrap();
        }
        let c = check_recordings(dir.path(), "churn-x-", 2);
        assert_eq!((c.call_folders, c.finalised_calls, c.wav_files), (2, 1, 2));
        assert_eq!(c.unfinalised_wavs, 0);
        assert!(!c.complete());
        assert_eq!(c.problems.len(), 1);
    }
}
