//! Admission of ACS's inbound requests: the media WebSocket upgrade (`/ws` and `/ws/{token}`)
//! and the callback endpoint (`/api/callbacks/{token}`). Checks, in order: the gateway's call
//! token (format, signature, expiry, and a call in the registry — for media one that has not
//! ended), then ACS's RS256 bearer token when JWT validation is on. A refusal names its HTTP
//! status and its `acs_gateway_auth_rejections_total` reason; the caller counts and answers.
//!
//! With `control.require_call_token = false`, `/ws` and `/ws/{anything}` are admitted as before
//! the control plane existed (the path segment is only a label), but a valid call token still
//! links the connection to its call.

use super::jwt::JwtError;
use super::plane::ControlPlane;
use super::registry::now_ms;
use super::shared::LinkError;
use super::tokens::rejection_reason;
use hyper::header::HeaderMap;
use hyper::StatusCode;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, or 503 when the signing keys cannot be fetched.
    pub status: StatusCode,
    /// `acs_gateway_auth_rejections_total` reason.
    pub reason: &'static str,
    /// Message for the JSON body.
    pub message: String,
}

impl Refusal {
    fn unauthorized(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason,
            message: message.into(),
        }
    }
}

/// An admitted media connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaGrant {
    /// The gateway call id, when the path carried a valid call token.
    pub call_id: Option<String>,
    /// The call's `callConnectionId` from the registry, when known.
    pub call_connection_id: Option<String>,
    /// The call's `serverCallId` from the registry, when known.
    pub server_call_id: Option<String>,
    /// Caller and callee rawIds from the IncomingCall (registry), when the call is known.
    pub from: Option<String>,
    /// See `from`.
    pub to: Option<String>,
    /// The call was answered with `enableBidirectional` (its connection accepts playback).
    pub bidirectional: bool,
}

impl ControlPlane {
    async fn check_jwt(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(v) = &self.jwt else {
            return Ok(());
        };
        let token = match super::http::bearer(headers) {
            Ok(t) => t,
            Err(()) => {
                return Err(Refusal::unauthorized(
                    "malformed",
                    "Authorization is not a bearer token",
                ))
            }
        };
        v.validate(token).await.map(|_| ()).map_err(|e| {
            let status = match e {
                JwtError::JwksUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            Refusal {
                status,
                reason: e.reason(),
                message: format!("ACS token refused: {e}"),
            }
        })
    }

    /// Cluster mode: reads the call a well-signed token names from the shared bucket first;
    /// `Err` when the bucket cannot be read.
    async fn refresh_token_call(&self, token: &str) -> Result<(), LinkError> {
        if self.link().is_some() {
            if let Ok(t) = self.tokens.verify(token, now_ms().div_euclid(1000)) {
                self.refresh(&t.call_id).await?;
            }
        }
        Ok(())
    }

    /// The call id of a valid token of a known call; `media` additionally requires the call
    /// not to have ended.
    fn check_call_token(&self, token: &str, media: bool) -> Result<String, Refusal> {
        let now = now_ms();
        let t = self
            .tokens
            .verify(token, now.div_euclid(1000))
            .map_err(|e| {
                Refusal::unauthorized(rejection_reason(&e), format!("call token refused: {e}"))
            })?;
        let live = self
            .registry
            .get(&t.call_id)
            .is_some_and(|r| !media || r.state.accepts_media());
        if live {
            Ok(t.call_id)
        } else {
            Err(Refusal::unauthorized(
                "unknown_call",
                "call token refused: the call is not live",
            ))
        }
    }

    /// Admits (or refuses) a media upgrade; `token` is the `/ws/{token}` path segment.
    pub async fn authorize_media(
        &self,
        token: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<MediaGrant, Refusal> {
        let token = token.filter(|t| !t.is_empty());
        if let Some(t) = token {
            // NATS unreachable: admitted from the local registry when it knows the call
            let _ = self.refresh_token_call(t).await;
        }
        let call_id = match (token, self.require_call_token) {
            (None, true) => {
                return Err(Refusal::unauthorized(
                    "token_missing",
                    "this gateway requires a call token: connect to /ws/{token}",
                ))
            }
            (None, false) => None,
            (Some(t), true) => Some(self.check_call_token(t, true)?),
            (Some(t), false) => self.check_call_token(t, true).ok(),
        };
        self.check_jwt(headers).await?;
        let record = call_id.as_deref().and_then(|id| self.registry.get(id));
        let bidirectional = record.as_ref().is_some_and(|r| r.bidirectional);
        let (call_connection_id, server_call_id, from, to) = match record {
            Some(r) => (
                r.call_connection_id,
                r.server_call_id,
                Some(r.from).filter(|s| !s.is_empty()),
                Some(r.to).filter(|s| !s.is_empty()),
            ),
            None => (None, None, None, None),
        };
        Ok(MediaGrant {
            call_id,
            call_connection_id,
            server_call_id,
            from,
            to,
            bidirectional,
        })
    }

    /// Admits (or refuses) a callback delivery; returns the gateway call id. `Ok(Err(_))`:
    /// admitted by its token but, in cluster mode, its call cannot be read (NATS unreachable).
    pub(crate) async fn authorize_callback(
        &self,
        token: &str,
        headers: &HeaderMap,
    ) -> Result<Result<String, LinkError>, Refusal> {
        if token.is_empty() {
            return Err(Refusal::unauthorized(
                "token_missing",
                "no call token in the path",
            ));
        }
        if let Err(e) = self.refresh_token_call(token).await {
            // the token verified (else nothing was read), but its call cannot be looked up
            self.check_jwt(headers).await?;
            return Ok(Err(e));
        }
        let id = self.check_call_token(token, false)?;
        self.check_jwt(headers).await?;
        Ok(Ok(id))
    }

    /// Counts a refusal.
    pub fn count_refusal(&self, r: &Refusal) {
        self.metrics.control.auth_rejected(r.reason);
    }
}
