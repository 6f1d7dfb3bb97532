//! The ACS data-plane REST client: the [`AcsApi`] trait (one method: send an
//! [`AcsOperation`] with a JSON body, retries included), typed calls on top of it (answer,
//! reject, redirect, get call, hang up, participants: list, add, remove, mute, cancel add;
//! transfer, hold / unhold, DTMF: send, continuous recognition; recording: start, stop, pause,
//! resume; media streaming, the Teams user token exchange and extension assignment), the error
//! type with its HTTP mapping, and [`HttpAcsClient`], the real implementation over reqwest
//! (rustls). GETs are sent without a body (signed with the empty-body content hash).
//!
//! [`HttpAcsClient`] signs every attempt with HMAC-SHA256 exactly as
//! [`crate::protocol::auth::sign`] (fresh `x-ms-date` per attempt); generates
//! `Repeatability-Request-ID` (UUID v4) and `Repeatability-First-Sent` (RFC 1123) once per
//! logical operation for the operations that take them and sends the same pair on every retry;
//! bounds each attempt with `acs.request_timeout_ms`; retries up to `acs.max_retries` times on
//! 429, 5xx, timeouts and connection failures, waiting `Retry-After` (seconds or HTTP date, capped
//! at `acs.max_retry_after_ms`) or an exponential backoff; and turns ACS error bodies into
//! [`AcsClientError::Acs`] with the status and the ACS code. Every attempt is counted in
//! `acs_gateway_acs_requests_total{operation,status}`.

use crate::metrics::{acs_status_label, Metrics};
use crate::protocol::auth::{
    format_rfc1123, parse_rfc1123, ConnectionString, HEADER_AUTHORIZATION, HEADER_CONTENT_HASH,
    HEADER_DATE, HEADER_REPEATABILITY_FIRST_SENT, HEADER_REPEATABILITY_REQUEST_ID,
};
use crate::protocol::rest::{
    AcsError, AcsOperation, AddParticipantRequest, AddParticipantResponse, AnswerCallRequest,
    CallConnectionProperties, CancelAddParticipantRequest, CancelAddParticipantResponse,
    CommunicationIdentityAccessToken, ContinuousDtmfRecognitionRequest, GetParticipantsResponse,
    HoldRequest, MuteParticipantsRequest, OperationContextResponse, RecordingStateResponse,
    RedirectCallRequest, RejectCallRequest, RemoveParticipantRequest, SendDtmfTonesRequest,
    StartCallRecordingRequest, StartMediaStreamingRequest, StopMediaStreamingRequest,
    TeamsExtensionAssignment, TeamsExtensionAssignmentRequest, TeamsUserExchangeTokenRequest,
    TransferToParticipantRequest, UnholdRequest, CALL_AUTOMATION_API_VERSION, CONTENT_TYPE_JSON,
};
use bytes::Bytes;
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future of an ACS call.
pub(crate) type AcsFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, AcsClientError>> + Send + 'a>>;

/// A successful response.
#[derive(Debug, Clone)]
pub(crate) struct AcsResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// Body bytes (empty for 204).
    pub body: Bytes,
}

/// Why an ACS call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum AcsClientError {
    /// ACS answered with an error status (after any retries).
    #[error("ACS {operation} failed with HTTP {status}: {error}")]
    Acs {
        /// Operation label.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// The ACS error body (code `HTTP <status>` when the body was not an ACS error).
        error: AcsError,
    },
    /// No response within the timeout, on every attempt.
    #[error("ACS {operation} timed out ({attempts} attempt(s))")]
    Timeout {
        /// Operation label.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection failed on every attempt.
    #[error("ACS {operation} could not be reached ({attempts} attempt(s)): {message}")]
    Transport {
        /// Operation label.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// A 2xx whose body is not what the operation returns.
    #[error("ACS {operation} returned HTTP {status} with an unreadable body: {message}")]
    InvalidResponse {
        /// Operation label.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// What is wrong.
        message: String,
    },
}

impl AcsClientError {
    /// The IncomingCall is too old to answer ("lifetime validation of the signed http request
    /// failed"): the caller is gone or the event came too late.
    pub(crate) fn is_stale_incoming_call(&self) -> bool {
        matches!(self, AcsClientError::Acs { error, .. } if error.is_stale_incoming_call())
    }

    /// The status the operator API answers with: 504 timeout, 502 else.
    pub(crate) fn http_status(&self) -> StatusCode {
        match self {
            AcsClientError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The JSON error body: `{"error": {"code", "message", "acs"?: {"status","code","message"}}}`.
    pub(crate) fn to_json(&self) -> Value {
        let status = self.http_status();
        let mut err = json!({
            "code": status.canonical_reason().unwrap_or("error"),
            "message": self.to_string(),
        });
        if let AcsClientError::Acs { status, error, .. } = self {
            err["acs"] = json!({"status": status, "code": error.code, "message": error.message});
        }
        json!({ "error": err })
    }

    /// `(code, sub_code, message)` for the call registry's `lastError`.
    pub(crate) fn summary(&self) -> (Option<i64>, Option<String>, String) {
        match self {
            AcsClientError::Acs { status, error, .. } => (
                Some(i64::from(*status)),
                Some(error.code.clone()),
                error.message.clone(),
            ),
            AcsClientError::InvalidResponse { status, .. } => {
                (Some(i64::from(*status)), None, self.to_string())
            }
            _ => (None, None, self.to_string()),
        }
    }
}

/// The ACS data plane. Implementations retry as they see fit; `send` resolves with the final
/// outcome of one logical operation.
pub(crate) trait AcsApi: Send + Sync + std::fmt::Debug {
    /// Sends `op` with `body` (the exact JSON bytes; `None` = no body).
    fn send<'a>(&'a self, op: &'a AcsOperation, body: Option<Bytes>) -> AcsFuture<'a, AcsResponse>;

    /// GETs the next page of list operation `op` at ACS's `nextLink`. The default sends `op`
    /// again (test doubles answer with their next scripted page).
    fn send_next<'a>(
        &'a self,
        op: &'a AcsOperation,
        next_link: &'a str,
    ) -> AcsFuture<'a, AcsResponse> {
        let _ = next_link;
        self.send(op, None)
    }
}

/// Most participant pages followed; a longer list keeps its `nextLink`.
pub(crate) const MAX_PARTICIPANT_PAGES: usize = 50;

fn encode<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("request bodies serialize"))
}

fn decode<T: DeserializeOwned>(op: &AcsOperation, r: &AcsResponse) -> Result<T, AcsClientError> {
    serde_json::from_slice(&r.body).map_err(|e| AcsClientError::InvalidResponse {
        operation: op.name(),
        status: r.status,
        message: e.to_string(),
    })
}

impl dyn AcsApi {
    async fn json<T: DeserializeOwned>(
        &self,
        op: AcsOperation,
        body: Option<Bytes>,
    ) -> Result<T, AcsClientError> {
        let r = self.send(&op, body).await?;
        decode(&op, &r)
    }

    async fn empty(&self, op: AcsOperation, body: Option<Bytes>) -> Result<u16, AcsClientError> {
        Ok(self.send(&op, body).await?.status)
    }

    /// `POST /calling/callConnections:answer`.
    pub(crate) async fn answer_call(
        &self,
        req: &AnswerCallRequest,
    ) -> Result<CallConnectionProperties, AcsClientError> {
        self.json(AcsOperation::AnswerCall, Some(encode(req))).await
    }

    /// `POST /calling/callConnections:reject`.
    pub(crate) async fn reject_call(&self, req: &RejectCallRequest) -> Result<u16, AcsClientError> {
        self.empty(AcsOperation::RejectCall, Some(encode(req)))
            .await
    }

    /// `POST /calling/callConnections:redirect`.
    pub(crate) async fn redirect_call(
        &self,
        req: &RedirectCallRequest,
    ) -> Result<u16, AcsClientError> {
        self.empty(AcsOperation::RedirectCall, Some(encode(req)))
            .await
    }

    /// `DELETE /calling/callConnections/{id}` (leave) or `POST …:terminate` (everyone).
    pub(crate) async fn hang_up(
        &self,
        call_connection_id: &str,
        for_everyone: bool,
    ) -> Result<u16, AcsClientError> {
        let call_connection_id = call_connection_id.to_owned();
        if for_everyone {
            self.empty(
                AcsOperation::TerminateCall { call_connection_id },
                Some(Bytes::from_static(b"{}")),
            )
            .await
        } else {
            self.empty(AcsOperation::HangUpCall { call_connection_id }, None)
                .await
        }
    }

    /// `POST …/participants:add`.
    pub(crate) async fn add_participant(
        &self,
        call_connection_id: &str,
        req: &AddParticipantRequest,
    ) -> Result<AddParticipantResponse, AcsClientError> {
        self.json(
            AcsOperation::AddParticipant {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …/participants:remove`.
    pub(crate) async fn remove_participant(
        &self,
        call_connection_id: &str,
        req: &RemoveParticipantRequest,
    ) -> Result<Value, AcsClientError> {
        self.json_or_empty(
            AcsOperation::RemoveParticipant {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:transferToParticipant`.
    pub(crate) async fn transfer(
        &self,
        call_connection_id: &str,
        req: &TransferToParticipantRequest,
    ) -> Result<Value, AcsClientError> {
        self.json_or_empty(
            AcsOperation::TransferToParticipant {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST /calling/recordings`.
    pub(crate) async fn start_recording(
        &self,
        req: &StartCallRecordingRequest,
    ) -> Result<RecordingStateResponse, AcsClientError> {
        self.json(AcsOperation::StartRecording, Some(encode(req)))
            .await
    }

    /// `DELETE /calling/recordings/{id}`.
    pub(crate) async fn stop_recording(&self, recording_id: &str) -> Result<u16, AcsClientError> {
        self.empty(
            AcsOperation::StopRecording {
                recording_id: recording_id.to_owned(),
            },
            None,
        )
        .await
    }

    /// `POST …:startMediaStreaming`.
    pub(crate) async fn start_media_streaming(
        &self,
        call_connection_id: &str,
        req: &StartMediaStreamingRequest,
    ) -> Result<u16, AcsClientError> {
        self.empty(
            AcsOperation::StartMediaStreaming {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:stopMediaStreaming`.
    pub(crate) async fn stop_media_streaming(
        &self,
        call_connection_id: &str,
        req: &StopMediaStreamingRequest,
    ) -> Result<u16, AcsClientError> {
        self.empty(
            AcsOperation::StopMediaStreaming {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `GET /calling/callConnections/{id}`.
    pub(crate) async fn get_call(
        &self,
        call_connection_id: &str,
    ) -> Result<CallConnectionProperties, AcsClientError> {
        self.json(
            AcsOperation::GetCall {
                call_connection_id: call_connection_id.to_owned(),
            },
            None,
        )
        .await
    }

    /// `GET …/participants`, following ACS's `nextLink` paging (at most
    /// [`MAX_PARTICIPANT_PAGES`] pages; `next_link` is set only when more remain).
    pub(crate) async fn get_participants(
        &self,
        call_connection_id: &str,
    ) -> Result<GetParticipantsResponse, AcsClientError> {
        let op = AcsOperation::GetParticipants {
            call_connection_id: call_connection_id.to_owned(),
        };
        let mut all: GetParticipantsResponse = decode(&op, &self.send(&op, None).await?)?;
        for _ in 1..MAX_PARTICIPANT_PAGES {
            let Some(link) = all.next_link.take() else {
                break;
            };
            let page: GetParticipantsResponse = decode(&op, &self.send_next(&op, &link).await?)?;
            all.value.extend(page.value);
            all.next_link = page.next_link;
        }
        Ok(all)
    }

    /// `POST …/participants:mute`.
    pub(crate) async fn mute_participants(
        &self,
        call_connection_id: &str,
        req: &MuteParticipantsRequest,
    ) -> Result<OperationContextResponse, AcsClientError> {
        self.json_or_default(
            AcsOperation::MuteParticipants {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …/participants:cancelAddParticipant`.
    pub(crate) async fn cancel_add_participant(
        &self,
        call_connection_id: &str,
        req: &CancelAddParticipantRequest,
    ) -> Result<CancelAddParticipantResponse, AcsClientError> {
        self.json_or_default(
            AcsOperation::CancelAddParticipant {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:hold` (200, no body).
    pub(crate) async fn hold(
        &self,
        call_connection_id: &str,
        req: &HoldRequest,
    ) -> Result<u16, AcsClientError> {
        self.empty(
            AcsOperation::Hold {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:unhold` (200, no body).
    pub(crate) async fn unhold(
        &self,
        call_connection_id: &str,
        req: &UnholdRequest,
    ) -> Result<u16, AcsClientError> {
        self.empty(
            AcsOperation::Unhold {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:sendDtmfTones` (202 `{operationContext}`).
    pub(crate) async fn send_dtmf_tones(
        &self,
        call_connection_id: &str,
        req: &SendDtmfTonesRequest,
    ) -> Result<OperationContextResponse, AcsClientError> {
        self.json_or_default(
            AcsOperation::SendDtmfTones {
                call_connection_id: call_connection_id.to_owned(),
            },
            Some(encode(req)),
        )
        .await
    }

    /// `POST …:startContinuousDtmfRecognition` (`start`) or `…:stopContinuousDtmfRecognition`
    /// (200, no body).
    pub(crate) async fn continuous_dtmf_recognition(
        &self,
        call_connection_id: &str,
        start: bool,
        req: &ContinuousDtmfRecognitionRequest,
    ) -> Result<u16, AcsClientError> {
        let call_connection_id = call_connection_id.to_owned();
        let op = if start {
            AcsOperation::StartContinuousDtmfRecognition { call_connection_id }
        } else {
            AcsOperation::StopContinuousDtmfRecognition { call_connection_id }
        };
        self.empty(op, Some(encode(req))).await
    }

    /// `POST /calling/recordings/{id}:pause` (`pause`) or `…:resume` (202, no body).
    pub(crate) async fn pause_or_resume_recording(
        &self,
        recording_id: &str,
        pause: bool,
    ) -> Result<u16, AcsClientError> {
        let recording_id = recording_id.to_owned();
        let op = if pause {
            AcsOperation::PauseRecording { recording_id }
        } else {
            AcsOperation::ResumeRecording { recording_id }
        };
        self.empty(op, None).await
    }

    /// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}` (201 created, 200
    /// already there): returns the status and the assignment.
    pub(crate) async fn put_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        req: &TeamsExtensionAssignmentRequest,
    ) -> Result<(u16, TeamsExtensionAssignment), AcsClientError> {
        let op = AcsOperation::PutTeamsExtensionAssignment {
            tenant_id: tenant_id.to_owned(),
            object_id: object_id.to_owned(),
        };
        let r = self.send(&op, Some(encode(req))).await?;
        Ok((r.status, decode(&op, &r)?))
    }

    /// `POST /teamsUser/:exchangeAccessToken` (Identity API).
    pub(crate) async fn exchange_teams_user_token(
        &self,
        req: &TeamsUserExchangeTokenRequest,
    ) -> Result<CommunicationIdentityAccessToken, AcsClientError> {
        self.json(
            AcsOperation::ExchangeTeamsUserAccessToken,
            Some(encode(req)),
        )
        .await
    }

    /// The JSON body, or `T::default()` when the body is empty.
    async fn json_or_default<T: DeserializeOwned + Default>(
        &self,
        op: AcsOperation,
        body: Option<Bytes>,
    ) -> Result<T, AcsClientError> {
        let r = self.send(&op, body).await?;
        if r.body.is_empty() {
            Ok(T::default())
        } else {
            decode(&op, &r)
        }
    }

    async fn json_or_empty(
        &self,
        op: AcsOperation,
        body: Option<Bytes>,
    ) -> Result<Value, AcsClientError> {
        let r = self.send(&op, body).await?;
        if r.body.is_empty() {
            Ok(json!({}))
        } else {
            decode(&op, &r)
        }
    }
}

/// Settings of [`HttpAcsClient`].
#[derive(Debug, Clone)]
pub(crate) struct AcsClientConfig {
    /// Endpoint and key.
    pub connection: ConnectionString,
    /// `api-version` of Call Automation operations (Identity and Teams extension operations
    /// keep theirs).
    pub api_version: String,
    /// Per attempt.
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Cap on a `Retry-After` wait.
    pub max_retry_after: Duration,
    /// First backoff when there is no `Retry-After` (doubles per retry, capped).
    pub initial_backoff: Duration,
}

/// The real client.
#[derive(Debug)]
pub(crate) struct HttpAcsClient {
    cfg: AcsClientConfig,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
}

/// What one attempt produced.
enum Attempt {
    Done(AcsResponse),
    Retry {
        outcome: RetryCause,
        wait: Option<Duration>,
    },
    Fail(AcsClientError),
}

enum RetryCause {
    Status(u16, AcsError),
    Timeout,
    Transport(String),
}

impl HttpAcsClient {
    /// A client over `http` (share one reqwest client per process).
    pub(crate) fn new(cfg: AcsClientConfig, http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        Self { cfg, http, metrics }
    }

    /// `path?api-version=…`: the configured version for Call Automation operations.
    pub(crate) fn path_and_query(&self, op: &AcsOperation) -> String {
        let v = if op.api_version() == CALL_AUTOMATION_API_VERSION {
            self.cfg.api_version.as_str()
        } else {
            op.api_version()
        };
        format!("{}?api-version={v}", op.path())
    }

    async fn attempt(
        &self,
        op: &AcsOperation,
        path_and_query: &str,
        body: &Option<Bytes>,
        repeatability: &Option<(String, String)>,
    ) -> Attempt {
        let name = op.name();
        let now = chrono::Utc::now().timestamp();
        let date = format_rfc1123(now).unwrap_or_default();
        let bytes: &[u8] = body.as_deref().unwrap_or_default();
        let signed = self
            .cfg
            .connection
            .sign(op.method(), path_and_query, &date, bytes);
        let method = reqwest::Method::from_bytes(op.method().as_bytes()).unwrap_or_default();
        let mut rb = self
            .http
            .request(method, self.cfg.connection.url(path_and_query))
            .timeout(self.cfg.request_timeout)
            .header(HEADER_DATE, &signed.date)
            .header(HEADER_CONTENT_HASH, &signed.content_hash)
            .header(HEADER_AUTHORIZATION, &signed.authorization);
        if let Some((id, first)) = repeatability {
            rb = rb
                .header(HEADER_REPEATABILITY_REQUEST_ID, id)
                .header(HEADER_REPEATABILITY_FIRST_SENT, first);
        }
        if let Some(b) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE_JSON)
                .body(b.clone());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(name, e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_error(name, e),
        };
        self.metrics
            .control
            .acs_request(name, acs_status_label(status));
        if (200..300).contains(&status) {
            return Attempt::Done(AcsResponse { status, body });
        }
        let error = AcsError::from_body(&body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            AcsError::new(format!("HTTP {status}"), text)
        });
        if status == 429 || status >= 500 {
            Attempt::Retry {
                outcome: RetryCause::Status(status, error),
                wait: retry_after,
            }
        } else {
            Attempt::Fail(AcsClientError::Acs {
                operation: name,
                status,
                error,
            })
        }
    }

    fn transport_error(&self, name: &'static str, e: reqwest::Error) -> Attempt {
        if e.is_timeout() {
            self.metrics.control.acs_request(name, "timeout");
            Attempt::Retry {
                outcome: RetryCause::Timeout,
                wait: None,
            }
        } else {
            self.metrics.control.acs_request(name, "transport");
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Attempt::Retry {
                outcome: RetryCause::Transport(msg),
                wait: None,
            }
        }
    }

    /// The path and query of `next_link`, which must be on the configured endpoint and `op`'s
    /// path (a signed request never goes elsewhere); `api-version` is added when missing.
    pub(crate) fn next_link_path(&self, op: &AcsOperation, next_link: &str) -> Option<String> {
        let base = self.cfg.connection.url("");
        let pq = next_link.strip_prefix(base.trim_end_matches('/'))?;
        let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
        if path != op.path() {
            return None;
        }
        if query.split('&').any(|kv| kv.starts_with("api-version=")) {
            Some(pq.to_owned())
        } else {
            let v = &self.cfg.api_version;
            let sep = if query.is_empty() { "?" } else { "&" };
            Some(format!("{pq}{sep}api-version={v}"))
        }
    }

    async fn run_at(
        &self,
        op: &AcsOperation,
        path_and_query: String,
        body: Option<Bytes>,
    ) -> Result<AcsResponse, AcsClientError> {
        let name = op.name();
        let repeatability = op.needs_repeatability().then(|| {
            (
                uuid::Uuid::new_v4().to_string(),
                format_rfc1123(chrono::Utc::now().timestamp()).unwrap_or_default(),
            )
        });
        let attempts = self.cfg.max_retries.saturating_add(1);
        let mut backoff = self.cfg.initial_backoff;
        let mut last = None;
        for attempt in 1..=attempts {
            match self
                .attempt(op, &path_and_query, &body, &repeatability)
                .await
            {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { outcome, wait } => {
                    let wait = wait.unwrap_or(backoff).min(self.cfg.max_retry_after);
                    backoff = (backoff * 2).min(self.cfg.max_retry_after);
                    if attempt < attempts {
                        let why = match &outcome {
                            RetryCause::Status(s, e) => format!("HTTP {s} ({})", e.code),
                            RetryCause::Timeout => "timeout".into(),
                            RetryCause::Transport(m) => m.clone(),
                        };
                        tracing::warn!(
                            operation = name,
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            %why,
                            "ACS request failed; retrying with the same repeatability headers"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    last = Some(outcome);
                }
            }
        }
        Err(match last {
            Some(RetryCause::Status(status, error)) => AcsClientError::Acs {
                operation: name,
                status,
                error,
            },
            Some(RetryCause::Transport(message)) => AcsClientError::Transport {
                operation: name,
                attempts,
                message,
            },
            _ => AcsClientError::Timeout {
                operation: name,
                attempts,
            },
        })
    }
}

impl AcsApi for HttpAcsClient {
    fn send<'a>(&'a self, op: &'a AcsOperation, body: Option<Bytes>) -> AcsFuture<'a, AcsResponse> {
        Box::pin(self.run_at(op, self.path_and_query(op), body))
    }

    fn send_next<'a>(
        &'a self,
        op: &'a AcsOperation,
        next_link: &'a str,
    ) -> AcsFuture<'a, AcsResponse> {
        Box::pin(async move {
            let Some(pq) = self.next_link_path(op, next_link) else {
                return Err(AcsClientError::InvalidResponse {
                    operation: op.name(),
                    status: 200,
                    message: format!("nextLink {next_link:?} is not a page of this operation on the ACS endpoint"),
                });
            };
            self.run_at(op, pq, None).await
        })
    }
}

/// A `Retry-After` value (delta seconds or an IMF-fixdate) as a wait from `now_unix`.
pub(crate) fn retry_after(v: &str, now_unix: i64) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_rfc1123(v)?;
    Some(Duration::from_secs(
        u64::try_from(at - now_unix).unwrap_or(0),
    ))
}

#[cfg(test)]
#[path = "acs_client_tests.rs"]
mod tests;
