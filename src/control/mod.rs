//! EDGE: the gateway's HTTP routes other than the media upgrade — `/healthz`, `/readyz`,
//! `/metrics` (here) and the Call Automation control plane under `/api/*` — and the JSON error
//! responses every route uses.
//!
//! | module | owns |
//! |---|---|
//! | `config` | its configuration: `[acs]`, `[control]` ([`config::PlaneConfig`] is what the plane is built from) |
//! | `plane` | [`ControlPlane`]: shared state built from a [`config::PlaneConfig`], the `/api/*` router |
//! | `webhook` | `POST`/`OPTIONS /api/incomingCall`: Event Grid validation, IncomingCall intake, dedupe |
//! | `answer` | answering / rejecting / redirecting one call on its own task |
//! | `policy` | `[answer]` config, rules, streaming profiles, the decision |
//! | `callbacks` | `POST /api/callbacks/{token}`: Call Automation events → registry |
//! | `registry` | the bounded call registry and its state machine |
//! | `operator` | the operator API (`/api/calls…`, `/api/agents/token`, `/api/resource-accounts`, `/api/teams-extension/…`) |
//! | `api` | what the operator routes share: `ApiError`, JSON body accessors, identifier checks |
//! | `playback` | operator playback routes (`…/play`, `…/stop-audio`, `…/playbacks`) and the `Player` seam to the media connections |
//! | `play_audio` | a playback's audio: WAV / PCM / file under `control.playback_dir`, resampled with rubato |
//! | `gate` | admission of media upgrades and callbacks (call token, ACS JWT) |
//! | `acs_client` | `AcsApi`, typed ACS calls, `HttpAcsClient` (HMAC, retries, repeatability) |
//! | `mock` | `MockAcs`, the in-process `AcsApi` for tests (feature `testkit`) |
//! | `jwt` | ACS RS256 JWT validation with a cached, refreshed JWKS |
//! | `graph` | Microsoft Graph resource-account lookup and its operator route |
//! | `tokens` | issuing / checking the gateway's call tokens |
//! | `trace` | the tracing span of each call operation, carrying the call's ids |
//! | `urls` | the public `https://` / `wss://` bases |
//! | `dedupe` | the bounded TTL set of seen IncomingCalls |
//! | `http` | body limits per route, body deadline, query, bearer, constant-time comparison |
//!
//! Only this module talks HTTP to the outside (reqwest with rustls).

pub(crate) mod acs_client;
pub(crate) mod answer;
mod api;
pub(crate) mod callbacks;
pub(crate) mod config;
pub(crate) mod dedupe;
pub(crate) mod gate;
pub(crate) mod graph;
pub(crate) mod http;
pub(crate) mod jwt;
#[cfg(test)]
pub(crate) mod mock;
pub(crate) mod operator;
pub(crate) mod plane;
pub(crate) mod play_audio;
pub(crate) mod playback;
pub(crate) mod policy;
pub(crate) mod registry;
pub(crate) mod shared;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
pub(crate) mod testserver;
pub(crate) mod tokens;
pub(crate) mod trace;
pub(crate) mod urls;
pub(crate) mod webhook;

pub use config::PlaneConfig;
pub use jwt::REFETCH_BURST;
pub use plane::{ControlError, ControlPlane};

use crate::metrics::Metrics;
use crate::shutdown::{Phase, Shutdown};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};
use serde_json::json;

/// Response type of every route.
pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON response.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON error: `{"error": {"code": <status text>, "message": ...}}`.
pub fn error_response(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    json_response(
        status,
        &json!({"error": {"code": status.canonical_reason().unwrap_or("error"), "message": message.to_string()}}),
    )
}

/// Serves the non-media routes; `None` when the path is not one of them. `cluster` is
/// `Some(reachable)` in cluster mode: `/readyz` reports NATS and is 503 while it is unreachable.
pub fn route<B>(
    req: &Request<B>,
    metrics: &Metrics,
    shutdown: &Shutdown,
    cluster: Option<bool>,
) -> Option<HttpResponse> {
    let path = req.uri().path();
    let resp = match path {
        "/healthz" | "/readyz" | "/metrics"
            if req.method() != Method::GET && req.method() != Method::HEAD =>
        {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", req.method()),
            )
        }
        // the pid lets tools on the same machine find this process (`acs-sim load
        // --gateway-pid auto`) when several gateways run
        "/healthz" => json_response(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "pid": std::process::id(),
                "version": crate::metrics::process::VERSION,
            }),
        ),
        "/readyz" => match (shutdown.phase(), cluster) {
            (Phase::Running, None) => json_response(StatusCode::OK, &json!({"status": "ready"})),
            (Phase::Running, Some(true)) => json_response(
                StatusCode::OK,
                &json!({"status": "ready", "nats": "reachable"}),
            ),
            (Phase::Running, Some(false)) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "nats_unreachable", "nats": "unreachable"}),
            ),
            (p, _) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": format!("{p:?}").to_lowercase()}),
            ),
        },
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => return None,
    };
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn get(path: &str) -> Request<()> {
        Request::builder().uri(path).body(()).unwrap()
    }

    async fn body(r: HttpResponse) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn health_readiness_follow_the_phase_and_metrics_render() {
        let m = Metrics::new();
        let s = Shutdown::new();
        let r = route(&get("/healthz"), &m, &s, None).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = route(&get("/readyz"), &m, &s, None).unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "starting is not ready"
        );
        s.set(Phase::Running);
        assert_eq!(
            route(&get("/readyz"), &m, &s, None).unwrap().status(),
            StatusCode::OK
        );
        s.set(Phase::Draining);
        let r = route(&get("/readyz"), &m, &s, None).unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(r).await.contains("draining"));
        let r = route(&get("/metrics"), &m, &s, None).unwrap();
        assert!(body(r).await.contains("acs_gateway_ws_connections_active"));
        assert!(route(&get("/nope"), &m, &s, None).is_none());
        let post = Request::builder()
            .method(Method::POST)
            .uri("/metrics")
            .body(())
            .unwrap();
        let r = route(&post, &m, &s, None).unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let v: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("POST"));
    }
}
