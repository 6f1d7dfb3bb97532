//! The forward sink's settings (`[[sinks]] type = "forward"`): target URL template, one
//! connection per call or per stream, what is sent (audio encoding, events, streams), reconnect
//! and back-off, bidirectional playback and barge-in, and their validation.

use super::{proto, QueueConfig, WORKER_QUEUE_FRAMES};
use crate::pipeline::frame::CallInfo;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One downstream connection per call, or per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One connection per call.
    #[default]
    Call,
    /// One connection per forwarded stream (participant, or a mixed stream).
    Participant,
}

impl Per {
    /// The config and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Call => "call",
            Per::Participant => "participant",
        }
    }
}

/// How audio is framed downstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardMode {
    /// Binary messages of raw samples.
    #[default]
    Pcm,
    /// ACS `AudioData` JSON text, as ACS sends it.
    Acs,
}

impl ForwardMode {
    /// The config and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::Pcm => "pcm",
            ForwardMode::Acs => "acs",
        }
    }
}

/// Sample encoding of binary audio (both directions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// 16-bit signed little-endian.
    #[default]
    #[serde(rename = "pcm_s16le")]
    PcmS16le,
    /// 32-bit float little-endian, full scale ±1.0.
    #[serde(rename = "pcm_f32le")]
    PcmF32le,
}

impl Encoding {
    /// The config and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::PcmS16le => "pcm_s16le",
            Encoding::PcmF32le => "pcm_f32le",
        }
    }

    /// From the wire name (case-insensitive).
    pub fn from_wire(s: &str) -> Option<Self> {
        [Encoding::PcmS16le, Encoding::PcmF32le]
            .into_iter()
            .find(|e| s.eq_ignore_ascii_case(e.as_str()))
    }

    /// Bytes per sample.
    pub fn sample_bytes(self) -> usize {
        match self {
            Encoding::PcmS16le => 2,
            Encoding::PcmF32le => 4,
        }
    }
}

/// A kind of stream to forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamSelect {
    /// Each unmixed participant's stream.
    Participants,
    /// ACS's mixed stream.
    Mixed,
    /// The gateway's mix of an unmixed call.
    Mix,
}

/// `reconnect = { … }`: the backoff between connection attempts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectConfig {
    /// First delay (ms).
    pub initial_ms: u64,
    /// Longest delay (ms).
    pub max_ms: u64,
    /// Share of each delay taken off at random, 0–1.
    pub jitter: f64,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            initial_ms: 200,
            max_ms: 5000,
            jitter: 0.2,
        }
    }
}

/// `[[sinks]] type = "forward"`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardSinkConfig {
    /// Target URL template (`{call}`, `{participant}`).
    pub url: String,
    /// One connection per call or per stream.
    pub per: Per,
    /// Audio framing.
    pub mode: ForwardMode,
    /// Sample encoding of binary audio (`pcm` mode).
    pub encoding: Encoding,
    /// Streams to forward; `None` picks by `per` (see the module docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<StreamSelect>>,
    /// Audio frames buffered per connection.
    pub queue_frames: usize,
    /// Keepalive ping interval (ms); 0 = off.
    pub ping_interval_ms: u64,
    /// Time for TCP, TLS and the upgrade (ms).
    pub connect_timeout_ms: u64,
    /// Backoff between attempts.
    pub reconnect: ReconnectConfig,
    /// Stop playback and tell the target when a caller starts speaking.
    pub barge_in: bool,
}

impl Default for ForwardSinkConfig {
    fn default() -> Self {
        Self {
            url: "ws://127.0.0.1:9100/calls/{call}".into(),
            per: Per::Call,
            mode: ForwardMode::Pcm,
            encoding: Encoding::PcmS16le,
            streams: None,
            queue_frames: 250,
            ping_interval_ms: 5000,
            connect_timeout_ms: 3000,
            reconnect: ReconnectConfig::default(),
            barge_in: true,
        }
    }
}

impl ForwardSinkConfig {
    /// A config for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The streams forwarded (`streams`, or the default for `per`).
    pub fn selected(&self) -> Vec<StreamSelect> {
        self.streams.clone().unwrap_or_else(|| match self.per {
            Per::Call => vec![StreamSelect::Mixed, StreamSelect::Mix],
            Per::Participant => vec![StreamSelect::Participants, StreamSelect::Mixed],
        })
    }

    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = self.url.trim();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            p.push(format!(
                "url {:?} must start with ws:// or wss://",
                self.url
            ));
        } else {
            let unknown = proto::unknown_placeholders(url);
            if !unknown.is_empty() {
                p.push(format!(
                    "url has unknown placeholders {} (known: {{call}}, {{participant}})",
                    unknown.join(", ")
                ));
            }
            if self.per == Per::Call && url.contains("{participant}") {
                p.push("url uses {participant}, which needs per = \"participant\"".into());
            }
            let sample = CallInfo::new(0, Some("call".into()), None, None, 0);
            let probe = proto::render_url(url, &sample, None).replace("{participant}", "p");
            if let Err(e) = probe.as_str().into_client_request() {
                p.push(format!("url {:?} is not a valid URL: {e}", self.url));
            }
        }
        if !(16..=100_000).contains(&self.queue_frames) {
            p.push(format!(
                "queue_frames {} must be between 16 and 100000",
                self.queue_frames
            ));
        }
        if self.ping_interval_ms != 0 && !(100..=300_000).contains(&self.ping_interval_ms) {
            p.push(format!(
                "ping_interval_ms {} must be 0 (off) or between 100 and 300000",
                self.ping_interval_ms
            ));
        }
        if !(100..=60_000).contains(&self.connect_timeout_ms) {
            p.push(format!(
                "connect_timeout_ms {} must be between 100 and 60000",
                self.connect_timeout_ms
            ));
        }
        let r = &self.reconnect;
        if !(10..=60_000).contains(&r.initial_ms) {
            p.push(format!(
                "reconnect.initial_ms {} must be between 10 and 60000",
                r.initial_ms
            ));
        }
        if r.max_ms < r.initial_ms || r.max_ms > 600_000 {
            p.push(format!(
                "reconnect.max_ms {} must be between initial_ms ({}) and 600000",
                r.max_ms, r.initial_ms
            ));
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            p.push(format!(
                "reconnect.jitter {} must be between 0 and 1",
                r.jitter
            ));
        }
        if self.mode == ForwardMode::Acs && self.encoding != Encoding::PcmS16le {
            p.push("encoding must be pcm_s16le in acs mode (ACS audio is 16-bit)".into());
        }
        if self.per == Per::Call
            && self.mode == ForwardMode::Pcm
            && self.selected().contains(&StreamSelect::Participants)
        {
            p.push(
                "streams = [\"participants\"] needs per = \"participant\" or mode = \"acs\": \
                 pcm mode carries one stream per connection"
                    .into(),
            );
        }
        p
    }

    /// Queue settings of the worker in front of the sink.
    pub fn queue(&self) -> QueueConfig {
        QueueConfig {
            audio_capacity: WORKER_QUEUE_FRAMES,
            ..QueueConfig::default()
        }
    }
}
