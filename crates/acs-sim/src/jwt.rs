//! The fake ACS's token issuer: RS256 JWTs like the ones Call Automation puts in the
//! `Authorization` header of its media WebSocket upgrades (24 h lifetime) and of every callback
//! (5 min) — docs/PROTOCOL.md §3.1, §3.2 — and the JSON Web Key Set and OpenID-configuration-like
//! document a gateway validates them with.
//!
//! The key is loaded from a PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE
//! KEY`), generated (2048 bits; about 0.1–0.3 s in a release build, 1–5 s in a debug build, so
//! tests load a committed test key instead), or kept in a file: loaded from it, or generated and
//! saved there the first time ([`SigningKeySource::Persistent`], what `acs-sim acs` uses so its
//! `kid` survives restarts). The key id (`kid`) defaults to the RFC 7638 thumbprint of the
//! public key.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::SimError;

/// The issuer (`iss`) of real Call Automation tokens (docs/PROTOCOL.md §3.1), the fake's default.
pub const ACS_ISSUER: &str = "https://acscallautomation.communication.azure.com";
/// Path of the JSON Web Key Set on the fake ACS (as on the real issuer).
pub const JWKS_PATH: &str = "/calling/keys";
/// Path of the OpenID configuration document on the fake ACS (as on the real issuer).
pub const OPENID_CONFIG_PATH: &str = "/calling/.well-known/acsopenidconfiguration";
/// Lifetime of the token on a media WebSocket upgrade.
pub const WEBSOCKET_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of the token on a callback.
pub const CALLBACK_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Bits of a generated key.
pub const GENERATED_KEY_BITS: usize = 2048;

/// Where the signing key comes from.
#[derive(Clone, Default)]
pub enum SigningKeySource {
    /// Generate a fresh 2048-bit key.
    #[default]
    Generate,
    /// This PEM text (PKCS#8 or PKCS#1).
    Pem(String),
    /// The PEM in this file; when the file does not exist, a generated key saved there first
    /// (PKCS#8, mode 0600 on Unix, parent directories created).
    Persistent(PathBuf),
}

impl std::fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKeySource::Generate => f.write_str("Generate"),
            SigningKeySource::Pem(_) => f.write_str("Pem(<private key>)"),
            SigningKeySource::Persistent(p) => write!(f, "Persistent({})", p.display()),
        }
    }
}

/// The claims of every token the fake ACS issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsClaims {
    /// Issuer.
    pub iss: String,
    /// Audience: the ACS resource id.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// An RS256 signer with its public JWK.
pub struct AcsSigner {
    key: EncodingKey,
    kid: String,
    issuer: String,
    audience: String,
    n_b64: String,
    e_b64: String,
    pem: String,
}

impl std::fmt::Debug for AcsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcsSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn key_err(e: impl std::fmt::Display) -> SimError {
    SimError::SigningKey(e.to_string())
}

impl AcsSigner {
    /// A signer from `source` (generation runs on the calling thread: call it from
    /// `spawn_blocking` in async code). `kid` `None` = the key's RFC 7638 thumbprint.
    pub fn new(
        source: &SigningKeySource,
        kid: Option<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, SimError> {
        let private = match source {
            SigningKeySource::Generate => {
                RsaPrivateKey::new(&mut rsa::rand_core::OsRng, GENERATED_KEY_BITS)
                    .map_err(key_err)?
            }
            SigningKeySource::Pem(pem) => parse_pem(pem)?,
            SigningKeySource::Persistent(path) => parse_pem(&load_or_create_pem(path)?)
                .map_err(|e| key_err(format!("{}: {e}", path.display())))?,
        };
        let der = private.to_pkcs1_der().map_err(key_err)?;
        let key = EncodingKey::from_rsa_der(der.as_bytes());
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(key_err)?
            .to_string();
        let n_b64 = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e_b64 = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        let kid = kid.unwrap_or_else(|| thumbprint(&n_b64, &e_b64));
        Ok(AcsSigner {
            key,
            kid,
            issuer: issuer.into(),
            audience: audience.into(),
            n_b64,
            e_b64,
            pem,
        })
    }

    /// The key id in every token header and in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud` of every token (the ACS resource id).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The private key as PKCS#8 PEM (to save a generated key and reuse it).
    pub fn private_key_pem(&self) -> &str {
        &self.pem
    }

    /// A token valid from `now_unix` for `lifetime`.
    pub fn sign_at(&self, now_unix: i64, lifetime: Duration) -> Result<String, SimError> {
        let claims = AcsClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
        };
        self.sign_claims(&claims)
    }

    /// A token valid from now for `lifetime`.
    pub fn sign(&self, lifetime: Duration) -> Result<String, SimError> {
        self.sign_at(unix_now(), lifetime)
    }

    /// A token with arbitrary claims (tests: expired tokens, a wrong audience, …).
    pub fn sign_claims<C: Serialize>(&self, claims: &C) -> Result<String, SimError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(key_err)
    }

    /// The public key as a JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": self.n_b64,
            "e": self.e_b64,
        })
    }

    /// The JSON Web Key Set `{"keys":[jwk]}` served at [`JWKS_PATH`].
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk()] })
    }

    /// The OpenID-configuration-like document served at [`OPENID_CONFIG_PATH`], for a fake ACS
    /// reachable at `base_url`.
    pub fn openid_configuration(&self, base_url: &str) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{base_url}{JWKS_PATH}"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        })
    }
}

fn parse_pem(pem: &str) -> Result<RsaPrivateKey, SimError> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| key_err(format!("not an RSA private key PEM: {e}")))
}

/// The PEM at `path`, or a generated key written there first. The key goes to a temporary
/// file that is then linked to `path` only if `path` still does not exist, so two fakes
/// starting at once end up with the same key (the loser reads the winner's).
fn load_or_create_pem(path: &Path) -> Result<String, SimError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| SimError::Read {
            path: p.to_owned(),
            source,
        })
    };
    if path.exists() {
        return read(path);
    }
    let write_err = |source| SimError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let private =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, GENERATED_KEY_BITS).map_err(key_err)?;
    let pem = private.to_pkcs8_pem(LineEnding::LF).map_err(key_err)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(pem.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(pem.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(write_err(e)),
    }
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key.
fn thumbprint(n_b64: &str, e_b64: &str) -> String {
    let canonical = format!(r#"{{"e":"{e_b64}","kty":"RSA","n":"{n_b64}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    fn test_pem() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/keys/jwt_test_key_1.pem"
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn signs_tokens_its_jwks_validates() {
        let s = AcsSigner::new(
            &SigningKeySource::Pem(test_pem()),
            None,
            ACS_ISSUER,
            "resource-1",
        )
        .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(s.jwk()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let now = unix_now();
        let token = s.sign_at(now, CALLBACK_TOKEN_LIFETIME).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(s.kid()));
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[ACS_ISSUER]);
        v.set_audience(&["resource-1"]);
        let claims = decode::<AcsClaims>(&token, &key, &v).unwrap().claims;
        assert_eq!(claims.exp - claims.iat, 300);
        // A different audience is refused.
        v.set_audience(&["other"]);
        assert!(decode::<AcsClaims>(&token, &key, &v).is_err());
        // The thumbprint kid is stable; an explicit kid is used as given.
        let again = AcsSigner::new(&SigningKeySource::Pem(test_pem()), None, "i", "a").unwrap();
        assert_eq!(again.kid(), s.kid());
        let named = AcsSigner::new(
            &SigningKeySource::Pem(test_pem()),
            Some("k1".into()),
            "i",
            "a",
        )
        .unwrap();
        assert_eq!(named.jwks()["keys"][0]["kid"], "k1");
        assert!(s
            .private_key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            s.openid_configuration("http://127.0.0.1:1")["jwks_uri"],
            "http://127.0.0.1:1/calling/keys"
        );
    }

    #[test]
    fn a_persistent_key_file_is_loaded_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        std::fs::write(&path, test_pem()).unwrap();
        let from_file =
            AcsSigner::new(&SigningKeySource::Persistent(path.clone()), None, "i", "a").unwrap();
        let from_pem = AcsSigner::new(&SigningKeySource::Pem(test_pem()), None, "i", "a").unwrap();
        assert_eq!(from_file.kid(), from_pem.kid());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            test_pem(),
            "untouched"
        );
        std::fs::write(&path, "garbage").unwrap();
        let e = AcsSigner::new(&SigningKeySource::Persistent(path.clone()), None, "i", "a")
            .unwrap_err();
        assert!(e.to_string().contains("signing-key.pem"), "{e}");
        assert!(format!("{:?}", SigningKeySource::Persistent(path)).contains("signing-key.pem"));
    }

    #[test]
    fn bad_pem_is_a_typed_error() {
        let e = AcsSigner::new(&SigningKeySource::Pem("nope".into()), None, "i", "a").unwrap_err();
        assert!(matches!(e, SimError::SigningKey(_)), "{e}");
        assert!(!format!("{:?}", SigningKeySource::Pem(test_pem())).contains("BEGIN"));
    }
}
