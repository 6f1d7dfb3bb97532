//! Rate limiting of repeated log lines: the first occurrence of each kind is logged, further
//! ones are only counted, and a summary (how many, over how long) is due every `every`. Reads no
//! clock: the caller hands in `now` as time since an origin of its choosing (the sink workers
//! count their flush ticks), so it is tested on a hand-driven clock.
//!
//! Used by the sink workers for sink errors: a sink that fails on every frame (the WAV sink
//! given frames of a stream it does not know, a full disk) used to log one line per frame —
//! thousands a minute — and now logs one line, then one summary per kind every 10 s.

use std::time::Duration;

/// How often the sink workers summarise repeated sink errors.
pub(crate) const SINK_ERROR_SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Most kinds tracked at once; occurrences of further kinds are logged as first ones.
const MAX_KINDS: usize = 16;

/// What to do with one occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first of its kind in the current window: log it.
    Log,
    /// A repeat: counted, summarised later.
    Suppressed,
}

/// A summary due for one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary<K> {
    /// The kind.
    pub kind: K,
    /// Occurrences not logged since the previous line of this kind.
    pub suppressed: u64,
    /// Over how long (from the window's start to `now`).
    pub over: Duration,
}

#[derive(Debug)]
struct Entry<K> {
    kind: K,
    since: Duration,
    suppressed: u64,
}

/// First occurrence logged, repeats counted and summarised every `every` (per kind).
#[derive(Debug)]
pub(crate) struct LogLimiter<K> {
    every: Duration,
    entries: Vec<Entry<K>>,
}

impl<K: Copy + PartialEq> LogLimiter<K> {
    /// A limiter summarising every `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            entries: Vec::new(),
        }
    }

    /// One occurrence of `kind` at `now`.
    pub(crate) fn hit(&mut self, kind: K, now: Duration) -> Verdict {
        if let Some(e) = self.entries.iter_mut().find(|e| e.kind == kind) {
            if e.suppressed == 0 && now.saturating_sub(e.since) >= self.every {
                // quiet for a whole window: this is a new first occurrence
                e.since = now;
                return Verdict::Log;
            }
            e.suppressed += 1;
            return Verdict::Suppressed;
        }
        if self.entries.len() < MAX_KINDS {
            self.entries.push(Entry {
                kind,
                since: now,
                suppressed: 0,
            });
        }
        Verdict::Log
    }

    /// Hands `report` the summary of each kind whose window has passed with repeats in it, and
    /// starts its next window; kinds quiet for a whole window are forgotten (their next
    /// occurrence is logged again).
    pub(crate) fn due(&mut self, now: Duration, mut report: impl FnMut(Summary<K>)) {
        let every = self.every;
        self.entries.retain_mut(|e| {
            let over = now.saturating_sub(e.since);
            if over < every {
                return true;
            }
            if e.suppressed == 0 {
                return false;
            }
            report(Summary {
                kind: e.kind,
                suppressed: e.suppressed,
                over,
            });
            e.since = now;
            e.suppressed = 0;
            true
        });
    }

    /// Hands `report` every pending summary regardless of the window (at shutdown) and forgets
    /// every kind.
    pub(crate) fn flush(&mut self, now: Duration, mut report: impl FnMut(Summary<K>)) {
        for e in self.entries.drain(..) {
            if e.suppressed > 0 {
                report(Summary {
                    kind: e.kind,
                    suppressed: e.suppressed,
                    over: now.saturating_sub(e.since),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn due(l: &mut LogLimiter<&'static str>, now: Duration) -> Vec<Summary<&'static str>> {
        let mut v = Vec::new();
        l.due(now, |x| v.push(x));
        v
    }

    #[test]
    fn first_is_logged_repeats_are_summarised_every_window() {
        let mut l = LogLimiter::new(s(10));
        assert_eq!(l.hit("unknown_stream", s(0)), Verdict::Log);
        // 3,493 more identical errors within the window: none logged on its own, no summary
        // before the window is over
        for i in 0..3_493u64 {
            let now = Duration::from_millis(i * 10_000 / 3_493);
            assert_eq!(l.hit("unknown_stream", now), Verdict::Suppressed, "{i}");
            if i % 500 == 0 {
                assert!(due(&mut l, now).is_empty(), "{i}");
            }
        }
        // summaries only when a window has passed, each with its own count
        assert!(due(&mut l, s(5)).is_empty());
        let d = due(&mut l, s(10));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, "unknown_stream");
        assert_eq!(d[0].suppressed, 3_493);
        assert_eq!(d[0].over, s(10));
        assert!(due(&mut l, s(15)).is_empty(), "next window starts at 10 s");
        assert_eq!(l.hit("unknown_stream", s(16)), Verdict::Suppressed);
        let d = due(&mut l, s(20));
        assert_eq!((d[0].suppressed, d[0].over), (1, s(10)));
        // a quiet window: forgotten, the next occurrence is logged again
        assert!(due(&mut l, s(30)).is_empty());
        assert_eq!(l.hit("unknown_stream", s(31)), Verdict::Log);
    }

    #[test]
    fn kinds_are_separate_and_flush_reports_what_is_pending() {
        let mut l = LogLimiter::new(s(10));
        assert_eq!(l.hit("io", s(0)), Verdict::Log);
        assert_eq!(l.hit("other", s(1)), Verdict::Log);
        assert_eq!(l.hit("io", s(2)), Verdict::Suppressed);
        assert_eq!(l.hit("io", s(3)), Verdict::Suppressed);
        // a kind logged once long ago and not repeated is logged again on its next occurrence
        assert_eq!(l.hit("other", s(12)), Verdict::Log);
        let mut v = Vec::new();
        l.flush(s(4), |x| v.push(x));
        assert_eq!(
            v,
            vec![Summary {
                kind: "io",
                suppressed: 2,
                over: s(4)
            }]
        );
        assert_eq!(l.hit("io", s(5)), Verdict::Log, "flush forgets");
    }

    #[test]
    fn more_kinds_than_tracked_are_logged_not_lost() {
        let mut l = LogLimiter::new(s(10));
        for k in 0..(MAX_KINDS as u32 + 4) {
            assert_eq!(l.hit(k, s(0)), Verdict::Log);
        }
        assert_eq!(l.hit(MAX_KINDS as u32 + 1, s(0)), Verdict::Log);
        assert_eq!(l.hit(0, s(0)), Verdict::Suppressed);
    }
}
