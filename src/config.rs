//! The configuration tree: embedded defaults ← TOML file (`--config`) ← environment
//! (`ACS_GATEWAY_<SECTION>__<KEY>`) ← command-line flags, merged into one validated [`Config`].
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and
//! [`Config::validate`] reports every problem at once, before any port is bound. The crate's
//! front page has a runnable example (a configuration from TOML text).

pub use crate::cluster::ClusterConfig;
pub use crate::control::config::{
    AcsConfig, AcsJwtConfig, ControlConfig, PlaneConfig, DEFAULT_ACS_API_VERSION,
    DEFAULT_CALL_TOKEN_TTL_SECS,
};
pub use crate::control::policy::AnswerConfig;
use crate::pipeline::silence::SilenceConfig;
use crate::pipeline::timeline::TimelineConfig;
use crate::pipeline::PipelineConfig;
use crate::sinks::SinkConfig;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default maximum concurrent media WebSocket connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Default maximum WebSocket message size (bytes); bigger messages close with 1009.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default time allowed for a client to send its HTTP upgrade request (ms).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Default largest HTTP request body (bytes) of the routes that take one (the Event Grid webhook
/// and ACS callbacks; Event Grid delivers batches of at most 1 MB). Routes without a body take none.
pub const DEFAULT_MAX_BODY_BYTES: usize = crate::control::http::MAX_BODY_BYTES;
/// Default time allowed to receive a whole HTTP request body once its head has arrived (ms).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// Default time a media connection may stay silent (no message at all) before it is closed (ms).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// Default grace period for the drain at shutdown (ms).
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// Default runtime lag (ms) past which new media upgrades are shed (see
/// [`ServerConfig::shed_lag_ms`]): well above the 1-3 ms a healthy gateway shows at capacity,
/// well below the lag at which real-time audio turns choppy.
pub const DEFAULT_SHED_LAG_MS: u64 = 50;
/// Default sink queue fill past which new media upgrades are shed: a sink queue also carries the
/// control messages of call set-up and tear-down, which a churn of short calls piles up for a
/// moment without any audio at risk; audio is dropped only at 1.0.
pub const DEFAULT_SHED_QUEUE_FILL: f64 = 0.8;
pub use crate::pipeline::{
    DEFAULT_GAP_FILL_SLACK_MS, DEFAULT_MAX_GAP_FILL_MS, DEFAULT_MAX_PARTICIPANTS,
    DEFAULT_MIX_LATENCY_MS, DEFAULT_RING_CAPACITY_MS, DEFAULT_SAMPLE_RATE,
};
/// Environment variable prefix.
pub const ENV_PREFIX: &str = "ACS_GATEWAY_";

/// Errors loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, environment or flags could not be read into the tree; each problem names the
    /// key and where it came from (the file as given, or the environment variable).
    #[error("configuration could not be loaded:\n  - {0}")]
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
    pub silence: SilenceConfig,
    /// Logging.
    pub log: LogConfig,
    /// ACS resource: REST client and JWT checks.
    pub acs: AcsConfig,
    /// Control plane: public URLs, call tokens, operator API, webhook secret, registry.
    pub control: ControlConfig,
    /// Answer policy: default action, streaming profiles, rules.
    pub answer: AnswerConfig,
    /// Sinks every call's audio and events fan out to.
    pub sinks: Vec<SinkConfig>,
    /// Recordings to Azure Blob Storage (the type lives in its module).
    pub upload: crate::upload::UploadConfig,
    /// Cluster mode on NATS JetStream (the type lives in its module; off by default).
    pub cluster: crate::cluster::ClusterConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            media: MediaConfig::default(),
            silence: SilenceConfig::default(),
            log: LogConfig::default(),
            acs: AcsConfig::default(),
            control: ControlConfig::default(),
            answer: AnswerConfig::default(),
            sinks: vec![SinkConfig::default_wav()],
            upload: Default::default(),
            cluster: Default::default(),
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
    /// Time allowed to receive the HTTP request head (ms); also how long an idle keep-alive
    /// connection waits for its next request.
    pub handshake_timeout_ms: u64,
    /// Largest HTTP request body (bytes) of the webhook and callbacks (the operator API takes at
    /// most 64 KiB of it, other routes none); a bigger one gets 413.
    pub max_body_bytes: usize,
    /// Time allowed to receive a whole request body after its head (ms); slower gets 408.
    pub body_timeout_ms: u64,
    /// A media connection with no message for this long is closed (ms).
    pub idle_timeout_ms: u64,
    /// Grace period for closing connections and draining sinks at shutdown (ms).
    pub shutdown_grace_ms: u64,
    /// Overload protection: new media upgrades get 503 + Retry-After while the runtime's
    /// sustained scheduling lag (how late a 50 ms timer fires: the 5th-worst of the last second)
    /// exceeds this (ms); 0 turns the lag check off.
    pub shed_lag_ms: u64,
    /// Overload protection: new media upgrades get 503 + Retry-After while any sink queue is
    /// fuller than this fraction of its audio capacity; 0 turns the check off.
    pub shed_queue_fill: f64,
    /// Accept media with no credential at all (no call token required, no ACS JWT check) on a
    /// listen address that is not loopback. Off: such a configuration is refused at start.
    pub allow_unauthenticated_media: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            shed_lag_ms: DEFAULT_SHED_LAG_MS,
            shed_queue_fill: DEFAULT_SHED_QUEUE_FILL,
            allow_unauthenticated_media: false,
        }
    }
}

impl ServerConfig {
    /// The listen address is a loopback one (127.0.0.0/8, ::1); false when it does not parse.
    pub fn listens_on_loopback(&self) -> bool {
        self.listen
            .parse::<SocketAddr>()
            .is_ok_and(|a| is_loopback(a.ip()))
    }

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
    /// How far a stream's total silence fill may run ahead of the wall-clock time since its first
    /// frame (ms); a timestamp jump beyond that budget is an outlier, written without fill.
    pub gap_fill_slack_ms: u32,
    /// Consecutive late frames after which the sender's clock is taken to have jumped backwards.
    pub resync_after_late: u32,
    /// In unmixed calls, also produce a mixed stream of all participants aligned on the timeline.
    pub mix_unmixed: bool,
    /// Latency of that mixer (ms): how long it waits for every participant's audio.
    pub mix_latency_ms: u32,
    /// Media connections accept outbound audio (bidirectional playback from a forward target),
    /// as when calls are answered with `enableBidirectional`.
    pub bidirectional: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        // the pipeline owns these defaults
        let p = PipelineConfig::default();
        Self {
            default_sample_rate: p.default_sample_rate,
            max_participants: p.max_participants,
            ring_capacity_ms: p.ring_capacity_ms,
            max_gap_fill_ms: p.timeline.max_gap_fill_ms,
            gap_fill_slack_ms: p.timeline.gap_fill_slack_ms,
            resync_after_late: p.timeline.resync_after_late,
            mix_unmixed: p.mix_unmixed,
            mix_latency_ms: p.mix_latency_ms,
            bidirectional: false,
        }
    }
}

impl From<&Config> for PipelineConfig {
    fn from(c: &Config) -> Self {
        Self {
            default_sample_rate: c.media.default_sample_rate,
            max_participants: c.media.max_participants,
            ring_capacity_ms: c.media.ring_capacity_ms,
            timeline: TimelineConfig {
                max_gap_fill_ms: c.media.max_gap_fill_ms,
                gap_fill_slack_ms: c.media.gap_fill_slack_ms,
                resync_after_late: c.media.resync_after_late,
            },
            silence: c.silence.clone(),
            mix_unmixed: c.media.mix_unmixed,
            mix_latency_ms: c.media.mix_latency_ms,
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

/// 127.0.0.0/8, ::1, or an IPv4-mapped loopback address.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `host` or `host:port` (`[v6]:port`) names this machine: `localhost` or a loopback address.
fn host_is_loopback(host: &str) -> bool {
    if let Ok(a) = host.parse::<SocketAddr>() {
        return is_loopback(a.ip());
    }
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return is_loopback(ip);
    }
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

fn url_problem(p: &mut Vec<String>, name: &str, v: &str, schemes: &[&str]) {
    let v = v.trim();
    if v.is_empty() {
        return;
    }
    let ok = schemes.iter().any(|s| {
        v.len() > s.len() + 3 && v[..s.len() + 3].eq_ignore_ascii_case(&format!("{s}://"))
    });
    if !ok {
        p.push(format!(
            "{name} {v:?} must be a {} URL",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    } else if v.contains(['?', '#', ' ']) {
        p.push(format!(
            "{name} {v:?} must not have a query, fragment or spaces"
        ));
    }
}

impl Config {
    /// Whether media connections must carry a call token (see `control.require_call_token`).
    pub fn require_call_token(&self) -> bool {
        self.control_plane().require_call_token()
    }

    /// What the control plane is built from (the `[acs]`, `[control]` and `[answer]` sections and
    /// `server.max_body_bytes`).
    pub fn control_plane(&self) -> PlaneConfig {
        PlaneConfig {
            acs: self.acs.clone(),
            control: self.control.clone(),
            answer: self.answer.clone(),
            max_body_bytes: self.server.max_body_bytes,
        }
    }

    /// Media connections need no credential at all: no call token is required and ACS's JWTs
    /// are not checked.
    pub fn media_admission_open(&self) -> bool {
        !self.require_call_token() && !self.acs.jwt_enabled()
    }

    /// What an exposed (not loopback) listener must not leave open: media admission without
    /// any credential (unless `server.allow_unauthenticated_media`), and an ACS connection
    /// string without ACS token checks; and a connection string needs a public base URL
    /// unless gateway and ACS are both on this machine (acs-sim).
    fn exposure_problems(&self, p: &mut Vec<String>) {
        let Ok(addr) = self.server.listen.parse::<SocketAddr>() else {
            return; // reported with server.listen
        };
        let loopback = is_loopback(addr.ip());
        if !loopback && self.media_admission_open() && !self.server.allow_unauthenticated_media {
            p.push(format!(
                "server.allow_unauthenticated_media is off, but server.listen {} is not a loopback \
                 address and media admission is open (no call token required, no ACS JWT check): \
                 anyone who reaches the port could stream audio into the gateway. Require a \
                 credential (acs.resource_id turns on ACS JWT checks; acs.connection_string or \
                 control.require_call_token = true requires call tokens), listen on 127.0.0.1, \
                 or accept it with server.allow_unauthenticated_media = true \
                 (ACS_GATEWAY_SERVER__ALLOW_UNAUTHENTICATED_MEDIA=true)",
                self.server.listen
            ));
        }
        if !self.acs.configured() {
            return;
        }
        let acs_local = crate::protocol::auth::ConnectionString::parse(&self.acs.connection_string)
            .is_ok_and(|c| host_is_loopback(&c.host));
        if self.control.public_base_url.trim().is_empty() && !(loopback && acs_local) {
            p.push(
                "control.public_base_url must be set when acs.connection_string is: ACS would \
                 otherwise be given callback and media URLs on http://<listen address>, which it \
                 cannot reach (ACS_GATEWAY_CONTROL__PUBLIC_BASE_URL=https://<public host>)"
                    .into(),
            );
        }
        if !loopback && self.acs.jwt.enabled.is_none() && self.acs.resource_id.trim().is_empty() {
            p.push(format!(
                "acs.resource_id is empty while acs.connection_string is set and server.listen {} \
                 is not loopback: ACS's tokens on media upgrades and callbacks would go unchecked. \
                 Set acs.resource_id to the ACS immutable resource id \
                 (ACS_GATEWAY_ACS__RESOURCE_ID), or acs.jwt.enabled = false to run without the check",
                self.server.listen
            ));
        }
    }

    fn control_problems(&self, p: &mut Vec<String>) {
        let a = &self.acs;
        if a.configured() {
            if let Err(e) = crate::protocol::auth::ConnectionString::parse(&a.connection_string) {
                p.push(format!("acs.connection_string: {e}"));
            }
        }
        let v = a.api_version.as_bytes();
        let date_ok = v.len() >= 10
            && v[..10].iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
            && (v.len() == 10 || a.api_version[10..].starts_with("-preview"));
        if !date_ok {
            p.push(format!(
                "acs.api_version {:?} must look like 2025-06-15 (or …-preview)",
                a.api_version
            ));
        }
        range(
            p,
            "acs.request_timeout_ms",
            a.request_timeout_ms,
            100,
            120_000,
        );
        range(p, "acs.max_retries", a.max_retries.into(), 0, 10);
        range(p, "acs.max_retry_after_ms", a.max_retry_after_ms, 0, 60_000);
        if a.jwt_enabled() {
            if a.jwt_audience().is_empty() {
                p.push(
                    "acs.jwt.enabled needs acs.jwt.audience or acs.resource_id (the ACS immutable resource id)"
                        .into(),
                );
            }
            if a.jwt.issuer.trim().is_empty() {
                p.push("acs.jwt.issuer must not be empty".into());
            }
            if a.jwt.jwks_url.trim().is_empty() {
                p.push("acs.jwt.jwks_url must not be empty".into());
            }
        }
        url_problem(p, "acs.jwt.jwks_url", &a.jwt.jwks_url, &["https", "http"]);
        range(p, "acs.jwt.leeway_secs", a.jwt.leeway_secs, 0, 600);
        let c = &self.control;
        url_problem(
            p,
            "control.public_base_url",
            &c.public_base_url,
            &["https", "http"],
        );
        url_problem(
            p,
            "control.public_media_url",
            &c.public_media_url,
            &["wss", "ws"],
        );
        url_problem(
            p,
            "control.graph_base_url",
            &c.graph_base_url,
            &["https", "http"],
        );
        if !c.call_token_secret.is_empty()
            && c.call_token_secret.len() < crate::protocol::token::MIN_SECRET_LEN
        {
            p.push(format!(
                "control.call_token_secret must be at least {} bytes (use 32 random characters)",
                crate::protocol::token::MIN_SECRET_LEN
            ));
        }
        range(
            p,
            "control.call_token_ttl_secs",
            c.call_token_ttl_secs,
            60,
            7 * 86_400,
        );
        if !c.operator_api_key.is_empty() && c.operator_api_key.len() < 16 {
            p.push("control.operator_api_key must be at least 16 characters".into());
        }
        if !c.eventgrid_secret.is_empty()
            && (c.eventgrid_secret.len() < 8
                || !c
                    .eventgrid_secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
        {
            p.push(
                "control.eventgrid_secret must be at least 8 characters of A-Z a-z 0-9 - _ . ~ (it goes in a URL)"
                    .into(),
            );
        }
        range(
            p,
            "control.registry_max_calls",
            c.registry_max_calls as u64,
            1,
            1_000_000,
        );
        range(
            p,
            "control.ended_call_ttl_secs",
            c.ended_call_ttl_secs,
            0,
            7 * 86_400,
        );
        p.extend(self.answer.problems());
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

/// One problem reading the configuration, as the user wrote it: the key
/// (`server.max_connections`), where it came from (the file path as given on the command line,
/// or the environment variable) and what is wrong; no figment profile or internal names.
fn describe_load_error(e: &figment::Error, file: Option<&Path>) -> String {
    use figment::error::Kind;
    let mut path = e.path.clone();
    let what = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key; expected one of: {}", expected.join(", "))
        }
        k => k.to_string(),
    };
    let source = match &e.metadata {
        Some(md) => match (&md.source, file) {
            (Some(figment::Source::File(_)), Some(f)) => f.display().to_string(),
            (Some(figment::Source::File(p)), None) => p.display().to_string(),
            _ if md.name.contains("environment") => {
                format!("environment variable {}", env_var_for(&path))
            }
            _ => md.name.to_string(),
        },
        None => "the configuration".into(),
    };
    if path.is_empty() {
        format!("{source}: {what}")
    } else {
        format!("{} ({source}): {what}", path.join("."))
    }
}

/// The `ACS_GATEWAY_*` variable that set `path`: the longest prefix of the key that names a
/// variable present (`sinks.0.dir` came from `ACS_GATEWAY_SINKS`).
fn env_var_for(path: &[String]) -> String {
    let name = |n: usize| {
        let keys: Vec<String> = path[..n].iter().map(|k| k.to_ascii_uppercase()).collect();
        format!("{ENV_PREFIX}{}", keys.join("__"))
    };
    (1..=path.len())
        .rev()
        .map(name)
        .find(|v| std::env::var_os(v).is_some())
        .unwrap_or_else(|| name(path.len()))
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
        // ACS_GATEWAY_CONFIG and ACS_GATEWAY_RECORDINGS_DIR are the flags' variables, not keys
        fig = fig.merge(
            Env::prefixed(ENV_PREFIX)
                .ignore(&["CONFIG", "RECORDINGS_DIR"])
                .split("__"),
        );
        let mut cfg: Config = fig.extract().map_err(|e| {
            ConfigError::Load(
                e.into_iter()
                    .map(|e| describe_load_error(&e, file))
                    .collect::<Vec<_>>()
                    .join("\n  - "),
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
            "server.max_body_bytes",
            s.max_body_bytes as u64,
            1024,
            64 << 20,
        );
        range(
            &mut p,
            "server.body_timeout_ms",
            s.body_timeout_ms,
            100,
            600_000,
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
        range(&mut p, "server.shed_lag_ms", s.shed_lag_ms, 0, 60_000);
        if !(0.0..=1.0).contains(&s.shed_queue_fill) {
            p.push(format!(
                "server.shed_queue_fill {} must be between 0 (off) and 1",
                s.shed_queue_fill
            ));
        }
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
            "media.gap_fill_slack_ms",
            m.gap_fill_slack_ms.into(),
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
        if m.mix_unmixed && m.ring_capacity_ms < m.mix_latency_ms.saturating_add(100) {
            p.push(format!(
                "media.ring_capacity_ms {} must be at least media.mix_latency_ms + 100 ({}): the \
                 mixer reads that far behind the newest frame",
                m.ring_capacity_ms,
                m.mix_latency_ms.saturating_add(100)
            ));
        }
        let si = &self.silence;
        if !(-120.0..=0.0).contains(&si.threshold_dbfs) {
            p.push(format!(
                "silence.threshold_dbfs {} must be between -120 and 0",
                si.threshold_dbfs
            ));
        }
        range(&mut p, "silence.hang_ms", si.hang_ms.into(), 0, 60_000);
        // The neural detector's network is loaded here, once per process: a model that does not
        // load fails the start rather than leaving every stream unvoiced.
        if si.detector == crate::pipeline::silence::DetectorKind::Neural {
            if let Err(e) = crate::pipeline::vad::warm_up_neural() {
                p.push(format!("silence.detector \"neural\": {e}"));
            }
        }
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
        self.control_problems(&mut p);
        self.exposure_problems(&mut p);
        for (i, sink) in self.sinks.iter().enumerate() {
            for problem in sink.validate() {
                p.push(format!("sinks[{i}] ({}): {problem}", sink.kind()));
            }
        }
        p.extend(
            self.upload
                .validate()
                .into_iter()
                .map(|e| format!("upload: {e}")),
        );
        if let Err(e) = self.cluster.validate() {
            p.push(e);
        }
        if self.cluster.enabled() && self.control.call_token_secret.trim().is_empty() {
            p.push(
                "cluster mode needs control.call_token_secret, the same on every replica".into(),
            );
        }
        if self.upload.enabled && !self.sinks.iter().any(|s| s.recordings_dir().is_some()) {
            p.push("upload.enabled needs a wav sink (nothing else writes recordings)".into());
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
    fn cluster_mode_from_env_needs_a_shared_call_token_secret() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("ACS_GATEWAY_CLUSTER__NATS_URL", "nats://nats:4222");
            jail.set_env("ACS_GATEWAY_CLUSTER__REPLICA_ID", "gw-0");
            let e = Config::load(None, &Overrides::default())
                .and_then(|c| c.validate().map(|_| c))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("cluster mode needs control.call_token_secret"),
                "{e}"
            );
            jail.set_env("ACS_GATEWAY_CONTROL__CALL_TOKEN_SECRET", "x".repeat(40));
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            c.validate().map_err(|e| e.to_string())?;
            assert!(c.cluster.enabled());
            assert_eq!(c.cluster.resolved_replica_id(), "gw-0");
            assert_eq!(c.cluster.bucket_prefix, "acs-gw");
            jail.set_env("ACS_GATEWAY_CLUSTER__REPLICA_ID", "gw.0");
            // loading validates too: the error may come from either step
            let e = Config::load(None, &Overrides::default())
                .and_then(|c| c.validate().map(|_| c))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("cluster.replica_id"),
                "a dot would split the routing subject: {e}"
            );
            Ok(())
        });
    }

    #[test]
    fn file_then_env_then_flags_and_print_round_trips() {
        Jail::expect_with(|jail| {
            jail.clear_env(); // hermetic: no ACS_GATEWAY_* from the machine running the tests
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
            jail.clear_env(); // hermetic: no ACS_GATEWAY_* from the machine running the tests
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
    fn load_errors_name_the_key_and_the_file_or_variable_as_written() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            std::fs::create_dir("conf").map_err(|e| e.to_string())?;
            jail.create_file("conf/x.toml", "[server]\nmax_conections = 5\n")?;
            let e = Config::load(
                Some(Path::new("conf/../conf/x.toml")),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("server.max_conections (conf/../conf/x.toml): unknown key; expected one of: listen, max_connections"),
                "{e}"
            );
            assert!(!e.contains("default."), "no figment profile: {e}");
            jail.create_file("conf/y.toml", "[server]\nmax_connections = \"many\"\n")?;
            let e = Config::load(Some(Path::new("conf/y.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(
                    "server.max_connections (conf/y.toml): invalid type: found string \"many\""
                ),
                "{e}"
            );
            jail.set_env("ACS_GATEWAY_SERVER__MAX_CONNECTIONS", "lots");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("server.max_connections (environment variable ACS_GATEWAY_SERVER__MAX_CONNECTIONS): invalid type: found string \"lots\""),
                "{e}"
            );
            jail.clear_env();
            jail.set_env("ACS_GATEWAY_SINKS", "[{type=\"wav\",dri=\"x\"}]");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("(environment variable ACS_GATEWAY_SINKS)"),
                "{e}"
            );
            // the flags' own variables are not configuration keys
            jail.clear_env();
            jail.set_env("ACS_GATEWAY_CONFIG", "conf/x.toml");
            jail.set_env("ACS_GATEWAY_RECORDINGS_DIR", "rec");
            Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            Ok(())
        });
    }

    #[test]
    fn silence_detector_is_chosen_by_name_and_a_wrong_name_is_an_error() {
        use crate::pipeline::silence::DetectorKind;
        Jail::expect_with(|jail| {
            jail.clear_env();
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.silence.detector, DetectorKind::Adaptive);
            assert_eq!(
                PipelineConfig::from(&c).silence.detector,
                DetectorKind::Adaptive
            );
            jail.create_file("n.toml", "[silence]\ndetector = \"neural\"\n")?;
            let c = Config::load(Some(Path::new("n.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(
                PipelineConfig::from(&c).silence.detector,
                DetectorKind::Neural
            );
            jail.set_env("ACS_GATEWAY_SILENCE__DETECTOR", "energy");
            let c = Config::load(Some(Path::new("n.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.silence.detector, DetectorKind::Energy, "env beats file");
            assert!(c.to_toml().contains("detector = \"energy\""));
            jail.set_env("ACS_GATEWAY_SILENCE__DETECTOR", "webrtc");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("webrtc"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn control_sections_load_from_file_and_env_and_round_trip() {
        Jail::expect_with(|jail| {
            jail.clear_env(); // hermetic: no ACS_GATEWAY_* from the machine running the tests
            jail.create_file(
                "gw.toml",
                r#"
                [acs]
                connection_string = "endpoint=https://contoso.communication.azure.com/;accesskey=dGVzdC1rZXk="
                resource_id = "11111111-2222-3333-4444-555555555555"
                max_retries = 2
                [acs.jwt]
                leeway_secs = 30
                [control]
                public_base_url = "https://gw.contoso.com"
                operator_api_key = "0123456789abcdef0123"
                [answer.default]
                action = "reject"
                reject_reason = "busy"
                [answer.profiles.unmixed24]
                audio_channel = "unmixed"
                audio_format = "pcm24KMono"
                [answer.profiles.unmixed24.transcription]
                locale = "fr-FR"
                [[answer.rules]]
                name = "support"
                to = "28:orgid:*"
                profile = "unmixed24"
                "#,
            )?;
            jail.set_env("ACS_GATEWAY_CONTROL__REQUIRE_CALL_TOKEN", "false");
            jail.set_env("ACS_GATEWAY_ACS__API_VERSION", "2025-08-15-preview");
            jail.set_env(
                "ACS_GATEWAY_CONTROL__CALL_TOKEN_SECRET",
                "a-secret-from-the-environment-0123",
            );
            let c = Config::load(Some(Path::new("gw.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert!(c.acs.configured());
            assert_eq!(c.acs.max_retries, 2);
            assert_eq!(c.acs.api_version, "2025-08-15-preview");
            assert!(c.acs.jwt_enabled(), "on: resource_id is set");
            assert_eq!(c.acs.jwt_audience(), "11111111-2222-3333-4444-555555555555");
            assert_eq!(c.acs.jwt.leeway_secs, 30);
            assert_eq!(c.acs.jwt.issuer, crate::control::jwt::ACS_ISSUER);
            assert!(!c.require_call_token(), "env beats the ACS default");
            assert_eq!(
                c.control.call_token_secret,
                "a-secret-from-the-environment-0123"
            );
            assert_eq!(c.answer.default.action, "reject");
            assert!(c.answer.profiles.contains_key("default"), "defaults kept");
            let p = &c.answer.profiles["unmixed24"];
            assert_eq!(p.audio_format, "pcm24KMono");
            assert!(p.start_media_streaming, "unset keys take defaults");
            assert_eq!(p.transcription.as_ref().unwrap().locale, "fr-FR");
            assert_eq!(c.answer.rules[0].to, "28:orgid:*");
            jail.create_file("printed.toml", &c.to_toml())?;
            jail.clear_env();
            let back = Config::load(Some(Path::new("printed.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(back, c);
            Ok(())
        });
    }

    #[test]
    fn control_defaults_keep_a_fresh_machine_working() {
        let mut c = Config::default();
        c.validate().unwrap();
        assert!(!c.acs.configured());
        assert!(!c.require_call_token(), "no ACS: /ws stays open");
        assert!(!c.acs.jwt_enabled());
        assert_eq!(c.acs.api_version, "2026-03-12", "what the SDKs 1.6.0 send");
        assert_eq!(c.control.call_token_ttl_secs, 4 * 3600);
        c.acs.connection_string = "endpoint=http://127.0.0.1:1/;accesskey=dGVzdC1rZXk=".into();
        assert!(c.require_call_token(), "ACS configured: tokens required");
        c.control.require_call_token = Some(false);
        assert!(!c.require_call_token());
        c.acs.resource_id = "r".into();
        assert!(c.acs.jwt_enabled());
        c.acs.jwt.enabled = Some(false);
        assert!(!c.acs.jwt_enabled());
    }

    #[test]
    fn every_control_problem_is_reported() {
        let mut c = Config::default();
        c.acs.connection_string = "endpoint=ftp://x/;accesskey=dGVzdC1rZXk=".into();
        c.acs.api_version = "latest".into();
        c.acs.max_retries = 99;
        c.acs.jwt.enabled = Some(true);
        c.control.public_base_url = "gw.contoso.com".into();
        c.control.public_media_url = "https://media".into();
        c.control.call_token_secret = "short".into();
        c.control.operator_api_key = "key".into();
        c.control.eventgrid_secret = "has spaces in it".into();
        c.control.registry_max_calls = 0;
        c.answer.rules.push(crate::control::policy::AnswerRule {
            profile: "missing".into(),
            ..Default::default()
        });
        let ConfigError::Invalid(p) = c.validate().unwrap_err() else {
            panic!()
        };
        for prefix in [
            "acs.connection_string",
            "acs.api_version",
            "acs.max_retries",
            "acs.jwt.enabled needs",
            "control.public_base_url",
            "control.public_media_url",
            "control.call_token_secret",
            "control.operator_api_key",
            "control.eventgrid_secret",
            "control.registry_max_calls",
            "answer.rules[0].profile",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(prefix)),
                "{prefix} not in {p:#?}"
            );
        }
        assert_eq!(p.len(), 11, "{p:#?}");
        assert!(
            !p.iter().any(|m| m.contains("dGVzdC1rZXk")),
            "the key is never echoed"
        );
    }

    fn problems(c: &Config) -> Vec<String> {
        match c.validate() {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_exposed_listener_with_open_media_admission_is_refused() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080"] {
            let mut c = Config::default();
            c.server.listen = listen.into();
            let p = problems(&c);
            assert_eq!(p.len(), 1, "{listen}: {p:#?}");
            assert!(
                p[0].starts_with("server.allow_unauthenticated_media is off")
                    && p[0].contains(listen)
                    && p[0].contains("ACS_GATEWAY_SERVER__ALLOW_UNAUTHENTICATED_MEDIA=true"),
                "{}",
                p[0]
            );
            c.server.allow_unauthenticated_media = true;
            c.validate().unwrap();
        }
        // Loopback stays open by default (a fresh machine works as before).
        for listen in [
            "127.0.0.1:8080",
            "127.0.0.2:0",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            let mut c = Config::default();
            c.server.listen = listen.into();
            assert!(c.media_admission_open());
            c.validate().unwrap_or_else(|e| panic!("{listen}: {e}"));
        }
        // Any credential closes it: ACS JWT checks ...
        let mut c = Config::default();
        c.server.listen = "0.0.0.0:8080".into();
        c.acs.resource_id = "11111111-2222-3333-4444-555555555555".into();
        assert!(!c.media_admission_open());
        c.validate().unwrap();
        // ... or call tokens (which need nothing else to be valid here).
        c.acs.resource_id.clear();
        c.control.require_call_token = Some(true);
        c.validate().unwrap();
        // Turning both off explicitly with ACS configured is refused too.
        c.acs.connection_string =
            "endpoint=https://x.communication.azure.com/;accesskey=dGVzdC1rZXk=".into();
        c.control.public_base_url = "https://gw.contoso.com".into();
        c.control.require_call_token = Some(false);
        c.acs.jwt.enabled = Some(false);
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("server.allow_unauthenticated_media"));
    }

    #[test]
    fn a_connection_string_needs_a_public_base_url_and_a_resource_id() {
        let real = "endpoint=https://x.communication.azure.com/;accesskey=dGVzdC1rZXk=";
        let mut c = Config::default();
        c.server.listen = "0.0.0.0:8080".into();
        c.acs.connection_string = real.into();
        let p = problems(&c);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with("control.public_base_url must be set"),
            "{p:#?}"
        );
        assert!(p[1].starts_with("acs.resource_id is empty"), "{p:#?}");
        assert!(
            !p.iter().any(|m| m.contains("dGVzdC1rZXk")),
            "the key is never echoed"
        );
        c.control.public_base_url = "https://gw.contoso.com".into();
        c.acs.resource_id = "11111111-2222-3333-4444-555555555555".into();
        c.validate().unwrap();
        // Turning JWT checks off explicitly is a choice, not a silent gap (call tokens remain).
        c.acs.resource_id.clear();
        c.acs.jwt.enabled = Some(false);
        c.validate().unwrap();
        // Explicitly on without an audience stays the older, more specific error.
        c.acs.jwt.enabled = Some(true);
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("acs.jwt.enabled needs"), "{p:#?}");

        // On loopback a real ACS still needs a public base URL (it cannot reach 127.0.0.1) ...
        let mut c = Config::default();
        c.acs.connection_string = real.into();
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("control.public_base_url"));
        // ... but a fake ACS on this machine (acs-sim) reaches the derived http:// URL.
        for endpoint in [
            "http://127.0.0.1:8090",
            "http://localhost:8090",
            "http://[::1]:8090",
        ] {
            c.acs.connection_string = format!("endpoint={endpoint}/;accesskey=dGVzdC1rZXk=");
            c.validate().unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
        // A local ACS does not excuse an exposed listener.
        c.server.listen = "0.0.0.0:8080".into();
        let p = problems(&c);
        assert!(
            p.iter().any(|m| m.starts_with("control.public_base_url")),
            "{p:#?}"
        );
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:8090",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8090",
            "::1",
        ] {
            assert!(host_is_loopback(h), "{h}");
        }
        for h in [
            "x.communication.azure.com",
            "10.0.0.1:80",
            "[::]:1",
            "localhost.evil.com",
        ] {
            assert!(!host_is_loopback(h), "{h}");
        }
    }

    const DEPLOY_SECRET_ENV: [(&str, &str); 4] = [
        (
            "ACS_GATEWAY_ACS__CONNECTION_STRING",
            "endpoint=https://contoso.communication.azure.com/;accesskey=dGVzdC1rZXk=",
        ),
        (
            "ACS_GATEWAY_CONTROL__CALL_TOKEN_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
        (
            "ACS_GATEWAY_ACS__RESOURCE_ID",
            "11111111-2222-3333-4444-555555555555",
        ),
        (
            "ACS_GATEWAY_CONTROL__PUBLIC_BASE_URL",
            "https://media-gateway.example.com",
        ),
    ];

    #[test]
    fn the_shipped_deploy_config_fails_closed_and_passes_with_its_documented_env() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway.toml");
        Jail::expect_with(|jail| {
            jail.clear_env();
            // As shipped, with no environment: refused, naming the missing resource id.
            let e = Config::load(Some(&path), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("acs.resource_id"), "{e}");
            // With the documented Secret values: valid, and nothing admits media unchecked.
            for (k, v) in DEPLOY_SECRET_ENV {
                jail.set_env(k, v);
            }
            let c = Config::load(Some(&path), &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(!c.server.listens_on_loopback());
            assert!(c.acs.jwt_enabled() && c.require_call_token());
            assert!(!c.server.allow_unauthenticated_media);
            // Media only (no ACS connection string): ACS's JWTs are still required.
            jail.clear_env();
            jail.set_env(DEPLOY_SECRET_ENV[2].0, DEPLOY_SECRET_ENV[2].1);
            let c = Config::load(Some(&path), &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(c.acs.jwt_enabled() && !c.media_admission_open());
            // A connection string without the public base URL is refused.
            jail.set_env(DEPLOY_SECRET_ENV[0].0, DEPLOY_SECRET_ENV[0].1);
            let e = Config::load(Some(&path), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("control.public_base_url"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_configmap_carries_the_same_gateway_toml() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let toml = std::fs::read_to_string(root.join("deploy/gateway.toml")).unwrap();
        let cm = std::fs::read_to_string(root.join("deploy/k8s/configmap.yaml")).unwrap();
        let (_, body) = cm
            .split_once("  gateway.toml: |\n")
            .expect("gateway.toml key");
        let embedded: String = body
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        assert_eq!(
            embedded, toml,
            "deploy/k8s/configmap.yaml differs from deploy/gateway.toml"
        );
    }
}
