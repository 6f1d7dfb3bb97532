//! [`ControlPlane`]: everything the `/api/*` routes and the media upgrade check share — the ACS
//! client, the answer policy, call tokens, public URLs, the JWT validator, secrets, the
//! deduplication set and the call registry — built from the configuration, plus the `/api/*`
//! router.
//!
//! | route | handler |
//! |---|---|
//! | `POST`/`OPTIONS /api/incomingCall` | [`super::webhook`] |
//! | `POST /api/callbacks/{token}` | [`super::callbacks`] |
//! | `/api/calls…`, `/api/agents/token`, `/api/resource-accounts`, `/api/teams-extension/…` | [`super::operator`] |

use super::acs_client::{AcsApi, AcsClientConfig, HttpAcsClient};
use super::config::PlaneConfig;
use super::dedupe::{self, Dedupe};
use super::graph::GraphClient;
use super::jwt::{JwksLimits, JwtSettings, JwtValidator};
use super::policy::{AnswerPolicy, PolicyError};
use super::registry::CallRegistry;
use super::tokens::CallTokens;
use super::urls::PublicUrls;
use super::{error_response, HttpResponse};
use crate::metrics::Metrics;
use crate::protocol::auth::{ConnectionString, ConnectionStringError};
use crate::protocol::token::TokenError;
use hyper::{Request, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why the control plane could not be built (the configuration validation catches these first).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Bad connection string.
    #[error("acs.connection_string: {0}")]
    ConnectionString(#[from] ConnectionStringError),
    /// Bad answer policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Bad call token secret.
    #[error("control.call_token_secret: {0}")]
    Token(#[from] TokenError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// The shared control-plane state.
#[derive(Debug)]
pub struct ControlPlane {
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The call registry.
    pub registry: CallRegistry,
    /// The ACS client (`None` = ACS not configured).
    pub(crate) acs: Option<Arc<dyn AcsApi>>,
    /// The answer policy.
    pub(crate) policy: AnswerPolicy,
    /// Call tokens.
    pub(crate) tokens: CallTokens,
    /// Public URLs.
    pub(crate) urls: PublicUrls,
    /// ACS JWT validation (`None` = off).
    pub(crate) jwt: Option<JwtValidator>,
    /// Media connections need a call token.
    pub(crate) require_call_token: bool,
    /// Operator API key (`None` = operator API disabled).
    pub(crate) operator_api_key: Option<String>,
    /// Event Grid webhook secret (`None` = not checked).
    pub(crate) webhook_secret: Option<String>,
    /// IncomingCall deduplication.
    pub(crate) dedupe: Dedupe,
    /// Microsoft Graph.
    pub(crate) graph: GraphClient,
    /// ACS immutable resource id (default `resourceId` of Teams extension users).
    pub(crate) resource_id: Option<String>,
    /// Largest request body of the webhook and callbacks (`server.max_body_bytes`; the operator
    /// API takes at most [`MAX_OPERATOR_BODY`](super::http::MAX_OPERATOR_BODY) of it).
    pub(crate) max_body_bytes: usize,
    /// `control.playback_dir` (`None` = file playback refused).
    pub(crate) playback_dir: Option<std::path::PathBuf>,
    /// The media side of operator playback (attached by `app`).
    player: std::sync::OnceLock<Arc<dyn super::playback::Player>>,
    /// Cluster mode: the shared state and routing (attached by `app`; none = single process).
    link: std::sync::OnceLock<Arc<dyn super::shared::ClusterLink>>,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl ControlPlane {
    /// Attaches the media side of operator playback (once; later calls are ignored).
    pub(crate) fn set_player(&self, player: Arc<dyn super::playback::Player>) {
        let _ = self.player.set(player);
    }

    /// Attaches the cluster link (once; later calls are ignored): cluster mode.
    pub(crate) fn set_link(&self, link: Arc<dyn super::shared::ClusterLink>) {
        let _ = self.link.set(link);
    }

    /// The cluster link (`None`: single-process mode).
    pub(crate) fn link(&self) -> Option<&Arc<dyn super::shared::ClusterLink>> {
        self.link.get()
    }

    /// The media side of operator playback, when attached.
    pub(crate) fn player(&self) -> Option<Arc<dyn super::playback::Player>> {
        self.player.get().cloned()
    }

    /// Builds the control plane for a gateway bound to `bound`, with the real ACS client.
    pub fn from_config(
        cfg: &PlaneConfig,
        metrics: Arc<Metrics>,
        bound: SocketAddr,
    ) -> Result<Arc<Self>, ControlError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .build()
            .map_err(|e| ControlError::Http(e.to_string()))?;
        let acs: Option<Arc<dyn AcsApi>> = if cfg.acs.configured() {
            let connection = ConnectionString::parse(&cfg.acs.connection_string)?;
            Some(Arc::new(HttpAcsClient::new(
                AcsClientConfig {
                    connection,
                    api_version: cfg.acs.api_version.clone(),
                    request_timeout: Duration::from_millis(cfg.acs.request_timeout_ms),
                    max_retries: cfg.acs.max_retries,
                    max_retry_after: Duration::from_millis(cfg.acs.max_retry_after_ms),
                    initial_backoff: Duration::from_millis(200),
                },
                http.clone(),
                metrics.clone(),
            )))
        } else {
            None
        };
        Self::build(cfg, metrics, bound, acs, http)
    }

    /// Builds the control plane with a given ACS implementation (tests: a mock).
    #[cfg(test)]
    pub(crate) fn with_acs(
        cfg: &PlaneConfig,
        metrics: Arc<Metrics>,
        bound: SocketAddr,
        acs: Option<Arc<dyn AcsApi>>,
    ) -> Result<Arc<Self>, ControlError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .build()
            .map_err(|e| ControlError::Http(e.to_string()))?;
        Self::build(cfg, metrics, bound, acs, http)
    }

    fn build(
        cfg: &PlaneConfig,
        metrics: Arc<Metrics>,
        bound: SocketAddr,
        acs: Option<Arc<dyn AcsApi>>,
        http: reqwest::Client,
    ) -> Result<Arc<Self>, ControlError> {
        let c = &cfg.control;
        let tokens = CallTokens::new(&c.call_token_secret, c.call_token_ttl_secs)?;
        let urls = PublicUrls::new(&c.public_base_url, &c.public_media_url, bound);
        let jwt = cfg.acs.jwt_enabled().then(|| {
            JwtValidator::new(
                JwtSettings {
                    issuer: cfg.acs.jwt.issuer.trim().to_owned(),
                    audience: cfg.acs.jwt_audience().to_owned(),
                    jwks_url: cfg.acs.jwt.jwks_url.trim().to_owned(),
                    leeway_secs: cfg.acs.jwt.leeway_secs,
                    limits: JwksLimits::default(),
                    fetch_timeout: Duration::from_secs(10),
                },
                http.clone(),
                metrics.clone(),
            )
        });
        let plane = ControlPlane {
            registry: CallRegistry::new(
                c.registry_max_calls,
                c.ended_call_ttl_secs,
                metrics.control.calls_active.clone(),
            ),
            acs,
            policy: AnswerPolicy::new(&cfg.answer)?,
            tokens,
            urls,
            jwt,
            require_call_token: cfg.require_call_token(),
            operator_api_key: non_empty(&c.operator_api_key),
            webhook_secret: non_empty(&c.eventgrid_secret),
            dedupe: Dedupe::new(dedupe::DEFAULT_CAPACITY, dedupe::DEFAULT_TTL),
            graph: GraphClient::new(
                &c.graph_base_url,
                &c.graph_token,
                Duration::from_secs(15),
                http,
            ),
            resource_id: non_empty(&cfg.acs.resource_id),
            max_body_bytes: cfg.max_body_bytes,
            playback_dir: non_empty(&cfg.control.playback_dir).map(std::path::PathBuf::from),
            player: std::sync::OnceLock::new(),
            link: std::sync::OnceLock::new(),
            metrics,
        };
        plane.log_summary();
        Ok(Arc::new(plane))
    }

    fn log_summary(&self) {
        if self.tokens.generated() && self.acs.is_some() {
            tracing::info!(
                "control.call_token_secret not set: generated a random one; call tokens (media and callback URLs) will not survive a restart"
            );
        }
        if self.acs.is_some() {
            tracing::info!(
                callbacks = %self.urls.base,
                media = %self.urls.media,
                jwt = self.jwt.is_some(),
                require_call_token = self.require_call_token,
                "control plane: answering IncomingCall events at /api/incomingCall"
            );
            if !self.urls.looks_public() {
                tracing::warn!(
                    base = %self.urls.base,
                    media = %self.urls.media,
                    "control.public_base_url is not a public https URL: ACS in the cloud cannot reach callbacks or media"
                );
            }
        } else {
            tracing::info!("ACS not configured: /api/incomingCall validates subscriptions only; ACS operations answer 503");
        }
        if self.operator_api_key.is_none() {
            tracing::info!("operator API disabled (set control.operator_api_key)");
        }
    }

    /// Serves `/api/*`.
    pub(crate) async fn handle<B>(self: &Arc<Self>, req: Request<B>) -> HttpResponse
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path().to_owned();
        if path == "/api/incomingCall" || path == "/api/incomingCall/" {
            return super::webhook::handle(self, req).await;
        }
        if let Some(token) = path.strip_prefix("/api/callbacks/") {
            let token = token.to_owned();
            return super::callbacks::handle(self, req, &token).await;
        }
        if path == "/api/calls"
            || path.starts_with("/api/calls/")
            || path == "/api/agents/token"
            || path == "/api/resource-accounts"
            || path.starts_with("/api/teams-extension/")
        {
            return super::operator::handle(self, req).await;
        }
        error_response(StatusCode::NOT_FOUND, format!("no route for {path}"))
    }
}
