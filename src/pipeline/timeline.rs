//! PURE: the per-participant timeline (gap filler): places frames by their timestamps.
//!
//! Owns [`Timeline`], which decides for each incoming frame whether it is appended (possibly
//! after a gap of silence), dropped as late, or dropped as a duplicate ([`Placement`]), and keeps
//! the counters ([`TimelineStats`]).
//!
//! # Rules
//!
//! - **Clock.** The timeline's position counts samples placed so far (frames plus fill). An anchor
//!   `(anchor_ms, anchor_pos)` maps the sender's clock onto it; a precise timestamp `ts` maps to
//!   `p = anchor_pos + round((ts - anchor_ms) * rate / 1000)` (all in `i128`, so hostile
//!   timestamps cannot overflow).
//! - **Imprecise timestamps.** A frame without a timestamp, or with only second resolution (ACS test
//!   payloads), is appended in arrival order: `Append { fill: 0, resynced: false }`.
//! - **Origin.** The first precise frame sets the anchor at the current position.
//! - **Tolerance.** `tol = n_samples / 2` (10 ms for 20 ms frames) absorbs jitter. With
//!   `d = p - position`: `|d| <= tol` → appended without fill.
//! - **Gap.** `d > tol` → `fill = d`. If `d` exceeds `max_gap_fill_ms` the fill is capped at that
//!   maximum, `resynced = true`, and the anchor moves so that this frame's timestamp maps to where
//!   the frame is written.
//! - **Fill budget.** Silence stands for time that passed, so a stream's fill may not run ahead of
//!   the wall clock: all fill so far stays within `elapsed + gap_fill_slack_ms`, where `elapsed`
//!   is the time since the stream's first frame as the caller last reported it
//!   ([`Timeline::set_elapsed_ms`]; the timeline reads no clock). A gap beyond what is left of
//!   that budget is not filled at all, whatever its size ([`Placement::Outlier`]): the frame is
//!   written in arrival order right after the previous one and the anchor stays, so the next frame
//!   decides. If it fits the old anchor, the outlier was a glitch (one absurd timestamp among
//!   good ones) and nothing is lost; if it lands on the outlier's own slot, the outlier was an
//!   extra frame and the anchor moves one outlier on; if it continues the outlier's clock, the
//!   sender's clock really jumped and the timeline resyncs there (without fill). So a sender that
//!   jumps ahead on every frame gets its frames written back to back, never more silence than
//!   real time, and one far-future timestamp costs no real frame.
//! - **Late / duplicate.** `d < -tol`: if `p` is within `tol` of one of the last 64 accepted frame
//!   starts the frame is a [`Placement::Duplicate`], otherwise [`Placement::Late`]; both are dropped.
//! - **Backward clock jump.** Consecutive late frames are counted (an appended frame resets the
//!   count; a duplicate leaves it unchanged). The `resync_after_late`-th consecutive late frame is
//!   not dropped: the anchor moves so that it appends (`Append { fill: 0, resynced: true }`). So a
//!   jump loses `resync_after_late - 1` frames. `resync_after_late = 0` disables this.
//!
//! Nothing allocates: the recent frame starts live in a fixed array.

/// Timeline settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineConfig {
    /// Largest gap filled with silence, in ms; a bigger jump is capped and resyncs. Default 60 000.
    pub max_gap_fill_ms: u32,
    /// How far a stream's total fill may run ahead of the wall-clock time since its first frame,
    /// in ms (covers arrival jitter and the caller's clock granularity). Default 5 000.
    pub gap_fill_slack_ms: u32,
    /// Consecutive late frames after which the sender's clock is taken to have jumped backwards
    /// and the timeline resyncs (0 = never). Default 25.
    pub resync_after_late: u32,
}

/// Default largest timeline gap filled with silence (ms).
pub const DEFAULT_MAX_GAP_FILL_MS: u32 = 60_000;
/// Default `media.gap_fill_slack_ms`.
pub const DEFAULT_GAP_FILL_SLACK_MS: u32 = 5_000;

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            max_gap_fill_ms: DEFAULT_MAX_GAP_FILL_MS,
            gap_fill_slack_ms: DEFAULT_GAP_FILL_SLACK_MS,
            resync_after_late: 25,
        }
    }
}

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Write the frame after `fill` samples of silence; `resynced` = the timeline was rebased (a
    /// jump bigger than `max_gap_fill_ms`, or a run of late frames, i.e. the sender's clock moved).
    Append {
        /// Samples of silence to write before the frame.
        fill: u64,
        /// Whether the timeline was rebased onto this frame's timestamp.
        resynced: bool,
    },
    /// The frame belongs before what was already written (its slot was filled or passed): drop it.
    Late,
    /// The frame starts where a recently accepted frame started: drop it.
    Duplicate,
    /// The frame's timestamp jumps further ahead than the wall clock allows (the stream's fill
    /// budget): write it right after the previous frame, without fill. See the module docs.
    Outlier,
}

/// Timeline counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Frames accepted (appended).
    pub frames: u64,
    /// Gaps detected (frames that arrived further ahead than the tolerance).
    pub gaps: u64,
    /// Samples of silence filled in.
    pub filled_samples: u64,
    /// Frames dropped as late.
    pub late: u64,
    /// Frames dropped as duplicates.
    pub duplicates: u64,
    /// Times the timeline was rebased (gap over the maximum, or a run of late frames).
    pub resyncs: u64,
    /// Frames whose timestamp jumped beyond the fill budget, written in arrival order.
    pub outliers: u64,
}

const RECENT: usize = 64;

/// Per-participant frame placement state. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct Timeline {
    rate: u32,
    max_gap_fill: u64,
    slack: u64,
    /// Wall-clock time since the first frame, in samples (as last reported).
    elapsed: u64,
    resync_after_late: u32,
    /// The last outlier: its timestamp, where it was written and its length.
    suspect: Option<(i64, u64, u64)>,
    /// `(unix ms, position)`: the sender's clock reading at a timeline position.
    anchor: Option<(i64, u64)>,
    position: u64,
    recent: [u64; RECENT],
    recent_len: usize,
    recent_next: usize,
    late_run: u32,
    stats: TimelineStats,
}

/// `num / den` rounded half away from zero (`den > 0`).
fn div_round(num: i128, den: i128) -> i128 {
    if num >= 0 {
        (num + den / 2) / den
    } else {
        -((-num + den / 2) / den)
    }
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Timeline {
    /// A timeline for audio at `sample_rate` Hz (0 is treated as 1), at position 0 with no origin.
    pub fn new(cfg: &TimelineConfig, sample_rate: u32) -> Self {
        let rate = sample_rate.max(1);
        Self {
            rate,
            max_gap_fill: u64::from(cfg.max_gap_fill_ms) * u64::from(rate) / 1000,
            slack: u64::from(cfg.gap_fill_slack_ms) * u64::from(rate) / 1000,
            elapsed: 0,
            resync_after_late: cfg.resync_after_late,
            suspect: None,
            anchor: None,
            position: 0,
            recent: [0; RECENT],
            recent_len: 0,
            recent_next: 0,
            late_run: 0,
            stats: TimelineStats::default(),
        }
    }

    /// Reports the wall-clock time since the stream's first frame (ms), as the caller's clock
    /// sees it. The fill budget grows with it; it never shrinks.
    pub fn set_elapsed_ms(&mut self, ms: u64) {
        let samples = ms.saturating_mul(u64::from(self.rate)) / 1000;
        self.elapsed = self.elapsed.max(samples);
    }

    /// Fill the stream may still get: `elapsed + slack - filled so far`.
    fn fill_budget(&self) -> u64 {
        self.elapsed
            .saturating_add(self.slack)
            .saturating_sub(self.stats.filled_samples)
    }

    /// Where timestamp `ts` lands on the clock anchored at `(anchor_ms, anchor_pos)`.
    fn map(&self, (anchor_ms, anchor_pos): (i64, u64), ts: i64) -> i128 {
        i128::from(anchor_pos)
            + div_round(
                (i128::from(ts) - i128::from(anchor_ms)) * i128::from(self.rate),
                1000,
            )
    }

    /// Places a frame of `n_samples` with timestamp `ts_ms` (unix ms; `precise` = it had sub-second
    /// precision). A missing or imprecise timestamp appends in arrival order.
    pub fn place(&mut self, ts_ms: Option<i64>, precise: bool, n_samples: usize) -> Placement {
        let n = n_samples as u64;
        let ts = match ts_ms {
            Some(ts) if precise => ts,
            _ => return self.accept(0, false, n),
        };
        let Some(anchor) = self.anchor else {
            self.anchor = Some((ts, self.position));
            return self.accept(0, false, n);
        };
        let tol = i128::from(n / 2);
        let mut p = self.map(anchor, ts);
        if let Some((s_ms, s_pos, s_len)) = self.suspect.take() {
            if (p - i128::from(s_pos)).abs() <= tol {
                // the outlier was an extra frame in this frame's slot: the clock moves past it
                self.anchor = Some((anchor.0, anchor.1.saturating_add(s_len)));
                p += i128::from(s_len);
            } else if (p - i128::from(self.position)).abs() > tol
                && (self.map((s_ms, s_pos), ts) - i128::from(self.position)).abs() <= tol
            {
                // this frame continues the outlier's clock: the sender's clock jumped
                self.anchor = Some((s_ms, s_pos));
                self.stats.resyncs += 1;
                return self.accept(0, true, n);
            }
        }
        let d = p - i128::from(self.position);
        if d.abs() <= tol {
            return self.accept(0, false, n);
        }
        if d > tol {
            if d > i128::from(self.fill_budget()) {
                // more silence than the wall clock allows: written in arrival order, no fill
                self.suspect = Some((ts, self.position, n));
                self.stats.outliers += 1;
                self.accept(0, false, n);
                return Placement::Outlier;
            }
            self.stats.gaps += 1;
            if d > i128::from(self.max_gap_fill) {
                let fill = self.max_gap_fill;
                self.anchor = Some((ts, self.position.saturating_add(fill)));
                self.stats.resyncs += 1;
                return self.accept(fill, true, n);
            }
            // 0 < d <= max_gap_fill, so it fits in a u64.
            return self.accept(d as u64, false, n);
        }
        let recent = &self.recent[..self.recent_len];
        if recent.iter().any(|&s| (p - i128::from(s)).abs() <= tol) {
            self.stats.duplicates += 1;
            return Placement::Duplicate;
        }
        self.late_run = self.late_run.saturating_add(1);
        if self.resync_after_late > 0 && self.late_run >= self.resync_after_late {
            self.anchor = Some((ts, self.position));
            self.stats.resyncs += 1;
            return self.accept(0, true, n);
        }
        self.stats.late += 1;
        Placement::Late
    }

    fn accept(&mut self, fill: u64, resynced: bool, n: u64) -> Placement {
        self.position = self.position.saturating_add(fill);
        self.recent[self.recent_next] = self.position;
        self.recent_next = (self.recent_next + 1) % RECENT;
        self.recent_len = (self.recent_len + 1).min(RECENT);
        self.position = self.position.saturating_add(n);
        self.late_run = 0;
        self.stats.frames += 1;
        self.stats.filled_samples = self.stats.filled_samples.saturating_add(fill);
        Placement::Append { fill, resynced }
    }

    /// Samples placed so far (frames and fill).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Unix ms of position 0 (the first precise frame's timestamp when it came first), kept up to
    /// date on resync so that `origin + position / rate` tracks the sender's clock. `None` until a
    /// frame with a precise timestamp arrives.
    pub fn origin_ms(&self) -> Option<i64> {
        self.ms_at(0)
    }

    /// The sender's clock (unix ms, rounded) at timeline position `pos`; `None` without an origin.
    /// Saturates at the `i64` range.
    pub fn ms_at(&self, pos: u64) -> Option<i64> {
        let (anchor_ms, anchor_pos) = self.anchor?;
        let delta = (i128::from(pos) - i128::from(anchor_pos)) * 1000;
        Some(clamp_i64(
            i128::from(anchor_ms) + div_round(delta, i128::from(self.rate)),
        ))
    }

    /// The counters so far.
    pub fn stats(&self) -> TimelineStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_123;

    fn append(fill: u64) -> Placement {
        Placement::Append {
            fill,
            resynced: false,
        }
    }

    fn tl(rate: u32) -> Timeline {
        Timeline::new(&TimelineConfig::default(), rate)
    }

    fn frame_len(rate: u32) -> usize {
        (rate / 50) as usize
    }

    /// Places frame number `k` (20 ms each) with an extra offset in ms.
    fn put(t: &mut Timeline, rate: u32, k: i64, jitter_ms: i64) -> Placement {
        t.place(Some(T0 + 20 * k + jitter_ms), true, frame_len(rate))
    }

    #[test]
    fn contiguous_frames_no_fill() {
        for rate in [16_000, 24_000] {
            let mut t = tl(rate);
            for k in 0..100 {
                assert_eq!(put(&mut t, rate, k, 0), append(0));
            }
            assert_eq!(t.position(), 100 * frame_len(rate) as u64);
            assert_eq!(
                t.stats(),
                TimelineStats {
                    frames: 100,
                    ..TimelineStats::default()
                }
            );
            assert_eq!(t.origin_ms(), Some(T0));
            assert_eq!(t.ms_at(t.position()), Some(T0 + 2000));
        }
    }

    #[test]
    fn one_missing_frame() {
        for (rate, fill) in [(16_000, 320), (24_000, 480)] {
            let mut t = tl(rate);
            assert_eq!(put(&mut t, rate, 0, 0), append(0));
            assert_eq!(put(&mut t, rate, 1, 0), append(0));
            assert_eq!(put(&mut t, rate, 3, 0), append(fill));
            assert_eq!(put(&mut t, rate, 4, 0), append(0));
            assert_eq!(t.position(), 5 * fill);
            let s = t.stats();
            assert_eq!((s.frames, s.gaps, s.filled_samples), (4, 1, fill));
        }
    }

    #[test]
    fn three_missing_frames() {
        let mut t = tl(16_000);
        put(&mut t, 16_000, 0, 0);
        put(&mut t, 16_000, 1, 0);
        assert_eq!(put(&mut t, 16_000, 5, 0), append(960));
        assert_eq!(put(&mut t, 16_000, 6, 0), append(0));
        assert_eq!(t.position(), 7 * 320);
    }

    #[test]
    fn jitter_absorbed() {
        for rate in [16_000, 24_000] {
            let mut t = tl(rate);
            let jitter = [0, 7, -7, 5, -3, 7, -7, 0, 6, -6];
            for k in 0..200 {
                let j = jitter[k % jitter.len()];
                assert_eq!(
                    put(&mut t, rate, k as i64, j),
                    append(0),
                    "rate {rate} k {k}"
                );
            }
            assert_eq!(t.stats().frames, 200);
            assert_eq!(t.stats().filled_samples, 0);
        }
    }

    #[test]
    fn duplicate_of_previous_frame() {
        let mut t = tl(16_000);
        put(&mut t, 16_000, 0, 0);
        put(&mut t, 16_000, 1, 0);
        assert_eq!(put(&mut t, 16_000, 1, 0), Placement::Duplicate);
        assert_eq!(put(&mut t, 16_000, 0, 0), Placement::Duplicate);
        assert_eq!(put(&mut t, 16_000, 2, 0), append(0));
        assert_eq!(t.position(), 960);
        let s = t.stats();
        assert_eq!((s.frames, s.duplicates, s.late), (3, 2, 0));
    }

    #[test]
    fn reordering() {
        let mut t = tl(16_000);
        assert_eq!(put(&mut t, 16_000, 1, 0), append(0));
        assert_eq!(put(&mut t, 16_000, 2, 0), append(0));
        assert_eq!(put(&mut t, 16_000, 4, 0), append(320));
        assert_eq!(put(&mut t, 16_000, 3, 0), Placement::Late);
        assert_eq!(put(&mut t, 16_000, 5, 0), append(0));
        assert_eq!(t.position(), 5 * 320);
        assert_eq!(
            t.stats(),
            TimelineStats {
                frames: 4,
                gaps: 1,
                filled_samples: 320,
                late: 1,
                duplicates: 0,
                resyncs: 0,
                outliers: 0
            }
        );
    }

    #[test]
    fn second_resolution_and_missing_timestamps_append_in_order() {
        let mut t = tl(16_000);
        let sec = 1_700_000_000_000;
        for _ in 0..60 {
            assert_eq!(t.place(Some(sec), false, 320), append(0));
        }
        assert_eq!(t.place(None, true, 320), append(0));
        assert_eq!(t.place(None, false, 320), append(0));
        assert_eq!(t.position(), 62 * 320);
        assert_eq!(t.origin_ms(), None);
        assert_eq!(t.ms_at(0), None);
        // A later precise frame anchors at the current position.
        assert_eq!(t.place(Some(T0), true, 320), append(0));
        assert_eq!(t.ms_at(62 * 320), Some(T0));
        assert_eq!(t.origin_ms(), Some(T0 - 62 * 20));
        assert_eq!(t.stats().frames, 63);
    }

    #[test]
    fn jump_beyond_max_gap_fill() {
        let mut t = tl(16_000);
        put(&mut t, 16_000, 0, 0);
        put(&mut t, 16_000, 1, 0);
        // the two minutes really passed
        t.set_elapsed_ms(121_000);
        // 2 minutes later.
        let far = T0 + 40 + 120_000;
        assert_eq!(
            t.place(Some(far), true, 320),
            Placement::Append {
                fill: 960_000,
                resynced: true
            }
        );
        assert_eq!(t.position(), 640 + 960_000 + 320);
        assert_eq!(t.ms_at(640 + 960_000), Some(far));
        for k in 1..10 {
            assert_eq!(t.place(Some(far + 20 * k), true, 320), append(0));
        }
        assert_eq!(t.ms_at(t.position()), Some(far + 200));
        // The origin moved so that origin + position/rate tracks the sender's clock.
        assert_eq!(t.origin_ms(), Some(far - 40 - 60_000));
        let s = t.stats();
        assert_eq!(
            (s.frames, s.gaps, s.filled_samples, s.resyncs),
            (12, 1, 960_000, 1)
        );
    }

    #[test]
    fn gap_exactly_at_max_is_filled_without_resync() {
        let cfg = TimelineConfig {
            max_gap_fill_ms: 100,
            ..TimelineConfig::default()
        };
        let mut t = Timeline::new(&cfg, 16_000);
        put(&mut t, 16_000, 0, 0);
        // Frame 6 is 100 ms (1600 samples) after the end of frame 0.
        assert_eq!(put(&mut t, 16_000, 6, 0), append(1600));
        // Frame 13: 120 ms gap > 100 ms max.
        assert_eq!(
            put(&mut t, 16_000, 13, 0),
            Placement::Append {
                fill: 1600,
                resynced: true
            }
        );
        assert_eq!(put(&mut t, 16_000, 14, 0), append(0));
    }

    #[test]
    fn backwards_clock_jump_resyncs_after_run_of_late() {
        let cfg = TimelineConfig::default();
        let mut t = Timeline::new(&cfg, 16_000);
        for k in 0..10 {
            assert_eq!(put(&mut t, 16_000, k, 0), append(0));
        }
        let back = T0 - 10_000;
        for i in 0..cfg.resync_after_late as i64 - 1 {
            assert_eq!(
                t.place(Some(back + 20 * i), true, 320),
                Placement::Late,
                "{i}"
            );
        }
        assert_eq!(t.position(), 3200);
        let i = cfg.resync_after_late as i64 - 1;
        assert_eq!(
            t.place(Some(back + 20 * i), true, 320),
            Placement::Append {
                fill: 0,
                resynced: true
            }
        );
        for j in 1..20 {
            assert_eq!(t.place(Some(back + 20 * (i + j)), true, 320), append(0));
        }
        assert_eq!(t.ms_at(3200), Some(back + 20 * i));
        assert_eq!(
            t.stats(),
            TimelineStats {
                frames: 10 + 1 + 19,
                gaps: 0,
                filled_samples: 0,
                late: 24,
                duplicates: 0,
                resyncs: 1,
                outliers: 0
            }
        );
    }

    #[test]
    fn duplicates_do_not_break_or_count_as_late_run() {
        let cfg = TimelineConfig {
            resync_after_late: 3,
            ..TimelineConfig::default()
        };
        let mut t = Timeline::new(&cfg, 16_000);
        for k in 0..5 {
            put(&mut t, 16_000, k, 0);
        }
        let back = T0 - 10_000;
        assert_eq!(t.place(Some(back), true, 320), Placement::Late);
        assert_eq!(put(&mut t, 16_000, 4, 0), Placement::Duplicate);
        assert_eq!(put(&mut t, 16_000, 3, 0), Placement::Duplicate);
        assert_eq!(t.place(Some(back + 20), true, 320), Placement::Late);
        assert_eq!(
            t.place(Some(back + 40), true, 320),
            Placement::Append {
                fill: 0,
                resynced: true
            }
        );
        // An appended frame resets the run.
        assert_eq!(t.place(Some(back - 50_000), true, 320), Placement::Late);
        assert_eq!(t.place(Some(back + 60), true, 320), append(0));
        assert_eq!(t.place(Some(back - 50_000), true, 320), Placement::Late);
        assert_eq!(t.place(Some(back - 49_980), true, 320), Placement::Late);
        let s = t.stats();
        assert_eq!((s.late, s.duplicates, s.resyncs), (5, 2, 1));
    }

    #[test]
    fn late_resync_disabled_with_zero() {
        let cfg = TimelineConfig {
            resync_after_late: 0,
            ..TimelineConfig::default()
        };
        let mut t = Timeline::new(&cfg, 16_000);
        put(&mut t, 16_000, 0, 0);
        for i in 0..100 {
            assert_eq!(
                t.place(Some(T0 - 10_000 + 20 * i), true, 320),
                Placement::Late
            );
        }
        assert_eq!(t.stats().late, 100);
    }

    #[test]
    fn duplicate_window_is_64_frames() {
        let mut t = tl(16_000);
        for k in 0..70 {
            put(&mut t, 16_000, k, 0);
        }
        // Frames 6..70 are the last 64 accepted.
        assert_eq!(put(&mut t, 16_000, 6, 0), Placement::Duplicate);
        assert_eq!(put(&mut t, 16_000, 5, 0), Placement::Late);
        // A start 5 ms off a recent one is still within tolerance.
        assert_eq!(put(&mut t, 16_000, 60, 5), Placement::Duplicate);
        // 15 ms off (between two starts, 5 ms from the next one) is a duplicate of the next.
        assert_eq!(put(&mut t, 16_000, 60, 15), Placement::Duplicate);
    }

    #[test]
    fn ms_precision_at_24k_is_exact() {
        let mut t = tl(24_000);
        put(&mut t, 24_000, 0, 0);
        // 1 ms ahead of the expected start: 24 samples, within tolerance (240).
        assert_eq!(put(&mut t, 24_000, 1, 1), append(0));
        // 11 ms ahead: 264 samples > 240 → fill exactly 264.
        assert_eq!(put(&mut t, 24_000, 2, 11), append(264));
        assert_eq!(t.position(), 3 * 480 + 264);
    }

    #[test]
    fn hostile_timestamps_do_not_panic() {
        let hostile = [
            i64::MIN,
            i64::MAX,
            0,
            -1,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            i64::MAX - 1,
            i64::MIN + 1,
            T0,
            -253_402_300_799_999,
            i64::MAX,
            i64::MAX,
            i64::MIN,
        ];
        for rate in [1, 16_000, 24_000, u32::MAX] {
            for cfg in [
                TimelineConfig::default(),
                TimelineConfig {
                    max_gap_fill_ms: u32::MAX,
                    gap_fill_slack_ms: u32::MAX,
                    resync_after_late: 1,
                },
                TimelineConfig {
                    max_gap_fill_ms: 0,
                    gap_fill_slack_ms: 0,
                    resync_after_late: 0,
                },
            ] {
                let mut t = Timeline::new(&cfg, rate);
                let max = u64::from(cfg.max_gap_fill_ms) * u64::from(rate) / 1000;
                for round in 0..3 {
                    for (i, &ts) in hostile.iter().enumerate() {
                        let n = [320, 0, 1, 480, usize::MAX][(i + round) % 5];
                        match t.place(Some(ts), true, n) {
                            Placement::Append { fill, .. } => assert!(fill <= max),
                            Placement::Late | Placement::Duplicate | Placement::Outlier => {}
                        }
                        let _ = t.ms_at(t.position());
                        let _ = t.ms_at(u64::MAX);
                        let _ = t.origin_ms();
                    }
                }
                let s = t.stats();
                assert_eq!(s.frames + s.late + s.duplicates, 3 * hostile.len() as u64);
                assert!(s.filled_samples <= s.gaps * max);
                let slack = u64::from(cfg.gap_fill_slack_ms) * u64::from(rate) / 1000;
                assert!(
                    s.filled_samples <= slack,
                    "no wall time passed: slack at most"
                );
            }
        }
    }

    const Y9999: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

    #[test]
    fn year_9999_among_real_frames_is_an_outlier_and_costs_no_real_frame() {
        // the far-future stamp replaces frame 10's: its audio goes in frame 10's slot
        let mut t = tl(16_000);
        for k in 0..10 {
            assert_eq!(put(&mut t, 16_000, k, 0), append(0));
        }
        assert_eq!(t.place(Some(Y9999), true, 320), Placement::Outlier);
        for k in 11..60 {
            assert_eq!(put(&mut t, 16_000, k, 0), append(0), "{k}");
        }
        assert_eq!(t.position(), 60 * 320);
        assert_eq!(t.ms_at(60 * 320), Some(T0 + 1200), "clock untouched");
        let s = t.stats();
        assert_eq!(
            (s.frames, s.outliers, s.late, s.filled_samples, s.resyncs),
            (60, 1, 0, 0, 0)
        );
    }

    #[test]
    fn an_extra_far_future_frame_is_kept_and_the_real_frames_follow_it() {
        // the far-future frame comes on top of the real ones: frame 10 lands on its slot
        let mut t = tl(16_000);
        for k in 0..10 {
            put(&mut t, 16_000, k, 0);
        }
        assert_eq!(t.place(Some(Y9999), true, 320), Placement::Outlier);
        for k in 10..60 {
            assert_eq!(put(&mut t, 16_000, k, 0), append(0), "{k}");
        }
        assert_eq!(t.position(), 61 * 320);
        let s = t.stats();
        assert_eq!((s.frames, s.outliers, s.late, s.duplicates), (61, 1, 0, 0));
        assert_eq!(s.filled_samples, 0);
    }

    #[test]
    fn a_jump_on_every_frame_fills_no_more_than_wall_time_and_slack() {
        let cfg = TimelineConfig {
            max_gap_fill_ms: 1000,
            gap_fill_slack_ms: 2000,
            ..TimelineConfig::default()
        };
        for real_time in [true, false] {
            let mut t = Timeline::new(&cfg, 16_000);
            let mut ts = T0;
            for _ in 0..5 {
                assert_eq!(t.place(Some(ts), true, 320), append(0));
                ts += 20;
            }
            // 500 frames, each stamped 1.5 s after the one before
            let mut elapsed_ms = 100;
            for i in 0..500 {
                ts += 1500;
                if real_time {
                    t.set_elapsed_ms(elapsed_ms);
                    elapsed_ms += 20;
                }
                match t.place(Some(ts), true, 320) {
                    Placement::Append { fill, .. } => assert!(fill <= 16_000, "{i}"),
                    Placement::Outlier => {}
                    other => panic!("frame {i} dropped: {other:?}"),
                }
            }
            let wall = if real_time { elapsed_ms } else { 0 };
            let budget = (wall + 2000) * 16;
            let s = t.stats();
            assert!(
                s.filled_samples <= budget,
                "{} > {budget}",
                s.filled_samples
            );
            assert!(s.outliers >= 400, "{s:?}");
            // then real frames on from the last one: the clock moved there
            let mut placements = Vec::new();
            for _ in 0..20 {
                ts += 20;
                placements.push(t.place(Some(ts), true, 320));
            }
            assert!(
                matches!(placements[0], Placement::Append { fill: 0, .. }),
                "{placements:?}"
            );
            assert!(placements[1..].iter().all(|p| *p == append(0)));
            assert_eq!(t.stats().frames, 525);
            assert_eq!(t.position(), 525 * 320 + t.stats().filled_samples);
        }
    }

    #[test]
    fn the_fill_budget_grows_with_wall_time() {
        let cfg = TimelineConfig {
            gap_fill_slack_ms: 1000,
            ..TimelineConfig::default()
        };
        let mut t = Timeline::new(&cfg, 16_000);
        put(&mut t, 16_000, 0, 0);
        // a 3 s gap right away: more than the slack, not filled
        assert_eq!(put(&mut t, 16_000, 151, 0), Placement::Outlier);
        // the next frame follows the outlier's clock: a clock jump, taken without fill
        assert_eq!(
            put(&mut t, 16_000, 152, 0),
            Placement::Append {
                fill: 0,
                resynced: true
            }
        );
        // 10 s later by the wall clock, a 3 s gap is filled (budget 11 s)
        t.set_elapsed_ms(10_000);
        assert_eq!(put(&mut t, 16_000, 303, 0), append(150 * 320));
        // a shrinking report does not take budget back
        t.set_elapsed_ms(0);
        assert_eq!(put(&mut t, 16_000, 454, 0), append(150 * 320));
        // 11 s budget, 6 s used: a 6 s gap is an outlier, a 4 s one is filled
        assert_eq!(put(&mut t, 16_000, 755, 0), Placement::Outlier);
        assert_eq!(put(&mut t, 16_000, 656, 0), append(200 * 320));
        let s = t.stats();
        assert_eq!((s.outliers, s.resyncs, s.gaps), (2, 1, 3));
        assert!(s.filled_samples <= 11 * 16_000);
    }

    #[test]
    fn mixed_scenario_stats_exact() {
        let rate = 16_000;
        let mut t = tl(rate);
        let mut placements = Vec::new();
        // 0 1 2 2(dup) 5 3(late) 6 7(+8ms) 7(dup) 8 11
        for (k, j) in [
            (0, 0),
            (1, 0),
            (2, 0),
            (2, 0),
            (5, 0),
            (3, 0),
            (6, 0),
            (7, 8),
            (7, 0),
            (8, 0),
            (11, 0),
        ] {
            placements.push(put(&mut t, rate, k, j));
        }
        assert_eq!(
            placements,
            vec![
                append(0),
                append(0),
                append(0),
                Placement::Duplicate,
                append(640),
                Placement::Late,
                append(0),
                append(0),
                Placement::Duplicate,
                append(0),
                append(640),
            ]
        );
        assert_eq!(
            t.stats(),
            TimelineStats {
                frames: 8,
                gaps: 2,
                filled_samples: 1280,
                late: 1,
                duplicates: 2,
                resyncs: 0,
                outliers: 0
            }
        );
        assert_eq!(t.position(), 12 * 320);
    }
}
