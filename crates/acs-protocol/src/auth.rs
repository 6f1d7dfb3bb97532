//! PURE: HMAC-SHA256 authentication of ACS data-plane REST requests (docs/PROTOCOL.md §5).
//!
//! This module owns the connection string ([`ConnectionString`]), the request signature the
//! gateway adds to every Call Automation / Identity call ([`sign`]), and its check on the
//! receiving side ([`verify`], used by the fake ACS in the simulator). No clock is read: callers
//! pass the date (and, to verify, "now").
//!
//! The scheme, identical in every ACS SDK:
//!
//! 1. `x-ms-date`: the request time as RFC 1123 / IMF-fixdate (`Wed, 13 Apr 2022 18:09:12 GMT`,
//!    [`format_rfc1123`]).
//! 2. `x-ms-content-sha256`: `base64(SHA-256(body))` of the exact body bytes sent
//!    ([`content_hash`]; the empty body hashes to [`EMPTY_BODY_HASH`]).
//! 3. string-to-sign: `VERB\npath_and_query\ndate;host;content_hash` ([`string_to_sign`]); the
//!    verb upper-case, `path_and_query` without scheme or host (`/calling/callConnections:answer?api-version=2025-06-15`),
//!    `host` the authority as sent in `Host` (with a port if there is one).
//! 4. `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64(HMAC-SHA256(key, string-to-sign))>`,
//!    the key being the base64-decoded `accesskey` of the connection string.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the request date (RFC 1123).
pub const HEADER_DATE: &str = "x-ms-date";
/// Header carrying `base64(SHA-256(body))`.
pub const HEADER_CONTENT_HASH: &str = "x-ms-content-sha256";
/// Header carrying the signature.
pub const HEADER_AUTHORIZATION: &str = "Authorization";
/// Header the JS Call Automation policy adds when the request URL's host differs from the ACS
/// resource host that was signed; a verifier signs with this host when it is present.
pub const HEADER_HOST_OVERRIDE: &str = "x-ms-host";
/// Idempotency header (UUID) on the POSTs that need it (docs/PROTOCOL.md §4.1, §5).
pub const HEADER_REPEATABILITY_REQUEST_ID: &str = "Repeatability-Request-ID";
/// Idempotency header (RFC 1123 date of the first attempt), sent with
/// [`HEADER_REPEATABILITY_REQUEST_ID`].
pub const HEADER_REPEATABILITY_FIRST_SENT: &str = "Repeatability-First-Sent";
/// The authorization scheme.
pub const AUTHORIZATION_SCHEME: &str = "HMAC-SHA256";
/// The signed header list, in signing order.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";
/// `x-ms-content-sha256` of an empty body.
pub const EMPTY_BODY_HASH: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/// strftime pattern of an IMF-fixdate.
const RFC1123_FORMAT: &str = "%a, %d %b %Y %H:%M:%S GMT";

// ---------------------------------------------------------------------------------------------
// Connection string
// ---------------------------------------------------------------------------------------------

/// A parsed ACS connection string, `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`.
///
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The endpoint without a trailing `/`, e.g. `https://contoso.communication.azure.com`.
    pub endpoint: String,
    /// The authority of the endpoint (host, with `:port` if given): the `host` that is signed.
    pub host: String,
    /// The decoded access key: the HMAC key.
    pub access_key: Vec<u8>,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("host", &self.host)
            .field(
                "access_key",
                &format_args!("<{} bytes>", self.access_key.len()),
            )
            .finish()
    }
}

/// Why a connection string was refused. No variant carries the key or the raw segment text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    /// A `;`-separated segment has no `=` (1-based position).
    #[error("connection string segment {0} is not key=value")]
    MalformedSegment(usize),
    /// The same key appears twice.
    #[error("connection string has `{0}` twice")]
    DuplicateKey(&'static str),
    /// No `endpoint=`.
    #[error("connection string has no endpoint")]
    MissingEndpoint,
    /// No (or an empty) `accesskey=`.
    #[error("connection string has no accesskey")]
    MissingAccessKey,
    /// The endpoint is not an `http(s)://host[:port][/path]` URL.
    #[error("connection string endpoint is invalid: {0}")]
    InvalidEndpoint(&'static str),
    /// The access key is not valid base64.
    #[error("connection string accesskey is not valid base64")]
    InvalidAccessKey,
}

impl ConnectionString {
    /// Parses `key=value` pairs separated by `;`. Keys are case-insensitive and trimmed; empty
    /// segments are skipped; unknown keys are ignored; values may contain `=` (base64 padding).
    pub fn parse(s: &str) -> Result<Self, ConnectionStringError> {
        let mut endpoint: Option<&str> = None;
        let mut access_key: Option<&str> = None;
        for (i, segment) in s.split(';').enumerate() {
            if segment.trim().is_empty() {
                continue;
            }
            let (key, value) = segment
                .split_once('=')
                .ok_or(ConnectionStringError::MalformedSegment(i + 1))?;
            let key = key.trim();
            let value = value.trim();
            let slot = if key.eq_ignore_ascii_case("endpoint") {
                Some((&mut endpoint, "endpoint"))
            } else if key.eq_ignore_ascii_case("accesskey") {
                Some((&mut access_key, "accesskey"))
            } else {
                None
            };
            if let Some((slot, name)) = slot {
                if slot.replace(value).is_some() {
                    return Err(ConnectionStringError::DuplicateKey(name));
                }
            }
        }
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .ok_or(ConnectionStringError::MissingEndpoint)?;
        let access_key = access_key
            .filter(|k| !k.is_empty())
            .ok_or(ConnectionStringError::MissingAccessKey)?;

        let (endpoint, host) = parse_endpoint(endpoint)?;
        let access_key = BASE64
            .decode(access_key)
            .map_err(|_| ConnectionStringError::InvalidAccessKey)?;
        Ok(ConnectionString {
            endpoint,
            host,
            access_key,
        })
    }

    /// `endpoint + path_and_query`, e.g. `https://contoso.communication.azure.com/calling/callConnections:answer?api-version=2025-06-15`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.endpoint, path_and_query)
    }

    /// [`sign`] with this connection string's key and host.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        date_rfc1123: &str,
        body: &[u8],
    ) -> SignedHeaders {
        sign(
            &self.access_key,
            method,
            path_and_query,
            &self.host,
            date_rfc1123,
            body,
        )
    }
}

impl std::str::FromStr for ConnectionString {
    type Err = ConnectionStringError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionString::parse(s)
    }
}

/// `(endpoint without trailing '/', authority)`.
fn parse_endpoint(e: &str) -> Result<(String, String), ConnectionStringError> {
    let scheme_len = if e.len() >= 8 && e[..8].eq_ignore_ascii_case("https://") {
        8
    } else if e.len() >= 7 && e[..7].eq_ignore_ascii_case("http://") {
        7
    } else {
        return Err(ConnectionStringError::InvalidEndpoint(
            "must start with https:// or http://",
        ));
    };
    let rest = &e[scheme_len..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.is_empty() {
        return Err(ConnectionStringError::InvalidEndpoint("no host"));
    }
    if authority
        .bytes()
        .any(|b| b == b'@' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ConnectionStringError::InvalidEndpoint(
            "host contains invalid characters",
        ));
    }
    if rest[authority_end..].contains(['?', '#']) {
        return Err(ConnectionStringError::InvalidEndpoint(
            "must not have a query or fragment",
        ));
    }
    Ok((e.trim_end_matches('/').to_owned(), authority.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// The three headers a signed request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-ms-date` value (the date that was signed).
    pub date: String,
    /// `x-ms-content-sha256` value.
    pub content_hash: String,
    /// `Authorization` value.
    pub authorization: String,
}

/// `base64(SHA-256(body))`.
pub fn content_hash(body: &[u8]) -> String {
    BASE64.encode(Sha256::digest(body))
}

/// `VERB\npath_and_query\ndate;host;content_hash`, with the verb upper-cased.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date_rfc1123: &str,
    host: &str,
    content_hash: &str,
) -> String {
    format!(
        "{}\n{path_and_query}\n{date_rfc1123};{host};{content_hash}",
        method.to_ascii_uppercase()
    )
}

fn mac(key: &[u8], string_to_sign: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// `base64(HMAC-SHA256(key, string_to_sign))`.
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    BASE64.encode(mac(key, string_to_sign).finalize().into_bytes())
}

/// Signs a request: the `x-ms-date`, `x-ms-content-sha256` and `Authorization` values to send
/// (plus `Host: host`, which the HTTP client sets). `key` is the decoded access key; `body` must
/// be the exact bytes sent.
pub fn sign(
    key: &[u8],
    method: &str,
    path_and_query: &str,
    host: &str,
    date_rfc1123: &str,
    body: &[u8],
) -> SignedHeaders {
    let content_hash = content_hash(body);
    let sts = string_to_sign(method, path_and_query, date_rfc1123, host, &content_hash);
    let signature = signature(key, &sts);
    SignedHeaders {
        date: date_rfc1123.to_owned(),
        content_hash,
        authorization: format!(
            "{AUTHORIZATION_SCHEME} SignedHeaders={SIGNED_HEADERS}&Signature={signature}"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------------------------

/// A received request, as [`verify`] needs it. Header values are `None` when absent.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method (any case).
    pub method: &'a str,
    /// Path and query exactly as received (`/calling/callConnections:answer?api-version=…`).
    pub path_and_query: &'a str,
    /// The signed host: `x-ms-host` if present, else `Host`.
    pub host: &'a str,
    /// `x-ms-date` (some clients also send `Date`; ACS signs `x-ms-date`).
    pub date: Option<&'a str>,
    /// `x-ms-content-sha256`.
    pub content_hash: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// The body bytes received.
    pub body: &'a [u8],
}

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `Authorization` is not `HMAC-SHA256 SignedHeaders=…&Signature=…`.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// `SignedHeaders` is not `x-ms-date;host;x-ms-content-sha256`.
    #[error("unsupported SignedHeaders")]
    UnsupportedSignedHeaders,
    /// `x-ms-content-sha256` does not match the body.
    #[error("x-ms-content-sha256 does not match the body")]
    ContentHashMismatch,
    /// `x-ms-date` is not an RFC 1123 date.
    #[error("malformed x-ms-date")]
    MalformedDate,
    /// `x-ms-date` is further from `now` than allowed (seconds; positive = in the future).
    #[error("x-ms-date is {skew_secs} s away from now")]
    DateSkew {
        /// `date - now` in seconds.
        skew_secs: i64,
    },
    /// The signature does not match.
    #[error("signature mismatch")]
    BadSignature,
}

impl AuthError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingHeader(_) => "missing_header",
            AuthError::MalformedAuthorization => "malformed_authorization",
            AuthError::UnsupportedSignedHeaders => "unsupported_signed_headers",
            AuthError::ContentHashMismatch => "content_hash_mismatch",
            AuthError::MalformedDate => "malformed_date",
            AuthError::DateSkew { .. } => "date_skew",
            AuthError::BadSignature => "bad_signature",
        }
    }
}

/// `(SignedHeaders, Signature)` of an `Authorization` value.
fn parse_authorization(value: &str) -> Result<(&str, &str), AuthError> {
    let value = value.trim();
    let (scheme, params) = value
        .split_once(' ')
        .ok_or(AuthError::MalformedAuthorization)?;
    if !scheme.eq_ignore_ascii_case(AUTHORIZATION_SCHEME) {
        return Err(AuthError::MalformedAuthorization);
    }
    let mut signed_headers = None;
    let mut signature = None;
    for pair in params.trim().split('&') {
        let (k, v) = pair
            .split_once('=')
            .ok_or(AuthError::MalformedAuthorization)?;
        let slot = if k.eq_ignore_ascii_case("SignedHeaders") {
            &mut signed_headers
        } else if k.eq_ignore_ascii_case("Signature") {
            &mut signature
        } else {
            return Err(AuthError::MalformedAuthorization);
        };
        if slot.replace(v).is_some() {
            return Err(AuthError::MalformedAuthorization);
        }
    }
    match (signed_headers, signature) {
        (Some(h), Some(s)) => Ok((h, s)),
        _ => Err(AuthError::MalformedAuthorization),
    }
}

/// Checks a request signed with [`sign`], in this order: headers present, `Authorization`
/// well-formed with the standard signed-header list, content hash equal to the body's, date
/// parseable, signature correct (constant-time comparison), and date within `max_skew_secs` of
/// `now_unix` (either direction).
pub fn verify(
    key: &[u8],
    req: &SignedRequest<'_>,
    now_unix: i64,
    max_skew_secs: i64,
) -> Result<(), AuthError> {
    let date = req.date.ok_or(AuthError::MissingHeader(HEADER_DATE))?;
    let claimed_hash = req
        .content_hash
        .ok_or(AuthError::MissingHeader(HEADER_CONTENT_HASH))?;
    let authorization = req
        .authorization
        .ok_or(AuthError::MissingHeader(HEADER_AUTHORIZATION))?;

    let (signed_headers, signature) = parse_authorization(authorization)?;
    if !signed_headers.eq_ignore_ascii_case(SIGNED_HEADERS) {
        return Err(AuthError::UnsupportedSignedHeaders);
    }
    if claimed_hash != content_hash(req.body) {
        return Err(AuthError::ContentHashMismatch);
    }
    let date_unix = parse_rfc1123(date).ok_or(AuthError::MalformedDate)?;

    let provided = BASE64
        .decode(signature)
        .map_err(|_| AuthError::BadSignature)?;
    let sts = string_to_sign(req.method, req.path_and_query, date, req.host, claimed_hash);
    mac(key, &sts)
        .verify_slice(&provided)
        .map_err(|_| AuthError::BadSignature)?;

    let skew_secs = date_unix.saturating_sub(now_unix);
    if skew_secs.unsigned_abs() > max_skew_secs.unsigned_abs() {
        return Err(AuthError::DateSkew { skew_secs });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// Formats Unix seconds as an IMF-fixdate (`Wed, 13 Apr 2022 18:09:12 GMT`). `None` outside
/// chrono's range (about ±262,000 years).
pub fn format_rfc1123(unix_secs: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix_secs, 0).map(|d| d.format(RFC1123_FORMAT).to_string())
}

/// Parses an IMF-fixdate (`Wed, 13 Apr 2022 18:09:12 GMT`) to Unix seconds. The weekday must
/// match the date; other HTTP date formats are refused.
pub fn parse_rfc1123(s: &str) -> Option<i64> {
    if s.len() != 29 {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(s, RFC1123_FORMAT)
        .ok()
        .map(|d| d.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use crate::testvec::json as vector;

    fn s<'a>(v: &'a Value, k: &str) -> &'a str {
        v[k].as_str().unwrap_or_else(|| panic!("no {k}"))
    }

    /// `(path_and_query, host)` of `https://host/path?query`.
    fn split_url(url: &str) -> (&str, &str) {
        let rest = url.strip_prefix("https://").unwrap();
        let slash = rest.find('/').unwrap();
        (&rest[slash..], &rest[..slash])
    }

    #[test]
    fn js_sdk_vectors() {
        let v = vector("hmac_sha256_js_sdk_test_vectors.json");
        let key = BASE64.decode(s(&v, "accessKey")).unwrap();
        let date = s(&v, "x-ms-date");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 2);
        for case in cases {
            let (path, host) = split_url(s(case, "url"));
            let body = s(case, "body").as_bytes();
            assert_eq!(content_hash(body), s(&v, "x-ms-content-sha256"));
            assert_eq!(
                string_to_sign(s(case, "method"), path, date, host, &content_hash(body)),
                s(case, "stringToSign")
            );
            let signed = sign(&key, s(case, "method"), path, host, date, body);
            assert_eq!(signed.authorization, s(case, "Authorization"));
            assert_eq!(signed.date, date);
            assert_eq!(signed.content_hash, EMPTY_BODY_HASH);
            // And the verifier accepts it at the signing time.
            let now = parse_rfc1123(date).unwrap();
            let req = SignedRequest {
                method: s(case, "method"),
                path_and_query: path,
                host,
                date: Some(&signed.date),
                content_hash: Some(&signed.content_hash),
                authorization: Some(&signed.authorization),
                body,
            };
            verify(&key, &req, now, 300).unwrap();
        }
    }

    #[test]
    fn computed_vectors() {
        let v = vector("hmac_sha256_signing_computed.json");
        let key = BASE64.decode(s(&v, "accessKey")).unwrap();
        assert_eq!(key, b"test-key");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for case in cases {
            let body = s(case, "body").as_bytes();
            assert_eq!(content_hash(body), s(case, "x-ms-content-sha256"));
            assert_eq!(
                string_to_sign(
                    s(case, "method"),
                    s(case, "pathAndQuery"),
                    s(case, "x-ms-date"),
                    s(case, "host"),
                    s(case, "x-ms-content-sha256"),
                ),
                s(case, "stringToSign")
            );
            let signed = sign(
                &key,
                s(case, "method"),
                s(case, "pathAndQuery"),
                s(case, "host"),
                s(case, "x-ms-date"),
                body,
            );
            assert_eq!(signed.authorization, s(case, "Authorization"));
            // Lower-case verb signs the same.
            let lower = sign(
                &key,
                &s(case, "method").to_ascii_lowercase(),
                s(case, "pathAndQuery"),
                s(case, "host"),
                s(case, "x-ms-date"),
                body,
            );
            assert_eq!(lower, signed);
        }
    }

    fn signed_answer() -> (Vec<u8>, SignedHeaders, Vec<u8>, i64) {
        let key = b"test-key".to_vec();
        let body =
            br#"{"incomingCallContext":"ctx","callbackUri":"https://app.contoso.com/callback"}"#
                .to_vec();
        let date = "Tue, 01 Jul 2025 12:00:00 GMT";
        let signed = sign(
            &key,
            "POST",
            "/calling/callConnections:answer?api-version=2025-06-15",
            "contoso.communication.azure.com",
            date,
            &body,
        );
        (key, signed, body, parse_rfc1123(date).unwrap())
    }

    fn req<'a>(signed: &'a SignedHeaders, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path_and_query: "/calling/callConnections:answer?api-version=2025-06-15",
            host: "contoso.communication.azure.com",
            date: Some(&signed.date),
            content_hash: Some(&signed.content_hash),
            authorization: Some(&signed.authorization),
            body,
        }
    }

    #[test]
    fn verify_accepts_within_skew_and_rejects_stale_or_future() {
        let (key, signed, body, now) = signed_answer();
        let r = req(&signed, &body);
        verify(&key, &r, now, 300).unwrap();
        verify(&key, &r, now + 300, 300).unwrap();
        verify(&key, &r, now - 300, 300).unwrap();
        assert_eq!(
            verify(&key, &r, now + 301, 300),
            Err(AuthError::DateSkew { skew_secs: -301 })
        );
        assert_eq!(
            verify(&key, &r, now - 3600, 300),
            Err(AuthError::DateSkew { skew_secs: 3600 })
        );
        assert_eq!(
            verify(&key, &r, now + 86_400, 300).unwrap_err().reason(),
            "date_skew"
        );
    }

    #[test]
    fn verify_rejects_wrong_signature_key_path_host_method() {
        let (key, signed, body, now) = signed_answer();
        assert_eq!(
            verify(b"other-key", &req(&signed, &body), now, 300),
            Err(AuthError::BadSignature)
        );
        let mut r = req(&signed, &body);
        r.path_and_query = "/calling/callConnections:reject?api-version=2025-06-15";
        assert_eq!(verify(&key, &r, now, 300), Err(AuthError::BadSignature));
        let mut r = req(&signed, &body);
        r.host = "evil.example.com";
        assert_eq!(verify(&key, &r, now, 300), Err(AuthError::BadSignature));
        let mut r = req(&signed, &body);
        r.method = "PUT";
        assert_eq!(verify(&key, &r, now, 300), Err(AuthError::BadSignature));

        // Every single-character change of the signature fails.
        let sig_start = signed.authorization.find("Signature=").unwrap() + "Signature=".len();
        for i in sig_start..signed.authorization.len() {
            let mut bytes = signed.authorization.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let auth = String::from_utf8(bytes).unwrap();
            let mut r = req(&signed, &body);
            r.authorization = Some(&auth);
            assert_eq!(
                verify(&key, &r, now, 300),
                Err(AuthError::BadSignature),
                "{auth}"
            );
        }
        // A signed date moved within the skew window breaks the signature too.
        let later = format_rfc1123(now + 1).unwrap();
        let mut r = req(&signed, &body);
        r.date = Some(&later);
        assert_eq!(verify(&key, &r, now, 300), Err(AuthError::BadSignature));
    }

    #[test]
    fn verify_rejects_tampered_body() {
        let (key, signed, body, now) = signed_answer();
        let mut tampered = body.clone();
        tampered[5] ^= 1;
        assert_eq!(
            verify(&key, &req(&signed, &tampered), now, 300),
            Err(AuthError::ContentHashMismatch)
        );
        // Tampered body with a recomputed content hash: the signature no longer matches.
        let hash = content_hash(&tampered);
        let mut r = req(&signed, &tampered);
        r.content_hash = Some(&hash);
        assert_eq!(verify(&key, &r, now, 300), Err(AuthError::BadSignature));
    }

    #[test]
    fn verify_rejects_missing_and_malformed_headers() {
        let (key, signed, body, now) = signed_answer();
        let mut r = req(&signed, &body);
        r.date = None;
        assert_eq!(
            verify(&key, &r, now, 300),
            Err(AuthError::MissingHeader("x-ms-date"))
        );
        let mut r = req(&signed, &body);
        r.content_hash = None;
        assert_eq!(
            verify(&key, &r, now, 300),
            Err(AuthError::MissingHeader("x-ms-content-sha256"))
        );
        let mut r = req(&signed, &body);
        r.authorization = None;
        assert_eq!(
            verify(&key, &r, now, 300),
            Err(AuthError::MissingHeader("Authorization"))
        );
        let sig = signed.authorization.split("Signature=").nth(1).unwrap();
        for (auth, err) in [
            ("Bearer abc".to_owned(), AuthError::MalformedAuthorization),
            ("HMAC-SHA256".to_owned(), AuthError::MalformedAuthorization),
            (
                format!("HMAC-SHA256 Signature={sig}"),
                AuthError::MalformedAuthorization,
            ),
            (
                format!("HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature={sig}"),
                AuthError::UnsupportedSignedHeaders,
            ),
            (
                format!(
                    "HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={sig}&Signature={sig}"
                ),
                AuthError::MalformedAuthorization,
            ),
            (
                format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature=!!notbase64"),
                AuthError::BadSignature,
            ),
            (
                format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature="),
                AuthError::BadSignature,
            ),
        ] {
            let mut r = req(&signed, &body);
            r.authorization = Some(&auth);
            assert_eq!(verify(&key, &r, now, 300), Err(err), "{auth}");
        }
        // Parameter order and scheme case do not matter.
        let swapped = format!("hmac-sha256 Signature={sig}&SignedHeaders={SIGNED_HEADERS}");
        let mut r = req(&signed, &body);
        r.authorization = Some(&swapped);
        verify(&key, &r, now, 300).unwrap();

        for bad_date in [
            "yesterday",
            "2025-07-01T12:00:00Z",
            "Wed, 01 Jul 2025 12:00:00 GMT",
        ] {
            let mut r = req(&signed, &body);
            r.date = Some(bad_date);
            assert_eq!(
                verify(&key, &r, now, 300),
                Err(AuthError::MalformedDate),
                "{bad_date}"
            );
        }
    }

    #[test]
    fn rfc1123_dates() {
        assert_eq!(
            format_rfc1123(1_649_873_352).unwrap(),
            "Wed, 13 Apr 2022 18:09:12 GMT"
        );
        assert_eq!(
            parse_rfc1123("Wed, 13 Apr 2022 18:09:12 GMT"),
            Some(1_649_873_352)
        );
        assert_eq!(format_rfc1123(0).unwrap(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_rfc1123("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for t in [0i64, 1, 951_825_600, 1_751_371_200, 4_102_444_800, -86_400] {
            assert_eq!(parse_rfc1123(&format_rfc1123(t).unwrap()), Some(t), "{t}");
        }
        for bad in [
            "",
            "Wed, 13 Apr 2022 18:09:12 UTC",
            "Wed, 13 Apr 2022 18:09:12 +0000",
            "Thu, 13 Apr 2022 18:09:12 GMT", // wrong weekday
            "Wed, 13 Apr 2022 18:09:12 GMT ",
            "Wed, 31 Apr 2022 18:09:12 GMT",
            "Wednesday, 13-Apr-22 18:09:12 GMT",
        ] {
            assert_eq!(parse_rfc1123(bad), None, "{bad}");
        }
        assert_eq!(format_rfc1123(i64::MAX), None);
    }

    /// GET (no body: the empty-body content hash) and PUT signing against vectors computed with
    /// Python's hmac/hashlib, at the paths and api-versions the gateway's routes produce.
    #[test]
    fn get_and_put_vectors() {
        use super::super::rest::{AcsOperation, CALL_AUTOMATION_API_VERSION};
        let v = vector("hmac_sha256_signing_get_put_2026-03-12.json");
        let key = BASE64.decode(s(&v, "accessKey")).unwrap();
        let cs = ConnectionString::parse(&format!(
            "endpoint=https://contoso.communication.azure.com/;accesskey={}",
            s(&v, "accessKey")
        ))
        .unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        let conn = "18dea47f-b081-4107-9a5c-4300819d2c6c".to_owned();
        let ops = [
            AcsOperation::GetCall {
                call_connection_id: conn.clone(),
            },
            AcsOperation::GetParticipants {
                call_connection_id: conn.clone(),
            },
            AcsOperation::PutTeamsExtensionAssignment {
                tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
                object_id: "cc123456-5678-5678-1234-ccc123456789".into(),
            },
            AcsOperation::Hold {
                call_connection_id: conn,
            },
        ];
        for (case, op) in cases.iter().zip(&ops) {
            // The vector's request is the one the gateway's route table produces.
            assert_eq!(op.method(), s(case, "method"));
            assert_eq!(op.path_and_query(), s(case, "pathAndQuery"));
            let body = s(case, "body").as_bytes();
            if op.method() == "GET" {
                assert!(body.is_empty());
                assert_eq!(
                    s(case, "x-ms-content-sha256"),
                    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
                );
            }
            assert_eq!(content_hash(body), s(case, "x-ms-content-sha256"));
            let signed = sign(
                &key,
                s(case, "method"),
                s(case, "pathAndQuery"),
                s(case, "host"),
                s(case, "x-ms-date"),
                body,
            );
            assert_eq!(signed.authorization, s(case, "Authorization"), "{op:?}");
            let via_cs = cs.sign(
                s(case, "method"),
                s(case, "pathAndQuery"),
                s(case, "x-ms-date"),
                body,
            );
            assert_eq!(via_cs, signed);
            let req = SignedRequest {
                method: s(case, "method"),
                path_and_query: s(case, "pathAndQuery"),
                host: s(case, "host"),
                date: Some(&signed.date),
                content_hash: Some(&signed.content_hash),
                authorization: Some(&signed.authorization),
                body,
            };
            let now = parse_rfc1123(s(case, "x-ms-date")).unwrap();
            verify(&key, &req, now, 300).unwrap();
        }
        assert!(s(&cases[0], "pathAndQuery").ends_with(CALL_AUTOMATION_API_VERSION));
    }

    #[test]
    fn connection_string_parsing() {
        let cs = ConnectionString::parse(
            "endpoint=https://contoso.communication.azure.com/;accesskey=dGVzdC1rZXk=",
        )
        .unwrap();
        assert_eq!(cs.endpoint, "https://contoso.communication.azure.com");
        assert_eq!(cs.host, "contoso.communication.azure.com");
        assert_eq!(cs.access_key, b"test-key");
        assert_eq!(
            cs.url("/calling/callConnections:answer?api-version=2025-06-15"),
            "https://contoso.communication.azure.com/calling/callConnections:answer?api-version=2025-06-15"
        );
        // Case-insensitive keys, any order, whitespace, trailing ';', unknown keys, a port.
        let cs2: ConnectionString =
            " AccessKey = dGVzdC1rZXk= ; ENDPOINT=http://127.0.0.1:8443 ; foo=bar ;"
                .parse()
                .unwrap();
        assert_eq!(cs2.endpoint, "http://127.0.0.1:8443");
        assert_eq!(cs2.host, "127.0.0.1:8443");
        assert_eq!(cs2.access_key, b"test-key");

        // The computed vector signs the same through the connection string.
        let v = vector("hmac_sha256_signing_computed.json");
        let case = &v["cases"][0];
        let signed = cs.sign(
            "POST",
            s(case, "pathAndQuery"),
            s(case, "x-ms-date"),
            s(case, "body").as_bytes(),
        );
        assert_eq!(signed.authorization, s(case, "Authorization"));

        use ConnectionStringError as E;
        for (input, err) in [
            ("", E::MissingEndpoint),
            ("accesskey=dGVzdC1rZXk=", E::MissingEndpoint),
            ("endpoint=https://a.b/", E::MissingAccessKey),
            ("endpoint=https://a.b/;accesskey=", E::MissingAccessKey),
            ("endpoint=https://a.b/;accesskey=***", E::InvalidAccessKey),
            ("endpoint=https://a.b/;secret", E::MalformedSegment(2)),
            (
                "endpoint=ftp://a.b/;accesskey=dGVzdC1rZXk=",
                E::InvalidEndpoint("must start with https:// or http://"),
            ),
            (
                "endpoint=https:///;accesskey=dGVzdC1rZXk=",
                E::InvalidEndpoint("no host"),
            ),
            (
                "endpoint=https://u@a.b/;accesskey=dGVzdC1rZXk=",
                E::InvalidEndpoint("host contains invalid characters"),
            ),
            (
                "endpoint=https://a.b/?x=1;accesskey=dGVzdC1rZXk=",
                E::InvalidEndpoint("must not have a query or fragment"),
            ),
            (
                "endpoint=https://a.b/;endpoint=https://c.d/;accesskey=dGVzdC1rZXk=",
                E::DuplicateKey("endpoint"),
            ),
            (
                "endpoint=https://a.b/;accesskey=dGVzdC1rZXk=;AccessKey=dGVzdC1rZXk=",
                E::DuplicateKey("accesskey"),
            ),
        ] {
            assert_eq!(ConnectionString::parse(input), Err(err), "{input}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let cs = ConnectionString::parse(
            "endpoint=https://contoso.communication.azure.com/;accesskey=c2VjcmV0LXNlY3JldA==",
        )
        .unwrap();
        let dbg = format!("{cs:?}");
        assert!(!dbg.contains("c2VjcmV0"), "{dbg}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("<13 bytes>"), "{dbg}");
        let err =
            ConnectionString::parse("endpoint=https://a.b/;accesskey=c2VjcmV0@@").unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"));
    }
}
