//! An in-process [`AcsApi`] for tests: records every operation with its JSON body and answers
//! with scripted replies, or with a plausible success for the operation (answer → a
//! `callConnectionId`, start recording → a `recordingId`, add participant → an
//! `invitationId`, token exchange → a token, everything else → its success status).

use super::acs_client::{AcsApi, AcsClientError, AcsFuture, AcsResponse};
use crate::protocol::rest::AcsOperation;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// One operation the mock received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MockRequest {
    /// The operation (with its path parameters).
    pub op: AcsOperation,
    /// The body as JSON (`None` when there was none).
    pub body: Option<Value>,
}

/// A scripted reply.
#[derive(Debug, Clone)]
pub(crate) enum MockReply {
    /// Success with this status and JSON body (`Value::Null` = empty body).
    Ok(u16, Value),
    /// This error.
    Err(AcsClientError),
}

/// The mock.
#[derive(Debug, Default)]
pub(crate) struct MockAcs {
    requests: Mutex<Vec<MockRequest>>,
    replies: Mutex<HashMap<&'static str, VecDeque<MockReply>>>,
    notify: Notify,
}

impl MockAcs {
    /// An empty mock.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues `reply` for the next call of the operation named `op_name`
    /// ([`AcsOperation::name`], e.g. `answer_call`).
    pub(crate) fn push(&self, op_name: &'static str, reply: MockReply) {
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(op_name)
            .or_default()
            .push_back(reply);
    }

    /// Everything received so far.
    pub(crate) fn requests(&self) -> Vec<MockRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Requests of one operation.
    pub(crate) fn requests_of(&self, op_name: &str) -> Vec<MockRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.op.name() == op_name)
            .collect()
    }

    /// Waits (bounded by `timeout`) until at least `n` requests arrived; returns them.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<MockRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.requests();
            }
        }
    }

    fn default_reply(op: &AcsOperation, n: usize) -> MockReply {
        let status = op.success_statuses()[0];
        let body = match op {
            AcsOperation::AnswerCall => json!({
                "callConnectionId": format!("mock-conn-{n}"),
                "serverCallId": format!("mock-server-{n}"),
                "correlationId": format!("mock-corr-{n}"),
                "callConnectionState": "connecting",
            }),
            AcsOperation::StartRecording => json!({
                "recordingId": format!("mock-rec-{n}"),
                "recordingState": "active",
                "recordingKind": "azureCommunicationServices",
            }),
            AcsOperation::AddParticipant { .. } => json!({
                "invitationId": format!("mock-inv-{n}"),
                "operationContext": null,
            }),
            AcsOperation::ExchangeTeamsUserAccessToken => json!({
                "token": "mock-acs-token",
                "expiresOn": "2030-01-01T00:00:00Z",
            }),
            AcsOperation::PutTeamsExtensionAssignment {
                tenant_id,
                object_id,
            } => json!({
                "objectId": object_id,
                "tenantId": tenant_id,
                "principalType": "teamsResourceAccount",
            }),
            AcsOperation::Hold { .. }
            | AcsOperation::Unhold { .. }
            | AcsOperation::StartContinuousDtmfRecognition { .. }
            | AcsOperation::StopContinuousDtmfRecognition { .. }
            | AcsOperation::PauseRecording { .. }
            | AcsOperation::ResumeRecording { .. } => Value::Null,
            _ if status == 204 => Value::Null,
            _ => json!({}),
        };
        MockReply::Ok(status, body)
    }
}

impl AcsApi for MockAcs {
    fn send<'a>(&'a self, op: &'a AcsOperation, body: Option<Bytes>) -> AcsFuture<'a, AcsResponse> {
        Box::pin(async move {
            let n = {
                let mut g = self.requests.lock().unwrap_or_else(|p| p.into_inner());
                g.push(MockRequest {
                    op: op.clone(),
                    body: body.as_ref().map(|b| {
                        serde_json::from_slice(b).unwrap_or(Value::String("<not JSON>".into()))
                    }),
                });
                g.len()
            };
            self.notify.notify_waiters();
            let scripted = self
                .replies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(op.name())
                .and_then(VecDeque::pop_front);
            match scripted.unwrap_or_else(|| Self::default_reply(op, n)) {
                MockReply::Err(e) => Err(e),
                MockReply::Ok(status, v) => {
                    let body = if v.is_null() {
                        Bytes::new()
                    } else {
                        Bytes::from(v.to_string())
                    };
                    Ok(AcsResponse { status, body })
                }
            }
        })
    }
}
