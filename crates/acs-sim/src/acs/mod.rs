//! EDGE: the fake ACS — an in-process HTTP server that plays the Azure Communication Services
//! side of Call Automation for a gateway under test (docs/PROTOCOL.md §3–§8, §11).
//!
//! [`FakeAcs::start`] binds `127.0.0.1:0` (or the configured address) and returns a
//! [`FakeAcsHandle`]. The server:
//!
//! * **authenticates** every data-plane request with HMAC-SHA256 ([`acs_protocol::auth::verify`],
//!   host from `x-ms-host` else `Host`, date skew [`FakeAcsConfig::max_date_skew`]); a failure is
//!   401 `{"error":{"code":"Denied",…}}` with the reason as `innererror`;
//! * **routes** with [`AcsOperation::parse`]; unknown paths are 404, a missing `api-version` is
//!   400 `MissingApiVersionParameter`, operations the gateway does not use are 501;
//! * honours **repeatability** (`Repeatability-Request-ID` / `Repeatability-First-Sent` on the
//!   operations where [`AcsOperation::needs_repeatability`]): both or neither, a valid RFC 1123
//!   first-sent date; a request id seen before is answered with the first response again and
//!   has no second side effect (the response carries `Repeatability-Result: accepted`);
//! * **validates** bodies with the protocol types' `validate()` (400 with the field as
//!   `target`);
//! * keeps **calls**: answer takes an `incomingCallContext` this fake issued
//!   ([`FakeAcsHandle::incoming_call`]) within [`FakeAcsConfig::incoming_call_ttl`] (an unknown or
//!   expired one gets ACS's stale-call error, IDX23010), then posts `CallConnected`,
//!   `ParticipantsUpdated` and — with `mediaStreamingOptions.startMediaStreaming` or a later
//!   `:startMediaStreaming` — opens the media WebSocket to `transportUrl` (ACS upgrade headers
//!   and a 24 h RS256 bearer token) and streams the call's audio in real time with
//!   [`crate::play()`], posting `MediaStreamingStarted` (or `MediaStreamingFailed`). Every
//!   later operation posts its callbacks in order (table below), each with a fresh 5-minute
//!   RS256 token, and the `operationContext` echoed;
//! * records **outbound audio** the gateway sends back on the media socket (`AudioData`,
//!   `StopAudio`) with arrival times and the caller's stream position then
//!   ([`FakeAcsHandle::outbound_pcm`], [`FakeAcsHandle::outbound_events`], [`OutboundSummary`]);
//!   the caller's audio can be the test's own PCM ([`AudioInput::Pcm`]) and start a while after
//!   the `AudioMetadata` ([`CallAudio::first_audio_after`]);
//! * serves its **JWKS** at `/calling/keys` (the current key first, then keys rotated out with
//!   [`FakeAcsHandle::rotate_signer`]) and an OpenID-configuration-like document at
//!   `/calling/.well-known/acsopenidconfiguration` (not signed, not logged as requests);
//! * injects **faults** on request ([`FakeAcsHandle::set_fault`]);
//! * keeps a **request log** ([`FakeAcsHandle::requests`]);
//! * offers a small unsigned admin API for the CLI under `/sim/` (issue an incoming call, list
//!   calls and requests, hang a call up from the far end).
//!
//! | operation | response | callbacks, in order |
//! |---|---|---|
//! | answer | 200 `CallConnectionProperties` (`connecting`) | `CallConnected`, `ParticipantsUpdated`, then `MediaStreamingStarted` / `MediaStreamingFailed` if streaming starts |
//! | reject, redirect | 204 | — |
//! | get call / participants / participant | 200; participants in pages of [`FakeAcsConfig::participants_page_size`] linked by `nextLink` (`&skip=N`) | — |
//! | hang up (DELETE), terminate | 204 | `MediaStreamingStopped` (if streaming), `CallDisconnected` |
//! | add participant | 202 `{participant, operationContext, invitationId}` | after [`FakeAcsConfig::ring_time`]: `AddParticipantSucceeded` + `ParticipantsUpdated`, or `AddParticipantFailed` (see [`FakeAcsHandle::fail_participant`]) |
//! | cancel add participant | 202 | `CancelAddParticipantSucceeded` / `Failed` |
//! | remove participant | 202 (404 if not in the call) | `RemoveParticipantSucceeded`, `ParticipantsUpdated` |
//! | mute | 200 `{operationContext}` (404 if a target is not in the call) | `ParticipantsUpdated` with `isMuted` |
//! | hold (optionally with `playSourceInfo`) / unhold | 200 (404 if not in the call) | `HoldAudioStarted` (hold with audio) or `HoldAudioCompleted` (unhold after hold audio), then `ParticipantsUpdated` with `isOnHold`; or `HoldFailed` ([`FakeAcsHandle::fail_participant`]) |
//! | send DTMF tones (PSTN participants, 1–18 tones) | 202 `{operationContext}` | `SendDtmfTonesCompleted`, or `SendDtmfTonesFailed` ([`FakeAcsHandle::fail_participant`]) |
//! | start / stop continuous DTMF recognition | 200 | per key the participant presses ([`FakeAcsHandle::press_dtmf`]) `ContinuousDtmfRecognitionToneReceived` (`tone`, `sequenceId`); stop (or the call's end) → `ContinuousDtmfRecognitionStopped` |
//! | transfer | 202 | `CallTransferAccepted`, `MediaStreamingStopped` (if streaming), `CallDisconnected` — or `CallTransferFailed` |
//! | start / stop media streaming | 202 (400 if not possible) | `MediaStreamingStarted` / `MediaStreamingStopped` |
//! | start recording (`callConnectionId` or `callLocator`) | 200 `{recordingId, recordingState: inactive}` | `RecordingStateChanged` active, or `StartRecordingFailed` ([`FakeAcsHandle::set_recording_fails`]) |
//! | get / stop (DELETE) / pause / resume recording | 200 / 204 / 202 / 202 | `RecordingStateChanged` inactive / inactive / active |
//! | Teams user token exchange | 200 `{token, expiresOn}`; 401 `InvalidAccessToken` unless the Entra token looks like a JWT | — |
//! | Teams extension assignment (PUT) | 201, then 200 for the same account | — |

mod call;
mod echo;
mod media;
mod ops;
mod server;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::SimError;
use super::ids::SimRng;
use super::jwt::{AcsSigner, SigningKeySource, ACS_ISSUER, JWKS_PATH};
use super::play::Pacing;
use acs_protocol::events::IncomingCallEventData;
use acs_protocol::rest::{
    CallConnectionState, CallParticipant, CustomCallingContext, MediaStreamingOptions,
    RecordingState, SubscriptionState,
};
use acs_protocol::{AcsOperation, CommunicationIdentifier, CommunicationIdentifierModel};

pub use media::{IntervalStats, OutboundEvent, OutboundKind, OutboundSummary};

use state::Shared;

/// The default signature date skew ACS-like servers accept.
pub const DEFAULT_MAX_DATE_SKEW: Duration = Duration::from_secs(15 * 60);

mod model;
pub use model::*;

/// Starts fake ACS servers.
#[derive(Debug)]
pub struct FakeAcs;

impl FakeAcs {
    /// Loads or generates the signing key, binds `cfg.listen` and serves until
    /// [`FakeAcsHandle::shutdown`] (or the handle is dropped).
    pub async fn start(cfg: FakeAcsConfig) -> Result<FakeAcsHandle, SimError> {
        let (source, kid, issuer, aud) = (
            cfg.signing_key.clone(),
            cfg.kid.clone(),
            cfg.issuer.clone(),
            cfg.resource_id.clone(),
        );
        let signer = tokio::task::spawn_blocking(move || AcsSigner::new(&source, kid, issuer, aud))
            .await
            .map_err(|e| SimError::SigningKey(e.to_string()))??;
        FakeAcs::start_with_signer(cfg, signer).await
    }

    /// Like [`start`](Self::start) with a ready signer (its issuer and audience win over the
    /// config's).
    pub async fn start_with_signer(
        cfg: FakeAcsConfig,
        signer: AcsSigner,
    ) -> Result<FakeAcsHandle, SimError> {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: cfg.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: cfg.listen.to_string(),
            source,
        })?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared::new(cfg, signer, base_url.clone())?);
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared), rx));
        Ok(FakeAcsHandle {
            jwks_url: format!("{base_url}{JWKS_PATH}"),
            issuer: shared.signer().issuer().to_owned(),
            audience: shared.signer().audience().to_owned(),
            base_url,
            addr,
            shared,
            stop: tx,
            server: Mutex::new(Some(server)),
        })
    }
}

/// A running fake ACS. Dropping it stops the listener (calls' tasks end with the runtime);
/// [`shutdown`](Self::shutdown) also closes media streams and waits for them.
#[derive(Debug)]
pub struct FakeAcsHandle {
    /// `http://127.0.0.1:PORT`: the connection string's endpoint.
    pub base_url: String,
    /// `{base_url}/calling/keys`.
    pub jwks_url: String,
    /// `iss` of its tokens.
    pub issuer: String,
    /// `aud` of its tokens (the resource id).
    pub audience: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl FakeAcsHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Milliseconds since the fake started: the clock of every `at_ms` field.
    pub fn elapsed_ms(&self) -> u64 {
        self.shared.elapsed_ms()
    }

    /// `endpoint=http://127.0.0.1:PORT/;accesskey=<base64>`: what the gateway is configured
    /// with.
    pub fn connection_string(&self) -> String {
        connection_string(&self.base_url, &self.shared.cfg.access_key)
    }

    /// The decoded access key.
    pub fn access_key(&self) -> &[u8] {
        &self.shared.cfg.access_key
    }

    /// The current token signer (mint tokens with other claims, read its JWK).
    pub fn signer(&self) -> Arc<AcsSigner> {
        self.shared.signer()
    }

    /// Rotates the signing key: every later media upgrade, callback and exchanged token is
    /// signed with `next` (its issuer and audience should match the first signer's); the JWKS
    /// lists `next` first and keeps the old keys, as ACS does during a real rotation.
    pub fn rotate_signer(&self, next: AcsSigner) {
        self.shared.rotate_signer(next);
    }

    /// The JSON Web Key Set served at `/calling/keys`.
    pub fn jwks(&self) -> serde_json::Value {
        self.shared.jwks()
    }

    /// The Event Grid `topic` of this resource
    /// (`/subscriptions/…/providers/Microsoft.Communication/communicationServices/{name}`).
    pub fn topic(&self) -> String {
        self.shared.topic()
    }

    /// Issues an `incomingCallContext` for `spec` and returns the IncomingCall event `data`
    /// that carries it (deliver it with [`crate::eventgrid`]).
    pub fn incoming_call(&self, spec: IncomingCallSpec) -> IncomingCallEventData {
        self.shared.issue_incoming_call(spec)
    }

    /// What happened to an issued context (`None`: never issued here).
    pub fn context_outcome(&self, incoming_call_context: &str) -> Option<ContextOutcome> {
        self.shared.context_outcome(incoming_call_context)
    }

    /// Every logged request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Logged requests of one operation ([`AcsOperation::name`]).
    pub fn requests_of(&self, operation: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.operation_name == Some(operation))
            .collect()
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches()
    }

    /// Every call, in answer order.
    pub fn calls(&self) -> Vec<CallInfo> {
        self.shared.calls()
    }

    /// One call by `callConnectionId`.
    pub fn call(&self, call_connection_id: &str) -> Option<CallInfo> {
        self.calls()
            .into_iter()
            .find(|c| c.call_connection_id == call_connection_id)
    }

    /// The PCM (16-bit mono, at the call's rate) the gateway sent back on the call's media
    /// socket, in arrival order; `None` for an unknown call.
    pub fn outbound_pcm(&self, call_connection_id: &str) -> Option<Vec<i16>> {
        self.shared.outbound_pcm(call_connection_id)
    }

    /// Everything the gateway sent back on the call's media sockets, in arrival order.
    pub fn outbound_events(&self, call_connection_id: &str) -> Option<Vec<OutboundEvent>> {
        self.shared.outbound_events(call_connection_id)
    }

    /// Adds a fault rule (rules are tried in order; each match uses one of its `count`).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.add_fault(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Makes adding, transferring to, holding or sending DTMF to `raw_id` fail
    /// (`AddParticipantFailed`, `CallTransferFailed`, `HoldFailed`, `SendDtmfTonesFailed`).
    pub fn fail_participant(&self, raw_id: &str) {
        self.shared.fail_participant(raw_id);
    }

    /// Participant `raw_id` of a live call presses `keys` (`0`–`9`, `A`–`D`, `#`, `*`; others
    /// are skipped): while continuous DTMF recognition runs for them, each key is posted as
    /// `ContinuousDtmfRecognitionToneReceived` (`tone`, rising `sequenceId`); otherwise nothing
    /// is posted, as with ACS. `false` if the call is unknown or over.
    pub fn press_dtmf(&self, call_connection_id: &str, raw_id: &str, keys: &str) -> bool {
        let tones = keys
            .chars()
            .filter_map(acs_protocol::rest::DtmfTone::from_key)
            .collect();
        self.shared.send(
            call_connection_id,
            call::Cmd::KeysPressed {
                raw_id: raw_id.to_owned(),
                tones,
            },
        )
    }

    /// Makes later recordings fail to start (`StartRecordingFailed`).
    pub fn set_recording_fails(&self, fails: bool) {
        self.shared.set_recording_fails(fails);
    }

    /// The far end hangs up: media stops (`MediaStreamingStopped`), `CallDisconnected` is
    /// posted. `false` if the call is unknown or already over.
    pub fn hang_up(&self, call_connection_id: &str) -> bool {
        self.shared.remote_hang_up(call_connection_id)
    }

    /// Waits until `f` returns `Some` (checked now and after every change of requests, calls or
    /// callbacks), at most `timeout`; the last result of `f` when it times out.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&FakeAcsHandle) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(self) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(self);
            }
        }
    }

    /// Waits for the call answered with `incoming_call_context`.
    pub async fn wait_for_answer(
        &self,
        incoming_call_context: &str,
        timeout: Duration,
    ) -> Option<CallInfo> {
        self.wait_for(timeout, |h| {
            h.calls()
                .into_iter()
                .find(|c| c.incoming_call_context == incoming_call_context)
        })
        .await
    }

    /// Waits until the call has posted the callback `event` (name without prefix, e.g.
    /// `CallDisconnected`).
    pub async fn wait_for_callback(
        &self,
        call_connection_id: &str,
        event: &str,
        timeout: Duration,
    ) -> Option<CallInfo> {
        self.wait_for(timeout, |h| {
            h.call(call_connection_id)
                .filter(|c| c.callback_names().iter().any(|n| n == event))
        })
        .await
    }

    /// Stops listening, ends every media stream (close 1000) and waits (bounded) for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        if let Some(server) = server {
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
        self.shared.shutdown_calls().await;
    }
}

impl Drop for FakeAcsHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `endpoint={base_url}/;accesskey={base64(key)}`.
pub fn connection_string(base_url: &str, access_key: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "endpoint={base_url}/;accesskey={}",
        base64::engine::general_purpose::STANDARD.encode(access_key)
    )
}
