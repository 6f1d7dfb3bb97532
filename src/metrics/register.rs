//! Registration helpers: each builds one metric under the gateway's prefix and registers it in the
//! gateway's registry (a duplicate or invalid name is a programming error, so it panics at start).

use super::PREFIX;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The full metric name: `acs_gateway_<n>`.
pub(super) fn name(n: &str) -> String {
    format!("{PREFIX}_{n}")
}

/// Registers metrics named `acs_gateway_<n>` in one registry.
pub(super) struct Reg<'a>(pub(super) &'a Registry);

impl Reg<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        self.0.register(Box::new(c.clone())).expect("register");
        c
    }

    /// A counter without labels.
    pub(super) fn counter(&self, n: &str, help: &str) -> IntCounter {
        self.add(IntCounter::with_opts(Opts::new(name(n), help)).expect("metric opts"))
    }

    /// A gauge without labels.
    pub(super) fn gauge(&self, n: &str, help: &str) -> IntGauge {
        self.add(IntGauge::with_opts(Opts::new(name(n), help)).expect("metric opts"))
    }

    /// A counter with labels.
    pub(super) fn counter_vec(&self, n: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name(n), help), labels).expect("metric opts"))
    }

    /// A gauge with labels.
    pub(super) fn gauge_vec(&self, n: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name(n), help), labels).expect("metric opts"))
    }

    /// A histogram with these bucket bounds.
    pub(super) fn histogram(&self, n: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        self.add(
            Histogram::with_opts(HistogramOpts::new(name(n), help).buckets(buckets))
                .expect("histogram opts"),
        )
    }
}
