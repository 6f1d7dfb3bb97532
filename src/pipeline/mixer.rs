//! The call mixer: sums an unmixed call's participants, aligned on the call timeline, into one
//! stream. Each participant keeps its audio in its [`Ring`]; the mixer holds its own reader
//! [`Cursor`] per participant and produces 20 ms blocks once every participant had `latency` to
//! deliver them (audio arriving later than that is not in the mix). Overruns (a reader left more
//! than the ring capacity behind) are reported so they can be counted. Pure: no I/O, no
//! allocation after construction.

use super::ring::{Cursor, Ring};

/// One input of the mixer: a participant's ring, where it starts on the call timeline, and the
/// mixer's cursor into it.
#[derive(Debug)]
pub(crate) struct MixInput<'a> {
    /// The participant's samples.
    pub ring: &'a Ring<i16>,
    /// Call-timeline position of the ring's position 0.
    pub offset: u64,
    /// The mixer's reader cursor.
    pub cursor: &'a mut Cursor,
}

/// Anything the mixer can read from: gives a [`MixInput`] view, or `None` to be left out.
pub(crate) trait MixSource {
    /// The view, borrowed for one use.
    fn mix_input(&mut self) -> Option<MixInput<'_>>;
}

impl MixSource for MixInput<'_> {
    fn mix_input(&mut self) -> Option<MixInput<'_>> {
        Some(MixInput {
            ring: self.ring,
            offset: self.offset,
            cursor: &mut *self.cursor,
        })
    }
}

/// Mixer state for one call.
#[derive(Debug)]
pub(crate) struct Mixer {
    pos: u64,
    block: usize,
    latency: u64,
    acc: Vec<i32>,
    tmp: Vec<i16>,
    out: Vec<i16>,
}

/// What one [`Mixer::pump`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PumpOutcome {
    /// Blocks emitted.
    pub blocks: usize,
    /// Samples skipped as silence because the mixer had fallen more than a ring capacity behind.
    pub skipped: u64,
    /// Samples readers lost to overrun.
    pub overrun: u64,
}

impl Mixer {
    /// A mixer emitting `block`-sample blocks (20 ms), waiting `latency` samples for stragglers.
    pub(crate) fn new(block: usize, latency: u64) -> Self {
        let block = block.max(1);
        Self {
            pos: 0,
            block,
            latency,
            acc: vec![0; block],
            tmp: vec![0; block],
            out: vec![0; block],
        }
    }

    /// Call-timeline position of the next sample to be mixed.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Emits every block that is due: all blocks ending at or before the furthest input's end
    /// minus the latency (or, with `flush`, everything up to the furthest end). `gap` is told
    /// about samples skipped because they left every ring; `emit` gets each block with its
    /// call-timeline position.
    pub(crate) fn pump<S: MixSource>(
        &mut self,
        inputs: &mut [S],
        flush: bool,
        mut gap: impl FnMut(u64),
        mut emit: impl FnMut(u64, &[i16]),
    ) -> PumpOutcome {
        let mut outcome = PumpOutcome::default();
        let end = inputs
            .iter_mut()
            .filter_map(|i| i.mix_input().map(|i| i.offset + i.ring.write_pos()))
            .max()
            .unwrap_or(0);
        let horizon = if flush {
            end
        } else {
            end.saturating_sub(self.latency)
        };
        // Never try to mix more than a ring holds: older audio is gone anyway.
        let cap = inputs
            .iter_mut()
            .filter_map(|i| i.mix_input().map(|i| i.ring.capacity() as u64))
            .max()
            .unwrap_or(0);
        if horizon > self.pos + cap + self.block as u64 {
            let skip = horizon - cap - self.pos;
            let skip = skip - skip % self.block as u64;
            self.pos += skip;
            outcome.skipped += skip;
            gap(skip);
        }
        while self.pos < horizon {
            let n = ((horizon - self.pos) as usize).min(self.block);
            if n < self.block && !flush {
                break;
            }
            self.acc[..n].fill(0);
            for input in inputs.iter_mut() {
                if let Some(mut input) = input.mix_input() {
                    outcome.overrun += self.add(&mut input, n);
                }
            }
            for (o, a) in self.out[..n].iter_mut().zip(&self.acc[..n]) {
                *o = (*a).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
            emit(self.pos, &self.out[..n]);
            self.pos += n as u64;
            outcome.blocks += 1;
        }
        outcome
    }

    /// Adds `input`'s samples for `[pos, pos + n)` into the accumulator; returns overrun.
    fn add(&mut self, input: &mut MixInput<'_>, n: usize) -> u64 {
        let start = self.pos;
        let stop = start + n as u64;
        if stop <= input.offset {
            return 0; // starts later on the timeline
        }
        // the part of the block this input covers, in ring coordinates
        let ring_start = start.saturating_sub(input.offset);
        let acc_skip = (input.offset.saturating_sub(start)) as usize;
        let ring_stop = stop - input.offset;
        let mut overrun = 0;
        // catch up to the block (the participant's own start, or samples that came too late for
        // the mix); stops when the ring has nothing more
        while input.cursor.pos() < ring_start && input.ring.write_pos() > input.cursor.pos() {
            let take = (ring_start - input.cursor.pos()).min(self.tmp.len() as u64) as usize;
            overrun += input.ring.read(input.cursor, &mut self.tmp[..take]).overrun;
        }
        let from = input.cursor.pos();
        if from < ring_start || from >= ring_stop {
            return overrun;
        }
        let want = ((ring_stop - from) as usize).min(self.tmp.len());
        let r = input.ring.read(input.cursor, &mut self.tmp[..want]);
        overrun += r.overrun;
        let first = acc_skip + (from + r.overrun - ring_start) as usize;
        if first < n {
            let end = (first + r.copied).min(n);
            for (a, s) in self.acc[first..end].iter_mut().zip(&self.tmp[..r.copied]) {
                *a += i32::from(*s);
            }
        }
        overrun
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_participants_are_summed_with_saturation() {
        let mut a = Ring::new(1000);
        let mut b = Ring::new(1000);
        a.push(&[1000; 40]);
        b.push(&[32_000; 40]);
        let (mut ca, mut cb) = (a.cursor_at(0), b.cursor_at(0));
        let mut m = Mixer::new(20, 0);
        let mut out = Vec::new();
        let o = m.pump(
            &mut [
                MixInput {
                    ring: &a,
                    offset: 0,
                    cursor: &mut ca,
                },
                MixInput {
                    ring: &b,
                    offset: 0,
                    cursor: &mut cb,
                },
            ],
            false,
            |_| {},
            |pos, s| out.push((pos, s.to_vec())),
        );
        assert_eq!(o.blocks, 2);
        assert_eq!(out[0].0, 0);
        assert_eq!(out[1].0, 20);
        assert!(out.iter().all(|(_, s)| s.iter().all(|&x| x == i16::MAX)));
    }

    #[test]
    fn a_later_participant_lands_at_its_offset_and_latency_holds_back() {
        let mut a = Ring::new(1000);
        let mut b = Ring::new(1000);
        a.push(&[1; 100]);
        b.push(&[10; 30]); // b starts at call position 50 → covers 50..80
        let (mut ca, mut cb) = (a.cursor_at(0), b.cursor_at(0));
        let mut m = Mixer::new(10, 20);
        let mut mixed = Vec::new();
        m.pump(
            &mut [
                MixInput {
                    ring: &a,
                    offset: 0,
                    cursor: &mut ca,
                },
                MixInput {
                    ring: &b,
                    offset: 50,
                    cursor: &mut cb,
                },
            ],
            false,
            |_| {},
            |_, s| mixed.extend_from_slice(s),
        );
        assert_eq!(mixed.len(), 80, "end 100 - latency 20");
        assert!(mixed[..50].iter().all(|&x| x == 1));
        assert!(mixed[50..80].iter().all(|&x| x == 11));
        // flush takes the rest
        m.pump(
            &mut [
                MixInput {
                    ring: &a,
                    offset: 0,
                    cursor: &mut ca,
                },
                MixInput {
                    ring: &b,
                    offset: 50,
                    cursor: &mut cb,
                },
            ],
            true,
            |_| {},
            |_, s| mixed.extend_from_slice(s),
        );
        assert_eq!(mixed.len(), 100);
        assert!(mixed[80..].iter().all(|&x| x == 1));
    }

    #[test]
    fn audio_later_than_the_latency_is_left_out_and_a_far_jump_is_skipped_as_a_gap() {
        let mut a = Ring::new(100);
        let mut b = Ring::new(100);
        a.push(&[1; 60]);
        let (mut ca, mut cb) = (a.cursor_at(0), b.cursor_at(0));
        let mut m = Mixer::new(10, 0);
        let mut mixed = Vec::new();
        let mut run = |a: &Ring<i16>,
                       b: &Ring<i16>,
                       ca: &mut Cursor,
                       cb: &mut Cursor,
                       mixed: &mut Vec<i16>,
                       gaps: &mut u64| {
            m.pump(
                &mut [
                    MixInput {
                        ring: a,
                        offset: 0,
                        cursor: ca,
                    },
                    MixInput {
                        ring: b,
                        offset: 0,
                        cursor: cb,
                    },
                ],
                false,
                |g| *gaps += g,
                |_, s| mixed.extend_from_slice(s),
            )
        };
        let mut gaps = 0;
        run(&a, &b, &mut ca, &mut cb, &mut mixed, &mut gaps);
        assert_eq!(mixed.len(), 60);
        b.push(&[5; 60]); // b's first 60 samples come after they were mixed: not in the mix
        a.push(&[1; 10]);
        run(&a, &b, &mut ca, &mut cb, &mut mixed, &mut gaps);
        assert_eq!(mixed.len(), 70);
        assert!(mixed[..60].iter().all(|&x| x == 1));
        assert!(
            mixed[60..70].iter().all(|&x| x == 1),
            "b's late samples 0..60 are skipped; 60..70 has none of b"
        );
        // a jumps far ahead: the mixer skips what no ring holds any more
        a.push_fill(0, 10_000);
        let o = run(&a, &b, &mut ca, &mut cb, &mut mixed, &mut gaps);
        assert!(o.skipped > 0 && gaps == o.skipped);
        assert_eq!(mixed.len() as u64 + gaps, 70 + 10_000);
    }
}
