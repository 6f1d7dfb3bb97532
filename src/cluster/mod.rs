//! Cluster mode: several gateway replicas behind one load balancer share their call state on
//! NATS JetStream. Owns the `[cluster]` settings, the JetStream implementation of
//! [`ClusterLink`] ([`jetstream::JetStreamLink`]: the call
//! registry and IncomingCall claims in key-value buckets with a TTL, revision-checked updates,
//! request-reply to the replica holding a media socket), the per-replica heartbeat, and the
//! server side of media-operation routing.
//!
//! Without `cluster.nats_url` nothing here runs: the gateway is the single process it always
//! was, and needs no server.

pub(crate) mod jetstream;

use crate::control::shared::{ClusterLink, Forwarded};
use crate::control::ControlPlane;
use futures_util::StreamExt;
use jetstream::JetStreamLink;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// `[cluster]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server(s), e.g. `nats://nats:4222` (comma-separated for several); empty = single
    /// process (the default).
    pub nats_url: String,
    /// This replica's id (empty: `$HOSTNAME`, else a random one). Letters, digits, `-`, `_`.
    pub replica_id: String,
    /// Prefix of the key-value buckets (`<prefix>-calls`, `-incoming`, `-replicas`) and
    /// subjects.
    pub bucket_prefix: String,
    /// A call record is dropped from the bucket this long after its last change.
    pub call_ttl_secs: u64,
    /// An IncomingCall claim is kept this long (Event Grid retries within minutes).
    pub dedupe_ttl_secs: u64,
    /// Heartbeat period; a replica is gone 3 periods after its last heartbeat.
    pub heartbeat_secs: u64,
    /// Timeout of a routed media operation (504 after it).
    pub request_timeout_ms: u64,
    /// Timeout of the first connection to NATS (the gateway does not start without it).
    pub connect_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nats_url: String::new(),
            replica_id: String::new(),
            bucket_prefix: "acs-gw".into(),
            call_ttl_secs: 86_400,
            dedupe_ttl_secs: 3_600,
            heartbeat_secs: 5,
            request_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
        }
    }
}

impl ClusterConfig {
    /// `nats_url` is set.
    pub fn enabled(&self) -> bool {
        !self.nats_url.trim().is_empty()
    }

    /// Checks the values (called by the configuration's validation).
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let name_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if self.bucket_prefix.is_empty() || !name_ok(&self.bucket_prefix) {
            return Err("cluster.bucket_prefix: letters, digits, '-' and '_' only".into());
        }
        if !name_ok(&self.replica_id) {
            return Err("cluster.replica_id: letters, digits, '-' and '_' only".into());
        }
        if self.heartbeat_secs == 0 || self.call_ttl_secs == 0 || self.dedupe_ttl_secs == 0 {
            return Err(
                "cluster: heartbeat_secs, call_ttl_secs and dedupe_ttl_secs must be > 0".into(),
            );
        }
        if self.request_timeout_ms == 0 {
            return Err("cluster.request_timeout_ms must be > 0".into());
        }
        Ok(())
    }

    /// The replica id to use.
    pub fn resolved_replica_id(&self) -> String {
        let given = self.replica_id.trim();
        if !given.is_empty() {
            return given.to_owned();
        }
        let host: String = std::env::var("HOSTNAME")
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if host.is_empty() {
            format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
        } else {
            host
        }
    }
}

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS not reachable.
    #[error("cluster: cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A bucket could not be created or opened (JetStream off on the server?).
    #[error(
        "cluster: JetStream key-value bucket {bucket}: {reason} (is the server started with -js?)"
    )]
    Bucket {
        /// Bucket.
        bucket: String,
        /// Why.
        reason: String,
    },
    /// The media-routing subscription failed.
    #[error("cluster: cannot subscribe to {0}")]
    Subscribe(String),
}

/// The running cluster tasks (heartbeat, routed-operation server).
#[derive(Debug)]
pub(crate) struct ClusterHandle {
    link: Arc<JetStreamLink>,
    tasks: Vec<JoinHandle<()>>,
}

/// Connects, opens the buckets, attaches the link to `cp` and starts the heartbeat and the
/// server of routed media operations.
pub(crate) async fn start(
    cfg: &ClusterConfig,
    cp: &Arc<ControlPlane>,
    addr: std::net::SocketAddr,
) -> Result<ClusterHandle, ClusterError> {
    let link = Arc::new(JetStreamLink::connect(cfg, cp.metrics.clone()).await?);
    let mut sub = link
        .client()
        .subscribe(link.media_subject(link.replica()))
        .await
        .map_err(|e| ClusterError::Subscribe(e.to_string()))?;
    cp.set_link(link.clone());
    link.heartbeat(addr).await;
    tracing::info!(replica = %link.replica(), nats = %cfg.nats_url, "cluster mode: call state on NATS JetStream");
    let mut tasks = Vec::new();
    let (l, period) = (link.clone(), Duration::from_secs(cfg.heartbeat_secs));
    tasks.push(tokio::spawn(async move {
        let mut t = tokio::time::interval(period);
        t.tick().await;
        loop {
            t.tick().await;
            l.heartbeat(addr).await;
        }
    }));
    let (l, cp) = (link.clone(), cp.clone());
    tasks.push(tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let (l, cp) = (l.clone(), cp.clone());
            tokio::spawn(async move {
                let Some(reply) = msg.reply.clone() else {
                    return;
                };
                let h = msg.headers.as_ref();
                let get = |k: &str| {
                    h.and_then(|h| h.get(k))
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default()
                };
                let req = Forwarded {
                    method: get(jetstream::H_METHOD),
                    path: get(jetstream::H_PATH),
                    content_type: get(jetstream::H_CONTENT_TYPE),
                    body: msg.payload.clone(),
                };
                let rep = cp.serve_forwarded(req).await;
                l.reply(reply, rep).await;
            });
        }
    }));
    Ok(ClusterHandle { link, tasks })
}

impl ClusterHandle {
    /// Stops the heartbeat and routing, and removes this replica's heartbeat (routed operations
    /// for it get 503 from now on).
    pub(crate) async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.link.leave().await;
    }
}
