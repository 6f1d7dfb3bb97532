//! Cluster-mode metrics (`[cluster] nats_url` set): shared-state requests to NATS JetStream,
//! compare-and-set retries, and media operations that could not be routed to the replica holding
//! the call's media socket. Exported at zero in single-process mode.

use super::labels::{
    CLUSTER_OPS, CLUSTER_OUTCOMES, CLUSTER_ROUTING_FAILURES, CLUSTER_UNREACHABLE_ENDPOINTS,
};
use super::register::Reg;
use prometheus::{IntCounter, IntCounterVec, IntGauge};

/// Cluster metrics.
#[derive(Debug)]
pub struct ClusterMetrics {
    requests: IntCounterVec,
    /// Compare-and-set updates of a call record retried after a concurrent change.
    pub cas_retries: IntCounter,
    routing_failures: IntCounterVec,
    nats_unreachable: IntCounterVec,
    /// Replicas whose heartbeat this replica saw last (itself included).
    pub replicas: IntGauge,
}

impl ClusterMetrics {
    /// Registers every cluster metric, each label value at zero.
    pub(super) fn new(r: &Reg<'_>) -> Self {
        let requests = r.counter_vec(
            "cluster_requests_total",
            "Cluster shared-state and routing requests to NATS, by operation and outcome.",
            &["op", "outcome"],
        );
        for op in CLUSTER_OPS {
            for o in CLUSTER_OUTCOMES {
                requests.with_label_values(&[op, o]);
            }
        }
        let routing_failures = r.counter_vec(
            "cluster_routing_failures_total",
            "Media operations not delivered to the replica holding the call's media socket, by \
             reason (replica gone: 503, timeout: 504, error).",
            &["reason"],
        );
        for reason in CLUSTER_ROUTING_FAILURES {
            routing_failures.with_label_values(&[reason]);
        }
        let nats_unreachable = r.counter_vec(
            "cluster_nats_unreachable_total",
            "Requests answered 503 nats_unreachable because the shared call state on NATS \
             JetStream could not be read or written, by endpoint.",
            &["endpoint"],
        );
        for e in CLUSTER_UNREACHABLE_ENDPOINTS {
            nats_unreachable.with_label_values(&[e]);
        }
        Self {
            requests,
            nats_unreachable,
            cas_retries: r.counter(
                "cluster_cas_retries_total",
                "Call-record updates retried because another replica changed the record first \
                 (compare-and-set on the JetStream key-value revision).",
            ),
            routing_failures,
            replicas: r.gauge(
                "cluster_replicas",
                "Replicas with a live heartbeat in the cluster bucket (0 in single-process mode).",
            ),
        }
    }

    /// Counts one request; `op` and `outcome` from the closed sets in `labels`.
    pub fn request(&self, op: &str, outcome: &str) {
        let op = if CLUSTER_OPS.contains(&op) {
            op
        } else {
            "other"
        };
        let outcome = if CLUSTER_OUTCOMES.contains(&outcome) {
            outcome
        } else {
            "error"
        };
        self.requests.with_label_values(&[op, outcome]).inc();
    }

    /// Counts a request answered 503 `nats_unreachable` (`endpoint`: incoming_call, callbacks,
    /// operator).
    pub fn nats_unreachable(&self, endpoint: &str) {
        let e = if CLUSTER_UNREACHABLE_ENDPOINTS.contains(&endpoint) {
            endpoint
        } else {
            "operator"
        };
        self.nats_unreachable.with_label_values(&[e]).inc();
    }

    /// Requests answered 503 `nats_unreachable` on `endpoint`.
    pub fn nats_unreachable_count(&self, endpoint: &str) -> u64 {
        self.nats_unreachable.with_label_values(&[endpoint]).get()
    }

    /// Requests counted with `op` and `outcome`.
    pub fn request_count(&self, op: &str, outcome: &str) -> u64 {
        self.requests.with_label_values(&[op, outcome]).get()
    }

    /// Counts a media operation that could not be routed.
    pub fn routing_failed(&self, reason: &str) {
        let reason = if CLUSTER_ROUTING_FAILURES.contains(&reason) {
            reason
        } else {
            "error"
        };
        self.routing_failures.with_label_values(&[reason]).inc();
    }
}
