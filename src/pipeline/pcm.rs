//! PCM helpers: the negotiated frame sizes (and, for tests, little-endian bytes to samples).

/// Bytes of one 20 ms frame at `sample_rate` (640 at 16 kHz, 960 at 24 kHz).
pub(crate) const fn frame_bytes(sample_rate: u32) -> usize {
    (sample_rate as usize / 50) * 2
}

/// Samples of one 20 ms frame at `sample_rate`.
pub(crate) const fn frame_samples(sample_rate: u32) -> usize {
    sample_rate as usize / 50
}

/// Converts PCM16LE bytes into `out` (cleared first; capacity reused). An odd trailing byte is
/// ignored. (The pipeline decodes base64 straight into samples instead.)
#[cfg(test)]
pub(crate) fn le_bytes_to_i16(bytes: &[u8], out: &mut Vec<i16>) {
    out.resize(bytes.len() / 2, 0);
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = i16::from_le_bytes([b[0], b[1]]);
    }
}

/// Converts samples to PCM16LE bytes into `out` (cleared first).
#[cfg(test)]
pub(crate) fn i16_to_le_bytes(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_match_the_protocol() {
        assert_eq!(frame_bytes(16_000), 640);
        assert_eq!(frame_bytes(24_000), 960);
        assert_eq!(frame_samples(24_000), 480);
    }

    #[test]
    fn round_trip_little_endian() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN, 0x1234];
        let mut bytes = Vec::new();
        i16_to_le_bytes(&samples, &mut bytes);
        assert_eq!(&bytes[..4], &[0, 0, 1, 0]);
        assert_eq!(&bytes[10..], &[0x34, 0x12]);
        let mut back = Vec::new();
        le_bytes_to_i16(&bytes, &mut back);
        assert_eq!(back, samples);
    }
}
