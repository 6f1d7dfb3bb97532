//! Overload protection: measures the gateway's headroom and sheds new media upgrades (HTTP 503
//! with `Retry-After`, counted `rejected{reason="overload"}`) while it is gone, so the calls
//! already admitted stay lossless past capacity instead of every call degrading together.
//!
//! Two signals, sampled every [`SAMPLE_EVERY`] by [`monitor`]:
//! - **runtime lag**: how late a timer on the runtime fires, sustained: the [`SUSTAINED`]-th
//!   worst of the last [`WINDOW`] samples, so one stall (a page fault, a noisy neighbour) does not
//!   shed. A saturated runtime serves every socket late; real-time frames pile up.
//! - **sink queue fill**: the fullest sink queue as a fraction of its audio capacity. A sink that
//!   cannot keep up drops audio once it reaches 1.
//!
//! Shedding starts when either signal passes its threshold and stops once both have stayed below
//! half of it for [`CLEAR_AFTER`] (hysteresis, so admission does not flap).

use crate::metrics::Metrics;
use crate::pipeline::FanOut;
use crate::shutdown::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the monitor samples.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Samples the lag is judged over.
pub(crate) const WINDOW: usize = 20;
/// The lag that counts is the this-many-th worst of the window.
pub(crate) const SUSTAINED: usize = 5;
/// How long both signals must stay below half their thresholds before admission resumes.
pub(crate) const CLEAR_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` (seconds) sent with an overload 503.
pub(crate) const RETRY_AFTER_SECS: u32 = 2;

/// Thresholds (0 turns a check off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadroomConfig {
    /// Runtime lag past which upgrades are shed.
    pub shed_lag: Duration,
    /// Sink queue fill (fraction of audio capacity) past which upgrades are shed.
    pub shed_queue_fill: f64,
}

impl HeadroomConfig {
    /// Both checks off.
    pub const OFF: HeadroomConfig = HeadroomConfig {
        shed_lag: Duration::ZERO,
        shed_queue_fill: 0.0,
    };
}

/// The shared verdict: is there room for another call?
#[derive(Debug, Default)]
pub struct Headroom {
    overloaded: AtomicBool,
}

impl Headroom {
    /// A verdict that admits until the monitor says otherwise.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// True while new media upgrades must be shed.
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    fn set(&self, m: &Metrics, over: bool) {
        if self.overloaded.swap(over, Ordering::Relaxed) != over {
            m.overloaded.set(i64::from(over));
            if over {
                tracing::warn!(
                    "no headroom: new media connections are refused with 503 until it returns"
                );
            } else {
                tracing::info!("headroom is back: admitting media connections again");
            }
        }
    }
}

/// The pure decision, fed one sample at a time (kept apart from the timer for tests).
#[derive(Debug)]
pub(crate) struct Judge {
    cfg: HeadroomConfig,
    lags: [Duration; WINDOW],
    next: usize,
    over: bool,
    calm_since: Option<Instant>,
}

impl Judge {
    /// A judge with no samples yet (not overloaded).
    pub(crate) fn new(cfg: HeadroomConfig) -> Self {
        Self {
            cfg,
            lags: [Duration::ZERO; WINDOW],
            next: 0,
            over: false,
            calm_since: None,
        }
    }

    /// The sustained lag: the [`SUSTAINED`]-th worst of the window.
    pub(crate) fn lag(&self) -> Duration {
        let mut l = self.lags;
        l.sort_unstable();
        l[WINDOW - SUSTAINED]
    }

    /// Takes one sample (`lag` of the timer, worst sink `fill`) at `now`; returns the verdict.
    pub(crate) fn sample(&mut self, now: Instant, lag: Duration, fill: f64) -> bool {
        self.lags[self.next] = lag;
        self.next = (self.next + 1) % WINDOW;
        let worst = self.lag();
        let lag_on = !self.cfg.shed_lag.is_zero();
        let fill_on = self.cfg.shed_queue_fill > 0.0;
        let hot =
            (lag_on && worst > self.cfg.shed_lag) || (fill_on && fill > self.cfg.shed_queue_fill);
        let calm = (!lag_on || worst <= self.cfg.shed_lag / 2)
            && (!fill_on || fill <= self.cfg.shed_queue_fill / 2.0);
        if hot {
            self.over = true;
            self.calm_since = None;
        } else if self.over {
            if calm {
                let since = *self.calm_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= CLEAR_AFTER {
                    self.over = false;
                    self.calm_since = None;
                }
            } else {
                self.calm_since = None;
            }
        }
        self.over
    }
}

/// Samples the headroom until draining starts (a task on the runtime it measures).
pub(crate) async fn monitor(
    headroom: Arc<Headroom>,
    cfg: HeadroomConfig,
    fanout: FanOut,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) {
    if cfg == HeadroomConfig::OFF {
        return;
    }
    let mut judge = Judge::new(cfg);
    let drain = shutdown.draining();
    tokio::pin!(drain);
    let mut due = Instant::now() + SAMPLE_EVERY;
    loop {
        tokio::select! {
            biased;
            _ = &mut drain => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        let now = Instant::now();
        let lag = now.saturating_duration_since(due);
        let fill = fanout
            .sinks()
            .iter()
            .map(|s| s.fill())
            .fold(0.0f64, f64::max);
        let over = judge.sample(now, lag, fill);
        metrics
            .runtime_lag_us
            .set(judge.lag().as_micros().min(i64::MAX as u128) as i64);
        headroom.set(&metrics, over);
        due = now + SAMPLE_EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HeadroomConfig {
        HeadroomConfig {
            shed_lag: Duration::from_millis(20),
            shed_queue_fill: 0.5,
        }
    }

    #[test]
    fn lag_or_fill_past_the_threshold_sheds_and_calm_for_a_second_admits_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut j = Judge::new(cfg());
        let mut t = t0;
        let mut tick = || {
            t += ms(50);
            t
        };
        assert!(!j.sample(tick(), ms(2), 0.1), "healthy");
        assert!(!j.sample(tick(), ms(300), 0.1), "one stall is not overload");
        for _ in 1..SUSTAINED - 1 {
            assert!(!j.sample(tick(), ms(30), 0.1), "nor a few");
        }
        assert!(j.sample(tick(), ms(30), 0.1), "sustained lag past 20 ms");
        // the window remembers the lag until the late samples leave it
        for i in 0..WINDOW - SUSTAINED {
            assert!(j.sample(tick(), ms(1), 0.0), "sample {i}");
        }
        // calm from here on: still shedding until CLEAR_AFTER has passed
        let calm_start = tick();
        assert!(j.sample(calm_start, ms(1), 0.0));
        assert!(j.sample(calm_start + ms(900), ms(1), 0.0));
        assert!(!j.sample(calm_start + ms(1500), ms(1), 0.0), "admits again");

        let mut j = Judge::new(cfg());
        assert!(j.sample(t0, ms(1), 0.6), "queue past half full");
        assert!(
            j.sample(t0 + ms(1100), ms(1), 0.3),
            "0.3 is not calm (> 0.25)"
        );
        assert!(j.sample(t0 + ms(1200), ms(1), 0.2));
        assert!(!j.sample(t0 + ms(2200), ms(1), 0.2));
    }

    #[test]
    fn checks_turned_off_never_shed() {
        let t0 = Instant::now();
        let mut j = Judge::new(HeadroomConfig::OFF);
        assert!(!j.sample(t0, Duration::from_secs(5), 1.0));
        let mut j = Judge::new(HeadroomConfig {
            shed_lag: Duration::ZERO,
            shed_queue_fill: 0.5,
        });
        assert!(!j.sample(t0, Duration::from_secs(5), 0.1), "lag check off");
        assert!(j.sample(t0, Duration::ZERO, 0.9));
    }
}
