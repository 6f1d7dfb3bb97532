//! The Microsoft Graph lookup of Teams resource accounts (docs/PROTOCOL.md §11):
//! `GET {graph_base_url}/beta/admin/teams/resourceAccounts[?$filter=appId eq '<id>']` with a
//! delegated bearer token (`TeamsResourceAccount.Read.All`) from the configuration or the
//! operator's request, and the operator route that serves it (`GET /api/resource-accounts`). The
//! base URL is configurable so tests can point it at a local stub.

use super::api::{object_id, ApiError, Res};
use super::http::query_param;
use super::plane::ControlPlane;
use crate::protocol::rest::ResourceAccountList;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Path of the list under the Graph base URL.
pub(crate) const RESOURCE_ACCOUNTS_PATH: &str = "/beta/admin/teams/resourceAccounts";

/// Why the lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GraphError {
    /// No token configured or given.
    #[error("no Microsoft Graph token: set control.graph_token or send X-Graph-Token")]
    NoToken,
    /// Graph answered with an error status.
    #[error("Microsoft Graph answered HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Graph's error code/message, bounded.
        message: String,
    },
    /// No answer in time.
    #[error("Microsoft Graph timed out")]
    Timeout,
    /// Could not connect, or an unreadable body.
    #[error("Microsoft Graph request failed: {0}")]
    Transport(String),
}

/// The lookup client.
#[derive(Debug, Clone)]
pub(crate) struct GraphClient {
    base_url: String,
    token: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl GraphClient {
    /// `base_url` without a trailing `/`; `token` may be empty (then each request needs one).
    pub(crate) fn new(
        base_url: &str,
        token: &str,
        timeout: Duration,
        http: reqwest::Client,
    ) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            timeout,
            http,
        }
    }

    /// Lists resource accounts, optionally only those of `app_id` (validated by the caller);
    /// `token` overrides the configured one.
    pub(crate) async fn resource_accounts(
        &self,
        token: Option<&str>,
        app_id: Option<&str>,
    ) -> Result<ResourceAccountList, GraphError> {
        let token = token
            .filter(|t| !t.is_empty())
            .or((!self.token.is_empty()).then_some(self.token.as_str()))
            .ok_or(GraphError::NoToken)?;
        let mut url = format!("{}{RESOURCE_ACCOUNTS_PATH}", self.base_url);
        if let Some(id) = app_id {
            url.push_str("?$filter=");
            url.push_str(&super::http::percent_encode(&format!("appId eq '{id}'")));
        }
        let resp = self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    GraphError::Timeout
                } else {
                    GraphError::Transport(e.to_string())
                }
            })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let msg = v["error"]["message"]
                .as_str()
                .or(v["error"]["code"].as_str())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(GraphError::Status {
                status,
                message: msg,
            });
        }
        serde_json::from_slice(&body).map_err(|e| GraphError::Transport(format!("bad body: {e}")))
    }
}

/// `GET /api/resource-accounts[?appId=]` of the operator API.
pub(super) async fn resource_accounts_route(
    cp: &Arc<ControlPlane>,
    query: Option<&str>,
    graph_token: Option<&str>,
) -> Res<Value> {
    let app_id = match query_param(query, "appId") {
        Some(a) if a.is_empty() => return Err(ApiError::field("appId", "must not be empty")),
        Some(a) => Some(object_id("appId", &a)?),
        None => None,
    };
    let list = cp
        .graph
        .resource_accounts(graph_token, app_id.as_deref())
        .await
        .map_err(|e| match e {
            GraphError::NoToken => ApiError::field("X-Graph-Token", e.to_string()),
            GraphError::Timeout => ApiError::status(StatusCode::GATEWAY_TIMEOUT, e, "graph"),
            e => ApiError::status(StatusCode::BAD_GATEWAY, e, "graph"),
        })?;
    let accounts: Vec<Value> = list
        .value
        .iter()
        .map(|a| {
            let mut v = json!(a);
            v["rawId"] = json!(a.identifier().raw_id());
            v
        })
        .collect();
    Ok(json!({"value": accounts}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::testserver::{Reply, TestServer};
    use serde_json::json;

    #[tokio::test]
    async fn lists_with_filter_and_token_and_maps_errors() {
        let server = TestServer::start(|r, _| {
            if r.header("authorization") == Some("Bearer good") {
                Reply::json(
                    200,
                    &json!({"@odata.context": "x", "value": [{"id": "cc1", "displayName": "Support",
                        "appId": "app-1", "phoneNumber": "tel:+14255550123"}]}),
                )
            } else {
                Reply::json(
                    401,
                    &json!({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}),
                )
            }
        })
        .await;
        let g = GraphClient::new(
            &server.url(),
            "",
            Duration::from_secs(5),
            reqwest::Client::new(),
        );
        assert_eq!(
            g.resource_accounts(None, None).await,
            Err(GraphError::NoToken)
        );
        let l = g
            .resource_accounts(Some("good"), Some("app-1"))
            .await
            .unwrap();
        assert_eq!(l.value[0].identifier().raw_id(), "28:orgid:cc1");
        assert_eq!(l.value[0].e164(), Some("+14255550123"));
        let r = &server.requests()[0];
        assert_eq!(
            r.path_and_query,
            "/beta/admin/teams/resourceAccounts?$filter=appId%20eq%20%27app-1%27"
        );
        let g = GraphClient::new(
            &server.url(),
            "stale",
            Duration::from_secs(5),
            reqwest::Client::new(),
        );
        assert_eq!(
            g.resource_accounts(None, None).await,
            Err(GraphError::Status {
                status: 401,
                message: "expired".into()
            })
        );
    }
}
