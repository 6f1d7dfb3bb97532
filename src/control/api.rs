//! What every operator route shares: [`ApiError`] (a refusal: status, JSON body, and the reason
//! counted in `control_bad_requests_total{endpoint="operator"}`), the [`Body`] accessors that
//! name the offending field, and the identifier validators.

use super::acs_client::AcsClientError;
use super::plane::ControlPlane;
use super::{json_response, HttpResponse};
use crate::protocol::identifier::{parse_raw_id, CommunicationIdentifier, IdentifierKind};
use hyper::StatusCode;
use serde_json::{json, Map, Value};

const EP: &str = "operator";

/// A refused operator request: status and JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: Value,
    reason: &'static str,
}

impl ApiError {
    pub(super) fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": {"code": "Bad Request", "message": format!("{field}: {problem}"), "field": field}}),
            reason: "bad_field",
        }
    }

    pub(super) fn status(
        status: StatusCode,
        message: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        Self {
            status,
            body: json!({"error": {"code": status.canonical_reason().unwrap_or("error"), "message": message.to_string()}}),
            reason,
        }
    }

    pub(super) fn response(self, cp: &ControlPlane) -> HttpResponse {
        if matches!(
            self.status,
            StatusCode::BAD_REQUEST
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
        ) {
            cp.metrics.control.bad_request(EP, self.reason);
        }
        json_response(self.status, &self.body)
    }
}

#[cfg(test)]
impl ApiError {
    /// The HTTP status.
    pub(crate) fn status_code(&self) -> StatusCode {
        self.status
    }
}

impl From<AcsClientError> for ApiError {
    fn from(e: AcsClientError) -> Self {
        tracing::warn!(error = %e, "operator request: ACS call failed");
        Self {
            status: e.http_status(),
            body: e.to_json(),
            reason: "acs",
        }
    }
}

/// An operator route's result.
pub(super) type Res<T> = Result<T, ApiError>;

/// A JSON object body with typed, field-naming accessors.
pub(super) struct Body(pub(super) Map<String, Value>);

impl Body {
    pub(super) fn parse(bytes: &[u8]) -> Res<Body> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(Body(m)),
            Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
            Err(e) => Err(ApiError::field("body", format!("not JSON: {e}"))),
        }
    }

    pub(super) fn str(&self, f: &str) -> Res<Option<String>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(ApiError::field(f, "must not be empty"))
            }
            Some(Value::String(s)) if s.len() > 1024 => {
                Err(ApiError::field(f, "longer than 1024 bytes"))
            }
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(ApiError::field(f, "must be a string")),
        }
    }

    pub(super) fn required(&self, f: &str) -> Res<String> {
        self.str(f)?
            .ok_or_else(|| ApiError::field(f, "is required"))
    }

    pub(super) fn bool(&self, f: &str) -> Res<Option<bool>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::field(f, "must be true or false")),
        }
    }

    pub(super) fn int(&self, f: &str, lo: i64, hi: i64) -> Res<Option<i64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
                _ => Err(ApiError::field(
                    f,
                    format!("must be an integer from {lo} to {hi}"),
                )),
            },
            Some(_) => Err(ApiError::field(
                f,
                format!("must be an integer from {lo} to {hi}"),
            )),
        }
    }

    pub(super) fn obj(&self, f: &str) -> Res<Option<Body>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Body(m.clone()))),
            Some(_) => Err(ApiError::field(f, "must be an object")),
        }
    }
}

/// `+` and 7 to 15 digits.
pub(super) fn e164(field: &str, v: &str) -> Res<String> {
    let digits = v.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_owned())
    } else {
        Err(ApiError::field(
            field,
            "must be an E.164 number like +14255550123",
        ))
    }
}

/// An Entra object id / tenant id: GUID-like characters.
pub(super) fn object_id(field: &str, v: &str) -> Res<String> {
    if v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(v.to_owned())
    } else {
        Err(ApiError::field(
            field,
            "must be an object id (letters, digits and -)",
        ))
    }
}

pub(super) fn raw_id(field: &str, v: &str) -> Res<CommunicationIdentifier> {
    let id = parse_raw_id(v);
    if id.kind() == IdentifierKind::Unknown {
        Err(ApiError::field(
            field,
            "is not a known rawId (4:+E164, 8:acs:…, 8:orgid:…, 28:orgid:…)",
        ))
    } else {
        Ok(id)
    }
}
