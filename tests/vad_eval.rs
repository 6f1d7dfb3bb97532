//! Frame-level evaluation of the speech detectors (`silence.detector` = adaptive / neural /
//! energy) against ground truth and against WebRTC's VAD (libfvad, modes 0–3), on noisy mixes
//! made here from the clean espeak-ng clips in fixtures/vad (see fixtures/README.md).
//!
//! Mixes: each clip with white, pink, brown, babble and hum+hiss noise at 20/10/5/0 dB SNR
//! (SNR = active-speech power over noise power), at one of three speech levels; plus noise-only
//! clips (the five kinds at three levels) and DTMF-only clips. Every noise comes from a fixed
//! seed. Ground truth: a 20 ms frame is speech when the clean clip's RMS there is above
//! -50 dBFS (pauses are digital zero). Detectors see 20 ms frames with `silent: false`.
//!
//! `cargo test --test vad_eval` runs the set at 16 kHz (about 31,000 frames) and at 24 kHz and
//! asserts the targets at both rates; `-- --nocapture` prints the per-condition tables.

use acs_media_gateway::pipeline::silence::{DetectorKind, SilenceConfig, SilenceDetector};
use std::collections::BTreeMap;
use std::path::PathBuf;

const CLIPS: [&str; 6] = ["en_us_m", "en_gb_f", "de_m", "fr_f", "es_m", "it_f"];
const NOISES: [&str; 5] = ["white", "pink", "brown", "babble", "hum+hiss"];
const SNRS: [i32; 4] = [20, 10, 5, 0];
/// Speech level offsets (dB) applied per clip in turn: level independence.
const GAINS_DB: [f32; 3] = [0.0, -8.0, -16.0];
const TRUTH_DBFS: f64 = -50.0;

fn load(name: &str) -> Vec<i16> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "fixtures",
        "vad",
        &format!("{name}.flac"),
    ]
    .iter()
    .collect();
    let mut r = claxon::FlacReader::open(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert_eq!(r.streaminfo().sample_rate, 16_000);
    assert_eq!(r.streaminfo().channels, 1);
    r.samples().map(|s| s.unwrap() as i16).collect()
}

/// xorshift64*, uniform in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (v >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    /// Approximately Gaussian (sum of four uniforms), unit variance.
    fn gauss(&mut self) -> f64 {
        (self.next() + self.next() + self.next() + self.next()) * 0.866
    }
}

fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

/// `n` samples of noise of `kind` at 16 kHz, unit power, from `seed`; `clip` picks babble talkers.
fn noise(kind: &str, n: usize, seed: u64, clean: &[Vec<i16>], clip: Option<usize>) -> Vec<f64> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out: Vec<f64> = match kind {
        "white" => (0..n).map(|_| r.gauss()).collect(),
        "pink" => {
            // Paul Kellett's economy pink filter.
            let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
            (0..n)
                .map(|_| {
                    let w = r.gauss();
                    b0 = 0.99765 * b0 + w * 0.0990460;
                    b1 = 0.96300 * b1 + w * 0.2965164;
                    b2 = 0.57000 * b2 + w * 1.0526913;
                    b0 + b1 + b2 + w * 0.1848
                })
                .collect()
        }
        "brown" => {
            let mut b = 0.0;
            (0..n)
                .map(|_| {
                    b = 0.998 * b + r.gauss();
                    b
                })
                .collect()
        }
        "babble" => {
            // A crowd: every other clip (every clip for noise-only) four times, each talker from
            // its own offset, looped — 20-24 voices, like a canteen, not one conversation.
            let mut acc = vec![0.0; n];
            for (i, c) in clean.iter().enumerate() {
                if Some(i) == clip {
                    continue;
                }
                for _ in 0..4 {
                    let off = ((r.next() + 1.0) * 0.5 * c.len() as f64) as usize;
                    for (k, a) in acc.iter_mut().enumerate() {
                        *a += f64::from(c[(off + k) % c.len()]);
                    }
                }
            }
            acc
        }
        "hum+hiss" => {
            // 50 Hz mains hum with harmonics, plus hiss 10 dB below it.
            let ph = (r.next() + 1.0) * std::f64::consts::PI;
            (0..n)
                .map(|k| {
                    let t = k as f64 / 16_000.0;
                    let hum: f64 = [(1.0, 1.0), (2.0, 0.5), (3.0, 0.35), (5.0, 0.2)]
                        .iter()
                        .map(|(h, a)| a * (std::f64::consts::TAU * 50.0 * h * t + ph * h).sin())
                        .sum();
                    hum + 0.35 * r.gauss()
                })
                .collect()
        }
        other => panic!("{other}"),
    };
    // Unit power.
    let p = power(&out).sqrt();
    for v in &mut out {
        *v /= p;
    }
    out
}

fn frame_dbfs(x: &[f64]) -> f64 {
    10.0 * (power(x) / (32768.0 * 32768.0)).max(1e-13).log10()
}

/// One evaluation item: 16 kHz audio, per-20 ms-frame truth, and its labels.
struct Item {
    pcm: Vec<i16>,
    truth: Vec<bool>,
    noise: &'static str,
    snr: String,
}

fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn dtmf_clip(seed: u64, level_dbfs: f64) -> Vec<f64> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let mut r = Rng(seed);
    let amp = 32768.0 * 10f64.powf(level_dbfs / 20.0);
    let mut out = Vec::new();
    // 12 digits: 100 ms tone (or 200 ms), 100 ms pause; -60 dBFS white floor.
    for d in 0..12 {
        let row = ROWS[((r.next() + 1.0) * 2.0) as usize % 4];
        let col = COLS[((r.next() + 1.0) * 2.0) as usize % 4];
        let on = if d % 3 == 0 { 3200 } else { 1600 };
        for k in 0..on {
            let t = k as f64 / 16_000.0;
            out.push(
                amp * 0.5
                    * ((std::f64::consts::TAU * row * t).sin()
                        + 0.8 * (std::f64::consts::TAU * col * t).sin()),
            );
        }
        out.extend(std::iter::repeat_n(0.0, 1600));
    }
    let floor = 32768.0 * 10f64.powf(-60.0 / 20.0);
    for v in &mut out {
        *v += floor * r.gauss();
    }
    let frames = out.len() / 320;
    out.truncate(frames * 320);
    out
}

/// Another draw of the same set: `VAD_EVAL_SEED=n` (default 0, the committed figures) shifts
/// every noise, babble and DTMF seed, so thresholds tuned on seed 0 can be checked on noise they
/// never saw.
fn seed_shift() -> u64 {
    std::env::var("VAD_EVAL_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 10_007
}

fn build_set() -> Vec<Item> {
    let clean: Vec<Vec<i16>> = CLIPS.iter().map(|c| load(c)).collect();
    let shift = seed_shift();
    let mut items = Vec::new();
    for (ci, c) in clean.iter().enumerate() {
        let frames = c.len() / 320;
        let c = &c[..frames * 320];
        let cf: Vec<f64> = c.iter().map(|&v| f64::from(v)).collect();
        let truth: Vec<bool> = cf.chunks(320).map(|f| frame_dbfs(f) > TRUTH_DBFS).collect();
        let active: Vec<f64> = cf
            .chunks(320)
            .zip(&truth)
            .filter(|(_, t)| **t)
            .flat_map(|(f, _)| f.iter().copied())
            .collect();
        let p_speech = power(&active);
        for (ni, kind) in NOISES.iter().enumerate() {
            for (si, snr) in SNRS.iter().enumerate() {
                let seed = (ci * 100 + ni * 10 + si) as u64 + 1 + shift;
                let nz = noise(kind, cf.len(), seed, &clean, Some(ci));
                let gain = 10f64.powf(f64::from(GAINS_DB[(ci + ni + si) % 3]) / 20.0);
                let n_amp = (p_speech / 10f64.powf(f64::from(*snr) / 10.0)).sqrt();
                let mix: Vec<f64> = cf
                    .iter()
                    .zip(&nz)
                    .map(|(s, n)| gain * (s + n_amp * n))
                    .collect();
                items.push(Item {
                    pcm: to_i16(&mix),
                    truth: truth.clone(),
                    noise: kind,
                    snr: format!("{snr} dB"),
                });
            }
        }
    }
    // Noise only: 4 s of each kind at -55, -40 and -28 dBFS.
    for (ni, kind) in NOISES.iter().enumerate() {
        for (li, level) in [-55.0f64, -40.0, -28.0].iter().enumerate() {
            let nz = noise(
                kind,
                64_000,
                1000 + (ni * 10 + li) as u64 + shift,
                &clean,
                None,
            );
            let amp = 32768.0 * 10f64.powf(level / 20.0);
            let mix: Vec<f64> = nz.iter().map(|v| v * amp).collect();
            items.push(Item {
                pcm: to_i16(&mix),
                truth: vec![false; 200],
                noise: kind,
                snr: "noise only".into(),
            });
        }
    }
    for (i, level) in [-8.0, -20.0, -32.0].iter().enumerate() {
        let x = dtmf_clip(77 + i as u64 + shift, *level);
        let frames = x.len() / 320;
        items.push(Item {
            pcm: to_i16(&x),
            truth: vec![false; frames],
            noise: "dtmf",
            snr: "tones only".into(),
        });
    }
    items
}

/// 16 kHz → 24 kHz: windowed-sinc interpolation (3 phases of 32 taps).
fn up_to_24k(x: &[i16]) -> Vec<i16> {
    const HALF: i64 = 16;
    let phases: Vec<Vec<f64>> = (0..3)
        .map(|p| {
            let frac = f64::from(p * 2 % 3) / 3.0;
            (-HALF + 1..=HALF)
                .map(|k| {
                    let d = k as f64 - frac;
                    let sinc = if d == 0.0 {
                        1.0
                    } else {
                        (std::f64::consts::PI * d).sin() / (std::f64::consts::PI * d)
                    };
                    let w = 0.5 + 0.5 * (std::f64::consts::PI * d / HALF as f64).cos();
                    sinc * w
                })
                .collect()
        })
        .collect();
    let n_out = x.len() * 3 / 2;
    (0..n_out)
        .map(|m| {
            let base = (m * 2 / 3) as i64;
            let taps = &phases[m % 3];
            let mut y = 0.0;
            for (i, c) in taps.iter().enumerate() {
                let idx = base + i as i64 - HALF + 1;
                if idx >= 0 && (idx as usize) < x.len() {
                    y += c * f64::from(x[idx as usize]);
                }
            }
            y.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
    tn: u64,
}

impl Counts {
    fn add(&mut self, truth: bool, said: bool) {
        match (truth, said) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn merge(&mut self, o: &Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    fn fa(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn).max(1) as f64
    }
    fn frames(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }
}

type Decide<'a> = Box<dyn FnMut(&[i16]) -> bool + 'a>;

/// Runs one fresh detector per item over its 20 ms frames; counts per (noise, snr) and overall.
fn evaluate(
    items: &[Item],
    rate: u32,
    mut make: impl FnMut() -> Decide<'static>,
) -> BTreeMap<(String, String), Counts> {
    let per = rate as usize / 50;
    let mut out: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for it in items {
        let pcm = if rate == 24_000 {
            up_to_24k(&it.pcm)
        } else {
            it.pcm.clone()
        };
        let mut d = make();
        let mut c = Counts::default();
        for (f, t) in pcm.chunks_exact(per).zip(&it.truth) {
            c.add(*t, d(f));
        }
        out.entry((it.noise.to_string(), it.snr.clone()))
            .or_default()
            .merge(&c);
    }
    out
}

fn ours(kind: DetectorKind, rate: u32) -> impl FnMut() -> Decide<'static> {
    move || {
        let cfg = SilenceConfig {
            detector: kind,
            ..SilenceConfig::default()
        };
        let mut d = SilenceDetector::new(&cfg, rate);
        Box::new(move |f: &[i16]| d.process(f, false).voiced)
    }
}

fn webrtc(mode: u8) -> impl FnMut() -> Decide<'static> {
    move || {
        use webrtc_vad::{SampleRate, Vad, VadMode};
        let m = match mode {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            _ => VadMode::VeryAggressive,
        };
        let mut v = Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, m);
        Box::new(move |f: &[i16]| v.is_voice_segment(f).unwrap())
    }
}

struct Summary {
    name: String,
    all: Counts,
    speech: Counts,
    noise_only: Counts,
    dtmf: Counts,
    by: BTreeMap<(String, String), Counts>,
}

fn summarise(name: &str, by: BTreeMap<(String, String), Counts>) -> Summary {
    let mut s = Summary {
        name: name.into(),
        all: Counts::default(),
        speech: Counts::default(),
        noise_only: Counts::default(),
        dtmf: Counts::default(),
        by,
    };
    for ((noise, snr), c) in &s.by {
        s.all.merge(c);
        if snr == "noise only" {
            s.noise_only.merge(c);
        } else if noise == "dtmf" {
            s.dtmf.merge(c);
        } else {
            s.speech.merge(c);
        }
    }
    s
}

fn print(rate: u32, sums: &[Summary]) {
    println!("\n== {rate} Hz: overall ({} frames)", sums[0].all.frames());
    println!("| detector | precision | recall | F1 | false alarms | FA noise-only | FA DTMF |");
    println!("|---|---|---|---|---|---|---|");
    for s in sums {
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} |",
            s.name,
            s.all.precision(),
            s.all.recall(),
            s.all.f1(),
            s.all.fa(),
            s.noise_only.fa(),
            s.dtmf.fa()
        );
    }
    println!("\n== {rate} Hz: F1 / false alarms per noise and SNR");
    let names: Vec<&str> = sums.iter().map(|s| s.name.as_str()).collect();
    println!("| noise | SNR | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    for key in sums[0].by.keys() {
        let cells: Vec<String> = sums
            .iter()
            .map(|s| {
                let c = &s.by[key];
                if key.1 == "noise only" || key.1 == "tones only" {
                    format!("FA {:.3}", c.fa())
                } else {
                    format!("{:.2} / {:.2}", c.f1(), c.fa())
                }
            })
            .collect();
        println!("| {} | {} | {} |", key.0, key.1, cells.join(" | "));
    }
}

/// Detectors to run: all, or those named in `VAD_EVAL_ONLY` (comma-separated: `adaptive`,
/// `neural`, `energy`, `webrtc`) — for tuning; the asserts need all of them.
fn wanted(name: &str) -> bool {
    match std::env::var("VAD_EVAL_ONLY") {
        Ok(list) => list.split(',').any(|w| name.starts_with(w.trim())),
        Err(_) => true,
    }
}

fn run(rate: u32) -> Vec<Summary> {
    let items = build_set();
    let mut sums = Vec::new();
    for kind in [
        DetectorKind::Adaptive,
        DetectorKind::Neural,
        DetectorKind::Energy,
    ] {
        if wanted(kind.as_str()) {
            sums.push(summarise(
                kind.as_str(),
                evaluate(&items, rate, ours(kind, rate)),
            ));
        }
    }
    // WebRTC always sees the 16 kHz version of the same mixes.
    for mode in 0..4u8 {
        if wanted("webrtc") {
            sums.push(summarise(
                &format!("webrtc mode {mode}"),
                evaluate(&items, 16_000, webrtc(mode)),
            ));
        }
    }
    print(rate, &sums);
    sums
}

/// The figures asserted. The targets were F1 >= 0.90 with false alarms <= 0.15 and
/// noise-only false alarms <= 0.05 for the default, better than WebRTC's best mode, and the
/// neural option better still. On this set (strict frame truth: the short gaps between words are
/// non-speech; 20-voice babble counts as noise) the default reaches F1 0.913 / FA 0.043 /
/// noise-only FA 0.001 at 16 kHz (the previous release: 0.896 / 0.067 / 0.006, which fails here;
/// the one before the periodicity gate: 0.879 / 0.072 / 0.016) and WebRTC's best mode 0.778 /
/// 0.323. The neural option, Silero VAD's network fused with the adaptive decision (see
/// `pipeline::vad::neural`), reaches 0.922 / 0.059 / 0.001 with no DTMF false alarm; Silero
/// alone (thresholds 0.9 / 0.85) 0.883 / 0.110 / 0.012, earshot, the network it replaced, 0.805 /
/// 0.298 / 0.140. The fusion's gain is in babble (5 dB: F1 0.86 against the default's 0.81) and
/// quiet speech the network is sure of. The asserts hold those figures with a little slack, so a change that makes a detector worse fails
/// here. They apply to the committed draw only (`VAD_EVAL_SEED` unset or 0): other draws print
/// their tables. The adaptive thresholds were tuned on seeds 0 and 1 (seed 1: 0.915); seeds 2, 3
/// and 4, never tuned on, give 0.908, 0.913 and 0.915. The neural fusion was tuned on seed 0 at
/// 16 kHz; seeds 1 and 2 give 0.924 and 0.923 (adaptive 0.915, 0.908), 24 kHz 0.922 (0.906).
///
/// `adaptive_f1` is the default detector's floor: 0.91 on the 16 kHz draw it was tuned on, the
/// issue's 0.90 at 24 kHz (0.906 there: its frames reach the same filters at a rate they were
/// not tuned for).
fn check(sums: &[Summary], adaptive_f1: f64) {
    if std::env::var_os("VAD_EVAL_ONLY").is_some() || seed_shift() != 0 {
        return;
    }
    let get = |n: &str| sums.iter().find(|s| s.name == n).unwrap();
    let adaptive = get("adaptive");
    let neural = get("neural");
    let energy = get("energy");
    let webrtc_best = sums
        .iter()
        .filter(|s| s.name.starts_with("webrtc"))
        .map(|s| s.all.f1())
        .fold(0.0, f64::max);
    assert!(
        adaptive.all.f1() >= adaptive_f1,
        "adaptive F1 {:.3}",
        adaptive.all.f1()
    );
    assert!(
        adaptive.all.fa() <= 0.08,
        "adaptive FA {:.3}",
        adaptive.all.fa()
    );
    assert!(
        adaptive.noise_only.fa() <= 0.02,
        "adaptive noise-only FA {:.3}",
        adaptive.noise_only.fa()
    );
    assert!(
        adaptive.dtmf.fa() <= 0.05,
        "adaptive DTMF FA {:.3}",
        adaptive.dtmf.fa()
    );
    assert!(
        adaptive.all.f1() > webrtc_best + 0.10,
        "adaptive F1 {:.3} vs WebRTC best {webrtc_best:.3}",
        adaptive.all.f1()
    );
    assert!(
        neural.all.f1() > webrtc_best,
        "neural F1 {:.3} vs WebRTC best {webrtc_best:.3}",
        neural.all.f1()
    );
    assert!(
        neural.all.f1() >= 0.915 && neural.all.f1() > adaptive.all.f1(),
        "neural F1 {:.3} vs adaptive {:.3}",
        neural.all.f1(),
        adaptive.all.f1()
    );
    assert!(neural.all.fa() <= 0.15, "neural FA {:.3}", neural.all.fa());
    assert!(
        neural.noise_only.fa() <= 0.05,
        "neural noise-only FA {:.3}",
        neural.noise_only.fa()
    );
    assert!(
        neural.dtmf.fa() <= 0.01,
        "neural DTMF FA {:.3}",
        neural.dtmf.fa()
    );
    // The old detector, for contrast: it calls loud noise speech.
    assert!(
        energy.noise_only.fa() > 0.5,
        "energy noise-only FA {:.3}",
        energy.noise_only.fa()
    );
}

#[test]
fn detectors_meet_targets_at_16k() {
    check(&run(16_000), 0.91);
}

#[test]
fn detectors_meet_targets_at_24k() {
    check(&run(24_000), 0.90);
}
