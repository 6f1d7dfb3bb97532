//! Audio for the simulator: reading WAV files as 16-bit mono PCM at an ACS rate, the generated
//! speech-like test signal, and frame levels (dBFS) for the `silent` flag.
//!
//! Conversion is deliberately simple:
//!
//! * channels are averaged into mono;
//! * the rate is changed by **linear interpolation** between neighbouring input samples, with no
//!   anti-aliasing filter. That is fine for exercising a gateway (levels, lengths and timing are
//!   right) but is not studio-quality resampling;
//! * the output length is `round(input_frames · to / from)`.

use std::path::Path;

use super::error::SimError;

/// Duration of one ACS media packet, in milliseconds.
pub const FRAME_MS: u64 = 20;

/// The sample rates ACS streams (`pcm16KMono`, `pcm24KMono`).
pub const ACS_RATES: [u32; 2] = [16_000, 24_000];

/// Samples in one 20 ms packet at `sample_rate` (320 at 16 kHz, 480 at 24 kHz).
pub fn samples_per_frame(sample_rate: u32) -> usize {
    (sample_rate / 50) as usize
}

/// Reads a WAV file of any rate, channel count and sample format hound supports (8/16/24/32-bit
/// integer, 32-bit float) and returns mono 16-bit PCM at `sample_rate` (see the module docs for
/// how it converts).
pub fn read_wav_mono(path: &Path, sample_rate: u32) -> Result<Vec<i16>, SimError> {
    let wav_err = |source| SimError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_err)?
        }
    };
    let mono = to_mono(&interleaved, spec.channels);
    let resampled = resample_linear(&mono, spec.sample_rate, sample_rate);
    Ok(to_i16(&resampled))
}

/// Averages interleaved `channels`-channel samples into mono (a trailing partial frame is
/// dropped). `channels` 0 or 1 returns the input unchanged.
pub fn to_mono(interleaved: &[f32], channels: u16) -> Vec<f32> {
    let ch = usize::from(channels);
    if ch <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect()
}

/// Changes the rate of `input` from `from` Hz to `to` Hz by linear interpolation (no
/// anti-aliasing filter). Output length is `round(len · to / from)`.
pub fn resample_linear(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let (from64, to64) = (u64::from(from), u64::from(to));
    let out_len = ((input.len() as u64 * to64 + from64 / 2) / from64) as usize;
    let last = input.len() - 1;
    (0..out_len)
        .map(|i| {
            // Exact rational source position i·from/to, split into index and fraction.
            let num = i as u64 * from64;
            let idx = (num / to64) as usize;
            let frac = (num % to64) as f32 / to as f32;
            let a = input[idx.min(last)];
            let b = input[(idx + 1).min(last)];
            a + (b - a) * frac
        })
        .collect()
}

/// Converts samples in `[-1, 1]` to 16-bit PCM (rounded, clamped).
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// RMS level of `samples` in dBFS (full scale = 32768); `-inf` for digital silence or an empty
/// slice.
pub fn frame_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if sum == 0.0 {
        return f64::NEG_INFINITY;
    }
    let rms = (sum / samples.len() as f64).sqrt();
    20.0 * (rms / 32768.0).log10()
}

/// The generated speech-like signal used when no WAV is given: a 220 Hz sine at −12 dBFS peak,
/// switched on and off every 500 ms (on first), `duration_ms` long. The on/off edges give a
/// silence detector speech starts and ends to find.
pub fn speech_like(sample_rate: u32, duration_ms: u64) -> Vec<i16> {
    let n = (u64::from(sample_rate) * duration_ms / 1000) as usize;
    let half_period = (sample_rate / 2) as usize; // 500 ms
    let amp = 0.25 * 32767.0;
    (0..n)
        .map(|i| {
            if (i / half_period.max(1)) % 2 == 1 {
                0
            } else {
                let t = i as f64 / f64::from(sample_rate);
                (amp * (2.0 * std::f64::consts::PI * 220.0 * t).sin()).round() as i16
            }
        })
        .collect()
}

/// PCM samples as little-endian bytes (the ACS wire layout).
pub fn pcm_le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_48k_stereo_to_16k_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        // 1.5 s: left = +8000, right = -4000 → mono average +2000.
        for _ in 0..72_000 {
            w.write_sample(8000i16).unwrap();
            w.write_sample(-4000i16).unwrap();
        }
        w.finalize().unwrap();

        let pcm = read_wav_mono(&path, 16_000).unwrap();
        assert_eq!(pcm.len(), 24_000);
        assert!(pcm.iter().all(|&s| s == 2000), "{:?}", &pcm[..4]);

        let pcm24 = read_wav_mono(&path, 24_000).unwrap();
        assert_eq!(pcm24.len(), 36_000);
    }

    #[test]
    fn float_and_24_bit_wavs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.wav");
        let mut w = hound::WavWriter::create(
            &f,
            hound::WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
            },
        )
        .unwrap();
        for _ in 0..320 {
            w.write_sample(0.5f32).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_wav_mono(&f, 16_000).unwrap(), vec![16384; 320]);

        let p = dir.path().join("p.wav");
        let mut w = hound::WavWriter::create(
            &p,
            hound::WavSpec {
                channels: 1,
                sample_rate: 8_000,
                bits_per_sample: 24,
                sample_format: hound::SampleFormat::Int,
            },
        )
        .unwrap();
        for _ in 0..160 {
            w.write_sample(-(1i32 << 22)).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_wav_mono(&p, 16_000).unwrap(), vec![-16384; 320]);
    }

    #[test]
    fn missing_wav_is_a_typed_error() {
        let err = read_wav_mono(Path::new("no-such-file.wav"), 16_000).unwrap_err();
        assert!(matches!(err, SimError::Wav { .. }));
    }

    #[test]
    fn linear_interpolation_upsamples_between_points() {
        let out = resample_linear(&[0.0, 1.0], 1, 2);
        assert_eq!(out, vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(resample_linear(&[0.5; 300], 48_000, 16_000).len(), 100);
    }

    #[test]
    fn levels_and_generated_signal() {
        assert_eq!(frame_dbfs(&[0; 320]), f64::NEG_INFINITY);
        assert!((frame_dbfs(&[32767; 10]) - 0.0).abs() < 0.01);
        let s = speech_like(16_000, 2_000);
        assert_eq!(s.len(), 32_000);
        let on = frame_dbfs(&s[..320]);
        assert!((-16.0..-14.0).contains(&on), "{on}"); // −12 dBFS peak sine ≈ −15 dBFS RMS
        assert_eq!(frame_dbfs(&s[8_000..8_320]), f64::NEG_INFINITY);
        assert_eq!(pcm_le_bytes(&[1, -2]), vec![1, 0, 0xFE, 0xFF]);
    }
}
