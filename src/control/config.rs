//! The control plane's configuration: the `[acs]` and `[control]` sections ([`AcsConfig`],
//! [`AcsJwtConfig`], [`ControlConfig`]) and [`PlaneConfig`], everything
//! [`ControlPlane`](super::ControlPlane) is built from. The configuration tree (`config`) embeds
//! these sections and builds the [`PlaneConfig`]; this module imports nothing from it.

use super::policy::AnswerConfig;
use serde::{Deserialize, Serialize};

/// Default Call Automation `api-version`.
pub const DEFAULT_ACS_API_VERSION: &str = crate::protocol::rest::CALL_AUTOMATION_API_VERSION;
/// Default call token lifetime (s): 4 hours.
pub const DEFAULT_CALL_TOKEN_TTL_SECS: u64 = 4 * 3600;

/// `[acs]`: the ACS resource the gateway answers calls for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AcsConfig {
    /// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`; empty = no
    /// ACS (the control plane then only validates webhooks and answers 503 elsewhere).
    pub connection_string: String,
    /// Call Automation `api-version`.
    pub api_version: String,
    /// The ACS immutable resource id (GUID): the audience of ACS's JWTs; also the default
    /// `resourceId` of Teams Phone extensibility agents.
    pub resource_id: String,
    /// Timeout of one ACS REST attempt (ms).
    pub request_timeout_ms: u64,
    /// Retries after the first attempt on 429, 5xx, timeouts and connection failures.
    pub max_retries: u32,
    /// Longest wait between attempts, whatever `Retry-After` says (ms).
    pub max_retry_after_ms: u64,
    /// JWT validation of ACS's media upgrades and callbacks.
    pub jwt: AcsJwtConfig,
}

impl Default for AcsConfig {
    fn default() -> Self {
        Self {
            connection_string: String::new(),
            api_version: DEFAULT_ACS_API_VERSION.into(),
            resource_id: String::new(),
            request_timeout_ms: 10_000,
            max_retries: 3,
            max_retry_after_ms: 5_000,
            jwt: AcsJwtConfig::default(),
        }
    }
}

impl AcsConfig {
    /// A connection string is configured.
    pub fn configured(&self) -> bool {
        !self.connection_string.trim().is_empty()
    }

    /// Whether ACS JWTs are checked: as configured, else on when `resource_id` is set.
    pub fn jwt_enabled(&self) -> bool {
        self.jwt
            .enabled
            .unwrap_or_else(|| !self.resource_id.trim().is_empty())
    }

    /// The expected JWT audience: `jwt.audience`, else `resource_id`.
    pub fn jwt_audience(&self) -> &str {
        if self.jwt.audience.trim().is_empty() {
            self.resource_id.trim()
        } else {
            self.jwt.audience.trim()
        }
    }
}

/// `[acs.jwt]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AcsJwtConfig {
    /// Check ACS's bearer tokens; unset = on when `acs.resource_id` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Expected issuer.
    pub issuer: String,
    /// Expected audience; empty = `acs.resource_id`.
    pub audience: String,
    /// Where the signing keys are.
    pub jwks_url: String,
    /// Clock skew allowed on `exp` / `nbf` (s).
    pub leeway_secs: u64,
}

impl Default for AcsJwtConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            issuer: super::jwt::ACS_ISSUER.into(),
            audience: String::new(),
            jwks_url: super::jwt::ACS_JWKS_URL.into(),
            leeway_secs: 60,
        }
    }
}

/// `[control]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// The gateway's public `https://` base (callbacks); empty = `http://<listen address>`.
    pub public_base_url: String,
    /// The public `wss://` base of the media endpoint; empty = derived from `public_base_url`.
    pub public_media_url: String,
    /// Secret of the call tokens (at least 16 bytes); empty = random at start (tokens then do
    /// not survive a restart).
    pub call_token_secret: String,
    /// Call token lifetime (s).
    pub call_token_ttl_secs: u64,
    /// Media connections need a valid call token (`/ws/{token}`) of a live call; unset = true
    /// when `acs.connection_string` is set, false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_call_token: Option<bool>,
    /// Bearer key of the operator API (`/api/calls…`); empty = operator API disabled.
    pub operator_api_key: String,
    /// Shared secret the Event Grid webhook requires (`?secret=` or `X-Webhook-Secret`);
    /// empty = none.
    pub eventgrid_secret: String,
    /// Calls the registry holds.
    pub registry_max_calls: usize,
    /// How long ended calls stay in the registry (s).
    pub ended_call_ttl_secs: u64,
    /// Microsoft Graph base URL (resource account lookup).
    pub graph_base_url: String,
    /// Microsoft Graph bearer token; empty = the request must send `X-Graph-Token`.
    pub graph_token: String,
    /// Directory `POST /api/calls/{id}/play` may read WAV files from (`{"file":"<relative
    /// path>"}`); empty = file playback refused.
    pub playback_dir: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            public_base_url: String::new(),
            public_media_url: String::new(),
            call_token_secret: String::new(),
            call_token_ttl_secs: DEFAULT_CALL_TOKEN_TTL_SECS,
            require_call_token: None,
            operator_api_key: String::new(),
            eventgrid_secret: String::new(),
            registry_max_calls: 10_000,
            ended_call_ttl_secs: 3_600,
            graph_base_url: "https://graph.microsoft.com".into(),
            graph_token: String::new(),
            playback_dir: String::new(),
        }
    }
}

/// Everything the control plane is built from: the `[acs]`, `[control]` and `[answer]` sections
/// and the listener's body limit (`server.max_body_bytes`).
#[derive(Clone, Debug, PartialEq)]
pub struct PlaneConfig {
    /// `[acs]`.
    pub acs: AcsConfig,
    /// `[control]`.
    pub control: ControlConfig,
    /// `[answer]`.
    pub answer: AnswerConfig,
    /// Largest request body of the webhook and callbacks.
    pub max_body_bytes: usize,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        Self {
            acs: AcsConfig::default(),
            control: ControlConfig::default(),
            answer: AnswerConfig::default(),
            max_body_bytes: super::http::MAX_BODY_BYTES,
        }
    }
}

impl PlaneConfig {
    /// Whether media connections must carry a call token: `control.require_call_token`, else on
    /// when ACS is configured.
    pub fn require_call_token(&self) -> bool {
        self.control
            .require_call_token
            .unwrap_or_else(|| self.acs.configured())
    }
}
