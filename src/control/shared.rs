//! The cluster seam of the control plane: the [`ClusterLink`] trait through which the call
//! registry, the IncomingCall de-duplication and media-socket routing are shared between
//! replicas, and the [`ControlPlane`] methods that use it.
//!
//! Single-process mode (no `[cluster] nats_url`) attaches no link: every method here then does
//! exactly what the local [`CallRegistry`] and [`Dedupe`](super::dedupe::Dedupe) did before, and
//! nothing else. With a link (the JetStream one that `app` attaches in cluster mode, or `MemoryLink` in tests):
//!
//! - a call record lives under `call.<id>` in a shared key-value store (the local registry is a
//!   cache refreshed before every read); every change is a compare-and-set on the key's revision,
//!   re-applied to the fresh record on a conflict, at most [`CAS_ATTEMPTS`] times (each retry
//!   counted in `acs_gateway_cluster_cas_retries_total`); `conn.<callConnectionId>` points at the
//!   call id;
//! - an IncomingCall is claimed with create-if-absent on `in.<digest of incomingCallContext>`
//!   (and of the event id), so one replica answers it;
//! - an operation needing the media socket is forwarded ([`Forwarded`]) to the replica named in
//!   the record's `mediaConnection.replica`, which runs it and replies.
//!
//! When the link fails (NATS unreachable), nothing is decided on a guess: an IncomingCall that
//! cannot be claimed cluster-wide is answered 503 (Event Grid redelivers on 5xx; answering it
//! here could answer it twice), a callback or operator request whose call cannot be read or
//! written is answered 503 `{"code":"nats_unreachable"}` ([`ControlPlane::nats_unreachable`],
//! counted in `acs_gateway_cluster_nats_unreachable_total{endpoint}`). Media already flowing is
//! never stopped: media open/close and the answer task's changes are kept locally ([`commit`])
//! and the replica records and streams on. Each failed request is counted in
//! `acs_gateway_cluster_requests_total{outcome="error"}`.
//!
//! [`commit`]: ControlPlane::commit

use super::plane::ControlPlane;
use super::registry::{CallRecord, CallRegistry};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
#[cfg(test)]
use std::{collections::HashMap, sync::Mutex};

/// Most compare-and-set attempts of one call-record change.
pub(crate) const CAS_ATTEMPTS: usize = 8;
/// Header marking a request forwarded from another replica (never forwarded again).
pub(crate) const ROUTED_HEADER: &str = "x-acs-gateway-routed";

/// Why a cluster request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    /// The key changed since the revision read (compare-and-set lost), or it exists already.
    #[error("revision conflict")]
    Conflict,
    /// No replica answers on the subject (it is gone).
    #[error("replica {0} is gone")]
    ReplicaGone(String),
    /// No reply in time.
    #[error("timed out")]
    Timeout,
    /// Not connected to NATS (the link is reconnecting).
    #[error("NATS is unreachable")]
    Unreachable,
    /// Request too large for the cluster bus.
    #[error("request of {0} bytes is over the cluster bus limit of {1} bytes")]
    TooLarge(usize, usize),
    /// Anything else (connection, server, encoding).
    #[error("{0}")]
    Other(String),
}

/// A change of a call record that was not written to the shared bucket.
#[derive(Debug)]
pub(crate) struct NotShared<R> {
    /// Why.
    pub(crate) error: LinkError,
    /// The change's result when it was applied to the local registry (the bucket's read worked,
    /// its write did not); `None` when nothing was applied.
    pub local: Option<R>,
}

/// A result of a cluster request.
pub(crate) type LinkFuture<'a, T> = BoxFuture<'a, Result<T, LinkError>>;

/// A request forwarded to the replica holding a call's media socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// HTTP method.
    pub method: String,
    /// Path (`/api/calls/{id}/play`, …).
    pub path: String,
    /// Content-Type ("" when none).
    pub content_type: String,
    /// Body.
    pub body: Bytes,
}

/// The owner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Bytes,
}

/// Shared state and routing between replicas: a key-value store with revisions and
/// create-if-absent, and request-reply to a named replica.
pub(crate) trait ClusterLink: std::fmt::Debug + Send + Sync + 'static {
    /// This replica's id.
    fn replica(&self) -> &str;
    /// The link is up (`/readyz`).
    fn reachable(&self) -> bool;
    /// Creates `key` if absent: `true` when this call created it.
    fn claim(&self, key: String) -> LinkFuture<'_, bool>;
    /// The value and revision of `key`.
    fn load(&self, key: String) -> LinkFuture<'_, Option<(Bytes, u64)>>;
    /// Writes `key` if its revision is still `revision` (`None`: only if absent);
    /// [`LinkError::Conflict`] otherwise. Returns the new revision.
    fn store(&self, key: String, value: Bytes, revision: Option<u64>) -> LinkFuture<'_, u64>;
    /// Every value whose key starts with `prefix`.
    fn list(&self, prefix: String) -> LinkFuture<'_, Vec<Bytes>>;
    /// Sends `req` to `replica` and waits for its reply.
    fn forward(&self, replica: String, req: Forwarded) -> LinkFuture<'_, ForwardReply>;
}

/// The in-memory [`ClusterLink`]: one store shared by the control planes that hold it (tests of
/// two replicas in one process, without a server). Forwarding reaches no one.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct MemoryLink {
    replica: String,
    store: std::sync::Arc<Mutex<HashMap<String, (Bytes, u64)>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(test)]
impl MemoryLink {
    /// A new store, seen by `replica`.
    pub(crate) fn new(replica: &str) -> Self {
        Self {
            replica: replica.to_owned(),
            store: Default::default(),
            down: Default::default(),
        }
    }

    /// The same store, seen by another replica (down and up together with this one).
    pub(crate) fn peer(&self, replica: &str) -> Self {
        Self {
            replica: replica.to_owned(),
            store: self.store.clone(),
            down: self.down.clone(),
        }
    }

    /// Failure injection: while down, every request fails with [`LinkError::Unreachable`] and
    /// [`ClusterLink::reachable`] is `false`, as with NATS unreachable.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn up(&self) -> Result<(), LinkError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(LinkError::Unreachable)
        } else {
            Ok(())
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (Bytes, u64)>) -> T) -> T {
        f(&mut self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
impl ClusterLink for MemoryLink {
    fn replica(&self) -> &str {
        &self.replica
    }
    fn reachable(&self) -> bool {
        self.up().is_ok()
    }
    fn claim(&self, key: String) -> LinkFuture<'_, bool> {
        let r = self.up().map(|()| {
            self.with(|m| match m.entry(key) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((Bytes::new(), 1));
                    true
                }
            })
        });
        Box::pin(async move { r })
    }
    fn load(&self, key: String) -> LinkFuture<'_, Option<(Bytes, u64)>> {
        let r = self.up().map(|()| self.with(|m| m.get(&key).cloned()));
        Box::pin(async move { r })
    }
    fn store(&self, key: String, value: Bytes, revision: Option<u64>) -> LinkFuture<'_, u64> {
        if let Err(e) = self.up() {
            return Box::pin(async move { Err(e) });
        }
        let r = self.with(|m| {
            let cur = m.get(&key).map(|(_, r)| *r);
            if cur != revision {
                return Err(LinkError::Conflict);
            }
            let next = cur.unwrap_or(0) + 1;
            m.insert(key, (value, next));
            Ok(next)
        });
        Box::pin(async move { r })
    }
    fn list(&self, prefix: String) -> LinkFuture<'_, Vec<Bytes>> {
        let r = self.up().map(|()| {
            self.with(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, (v, _))| v.clone())
                    .collect()
            })
        });
        Box::pin(async move { r })
    }
    fn forward(&self, replica: String, _req: Forwarded) -> LinkFuture<'_, ForwardReply> {
        let r = self.up();
        Box::pin(async move {
            r?;
            Err(LinkError::ReplicaGone(replica))
        })
    }
}

/// A call record as stored in the bucket: the record and the fields the API does not show.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    record: CallRecord,
    token: String,
    token_expires_ms: i64,
    received_ms: i64,
    ended_ms: Option<i64>,
    seen_events: VecDeque<String>,
    participants_seq: Option<i64>,
    dtmf_keys: BTreeMap<i64, char>,
}

/// Encodes a record for the bucket.
pub(crate) fn encode(r: &CallRecord) -> Bytes {
    let s = Stored {
        record: r.clone(),
        token: r.token.clone(),
        token_expires_ms: r.token_expires_ms,
        received_ms: r.received_ms,
        ended_ms: r.ended_ms,
        seen_events: r.seen_events.clone(),
        participants_seq: r.participants_seq,
        dtmf_keys: r.dtmf.keys.clone(),
    };
    Bytes::from(serde_json::to_vec(&s).unwrap_or_default())
}

/// Decodes a record from the bucket.
pub(crate) fn decode(b: &[u8]) -> Option<CallRecord> {
    let s: Stored = serde_json::from_slice(b).ok()?;
    let mut r = s.record;
    r.token = s.token;
    r.token_expires_ms = s.token_expires_ms;
    r.received_ms = s.received_ms;
    r.ended_ms = s.ended_ms;
    r.seen_events = s.seen_events;
    r.participants_seq = s.participants_seq;
    r.dtmf.keys = s.dtmf_keys;
    Some(r)
}

fn call_key(id: &str) -> String {
    format!("call.{}", key_safe(id))
}

fn conn_key(conn: &str) -> String {
    format!("conn.{}", key_safe(conn))
}

/// Ids as bucket keys: JetStream keys allow `[-_=/.A-Za-z0-9]`; anything else is hashed.
fn key_safe(v: &str) -> String {
    if !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b))
    {
        v.to_owned()
    } else {
        hex(&Sha256::digest(v.as_bytes()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn claim_key(kind: &str, v: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(v.as_bytes());
    format!("in.{}", hex(&h.finalize()))
}

impl ControlPlane {
    fn count(&self, op: &str, r: &Result<impl Sized, LinkError>) {
        let outcome = match r {
            Ok(_) => "ok",
            Err(LinkError::Conflict) => "conflict",
            Err(LinkError::Timeout) => "timeout",
            Err(_) => "error",
        };
        self.metrics.cluster.request(op, outcome);
    }

    /// This replica's id in cluster mode.
    pub fn replica_id(&self) -> Option<&str> {
        self.link().map(|l| l.replica())
    }

    /// `Some(reachable)` in cluster mode (`/readyz`).
    pub fn cluster_reachable(&self) -> Option<bool> {
        self.link().map(|l| l.reachable())
    }

    /// Cluster-wide first sight of an IncomingCall (create-if-absent on its context, then its
    /// event id): `Ok(true)` when new, `Ok(false)` for a duplicate. Without a link only the
    /// local set decides. `Err` when the claim on the context (or, without one, the event id)
    /// could not be made (NATS unreachable): the call is then forgotten locally too, so that
    /// Event Grid's redelivery is taken as new. Once the context is claimed, a failed claim of
    /// the event id does not matter (the context names the call).
    pub(crate) async fn first_incoming(
        &self,
        event_id: &str,
        context: &str,
    ) -> Result<bool, LinkError> {
        if !self
            .dedupe
            .first_time(event_id, context, std::time::Instant::now())
        {
            return Ok(false);
        }
        let Some(link) = self.link() else {
            return Ok(true);
        };
        let mut claimed = false;
        for (kind, v) in [("ctx", context), ("id", event_id)] {
            if v.is_empty() {
                continue;
            }
            let r = link.claim(claim_key(kind, v)).await;
            self.count("claim", &r);
            match r {
                Ok(true) => claimed = true,
                Ok(false) => return Ok(false),
                Err(e) if claimed => {
                    tracing::warn!(error = %e, "cluster: event id not claimed; the context is");
                }
                Err(e) => {
                    self.dedupe.forget(event_id, context);
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Cluster mode: reads the call (by gateway id or `callConnectionId`) from the bucket into
    /// the local registry. `Ok(false)` when the bucket has no such call (or no link); `Err`
    /// when the bucket cannot be read (the local registry is left as it was).
    pub(crate) async fn refresh(&self, key: &str) -> Result<bool, LinkError> {
        let Some(link) = self.link() else {
            return Ok(false);
        };
        let r = link.load(call_key(key)).await;
        self.count("load", &r);
        let found = match r? {
            Some((b, _)) => Some(b),
            None => {
                let r = link.load(conn_key(key)).await;
                self.count("load", &r);
                match r? {
                    Some((id, _)) => {
                        let id = String::from_utf8_lossy(&id).into_owned();
                        let r = link.load(call_key(&id)).await;
                        self.count("load", &r);
                        r?.map(|(b, _)| b)
                    }
                    None => None,
                }
            }
        };
        match found.as_deref().and_then(decode) {
            Some(rec) => {
                self.registry.replace(rec);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Cluster mode: reads every call from the bucket into the local registry.
    pub(crate) async fn refresh_all(&self) -> Result<(), LinkError> {
        let Some(link) = self.link() else {
            return Ok(());
        };
        let r = link.list("call.".into()).await;
        self.count("list", &r);
        for rec in r?.iter().filter_map(|b| decode(b)) {
            self.registry.replace(rec);
        }
        Ok(())
    }

    /// Cluster mode: refreshes what an operator route reads (`/api/calls`: every call;
    /// `/api/calls/{id}…`: that call); `Err` when the bucket cannot be read.
    pub(crate) async fn refresh_for_path(&self, path: &str) -> Result<(), LinkError> {
        if self.link().is_none() {
            return Ok(());
        }
        match path.trim_end_matches('/').strip_prefix("/api/calls") {
            Some("") => self.refresh_all().await,
            Some(rest) => match rest.trim_start_matches('/').split('/').next() {
                Some(id) => self.refresh(id).await.map(|_| ()),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The answer to a request that needs the shared call state while NATS cannot be reached:
    /// 503 `{"code":"nats_unreachable"}`, counted per `endpoint` (`incoming_call`, `callbacks`,
    /// `operator`).
    pub(crate) fn nats_unreachable(&self, endpoint: &str, e: &LinkError) -> super::HttpResponse {
        self.metrics.cluster.nats_unreachable(endpoint);
        tracing::warn!(endpoint, error = %e, "cluster: shared call state unreachable; 503");
        super::json_response(
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": format!("the cluster's shared call state (NATS JetStream) is unreachable: {e}; retry later"),
                "code": "nats_unreachable",
            }),
        )
    }

    /// Cluster mode: writes a call just registered locally to the bucket (create).
    pub async fn publish_new(&self, id: &str) {
        let (Some(link), Some(rec)) = (self.link(), self.registry.get(id)) else {
            return;
        };
        let r = link.store(call_key(id), encode(&rec), None).await;
        self.count("store", &r);
        if let Err(e) = r {
            tracing::warn!(call = %id, error = %e, "cluster: call not written to the bucket");
        }
    }

    /// Changes call `id` with `f` (applied to the local registry): alone, as before; in cluster
    /// mode, read-modify-write with compare-and-set on the bucket, `f` re-applied to the fresh
    /// record after a conflict. When the bucket cannot be reached the change is kept locally
    /// (media open/close, the answer task: never lose what the call does on this replica); see
    /// [`Self::try_commit`] for requests that can be refused instead.
    pub(crate) async fn commit<R>(&self, id: &str, f: impl Fn(&CallRegistry, &str) -> R) -> R {
        match self.try_commit(id, &f).await {
            Ok(r) => r,
            Err(NotShared {
                local: Some(r),
                error,
            }) => {
                tracing::warn!(call = %id, %error, "cluster: change not written to the bucket; kept locally");
                r
            }
            Err(NotShared { local: None, error }) => {
                tracing::warn!(call = %id, %error, "cluster: bucket unreachable; change kept locally");
                f(&self.registry, id)
            }
        }
    }

    /// [`Self::commit`], but a change that could not be shared is an error: nothing applied
    /// when the record could not be read, applied only locally when it could not be written
    /// (the next read from the bucket replaces it). Losing [`CAS_ATTEMPTS`] races in a row
    /// keeps the change locally (`Ok`), as before.
    pub(crate) async fn try_commit<R>(
        &self,
        id: &str,
        f: impl Fn(&CallRegistry, &str) -> R,
    ) -> Result<R, NotShared<R>> {
        let Some(link) = self.link() else {
            return Ok(f(&self.registry, id));
        };
        let key = call_key(id);
        let mut out = None;
        for attempt in 0..CAS_ATTEMPTS {
            if attempt > 0 {
                self.metrics.cluster.cas_retries.inc();
                tokio::time::sleep(std::time::Duration::from_millis(2 << attempt.min(6))).await;
            }
            let loaded = link.load(key.clone()).await;
            self.count("load", &loaded);
            let revision = match loaded {
                Ok(Some((b, rev))) => {
                    if let Some(rec) = decode(&b) {
                        self.registry.replace(rec);
                    }
                    Some(rev)
                }
                Ok(None) => None,
                Err(error) => return Err(NotShared { error, local: None }),
            };
            let r = f(&self.registry, id);
            let Some(rec) = self.registry.get(id) else {
                return Ok(r);
            };
            let stored = link.store(key.clone(), encode(&rec), revision).await;
            self.count("store", &stored);
            match stored {
                Ok(_) => {
                    if let Some(c) = &rec.call_connection_id {
                        let _ = link
                            .store(conn_key(c), Bytes::from(rec.id.clone()), None)
                            .await;
                    }
                    return Ok(r);
                }
                Err(LinkError::Conflict) => out = Some(r),
                Err(error) => {
                    return Err(NotShared {
                        error,
                        local: Some(r),
                    })
                }
            }
        }
        tracing::warn!(call = %id, "cluster: change lost {CAS_ATTEMPTS} compare-and-set races; kept locally");
        Ok(out.unwrap_or_else(|| f(&self.registry, id)))
    }

    /// The replica to forward a media operation on `rec` to: another replica holds its socket.
    pub fn media_owner(&self, rec: &CallRecord) -> Option<String> {
        let me = self.replica_id()?;
        let m = &rec.media_connection;
        m.replica
            .as_deref()
            .filter(|r| m.connected && *r != me)
            .map(str::to_owned)
    }

    /// Forwards `req` to `replica` (the holder of the call's media socket); the reply, or the
    /// 503 (replica gone) / 504 (no reply in time) / 413 / 502 error as a JSON response.
    pub async fn forward_media(&self, replica: &str, req: Forwarded) -> super::HttpResponse {
        use hyper::StatusCode;
        let Some(link) = self.link() else {
            return super::error_response(StatusCode::INTERNAL_SERVER_ERROR, "not in cluster mode");
        };
        let r = link.forward(replica.to_owned(), req).await;
        self.count("route", &r);
        let (status, reason, msg) = match r {
            Ok(rep) => {
                let status = StatusCode::from_u16(rep.status).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut resp = hyper::Response::new(http_body_util::Full::new(rep.body));
                *resp.status_mut() = status;
                resp.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                return resp;
            }
            Err(LinkError::ReplicaGone(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "replica_gone",
                format!("replica {replica} holding the call's media socket is gone"),
            ),
            Err(LinkError::Timeout) => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!("replica {replica} holding the call's media socket did not answer in time"),
            ),
            Err(e @ LinkError::TooLarge(..)) => {
                return super::error_response(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            Err(e @ LinkError::Unreachable) => return self.nats_unreachable("operator", &e),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                "error",
                format!("routing to replica {replica} failed: {e}"),
            ),
        };
        self.metrics.cluster.routing_failed(reason);
        tracing::warn!(%replica, reason, "cluster: media operation not routed");
        super::json_response(
            status,
            &serde_json::json!({"error": msg, "code": format!("routing_{reason}"), "replica": replica}),
        )
    }
}

impl ControlPlane {
    /// Runs a media operation forwarded by another replica (its operator key was checked there)
    /// on this replica's media sockets.
    pub async fn serve_forwarded(self: &std::sync::Arc<Self>, req: Forwarded) -> ForwardReply {
        use http_body_util::BodyExt;
        let mut b = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(req.path.as_str())
            .header(ROUTED_HEADER, self.replica_id().unwrap_or("1"));
        if !req.content_type.is_empty() {
            b = b.header(hyper::header::CONTENT_TYPE, req.content_type.as_str());
        }
        let resp = match b.body(http_body_util::Full::new(req.body)) {
            Ok(r) => match super::playback::route(self, r).await {
                Ok(resp) => resp,
                Err(_) => super::error_response(
                    hyper::StatusCode::NOT_FOUND,
                    format!("{} is not a routed media operation", req.path),
                ),
            },
            Err(e) => super::error_response(hyper::StatusCode::BAD_REQUEST, e),
        };
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        ForwardReply { status, body }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
