//! The audio of an operator playback (`POST /api/calls/{id}/play`): decodes the request body —
//! a WAV file (`audio/wav`), raw PCM16LE mono (`audio/pcm;rate=N`), or a JSON
//! `{"file":"<relative path>"}` naming a WAV file under `control.playback_dir` — into mono
//! samples, and converts them to the call's rate with rubato's FFT resampler (the settings of
//! `sinks::resample`'s `best` profile: 20 ms blocks, Blackman-Harris window). Audio already at
//! the call's rate passes through untouched (bit-exact).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use std::path::{Component, Path, PathBuf};

/// Largest request body (and file) of a playback: 32 MiB.
pub(crate) const MAX_PLAY_BYTES: usize = 32 * 1024 * 1024;
/// Longest playback, seconds.
pub(crate) const MAX_PLAY_SECONDS: usize = 600;
/// Lowest and highest source sample rate accepted.
pub(crate) const RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Why a playback's audio was refused (each maps to a 4xx answer).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AudioError {
    /// Not a WAV file the gateway can read.
    #[error("not a readable WAV file: {0}")]
    BadWav(String),
    /// Raw PCM with a missing or bad `rate`, or an odd byte count.
    #[error("raw PCM: {0}")]
    BadPcm(String),
    /// A content type the route does not take.
    #[error("unsupported Content-Type {0:?}: send audio/wav, audio/pcm;rate=<Hz> (PCM16LE mono) or application/json {{\"file\":\"<path under control.playback_dir>\"}}")]
    UnsupportedType(String),
    /// The JSON body names no usable file.
    #[error("file: {0}")]
    BadFile(String),
    /// `control.playback_dir` is not set.
    #[error("file playback is disabled: set control.playback_dir")]
    NoPlaybackDir,
    /// Too long or too large.
    #[error("{0}")]
    TooLarge(String),
    /// Nothing to play.
    #[error("the audio is empty")]
    Empty,
    /// rubato refused.
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// Mono PCM at a sample rate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pcm {
    /// Sample rate, Hz.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<i16>,
}

/// Reads a WAV file's bytes: PCM 8/16/24/32-bit integer or 32-bit float, any channel count
/// (averaged to mono), 8-48 kHz.
pub(crate) fn decode_wav(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let bad = |e: hound::Error| AudioError::BadWav(e.to_string());
    let r = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(bad)?;
    let spec = r.spec();
    if !RATES.contains(&spec.sample_rate) {
        return Err(AudioError::BadWav(format!(
            "sample rate {} Hz outside 8000-48000",
            spec.sample_rate
        )));
    }
    let ch = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        (hound::SampleFormat::Int, 16) => {
            let s: Vec<i16> = r
                .into_samples::<i16>()
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            if ch == 1 {
                return non_empty(Pcm {
                    rate: spec.sample_rate,
                    samples: s,
                });
            }
            s.iter().map(|&x| f32::from(x) / 32768.0).collect()
        }
        (hound::SampleFormat::Int, b @ (8 | 24 | 32)) => {
            let scale = 2f32.powi(i32::from(b) - 1);
            r.into_samples::<i32>()
                .map(|x| x.map(|x| x as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(bad)?
        }
        (f, b) => {
            return Err(AudioError::BadWav(format!(
                "{b}-bit {f:?} samples are not supported"
            )))
        }
    };
    let samples = interleaved
        .chunks(ch)
        .map(|c| to_i16(c.iter().sum::<f32>() / c.len() as f32))
        .collect();
    non_empty(Pcm {
        rate: spec.sample_rate,
        samples,
    })
}

/// Raw PCM16LE mono at `rate`.
pub(crate) fn decode_pcm(bytes: &[u8], rate: Option<u32>) -> Result<Pcm, AudioError> {
    let rate = rate.ok_or_else(|| {
        AudioError::BadPcm("Content-Type needs a rate parameter, e.g. audio/pcm;rate=16000".into())
    })?;
    if !RATES.contains(&rate) {
        return Err(AudioError::BadPcm(format!(
            "rate {rate} Hz outside 8000-48000"
        )));
    }
    if bytes.len() % 2 == 1 {
        return Err(AudioError::BadPcm(
            "odd byte count (PCM16LE has 2 bytes a sample)".into(),
        ));
    }
    non_empty(Pcm {
        rate,
        samples: bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    })
}

fn non_empty(p: Pcm) -> Result<Pcm, AudioError> {
    if p.samples.is_empty() {
        return Err(AudioError::Empty);
    }
    if p.samples.len() > MAX_PLAY_SECONDS * p.rate as usize {
        return Err(AudioError::TooLarge(format!(
            "longer than {MAX_PLAY_SECONDS} s"
        )));
    }
    Ok(p)
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Resolves `rel` under `dir`: refused when `dir` is `None`, when `rel` is empty, absolute or
/// has a `..` component, when the file does not exist or is not a regular file, or when it
/// resolves (through symlinks) outside `dir`.
pub(crate) fn resolve_file(dir: Option<&Path>, rel: &str) -> Result<PathBuf, AudioError> {
    let dir = dir.ok_or(AudioError::NoPlaybackDir)?;
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err(AudioError::BadFile("must not be empty".into()));
    }
    if p.is_absolute() || p.has_root() {
        return Err(AudioError::BadFile(
            "must be a path relative to control.playback_dir".into(),
        ));
    }
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(AudioError::BadFile(
            "must not contain `..` or `.` components".into(),
        ));
    }
    let base = dir
        .canonicalize()
        .map_err(|e| AudioError::BadFile(format!("control.playback_dir cannot be read: {e}")))?;
    let full = base
        .join(p)
        .canonicalize()
        .map_err(|_| AudioError::BadFile(format!("{rel} does not exist")))?;
    if !full.starts_with(&base) {
        return Err(AudioError::BadFile(format!(
            "{rel} leads outside control.playback_dir"
        )));
    }
    if !full.is_file() {
        return Err(AudioError::BadFile(format!("{rel} is not a file")));
    }
    Ok(full)
}

/// Reads a WAV file resolved by [`resolve_file`] (at most [`MAX_PLAY_BYTES`]).
pub(crate) fn read_wav_file(path: &Path) -> Result<Pcm, AudioError> {
    let len = std::fs::metadata(path)
        .map_err(|e| AudioError::BadFile(e.to_string()))?
        .len();
    if len > MAX_PLAY_BYTES as u64 {
        return Err(AudioError::TooLarge(format!(
            "the file has {len} bytes, more than {MAX_PLAY_BYTES}"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| AudioError::BadFile(e.to_string()))?;
    decode_wav(&bytes)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `pcm` at `to` Hz: unchanged when already there, otherwise converted with rubato (the output
/// has `len * to / from` samples, rounded, aligned with the input: the resampler's delay of half
/// a block is removed).
pub(crate) fn resample(pcm: Pcm, to: u32) -> Result<Vec<i16>, AudioError> {
    if pcm.rate == to {
        return Ok(pcm.samples);
    }
    let (f, t) = (pcm.rate as usize, to as usize);
    let g = gcd(f, t);
    let (min_in, min_out) = (f / g, t / g);
    let mut k = (f * 20_000).div_ceil(1_000_000).div_ceil(min_in).max(1);
    if k % 2 == 1 && (min_in % 2 == 1 || min_out % 2 == 1) {
        k += 1;
    }
    let (block_in, block_out) = (k * min_in, k * min_out);
    let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut fft = Fft::<f32>::new_custom(
        f,
        t,
        block_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Both,
    )
    .map_err(|e| err(&e))?;
    let delay = block_out / 2;
    let wanted = (pcm.samples.len() * t + f / 2) / f;
    let mut input: Vec<f32> = pcm
        .samples
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect();
    let blocks = (wanted + delay).div_ceil(block_out);
    input.resize(blocks * block_in, 0.0);
    let mut out = Vec::with_capacity(blocks * block_out);
    let mut block = vec![0f32; block_out];
    for chunk in input.chunks_exact(block_in) {
        let i = InterleavedSlice::new(chunk, 1, block_in).map_err(|e| err(&e))?;
        let mut o = InterleavedSlice::new_mut(&mut block, 1, block_out).map_err(|e| err(&e))?;
        let (_, written) = fft
            .process_into_buffer(&i, &mut o, None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&block[..written]);
    }
    Ok(out
        .into_iter()
        .skip(delay)
        .take(wanted)
        .map(to_i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let mut c = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(
            &mut c,
            hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
        )
        .unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        c.into_inner()
    }

    fn sine(rate: u32, hz: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn wav_and_pcm_decode_and_bad_input_is_named() {
        let s = vec![1i16, -2, 3, 30_000];
        assert_eq!(
            decode_wav(&wav(16_000, 1, &s)).unwrap(),
            Pcm {
                rate: 16_000,
                samples: s.clone()
            }
        );
        // stereo is averaged
        let st = decode_wav(&wav(24_000, 2, &[100, 300, -100, -300])).unwrap();
        assert_eq!(st.samples, vec![200, -200]);
        assert!(matches!(
            decode_wav(b"RIFFjunk"),
            Err(AudioError::BadWav(_))
        ));
        assert!(matches!(
            decode_wav(&wav(4_000, 1, &s)),
            Err(AudioError::BadWav(m)) if m.contains("4000")
        ));
        assert_eq!(decode_wav(&wav(16_000, 1, &[])), Err(AudioError::Empty));
        assert_eq!(
            decode_pcm(&[1, 0, 2, 0], Some(8_000)).unwrap().samples,
            vec![1, 2]
        );
        assert!(matches!(
            decode_pcm(&[1, 0], None),
            Err(AudioError::BadPcm(_))
        ));
        assert!(matches!(
            decode_pcm(&[1, 0, 2], Some(16_000)),
            Err(AudioError::BadPcm(_))
        ));
        assert!(matches!(
            decode_pcm(&[1, 0], Some(96_000)),
            Err(AudioError::BadPcm(_))
        ));
    }

    #[test]
    fn files_resolve_only_inside_the_playback_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("clips");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.wav"), wav(16_000, 1, &[1, 2])).unwrap();
        std::fs::write(root.path().join("secret.wav"), wav(16_000, 1, &[1])).unwrap();
        assert_eq!(resolve_file(None, "a.wav"), Err(AudioError::NoPlaybackDir));
        let ok = resolve_file(Some(&dir), "sub/a.wav").unwrap();
        assert_eq!(read_wav_file(&ok).unwrap().samples, vec![1, 2]);
        for bad in [
            "",
            "../secret.wav",
            "sub/../../secret.wav",
            "./sub/a.wav",
            "missing.wav",
            "sub",
        ] {
            assert!(
                matches!(resolve_file(Some(&dir), bad), Err(AudioError::BadFile(_))),
                "{bad}"
            );
        }
        let abs = root.path().join("secret.wav");
        assert!(matches!(
            resolve_file(Some(&dir), abs.to_str().unwrap()),
            Err(AudioError::BadFile(_))
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.path().join("secret.wav"), dir.join("link.wav"))
                .unwrap();
            let e = resolve_file(Some(&dir), "link.wav").unwrap_err();
            assert!(e.to_string().contains("outside"), "{e}");
        }
    }

    #[test]
    fn same_rate_is_bit_exact_and_resampling_keeps_a_tone_within_60_db() {
        let s = sine(16_000, 440.0, 16_000);
        assert_eq!(
            resample(
                Pcm {
                    rate: 16_000,
                    samples: s.clone()
                },
                16_000
            )
            .unwrap(),
            s
        );
        for (from, to) in [
            (24_000u32, 16_000u32),
            (8_000, 16_000),
            (16_000, 24_000),
            (44_100, 24_000),
        ] {
            let n = from as usize; // one second
            let out = resample(
                Pcm {
                    rate: from,
                    samples: sine(from, 1_000.0, n),
                },
                to,
            )
            .unwrap();
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            let want = sine(to, 1_000.0, to as usize);
            // the interior (the edges see the zero padding)
            let edge = to as usize / 25;
            let (mut sig, mut noise) = (0f64, 0f64);
            for i in edge..out.len() - edge {
                sig += f64::from(want[i]).powi(2);
                noise += (f64::from(out[i]) - f64::from(want[i])).powi(2);
            }
            let snr = 10.0 * (sig / noise.max(1e-9)).log10();
            assert!(snr >= 60.0, "{from}->{to}: SNR {snr:.1} dB");
        }
    }
}
