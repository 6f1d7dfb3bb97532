//! Validation of the RS256 bearer tokens ACS puts on the media WebSocket upgrade and on every
//! callback (PROTOCOL.md §3.1, §3.2): signature with a key from the configured JWKS URL, issuer,
//! audience (the ACS immutable resource id), expiry and not-before with a leeway.
//!
//! Keys are fetched on first use and cached; the cache is refreshed when it is older than
//! [`MAX_KEY_AGE`] or when a token names a `kid` it does not hold, at most once per
//! [`MIN_REFRESH_INTERVAL`] (a flood of tokens with made-up `kid`s cannot turn into a flood of
//! JWKS downloads). Refusals carry a reason from a closed set (see [`JwtError::reason`]).

use crate::metrics::Metrics;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// ACS's issuer.
pub const ACS_ISSUER: &str = "https://acscallautomation.communication.azure.com";
/// ACS's JWKS.
pub const ACS_JWKS_URL: &str = "https://acscallautomation.communication.azure.com/calling/keys";
/// Cached keys older than this are refreshed on next use.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Least time between two JWKS downloads.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Largest bearer token read.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Validator settings.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (the ACS immutable resource id).
    pub audience: String,
    /// Where the signing keys are.
    pub jwks_url: String,
    /// Clock skew allowed on `exp` / `nbf`, seconds.
    pub leeway_secs: u64,
    /// Least time between two downloads.
    pub min_refresh_interval: Duration,
    /// JWKS download timeout.
    pub fetch_timeout: Duration,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
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
    pub fn reason(&self) -> &'static str {
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

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The validator.
pub struct JwtValidator {
    settings: JwtSettings,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    refresh: tokio::sync::Mutex<()>,
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
    pub fn new(settings: JwtSettings, http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        Self {
            settings,
            http,
            cache: RwLock::new(KeyCache::default()),
            refresh: tokio::sync::Mutex::new(()),
            metrics,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
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

    /// Downloads the JWKS unless one was attempted within the minimum interval.
    async fn refresh(&self) -> Result<(), JwtError> {
        let _one = self.refresh.lock().await;
        {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if c.last_attempt
                .is_some_and(|t| t.elapsed() < self.settings.min_refresh_interval)
            {
                return Ok(());
            }
        }
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .last_attempt = Some(Instant::now());
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
                Ok(())
            }
            Err(e) => {
                self.metrics.control.jwks_fetch(false);
                tracing::warn!(error = %e, url = %self.settings.jwks_url, "cannot fetch ACS signing keys");
                Err(JwtError::JwksUnavailable(e))
            }
        }
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, JwtError> {
        let (key, fresh) = self.cached(kid);
        if let (Some(k), true) = (&key, fresh) {
            return Ok(k.clone());
        }
        let refreshed = self.refresh().await;
        match (self.cached(kid).0, key) {
            (Some(k), _) | (None, Some(k)) => Ok(k),
            (None, None) => {
                let never_fetched = self
                    .cache
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .fetched_at
                    .is_none();
                match refreshed {
                    Err(e) if never_fetched => Err(e),
                    _ => Err(JwtError::UnknownKid),
                }
            }
        }
    }

    /// Validates a bearer credential (`None` = no credential); returns the claims.
    pub async fn validate(&self, token: Option<&str>) -> Result<serde_json::Value, JwtError> {
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
    use crate::control::testserver::{Reply, TestServer};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys/").to_owned() + name;
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A token signed with test key `key_no` (1 or 2), `kid` as given.
    pub(crate) fn token(key_no: u8, kid: Option<&str>, claims: serde_json::Value) -> String {
        let pem = fixture(&format!("jwt_test_key_{key_no}.pem"));
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
            serde_json::from_slice(&fixture("jwt_test_jwks.json")).unwrap();
        TestServer::start(move |_, _| Reply::json(200, &jwks)).await
    }

    fn validator(
        server: &TestServer,
        metrics: Arc<Metrics>,
        min_refresh: Duration,
    ) -> JwtValidator {
        JwtValidator::new(
            JwtSettings {
                issuer: ISS.into(),
                audience: AUD.into(),
                jwks_url: format!("{}/calling/keys", server.url()),
                leeway_secs: 5,
                min_refresh_interval: min_refresh,
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
        let v = validator(&server, metrics.clone(), Duration::from_secs(60));
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
    async fn unknown_kid_refreshes_once_then_refuses() {
        let server = jwks_server().await;
        let metrics = Metrics::new();
        let v = validator(&server, metrics.clone(), Duration::from_millis(300));
        let good = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        v.validate(Some(&good)).await.unwrap();
        let t = token(2, Some("rotated-key"), claims(ISS, AUD, 300));
        // Too soon after the first download: no refresh, refused.
        assert_eq!(
            v.validate(Some(&t)).await.unwrap_err(),
            JwtError::UnknownKid
        );
        assert_eq!(server.requests().len(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        // Now the unknown kid triggers one refresh, still unknown → refused.
        assert_eq!(
            v.validate(Some(&t)).await.unwrap_err(),
            JwtError::UnknownKid
        );
        assert_eq!(server.requests().len(), 2);
        // A flood of unknown kids does not refetch.
        for _ in 0..20 {
            assert_eq!(
                v.validate(Some(&t)).await.unwrap_err().reason(),
                "unknown_kid"
            );
        }
        assert_eq!(server.requests().len(), 2);
        assert_eq!(metrics.control.jwks_fetch_count(true), 2);
        // Known keys keep working from the cache.
        v.validate(Some(&good)).await.unwrap();
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_by_the_refresh() {
        let one: serde_json::Value =
            serde_json::from_slice(&fixture("jwt_test_jwks.json")).unwrap();
        let both: serde_json::Value =
            serde_json::from_slice(&fixture("jwt_test_jwks_both.json")).unwrap();
        let server =
            TestServer::start(move |_, i| Reply::json(200, if i == 0 { &one } else { &both }))
                .await;
        let v = validator(&server, Metrics::new(), Duration::ZERO);
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
        let v = validator(&server, metrics.clone(), Duration::from_secs(60));
        let t = token(1, Some("test-key-1"), claims(ISS, AUD, 300));
        let e = v.validate(Some(&t)).await.unwrap_err();
        assert_eq!(e.reason(), "jwks_unavailable");
        assert_eq!(metrics.control.jwks_fetch_count(false), 1);
    }
}
