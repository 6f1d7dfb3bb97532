//! [`JetStreamLink`]: the [`ClusterLink`] on NATS JetStream. Three key-value buckets, each with
//! its TTL (`max_age`, counted from a key's last write): `<prefix>-calls` (call records and
//! `conn.*` aliases, `call_ttl_secs`), `<prefix>-incoming` (IncomingCall claims,
//! `dedupe_ttl_secs`), `<prefix>-replicas` (one heartbeat key per replica, 3 heartbeats).
//! Compare-and-set is the bucket's revision check (`update` with the last revision; `create`
//! for absent keys). Routed media operations are NATS requests on `<prefix>.media.<replica>`
//! with the method, path and Content-Type in headers and the body as payload; the reply carries
//! the status in a header. While the client is not connected (NATS unreachable, reconnecting)
//! every request fails at once with [`LinkError::Unreachable`] instead of waiting for a timeout.

use super::{ClusterConfig, ClusterError};
use crate::control::shared::{ClusterLink, ForwardReply, Forwarded, LinkError, LinkFuture};
use crate::metrics::Metrics;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::{Client, HeaderMap, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Header: HTTP method of a routed operation.
pub(crate) const H_METHOD: &str = "Acs-Method";
/// Header: path.
pub(crate) const H_PATH: &str = "Acs-Path";
/// Header: Content-Type.
pub(crate) const H_CONTENT_TYPE: &str = "Acs-Content-Type";
/// Header: HTTP status of the reply.
pub(crate) const H_STATUS: &str = "Acs-Status";

/// The JetStream link.
#[derive(Debug)]
pub(crate) struct JetStreamLink {
    replica: String,
    prefix: String,
    client: Client,
    calls: kv::Store,
    incoming: kv::Store,
    replicas: kv::Store,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

/// Opens the bucket `name`, creating it (with `max_age`) when absent. The stream is created the
/// way a key-value bucket is (`KV_<name>` on `$KV.<name>.>`, one value per key, direct get,
/// rollups) rather than through `create_key_value`, whose account query needs a 2.10 server:
/// this works with nats-server 2.9 (Debian's) and later.
async fn bucket(
    js: &async_nats::jetstream::Context,
    name: String,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    use async_nats::jetstream::stream;
    let err = |e: String| ClusterError::Bucket {
        bucket: name.clone(),
        reason: e,
    };
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_bytes: -1,
        max_messages: -1,
        max_message_size: -1,
        max_consumers: -1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        duplicate_window: max_age.min(Duration::from_secs(120)),
        ..Default::default()
    })
    .await
    .map_err(|e| err(e.to_string()))?;
    js.get_key_value(name.as_str())
        .await
        .map_err(|e| err(e.to_string()))
}

impl JetStreamLink {
    /// Connects to `cfg.nats_url` and opens (or creates) the buckets.
    pub(crate) async fn connect(
        cfg: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ClusterError> {
        let replica = cfg.resolved_replica_id();
        let url = cfg.nats_url.trim().to_owned();
        let client = async_nats::ConnectOptions::new()
            .name(format!("acs-media-gateway {replica}"))
            .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .connect(url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let js = async_nats::jetstream::new(client.clone());
        let p = &cfg.bucket_prefix;
        let calls = bucket(
            &js,
            format!("{p}-calls"),
            Duration::from_secs(cfg.call_ttl_secs),
        )
        .await?;
        let incoming = bucket(
            &js,
            format!("{p}-incoming"),
            Duration::from_secs(cfg.dedupe_ttl_secs),
        )
        .await?;
        let replicas = bucket(
            &js,
            format!("{p}-replicas"),
            Duration::from_secs(cfg.heartbeat_secs.saturating_mul(3)),
        )
        .await?;
        Ok(Self {
            replica,
            prefix: p.clone(),
            client,
            calls,
            incoming,
            replicas,
            timeout: Duration::from_millis(cfg.request_timeout_ms),
            metrics,
        })
    }

    /// The NATS client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The subject of `replica`'s routed media operations.
    pub(crate) fn media_subject(&self, replica: &str) -> String {
        format!("{}.media.{replica}", self.prefix)
    }

    /// Writes this replica's heartbeat and refreshes the replica-count gauge.
    pub(crate) async fn heartbeat(&self, addr: std::net::SocketAddr) {
        let v = serde_json::json!({
            "replica": self.replica,
            "addr": addr.to_string(),
            "at": chrono::Utc::now().to_rfc3339(),
        });
        let r = self
            .replicas
            .put(self.replica.as_str(), Bytes::from(v.to_string()))
            .await;
        let outcome = if r.is_ok() { "ok" } else { "error" };
        self.metrics.cluster.request("heartbeat", outcome);
        if let Err(e) = r {
            tracing::warn!(error = %e, "cluster: heartbeat not written");
            return;
        }
        if let Ok(mut keys) = self.replicas.keys().await {
            let mut n = 0;
            while let Some(Ok(_)) = keys.next().await {
                n += 1;
            }
            self.metrics.cluster.replicas.set(n);
        }
    }

    /// Removes this replica's heartbeat (it is leaving).
    pub(crate) async fn leave(&self) {
        let _ = self.replicas.delete(self.replica.as_str()).await;
    }

    /// Answers a routed operation.
    pub(crate) async fn reply(&self, subject: async_nats::Subject, rep: ForwardReply) {
        let mut h = HeaderMap::new();
        h.insert(H_STATUS, rep.status.to_string().as_str());
        if let Err(e) = self.client.publish_with_headers(subject, h, rep.body).await {
            tracing::warn!(error = %e, "cluster: routed operation's reply not sent");
        }
    }

    fn connected(&self) -> Result<(), LinkError> {
        if self.reachable() {
            Ok(())
        } else {
            Err(LinkError::Unreachable)
        }
    }

    async fn alive(&self, replica: &str) -> Result<bool, LinkError> {
        match self.replicas.entry(replica).await {
            Ok(Some(e)) => Ok(e.operation == Operation::Put),
            Ok(None) => Ok(false),
            Err(e) => Err(LinkError::Other(e.to_string())),
        }
    }
}

impl ClusterLink for JetStreamLink {
    fn replica(&self) -> &str {
        &self.replica
    }

    fn reachable(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn claim(&self, key: String) -> LinkFuture<'_, bool> {
        Box::pin(async move {
            self.connected()?;
            match self.incoming.create(key, Bytes::from_static(b"1")).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(LinkError::Other(e.to_string())),
            }
        })
    }

    fn load(&self, key: String) -> LinkFuture<'_, Option<(Bytes, u64)>> {
        Box::pin(async move {
            self.connected()?;
            match self.calls.entry(key).await {
                Ok(Some(e)) if e.operation == Operation::Put => Ok(Some((e.value, e.revision))),
                Ok(_) => Ok(None),
                Err(e) => Err(LinkError::Other(e.to_string())),
            }
        })
    }

    fn store(&self, key: String, value: Bytes, revision: Option<u64>) -> LinkFuture<'_, u64> {
        Box::pin(async move {
            self.connected()?;
            match revision {
                None => self.calls.create(key, value).await.map_err(|e| {
                    if e.kind() == CreateErrorKind::AlreadyExists {
                        LinkError::Conflict
                    } else {
                        LinkError::Other(e.to_string())
                    }
                }),
                Some(rev) => self
                    .calls
                    .update(key, value, rev)
                    .await
                    .map_err(|e| match e.kind() {
                        UpdateErrorKind::WrongLastRevision => LinkError::Conflict,
                        UpdateErrorKind::TimedOut => LinkError::Timeout,
                        _ => LinkError::Other(e.to_string()),
                    }),
            }
        })
    }

    fn list(&self, prefix: String) -> LinkFuture<'_, Vec<Bytes>> {
        Box::pin(async move {
            self.connected()?;
            let mut keys = self
                .calls
                .keys()
                .await
                .map_err(|e| LinkError::Other(e.to_string()))?;
            let mut names = Vec::new();
            while let Some(k) = keys.next().await {
                match k {
                    Ok(k) if k.starts_with(&prefix) => names.push(k),
                    Ok(_) => {}
                    Err(e) => return Err(LinkError::Other(e.to_string())),
                }
            }
            let mut out = Vec::with_capacity(names.len());
            for k in names {
                if let Ok(Some(v)) = self.calls.get(k).await {
                    out.push(v);
                }
            }
            Ok(out)
        })
    }

    fn forward(&self, replica: String, req: Forwarded) -> LinkFuture<'_, ForwardReply> {
        Box::pin(async move {
            self.connected()?;
            if !self.alive(&replica).await? {
                return Err(LinkError::ReplicaGone(replica));
            }
            let limit = self.client.server_info().max_payload;
            if req.body.len() + 1024 > limit {
                return Err(LinkError::TooLarge(req.body.len(), limit));
            }
            let mut h = HeaderMap::new();
            h.insert(H_METHOD, req.method.as_str());
            h.insert(H_PATH, req.path.as_str());
            h.insert(H_CONTENT_TYPE, req.content_type.as_str());
            let request = async_nats::Request::new()
                .payload(req.body)
                .headers(h)
                .timeout(Some(self.timeout));
            match self
                .client
                .send_request(self.media_subject(&replica), request)
                .await
            {
                Ok(msg) => {
                    let status = msg
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(H_STATUS))
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or(502);
                    Ok(ForwardReply {
                        status,
                        body: msg.payload,
                    })
                }
                Err(e) => Err(match e.kind() {
                    RequestErrorKind::NoResponders => LinkError::ReplicaGone(replica),
                    RequestErrorKind::TimedOut => LinkError::Timeout,
                    RequestErrorKind::Other => LinkError::Other(e.to_string()),
                }),
            }
        })
    }
}
