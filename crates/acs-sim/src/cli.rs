//! The `acs-sim` command line: argument definitions ([`Cli`]) and the media subcommands,
//! [`run_stream`], [`run_load`] and [`run_churn`], which print human summaries; the control-plane subcommands
//! (`acs`, `eventgrid`, `call`) are in [`super::cli_acs`]. The binary only parses arguments,
//! builds a runtime and maps the result to an exit code.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::audio::{read_wav_mono, speech_like, ACS_RATES};
use super::churn::{self, ChurnConfig};
use super::error::SimError;
use super::ids::SimRng;
use super::load::{self, LoadConfig};
use super::plan::{plan_frames, Faults, Participant, StreamPlan, MAX_PARTICIPANTS};
use super::play::{acs_headers, play, Pacing, StreamEnd, StreamReport};
use super::scrape::{metrics_url_for, resolve_pid, PidSpec};

/// Simulates Azure Communication Services media streaming against a media WebSocket.
#[derive(Parser, Debug)]
#[command(name = "acs-sim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `acs-sim` subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play WAV files into a media WebSocket exactly like ACS (with optional faults).
    Stream(StreamArgs),
    /// Run N concurrent real-time calls × P participants and report send lag and gateway cost.
    Load(LoadArgs),
    /// Connect → stream a few frames → close, many times; check for leaks and lost recordings.
    Churn(ChurnArgs),
    /// Run a fake ACS: signed Call Automation REST API, callbacks, media streaming, JWKS.
    Acs(super::cli_acs::AcsArgs),
    /// Send Event Grid handshakes and IncomingCall events to a webhook.
    Eventgrid(super::cli_acs::EventGridArgs),
    /// Run a whole call through a running gateway (fake ACS + Event Grid in-process).
    Call(Box<super::cli_acs::CallArgs>),
    /// A round-robin TCP proxy in front of several gateways (a fleet on one machine).
    Proxy(ProxyArgs),
}

/// `acs-sim proxy`.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// A backend (repeat: each connection goes to the next one in turn).
    #[arg(long = "backend", required = true)]
    pub backends: Vec<std::net::SocketAddr>,
    /// `PREFIX=BACKEND[,BACKEND…]` (repeat): connections whose request path starts with PREFIX
    /// go only to those backends (in turn), e.g. `--route /ws=127.0.0.1:8083`; first match wins.
    #[arg(long = "route", value_parser = parse_route)]
    pub routes: Vec<(String, Vec<std::net::SocketAddr>)>,
}

fn parse_route(s: &str) -> Result<(String, Vec<std::net::SocketAddr>), String> {
    let (prefix, addrs) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected PREFIX=BACKEND[,BACKEND…]"))?;
    if !prefix.starts_with('/') {
        return Err(format!("{prefix}: a path prefix starts with '/'"));
    }
    let addrs = addrs
        .split(',')
        .map(|a| a.trim().parse().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prefix.to_owned(), addrs))
}

async fn run_proxy(a: ProxyArgs) -> Result<bool, SimError> {
    let mut routes = Vec::new();
    for (prefix, addrs) in &a.routes {
        let mut backends = Vec::new();
        for addr in addrs {
            let i = a.backends.iter().position(|b| b == addr).ok_or_else(|| {
                SimError::InvalidOption(format!(
                    "--route {prefix}: {addr} is not one of the --backend addresses"
                ))
            })?;
            backends.push(i);
        }
        routes.push(super::proxy::Route {
            prefix: prefix.clone(),
            backends,
        });
    }
    let p = super::proxy::start_with_routes(a.listen, a.backends, routes.clone())
        .await
        .map_err(|source| SimError::Bind {
            addr: a.listen.to_string(),
            source,
        })?;
    eprintln!(
        "acs-sim proxy: {} → {:?} (round robin per connection; routes {:?}); Ctrl-C stops",
        p.addr, p.backends, routes
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("connections per backend: {:?}", p.connections());
    Ok(true)
}

fn parse_rate(s: &str) -> Result<u32, String> {
    let r: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if ACS_RATES.contains(&r) {
        Ok(r)
    } else {
        Err("ACS streams 16000 or 24000".into())
    }
}

/// A clap value parser for seconds: a finite number from 0 to 86400 (one day).
pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err("seconds between 0 and 86400".into())
    }
}

fn parse_every(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be ≥ 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// `acs-sim stream` options.
#[derive(Args, Debug, Clone)]
pub struct StreamArgs {
    /// Media WebSocket URL (`/ws` or `/ws/<token>`).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Audio file (repeatable): one = mixed stream, several = unmixed, one participant each (up
    /// to 4). Any rate/channels; converted to mono at --rate. Default: 5 s of a generated
    /// 220 Hz tone, 500 ms on/off.
    #[arg(long = "wav", value_name = "FILE")]
    pub wavs: Vec<PathBuf>,
    /// Send a single WAV as an unmixed participant (with participantRawID).
    #[arg(long)]
    pub unmixed: bool,
    /// Participant raw id for the Nth WAV (repeatable); missing ones are generated as
    /// `8:acs:<uuid>`.
    #[arg(long = "participant", value_name = "ID")]
    pub participants: Vec<String>,
    /// Sample rate to stream.
    #[arg(long, default_value_t = 16_000, value_parser = parse_rate)]
    pub rate: u32,
    /// `x-ms-call-connection-id` upgrade header (default: generated).
    #[arg(long, value_name = "ID")]
    pub call_connection_id: Option<String>,
    /// `x-ms-call-correlation-id` upgrade header (default: generated).
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// Real time (20 ms per frame, drift-free) or as fast as possible.
    #[arg(long, value_enum, default_value_t = Pacing::Realtime)]
    pub pace: Pacing,
    /// DTMF tones to send as DtmfData, spread evenly over the stream, e.g. "12#".
    #[arg(long, default_value = "")]
    pub dtmf: String,
    /// Send a TranscriptionMetadata first and a final TranscriptionData with this text last.
    #[arg(long, value_name = "TEXT")]
    pub transcript: Option<String>,
    /// Frames quieter than this (RMS dBFS) are sent with "silent":true; -inf disables.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true, value_name = "DBFS")]
    pub silent_threshold_dbfs: f64,
    /// Play the audio N times back to back (timestamps keep advancing).
    #[arg(long = "loop", default_value_t = 1, value_name = "N")]
    pub loops: u32,
    /// Fault: do not send every Nth frame (timestamps keep advancing).
    #[arg(long, value_name = "N", value_parser = parse_every)]
    pub gap_every: Option<u64>,
    /// Fault: send every Nth frame twice.
    #[arg(long, value_name = "N", value_parser = parse_every)]
    pub duplicate_every: Option<u64>,
    /// Fault: swap every Nth frame with the next one (N ≥ 2).
    #[arg(long, value_name = "N", value_parser = parse_every)]
    pub reorder_every: Option<u64>,
    /// Fault: send every Nth frame again 5 frames later with its original timestamp.
    #[arg(long, value_name = "N", value_parser = parse_every)]
    pub late_every: Option<u64>,
    /// Fault: replace frame K (1-based, first participant) with truncated JSON.
    #[arg(long, value_name = "K", value_parser = parse_every)]
    pub malformed_at: Option<u64>,
    /// Fault: drop the TCP connection without a close frame after K frames.
    #[arg(long, value_name = "K")]
    pub disconnect_after: Option<u64>,
}

/// `acs-sim load` options.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Media WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Participants per call: 1 = mixed, 2..4 = unmixed.
    #[arg(long, default_value_t = 1)]
    pub participants: usize,
    /// How long each call streams, seconds.
    #[arg(long, default_value_t = 30.0, value_parser = parse_secs, value_name = "S")]
    pub duration_secs: f64,
    /// Start the calls evenly over this many seconds.
    #[arg(long, default_value_t = 0.0, value_parser = parse_secs, value_name = "R")]
    pub ramp_secs: f64,
    /// Sample rate to stream.
    #[arg(long, default_value_t = 16_000, value_parser = parse_rate)]
    pub rate: u32,
    /// Audio source, looped (default: a generated 220 Hz tone, 500 ms on/off).
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// Gateway Prometheus endpoint (default: http://<host:port of --url>/metrics).
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// Do not scrape gateway metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Gateway process id: report its CPU time per frame (Linux /proc). `auto`: the pid the
    /// gateway at --url reports on /healthz (same machine; unambiguous with several gateways).
    #[arg(long, value_name = "PID|auto")]
    pub gateway_pid: Option<PidSpec>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Send `Authorization: Bearer TOKEN` on every call.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// Frames quieter than this (RMS dBFS) are sent with "silent":true; -inf disables.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true, value_name = "DBFS")]
    pub silent_threshold_dbfs: f64,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Load engine: `shards` (cheap: a few tasks own all connections) or `tasks` (one
    /// tokio-tungstenite task per call, the original engine).
    #[arg(long, value_enum, default_value_t = load::Engine::Shards)]
    pub engine: load::Engine,
    /// Shard tasks of the sharded engine (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub shards: usize,
}

/// `acs-sim churn` options.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Media WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Connect → stream → close cycles.
    #[arg(long, default_value_t = 10_000)]
    pub cycles: u64,
    /// AudioData frames per cycle.
    #[arg(long, default_value_t = 5)]
    pub frames: u64,
    /// Concurrent workers.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Cycles per second overall (default: as fast as the workers go).
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,
    /// Sample rate to stream.
    #[arg(long, default_value_t = 16_000, value_parser = parse_rate)]
    pub sample_rate: u32,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// Gateway process id: report its open fds and RSS before and after (Linux /proc). `auto`:
    /// the pid the gateway at --url reports on /healthz.
    #[arg(long, value_name = "PID|auto")]
    pub gateway_pid: Option<PidSpec>,
    /// The gateway's WAV recordings folder: check that every call was finalised.
    #[arg(long, value_name = "DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// How long after the last close the recordings may take to be finalised.
    #[arg(long, default_value_t = 5.0, value_parser = parse_secs, value_name = "S")]
    pub finalise_timeout_secs: f64,
    /// Cycles to run first, unmeasured, so RSS growth is measured on a process that has served
    /// this concurrency before (the cold RSS is reported too).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub warmup_cycles: u64,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs a parsed command line. `Ok(true)`: everything went as planned; `Ok(false)`: it ran but
/// something failed (server closed early, failed calls).
pub async fn run(cli: Cli) -> Result<bool, SimError> {
    match cli.command {
        Command::Stream(a) => run_stream(a).await,
        Command::Load(a) => run_load(a).await,
        Command::Churn(a) => run_churn(a).await,
        Command::Acs(a) => super::cli_acs::run_acs(a).await,
        Command::Eventgrid(a) => super::cli_acs::run_eventgrid(a).await,
        Command::Call(a) => super::cli_acs::run_call_cmd(*a).await,
        Command::Proxy(a) => run_proxy(a).await,
    }
}

/// Builds the [`StreamPlan`] for `acs-sim stream` (reads the WAVs).
pub fn stream_plan(a: &StreamArgs, rng: &mut SimRng) -> Result<StreamPlan, SimError> {
    let bad = |m: &str| Err(SimError::InvalidOption(m.to_string()));
    if a.wavs.len() > MAX_PARTICIPANTS {
        return bad("at most 4 --wav (ACS streams up to 4 unmixed participants)");
    }
    let pcms = if a.wavs.is_empty() {
        vec![speech_like(a.rate, 5_000)]
    } else {
        a.wavs
            .iter()
            .map(|p| read_wav_mono(p, a.rate))
            .collect::<Result<Vec<_>, _>>()?
    };
    let unmixed = a.unmixed || pcms.len() > 1;
    if !unmixed && !a.participants.is_empty() {
        return bad("--participant needs --unmixed or several --wav");
    }
    if a.participants.len() > pcms.len() {
        return bad("more --participant ids than audio sources");
    }
    let participants = pcms
        .into_iter()
        .enumerate()
        .map(|(i, pcm)| Participant {
            raw_id: unmixed.then(|| {
                a.participants
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| rng.participant_raw_id())
            }),
            pcm,
        })
        .collect();
    let mut plan = StreamPlan::new(a.rate, participants);
    plan.subscription_id = rng.uuid_like();
    plan.loops = a.loops;
    plan.silent_threshold_dbfs = a.silent_threshold_dbfs;
    plan.dtmf = a.dtmf.clone();
    plan.transcript = a.transcript.clone();
    plan.faults = Faults {
        gap_every: a.gap_every,
        duplicate_every: a.duplicate_every,
        reorder_every: a.reorder_every,
        late_every: a.late_every,
        malformed_at: a.malformed_at,
        disconnect_after: a.disconnect_after,
    };
    Ok(plan)
}

/// `acs-sim stream`: plans, plays and prints a summary.
pub async fn run_stream(a: StreamArgs) -> Result<bool, SimError> {
    let mut rng = SimRng::from_entropy();
    let mut plan = stream_plan(&a, &mut rng)?;
    let ccid = a
        .call_connection_id
        .clone()
        .unwrap_or_else(|| rng.uuid_like());
    let corr = a.correlation_id.clone().unwrap_or_else(|| rng.uuid_like());
    plan.call_connection_id = Some(ccid.clone());
    plan.correlation_id = Some(corr.clone());
    let frames = plan_frames(&plan)?;
    println!(
        "acs-sim stream: {} ({} message(s), {} participant stream(s), {} Hz, {:?} pacing)",
        a.url,
        frames.len(),
        plan.participants.len(),
        plan.sample_rate,
        a.pace
    );
    println!("  x-ms-call-connection-id {ccid}  x-ms-call-correlation-id {corr}");
    let headers = acs_headers(&ccid, &corr, a.bearer.as_deref());
    let report = play(&a.url, &headers, frames, a.pace).await?;
    print!("{}", stream_summary(&plan, &report));
    Ok(report.clean())
}

/// The human summary of a played stream.
pub fn stream_summary(plan: &StreamPlan, r: &StreamReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (i, p) in plan.participants.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:<48} {} AudioData frames, {} PCM bytes",
            p.raw_id.as_deref().unwrap_or("(mixed)"),
            r.audio_frames.get(i).copied().unwrap_or(0),
            r.pcm_bytes.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        s,
        "  sent {} messages ({} malformed), {} bytes in {:.3} s (connect {:.1} ms, max send lag {:.1} ms); received {}",
        r.messages_sent,
        r.malformed_sent,
        r.bytes_sent,
        r.duration.as_secs_f64(),
        r.connect_time.as_secs_f64() * 1e3,
        r.max_lag.as_secs_f64() * 1e3,
        r.messages_received
    );
    let end = match &r.end {
        StreamEnd::Completed { reply: Some(c) } => {
            format!("closed with 1000; server replied {c}")
        }
        StreamEnd::Completed { reply: None } => {
            "closed with 1000; no close reply from the server".into()
        }
        StreamEnd::ServerClosed(Some(c)) => format!("server closed first: {c}"),
        StreamEnd::ServerClosed(None) => "server closed first (no code)".into(),
        StreamEnd::Disconnected => "dropped the connection without a close frame (planned)".into(),
        StreamEnd::Failed(e) => format!("connection failed: {e}"),
    };
    let _ = writeln!(s, "  end: {end}");
    s
}

/// `acs-sim load`: runs the load test, prints the summary, writes the JSON report.
pub async fn run_load(a: LoadArgs) -> Result<bool, SimError> {
    let (source, source_name) = match &a.wav {
        Some(p) => (read_wav_mono(p, a.rate)?, p.display().to_string()),
        None => (
            speech_like(a.rate, 10_000),
            "generated 220 Hz tone, 500 ms on/off".to_string(),
        ),
    };
    let metrics_url = if a.no_metrics {
        None
    } else {
        a.metrics_url.clone().or_else(|| metrics_url_for(&a.url))
    };
    let cfg = LoadConfig {
        url: a.url.clone(),
        calls: a.calls,
        participants: a.participants,
        duration: Duration::from_secs_f64(a.duration_secs),
        ramp: Duration::from_secs_f64(a.ramp_secs),
        sample_rate: a.rate,
        source,
        source_name,
        silent_threshold_dbfs: a.silent_threshold_dbfs,
        bearer: a.bearer.clone(),
        metrics_url,
        gateway_pid: resolve_pid(a.gateway_pid, &a.url).await?,
        progress: !a.no_progress,
        engine: a.engine,
        shards: a.shards,
    };
    load::validate(&cfg)?;
    eprintln!(
        "acs-sim load: {} calls × {} participant(s) for {} s (ramp {} s) → {}",
        a.calls, a.participants, a.duration_secs, a.ramp_secs, a.url
    );
    let report = load::run_load(cfg).await?;
    print!("{report}");
    if let Some(path) = &a.report {
        write_report(path, &report)?;
    }
    Ok(report.calls.failed == 0)
}

fn write_report<T: serde::Serialize>(path: &std::path::Path, report: &T) -> Result<(), SimError> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").map_err(|source| SimError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    println!("  report     {}", path.display());
    Ok(())
}

/// `acs-sim churn`: runs the cycles, prints the summary, writes the JSON report. `Ok(false)`
/// when a cycle failed or a recording was lost.
pub async fn run_churn(a: ChurnArgs) -> Result<bool, SimError> {
    let mut cfg = ChurnConfig::new(&a.url, a.cycles, a.frames);
    cfg.concurrency = a.concurrency;
    cfg.rate = a.rate;
    cfg.sample_rate = a.sample_rate;
    cfg.source = speech_like(a.sample_rate, 1_000);
    cfg.bearer = a.bearer.clone();
    cfg.gateway_pid = resolve_pid(a.gateway_pid, &a.url).await?;
    cfg.recordings_dir = a.recordings_dir.clone();
    cfg.finalise_timeout = Duration::from_secs_f64(a.finalise_timeout_secs);
    cfg.warmup_cycles = a.warmup_cycles;
    churn::validate(&cfg)?;
    eprintln!(
        "acs-sim churn: {} cycles × {} frames, {} workers → {}",
        a.cycles, a.frames, a.concurrency, a.url
    );
    let report = churn::run_churn(cfg).await?;
    print!("{report}");
    if let Some(path) = &a.report {
        write_report(path, &report)?;
    }
    Ok(report.clean())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_describes_acs_sim_not_the_gateway() {
        use clap::CommandFactory;
        let about = Cli::command().get_about().unwrap().to_string();
        assert!(about.contains("emulator"), "{about}");
        assert!(!about.contains("Media gateway between"), "{about}");
    }

    #[test]
    fn parses_stream_options() {
        let cli = Cli::try_parse_from([
            "acs-sim",
            "stream",
            "--rate",
            "24000",
            "--unmixed",
            "--participant",
            "8:acs:me",
            "--silent-threshold-dbfs",
            "-60",
            "--gap-every",
            "7",
            "--pace",
            "fast",
        ])
        .unwrap();
        let Command::Stream(a) = cli.command else {
            panic!("not stream")
        };
        assert_eq!(a.rate, 24_000);
        assert_eq!(a.silent_threshold_dbfs, -60.0);
        assert_eq!(a.pace, Pacing::Fast);
        let plan = stream_plan(&a, &mut SimRng::seeded(1)).unwrap();
        assert_eq!(plan.participants[0].raw_id.as_deref(), Some("8:acs:me"));
        assert_eq!(plan.faults.gap_every, Some(7));
        assert!(Cli::try_parse_from(["acs-sim", "stream", "--rate", "8000"]).is_err());
        assert!(Cli::try_parse_from(["acs-sim", "stream", "--gap-every", "0"]).is_err());
    }

    #[test]
    fn participant_without_unmixed_is_refused() {
        let cli = Cli::try_parse_from(["acs-sim", "stream", "--participant", "8:acs:x"]).unwrap();
        let Command::Stream(a) = cli.command else {
            panic!("not stream")
        };
        assert!(stream_plan(&a, &mut SimRng::seeded(1)).is_err());
    }

    #[test]
    fn parses_load_options() {
        let cli = Cli::try_parse_from([
            "acs-sim",
            "load",
            "--calls",
            "50",
            "--participants",
            "2",
            "--duration-secs",
            "10",
            "--ramp-secs",
            "1.5",
            "--gateway-pid",
            "42",
        ])
        .unwrap();
        let Command::Load(a) = cli.command else {
            panic!("not load")
        };
        assert_eq!(
            (a.calls, a.participants, a.gateway_pid),
            (50, 2, Some(PidSpec::Pid(42)))
        );
        assert_eq!((a.duration_secs, a.ramp_secs), (10.0, 1.5));
    }
}
