//! PURE: the per-participant ring buffer of recent audio.
//!
//! Owns [`Ring`], a fixed-capacity buffer with exactly one writer and any number of readers, each
//! reader holding its own [`Cursor`]. Positions are absolute sample counts on a `u64` clock
//! (`0` = the first sample ever written), so a cursor stays meaningful while the storage wraps.
//!
//! - The writer never blocks: [`Ring::push`] and [`Ring::push_fill`] overwrite the oldest samples.
//! - The ring stores the window `[oldest_pos, write_pos)`, at most `capacity` samples long.
//! - A reader that fell behind `oldest_pos` lost the overwritten samples: its next
//!   [`Ring::read`] jumps the cursor to `oldest_pos` and reports the jump as an overrun
//!   ([`ReadOutcome::overrun`], accumulated in [`Cursor::overruns`]).
//! - Nothing allocates after [`Ring::new`]; copies use at most two `copy_from_slice` calls.
//!
//! The ring is owned by one task (readers live in the same task), so there is no locking.

/// A fixed-capacity ring of samples with one writer and any number of independent reader cursors.
#[derive(Clone, Debug)]
pub(crate) struct Ring<T: Copy + Default> {
    buf: Box<[T]>,
    write_pos: u64,
}

/// A reader's position in a [`Ring`]; independent of every other cursor.
///
/// A cursor is plain data (it does not borrow the ring); use it only with the ring that created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pos: u64,
    overruns: u64,
}

/// The result of one [`Ring::read`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    /// Samples copied into the output slice.
    pub copied: usize,
    /// Samples this reader lost during this call (overwritten before it read them).
    pub overrun: u64,
}

impl Cursor {
    /// The absolute position of the next sample this cursor reads.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Total samples this reader has lost to overruns since it was created.
    #[cfg(test)]
    pub(crate) fn overruns(&self) -> u64 {
        self.overruns
    }
}

impl<T: Copy + Default> Ring<T> {
    /// A ring holding the most recent `capacity` samples (a capacity of 0 is raised to 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![T::default(); capacity.max(1)].into_boxed_slice(),
            write_pos: 0,
        }
    }

    /// The number of samples the ring can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Total samples ever written (the absolute position of the next sample to be written).
    pub(crate) fn write_pos(&self) -> u64 {
        self.write_pos
    }

    /// The absolute position of the oldest sample still stored: `write_pos - min(write_pos, capacity)`.
    pub(crate) fn oldest_pos(&self) -> u64 {
        self.write_pos - self.write_pos.min(self.cap64())
    }

    /// Number of samples currently stored (`write_pos - oldest_pos`).
    fn stored(&self) -> u64 {
        self.write_pos.min(self.cap64())
    }

    fn cap64(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Storage index of an absolute position.
    fn index(&self, pos: u64) -> usize {
        // The remainder is < capacity, which is a usize.
        (pos % self.cap64()) as usize
    }

    /// Appends samples, overwriting the oldest ones when full. Never blocks.
    ///
    /// Only the last `capacity` samples of a slice longer than the ring are copied (the earlier
    /// ones would be overwritten anyway), but `write_pos` advances by the whole length.
    pub(crate) fn push(&mut self, samples: &[T]) {
        let cap = self.buf.len();
        let len = samples.len();
        let (skip, tail) = if len > cap {
            (len - cap, &samples[len - cap..])
        } else {
            (0, samples)
        };
        let start = self.write_pos.saturating_add(skip as u64);
        let idx = self.index(start);
        let first = tail.len().min(cap - idx);
        self.buf[idx..idx + first].copy_from_slice(&tail[..first]);
        self.buf[..tail.len() - first].copy_from_slice(&tail[first..]);
        self.write_pos = self.write_pos.saturating_add(len as u64);
    }

    /// Appends `n` copies of `value` (silence for gap filling). Costs `O(min(n, capacity))`.
    pub(crate) fn push_fill(&mut self, value: T, n: u64) {
        let cap = self.buf.len();
        // min(n, cap) <= cap, so it fits in a usize.
        let m = n.min(self.cap64()) as usize;
        let start = self.write_pos.saturating_add(n - m as u64);
        let idx = self.index(start);
        let first = m.min(cap - idx);
        self.buf[idx..idx + first].fill(value);
        self.buf[..m - first].fill(value);
        self.write_pos = self.write_pos.saturating_add(n);
    }

    /// Samples readable now by this cursor: `min(write_pos - pos, capacity)`.
    ///
    /// Samples already lost to an overrun are not counted (the next [`Ring::read`] reports them).
    /// A cursor ahead of `write_pos` (only possible with another ring's cursor) has nothing to read.
    #[cfg(test)]
    pub(crate) fn available(&self, c: &Cursor) -> u64 {
        self.write_pos.saturating_sub(c.pos).min(self.cap64())
    }

    /// A cursor at `write_pos`: it reads only audio written from now on.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            pos: self.write_pos,
            overruns: 0,
        }
    }

    /// A cursor at `pos`, clamped into `[oldest_pos, write_pos]`.
    pub(crate) fn cursor_at(&self, pos: u64) -> Cursor {
        Cursor {
            pos: pos.clamp(self.oldest_pos(), self.write_pos),
            overruns: 0,
        }
    }

    /// Copies up to `out.len()` unread samples into `out` and advances the cursor.
    ///
    /// If the cursor fell behind `oldest_pos`, it first jumps to `oldest_pos` and the jump is
    /// reported as [`ReadOutcome::overrun`] (and added to [`Cursor::overruns`]).
    pub(crate) fn read(&self, c: &mut Cursor, out: &mut [T]) -> ReadOutcome {
        let oldest = self.oldest_pos();
        let mut overrun = 0;
        if c.pos < oldest {
            overrun = oldest - c.pos;
            c.pos = oldest;
            c.overruns = c.overruns.saturating_add(overrun);
        }
        let unread = self.write_pos.saturating_sub(c.pos);
        // min(.., out.len()) fits in a usize.
        let n = unread.min(out.len() as u64) as usize;
        self.copy_out(c.pos, &mut out[..n]);
        c.pos += n as u64;
        ReadOutcome { copied: n, overrun }
    }

    /// Copies the most recent `min(out.len(), stored)` samples, oldest first, into the start of
    /// `out`; returns the count.
    pub(crate) fn latest(&self, out: &mut [T]) -> usize {
        // min(.., out.len()) fits in a usize.
        let n = self.stored().min(out.len() as u64) as usize;
        self.copy_out(self.write_pos - n as u64, &mut out[..n]);
        n
    }

    /// Copies `out.len()` stored samples starting at absolute position `pos` (must be stored).
    fn copy_out(&self, pos: u64, out: &mut [T]) {
        let cap = self.buf.len();
        let idx = self.index(pos);
        let first = out.len().min(cap - idx);
        let rest = out.len() - first;
        out[..first].copy_from_slice(&self.buf[idx..idx + first]);
        out[first..].copy_from_slice(&self.buf[..rest]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn seq(from: i16, n: usize) -> Vec<i16> {
        (0..n).map(|i| from.wrapping_add(i as i16)).collect()
    }

    #[test]
    fn zero_capacity_becomes_one() {
        let r: Ring<i16> = Ring::new(0);
        assert_eq!(r.capacity(), 1);
    }

    #[test]
    fn empty_ring() {
        let r: Ring<i16> = Ring::new(4);
        assert_eq!(r.write_pos(), 0);
        assert_eq!(r.oldest_pos(), 0);
        let mut out = [9i16; 4];
        assert_eq!(r.latest(&mut out), 0);
        let mut c = r.cursor();
        assert_eq!(r.available(&c), 0);
        assert_eq!(
            r.read(&mut c, &mut out),
            ReadOutcome {
                copied: 0,
                overrun: 0
            }
        );
        assert_eq!(out, [9; 4]);
    }

    #[test]
    fn wraparound_at_exact_boundaries() {
        let mut r: Ring<i16> = Ring::new(4);
        let mut c = r.cursor();
        // Exactly fill the ring.
        r.push(&[1, 2, 3, 4]);
        assert_eq!(r.write_pos(), 4);
        assert_eq!(r.oldest_pos(), 0);
        assert_eq!(r.available(&c), 4);
        let mut out = [0i16; 4];
        assert_eq!(r.read(&mut c, &mut out).copied, 4);
        assert_eq!(out, [1, 2, 3, 4]);
        // Write ends exactly at the storage end again (index 0 → 4).
        r.push(&[5, 6, 7, 8]);
        assert_eq!(r.oldest_pos(), 4);
        let o = r.read(&mut c, &mut out);
        assert_eq!((o.copied, o.overrun), (4, 0));
        assert_eq!(out, [5, 6, 7, 8]);
        // Write that straddles the boundary: 3 then 3 (indices 0..3, then 3, 0, 1).
        r.push(&[9, 10, 11]);
        r.push(&[12, 13, 14]);
        assert_eq!(r.write_pos(), 14);
        assert_eq!(r.oldest_pos(), 10);
        let mut latest = [0i16; 4];
        assert_eq!(r.latest(&mut latest), 4);
        assert_eq!(latest, [11, 12, 13, 14]);
        // The cursor at 8 lost 9 and 10 (positions 8, 9).
        let o = r.read(&mut c, &mut out);
        assert_eq!(
            o,
            ReadOutcome {
                copied: 4,
                overrun: 2
            }
        );
        assert_eq!(out, [11, 12, 13, 14]);
        assert_eq!(c.pos(), 14);
        assert_eq!(c.overruns(), 2);
    }

    #[test]
    fn independent_cursors() {
        let mut r: Ring<i16> = Ring::new(8);
        r.push(&seq(0, 5)); // positions 0..5 hold 0..5
        let mut a = r.cursor_at(0);
        let mut b = r.cursor_at(3);
        let mut c = r.cursor(); // at 5
        assert_eq!(
            (r.available(&a), r.available(&b), r.available(&c)),
            (5, 2, 0)
        );

        let mut out = [0i16; 2];
        assert_eq!(r.read(&mut a, &mut out).copied, 2);
        assert_eq!(out, [0, 1]);
        assert_eq!(a.pos(), 2);
        assert_eq!(b.pos(), 3); // untouched by a's read

        r.push(&seq(5, 6)); // write_pos 11, oldest 3
        assert_eq!(r.oldest_pos(), 3);
        // a (at 2) lost exactly one sample (position 2).
        let mut big = [0i16; 16];
        let o = r.read(&mut a, &mut big);
        assert_eq!(
            o,
            ReadOutcome {
                copied: 8,
                overrun: 1
            }
        );
        assert_eq!(&big[..8], &seq(3, 8)[..]);
        // b (at 3) lost nothing.
        let o = r.read(&mut b, &mut big[..3]);
        assert_eq!(
            o,
            ReadOutcome {
                copied: 3,
                overrun: 0
            }
        );
        assert_eq!(&big[..3], &[3, 4, 5]);
        // c reads only what came after its creation.
        let o = r.read(&mut c, &mut big);
        assert_eq!(
            o,
            ReadOutcome {
                copied: 6,
                overrun: 0
            }
        );
        assert_eq!(&big[..6], &seq(5, 6)[..]);
        assert_eq!((a.overruns(), b.overruns(), c.overruns()), (1, 0, 0));
    }

    #[test]
    fn overrun_is_exact_when_behind_by_capacity_plus_k() {
        for k in [0u64, 1, 7, 100] {
            let cap = 16usize;
            let mut r: Ring<i16> = Ring::new(cap);
            let mut c = r.cursor();
            // Write in odd-sized chunks to exercise every wrap offset.
            let total = cap as u64 + k;
            let mut written = 0u64;
            while written < total {
                let n = 3.min(total - written) as usize;
                r.push(&seq(written as i16, n));
                written += n as u64;
            }
            assert_eq!(r.write_pos(), total);
            assert_eq!(r.available(&c), cap as u64);
            let mut out = vec![0i16; cap * 2];
            let o = r.read(&mut c, &mut out);
            assert_eq!(o.overrun, k, "k={k}");
            assert_eq!(o.copied, cap);
            assert_eq!(&out[..cap], &seq(k as i16, cap)[..]);
            assert_eq!(c.overruns(), k);
            assert_eq!(c.pos(), total);
            // A second read loses nothing more.
            assert_eq!(r.read(&mut c, &mut out), ReadOutcome::default());
            assert_eq!(c.overruns(), k);
        }
    }

    #[test]
    fn overruns_accumulate() {
        let mut r: Ring<i16> = Ring::new(4);
        let mut c = r.cursor();
        let mut out = [0i16; 1];
        r.push(&seq(0, 10)); // lose 6
        assert_eq!(r.read(&mut c, &mut out).overrun, 6);
        r.push(&seq(10, 20)); // c at 7, oldest 26: lose 19
        assert_eq!(r.read(&mut c, &mut out).overrun, 19);
        assert_eq!(out, [26]);
        assert_eq!(c.overruns(), 25);
    }

    #[test]
    fn push_larger_than_capacity() {
        let mut r: Ring<i16> = Ring::new(5);
        r.push(&[100, 101]);
        let data = seq(0, 23);
        r.push(&data);
        assert_eq!(r.write_pos(), 25);
        assert_eq!(r.oldest_pos(), 20);
        let mut out = [0i16; 5];
        assert_eq!(r.latest(&mut out), 5);
        assert_eq!(out, [18, 19, 20, 21, 22]);
        let mut c = r.cursor_at(0);
        assert_eq!(c.pos(), 20);
        let o = r.read(&mut c, &mut out);
        assert_eq!(
            o,
            ReadOutcome {
                copied: 5,
                overrun: 0
            }
        );
        assert_eq!(out, [18, 19, 20, 21, 22]);
    }

    #[test]
    fn push_fill_huge_is_instant_and_correct() {
        let mut r: Ring<i16> = Ring::new(480);
        r.push(&seq(1, 100));
        let mut c = r.cursor_at(0);
        let t = std::time::Instant::now();
        r.push_fill(0, u32::MAX as u64);
        r.push_fill(7, u32::MAX as u64 + 3);
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
        let total = 100 + 2 * u32::MAX as u64 + 3;
        assert_eq!(r.write_pos(), total);
        let mut out = vec![0i16; 480];
        assert_eq!(r.latest(&mut out), 480);
        assert!(out.iter().all(|&s| s == 7));
        let o = r.read(&mut c, &mut out[..10]);
        assert_eq!(o.overrun, total - 480);
        assert_eq!(o.copied, 10);
    }

    #[test]
    fn push_fill_small_and_wrapping() {
        let mut r: Ring<i16> = Ring::new(6);
        r.push(&[1, 2, 3, 4]);
        r.push_fill(0, 4); // indices 4, 5, 0, 1
        r.push(&[9]);
        let mut out = [-1i16; 6];
        assert_eq!(r.latest(&mut out), 6);
        assert_eq!(out, [4, 0, 0, 0, 0, 9]);
        r.push_fill(5, 0);
        assert_eq!(r.write_pos(), 9);
    }

    #[test]
    fn latest_partial_and_full() {
        let mut r: Ring<i16> = Ring::new(8);
        r.push(&seq(0, 3));
        let mut out = [0i16; 10];
        assert_eq!(r.latest(&mut out), 3);
        assert_eq!(&out[..3], &[0, 1, 2]);
        r.push(&seq(3, 10)); // 13 written, stored 5..13
        let mut two = [0i16; 2];
        assert_eq!(r.latest(&mut two), 2);
        assert_eq!(two, [11, 12]);
        assert_eq!(r.latest(&mut out), 8);
        assert_eq!(&out[..8], &seq(5, 8)[..]);
        assert_eq!(r.latest(&mut []), 0);
    }

    #[test]
    fn cursor_at_clamps() {
        let mut r: Ring<i16> = Ring::new(4);
        r.push(&seq(0, 10)); // stored 6..10
        assert_eq!(r.cursor_at(0).pos(), 6);
        assert_eq!(r.cursor_at(6).pos(), 6);
        assert_eq!(r.cursor_at(8).pos(), 8);
        assert_eq!(r.cursor_at(10).pos(), 10);
        assert_eq!(r.cursor_at(u64::MAX).pos(), 10);
        let mut c = r.cursor_at(7);
        let mut out = [0i16; 8];
        assert_eq!(r.available(&c), 3);
        assert_eq!(r.read(&mut c, &mut out).copied, 3);
        assert_eq!(&out[..3], &[7, 8, 9]);
    }

    #[test]
    fn capacity_one() {
        let mut r: Ring<i16> = Ring::new(1);
        let mut c = r.cursor();
        r.push(&[1]);
        let mut out = [0i16; 3];
        assert_eq!(
            r.read(&mut c, &mut out),
            ReadOutcome {
                copied: 1,
                overrun: 0
            }
        );
        assert_eq!(out[0], 1);
        r.push(&[2, 3, 4]);
        assert_eq!(r.oldest_pos(), 3);
        assert_eq!(r.available(&c), 1);
        assert_eq!(
            r.read(&mut c, &mut out),
            ReadOutcome {
                copied: 1,
                overrun: 2
            }
        );
        assert_eq!(out[0], 4);
        r.push_fill(-5, 1000);
        let mut one = [0i16; 1];
        assert_eq!(r.latest(&mut one), 1);
        assert_eq!(one, [-5]);
        assert_eq!(
            r.read(&mut c, &mut out),
            ReadOutcome {
                copied: 1,
                overrun: 999
            }
        );
        assert_eq!(c.overruns(), 1001);
    }

    #[test]
    fn works_with_other_sample_types() {
        let mut r: Ring<f32> = Ring::new(3);
        r.push(&[0.5, 1.0, 1.5, 2.0]);
        let mut out = [0.0f32; 3];
        assert_eq!(r.latest(&mut out), 3);
        assert_eq!(out, [1.0, 1.5, 2.0]);
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Reference: a VecDeque holding the stored window, and reader positions.
    struct Model {
        cap: usize,
        data: VecDeque<i16>,
        write_pos: u64,
    }

    impl Model {
        fn push_one(&mut self, v: i16) {
            if self.data.len() == self.cap {
                self.data.pop_front();
            }
            self.data.push_back(v);
            self.write_pos += 1;
        }
        fn oldest(&self) -> u64 {
            self.write_pos - self.data.len() as u64
        }
    }

    #[test]
    fn randomized_against_vecdeque() {
        for seed in [0x9E37_79B9_7F4A_7C15u64, 1, 0xDEAD_BEEF] {
            let mut rng = XorShift(seed);
            let cap = 1 + rng.below(40) as usize;
            let mut ring: Ring<i16> = Ring::new(cap);
            let mut model = Model {
                cap,
                data: VecDeque::new(),
                write_pos: 0,
            };
            // (cursor, model position, model overruns)
            let mut readers: Vec<(Cursor, u64, u64)> = Vec::new();
            let mut next_val: i16 = 0;
            let mut out = vec![0i16; 3 * cap + 5];
            for _ in 0..4000 {
                match rng.below(8) {
                    0..=2 => {
                        let n = rng.below(3 * cap as u64 + 2) as usize;
                        let chunk: Vec<i16> = (0..n)
                            .map(|_| {
                                next_val = next_val.wrapping_add(1);
                                next_val
                            })
                            .collect();
                        ring.push(&chunk);
                        for &v in &chunk {
                            model.push_one(v);
                        }
                    }
                    3 => {
                        let n = rng.below(2 * cap as u64 + 2);
                        let v = -(rng.below(1000) as i16);
                        ring.push_fill(v, n);
                        for _ in 0..n {
                            model.push_one(v);
                        }
                    }
                    4 => {
                        if readers.len() < 6 {
                            let want = rng.below(model.write_pos + 2);
                            let c = ring.cursor_at(want);
                            let expect = want.clamp(model.oldest(), model.write_pos);
                            assert_eq!(c.pos(), expect);
                            readers.push((c, expect, 0));
                        } else {
                            readers.swap_remove(rng.below(readers.len() as u64) as usize);
                        }
                    }
                    5 => {
                        let mut l = vec![0i16; rng.below(cap as u64 + 3) as usize];
                        let n = ring.latest(&mut l);
                        let k = l.len().min(model.data.len());
                        assert_eq!(n, k);
                        let expect: Vec<i16> = model
                            .data
                            .iter()
                            .skip(model.data.len() - k)
                            .copied()
                            .collect();
                        assert_eq!(&l[..n], &expect[..]);
                    }
                    _ => {
                        if readers.is_empty() {
                            continue;
                        }
                        let i = rng.below(readers.len() as u64) as usize;
                        let len = rng.below(out.len() as u64 + 1) as usize;
                        let (c, mpos, mover) = &mut readers[i];
                        let avail = model.write_pos - (*mpos).max(model.oldest());
                        assert_eq!(ring.available(c), avail);
                        let o = ring.read(c, &mut out[..len]);
                        let lost = model.oldest().saturating_sub(*mpos);
                        *mpos += lost;
                        *mover += lost;
                        let n = (len as u64).min(model.write_pos - *mpos) as usize;
                        let off = (*mpos - model.oldest()) as usize;
                        let expect: Vec<i16> =
                            model.data.iter().skip(off).take(n).copied().collect();
                        assert_eq!(
                            o,
                            ReadOutcome {
                                copied: n,
                                overrun: lost
                            }
                        );
                        assert_eq!(&out[..n], &expect[..]);
                        *mpos += n as u64;
                        assert_eq!(c.pos(), *mpos);
                        assert_eq!(c.overruns(), *mover);
                    }
                }
                assert_eq!(ring.write_pos(), model.write_pos);
                assert_eq!(ring.oldest_pos(), model.oldest());
            }
        }
    }
}
