//! EDGE: an Event Grid emulator for the gateway's incoming-call webhook (docs/PROTOCOL.md §3.3, §7).
//!
//! * [`validate_subscription`]: the handshake Event Grid does when a subscription is created —
//!   Event Grid schema: a POST of a `Microsoft.EventGrid.SubscriptionValidationEvent` with
//!   `aeg-event-type: SubscriptionValidation`, expecting 200 `{"validationResponse": code}`;
//!   CloudEvents: an `OPTIONS` with `WebHook-Request-Origin`, expecting 200 and
//!   `WebHook-Allowed-Origin` echoing it (or `*`).
//! * [`deliver_incoming_call`] / [`deliver`]: a `Microsoft.Communication.IncomingCall` (Event Grid
//!   schema: a one-element array; CloudEvents: one structured-mode event) with Event Grid's
//!   headers (`aeg-event-type: Notification`, `aeg-subscription-name`, `aeg-delivery-count`,
//!   `aeg-data-version`, `aeg-metadata-version`), retried like Event Grid: success is 200–204;
//!   400 and 413 are not retried (Event Grid dead-letters them); any other status, a connection
//!   error or no answer within [`EventGridTarget::attempt_timeout`] is retried after each of
//!   [`EventGridTarget::retry_delays`] in turn (Event Grid's own schedule is 10 s, 30 s, 1 min,
//!   5 min, … up to 24 h; the default here is 1 s, 2 s, 5 s so a run stays short). After a
//!   success, `duplicates` more deliveries of the same event (same `id`) follow — Event Grid is
//!   at-least-once.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::SimError;
use super::ids::SimRng;
use acs_protocol::events::{
    CloudEvent, EventGridEvent, IncomingCallEventData, SubscriptionValidationEventData,
    SubscriptionValidationResponse, HEADER_AEG_EVENT_TYPE, HEADER_WEBHOOK_ALLOWED_ORIGIN,
    HEADER_WEBHOOK_REQUEST_ORIGIN,
};

/// The `WebHook-Request-Origin` Event Grid sends in the CloudEvents handshake.
pub const WEBHOOK_ORIGIN: &str = "eventgrid.azure.net";
/// Longest response body read from the webhook.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The delivery schema of the event subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// Event Grid schema (a JSON array of events).
    EventGrid,
    /// CloudEvents 1.0 (structured mode, one event per request).
    CloudEvents,
}

/// Where and how events are delivered.
#[derive(Debug, Clone)]
pub struct EventGridTarget {
    /// The webhook URL (with `?secret=…` or whatever the endpoint expects).
    pub url: String,
    /// Delivery schema.
    pub schema: Schema,
    /// How long one attempt may take (Event Grid waits 30 s).
    pub attempt_timeout: Duration,
    /// Delay before each retry; the number of entries bounds the retries.
    pub retry_delays: Vec<Duration>,
    /// `aeg-subscription-name`.
    pub subscription_name: String,
    /// Extra request headers (e.g. a secret header the endpoint checks).
    pub extra_headers: Vec<(String, String)>,
}

impl EventGridTarget {
    /// Event Grid schema, 30 s attempts, retries after 1 s, 2 s and 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        EventGridTarget {
            url: url.into(),
            schema: Schema::EventGrid,
            attempt_timeout: Duration::from_secs(30),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
            subscription_name: "ACS-SIM-INCOMING-CALL".to_owned(),
            extra_headers: Vec::new(),
        }
    }
}

/// How a validation handshake went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandshakeReport {
    /// The schema whose handshake ran.
    pub schema: Schema,
    /// The endpoint answered as Event Grid requires.
    pub ok: bool,
    /// Its status (`None`: no response).
    pub status: Option<u16>,
    /// What was checked, or what was wrong.
    pub detail: String,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// `aeg-delivery-count` of the attempt (0 for the first).
    pub delivery_count: u32,
    /// A duplicate delivery after a success.
    pub duplicate: bool,
    /// The status (`None`: connection error or timeout).
    pub status: Option<u16>,
    /// The error, when there was no status.
    pub error: Option<String>,
    /// How long the attempt took.
    pub elapsed_ms: f64,
}

/// What delivering one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    /// The event `id`.
    pub event_id: String,
    /// Every attempt in order (retries and duplicates included).
    pub attempts: Vec<Attempt>,
    /// An attempt succeeded (200–204).
    pub delivered: bool,
    /// Refused with 400 or 413 (Event Grid would dead-letter it, not retry).
    pub dead_lettered: bool,
}

fn client(timeout: Duration) -> Result<reqwest::Client, SimError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| SimError::Http {
            url: String::new(),
            reason: e.to_string(),
        })
}

fn check_url(url: &str) -> Result<(), SimError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(_) => Err(SimError::Url {
            url: url.to_owned(),
            reason: "must be http(s)://".into(),
        }),
        Err(e) => Err(SimError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
    }
}

fn event_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Runs the validation handshake of `target.schema`.
pub async fn validate_subscription(target: &EventGridTarget) -> Result<HandshakeReport, SimError> {
    check_url(&target.url)?;
    let http = client(target.attempt_timeout)?;
    match target.schema {
        Schema::EventGrid => {
            let mut rng = SimRng::from_entropy();
            let code = rng.uuid_like();
            let data = SubscriptionValidationEventData {
                validation_code: code.clone(),
                validation_url: Some(format!(
                    "https://eventgrid.invalid/eventsubscriptions/{}/validate?id={code}",
                    target.subscription_name
                )),
            };
            let event = EventGridEvent::subscription_validation(
                rng.uuid_like(),
                "/subscriptions/acs-sim",
                event_time(),
                &data,
            );
            let body = serde_json::to_vec(&vec![event])?;
            let mut req = http
                .post(&target.url)
                .header("content-type", "application/json")
                .header(HEADER_AEG_EVENT_TYPE, "SubscriptionValidation")
                .header("aeg-subscription-name", &target.subscription_name)
                .header("aeg-delivery-count", "0")
                .header("aeg-data-version", "1")
                .header("aeg-metadata-version", "1");
            for (k, v) in &target.extra_headers {
                req = req.header(k, v);
            }
            let resp = match req.body(body).send().await {
                Ok(r) => r,
                Err(e) => return Ok(handshake_fail(Schema::EventGrid, None, e.to_string())),
            };
            let status = resp.status().as_u16();
            let bytes = read_limited(resp).await;
            if status != 200 {
                return Ok(handshake_fail(
                    Schema::EventGrid,
                    Some(status),
                    format!("expected 200, got {status}"),
                ));
            }
            match serde_json::from_slice::<SubscriptionValidationResponse>(&bytes) {
                Ok(r) if r.validation_response == code => Ok(HandshakeReport {
                    schema: Schema::EventGrid,
                    ok: true,
                    status: Some(status),
                    detail: "validationResponse echoes the validationCode".into(),
                }),
                Ok(r) => Ok(handshake_fail(
                    Schema::EventGrid,
                    Some(status),
                    format!(
                        "validationResponse {:?} is not the code {code:?}",
                        r.validation_response
                    ),
                )),
                Err(e) => Ok(handshake_fail(
                    Schema::EventGrid,
                    Some(status),
                    format!("body is not {{\"validationResponse\": …}}: {e}"),
                )),
            }
        }
        Schema::CloudEvents => {
            let mut req = http
                .request(reqwest::Method::OPTIONS, &target.url)
                .header(HEADER_WEBHOOK_REQUEST_ORIGIN, WEBHOOK_ORIGIN)
                .header("WebHook-Request-Rate", "120");
            for (k, v) in &target.extra_headers {
                req = req.header(k, v);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return Ok(handshake_fail(Schema::CloudEvents, None, e.to_string())),
            };
            let status = resp.status().as_u16();
            let allowed = resp
                .headers()
                .get(HEADER_WEBHOOK_ALLOWED_ORIGIN)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let ok = status == 200
                && allowed
                    .as_deref()
                    .is_some_and(|a| a == "*" || a.eq_ignore_ascii_case(WEBHOOK_ORIGIN));
            Ok(HandshakeReport {
                schema: Schema::CloudEvents,
                ok,
                status: Some(status),
                detail: match (&allowed, ok) {
                    (_, true) => "WebHook-Allowed-Origin echoes the origin".into(),
                    (Some(a), false) => format!("status {status}, WebHook-Allowed-Origin {a:?}"),
                    (None, false) => format!("status {status}, no WebHook-Allowed-Origin"),
                },
            })
        }
    }
}

fn handshake_fail(schema: Schema, status: Option<u16>, detail: String) -> HandshakeReport {
    HandshakeReport {
        schema,
        ok: false,
        status,
        detail,
    }
}

async fn read_limited(resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    out
}

/// The body (and content type) of an IncomingCall delivery with event id `id`.
pub fn incoming_call_body(
    schema: Schema,
    id: &str,
    topic: &str,
    data: &IncomingCallEventData,
) -> Result<(Vec<u8>, &'static str), SimError> {
    Ok(match schema {
        Schema::EventGrid => (
            serde_json::to_vec(&vec![EventGridEvent::incoming_call(
                id,
                topic,
                event_time(),
                data,
            )])?,
            "application/json",
        ),
        Schema::CloudEvents => (
            serde_json::to_vec(&CloudEvent::incoming_call(id, topic, event_time(), data))?,
            "application/cloudevents+json; charset=utf-8",
        ),
    })
}

/// Delivers an IncomingCall for `data` (a fresh event id; `topic` is the ACS resource path),
/// then `duplicates` more copies of the same event.
pub async fn deliver_incoming_call(
    target: &EventGridTarget,
    topic: &str,
    data: &IncomingCallEventData,
    duplicates: u32,
) -> Result<DeliveryReport, SimError> {
    let id = SimRng::from_entropy().uuid_like();
    let (body, content_type) = incoming_call_body(target.schema, &id, topic, data)?;
    deliver(target, &id, body, content_type, duplicates).await
}

/// Delivers `body` (event `event_id`) with Event Grid's headers and retries, then `duplicates`
/// more times after a success.
pub async fn deliver(
    target: &EventGridTarget,
    event_id: &str,
    body: Vec<u8>,
    content_type: &str,
    duplicates: u32,
) -> Result<DeliveryReport, SimError> {
    check_url(&target.url)?;
    let http = client(target.attempt_timeout)?;
    let mut report = DeliveryReport {
        event_id: event_id.to_owned(),
        attempts: Vec::new(),
        delivered: false,
        dead_lettered: false,
    };
    let mut count = 0u32;
    let mut retries = target.retry_delays.iter();
    loop {
        let a = attempt(&http, target, &body, content_type, count, false).await;
        count += 1;
        let status = a.status;
        report.attempts.push(a);
        match status {
            Some(200..=204) => {
                report.delivered = true;
                break;
            }
            Some(400 | 413) => {
                report.dead_lettered = true;
                return Ok(report);
            }
            _ => match retries.next() {
                Some(d) => tokio::time::sleep(*d).await,
                None => return Ok(report),
            },
        }
    }
    for _ in 0..duplicates {
        let a = attempt(&http, target, &body, content_type, count, true).await;
        count += 1;
        report.attempts.push(a);
    }
    Ok(report)
}

async fn attempt(
    http: &reqwest::Client,
    target: &EventGridTarget,
    body: &[u8],
    content_type: &str,
    delivery_count: u32,
    duplicate: bool,
) -> Attempt {
    let t0 = Instant::now();
    let mut req = http
        .post(&target.url)
        .header("content-type", content_type)
        .header(HEADER_AEG_EVENT_TYPE, "Notification")
        .header("aeg-subscription-name", &target.subscription_name)
        .header("aeg-delivery-count", delivery_count.to_string())
        .header("aeg-data-version", "1.0")
        .header("aeg-metadata-version", "1");
    for (k, v) in &target.extra_headers {
        req = req.header(k, v);
    }
    let result = req.body(body.to_vec()).send().await;
    let (status, error) = match result {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = read_limited(r).await;
            (Some(s), None)
        }
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                format!("no response within {:?}", target.attempt_timeout)
            } else {
                e.to_string()
            }),
        ),
    };
    Attempt {
        delivery_count,
        duplicate,
        status,
        error,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
    }
}
