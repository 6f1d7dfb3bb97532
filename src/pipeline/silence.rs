//! PURE: the per-participant silence detector (voice activity and speech edges).
//!
//! Owns [`SilenceDetector`], [`SilenceConfig`], [`DetectorKind`], the level measure [`dbfs`] and
//! the speech edges [`VoiceEdge`]. The detector combines a per-frame speech decision (one of
//! three classifiers, see [`DetectorKind`]; the adaptive and neural ones live in
//! [`super::vad`]) with ACS's own `silent` flag, and turns the decisions into speech edges.
//!
//! # Rules
//!
//! - **Clock.** The detector counts samples: every frame fed to [`SilenceDetector::process`] and
//!   every gap fed to [`SilenceDetector::process_gap`] advances [`SilenceDetector::position`] by
//!   its length. Edge positions (`at`, `started`) are on this clock. Milliseconds in the config are
//!   converted to samples with the sample rate (`ms * rate / 1000`, rounded down).
//! - **Voiced frame.** A frame is voiced when its classifier says speech and not
//!   (`trust_acs_silent` and the frame's ACS `silent` flag). Gaps are always unvoiced. The
//!   classifiers: `energy` says speech when `dbfs(frame) > threshold_dbfs`; `adaptive` (the
//!   default) when its sub-band SNRs against the stream's tracked noise floors are high enough;
//!   `neural` when Silero VAD's network and the adaptive decision agree by the fusion rule of
//!   [`super::vad::NeuralVad`]. The last two never call a DTMF tone speech.
//!   Every frame goes through the classifier, ACS-silent ones too (they keep the noise floor).
//! - **Speech start.** Outside speech, consecutive voiced frames form a run; the run's start is the
//!   position of its first sample. Once the run holds at least `min_speech_ms` of audio,
//!   [`VoiceEdge::SpeechStart`] fires (on that frame) with `at` = the run's start. An unvoiced
//!   frame or gap before that resets the pending run.
//! - **Speech end.** In speech, unvoiced audio (frames and gaps) accumulates since the last voiced
//!   frame; a voiced frame resets it. Once it reaches `hang_ms`, [`VoiceEdge::SpeechEnd`] fires
//!   with `at` = the position just after the last voiced frame and `started` = the segment's start.
//! - **End of stream.** [`SilenceDetector::finish`] closes an open segment the same way (`at` =
//!   just after the last voiced frame, which is the current position when the stream ends while
//!   voiced) and drops a pending, not yet started run.
//! - An empty frame changes nothing.
//!
//! Nothing allocates after construction.

use super::vad::{AdaptiveVad, NeuralVad};

/// The level reported for empty or all-zero audio, in dBFS.
pub const SILENCE_FLOOR_DBFS: f32 = -120.0;

/// Which per-frame speech classifier a [`SilenceDetector`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// Sub-band SNR against per-stream noise floors ([`super::vad::AdaptiveVad`]). The default.
    #[default]
    Adaptive,
    /// Silero VAD's network (run by tract) fused with the adaptive decision
    /// ([`super::vad::NeuralVad`]): more accurate, above all in babble; ~100x the adaptive cost.
    Neural,
    /// RMS level above the fixed `threshold_dbfs` (the original detector; noise counts as speech).
    Energy,
}

impl DetectorKind {
    /// The config spelling: `adaptive`, `neural` or `energy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::Neural => "neural",
            Self::Energy => "energy",
        }
    }
}

/// Silence detector settings: the `[silence]` section of the configuration (the defaults here
/// are the configuration's defaults).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceConfig {
    /// Per-frame speech classifier: `adaptive` (default), `neural` or `energy`.
    pub detector: DetectorKind,
    /// `energy` detector: frames at or below this RMS level (dBFS) are silence. Default -45.0.
    pub threshold_dbfs: f32,
    /// Silence (unvoiced audio) needed after speech before speech-end fires (ms). Default 400.
    pub hang_ms: u32,
    /// Voiced audio needed (in one uninterrupted run) before speech-start fires (ms). Default 40.
    pub min_speech_ms: u32,
    /// Treat frames ACS flags `silent` as silence whatever their level. Default true.
    pub trust_acs_silent: bool,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self {
            detector: DetectorKind::Adaptive,
            threshold_dbfs: -45.0,
            hang_ms: 400,
            min_speech_ms: 40,
            trust_acs_silent: true,
        }
    }
}

/// RMS level of 16-bit samples relative to full scale (32768): `20 * log10(rms / 32768)`.
///
/// Empty or all-zero input gives [`SILENCE_FLOOR_DBFS`]; a full-scale square wave gives about 0.0.
pub fn dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_FLOOR_DBFS;
    }
    // Each square is at most 2^30 (fits i32 and u32), so a u64 sum holds 2^34 samples without
    // overflow; squaring in 32 bits lets the loop vectorise (64-bit multiplies do not).
    let sum: u64 = samples
        .iter()
        .map(|&s| {
            let v = i32::from(s);
            u64::from((v * v) as u32)
        })
        .sum();
    if sum == 0 {
        return SILENCE_FLOOR_DBFS;
    }
    let mean = sum as f64 / samples.len() as f64;
    // 20*log10(sqrt(mean)/32768) = 10*log10(mean) - 20*log10(32768)
    let db = 10.0 * mean.log10() - 20.0 * 32768f64.log10();
    (db as f32).max(SILENCE_FLOOR_DBFS)
}

/// A speech edge. Positions are sample counts on the detector's clock (all samples fed, gaps included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VoiceEdge {
    /// Speech started; `at` is the position of the first voiced sample of the segment.
    SpeechStart {
        /// Position of the segment's first voiced sample.
        at: u64,
    },
    /// Speech ended; `at` is the position just after the last voiced frame.
    SpeechEnd {
        /// Position just after the segment's last voiced frame.
        at: u64,
        /// Position of the segment's first voiced sample (the matching `SpeechStart::at`).
        started: u64,
    },
}

/// What the detector made of one frame.
#[derive(Clone, Copy, Debug)]
pub struct FrameVoice {
    /// The frame's RMS level in dBFS.
    pub dbfs: f32,
    /// Whether the frame counted as voiced.
    pub voiced: bool,
    /// The speech edge this frame caused, if any.
    pub edge: Option<VoiceEdge>,
}

/// The per-frame classifier of a [`SilenceDetector`].
#[derive(Debug)]
enum Classifier {
    Energy { threshold_dbfs: f32 },
    Adaptive(Box<AdaptiveVad>),
    Neural(Box<NeuralVad>),
}

impl Classifier {
    /// (RMS dBFS, speech) for one non-empty frame.
    fn classify(&mut self, samples: &[i16]) -> (f32, bool) {
        match self {
            Self::Energy { threshold_dbfs } => {
                let level = dbfs(samples);
                (level, level > *threshold_dbfs)
            }
            Self::Adaptive(v) => v.process(samples),
            Self::Neural(v) => v.process(samples),
        }
    }
}

/// Per-participant voice activity state. See the module docs for the rules.
#[derive(Debug)]
pub struct SilenceDetector {
    classifier: Classifier,
    trust_acs_silent: bool,
    hang_samples: u64,
    min_speech_samples: u64,
    position: u64,
    in_speech: bool,
    /// Start and accumulated length of a voiced run not yet long enough to start speech.
    pending: Option<(u64, u64)>,
    segment_start: u64,
    last_voiced_end: u64,
    unvoiced_run: u64,
    silent_samples: u64,
    voiced_samples: u64,
}

fn ms_to_samples(ms: u32, sample_rate: u32) -> u64 {
    u64::from(ms) * u64::from(sample_rate) / 1000
}

impl SilenceDetector {
    /// A detector for audio at `sample_rate` Hz, starting at position 0 outside speech.
    pub fn new(cfg: &SilenceConfig, sample_rate: u32) -> Self {
        let classifier = match cfg.detector {
            DetectorKind::Energy => Classifier::Energy {
                threshold_dbfs: cfg.threshold_dbfs,
            },
            DetectorKind::Adaptive => Classifier::Adaptive(Box::new(AdaptiveVad::new(sample_rate))),
            DetectorKind::Neural => Classifier::Neural(Box::new(NeuralVad::new(sample_rate))),
        };
        Self {
            classifier,
            trust_acs_silent: cfg.trust_acs_silent,
            hang_samples: ms_to_samples(cfg.hang_ms, sample_rate),
            min_speech_samples: ms_to_samples(cfg.min_speech_ms, sample_rate),
            position: 0,
            in_speech: false,
            pending: None,
            segment_start: 0,
            last_voiced_end: 0,
            unvoiced_run: 0,
            silent_samples: 0,
            voiced_samples: 0,
        }
    }

    /// Feeds one frame with ACS's `silent` flag; returns its level, whether it was voiced and any edge.
    pub fn process(&mut self, samples: &[i16], acs_silent: bool) -> FrameVoice {
        if samples.is_empty() {
            return FrameVoice {
                dbfs: SILENCE_FLOOR_DBFS,
                voiced: false,
                edge: None,
            };
        }
        let (level, speech) = self.classifier.classify(samples);
        let voiced = speech && !(self.trust_acs_silent && acs_silent);
        let n = samples.len() as u64;
        let edge = if voiced {
            self.voiced(n)
        } else {
            self.unvoiced(n)
        };
        FrameVoice {
            dbfs: level,
            voiced,
            edge,
        }
    }

    /// Feeds `n` samples of filled silence (a gap: there is no data to look at).
    pub fn process_gap(&mut self, n: u64) -> Option<VoiceEdge> {
        if n == 0 {
            return None;
        }
        self.unvoiced(n)
    }

    /// End of stream: closes an open segment with a `SpeechEnd` (see the module docs).
    pub fn finish(&mut self) -> Option<VoiceEdge> {
        self.pending = None;
        if !self.in_speech {
            return None;
        }
        self.in_speech = false;
        self.unvoiced_run = 0;
        Some(VoiceEdge::SpeechEnd {
            at: self.last_voiced_end,
            started: self.segment_start,
        })
    }

    /// Whether a speech segment is open.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Total samples fed so far (frames and gaps).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Total unvoiced samples fed so far (unvoiced frames and gaps).
    pub fn silent_samples(&self) -> u64 {
        self.silent_samples
    }

    /// Total voiced samples fed so far.
    pub fn voiced_samples(&self) -> u64 {
        self.voiced_samples
    }

    fn voiced(&mut self, n: u64) -> Option<VoiceEdge> {
        let start = self.position;
        self.position = self.position.saturating_add(n);
        self.voiced_samples = self.voiced_samples.saturating_add(n);
        if self.in_speech {
            self.unvoiced_run = 0;
            self.last_voiced_end = self.position;
            return None;
        }
        let (run_start, run_len) = self.pending.unwrap_or((start, 0));
        let run_len = run_len.saturating_add(n);
        if run_len >= self.min_speech_samples {
            self.pending = None;
            self.in_speech = true;
            self.segment_start = run_start;
            self.last_voiced_end = self.position;
            self.unvoiced_run = 0;
            Some(VoiceEdge::SpeechStart { at: run_start })
        } else {
            self.pending = Some((run_start, run_len));
            None
        }
    }

    fn unvoiced(&mut self, n: u64) -> Option<VoiceEdge> {
        self.position = self.position.saturating_add(n);
        self.silent_samples = self.silent_samples.saturating_add(n);
        self.pending = None;
        if !self.in_speech {
            return None;
        }
        self.unvoiced_run = self.unvoiced_run.saturating_add(n);
        if self.unvoiced_run >= self.hang_samples {
            self.in_speech = false;
            self.unvoiced_run = 0;
            Some(VoiceEdge::SpeechEnd {
                at: self.last_voiced_end,
                started: self.segment_start,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: i16 = 8000; // about -12.3 dBFS as a square wave

    fn square(amp: i16, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| if i % 2 == 0 { amp } else { -amp })
            .collect()
    }

    fn sine(amp: f64, freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amp * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    #[test]
    fn dbfs_reference_levels() {
        assert_eq!(dbfs(&[]), SILENCE_FLOOR_DBFS);
        assert_eq!(dbfs(&[0; 320]), SILENCE_FLOOR_DBFS);
        // -32768 squared is exactly full scale.
        assert_eq!(dbfs(&[i16::MIN; 320]), 0.0);
        let full = dbfs(&square(i16::MAX, 320));
        assert!(full.abs() < 0.001, "{full}");
        let half = dbfs(&square(16384, 320));
        assert!((half - (-6.0206)).abs() < 0.001, "{half}");
        // 1 kHz at amplitude 0.5: RMS = 0.5/sqrt(2) → -9.03 dBFS.
        for rate in [16_000, 24_000] {
            let s = dbfs(&sine(0.5, 1000.0, rate, (rate / 50) as usize));
            assert!((s - (-9.0309)).abs() < 0.1, "{rate}: {s}");
        }
        // One LSB in a frame is very quiet but above the floor.
        let mut tiny = [0i16; 320];
        tiny[0] = 1;
        let t = dbfs(&tiny);
        assert!(t > SILENCE_FLOOR_DBFS && t < -110.0, "{t}");
    }

    /// The edge rules are the classifier's business-independent part: these tests drive them
    /// with the `energy` classifier, whose decisions are exact (a square wave or zeros).
    fn energy_cfg() -> SilenceConfig {
        SilenceConfig {
            detector: DetectorKind::Energy,
            ..SilenceConfig::default()
        }
    }

    fn det16() -> SilenceDetector {
        SilenceDetector::new(&energy_cfg(), 16_000)
    }

    #[test]
    fn silence_speech_pause_end_sequence() {
        let mut d = det16();
        let quiet = [0i16; 320];
        let loud = square(LOUD, 320);
        // 5 silent frames: positions 0..1600.
        for _ in 0..5 {
            let f = d.process(&quiet, false);
            assert!(!f.voiced);
            assert_eq!(f.edge, None);
        }
        // First voiced frame (20 ms < 40 ms): no start yet.
        let f = d.process(&loud, false);
        assert!(f.voiced);
        assert_eq!(f.edge, None);
        assert!(!d.in_speech());
        // Second voiced frame reaches 40 ms: start at the first voiced sample (1600).
        let f = d.process(&loud, false);
        assert_eq!(f.edge, Some(VoiceEdge::SpeechStart { at: 1600 }));
        assert!(d.in_speech());
        // More speech, up to position 3200.
        for _ in 0..3 {
            assert_eq!(d.process(&loud, false).edge, None);
        }
        assert_eq!(d.position(), 3200);
        // Short pause: 19 frames = 380 ms < 400 ms.
        for _ in 0..19 {
            assert_eq!(d.process(&quiet, false).edge, None);
        }
        assert!(d.in_speech());
        // Voice resumes: hang resets. Last voiced frame ends at 3200 + 19*320 + 320 = 9600.
        assert_eq!(d.process(&loud, false).edge, None);
        assert_eq!(d.position(), 9600);
        // Long pause: the 20th silent frame (400 ms) ends the segment.
        for i in 0..19 {
            assert_eq!(d.process(&quiet, false).edge, None, "frame {i}");
        }
        let f = d.process(&quiet, false);
        assert_eq!(
            f.edge,
            Some(VoiceEdge::SpeechEnd {
                at: 9600,
                started: 1600
            })
        );
        assert!(!d.in_speech());
        // Further silence: nothing.
        assert_eq!(d.process(&quiet, false).edge, None);
        assert_eq!(d.voiced_samples(), 6 * 320);
        assert_eq!(d.silent_samples(), (5 + 19 + 20 + 1) * 320);
        assert_eq!(d.voiced_samples() + d.silent_samples(), d.position());
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn unvoiced_frame_resets_pending_start() {
        let mut d = det16();
        let loud = square(LOUD, 320);
        assert_eq!(d.process(&loud, false).edge, None); // 0..320
        assert_eq!(d.process(&[0; 320], false).edge, None); // reset
        assert_eq!(d.process(&loud, false).edge, None); // 640..960
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 640 })
        );
    }

    #[test]
    fn single_short_voiced_frame_does_not_start() {
        let mut d = det16();
        assert_eq!(d.process(&square(LOUD, 320), false).edge, None);
        for _ in 0..50 {
            assert_eq!(d.process(&[0; 320], false).edge, None);
        }
        assert!(!d.in_speech());
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn acs_silent_flag() {
        let loud = square(LOUD, 320);
        let mut d = det16();
        for _ in 0..5 {
            let f = d.process(&loud, true);
            assert!(!f.voiced);
            assert!(f.dbfs > -13.0);
            assert_eq!(f.edge, None);
        }
        assert!(!d.in_speech());

        let cfg = SilenceConfig {
            trust_acs_silent: false,
            ..energy_cfg()
        };
        let mut d = SilenceDetector::new(&cfg, 16_000);
        assert!(d.process(&loud, true).voiced);
        assert_eq!(
            d.process(&loud, true).edge,
            Some(VoiceEdge::SpeechStart { at: 0 })
        );
        // A quiet frame flagged not-silent is still unvoiced.
        assert!(!d.process(&[0; 320], false).voiced);
    }

    #[test]
    fn gaps_count_toward_hang_and_position() {
        let mut d = det16();
        let loud = square(LOUD, 320);
        d.process(&loud, false);
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 0 })
        );
        // 200 ms of silent frames + 199.9 ms gap: no end yet.
        for _ in 0..10 {
            assert_eq!(d.process(&[0; 320], false).edge, None);
        }
        assert_eq!(d.process_gap(3199), None);
        assert_eq!(d.process_gap(0), None);
        assert!(d.in_speech());
        // One more sample reaches 400 ms.
        assert_eq!(
            d.process_gap(1),
            Some(VoiceEdge::SpeechEnd {
                at: 640,
                started: 0
            })
        );
        assert_eq!(d.position(), 640 + 3200 + 3200);
        assert_eq!(d.silent_samples(), 6400);
    }

    #[test]
    fn gap_resets_pending_start_and_huge_gap_is_safe() {
        let mut d = det16();
        let loud = square(LOUD, 320);
        d.process(&loud, false);
        d.process_gap(320);
        assert_eq!(d.process(&loud, false).edge, None);
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 640 })
        );
        assert!(d.process_gap(u64::MAX).is_some());
        assert_eq!(d.position(), u64::MAX);
    }

    #[test]
    fn finish_closes_open_segment() {
        let mut d = det16();
        let loud = square(LOUD, 320);
        d.process(&[0; 320], false);
        d.process(&loud, false);
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 320 })
        );
        d.process(&loud, false);
        assert_eq!(
            d.finish(),
            Some(VoiceEdge::SpeechEnd {
                at: 1280,
                started: 320
            })
        );
        assert!(!d.in_speech());
        assert_eq!(d.finish(), None);
        // Ending during the hang: `at` is the end of the last voiced frame.
        d.process(&loud, false);
        d.process(&loud, false); // starts at 1280
        d.process(&[0; 320], false);
        assert_eq!(
            d.finish(),
            Some(VoiceEdge::SpeechEnd {
                at: 1920,
                started: 1280
            })
        );
    }

    #[test]
    fn rate_24k() {
        let mut d = SilenceDetector::new(&energy_cfg(), 24_000);
        let loud = sine(0.3, 440.0, 24_000, 480);
        d.process(&[0; 480], false);
        let f = d.process(&loud, false);
        assert!(f.voiced);
        assert_eq!(f.edge, None);
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 480 })
        );
        // hang = 400 ms = 9600 samples = 20 frames of 480.
        for _ in 0..19 {
            assert_eq!(d.process(&[0; 480], false).edge, None);
        }
        assert_eq!(
            d.process(&[0; 480], false).edge,
            Some(VoiceEdge::SpeechEnd {
                at: 1440,
                started: 480
            })
        );
    }

    #[test]
    fn odd_frame_sizes_accumulate_to_min_speech() {
        // 40 ms at 16 kHz = 640 samples; frames of 100 samples need 7 to get there.
        let mut d = det16();
        let loud = square(LOUD, 100);
        for _ in 0..6 {
            assert_eq!(d.process(&loud, false).edge, None);
        }
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 0 })
        );
    }

    #[test]
    fn empty_frame_is_a_no_op() {
        let mut d = det16();
        let loud = square(LOUD, 320);
        d.process(&loud, false);
        let f = d.process(&[], false);
        assert!(!f.voiced);
        assert_eq!(f.dbfs, SILENCE_FLOOR_DBFS);
        assert_eq!(
            d.process(&loud, false).edge,
            Some(VoiceEdge::SpeechStart { at: 0 })
        );
        assert_eq!(d.position(), 640);
    }

    #[test]
    fn threshold_is_strict() {
        let cfg = SilenceConfig {
            threshold_dbfs: dbfs(&square(16384, 320)),
            min_speech_ms: 0,
            ..energy_cfg()
        };
        let mut d = SilenceDetector::new(&cfg, 16_000);
        assert!(!d.process(&square(16384, 320), false).voiced);
        let f = d.process(&square(20000, 320), false);
        assert!(f.voiced);
        assert_eq!(f.edge, Some(VoiceEdge::SpeechStart { at: 320 }));
    }
}
