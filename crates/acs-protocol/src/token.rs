//! PURE: the gateway's own call token — an HMAC-signed, expiring capability for one call.
//!
//! The gateway puts a call token in the URLs it hands ACS when it answers a call
//! (`transportUrl = wss://…/ws/{token}`, `callbackUri = https://…/callbacks/{token}`); the media
//! endpoint and the callback endpoint accept a request only if [`verify`] accepts its token (and
//! the call it names is live, which the caller checks). No clock is read here: callers pass the
//! expiry and "now".
//!
//! # Format
//!
//! `base64url_nopad( version || expires || call_id || tag )`:
//!
//! | part | bytes | |
//! |---|---|---|
//! | version | 1 | `0x01` |
//! | expires | 8 | Unix seconds, big-endian `i64` |
//! | call_id | 1 ..= [`MAX_CALL_ID_LEN`] | UTF-8, length implied by the total |
//! | tag | [`TAG_LEN`] = 16 | HMAC-SHA256(secret, `"acs-media-gateway call token v1\0"` ‖ version ‖ expires ‖ call_id), **truncated to its first 16 bytes** (128-bit tag) |
//!
//! The result uses only `A–Z a–z 0–9 - _`, so it is safe as a URL path segment or query value,
//! and is at most [`MAX_TOKEN_LEN`] characters. Tokens are deterministic (no nonce): the same
//! call id and expiry give the same token, which is harmless because only the secret holder can
//! produce one and a call id is never reused. The context prefix keeps these MACs apart from any
//! other use of the same secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest call id a token can carry, in bytes.
pub const MAX_CALL_ID_LEN: usize = 128;
/// Length of the (truncated) HMAC-SHA256 tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Shortest secret [`issue`] and [`verify`] accept, in bytes (use 32 random bytes).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest token [`issue`] produces (and [`verify`] reads), in characters.
pub const MAX_TOKEN_LEN: usize = (HEADER_LEN + MAX_CALL_ID_LEN + TAG_LEN).div_ceil(3) * 4
    - pad_chars(HEADER_LEN + MAX_CALL_ID_LEN + TAG_LEN);

const VERSION: u8 = 1;
/// version + expires.
const HEADER_LEN: usize = 1 + 8;
const CONTEXT: &[u8] = b"acs-media-gateway call token v1\0";

/// `=` characters standard base64 would add for `n` bytes (dropped here).
const fn pad_chars(n: usize) -> usize {
    match n % 3 {
        0 => 0,
        1 => 2,
        _ => 1,
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallToken {
    /// The call id the token was issued for.
    pub call_id: String,
    /// Unix seconds at which the token stops being valid.
    pub expires_unix: i64,
}

/// Why a token could not be issued or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// [`issue`]: the call id is empty or longer than [`MAX_CALL_ID_LEN`] bytes.
    #[error("call id must be 1 to 128 bytes")]
    InvalidCallId,
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes (a configuration error).
    #[error("token secret is too short")]
    WeakSecret,
    /// Not a token of this format (length, alphabet, version, encoding).
    #[error("malformed call token")]
    Malformed,
    /// Well-formed, but not signed with this secret (or altered).
    #[error("call token signature mismatch")]
    BadSignature,
    /// Authentic but `now >= expires`.
    #[error("call token expired")]
    Expired,
}

impl TokenError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::InvalidCallId => "invalid_call_id",
            TokenError::WeakSecret => "weak_secret",
            TokenError::Malformed => "malformed",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
        }
    }
}

fn mac(secret: &[u8], signed: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(CONTEXT);
    mac.update(signed);
    mac
}

/// Issues a token for `call_id`, valid while `now < expires_unix`.
pub fn issue(secret: &[u8], call_id: &str, expires_unix: i64) -> Result<String, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret);
    }
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID_LEN {
        return Err(TokenError::InvalidCallId);
    }
    let mut raw = Vec::with_capacity(HEADER_LEN + call_id.len() + TAG_LEN);
    raw.push(VERSION);
    raw.extend_from_slice(&expires_unix.to_be_bytes());
    raw.extend_from_slice(call_id.as_bytes());
    let tag = mac(secret, &raw).finalize().into_bytes();
    raw.extend_from_slice(&tag[..TAG_LEN]);
    Ok(URL_SAFE_NO_PAD.encode(&raw))
}

/// Checks a token: format, then signature (constant-time), then expiry (`now_unix <
/// expires_unix`, so a token is refused from its expiry second on). Inputs longer than
/// [`MAX_TOKEN_LEN`] are refused before any decoding.
pub fn verify(secret: &[u8], token: &str, now_unix: i64) -> Result<CallToken, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    // Strict: URL-safe alphabet, no padding, canonical trailing bits.
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    if raw.len() < HEADER_LEN + 1 + TAG_LEN || raw[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let (signed, tag) = raw.split_at(raw.len() - TAG_LEN);
    mac(secret, signed)
        .verify_truncated_left(tag)
        .map_err(|_| TokenError::BadSignature)?;

    let mut expires = [0u8; 8];
    expires.copy_from_slice(&signed[1..HEADER_LEN]);
    let expires_unix = i64::from_be_bytes(expires);
    let call_id = std::str::from_utf8(&signed[HEADER_LEN..]).map_err(|_| TokenError::Malformed)?;
    if now_unix >= expires_unix {
        return Err(TokenError::Expired);
    }
    Ok(CallToken {
        call_id: call_id.to_owned(),
        expires_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const CALL: &str = "18dea47f-b081-4107-9a5c-4300819d2c6c";
    const EXP: i64 = 1_751_371_200;

    #[test]
    fn issue_then_verify() {
        let t = issue(SECRET, CALL, EXP).unwrap();
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // 1 + 8 + 36 + 16 = 61 bytes → 82 chars without padding.
        assert_eq!(t.len(), 82);
        assert_eq!(
            verify(SECRET, &t, EXP - 1),
            Ok(CallToken {
                call_id: CALL.into(),
                expires_unix: EXP
            })
        );
        // Deterministic.
        assert_eq!(issue(SECRET, CALL, EXP).unwrap(), t);
        // Different call or expiry → different token.
        assert_ne!(issue(SECRET, "other", EXP).unwrap(), t);
        assert_ne!(issue(SECRET, CALL, EXP + 1).unwrap(), t);
    }

    #[test]
    fn expiry_boundary() {
        let t = issue(SECRET, CALL, EXP).unwrap();
        assert!(verify(SECRET, &t, EXP - 1).is_ok());
        assert_eq!(verify(SECRET, &t, EXP), Err(TokenError::Expired));
        assert_eq!(verify(SECRET, &t, EXP + 1), Err(TokenError::Expired));
        assert_eq!(verify(SECRET, &t, i64::MAX), Err(TokenError::Expired));
        assert!(verify(SECRET, &t, i64::MIN).is_ok());
        // Extreme expiries round-trip.
        for exp in [i64::MIN, -1, 0, i64::MAX] {
            let t = issue(SECRET, CALL, exp).unwrap();
            let r = verify(SECRET, &t, i64::MIN);
            if exp == i64::MIN {
                assert_eq!(r, Err(TokenError::Expired));
            } else {
                assert_eq!(r.unwrap().expires_unix, exp);
            }
        }
    }

    #[test]
    fn wrong_secret() {
        let t = issue(SECRET, CALL, EXP).unwrap();
        assert_eq!(
            verify(b"0123456789abcdef0123456789abcdeF", &t, 0),
            Err(TokenError::BadSignature)
        );
        // A signature check comes before expiry: a forged, expired token is BadSignature.
        assert_eq!(
            verify(b"another secret of enough length", &t, EXP + 10),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(b"short", &t, 0), Err(TokenError::WeakSecret));
        assert_eq!(issue(b"", CALL, EXP), Err(TokenError::WeakSecret));
    }

    #[test]
    fn tampering_any_byte_or_char_is_refused() {
        let t = issue(SECRET, CALL, EXP).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut r = raw.clone();
                r[i] ^= flip;
                let err = verify(SECRET, &URL_SAFE_NO_PAD.encode(&r), 0).unwrap_err();
                if i == 0 {
                    assert_eq!(err, TokenError::Malformed, "byte {i}");
                } else {
                    assert_eq!(err, TokenError::BadSignature, "byte {i} ^ {flip:#x}");
                }
            }
        }
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..t.len() {
            for &c in alphabet {
                if c == t.as_bytes()[i] {
                    continue;
                }
                let mut b = t.clone().into_bytes();
                b[i] = c;
                let s = String::from_utf8(b).unwrap();
                assert!(verify(SECRET, &s, 0).is_err(), "char {i} → {}", c as char);
            }
        }
        // Truncated or extended.
        for n in 0..t.len() {
            assert!(verify(SECRET, &t[..n], 0).is_err(), "prefix {n}");
        }
        assert!(verify(SECRET, &format!("{t}A"), 0).is_err());
        assert!(verify(SECRET, &format!("{t}AA"), 0).is_err());
        // Cutting the tag shorter (a valid prefix of raw bytes) fails too.
        let short = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]);
        assert!(verify(SECRET, &short, 0).is_err());
    }

    #[test]
    fn hostile_inputs_are_malformed() {
        let t = issue(SECRET, CALL, EXP).unwrap();
        let huge = "A".repeat(10 * 1024 * 1024);
        for bad in [
            "",
            "A",
            "..",
            "../../etc/passwd",
            "/",
            "a/b",
            "%2e%2e",
            "token with spaces",
            "ééééééééééééééééééééééééééééééé",
            "🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀",
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            &huge,
            &format!("{t}="),
            &format!("{}.{}", &t[..10], &t[10..]),
            &format!("{}/{}", &t[..10], &t[11..]),
            &format!("{}+{}", &t[..10], &t[11..]),
        ] {
            let shown: String = bad.chars().take(40).collect();
            assert_eq!(
                verify(SECRET, bad, 0),
                Err(TokenError::Malformed),
                "{shown:?}"
            );
        }
        // A well-formed blob of the right size but wrong version is malformed.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[0] = 2;
        assert_eq!(
            verify(SECRET, &URL_SAFE_NO_PAD.encode(&raw), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn call_id_bounds_and_content() {
        assert_eq!(issue(SECRET, "", EXP), Err(TokenError::InvalidCallId));
        let max = "x".repeat(MAX_CALL_ID_LEN);
        let t = issue(SECRET, &max, EXP).unwrap();
        assert_eq!(t.len(), MAX_TOKEN_LEN);
        assert_eq!(verify(SECRET, &t, 0).unwrap().call_id, max);
        assert_eq!(
            issue(SECRET, &"x".repeat(MAX_CALL_ID_LEN + 1), EXP),
            Err(TokenError::InvalidCallId)
        );
        // Any UTF-8 call id (the token is authenticated; sanitising for paths is the caller's).
        for id in [
            "../../etc/passwd",
            "a/b",
            "ünïcødé 🦀",
            "with\0nul",
            "8:acs:x_y",
        ] {
            let t = issue(SECRET, id, EXP).unwrap();
            assert!(!t.contains(['/', '.', '+', '=']));
            assert_eq!(verify(SECRET, &t, 0).unwrap().call_id, id);
        }
        // 4-byte chars up to the byte limit.
        let crabs = "🦀".repeat(MAX_CALL_ID_LEN / 4);
        assert_eq!(
            verify(SECRET, &issue(SECRET, &crabs, EXP).unwrap(), 0)
                .unwrap()
                .call_id,
            crabs
        );
        assert_eq!(
            issue(SECRET, &format!("{crabs}x"), EXP),
            Err(TokenError::InvalidCallId)
        );
    }

    #[test]
    fn max_token_len_constant() {
        // 1 + 8 + 128 + 16 = 153 bytes → 204 base64 chars, no padding needed.
        assert_eq!(MAX_TOKEN_LEN, 204);
    }

    #[test]
    fn reasons() {
        assert_eq!(TokenError::Malformed.reason(), "malformed");
        assert_eq!(TokenError::BadSignature.reason(), "bad_signature");
        assert_eq!(TokenError::Expired.reason(), "expired");
    }
}
