//! PCM helpers: the negotiated frame sizes.

/// Bytes of one 20 ms frame at `sample_rate` (640 at 16 kHz, 960 at 24 kHz).
pub(crate) const fn frame_bytes(sample_rate: u32) -> usize {
    (sample_rate as usize / 50) * 2
}

/// Samples of one 20 ms frame at `sample_rate`.
pub(crate) const fn frame_samples(sample_rate: u32) -> usize {
    sample_rate as usize / 50
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
}
