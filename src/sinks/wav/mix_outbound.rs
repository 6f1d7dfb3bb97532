//! `mix_outbound`: when a call ends, its outbound (`bot`) track is added into its mixed file, so
//! `mixed.wav` holds the whole conversation. Both files are final by then (their headers state
//! every sample); only the segments audio was sent in are read and rewritten (in blocks of
//! [`BLOCK_SAMPLES`], positioned reads and writes), samples added with saturation, at the
//! positions the call timeline gives (the mixed stream's `call_offset`). Outbound audio after
//! the mixed file's last sample stays in `bot.wav` only (ACS streams a connected call without
//! pause, so the mixed stream covers the call). A failure leaves the mixed file as it was up to
//! the failed block, is logged and counted as a failed recording, and `call.json` says which
//! mixed files hold the outbound audio (`outboundMixed`).

use super::writer::HEADER_LEN;
use super::*;
use std::os::unix::fs::FileExt;

/// Samples mixed per read/write.
pub(crate) const BLOCK_SAMPLES: usize = 8192;

impl WavSink {
    /// Adds the call's finalised outbound tracks into its finalised mixed files (with
    /// `mix_outbound`).
    pub(super) fn mix_outbound(&mut self, call: CallId) {
        if !self.cfg.mix_outbound {
            return;
        }
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let usable = |s: &StreamRec| s.closed && s.error.is_none() && s.file.is_some();
        let mut outs = Vec::new();
        let mut mixes = Vec::new();
        for sid in &c.streams {
            let Some(s) = self.streams.get(sid).filter(|s| usable(s)) else {
                continue;
            };
            match s.info.kind {
                StreamKind::Outbound if !s.speech.is_empty() => outs.push(*sid),
                StreamKind::Mixed | StreamKind::Mix => mixes.push(*sid),
                _ => {}
            }
        }
        let path = |s: &StreamRec| {
            c.dir
                .join(format!("{}.wav", s.file.as_deref().unwrap_or("")))
        };
        let mut done = Vec::new();
        let mut failed = None;
        for m in &mixes {
            let mix = &self.streams[m];
            for o in &outs {
                let out = &self.streams[o];
                if out.info.sample_rate != mix.info.sample_rate {
                    continue;
                }
                let r = mix_into(
                    &path(mix),
                    mix.info.call_offset,
                    mix.samples_in_file,
                    &path(out),
                    out.info.call_offset,
                    &out.speech,
                );
                match r {
                    Ok(()) => done.push(*m),
                    Err(e) => {
                        tracing::warn!(error = %e, dir = %c.dir.display(), "outbound audio not mixed into the mixed file");
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        for m in done {
            if let Some(s) = self.streams.get_mut(&m) {
                s.outbound_mixed = true;
            }
        }
        if let Some(e) = failed {
            self.failed(&e);
        }
    }
}

/// Adds the samples of `segments` (stream positions) of the WAV file `out` (its first sample at
/// call-timeline position `out_offset`) into the WAV file `mixed` (its first sample at
/// `mixed_offset`, `mixed_len` samples long), saturating; what falls outside `mixed` is left out.
pub(crate) fn mix_into(
    mixed: &Path,
    mixed_offset: u64,
    mixed_len: u64,
    out: &Path,
    out_offset: u64,
    segments: &[(u64, u64)],
) -> io::Result<()> {
    let src = fs::File::open(out)?;
    let dst = fs::OpenOptions::new().read(true).write(true).open(mixed)?;
    let mut a = vec![0u8; BLOCK_SAMPLES * 2];
    let mut b = vec![0u8; BLOCK_SAMPLES * 2];
    for &(start, end) in segments {
        // the segment on the call timeline, then in the mixed file, clipped to it
        let from = (start + out_offset).max(mixed_offset);
        let to = (end + out_offset).min(mixed_offset + mixed_len);
        let mut p = from;
        while p < to {
            let n = ((to - p) as usize).min(BLOCK_SAMPLES);
            let src_at = HEADER_LEN + 2 * (p - out_offset);
            let dst_at = HEADER_LEN + 2 * (p - mixed_offset);
            src.read_exact_at(&mut a[..2 * n], src_at)?;
            dst.read_exact_at(&mut b[..2 * n], dst_at)?;
            for (x, y) in b[..2 * n]
                .chunks_exact_mut(2)
                .zip(a[..2 * n].chunks_exact(2))
            {
                let sum = i16::from_le_bytes([x[0], x[1]])
                    .saturating_add(i16::from_le_bytes([y[0], y[1]]));
                x.copy_from_slice(&sum.to_le_bytes());
            }
            dst.write_all_at(&b[..2 * n], dst_at)?;
            p += n as u64;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::writer::tests::read;
    use super::super::writer::WavFile;
    use super::*;

    fn wav(path: &Path, samples: &[i16]) {
        let mut w = WavFile::create(path, 16_000, 4096).unwrap();
        w.write(samples).unwrap();
        w.finalize().1.unwrap();
    }

    #[test]
    fn segments_are_added_at_their_call_timeline_positions_saturating_and_clipped() {
        let tmp = tempfile::tempdir().unwrap();
        let (m, o) = (tmp.path().join("mixed.wav"), tmp.path().join("bot.wav"));
        // mixed starts at call position 100, 20_000 samples long
        wav(&m, &vec![1000; 20_000]);
        // bot from position 0: silence, audio at 50..150 (half before the mixed file), at
        // 10_000..19_000 (longer than a block) and at 20_050..20_200 (past the mixed file's end)
        let mut bot = vec![0i16; 20_200];
        bot[50..150].fill(7);
        bot[10_000..19_000].fill(32_000);
        bot[20_050..20_200].fill(9);
        wav(&o, &bot);
        let segs = [(50, 150), (10_000, 19_000), (20_050, 20_200)];
        mix_into(&m, 100, 20_000, &o, 0, &segs).unwrap();
        let (_, got) = read(&m);
        assert_eq!(got.len(), 20_000, "the mixed file keeps its length");
        assert_eq!(&got[..50], &[1007; 50][..], "call 100..150");
        assert_eq!(got[50], 1000);
        assert!(
            got[9_900..18_900].iter().all(|&s| s == i16::MAX),
            "saturated"
        );
        assert_eq!(got[9_899], 1000);
        assert_eq!(got[18_900], 1000);
        assert_eq!(
            &got[19_950..],
            &[1009; 50][..],
            "call 20_050..20_100, then clipped"
        );
    }
}
