//! The gateway's public URLs, as ACS must see them: the `callbackUri` base
//! (`control.public_base_url`, `https://…`) and the media `transportUrl` base
//! (`control.public_media_url`, `wss://…`, derived from the former when not set). Without a
//! configured base they are derived from the bound listen address (`http://` / `ws://`), which
//! is what local tests and a fake ACS need.

use std::net::SocketAddr;

/// Public URL bases, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicUrls {
    /// `https://gateway.example.com` (callbacks, recording state callbacks).
    pub base: String,
    /// `wss://gateway.example.com` (media).
    pub media: String,
}

impl PublicUrls {
    /// From the configured values (empty = derive) and the bound address.
    pub(crate) fn new(public_base_url: &str, public_media_url: &str, bound: SocketAddr) -> Self {
        let base = if public_base_url.trim().is_empty() {
            format!("http://{bound}")
        } else {
            public_base_url.trim().trim_end_matches('/').to_owned()
        };
        let media = if public_media_url.trim().is_empty() {
            derive_media(&base)
        } else {
            public_media_url.trim().trim_end_matches('/').to_owned()
        };
        Self { base, media }
    }

    /// `<media>/ws/<token>`: the `transportUrl` of a call.
    pub(crate) fn transport_url(&self, token: &str) -> String {
        format!("{}/ws/{token}", self.media)
    }

    /// `<base>/api/callbacks/<token>`: the `callbackUri` of a call.
    pub(crate) fn callback_uri(&self, token: &str) -> String {
        format!("{}/api/callbacks/{token}", self.base)
    }

    /// Whether ACS in the cloud could reach these URLs (not loopback, TLS schemes).
    pub(crate) fn looks_public(&self) -> bool {
        let local =
            |u: &str| u.contains("://127.") || u.contains("://localhost") || u.contains("://[::1]");
        self.base.starts_with("https://")
            && self.media.starts_with("wss://")
            && !local(&self.base)
            && !local(&self.media)
    }
}

/// `https://x` → `wss://x`, `http://x` → `ws://x` (anything else is kept).
fn derive_media(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_and_configured() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let u = PublicUrls::new("", "", addr);
        assert_eq!(u.base, "http://127.0.0.1:9000");
        assert_eq!(u.transport_url("T"), "ws://127.0.0.1:9000/ws/T");
        assert_eq!(u.callback_uri("T"), "http://127.0.0.1:9000/api/callbacks/T");
        assert!(!u.looks_public());
        let u = PublicUrls::new("https://gw.contoso.com/", "", addr);
        assert_eq!(u.transport_url("T"), "wss://gw.contoso.com/ws/T");
        assert_eq!(
            u.callback_uri("T"),
            "https://gw.contoso.com/api/callbacks/T"
        );
        assert!(u.looks_public());
        let u = PublicUrls::new("https://gw.contoso.com", "wss://media.contoso.com/", addr);
        assert_eq!(u.transport_url("T"), "wss://media.contoso.com/ws/T");
    }
}
