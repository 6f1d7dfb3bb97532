//! Identifiers for simulated calls: a tiny non-cryptographic generator ([`SimRng`]) and the
//! UUID-shaped ids ACS uses (subscription, call connection and correlation ids, participant raw
//! ids `8:acs:<uuid>`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// SplitMix64: a small, fast, seedable generator. Not for anything secret.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator with a fixed seed (deterministic tests).
    pub fn seeded(seed: u64) -> Self {
        SimRng(seed)
    }

    /// A generator seeded from the clock, the process id and a process-wide counter, so two
    /// generators made at the same instant still differ.
    pub fn from_entropy() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut r = SimRng(nanos ^ (u64::from(std::process::id()) << 32) ^ n.rotate_left(17));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random version-4-shaped UUID in lowercase hex, e.g.
    /// `89e8cb59-b991-48b0-b154-1db84f16a077`.
    pub fn uuid_like(&mut self) -> String {
        let hi = (self.next_u64() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }

    /// A participant raw id as ACS sends it for an ACS user: `8:acs:<uuid>`.
    pub fn participant_raw_id(&mut self) -> String {
        format!("8:acs:{}", self.uuid_like())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let mut r = SimRng::seeded(7);
        let u = r.uuid_like();
        assert_eq!(u.len(), 36);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(u, r.uuid_like());
        assert!(r.participant_raw_id().starts_with("8:acs:"));
        assert_ne!(
            SimRng::from_entropy().next_u64(),
            SimRng::from_entropy().next_u64()
        );
    }
}
