//! A small WAV file writer for the recorder: canonical 44-byte RIFF/WAVE header, PCM 16-bit
//! little-endian, mono, written in bulk.
//!
//! Samples are converted straight into the file's own buffer (one pass, no per-frame allocation)
//! and reach the file in one `write` per buffer-full; gap fills are copied from one shared static
//! zero block, never sample by sample. The header's two size fields (RIFF size at offset 4, data
//! size at offset 40) are patched in place with positioned writes (`pwrite`, which leaves the
//! file cursor alone) by [`WavFile::refresh`] and [`WavFile::finalize`], so a file that was
//! refreshed and then abandoned (process killed) is a valid WAV of everything up to the refresh.
//!
//! The data size is a `u32`: a write that would take it past the 4 GiB WAV limit is refused with
//! an error (nothing of it is written) instead of wrapping the header.
//!
//! After an I/O error (a full disk) the file stops taking audio — a later write could only leave
//! a hole in its timeline — and [`WavFile::finalize`] patches the header to the whole samples
//! actually on disk (file length − 44), whatever the failed write left behind.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes of the canonical header.
pub(crate) const HEADER_LEN: u64 = 44;
/// Largest data chunk: the RIFF size (data + 36) must fit a `u32`; whole samples only.
pub(crate) const MAX_DATA_BYTES: u64 = (u32::MAX as u64 - 36) & !1;
/// Bytes per sample (16-bit mono).
const BLOCK: u64 = 2;
/// Page size the buffer's writes are aligned to: a write that covers whole page-cache pages
/// spares the file system from zeroing (or reading) the part of a fresh page it does not cover,
/// which `perf` showed costing more than the copy itself.
const PAGE: u64 = 4096;

/// Largest write buffer a file takes.
pub(crate) const MAX_BUFFER: usize = 1 << 20;

/// Shared source of gap fills (no per-file or per-gap zero buffer).
static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

/// The 44-byte header of a 16-bit mono PCM file at `rate` holding `data` bytes of samples.
pub(crate) fn header(rate: u32, data: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // channels
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate.saturating_mul(BLOCK as u32)).to_le_bytes()); // byte rate
    h[32..34].copy_from_slice(&(BLOCK as u16).to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// One WAV file being recorded (16-bit mono PCM).
pub(crate) struct WavFile {
    file: File,
    rate: u32,
    /// Samples not yet handed to the file; never longer than `cap`.
    buf: Vec<u8>,
    cap: usize,
    /// Bytes handed to the file so far, header included (the file cursor).
    written: u64,
    /// Data bytes accepted (on disk + in `buf`).
    data: u64,
    /// Data size the header on disk states.
    in_header: u64,
    /// The first I/O error: the file takes no more audio.
    failed: Option<io::ErrorKind>,
}

impl WavFile {
    /// Creates (truncating) `path` with a header stating no data; `buf_bytes` (64 bytes to
    /// [`MAX_BUFFER`]) is the write buffer, allocated here once.
    pub(crate) fn create(path: &Path, rate: u32, buf_bytes: usize) -> io::Result<Self> {
        let mut file = File::create(path)?;
        file.write_all(&header(rate, 0))?;
        let cap = buf_bytes.clamp(64, MAX_BUFFER) & !1;
        Ok(Self {
            file,
            rate,
            buf: Vec::with_capacity(cap),
            cap,
            written: HEADER_LEN,
            data: 0,
            in_header: 0,
            failed: None,
        })
    }

    /// Samples accepted so far (on disk or buffered).
    pub(crate) fn samples(&self) -> u64 {
        self.data / BLOCK
    }

    /// Whether an I/O error stopped the file.
    pub(crate) fn failed(&self) -> bool {
        self.failed.is_some()
    }

    fn check(&self, samples: u64) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(
                kind,
                "an earlier write failed; the file takes no more audio",
            ));
        }
        if samples.saturating_mul(BLOCK) > MAX_DATA_BYTES - self.data {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the WAV 4 GiB data limit is reached",
            ));
        }
        Ok(())
    }

    /// Hands the buffer to the file (one `write_all`); an error stops the file.
    fn drain(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.fail_on(r)
    }

    /// Hands the buffer to the file up to the last page boundary it reaches (one `write_all`
    /// of whole pages); the tail stays buffered. Falls back to [`WavFile::drain`] when the buffer
    /// does not reach a boundary.
    fn drain_aligned(&mut self) -> io::Result<()> {
        let end = (self.written + self.buf.len() as u64) / PAGE * PAGE;
        if end <= self.written {
            return self.drain();
        }
        let n = (end - self.written) as usize;
        let r = self.file.write_all(&self.buf[..n]);
        self.written += n as u64;
        self.buf.drain(..n);
        self.fail_on(r)
    }

    fn fail_on<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            self.failed.get_or_insert(e.kind());
        }
        r
    }

    /// Appends `samples` (little-endian on disk).
    pub(crate) fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        self.check(samples.len() as u64)?;
        for chunk in samples.chunks(self.cap / BLOCK as usize) {
            let bytes = chunk.len() * BLOCK as usize;
            if self.buf.len() + bytes > self.cap {
                self.drain_aligned()?;
                if self.buf.len() + bytes > self.cap {
                    self.drain()?;
                }
            }
            // one copy: the samples' bytes as they are in memory are little-endian already
            #[cfg(target_endian = "little")]
            self.buf.extend_from_slice(bytemuck::cast_slice(chunk));
            #[cfg(not(target_endian = "little"))]
            self.buf.extend(chunk.iter().flat_map(|s| s.to_le_bytes()));
            self.data += bytes as u64;
        }
        Ok(())
    }

    /// Appends `samples` samples of silence.
    pub(crate) fn write_silence(&mut self, samples: u64) -> io::Result<()> {
        self.check(samples)?;
        let mut left = samples * BLOCK;
        while left > 0 {
            if self.buf.is_empty() && left >= self.cap as u64 {
                // large fills go straight from the zero block to the file
                let n = left.min(ZEROS.len() as u64) as usize;
                let r = self.file.write_all(&ZEROS[..n]);
                self.written += n as u64;
                self.fail_on(r)?;
                self.data += n as u64;
                left -= n as u64;
                continue;
            }
            let n = left.min((self.cap - self.buf.len()).min(ZEROS.len()) as u64) as usize;
            self.buf.extend_from_slice(&ZEROS[..n]);
            self.data += n as u64;
            left -= n as u64;
            if self.buf.len() == self.cap {
                self.drain()?;
            }
        }
        Ok(())
    }

    /// Writes the buffer out and brings the header's sizes up to date (skipped when they
    /// already are): afterwards the file on disk is a complete WAV of everything written.
    pub(crate) fn refresh(&mut self) -> io::Result<()> {
        if self.failed.is_some() {
            return Ok(()); // reported when it happened; finalize patches what is on disk
        }
        self.drain()?;
        if self.in_header != self.data {
            let r = self.patch(self.data);
            self.fail_on(r)?;
            self.in_header = self.data;
        }
        Ok(())
    }

    /// Patches the RIFF and data sizes for `data` bytes of samples (one positioned write of the
    /// header; the cursor does not move).
    fn patch(&self, data: u64) -> io::Result<()> {
        let data = u32::try_from(data.min(MAX_DATA_BYTES)).unwrap_or(u32::MAX);
        self.file.write_all_at(&header(self.rate, data), 0)
    }

    /// Samples the header on disk states.
    pub(crate) fn samples_in_header(&self) -> u64 {
        self.in_header / BLOCK
    }

    /// Writes out what is buffered and leaves a final header; returns the samples the header
    /// states with the outcome. After an I/O error (now or earlier) the header states the whole
    /// samples actually on disk (a trailing half sample is cut off), they are returned, and so is
    /// the first error. Patching the header rewrites bytes already on disk, so it works on a full
    /// disk too.
    pub(crate) fn finalize(mut self) -> (u64, io::Result<()>) {
        let r = self.refresh();
        let Some(kind) = self.failed else {
            return (self.samples_in_header(), r);
        };
        let first = r.err().unwrap_or_else(|| {
            io::Error::new(kind, "a write failed; the file holds the audio before it")
        });
        let on_disk = self.file.metadata().and_then(|m| {
            let data = (m.len().saturating_sub(HEADER_LEN) & !(BLOCK - 1)).min(MAX_DATA_BYTES);
            self.patch(data)?;
            if m.len() != HEADER_LEN + data {
                // shrinking needs no space; a leftover half sample would only confuse readers
                let _ = self.file.set_len(HEADER_LEN + data);
            }
            Ok(data)
        });
        match on_disk {
            Ok(data) => (data / BLOCK, Err(first)),
            Err(_) => (self.samples_in_header(), Err(first)),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Spec and samples of a WAV file, read back with hound (also used by the sink's tests).
    pub(in crate::sinks::wav) fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        (spec, r.samples::<i16>().map(|s| s.unwrap()).collect())
    }

    fn ramp(n: usize, from: i32) -> Vec<i16> {
        (0..n).map(|i| (from + i as i32 * 37) as i16).collect()
    }

    #[test]
    fn header_is_byte_for_byte_what_hound_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("ours.wav");
        let theirs = tmp.path().join("hound.wav");
        let samples = ramp(1234, -30_000);
        for rate in [16_000, 24_000] {
            let mut w = WavFile::create(&ours, rate, 4096).unwrap();
            w.write(&samples).unwrap();
            w.write_silence(77).unwrap();
            w.finalize().1.unwrap();
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut h = hound::WavWriter::create(&theirs, spec).unwrap();
            for &s in samples.iter().chain([0i16; 77].iter()) {
                h.write_sample(s).unwrap();
            }
            h.finalize().unwrap();
            assert_eq!(
                std::fs::read(&ours).unwrap(),
                std::fs::read(&theirs).unwrap()
            );
        }
    }

    #[test]
    fn refreshed_but_not_finalised_file_is_readable_with_the_right_length() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.wav");
        let mut w = WavFile::create(&p, 16_000, 256).unwrap();
        // nothing written yet: an empty but valid file
        assert_eq!(read(&p).1.len(), 0);
        let a = ramp(320, 1);
        for _ in 0..7 {
            w.write(&a).unwrap();
        }
        w.refresh().unwrap();
        let (spec, got) = read(&p);
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        assert_eq!(got.len(), 7 * 320);
        assert_eq!(&got[320..640], &a[..]);
        // more audio after the refresh is not yet in the header; the file stays valid
        w.write(&a).unwrap();
        w.refresh().unwrap();
        assert_eq!(read(&p).1.len(), 8 * 320);
        drop(w); // abandoned, like a killed process
        assert_eq!(read(&p).1.len(), 8 * 320);
    }

    #[test]
    fn odd_sizes_frames_larger_than_the_buffer_and_gaps_of_every_size() {
        // a small buffer so frames and gaps straddle and exceed it; buffers larger than the
        // static zero block, so a gap fills a partly full buffer in several zero-block pieces
        for buf in [100, 40_000, 70_000] {
            let tmp = tempfile::tempdir().unwrap();
            let p = tmp.path().join("odd.wav");
            let mut w = WavFile::create(&p, 24_000, buf).unwrap();
            let mut want: Vec<i16> = Vec::new();
            for (i, n) in [1usize, 3, 49, 50, 51, 97, 960, 0, 7, 20_000]
                .into_iter()
                .enumerate()
            {
                let s = ramp(n, i as i32 * 1000);
                w.write(&s).unwrap();
                want.extend(&s);
                let gap = [0u64, 1, 13, 50, 51, 8191, 8192 * 3 + 5, 0, 2, 40_000][i];
                w.write_silence(gap).unwrap();
                want.extend(std::iter::repeat_n(0, gap as usize));
                if i % 3 == 0 {
                    w.refresh().unwrap();
                }
            }
            assert_eq!(w.samples(), want.len() as u64);
            assert_eq!(w.finalize().0, want.len() as u64);
            let (_, got) = read(&p);
            assert_eq!(got.len(), want.len(), "buffer {buf}");
            assert!(got == want, "samples differ with a {buf}-byte buffer");
        }
    }

    #[test]
    fn a_long_gap_is_all_zeros() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("gap.wav");
        let mut w = WavFile::create(&p, 16_000, 8192).unwrap();
        w.write(&[5; 10]).unwrap();
        w.write_silence(3 * 16_000 + 1).unwrap();
        w.write(&[-5; 3]).unwrap();
        w.finalize().1.unwrap();
        let (_, got) = read(&p);
        assert_eq!(got.len(), 10 + 48_001 + 3);
        assert!(got[..10].iter().all(|&s| s == 5));
        assert!(got[10..48_011].iter().all(|&s| s == 0));
        assert!(got[48_011..].iter().all(|&s| s == -5));
    }

    #[test]
    fn the_4_gib_limit_is_an_error_not_a_wrapped_header() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("big.wav");
        let mut w = WavFile::create(&p, 16_000, 8192).unwrap();
        w.write(&[1; 4]).unwrap();
        // pretend the file already holds almost 4 GiB (without writing it)
        w.data = MAX_DATA_BYTES - 4;
        w.write(&[1; 2]).unwrap();
        let e = w.write(&[1; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        let e = w.write_silence(1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            header(16_000, MAX_DATA_BYTES as u32)[4..8],
            (u32::MAX - 1).to_le_bytes(),
            "the RIFF size of the largest whole-sample file"
        );
    }

    #[test]
    fn after_a_failed_write_finalize_states_the_samples_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("fail.wav");
        let mut w = WavFile::create(&p, 16_000, 64).unwrap();
        w.write(&ramp(100, 0)).unwrap();
        w.refresh().unwrap();
        // a later write "failed" halfway: 3 more whole samples and half of one reached the disk
        w.write(&ramp(20, 0)).unwrap();
        w.buf.clear();
        w.file.write_all(&[1, 0, 2, 0, 3, 0, 4]).unwrap();
        w.failed = Some(io::ErrorKind::StorageFull);
        assert!(w.write(&[1]).is_err(), "no audio after a failure");
        let (samples, r) = w.finalize();
        assert!(r.is_err(), "the failure is reported at finalize");
        assert_eq!(samples, 103, "the whole samples on disk");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            44 + 206,
            "half sample cut"
        );
        let (_, got) = read(&p);
        assert_eq!(got.len(), 103);
        assert_eq!(&got[100..], &[1, 2, 3]);
    }
}
