//! EDGE: the gateway's plain HTTP routes — `/healthz`, `/readyz`, `/metrics` — and the JSON error
//! responses every route uses. (The call-control routes of Call Automation join here.)

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

/// Serves the non-media routes; `None` when the path is not one of them.
pub fn route<B>(req: &Request<B>, metrics: &Metrics, shutdown: &Shutdown) -> Option<HttpResponse> {
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
        "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => match shutdown.phase() {
            Phase::Running => json_response(StatusCode::OK, &json!({"status": "ready"})),
            p => json_response(
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
        let r = route(&get("/healthz"), &m, &s).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = route(&get("/readyz"), &m, &s).unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "starting is not ready"
        );
        s.set(Phase::Running);
        assert_eq!(
            route(&get("/readyz"), &m, &s).unwrap().status(),
            StatusCode::OK
        );
        s.set(Phase::Draining);
        let r = route(&get("/readyz"), &m, &s).unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(r).await.contains("draining"));
        let r = route(&get("/metrics"), &m, &s).unwrap();
        assert!(body(r).await.contains("acs_gateway_ws_connections_active"));
        assert!(route(&get("/nope"), &m, &s).is_none());
        let post = Request::builder()
            .method(Method::POST)
            .uri("/metrics")
            .body(())
            .unwrap();
        let r = route(&post, &m, &s).unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let v: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("POST"));
    }
}
