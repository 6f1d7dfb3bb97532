//! Validation of the RS256 bearer tokens ACS puts on the media WebSocket upgrade and on every
//! callback (docs/PROTOCOL.md §3.1, §3.2): signature with a key from the configured JWKS URL, issuer,
//! audience (the ACS immutable resource id), expiry and not-before with a leeway.
//!
//! Keys are fetched on first use and cached; the cache is downloaded again at once when a token
//! names a `kid` it does not hold (ACS rotated its key) or when it is older than
//! [`MAX_KEY_AGE`]. Two limits ([`JwksLimits`]) keep that from becoming a flood of downloads:
//! one download per `kid` per [`KID_REFETCH_INTERVAL`] (concurrent requests with the new `kid`
//! wait for the one download), and a global budget of [`REFETCH_BURST`] downloads, refilled at
//! one per [`REFETCH_PERIOD`], so tokens with made-up `kid`s cost at most that; misses the
//! limits turn away are counted (`jwks_refetches_limited_total`). Refusals carry a reason from
//! a closed set (see [`JwtError::reason`]).

use crate::metrics::Metrics;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// ACS's issuer.
pub(crate) const ACS_ISSUER: &str = "https://acscallautomation.communication.azure.com";
/// ACS's JWKS.
pub(crate) const ACS_JWKS_URL: &str =
    "https://acscallautomation.communication.azure.com/calling/keys";
/// Cached keys older than this are refreshed on next use.
pub(crate) const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Least time between two JWKS downloads triggered by the same `kid`.
pub(crate) const KID_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// JWKS downloads the global budget allows at once.
pub const REFETCH_BURST: u32 = 4;
/// The global budget earns one more download per this (at most [`REFETCH_BURST`] saved).
pub(crate) const REFETCH_PERIOD: Duration = Duration::from_secs(15);
/// Largest bearer token read.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Validator settings.
#[derive(Debug, Clone)]
pub(crate) struct JwtSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (the ACS immutable resource id).
    pub audience: String,
    /// Where the signing keys are.
    pub jwks_url: String,
    /// Clock skew allowed on `exp` / `nbf`, seconds.
    pub leeway_secs: u64,
    /// How often a cache miss may download the JWKS.
    pub limits: JwksLimits,
    /// JWKS download timeout.
    pub fetch_timeout: Duration,
}

/// Rate limits of the JWKS downloads a cache miss triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JwksLimits {
    /// Least time between two downloads triggered by the same `kid`.
    pub kid_refetch_interval: Duration,
    /// Downloads allowed at once (the budget's size).
    pub refetch_burst: u32,
    /// The budget earns one download per this; zero = no global limit.
    pub refetch_period: Duration,
}

impl Default for JwksLimits {
    fn default() -> Self {
        Self {
            kid_refetch_interval: KID_REFETCH_INTERVAL,
            refetch_burst: REFETCH_BURST,
            refetch_period: REFETCH_PERIOD,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// No `Authorization: Bearer` credential.
    #[error("no bearer token")]
    Missing,
    /// Not a JWT, not RS256, or a required claim missing.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify with the key of its `kid`.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` is not the ACS resource id.
    #[error("wrong token audience")]
    WrongAudience,
    /// `iss` is not ACS.
    #[error("wrong token issuer")]
    WrongIssuer,
    /// No key with the token's `kid`, even after a refresh.
    #[error("unknown signing key id")]
    UnknownKid,
    /// The keys could not be fetched.
    #[error("signing keys unavailable: {0}")]
    JwksUnavailable(String),
}

impl JwtError {
    /// The `acs_gateway_auth_rejections_total` reason.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            JwtError::Missing => "missing",
            JwtError::Malformed(_) => "malformed",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::UnknownKid => "unknown_kid",
            JwtError::JwksUnavailable(_) => "jwks_unavailable",
        }
    }
}

/// What a cache miss may do (see [`KeyCache::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Download the JWKS now.
    Fetch,
    /// This `kid` triggered a download moments ago: wait for it (if still running), no new one.
    Wait,
    /// The global download budget is spent: no download.
    Limited,
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    last_error: Option<String>,
    /// `kid` (empty: none) → when it last triggered a download; entries older than
    /// `kid_refetch_interval` are pruned whenever a download is planned.
    kid_tries: HashMap<String, Instant>,
    /// Downloads the global budget still allows (refilled over time, at most `refetch_burst`).
    budget: f64,
    budget_at: Instant,
}

impl KeyCache {
    fn new(limits: &JwksLimits) -> Self {
        Self {
            keys: HashMap::new(),
            fetched_at: None,
            last_error: None,
            kid_tries: HashMap::new(),
            budget: f64::from(limits.refetch_burst),
            budget_at: Instant::now(),
        }
    }

    /// Decides whether a miss on `kid` downloads the JWKS: at most once per `kid` per
    /// `kid_refetch_interval`, and within the global budget (`refetch_burst` at once, one more
    /// per `refetch_period`) so made-up `kid`s cannot turn into a stream of downloads.
    fn plan(&mut self, kid: &str, limits: &JwksLimits, now: Instant) -> Plan {
        if self
            .kid_tries
            .get(kid)
            .is_some_and(|t| now.saturating_duration_since(*t) < limits.kid_refetch_interval)
        {
            return Plan::Wait;
        }
        let burst = f64::from(limits.refetch_burst);
        if limits.refetch_period.is_zero() {
            self.budget = burst;
        } else {
            let earned = now.saturating_duration_since(self.budget_at).as_secs_f64()
                / limits.refetch_period.as_secs_f64();
            self.budget = (self.budget + earned).min(burst);
        }
        self.budget_at = now;
        if self.budget < 1.0 {
            return Plan::Limited;
        }
        self.budget -= 1.0;
        self.kid_tries
            .retain(|_, t| now.saturating_duration_since(*t) < limits.kid_refetch_interval);
        self.kid_tries.insert(kid.to_owned(), now);
        Plan::Fetch
    }
}

/// The validator.
pub(crate) struct JwtValidator {
    settings: JwtSettings,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    download: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("settings", &self.settings)
            .finish()
    }
}

impl JwtValidator {
    /// A validator fetching keys with `http`.
    pub(crate) fn new(settings: JwtSettings, http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        Self {
            cache: RwLock::new(KeyCache::new(&settings.limits)),
            settings,
            http,
            download: tokio::sync::Mutex::new(()),
            metrics,
        }
    }

    fn cached(&self, kid: Option<&str>) -> (Option<DecodingKey>, bool) {
        let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let fresh = c.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
        let key = match kid {
            Some(k) => c.keys.get(k).cloned(),
            None if c.keys.len() == 1 => c.keys.values().next().cloned(),
            None => None,
        };
        (key, fresh)
    }

    /// After a miss on `kid` (not cached, or the cache is stale or empty): downloads the JWKS
    /// if the limits allow, else waits for the download this `kid` started moments ago, else
    /// counts a limited refetch.
    async fn refetch(&self, kid: Option<&str>) {
        let plan = self.cache.write().unwrap_or_else(|p| p.into_inner()).plan(
            kid.unwrap_or(""),
            &self.settings.limits,
            Instant::now(),
        );
        match plan {
            Plan::Fetch => {
                let _one = self.download.lock().await;
                // a download that finished while this one waited may have brought the key
                if let (Some(_), true) = self.cached(kid) {
                    return;
                }
                self.download().await;
            }
            Plan::Wait => {
                // the download this kid started (if still running) ends before the lock is free
                drop(self.download.lock().await);
                if self.cached(kid).0.is_none() {
                    self.metrics.control.jwks_refetch_limited();
                }
            }
            Plan::Limited => {
                self.metrics.control.jwks_refetch_limited();
                tracing::debug!(
                    kid = kid.unwrap_or(""),
                    "JWKS download budget spent: no refetch"
                );
            }
        }
    }

    /// Downloads the JWKS and replaces the cached keys (on failure the old keys stay).
    async fn download(&self) {
        let fetched = async {
            let resp = self
                .http
                .get(&self.settings.jwks_url)
                .timeout(self.settings.fetch_timeout)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status().as_u16()));
            }
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| format!("not a JWKS: {e}"))
        }
        .await;
        match fetched {
            Ok(set) => {
                let mut keys = HashMap::new();
                for (i, jwk) in set.keys.iter().enumerate() {
                    if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
                        continue;
                    }
                    if let Ok(k) = DecodingKey::from_jwk(jwk) {
                        let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
                        keys.insert(kid, k);
                    }
                }
                tracing::info!(keys = keys.len(), url = %self.settings.jwks_url, "ACS signing keys fetched");
                self.metrics.control.jwks_fetch(true);
                let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
                c.keys = keys;
                c.fetched_at = Some(Instant::now());
                c.last_error = None;
            }
            Err(e) => {
                self.metrics.control.jwks_fetch(false);
                tracing::warn!(error = %e, url = %self.settings.jwks_url, "cannot fetch ACS signing keys");
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_error = Some(e);
            }
        }
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, JwtError> {
        let (key, fresh) = self.cached(kid);
        if let (Some(k), true) = (&key, fresh) {
            return Ok(k.clone());
        }
        self.refetch(kid).await;
        // a stale key still serves when the refresh failed or was limited
        if let Some(k) = self.cached(kid).0.or(key) {
            return Ok(k);
        }
        let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
        if c.fetched_at.is_none() {
            Err(JwtError::JwksUnavailable(
                c.last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet (download budget spent)".into()),
            ))
        } else {
            Err(JwtError::UnknownKid)
        }
    }

    /// Validates a bearer credential (`None` = no credential); returns the claims.
    pub(crate) async fn validate(
        &self,
        token: Option<&str>,
    ) -> Result<serde_json::Value, JwtError> {
        let token = token.ok_or(JwtError::Missing)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed("token too long".into()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(JwtError::Malformed(format!(
                "algorithm {:?}, expected RS256",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.audience]);
        v.leeway = self.settings.leeway_secs;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                ErrorKind::InvalidAudience => JwtError::WrongAudience,
                ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                _ => JwtError::Malformed(e.to_string()),
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::control::testkit::fixture;
    use crate::control::testserver::{Reply, TestServer};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    /// A token signed with test key `key_no` (1 or 2), `kid` as given.
    pub(crate) fn token(key_no: u8, kid: Option<&str>, claims: serde_json::Value) -> String {
        let pem = fixture(&format!("keys/jwt_test_key_{key_no}.pem"));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = kid.map(str::to_owned);
        encode(&h, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
    }

    pub(crate) fn claims(iss: &str, aud: &str, exp_offset: i64) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": iss, "aud": aud, "exp": now + exp_offset, "iat": now, "nbf": now - 10})
    }

    pub(crate) const AUD: &str = "11111111-2222-3333-4444-555555555555";
    pub(crate) const ISS: &str = "https://acs.test.invalid";

    async fn jwks_server() -> TestServer {
        let jwks: serde_json::Value =
            serde_json::from_slice(&fixture("keys/jwt_test_jwks.json")).unwrap();
        TestServer::start(move |_, _| Reply::json(200, &jwks)).await
    }

    fn validator(server: &TestServer, metrics: Arc<Metrics>, limits: JwksLimits) -> JwtValidator {
        JwtValidator::new(
            JwtSettings {
                issuer: ISS.into(),
                audience: AUD.into(),
                jwks_url: format!("{}/calling/keys", server.url()),
                leeway_secs: 5,
                limits,
                fetch_timeout: Duration::from_secs(5),
            },
            reqwest::Client::new(),
            metrics,
        )
    }

    #[tokio::test]
    async fn valid_and_every_refusal() {
        let server = jwks_server().await;
        let metrics = Metrics::new();
        let v = validator(&server, metrics.clone(), JwksLimits::default());
        let good = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        let c = v.validate(Some(&good)).await.unwrap();
        assert_eq!(c["aud"], AUD);
        assert_eq!(server.requests().len(), 1, "fetched once");
        v.validate(Some(&good)).await.unwrap();
        assert_eq!(server.requests().len(), 1, "cached");

        let cases: Vec<(String, JwtError)> = vec![
            // forged: right kid, other key
            (
                token(2, Some("test-key-1"), claims(ISS, AUD, 300)),
                JwtError::BadSignature,
            ),
            (
                token(1, Some("test-key-1"), claims(ISS, AUD, -60)),
                JwtError::Expired,
            ),
            (
                token(1, Some("test-key-1"), claims(ISS, "other-resource", 300)),
                JwtError::WrongAudience,
            ),
            (
                token(
                    1,
                    Some("test-key-1"),
                    claims("https://evil.example", AUD, 300),
                ),
                JwtError::WrongIssuer,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(v.validate(Some(&t)).await.unwrap_err(), want);
        }
        assert_eq!(v.validate(None).await.unwrap_err().reason(), "missing");
        assert_eq!(
            v.validate(Some("not.a.jwt")).await.unwrap_err().reason(),
            "malformed"
        );
        // alg none / HS256 are refused before any key lookup
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims(ISS, AUD, 300),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(
            v.validate(Some(&hs)).await.unwrap_err().reason(),
            "malformed"
        );
        // A not-yet-valid token.
        let mut c = claims(ISS, AUD, 600);
        c["nbf"] = json!(chrono::Utc::now().timestamp() + 300);
        assert_eq!(
            v.validate(Some(&token(1, Some("test-key-1"), c)))
                .await
                .unwrap_err(),
            JwtError::NotYetValid
        );
        // Within the leeway an expired token still passes.
        let t = token(1, Some("test-key-1"), claims(ISS, AUD, -2));
        v.validate(Some(&t)).await.unwrap();
        assert_eq!(server.requests().len(), 1, "no refetch for known kids");
    }

    #[tokio::test]
    async fn an_unknown_kid_is_fetched_at_once_then_limited_per_kid() {
        let server = jwks_server().await;
        let metrics = Metrics::new();
        let limits = JwksLimits {
            kid_refetch_interval: Duration::from_millis(300),
            refetch_burst: 100,
            refetch_period: Duration::ZERO,
        };
        let v = validator(&server, metrics.clone(), limits);
        let good = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        v.validate(Some(&good)).await.unwrap();
        assert_eq!(server.requests().len(), 1);
        // Right after the first download, a new kid downloads again at once (a rotation).
        let t = token(2, Some("rotated-key"), claims(ISS, AUD, 300));
        assert_eq!(
            v.validate(Some(&t)).await.unwrap_err(),
            JwtError::UnknownKid
        );
        assert_eq!(server.requests().len(), 2, "no floor after a download");
        // The same kid again within its interval: no download, counted.
        for _ in 0..20 {
            assert_eq!(
                v.validate(Some(&t)).await.unwrap_err().reason(),
                "unknown_kid"
            );
        }
        assert_eq!(server.requests().len(), 2);
        assert_eq!(metrics.control.jwks_refetch_limited_count(), 20);
        tokio::time::sleep(Duration::from_millis(350)).await;
        // After its interval the kid may try once more.
        assert_eq!(
            v.validate(Some(&t)).await.unwrap_err(),
            JwtError::UnknownKid
        );
        assert_eq!(server.requests().len(), 3);
        assert_eq!(metrics.control.jwks_fetch_count(true), 3);
        // Known keys keep working from the cache.
        v.validate(Some(&good)).await.unwrap();
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn made_up_kids_cost_a_bounded_number_of_downloads() {
        let server = jwks_server().await;
        let metrics = Metrics::new();
        let limits = JwksLimits {
            kid_refetch_interval: Duration::from_secs(5),
            refetch_burst: 3,
            refetch_period: Duration::from_secs(600),
        };
        let v = validator(&server, metrics.clone(), limits);
        let good = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        v.validate(Some(&good)).await.unwrap();
        for i in 0..50 {
            let t = token(2, Some(&format!("made-up-{i}")), claims(ISS, AUD, 300));
            assert_eq!(
                v.validate(Some(&t)).await.unwrap_err().reason(),
                "unknown_kid"
            );
        }
        assert_eq!(server.requests().len(), 3, "the budget of 3, no more");
        assert_eq!(metrics.control.jwks_refetch_limited_count(), 48);
        v.validate(Some(&good)).await.unwrap();
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn concurrent_tokens_with_a_new_kid_share_one_download() {
        let one: serde_json::Value =
            serde_json::from_slice(&fixture("keys/jwt_test_jwks.json")).unwrap();
        let both: serde_json::Value =
            serde_json::from_slice(&fixture("keys/jwt_test_jwks_both.json")).unwrap();
        let server =
            TestServer::start(move |_, i| Reply::json(200, if i == 0 { &one } else { &both }))
                .await;
        let metrics = Metrics::new();
        let v = Arc::new(validator(&server, metrics.clone(), JwksLimits::default()));
        v.validate(Some(&token(1, Some("test-key-1"), claims(ISS, AUD, 300))))
            .await
            .unwrap();
        let rotated = token(2, Some("test-key-2"), claims(ISS, AUD, 300));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (v, t) = (v.clone(), rotated.clone());
                tokio::spawn(async move { v.validate(Some(&t)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(server.requests().len(), 2, "one download for the new kid");
        assert_eq!(metrics.control.jwks_refetch_limited_count(), 0);
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_by_the_refresh() {
        let one: serde_json::Value =
            serde_json::from_slice(&fixture("keys/jwt_test_jwks.json")).unwrap();
        let both: serde_json::Value =
            serde_json::from_slice(&fixture("keys/jwt_test_jwks_both.json")).unwrap();
        let server =
            TestServer::start(move |_, i| Reply::json(200, if i == 0 { &one } else { &both }))
                .await;
        let v = validator(&server, Metrics::new(), JwksLimits::default());
        v.validate(Some(&token(1, Some("test-key-1"), claims(ISS, AUD, 300))))
            .await
            .unwrap();
        let rotated = token(2, Some("test-key-2"), claims(ISS, AUD, 300));
        v.validate(Some(&rotated)).await.unwrap();
        assert_eq!(server.requests().len(), 2, "one refresh for the new kid");
        // key 2 under key 1's kid is still a forgery
        let forged = token(2, Some("test-key-1"), claims(ISS, AUD, 300));
        assert_eq!(
            v.validate(Some(&forged)).await.unwrap_err(),
            JwtError::BadSignature
        );
    }

    #[tokio::test]
    async fn unreachable_jwks() {
        let server = TestServer::start(|_, _| Reply::empty(500)).await;
        let metrics = Metrics::new();
        let v = validator(&server, metrics.clone(), JwksLimits::default());
        let t = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        let e = v.validate(Some(&t)).await.unwrap_err();
        assert_eq!(e.reason(), "jwks_unavailable");
        assert_eq!(metrics.control.jwks_fetch_count(false), 1);
    }
}
