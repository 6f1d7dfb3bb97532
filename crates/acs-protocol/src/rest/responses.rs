//! Response bodies and the ACS error body ([`AcsError`]).

#[allow(unused_imports)]
use super::*;

/// `mediaStreamingSubscription` of [`CallConnectionProperties`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStreamingSubscription {
    /// Subscription id (= `AudioMetadata.subscriptionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `disabled`, `inactive` or `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SubscriptionState>,
    /// `["audio"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed_content_types: Option<Vec<MediaStreamingContentType>>,
}

/// `transcriptionSubscription` of [`CallConnectionProperties`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionSubscription {
    /// Subscription id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `disabled`, `inactive` or `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SubscriptionState>,
    /// `final` and/or `intermediate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed_result_types: Option<Vec<String>>,
    /// Locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Response of answer (200), create (201) and get call (200).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallConnectionProperties {
    /// The call connection id (path parameter of later calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_id: Option<String>,
    /// Server call id (recording by locator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_call_id: Option<String>,
    /// The other parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<CommunicationIdentifierModel>>,
    /// Connection state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_connection_state: Option<CallConnectionState>,
    /// The callback URI in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Caller id number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_caller_id_number: Option<PhoneNumberIdentifierModel>,
    /// Caller display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_display_name: Option<String>,
    /// The source identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CommunicationIdentifierModel>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Who answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<CommunicationUserIdentifierModel>,
    /// Media streaming subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streaming_subscription: Option<MediaStreamingSubscription>,
    /// Transcription subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_subscription: Option<TranscriptionSubscription>,
    /// The number the call was answered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_for: Option<PhoneNumberIdentifierModel>,
}

/// A participant (`GetParticipants`, `ParticipantsUpdated`, add/remove responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallParticipant {
    /// Who.
    pub identifier: CommunicationIdentifierModel,
    /// Muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_muted: Option<bool>,
    /// On hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_on_hold: Option<bool>,
}

/// `GET …/participants` response (pageable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParticipantsResponse {
    /// This page.
    #[serde(default)]
    pub value: Vec<CallParticipant>,
    /// Next page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// `participants:add` 202 response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddParticipantResponse {
    /// The invited participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<CallParticipant>,
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
    /// For `cancelAddParticipant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
}

/// `{operationContext}`: response of remove participant, transfer, mute and send DTMF.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationContextResponse {
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// `participants:cancelAddParticipant` 202 response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAddParticipantResponse {
    /// The cancelled invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    /// Echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_context: Option<String>,
}

/// Response of start / get recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStateResponse {
    /// The recording id (path parameter of later recording calls).
    pub recording_id: String,
    /// `active` or `inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_state: Option<RecordingState>,
    /// `azureCommunicationServices`, `teams` or `teamsCompliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_kind: Option<RecordingKind>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An ACS error (`CommunicationError`): `{"code","message","target"?,"details"?,"innererror"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("ACS error {code}: {message}")]
pub struct AcsError {
    /// Error code, e.g. `8523` or `InvalidAccessToken`.
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// What the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Further errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<AcsError>>,
    /// A more specific error.
    #[serde(
        default,
        rename = "innererror",
        alias = "innerError",
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<Box<AcsError>>,
}

/// The error body: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsErrorResponse {
    /// The error.
    pub error: AcsError,
}

impl AcsError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        AcsError {
            code: code.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    /// Parses an error response body; `None` if it is not `{"error":{…}}`.
    pub fn from_body(body: &[u8]) -> Option<AcsError> {
        serde_json::from_slice::<AcsErrorResponse>(body)
            .ok()
            .map(|r| r.error)
    }

    /// The `{"error": …}` body for this error (what a fake ACS sends).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&AcsErrorResponse {
            error: self.clone(),
        })
        .expect("AcsError serializes")
    }

    /// Whether this error or an inner one says the IncomingCall context is too old
    /// ("lifetime validation of the signed http request failed"): the call is gone.
    pub fn is_stale_incoming_call(&self) -> bool {
        const NEEDLE: &str = "lifetime validation of the signed http request failed";
        let mut e = Some(self);
        while let Some(err) = e {
            if err.message.to_ascii_lowercase().contains(NEEDLE) {
                return true;
            }
            e = err.inner_error.as_deref();
        }
        false
    }
}

/// Why a request body is not acceptable (checked by the `validate` methods; what a fake ACS
/// answers 400 for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field has a bad value.
    #[error("{field} {problem}")]
    Invalid {
        /// camelCase field path.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// An identifier field is not a valid identifier model.
    #[error("{field}: {source}")]
    Identifier {
        /// camelCase field path.
        field: &'static str,
        /// The identifier problem.
        source: IdentifierError,
    },
}

impl RequestError {
    pub(super) fn invalid(field: &'static str, problem: &'static str) -> Self {
        RequestError::Invalid { field, problem }
    }

    /// The ACS-shaped error for a 400 response (`code` `BadRequest`).
    pub fn to_acs_error(&self) -> AcsError {
        let field = match self {
            RequestError::Invalid { field, .. } | RequestError::Identifier { field, .. } => field,
        };
        AcsError {
            target: Some((*field).to_owned()),
            ..AcsError::new("BadRequest", self.to_string())
        }
    }
}

pub(super) fn non_empty(field: &'static str, v: &str) -> Result<(), RequestError> {
    if v.trim().is_empty() {
        Err(RequestError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

pub(super) fn has_scheme(url: &str, scheme: &str) -> bool {
    url.len() > scheme.len() && url[..scheme.len()].eq_ignore_ascii_case(scheme)
}

pub(super) fn http_url(field: &'static str, v: &str) -> Result<(), RequestError> {
    if has_scheme(v, "https://") || has_scheme(v, "http://") {
        Ok(())
    } else {
        Err(RequestError::invalid(field, "must be an http(s):// URL"))
    }
}

pub(super) fn identifier(
    field: &'static str,
    m: &CommunicationIdentifierModel,
) -> Result<(), RequestError> {
    m.validate()
        .map_err(|source| RequestError::Identifier { field, source })
}
