//! The fake ACS's echo (`CallAudio::echo`): what the gateway plays into the call comes back in
//! the caller's stream, `delay_ms` later and `level_db` down, as a loudspeaker next to the
//! caller's microphone (or a line echo) would return it.
//!
//! Everything is placed by stream position, never by the clock: a message from the gateway
//! arrives at the inbound stream position the fake had sent up to then (its media task reads and
//! sends in one loop, so that position is exact however late the task runs on a loaded host).
//! Outbound audio is played as ACS plays it: in order, back to back through a fixed 40 ms jitter
//! buffer (the first frame plays 40 ms of stream after it arrives, each next one right after the
//! previous if it arrived in time, else 40 ms after it arrives); the echo of what plays at
//! position `P` is mixed into the caller's frame holding `P + delay`. A `StopAudio` drops what
//! has not been played yet (so its echo never comes). Positions are samples of the inbound
//! stream since its first frame.

use super::EchoPath;
use std::collections::VecDeque;

/// The playout jitter buffer (ms).
const JITTER_MS: u64 = 40;

/// One call's echo line.
#[derive(Debug)]
pub(crate) struct EchoLine {
    gain: f32,
    delay: u64,
    rate: u32,
    /// Where the played audio ends (inbound position, before the delay).
    playout_end: u64,
    /// Inbound position of `buf[0]` (after the delay).
    base: u64,
    buf: VecDeque<i16>,
    /// Something was played and not stopped since.
    playing: bool,
}

impl EchoLine {
    pub fn new(path: EchoPath, rate: u32) -> Self {
        Self {
            gain: 10f32.powf(path.level_db as f32 / 20.0),
            delay: u64::from(path.delay_ms) * u64::from(rate) / 1000,
            rate,
            playout_end: 0,
            base: 0,
            buf: VecDeque::new(),
            playing: false,
        }
    }

    /// `pcm` (PCM16LE) from the gateway arrived when the inbound stream had been sent up to
    /// position `now`.
    pub fn played(&mut self, pcm: &[u8], now: u64) {
        // a fixed jitter buffer: the first frame plays JITTER_MS after it arrives, the next ones
        // back to back as long as they arrive before their turn; a later one starts anew
        let jitter = u64::from(self.rate) * JITTER_MS / 1000;
        let at = if self.playing && now <= self.playout_end {
            self.playout_end
        } else {
            (now + jitter).max(self.playout_end)
        };
        self.playing = true;
        self.playout_end = at + (pcm.len() / 2) as u64;
        let mut target = at + self.delay;
        if self.buf.is_empty() && self.base < target {
            self.base = target;
        }
        while self.base + (self.buf.len() as u64) < target {
            self.buf.push_back(0);
        }
        for b in pcm.chunks_exact(2) {
            if target >= self.base {
                let s = (f32::from(i16::from_le_bytes([b[0], b[1]])) * self.gain) as i16;
                let i = (target - self.base) as usize;
                if i < self.buf.len() {
                    self.buf[i] = s;
                } else {
                    self.buf.push_back(s);
                }
            }
            target += 1;
        }
    }

    /// `StopAudio` arrived at inbound position `now`: what was not played yet never echoes.
    pub fn stopped(&mut self, now: u64) {
        self.playing = false;
        if self.playout_end > now {
            let keep = (now + self.delay).saturating_sub(self.base) as usize;
            self.buf.truncate(keep);
            self.playout_end = now;
        }
    }

    /// Adds the echo of inbound positions `from..from + out.len()` to `out`; true when any was
    /// there.
    pub fn mix_into(&mut self, from: u64, out: &mut [i16]) -> bool {
        while self.base < from && self.buf.pop_front().is_some() {
            self.base += 1;
        }
        if self.buf.is_empty() {
            self.base = self.base.max(from);
            return false;
        }
        let mut any = false;
        for (k, o) in out.iter_mut().enumerate() {
            if self.base != from + k as u64 {
                continue;
            }
            let Some(s) = self.buf.pop_front() else { break };
            self.base += 1;
            any |= s != 0;
            *o = o.saturating_add(s);
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(v: &[i16]) -> Vec<u8> {
        v.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn played_audio_returns_delayed_and_attenuated_and_a_stop_cuts_it() {
        let mut e = EchoLine::new(
            EchoPath {
                level_db: -6.0206,
                delay_ms: 40,
            },
            16_000,
        );
        // Two frames at once at position 0: played back to back from 40 ms (640); echo from 1280.
        e.played(&le(&[1000; 320]), 0);
        e.played(&le(&[2000; 320]), 0);
        let mut out = vec![0i16; 1280];
        assert!(!e.mix_into(0, &mut out));
        assert!(out.iter().all(|&v| v == 0));
        let mut out = vec![0i16; 640];
        assert!(e.mix_into(1280, &mut out));
        assert_eq!(
            (out[0], out[319], out[320], out[639]),
            (500, 500, 1000, 1000)
        );
        // Two more at 100 ms of stream (pos 1600, after the first two ended: they play from
        // 2240), stopped at 150 ms (pos 2400): only 160 samples are played and echo, from 2880.
        e.played(&le(&[3000; 320]), 1600);
        e.played(&le(&[3000; 320]), 1600);
        e.stopped(2400);
        let mut out = vec![0i16; 2000];
        assert!(e.mix_into(1920, &mut out));
        let echoed = out.iter().filter(|&&v| v != 0).count();
        assert_eq!(echoed, 160);
        assert_eq!((out[2880 - 1920 - 1], out[2880 - 1920]), (0, 1500));
    }
}
