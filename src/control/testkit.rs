//! Test-only helpers for the control-plane handler tests: a configuration with every secret set,
//! a [`ControlPlane`] over a [`MockAcs`], request builders and response readers. Socket-free
//! (handlers are driven with in-memory bodies).

use super::config::PlaneConfig;
use super::mock::MockAcs;
use super::plane::ControlPlane;
use super::HttpResponse;
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The operator key of [`cfg`].
pub(crate) const API_KEY: &str = "operator-key-0123456789";
/// The call token secret of [`cfg`].
pub(crate) const TOKEN_SECRET: &str = "call-token-secret-0123456789abcdef";
/// The public base of [`cfg`].
pub(crate) const BASE: &str = "https://gw.contoso.test";

/// A configuration with ACS "configured" (the mock stands in), an operator key, a fixed token
/// secret and public URLs.
pub(crate) fn cfg() -> PlaneConfig {
    let mut c = PlaneConfig::default();
    c.acs.connection_string =
        "endpoint=https://contoso.communication.azure.com/;accesskey=dGVzdC1rZXk=".into();
    c.acs.resource_id = "11111111-2222-3333-4444-555555555555".into();
    c.acs.jwt.enabled = Some(false);
    c.control.operator_api_key = API_KEY.into();
    c.control.call_token_secret = TOKEN_SECRET.into();
    c.control.public_base_url = BASE.into();
    c
}

/// A control plane over `mock` (or no ACS when `None`).
pub(crate) fn plane(cfg: &PlaneConfig, mock: Option<Arc<MockAcs>>) -> Arc<ControlPlane> {
    let acs = mock.map(|m| m as Arc<dyn super::acs_client::AcsApi>);
    ControlPlane::with_acs(cfg, Metrics::new(), "127.0.0.1:8080".parse().unwrap(), acs).unwrap()
}

/// A request with a body.
pub(crate) fn req(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// An operator request (with the API key).
pub(crate) fn op(method: Method, uri: &str, body: &str) -> Request<Full<Bytes>> {
    let auth = format!("Bearer {API_KEY}");
    req(method, uri, &[("authorization", &auth)], body)
}

/// Status and JSON body (`Value::Null` for an empty body).
pub(crate) async fn read(r: HttpResponse) -> (u16, Value) {
    let status = r.status().as_u16();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    let v = if b.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into()))
    };
    (status, v)
}

/// The bytes of a committed fixture, `rel` under the repository's `fixtures/` folder: the one
/// fixture loader of the crate's unit tests (`tests/common` has the integration tests' one).
pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/").to_owned() + rel;
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture vector's text (`name` under `fixtures/vectors/`).
pub(crate) fn vector(name: &str) -> String {
    String::from_utf8(fixture(&format!("vectors/{name}"))).unwrap()
}

/// Polls `f` every 5 ms until it is true (bounded by 5 s).
pub(crate) async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
