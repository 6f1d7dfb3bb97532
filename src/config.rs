//! The configuration tree: embedded defaults ← TOML file (`--config`) ← environment
//! (`ACS_GATEWAY_<SECTION>__<KEY>`) ← command-line flags, merged into one validated [`Config`].
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and
//! [`Config::validate`] reports every problem at once, before any port is bound.

use crate::sinks::SinkConfig;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default maximum concurrent media WebSocket connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Default maximum WebSocket message size (bytes); bigger messages close with 1009.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default time allowed for a client to send its HTTP upgrade request (ms).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Default time a media connection may stay silent (no message at all) before it is closed (ms).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// Default grace period for the drain at shutdown (ms).
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// Default sample rate assumed for AudioData that arrives before AudioMetadata.
pub const DEFAULT_SAMPLE_RATE: u32 = 16_000;
/// Default participants per call (unmixed streams carry up to 4 dominant speakers at a time).
pub const DEFAULT_MAX_PARTICIPANTS: usize = 16;
/// Default ring buffer capacity per participant (ms of audio).
pub const DEFAULT_RING_CAPACITY_MS: u32 = 2_000;
/// Default largest timeline gap filled with silence (ms).
pub const DEFAULT_MAX_GAP_FILL_MS: u32 = 60_000;
/// Default latency of the unmixed → mixed mixer (ms).
pub const DEFAULT_MIX_LATENCY_MS: u32 = 200;
/// Environment variable prefix.
pub const ENV_PREFIX: &str = "ACS_GATEWAY_";

/// Errors loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, environment or flags could not be read into the tree.
    #[error("configuration could not be loaded: {0}")]
    Load(String),
    /// The tree was read but some values are unacceptable; every problem is listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener and connection limits.
    pub server: ServerConfig,
    /// Per-call media pipeline.
    pub media: MediaConfig,
    /// Silence / speech detection.
    pub silence: SilenceSection,
    /// Logging.
    pub log: LogConfig,
    /// Sinks every call's audio and events fan out to.
    pub sinks: Vec<SinkConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            media: MediaConfig::default(),
            silence: SilenceSection::default(),
            log: LogConfig::default(),
            sinks: vec![SinkConfig::default_wav()],
        }
    }
}

/// `[server]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the one listener serving HTTP and the media WebSocket.
    pub listen: String,
    /// Maximum concurrent media WebSocket connections; more get HTTP 503.
    pub max_connections: usize,
    /// Maximum WebSocket message size in bytes; a bigger one closes the connection with 1009.
    pub max_frame_bytes: usize,
    /// Time allowed to receive the HTTP request head (ms).
    pub handshake_timeout_ms: u64,
    /// A media connection with no message for this long is closed (ms).
    pub idle_timeout_ms: u64,
    /// Grace period for closing connections and draining sinks at shutdown (ms).
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
        }
    }
}

impl ServerConfig {
    /// The parsed listen address (validated by [`Config::validate`]).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            ConfigError::Invalid(vec![format!("server.listen {:?}: {e}", self.listen)])
        })
    }
}

/// `[media]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Sample rate assumed for AudioData received before AudioMetadata (16000 or 24000).
    pub default_sample_rate: u32,
    /// Participants (unmixed streams) accepted per call.
    pub max_participants: usize,
    /// Ring buffer capacity per participant (ms).
    pub ring_capacity_ms: u32,
    /// Largest timestamp gap filled with silence (ms); bigger jumps resynchronise the timeline.
    pub max_gap_fill_ms: u32,
    /// Consecutive late frames after which the sender's clock is taken to have jumped backwards.
    pub resync_after_late: u32,
    /// In unmixed calls, also produce a mixed stream of all participants aligned on the timeline.
    pub mix_unmixed: bool,
    /// Latency of that mixer (ms): how long it waits for every participant's audio.
    pub mix_latency_ms: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            default_sample_rate: DEFAULT_SAMPLE_RATE,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            ring_capacity_ms: DEFAULT_RING_CAPACITY_MS,
            max_gap_fill_ms: DEFAULT_MAX_GAP_FILL_MS,
            resync_after_late: 25,
            mix_unmixed: true,
            mix_latency_ms: DEFAULT_MIX_LATENCY_MS,
        }
    }
}

/// `[silence]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceSection {
    /// Frames at or below this RMS level (dBFS) are silence.
    pub threshold_dbfs: f32,
    /// Silence needed after speech before speech-end fires (ms).
    pub hang_ms: u32,
    /// Voiced audio needed before speech-start fires (ms).
    pub min_speech_ms: u32,
    /// Treat frames ACS flags `silent` as silence whatever their level.
    pub trust_acs_silent: bool,
}

impl Default for SilenceSection {
    fn default() -> Self {
        Self {
            threshold_dbfs: -45.0,
            hang_ms: 400,
            min_speech_ms: 40,
            trust_acs_silent: true,
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `acs_media_gateway=debug,info`, ...
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Command-line values that override everything else (only the ones given).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<String>,
    /// `--recordings-dir`: the directory of every `wav` sink.
    pub recordings_dir: Option<PathBuf>,
    /// `--log-level`
    pub log_level: Option<String>,
}

impl Config {
    /// Loads defaults ← `file` ← process environment (`ACS_GATEWAY_*`) ← `overrides`, then
    /// validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut cfg: Config = fig.extract().map_err(|e| {
            ConfigError::Load(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        if let Some(listen) = &overrides.listen {
            cfg.server.listen.clone_from(listen);
        }
        if let Some(dir) = &overrides.recordings_dir {
            for s in &mut cfg.sinks {
                s.set_recordings_dir(dir);
            }
        }
        if let Some(level) = &overrides.log_level {
            cfg.log.level.clone_from(level);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value; returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        let s = &self.server;
        if let Err(e) = s.listen.parse::<SocketAddr>() {
            p.push(format!(
                "server.listen {:?} is not an address:port ({e})",
                s.listen
            ));
        }
        range(
            &mut p,
            "server.max_connections",
            s.max_connections as u64,
            1,
            1_000_000,
        );
        range(
            &mut p,
            "server.max_frame_bytes",
            s.max_frame_bytes as u64,
            1024,
            16 << 20,
        );
        range(
            &mut p,
            "server.handshake_timeout_ms",
            s.handshake_timeout_ms,
            100,
            120_000,
        );
        range(
            &mut p,
            "server.idle_timeout_ms",
            s.idle_timeout_ms,
            100,
            3_600_000,
        );
        range(
            &mut p,
            "server.shutdown_grace_ms",
            s.shutdown_grace_ms,
            0,
            600_000,
        );
        let m = &self.media;
        if m.default_sample_rate != 16_000 && m.default_sample_rate != 24_000 {
            p.push(format!(
                "media.default_sample_rate {} must be 16000 or 24000 (the rates ACS streams)",
                m.default_sample_rate
            ));
        }
        range(
            &mut p,
            "media.max_participants",
            m.max_participants as u64,
            1,
            256,
        );
        range(
            &mut p,
            "media.ring_capacity_ms",
            m.ring_capacity_ms.into(),
            100,
            60_000,
        );
        range(
            &mut p,
            "media.max_gap_fill_ms",
            m.max_gap_fill_ms.into(),
            0,
            600_000,
        );
        range(
            &mut p,
            "media.resync_after_late",
            m.resync_after_late.into(),
            1,
            10_000,
        );
        range(
            &mut p,
            "media.mix_latency_ms",
            m.mix_latency_ms.into(),
            20,
            5_000,
        );
        let si = &self.silence;
        if !(-120.0..=0.0).contains(&si.threshold_dbfs) {
            p.push(format!(
                "silence.threshold_dbfs {} must be between -120 and 0",
                si.threshold_dbfs
            ));
        }
        range(&mut p, "silence.hang_ms", si.hang_ms.into(), 0, 60_000);
        range(
            &mut p,
            "silence.min_speech_ms",
            si.min_speech_ms.into(),
            0,
            10_000,
        );
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.push(format!(
                "log.level {:?} is not a valid filter ({e})",
                self.log.level
            ));
        }
        if self.log.format != "text" && self.log.format != "json" {
            p.push(format!(
                "log.format {:?} must be \"text\" or \"json\"",
                self.log.format
            ));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            for problem in sink.validate() {
                p.push(format!("sinks[{i}] ({}): {problem}", sink.kind()));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(p))
        }
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// The silence detector settings.
    pub fn silence_config(&self) -> crate::pipeline::silence::SilenceConfig {
        crate::pipeline::silence::SilenceConfig {
            threshold_dbfs: self.silence.threshold_dbfs,
            hang_ms: self.silence.hang_ms,
            min_speech_ms: self.silence.min_speech_ms,
            trust_acs_silent: self.silence.trust_acs_silent,
        }
    }
}

fn range(p: &mut Vec<String>, name: &str, v: u64, lo: u64, hi: u64) {
    if v < lo || v > hi {
        p.push(format!("{name} {v} must be between {lo} and {hi}"));
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use crate::sinks::SinkConfig;
    use figment::Jail;

    #[test]
    fn defaults_are_valid_and_match_the_readme() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        match &c.sinks[..] {
            [SinkConfig::Wav(w)] => assert_eq!(w.dir, PathBuf::from("./recordings")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_then_env_then_flags_and_print_round_trips() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "gw.toml",
                r#"
                [server]
                listen = "0.0.0.0:9000"
                max_connections = 10
                [media]
                default_sample_rate = 24000
                [[sinks]]
                type = "wav"
                dir = "rec"
                mixed = false
                [[sinks]]
                type = "null"
                "#,
            )?;
            jail.set_env("ACS_GATEWAY_SERVER__MAX_CONNECTIONS", "20");
            jail.set_env("ACS_GATEWAY_SILENCE__THRESHOLD_DBFS", "-50.5");
            let o = Overrides {
                listen: Some("127.0.0.1:7000".into()),
                recordings_dir: Some("elsewhere".into()),
                log_level: None,
            };
            let c = Config::load(Some(Path::new("gw.toml")), &o).map_err(|e| e.to_string())?;
            assert_eq!(c.server.listen, "127.0.0.1:7000", "flag beats file");
            assert_eq!(c.server.max_connections, 20, "env beats file");
            assert_eq!(c.silence.threshold_dbfs, -50.5);
            assert_eq!(c.media.default_sample_rate, 24000);
            assert_eq!(c.sinks.len(), 2);
            match &c.sinks[0] {
                SinkConfig::Wav(w) => {
                    assert_eq!(w.dir, PathBuf::from("elsewhere"));
                    assert!(!w.mixed);
                }
                other => panic!("{other:?}"),
            }
            // --print-config output loads back to the same tree
            jail.create_file("printed.toml", &c.to_toml())?;
            jail.clear_env();
            let back = Config::load(Some(Path::new("printed.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(back, c);
            Ok(())
        });
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut c = Config::default();
        c.server.listen = "nonsense".into();
        c.server.max_frame_bytes = 10;
        c.media.default_sample_rate = 8000;
        c.silence.threshold_dbfs = 3.0;
        c.log.format = "xml".into();
        if let SinkConfig::Wav(w) = &mut c.sinks[0] {
            w.workers = 0;
        }
        let ConfigError::Invalid(problems) = c.validate().unwrap_err() else {
            panic!()
        };
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems.iter().any(|p| p.starts_with("server.listen")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sinks[0] (wav): workers")));
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nlisten_addr = \"x\"\n")?;
            let e = Config::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("listen_addr"), "{e}");
            jail.create_file("sink.toml", "[[sinks]]\ntype = \"ftp\"\n")?;
            let e = Config::load(Some(Path::new("sink.toml")), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("ftp"), "{e}");
            jail.set_env("ACS_GATEWAY_SERVER__MAX_CONNECTIONS", "lots");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                e.to_string().to_lowercase().contains("max_connections"),
                "{e}"
            );
            let e =
                Config::load(Some(Path::new("missing.toml")), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("missing.toml"));
            Ok(())
        });
    }

    #[test]
    fn the_shipped_example_configs_are_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c: Config =
            toml::from_str(&text).unwrap_or_else(|e| panic!("deploy/gateway.toml: {e}"));
        c.validate()
            .unwrap_or_else(|e| panic!("deploy/gateway.toml: {e}"));
    }
}
