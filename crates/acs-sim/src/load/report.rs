//! The load report: call counts, lag, the gateway's, CPU, process and generator sections, and its
//! text rendering.

#[allow(unused_imports)]
use super::*;

/// Call counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallCounts {
    /// Calls asked for.
    pub requested: u64,
    /// Calls whose WebSocket handshake succeeded.
    pub connected: u64,
    /// Calls that streamed everything and closed normally.
    pub completed: u64,
    /// Calls that did not complete (could not connect, or ended early).
    pub failed: u64,
    /// Failures by reason (`emfile`, `refused`, `timeout`, `http_503`, `server_closed_1008`,
    /// `connection_lost`, …).
    pub failure_reasons: BTreeMap<String, u64>,
}

/// Send-lag percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LagSummary {
    /// Frames measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl LagSummary {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LagSummary::default();
        }
        LagSummary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Gateway figures from `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewaySection {
    /// Where they were scraped.
    pub metrics_url: String,
    /// Before the first call.
    pub before: Option<GatewayFigures>,
    /// After the last call (plus a short settle time).
    pub after: Option<GatewayFigures>,
    /// `after − before`.
    pub delta: Option<GatewayFigures>,
    /// Mean gateway processing time per `AudioData` frame during the run, µs.
    pub frame_processing_mean_us: Option<f64>,
    /// Scrape errors, if any.
    pub errors: Vec<String>,
}

/// Gateway CPU use during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuSection {
    /// Gateway process id.
    pub pid: u32,
    /// User + system CPU seconds consumed during the run.
    pub cpu_seconds: Option<f64>,
    /// User CPU seconds.
    pub user_seconds: Option<f64>,
    /// System CPU seconds.
    pub system_seconds: Option<f64>,
    /// CPU µs per `AudioData` frame (frames counted by the gateway when known, else frames
    /// sent).
    pub cpu_us_per_frame: Option<f64>,
    /// User CPU µs per frame.
    pub user_us_per_frame: Option<f64>,
    /// System CPU µs per frame.
    pub system_us_per_frame: Option<f64>,
    /// Which frame count `cpu_us_per_frame` used: `"gateway"` or `"sent"`.
    pub frames_basis: String,
    /// Why figures are missing, if they are.
    pub error: Option<String>,
}

/// Gateway memory and file descriptors (Linux `/proc`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSection {
    /// Gateway process id.
    pub pid: u32,
    /// VmRSS before the first call, KiB.
    pub rss_before_kib: Option<u64>,
    /// Highest VmRSS sampled (every 100 ms) during the run, KiB.
    pub rss_peak_kib: Option<u64>,
    /// VmRSS after the last call (and a short settle time), KiB.
    pub rss_after_kib: Option<u64>,
    /// VmHWM (the kernel's peak RSS since the process started) after the run, KiB.
    pub vm_hwm_kib: Option<u64>,
    /// (peak − before) / streams, KiB.
    pub rss_per_stream_kib: Option<f64>,
    /// Open file descriptors before.
    pub fds_before: Option<u64>,
    /// Open file descriptors after.
    pub fds_after: Option<u64>,
    /// Why figures are missing, if they are.
    pub errors: Vec<String>,
}

/// The load generator's own cost (this process, `/proc/self/stat`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorSection {
    /// Engine used.
    pub engine: Option<Engine>,
    /// Shard tasks (sharded engine).
    pub shards: usize,
    /// User CPU seconds during the run.
    pub user_seconds: f64,
    /// System CPU seconds during the run.
    pub system_seconds: f64,
    /// User + system CPU µs per `AudioData` frame sent.
    pub cpu_us_per_frame: Option<f64>,
    /// User CPU µs per frame.
    pub user_us_per_frame: Option<f64>,
    /// System CPU µs per frame.
    pub system_us_per_frame: Option<f64>,
}

/// Everything a load run measured; serialized as the `--report` JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The `acs-sim` version that ran it.
    pub acs_sim_version: String,
    /// The gateway's version and commit (`acs_gateway_build_info`), when its metrics were read.
    pub gateway_version: Option<String>,
    /// Media WebSocket URL.
    pub url: String,
    /// Participants per call.
    pub participants: usize,
    /// Seconds each call streamed.
    pub duration_secs: f64,
    /// Ramp seconds.
    pub ramp_secs: f64,
    /// Sample rate.
    pub sample_rate: u32,
    /// Audio source.
    pub source: String,
    /// Call counts.
    pub calls: CallCounts,
    /// `AudioData` frames sent.
    pub frames_sent: u64,
    /// All messages sent (`AudioMetadata` included).
    pub messages_sent: u64,
    /// WebSocket payload bytes sent.
    pub bytes_sent: u64,
    /// PCM bytes carried.
    pub pcm_bytes_sent: u64,
    /// Wall-clock seconds from the first call's start to the last call's end.
    pub wall_secs: f64,
    /// Send lag over all `AudioData` frames, µs.
    pub send_lag_us: LagSummary,
    /// Gateway `/metrics` figures.
    pub gateway: Option<GatewaySection>,
    /// Gateway CPU.
    pub gateway_cpu: Option<CpuSection>,
    /// Gateway memory and file descriptors.
    pub gateway_process: Option<ProcessSection>,
    /// The generator's own CPU.
    pub generator: GeneratorSection,
    /// Things the operator should know (e.g. file-descriptor limits).
    pub warnings: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.calls;
        writeln!(f, "acs-sim load: {}", self.url)?;
        writeln!(
            f,
            "  calls      requested {}  connected {}  completed {}  failed {}",
            c.requested, c.connected, c.completed, c.failed
        )?;
        for (reason, n) in &c.failure_reasons {
            writeln!(f, "             {n} × {reason}")?;
        }
        writeln!(
            f,
            "  audio      {} participant(s) × {:.0} s at {} Hz, source {}",
            self.participants, self.duration_secs, self.sample_rate, self.source
        )?;
        writeln!(
            f,
            "  sent       {} AudioData frames, {} messages, {:.1} MB on the wire ({:.1} MB PCM) in {:.1} s",
            self.frames_sent,
            self.messages_sent,
            self.bytes_sent as f64 / 1e6,
            self.pcm_bytes_sent as f64 / 1e6,
            self.wall_secs
        )?;
        let l = &self.send_lag_us;
        writeln!(
            f,
            "  send lag   p50 {} µs  p90 {} µs  p99 {} µs  max {} µs  (mean {:.0} µs, {} frames)",
            l.p50, l.p90, l.p99, l.max, l.mean, l.count
        )?;
        if let Some(g) = &self.gateway {
            if let Some(d) = &g.delta {
                writeln!(
                    f,
                    "  gateway    +{} audio frames, +{} sink queue drops, +{} decode errors, +{} connections ({} rejected)",
                    d.audio_frames, d.sink_queue_drops, d.decode_errors, d.connections_total, d.connections_rejected
                )?;
            }
            if let Some(us) = g.frame_processing_mean_us {
                writeln!(f, "             mean frame processing {us:.2} µs")?;
            }
            for e in &g.errors {
                writeln!(f, "  gateway    metrics unavailable: {e}")?;
            }
        }
        if let Some(cpu) = &self.gateway_cpu {
            match (cpu.cpu_seconds, cpu.cpu_us_per_frame) {
                (Some(s), Some(us)) => writeln!(
                    f,
                    "  gateway    pid {}: {s:.2} CPU s, {us:.2} CPU µs per frame (user {:.2} + sys {:.2}; {} count)",
                    cpu.pid,
                    cpu.user_us_per_frame.unwrap_or(0.0),
                    cpu.system_us_per_frame.unwrap_or(0.0),
                    cpu.frames_basis
                )?,
                (Some(s), None) => writeln!(f, "  gateway    pid {}: {s:.2} CPU s", cpu.pid)?,
                _ => writeln!(
                    f,
                    "  gateway    pid {}: CPU unavailable: {}",
                    cpu.pid,
                    cpu.error.as_deref().unwrap_or("unknown")
                )?,
            }
        }
        if let Some(p) = &self.gateway_process {
            let k =
                |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{:.1}", v as f64 / 1024.0));
            writeln!(
                f,
                "  gateway    RSS {} → peak {} → {} MiB (VmHWM {} MiB), {} KiB per stream; fds {} → {}",
                k(p.rss_before_kib),
                k(p.rss_peak_kib),
                k(p.rss_after_kib),
                k(p.vm_hwm_kib),
                p.rss_per_stream_kib.map_or("?".to_string(), |v| format!("{v:.1}")),
                p.fds_before.map_or("?".to_string(), |v| v.to_string()),
                p.fds_after.map_or("?".to_string(), |v| v.to_string()),
            )?;
            for e in &p.errors {
                writeln!(f, "  gateway    {e}")?;
            }
        }
        let g = &self.generator;
        writeln!(
            f,
            "  acs-sim    {} engine{}: {:.2} CPU s, {} CPU µs per frame (user {} + sys {})",
            match g.engine {
                Some(Engine::Tasks) => "tasks",
                Some(Engine::Flood) => "flood",
                _ => "sharded",
            },
            if g.engine == Some(Engine::Shards) {
                format!(" ({} shards)", g.shards)
            } else {
                String::new()
            },
            g.user_seconds + g.system_seconds,
            g.cpu_us_per_frame.map_or("?".into(), |v| format!("{v:.2}")),
            g.user_us_per_frame
                .map_or("?".into(), |v| format!("{v:.2}")),
            g.system_us_per_frame
                .map_or("?".into(), |v| format!("{v:.2}")),
        )?;
        for w in &self.warnings {
            writeln!(f, "  warning    {w}")?;
        }
        Ok(())
    }
}
