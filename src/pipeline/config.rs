//! The pipeline's settings and limits ([`PipelineConfig`] and its defaults, which the
//! configuration's `[media]` section takes) and what handling one message can give: [`Handled`],
//! [`FrameError`].

#[allow(unused_imports)]
use super::*;

/// Shared frame slots allocated when a call starts. A slot comes back as soon as every sink has
/// written it (sink workers take a batch every few ms, and a stream sends one frame per 20 ms), so
/// a real-time call keeps one or two in flight; the pool grows only while a sink lags. Each slot is
/// about 2 KiB, so this is most of a call's fixed memory.
pub const FRAME_POOL_INITIAL: usize = 4;
/// Most shared frame slots one call may have in flight to its sinks (about 80 s of one
/// participant's audio); beyond that the sinks are far behind and frames are dropped and counted.
pub const FRAME_POOL_MAX: usize = 4096;

/// Frames a call counts locally before adding its counts to the shared metrics (and at the end of
/// the call): one second of a real-time stream.
pub const METRICS_FLUSH_FRAMES: u32 = 50;

/// Longest accepted participant id, in bytes.
pub const MAX_PARTICIPANT_ID_LEN: usize = 512;
/// Longest accepted decoded payload of one AudioData: one second of audio.
pub const MAX_PAYLOAD_MS: usize = 1000;

/// Default sample rate assumed for AudioData that arrives before AudioMetadata.
pub const DEFAULT_SAMPLE_RATE: u32 = 16_000;
/// Default participants per call (unmixed streams carry up to 4 dominant speakers at a time).
pub const DEFAULT_MAX_PARTICIPANTS: usize = 16;
/// Default ring buffer capacity per participant (ms of audio). Its one reader in the gateway is
/// the mixer of unmixed calls, which reads `mix_latency_ms` (200) behind the newest frame; 500 ms
/// leaves that plus 300 ms of arrival jitter before a reader overruns (counted). 16 KiB per
/// participant at 16 kHz, 24 KiB at 24 kHz (2 s took 64 KiB of a stream's memory).
pub const DEFAULT_RING_CAPACITY_MS: u32 = 500;
/// Default latency of the unmixed → mixed mixer (ms).
pub const DEFAULT_MIX_LATENCY_MS: u32 = 200;

/// Settings of the pipeline (the configuration's `[media]` and `[silence]` sections build it;
/// its defaults are theirs).
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Rate used before AudioMetadata.
    pub default_sample_rate: u32,
    /// Participants per call.
    pub max_participants: usize,
    /// Ring capacity per participant (ms).
    pub ring_capacity_ms: u32,
    /// Timeline settings.
    pub timeline: TimelineConfig,
    /// Silence detector settings.
    pub silence: SilenceConfig,
    /// Mix unmixed calls.
    pub mix_unmixed: bool,
    /// Mixer latency (ms).
    pub mix_latency_ms: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            default_sample_rate: DEFAULT_SAMPLE_RATE,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            ring_capacity_ms: DEFAULT_RING_CAPACITY_MS,
            timeline: TimelineConfig::default(),
            silence: SilenceConfig::default(),
            mix_unmixed: true,
            mix_latency_ms: DEFAULT_MIX_LATENCY_MS,
        }
    }
}

/// A message that ends the connection: the close code and reason to send.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not a protocol message at all (not UTF-8, not JSON, no kind): close 1007.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// AudioMetadata announcing a format the gateway cannot take: close 1003.
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
}

impl FrameError {
    /// The WebSocket close code.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1007,
            FrameError::UnsupportedFormat(_) => 1003,
        }
    }

    /// The close reason (≤ 123 bytes, cut on a char boundary).
    pub fn close_reason(&self) -> String {
        let mut s = self.to_string();
        if s.len() > 120 {
            let mut cut = 120;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        s
    }
}

/// What [`CallPipeline::handle`] did with a message that did not end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Audio placed and fanned out.
    Audio,
    /// Audio dropped as late or duplicate (counted).
    Dropped,
    /// Audio refused for a reason (counted).
    Refused(BadFrame),
    /// AudioMetadata applied.
    Metadata,
    /// DTMF, transcription or mark event delivered.
    Event,
    /// Unknown kind (counted, skipped).
    Unknown,
}

impl Handled {
    /// The message was an AudioData frame (placed, dropped or refused).
    pub fn was_audio_data(self) -> bool {
        matches!(self, Self::Audio | Self::Dropped | Self::Refused(_))
    }
}
