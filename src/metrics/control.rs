//! Control-plane metrics: the Event Grid webhook, answering, the ACS REST client, callbacks, the
//! call registry and authentication refusals.

use super::labels::{AUTH_REJECT_REASONS, INCOMING_CALL_OUTCOMES};
use super::register::Reg;
use crate::protocol::events::CallbackKind;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

/// Control-plane metrics (Event Grid webhook, answer, ACS REST client, callbacks, call registry,
/// authentication). Label values come from closed sets; nothing carries a call id.
#[derive(Debug)]
pub struct ControlMetrics {
    incoming: Vec<IntCounter>,
    /// Webhook received → ACS answered (answered calls only).
    pub answer_latency: Histogram,
    acs_requests: IntCounterVec,
    callbacks: IntCounterVec,
    auth: Vec<IntCounter>,
    /// Calls in the registry that have not ended.
    pub calls_active: IntGauge,
    bad_requests: IntCounterVec,
    jwks: IntCounterVec,
    jwks_limited: IntCounter,
}

impl ControlMetrics {
    /// Registers every control-plane metric.
    pub(super) fn new(r: &Reg<'_>) -> Self {
        let incoming_vec = r.counter_vec(
            "incoming_calls_total",
            "IncomingCall events, by outcome.",
            &["outcome"],
        );
        let auth_vec = r.counter_vec(
            "auth_rejections_total",
            "Requests refused for missing or invalid credentials (ACS JWT, call token, webhook \
             secret, operator API key), by reason.",
            &["reason"],
        );
        let answer_latency = r.histogram(
            "answer_latency_seconds",
            "Time from the IncomingCall webhook to ACS's answer response (answered calls).",
            vec![0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0],
        );
        let callbacks = r.counter_vec(
            "callbacks_total",
            "Call Automation callback events, by type (known event names, or unknown).",
            &["type"],
        );
        // every known type (and `unknown`) exported at zero, so rates and alerts see the series
        for kind in CallbackKind::KNOWN {
            callbacks.with_label_values(&[kind.name()]);
        }
        callbacks.with_label_values(&["unknown"]);
        ControlMetrics {
            incoming: INCOMING_CALL_OUTCOMES
                .iter()
                .map(|o| incoming_vec.with_label_values(&[o]))
                .collect(),
            answer_latency,
            acs_requests: r.counter_vec(
                "acs_requests_total",
                "ACS REST requests (each attempt), by operation and response status (code, class, \
                 timeout or transport).",
                &["operation", "status"],
            ),
            callbacks,
            auth: AUTH_REJECT_REASONS
                .iter()
                .map(|r| auth_vec.with_label_values(&[r]))
                .collect(),
            calls_active: r.gauge("calls_active", "Calls in the registry that have not ended."),
            bad_requests: r.counter_vec(
                "control_bad_requests_total",
                "Control-plane requests refused as malformed or invalid, by endpoint and reason.",
                &["endpoint", "reason"],
            ),
            jwks: r.counter_vec(
                "jwks_fetches_total",
                "Downloads of the ACS JWT signing keys (JWKS), by result.",
                &["result"],
            ),
            jwks_limited: r.counter(
                "jwks_refetches_limited_total",
                "Tokens with an unknown key id (or a stale key cache) the JWKS download limits \
                 allowed no download for.",
            ),
        }
    }

    /// Counts an IncomingCall outcome; `outcome` must be one of [`INCOMING_CALL_OUTCOMES`].
    pub fn incoming(&self, outcome: &str) {
        if let Some(i) = INCOMING_CALL_OUTCOMES.iter().position(|o| *o == outcome) {
            self.incoming[i].inc();
        }
    }

    /// The count for an IncomingCall outcome.
    pub fn incoming_count(&self, outcome: &str) -> u64 {
        INCOMING_CALL_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.incoming[i].get())
    }

    /// Counts one ACS REST request (one attempt) by operation label and response status.
    pub fn acs_request(&self, operation: &str, status: &str) {
        self.acs_requests
            .with_label_values(&[operation, status])
            .inc();
    }

    /// The count of ACS requests for an operation and status label.
    pub fn acs_request_count(&self, operation: &str, status: &str) -> u64 {
        self.acs_requests
            .with_label_values(&[operation, status])
            .get()
    }

    /// Counts one callback event; `kind` is a known callback name or `unknown`.
    pub fn callback(&self, kind: &str) {
        self.callbacks.with_label_values(&[kind]).inc();
    }

    /// The count of callbacks of a kind.
    pub fn callback_count(&self, kind: &str) -> u64 {
        self.callbacks.with_label_values(&[kind]).get()
    }

    /// Counts an authentication refusal; `reason` must be one of [`AUTH_REJECT_REASONS`].
    pub fn auth_rejected(&self, reason: &str) {
        if let Some(i) = AUTH_REJECT_REASONS.iter().position(|r| *r == reason) {
            self.auth[i].inc();
        }
    }

    /// The count of authentication refusals for `reason`.
    pub fn auth_rejection_count(&self, reason: &str) -> u64 {
        AUTH_REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.auth[i].get())
    }

    /// Counts a refused control-plane request (`endpoint` from
    /// [`super::CONTROL_ENDPOINTS`], `reason`
    /// a fixed snake_case word chosen by the handler).
    pub fn bad_request(&self, endpoint: &str, reason: &str) {
        self.bad_requests
            .with_label_values(&[endpoint, reason])
            .inc();
    }

    /// The count of refused control-plane requests.
    pub fn bad_request_count(&self, endpoint: &str, reason: &str) -> u64 {
        self.bad_requests
            .with_label_values(&[endpoint, reason])
            .get()
    }

    /// Counts a JWKS download (`ok` or `error`).
    pub fn jwks_fetch(&self, ok: bool) {
        self.jwks
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// The count of JWKS downloads with that result.
    pub fn jwks_fetch_count(&self, ok: bool) -> u64 {
        self.jwks
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .get()
    }

    /// Counts a key-cache miss the JWKS rate limits allowed no download for.
    pub fn jwks_refetch_limited(&self) {
        self.jwks_limited.inc();
    }

    /// The count of key-cache misses turned away by the JWKS rate limits.
    pub fn jwks_refetch_limited_count(&self) -> u64 {
        self.jwks_limited.get()
    }
}
