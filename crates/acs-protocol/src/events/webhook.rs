//! Event errors, the Event Grid and CloudEvents envelopes and the incoming-call webhook:
//! [`parse_webhook_events`].

#[allow(unused_imports)]
use super::*;

/// Why a webhook body was refused. Messages are bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The body (or element `index` of the array) is not a JSON object.
    #[error("event {index} is not an object")]
    NotAnEvent {
        /// Position in the delivered array (0 for a single object).
        index: usize,
    },
    /// Element `index` lacks a required envelope field or has one of the wrong type.
    #[error("event {index}: invalid envelope: {message}")]
    InvalidEnvelope {
        /// Position in the delivered array.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Element `index`'s `data` does not fit its event type.
    #[error("event {index} ({event_type}): invalid data: {message}")]
    InvalidData {
        /// Position in the delivered array.
        index: usize,
        /// The event's type.
        event_type: String,
        /// What is wrong.
        message: String,
    },
}

impl EventError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            EventError::Json(_) => "malformed_json",
            EventError::NotAnEvent { .. } => "not_an_event",
            EventError::InvalidEnvelope { .. } => "invalid_envelope",
            EventError::InvalidData { .. } => "invalid_data",
        }
    }
}

/// `e.to_string()` cut to [`MAX_ERROR_MESSAGE_LEN`] bytes on a char boundary.
pub(super) fn bounded(e: impl fmt::Display) -> String {
    let mut s = e.to_string();
    if s.len() > MAX_ERROR_MESSAGE_LEN {
        let mut cut = MAX_ERROR_MESSAGE_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The body as a list of JSON values: an array, or one object.
pub(super) fn elements(body: &[u8]) -> Result<Vec<Value>, EventError> {
    match serde_json::from_slice::<Value>(body).map_err(|e| EventError::Json(bounded(e)))? {
        Value::Array(items) => Ok(items),
        obj @ Value::Object(_) => Ok(vec![obj]),
        _ => Err(EventError::NotAnEvent { index: 0 }),
    }
}

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

/// An Event Grid schema event (`[{id, topic, subject, data, eventType, eventTime, dataVersion,
/// metadataVersion}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventGridEvent {
    /// Unique event id (dedupe key; delivery is at-least-once).
    pub id: String,
    /// Full resource path of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Publisher-defined subject (`/caller/{caller}/recipient/{recipient}` for IncomingCall).
    #[serde(default)]
    pub subject: String,
    /// Event payload.
    #[serde(default)]
    pub data: Value,
    /// Event type, e.g. [`EVENT_TYPE_INCOMING_CALL`].
    pub event_type: String,
    /// When the event was generated (ISO 8601).
    #[serde(default)]
    pub event_time: String,
    /// Schema version of `data`.
    #[serde(default)]
    pub data_version: String,
    /// Schema version of the envelope (`"1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<String>,
}

impl EventGridEvent {
    /// An IncomingCall event as ACS publishes it (subject
    /// `/caller/{from rawId}/recipient/{to rawId}`, `dataVersion` `1.0`, `metadataVersion` `1`).
    pub fn incoming_call(
        id: impl Into<String>,
        topic: impl Into<String>,
        event_time: impl Into<String>,
        data: &IncomingCallEventData,
    ) -> Self {
        EventGridEvent {
            id: id.into(),
            topic: Some(topic.into()),
            subject: data.subject(),
            data: serde_json::to_value(data).expect("IncomingCallEventData serializes"),
            event_type: EVENT_TYPE_INCOMING_CALL.to_owned(),
            event_time: event_time.into(),
            data_version: "1.0".to_owned(),
            metadata_version: Some("1".to_owned()),
        }
    }

    /// A subscription validation event as Event Grid sends it.
    pub fn subscription_validation(
        id: impl Into<String>,
        topic: impl Into<String>,
        event_time: impl Into<String>,
        data: &SubscriptionValidationEventData,
    ) -> Self {
        EventGridEvent {
            id: id.into(),
            topic: Some(topic.into()),
            subject: String::new(),
            data: serde_json::to_value(data).expect("validation data serializes"),
            event_type: EVENT_TYPE_SUBSCRIPTION_VALIDATION.to_owned(),
            event_time: event_time.into(),
            data_version: "1".to_owned(),
            metadata_version: Some("1".to_owned()),
        }
    }
}

/// A CloudEvents 1.0 event (structured JSON mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Unique event id.
    pub id: String,
    /// Event source (`calling/callConnections/{id}` for callbacks).
    #[serde(default)]
    pub source: String,
    /// Event type, e.g. `Microsoft.Communication.CallConnected`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Event payload.
    #[serde(default)]
    pub data: Value,
    /// When the event happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// CloudEvents version (`1.0`).
    #[serde(default = "spec_version")]
    pub specversion: String,
    /// Content type of `data` (`application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

pub(super) fn spec_version() -> String {
    "1.0".to_owned()
}

impl CloudEvent {
    /// An IncomingCall event in the CloudEvents schema.
    pub fn incoming_call(
        id: impl Into<String>,
        source: impl Into<String>,
        time: impl Into<String>,
        data: &IncomingCallEventData,
    ) -> Self {
        CloudEvent {
            id: id.into(),
            source: source.into(),
            event_type: EVENT_TYPE_INCOMING_CALL.to_owned(),
            data: serde_json::to_value(data).expect("IncomingCallEventData serializes"),
            time: Some(time.into()),
            specversion: spec_version(),
            datacontenttype: Some("application/json".to_owned()),
            subject: Some(data.subject()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Incoming-call webhook
// ---------------------------------------------------------------------------------------------

/// `data` of [`EVENT_TYPE_SUBSCRIPTION_VALIDATION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionValidationEventData {
    /// Echo this in [`SubscriptionValidationResponse`].
    pub validation_code: String,
    /// Alternative manual validation URL (GET within 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_url: Option<String>,
}

impl SubscriptionValidationEventData {
    /// The HTTP 200 body that completes the validation handshake.
    pub fn response(&self) -> SubscriptionValidationResponse {
        SubscriptionValidationResponse {
            validation_response: self.validation_code.clone(),
        }
    }
}

/// `{"validationResponse": "<validationCode>"}`, sent with HTTP 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionValidationResponse {
    /// The validation code.
    pub validation_response: String,
}

/// `data` of `Microsoft.Communication.IncomingCall` (§7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingCallEventData {
    /// The callee (a Teams resource account arrives as `28:orgid:…`, sometimes with
    /// `kind: unknown`; [`CommunicationIdentifierModel::to_identifier`] handles both).
    pub to: CommunicationIdentifierModel,
    /// The caller.
    pub from: CommunicationIdentifierModel,
    /// Server call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// Caller display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_display_name: Option<String>,
    /// Custom SIP / VoIP headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_context: Option<CustomCallingContext>,
    /// Opaque; pass to answer / reject / redirect (required).
    pub incoming_call_context: String,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The callee a call was placed on behalf of (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of_callee: Option<CommunicationIdentifierModel>,
}

impl IncomingCallEventData {
    /// `/caller/{from rawId}/recipient/{to rawId}`.
    pub fn subject(&self) -> String {
        format!(
            "/caller/{}/recipient/{}",
            self.from.raw_id(),
            self.to.raw_id()
        )
    }
}

/// Which schema an event arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSchema {
    /// Event Grid schema.
    EventGrid,
    /// CloudEvents 1.0.
    CloudEvents,
}

/// What a webhook event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookPayload {
    /// Event Grid subscription validation: answer 200 with `data.response()`.
    SubscriptionValidation(SubscriptionValidationEventData),
    /// An incoming call.
    IncomingCall(Box<IncomingCallEventData>),
    /// Any other event type; its `data` as JSON.
    Other(Value),
}

/// One event from the incoming-call webhook, either schema.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// The schema it arrived in.
    pub schema: EventSchema,
    /// Event id (dedupe key).
    pub id: String,
    /// Event type as sent.
    pub event_type: String,
    /// Subject (empty string in the validation event).
    pub subject: Option<String>,
    /// `eventTime` / `time`.
    pub time: Option<String>,
    /// The typed payload.
    pub payload: WebhookPayload,
}

/// Parses an Event Grid delivery: an array (or a single object) of Event Grid schema events or
/// CloudEvents (an object with `specversion` is a CloudEvent). Validation and IncomingCall data
/// are typed; a delivery with any invalid element is refused as a whole.
pub fn parse_webhook_events(body: &[u8]) -> Result<Vec<WebhookEvent>, EventError> {
    elements(body)?
        .into_iter()
        .enumerate()
        .map(|(index, item)| webhook_event(index, item))
        .collect()
}

pub(super) fn webhook_event(index: usize, item: Value) -> Result<WebhookEvent, EventError> {
    let Value::Object(obj) = &item else {
        return Err(EventError::NotAnEvent { index });
    };
    let envelope = |e: serde_json::Error| EventError::InvalidEnvelope {
        index,
        message: bounded(e),
    };
    let (schema, id, event_type, subject, time, data) = if obj.contains_key("specversion") {
        let e: CloudEvent = serde_json::from_value(item).map_err(envelope)?;
        (
            EventSchema::CloudEvents,
            e.id,
            e.event_type,
            e.subject,
            e.time,
            e.data,
        )
    } else {
        let e: EventGridEvent = serde_json::from_value(item).map_err(envelope)?;
        let time = (!e.event_time.is_empty()).then_some(e.event_time);
        (
            EventSchema::EventGrid,
            e.id,
            e.event_type,
            Some(e.subject),
            time,
            e.data,
        )
    };
    let invalid = |e: serde_json::Error| EventError::InvalidData {
        index,
        event_type: bounded(&event_type),
        message: bounded(e),
    };
    let payload = if event_type.eq_ignore_ascii_case(EVENT_TYPE_SUBSCRIPTION_VALIDATION) {
        WebhookPayload::SubscriptionValidation(serde_json::from_value(data).map_err(invalid)?)
    } else if event_type.eq_ignore_ascii_case(EVENT_TYPE_INCOMING_CALL) {
        WebhookPayload::IncomingCall(Box::new(serde_json::from_value(data).map_err(invalid)?))
    } else {
        WebhookPayload::Other(data)
    };
    Ok(WebhookEvent {
        schema,
        id,
        event_type,
        subject,
        time,
        payload,
    })
}
