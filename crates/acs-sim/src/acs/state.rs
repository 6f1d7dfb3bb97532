//! The fake ACS's shared state: configuration, signer, request log, fault rules, issued
//! incoming-call contexts, calls and the repeatability cache, behind one mutex that is never
//! held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use tokio::sync::{mpsc, Notify};

use super::call::Cmd;
use super::media::OutboundLog;
use super::{
    random_bytes, CallAudio, CallEnd, CallInfo, ContextOutcome, FakeAcsConfig, Fault,
    IncomingCallSpec, RecordedRequest,
};
use crate::error::SimError;
use crate::ids::SimRng;
use crate::jwt::{unix_now, AcsSigner};
use acs_protocol::events::IncomingCallEventData;
use acs_protocol::CommunicationIdentifierModel;

/// Requests kept in the log (older ones are dropped).
const MAX_LOGGED_REQUESTS: usize = 10_000;
/// Repeatability ids remembered.
const MAX_REPEATABILITY_ENTRIES: usize = 10_000;

/// A response kept for a `Repeatability-Request-ID`.
#[derive(Debug, Clone)]
pub(crate) struct CachedReply {
    pub first_sent: String,
    pub reply: super::server::Reply,
}

/// An issued `incomingCallContext`.
#[derive(Debug)]
pub(crate) struct PendingContext {
    pub data: IncomingCallEventData,
    pub audio: Option<CallAudio>,
    pub issued: Instant,
    pub outcome: ContextOutcome,
}

/// An add-participant invitation that has not been answered yet.
#[derive(Debug, Clone)]
pub(crate) struct Invite {
    pub participant: CommunicationIdentifierModel,
    pub operation_context: Option<String>,
    pub callback_uri: Option<String>,
}

/// One call.
#[derive(Debug)]
pub(crate) struct CallEntry {
    pub info: CallInfo,
    pub tx: mpsc::UnboundedSender<Cmd>,
    pub audio: CallAudio,
    /// Participant raw ids of the audio's talkers, in source order.
    pub talker_ids: Vec<String>,
    /// A media stream is starting or running (start/stop media streaming are refused
    /// accordingly).
    pub media_running: bool,
    pub outbound: OutboundLog,
    pub invitations: HashMap<String, Invite>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub requests: Vec<RecordedRequest>,
    pub next_seq: u64,
    pub jwks_fetches: u64,
    pub faults: Vec<Fault>,
    pub contexts: HashMap<String, PendingContext>,
    pub calls: Vec<CallEntry>,
    pub repeat: HashMap<String, CachedReply>,
    pub repeat_order: Vec<String>,
    /// Repeatability ids whose first request is executing.
    pub inflight: HashSet<String>,
    /// recording id → call connection id.
    pub recordings: HashMap<String, String>,
    /// (tenant id, object id) of Teams extension assignments.
    pub assignments: HashSet<(String, String)>,
    pub failing_participants: HashSet<String>,
    pub recording_fails: bool,
}

impl State {
    pub fn call_mut(&mut self, id: &str) -> Option<&mut CallEntry> {
        self.calls
            .iter_mut()
            .find(|c| c.info.call_connection_id == id)
    }

    pub fn remember_reply(&mut self, id: String, cached: CachedReply) {
        if self.repeat.len() >= MAX_REPEATABILITY_ENTRIES && !self.repeat_order.is_empty() {
            let oldest = self.repeat_order.remove(0);
            self.repeat.remove(&oldest);
        }
        self.repeat_order.push(id.clone());
        self.repeat.insert(id, cached);
    }
}

/// Everything the server, the call tasks and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: FakeAcsConfig,
    /// The current signer and the public keys of the ones rotated out (still in the JWKS).
    signers: std::sync::RwLock<(Arc<AcsSigner>, Vec<serde_json::Value>)>,
    pub base_url: String,
    pub started: Instant,
    pub changed: Notify,
    pub http: reqwest::Client,
    subscription: String,
    state: Mutex<State>,
}

impl Shared {
    /// The signer of every new token.
    pub fn signer(&self) -> Arc<AcsSigner> {
        Arc::clone(&self.signers.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// Signs every later token with `next`; the old key stays in the JWKS (as in a real
    /// rotation, tokens already issued keep validating).
    pub fn rotate_signer(&self, next: AcsSigner) {
        let mut s = self.signers.write().unwrap_or_else(|p| p.into_inner());
        let (current, retired) = &mut *s;
        let old = std::mem::replace(current, Arc::new(next));
        retired.retain(|k| k["kid"] != old.kid() && k["kid"] != current.kid());
        retired.insert(0, old.jwk());
    }

    /// The JSON Web Key Set: the current key first, then the rotated-out ones.
    pub fn jwks(&self) -> serde_json::Value {
        let s = self.signers.read().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<_> = std::iter::once(s.0.jwk())
            .chain(s.1.iter().cloned())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub fn new(cfg: FakeAcsConfig, signer: AcsSigner, base_url: String) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.callback_timeout)
            .connect_timeout(cfg.callback_timeout)
            .no_proxy()
            .build()
            .map_err(|e| SimError::Http {
                url: base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Shared {
            cfg,
            signers: std::sync::RwLock::new((Arc::new(signer), Vec::new())),
            base_url,
            started: Instant::now(),
            changed: Notify::new(),
            http,
            subscription: SimRng::from_entropy().uuid_like(),
            state: Mutex::new(State::default()),
        })
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable for inspection).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state, then wakes every waiter.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.notify_waiters();
        out
    }

    /// Milliseconds since start.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// "Now" for signature dates.
    pub fn now_unix(&self) -> i64 {
        self.cfg.now_override.unwrap_or_else(unix_now)
    }

    pub fn topic(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/acs-sim/providers/Microsoft.Communication/communicationServices/{}",
            self.subscription, self.cfg.resource_name
        )
    }

    // --- request log -------------------------------------------------------------------------

    /// Appends a request; returns its sequence number.
    pub fn log_request(&self, mut r: RecordedRequest) -> u64 {
        self.update(|s| {
            s.next_seq += 1;
            r.seq = s.next_seq;
            if s.requests.len() >= MAX_LOGGED_REQUESTS {
                s.requests.remove(0);
            }
            s.requests.push(r);
            s.next_seq
        })
    }

    /// Updates a logged request.
    pub fn amend_request(&self, seq: u64, f: impl FnOnce(&mut RecordedRequest)) {
        self.update(|s| {
            if let Some(r) = s.requests.iter_mut().rev().find(|r| r.seq == seq) {
                f(r);
            }
        });
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn count_jwks_fetch(&self) {
        self.update(|s| s.jwks_fetches += 1);
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.lock().jwks_fetches
    }

    // --- faults and outcomes -----------------------------------------------------------------

    pub fn add_fault(&self, f: Fault) {
        self.update(|s| s.faults.push(f));
    }

    pub fn clear_faults(&self) {
        self.update(|s| s.faults.clear());
    }

    /// Consumes one use of the first rule matching `operation` (`None`: an unrouted request,
    /// matched only by `any` rules).
    pub fn take_fault(&self, operation: Option<&str>) -> Option<super::FaultKind> {
        self.update(|s| {
            let i = s.faults.iter().position(|f| {
                f.count > 0
                    && match (&f.operation, operation) {
                        (None, _) => true,
                        (Some(want), Some(op)) => want == op,
                        (Some(_), None) => false,
                    }
            })?;
            let rule = &mut s.faults[i];
            rule.count -= 1;
            let kind = rule.kind.clone();
            if rule.count == 0 {
                s.faults.remove(i);
            }
            Some(kind)
        })
    }

    pub fn fail_participant(&self, raw_id: &str) {
        self.update(|s| s.failing_participants.insert(raw_id.to_owned()));
    }

    pub fn set_recording_fails(&self, fails: bool) {
        self.update(|s| s.recording_fails = fails);
    }

    // --- incoming calls ------------------------------------------------------------------------

    pub fn issue_incoming_call(&self, spec: IncomingCallSpec) -> IncomingCallEventData {
        let mut rng = SimRng::from_entropy();
        let context = format!("acs-sim.{}", URL_SAFE_NO_PAD.encode(random_bytes(48)));
        let to = spec.to_model();
        let server_call_id = STANDARD.encode(format!(
            "https://acs-sim.invalid/conv/{}?i={}",
            rng.uuid_like(),
            rng.next_u64() % 100
        ));
        let data = IncomingCallEventData {
            to,
            from: (&spec.from).into(),
            server_call_id: Some(server_call_id),
            caller_display_name: spec.caller_display_name.clone(),
            custom_context: spec.custom_context.clone(),
            incoming_call_context: context.clone(),
            correlation_id: Some(rng.uuid_like()),
            on_behalf_of_callee: spec.on_behalf_of_callee.as_ref().map(Into::into),
        };
        self.update(|s| {
            s.contexts.insert(
                context,
                PendingContext {
                    data: data.clone(),
                    audio: spec.audio,
                    issued: Instant::now(),
                    outcome: ContextOutcome::Pending,
                },
            )
        });
        data
    }

    pub fn context_outcome(&self, context: &str) -> Option<ContextOutcome> {
        self.lock().contexts.get(context).map(|c| c.outcome.clone())
    }

    /// Whether a context issued at `issued` is still usable.
    pub fn context_live(&self, issued: Instant) -> bool {
        issued.elapsed() <= self.cfg.incoming_call_ttl
    }

    // --- calls ---------------------------------------------------------------------------------

    pub fn calls(&self) -> Vec<CallInfo> {
        self.lock()
            .calls
            .iter()
            .map(|c| {
                let mut info = c.info.clone();
                info.media.outbound = c.outbound.summary();
                info
            })
            .collect()
    }

    pub fn outbound_pcm(&self, id: &str) -> Option<Vec<i16>> {
        let s = self.lock();
        let c = s.calls.iter().find(|c| c.info.call_connection_id == id)?;
        Some(c.outbound.pcm())
    }

    pub fn outbound_events(&self, id: &str) -> Option<Vec<super::OutboundEvent>> {
        let s = self.lock();
        let c = s.calls.iter().find(|c| c.info.call_connection_id == id)?;
        Some(c.outbound.events())
    }

    /// Sends a command to a live call's task.
    pub fn send(&self, id: &str, cmd: Cmd) -> bool {
        let s = self.lock();
        s.calls
            .iter()
            .find(|c| c.info.call_connection_id == id && c.info.ended.is_none())
            .is_some_and(|c| c.tx.send(cmd).is_ok())
    }

    pub fn remote_hang_up(&self, id: &str) -> bool {
        self.send(
            id,
            Cmd::HangUp {
                end: CallEnd::RemoteHangUp,
                operation_context: None,
            },
        )
    }

    /// Ends every live call without callbacks and waits (at most 3 s) for their streams.
    pub async fn shutdown_calls(self: &Arc<Self>) {
        let live: Vec<String> = {
            let s = self.lock();
            s.calls
                .iter()
                .filter(|c| c.info.ended.is_none())
                .map(|c| c.info.call_connection_id.clone())
                .collect()
        };
        for id in &live {
            self.send(
                id,
                Cmd::HangUp {
                    end: CallEnd::Shutdown,
                    operation_context: None,
                },
            );
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let all_ended = {
                let s = self.lock();
                s.calls.iter().all(|c| c.info.ended.is_some())
            };
            if all_ended || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}
