//! The gateway's call tokens: issues them (with the configured secret, or a random one generated
//! at start) when a call is answered, and checks them on the media upgrade and the callback
//! endpoint. The token format itself is [`crate::protocol::token`]'s.

use crate::protocol::token::{self, CallToken, TokenError};
use rand::RngCore;

/// Bytes of a generated secret.
pub(crate) const GENERATED_SECRET_LEN: usize = 32;

/// Issues and verifies call tokens with one secret.
pub(crate) struct CallTokens {
    secret: Vec<u8>,
    ttl_secs: i64,
    generated: bool,
}

impl std::fmt::Debug for CallTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTokens")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("ttl_secs", &self.ttl_secs)
            .field("generated", &self.generated)
            .finish()
    }
}

impl CallTokens {
    /// With `secret` (its UTF-8 bytes; at least [`token::MIN_SECRET_LEN`], checked by the
    /// configuration), or a random secret when it is empty.
    pub(crate) fn new(secret: &str, ttl_secs: u64) -> Result<Self, TokenError> {
        let generated = secret.is_empty();
        let secret = if generated {
            let mut s = vec![0u8; GENERATED_SECRET_LEN];
            rand::rng().fill_bytes(&mut s);
            s
        } else {
            secret.as_bytes().to_vec()
        };
        if secret.len() < token::MIN_SECRET_LEN {
            return Err(TokenError::WeakSecret);
        }
        Ok(Self {
            secret,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
            generated,
        })
    }

    /// Whether the secret was generated at start (tokens do not survive a restart).
    pub(crate) fn generated(&self) -> bool {
        self.generated
    }

    /// A token for `call_id`, valid from `now_unix` for the configured lifetime; returns the
    /// token and its expiry (Unix seconds).
    pub(crate) fn issue(&self, call_id: &str, now_unix: i64) -> Result<(String, i64), TokenError> {
        let expires = now_unix.saturating_add(self.ttl_secs);
        token::issue(&self.secret, call_id, expires).map(|t| (t, expires))
    }

    /// Checks a token (format, signature, expiry).
    pub(crate) fn verify(&self, token: &str, now_unix: i64) -> Result<CallToken, TokenError> {
        token::verify(&self.secret, token, now_unix)
    }
}

/// The `auth_rejections_total` reason for a refused call token.
pub(crate) fn rejection_reason(e: &TokenError) -> &'static str {
    match e {
        TokenError::Expired => "token_expired",
        TokenError::BadSignature => "token_bad_signature",
        _ => "token_malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_expire_and_generated_secrets_differ() {
        let t = CallTokens::new("0123456789abcdef0123", 60).unwrap();
        assert!(!t.generated());
        let (tok, exp) = t.issue("call-1", 1_000).unwrap();
        assert_eq!(exp, 1_060);
        assert_eq!(t.verify(&tok, 1_059).unwrap().call_id, "call-1");
        let e = t.verify(&tok, 1_060).unwrap_err();
        assert_eq!(rejection_reason(&e), "token_expired");
        assert!(matches!(
            CallTokens::new("short", 60),
            Err(TokenError::WeakSecret)
        ));
        let a = CallTokens::new("", 60).unwrap();
        let b = CallTokens::new("", 60).unwrap();
        assert!(a.generated());
        let (tok, _) = a.issue("call-1", 0).unwrap();
        assert!(a.verify(&tok, 1).is_ok());
        let e = b.verify(&tok, 1).unwrap_err();
        assert_eq!(rejection_reason(&e), "token_bad_signature");
        assert_eq!(
            rejection_reason(&b.verify("../x", 1).unwrap_err()),
            "token_malformed"
        );
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret)));
    }
}
