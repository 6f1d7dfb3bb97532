//! The call registry: one record per call the gateway was offered — its ids (the gateway's call
//! id, `callConnectionId`, `serverCallId`, `correlationId`), from/to, state, media streaming
//! status, the media WebSocket's presence, recording, participants, timestamps and the last
//! error — updated by the answer task, by every callback event, and by ingress when the call's
//! media connection opens and closes.
//!
//! Bounded: at most `registry_max_calls` records; when full, the oldest ended call is evicted,
//! and if no call has ended a new call is refused. Ended calls are dropped `ended_call_ttl_secs`
//! after they ended, and calls that never ended are dropped that long after their call token
//! expired. Eviction is lazy (on each insert and listing). The `acs_gateway_calls_active` gauge
//! follows the number of records that have not ended.
//!
//! States: `answering` → `connected` (CallConnected) → `streaming` (MediaStreamingStarted;
//! back to `connected` on MediaStreamingStopped) → `disconnected` (CallDisconnected); or
//! `failed` (answer error, AnswerFailed), `rejected`, `redirected`. Terminal states never change.
//! Times are taken by the caller (Unix milliseconds) so tests control the clock.

use crate::protocol::events::{CallbackEvent, CallbackKind};
use prometheus::IntGauge;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Callback event ids remembered per call to drop redeliveries.
const SEEN_EVENTS: usize = 64;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Offered; the answer is in flight or ACS has not confirmed the connection yet.
    Answering,
    /// CallConnected received.
    Connected,
    /// MediaStreamingStarted received.
    Streaming,
    /// CallDisconnected received.
    Disconnected,
    /// The answer (or redirect/reject) failed, or AnswerFailed arrived.
    Failed,
    /// Rejected by policy.
    Rejected,
    /// Redirected by policy.
    Redirected,
}

impl CallState {
    /// No further change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallState::Disconnected
                | CallState::Failed
                | CallState::Rejected
                | CallState::Redirected
        )
    }

    /// Media may flow (the call token is accepted on the media endpoint).
    pub fn accepts_media(self) -> bool {
        matches!(
            self,
            CallState::Answering | CallState::Connected | CallState::Streaming
        )
    }
}

/// `mediaStreaming` of a record: the last MediaStreaming* callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStreamingInfo {
    /// `mediaStreamingStatus`.
    pub status: Option<String>,
    /// `mediaStreamingStatusDetails`.
    pub details: Option<String>,
    /// `contentType` as sent.
    pub content_type: Option<String>,
    /// When it was reported (RFC 3339).
    pub updated_at: Option<String>,
}

/// `mediaConnection`: the media WebSocket as ingress saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaConnectionInfo {
    /// A media WebSocket for this call is open now.
    pub connected: bool,
    /// Media WebSockets opened for this call so far.
    pub connections: u32,
    /// Last open (RFC 3339).
    pub last_connected_at: Option<String>,
    /// Last close (RFC 3339).
    pub last_disconnected_at: Option<String>,
    /// Cluster mode: the replica holding the media socket (the last one that opened it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// `recording`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// The ACS recording id.
    pub id: Option<String>,
    /// `active`, `inactive`, or `failed` (StartRecordingFailed).
    pub state: Option<String>,
    /// `recordingKind`.
    pub kind: Option<String>,
    /// `startDateTime`.
    pub started_at: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
}

/// Most DTMF keys kept in [`DtmfInfo::tones`] (the oldest go first).
pub(crate) const MAX_DTMF_KEYS: usize = 64;

/// `dtmf`: continuous DTMF recognition and the keys it reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DtmfInfo {
    /// `active` (started by the operator API) or `stopped` (ContinuousDtmfRecognitionStopped).
    pub recognition: Option<String>,
    /// Keys from ContinuousDtmfRecognitionToneReceived in `sequenceId` order (`0`–`9`, `A`–`D`,
    /// `#`, `*`; the last [`MAX_DTMF_KEYS`]).
    pub tones: String,
    /// The highest `sequenceId` seen.
    pub last_sequence_id: Option<i64>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
    /// `sequenceId` → key of the kept tones, to order late arrivals.
    #[serde(skip)]
    pub(super) keys: std::collections::BTreeMap<i64, char>,
}

impl DtmfInfo {
    /// Records one received tone (`sequenceId` orders them; a repeated id is ignored).
    fn tone(&mut self, sequence_id: Option<i64>, key: char) {
        let seq = sequence_id.unwrap_or_else(|| self.last_sequence_id.unwrap_or(0) + 1);
        self.keys.entry(seq).or_insert(key);
        while self.keys.len() > MAX_DTMF_KEYS {
            self.keys.pop_first();
        }
        self.tones = self.keys.values().collect();
        self.last_sequence_id = self.last_sequence_id.max(Some(seq));
    }
}

/// One participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    /// rawId.
    pub raw_id: String,
    /// Muted, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_muted: Option<bool>,
    /// On hold, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_on_hold: Option<bool>,
}

/// `lastError`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// What failed: a callback event name or an ACS operation.
    pub source: String,
    /// HTTP-like status or `resultInformation.code`.
    pub code: Option<i64>,
    /// ACS sub-code / error code.
    pub sub_code: Option<String>,
    /// Message.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// The gateway's call id (UUID assigned when the IncomingCall arrived).
    pub id: String,
    /// ACS call connection id (from the answer response or the first callback).
    pub call_connection_id: Option<String>,
    /// ACS server call id.
    pub server_call_id: Option<String>,
    /// ACS correlation id.
    pub correlation_id: Option<String>,
    /// Caller rawId.
    pub from: String,
    /// Callee rawId.
    pub to: String,
    /// Caller display name.
    pub caller_display_name: Option<String>,
    /// State.
    pub state: CallState,
    /// `answer:<profile>`, `reject:<reason>`, `redirect:<rawId>`.
    pub decision: String,
    /// The policy rule that decided (`None` = default).
    pub rule: Option<String>,
    /// The call was answered with `enableBidirectional`: its media connection accepts outbound
    /// audio (playback).
    pub bidirectional: bool,
    /// Media streaming status from callbacks.
    pub media_streaming: MediaStreamingInfo,
    /// The media WebSocket.
    pub media_connection: MediaConnectionInfo,
    /// Recording.
    pub recording: RecordingInfo,
    /// Continuous DTMF recognition.
    pub dtmf: DtmfInfo,
    /// Participants (ParticipantsUpdated, add/remove events).
    pub participants: Vec<ParticipantInfo>,
    /// IncomingCall received (RFC 3339).
    pub received_at: String,
    /// ACS answered (RFC 3339).
    pub answered_at: Option<String>,
    /// CallConnected (RFC 3339).
    pub connected_at: Option<String>,
    /// Ended: disconnected, failed, rejected or redirected (RFC 3339).
    pub ended_at: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Last error.
    pub last_error: Option<LastError>,
    /// Callback events applied.
    pub callbacks: u64,
    /// The last callback event name.
    pub last_event: Option<String>,
    /// Call token expiry (RFC 3339).
    pub token_expires_at: String,
    #[serde(skip)]
    pub(crate) token: String,
    #[serde(skip)]
    pub(super) token_expires_ms: i64,
    #[serde(skip)]
    pub(super) received_ms: i64,
    #[serde(skip)]
    pub(super) ended_ms: Option<i64>,
    #[serde(skip)]
    pub(super) seen_events: VecDeque<String>,
    #[serde(skip)]
    pub(super) participants_seq: Option<i64>,
}

/// What a new record starts with.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Gateway call id.
    pub id: String,
    /// Caller rawId.
    pub from: String,
    /// Callee rawId.
    pub to: String,
    /// Caller display name.
    pub caller_display_name: Option<String>,
    /// Server call id from the IncomingCall.
    pub server_call_id: Option<String>,
    /// Correlation id from the IncomingCall.
    pub correlation_id: Option<String>,
    /// Policy decision summary.
    pub decision: String,
    /// Policy rule.
    pub rule: Option<String>,
    /// The call token.
    pub token: String,
    /// Its expiry, Unix seconds.
    pub token_expires_unix: i64,
}

/// Why a call could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Full of calls that have not ended.
    #[error("call registry full ({0} calls, none ended)")]
    Full(usize),
    /// The id is taken.
    #[error("call {0} already registered")]
    Duplicate(String),
}

/// What applying a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The record changed.
    Changed,
    /// The event id was seen before for this call.
    Duplicate,
    /// No such call (evicted).
    UnknownCall,
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, CallRecord>,
    by_connection: HashMap<String, String>,
}

/// The registry.
#[derive(Debug)]
pub struct CallRegistry {
    inner: Mutex<Inner>,
    max_calls: usize,
    ended_ttl_ms: i64,
    active: IntGauge,
}

impl CallRegistry {
    /// A registry of at most `max_calls` records, dropping ended ones after `ended_ttl_secs`;
    /// `active` is the calls-active gauge.
    pub fn new(max_calls: usize, ended_ttl_secs: u64, active: IntGauge) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_calls: max_calls.max(1),
            ended_ttl_ms: i64::try_from(ended_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            active,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a call in state `answering`.
    pub fn insert(&self, c: NewCall, now: i64) -> Result<(), RegistryError> {
        let mut g = self.lock();
        self.sweep_locked(&mut g, now);
        if g.calls.contains_key(&c.id) {
            return Err(RegistryError::Duplicate(c.id));
        }
        if g.calls.len() >= self.max_calls {
            let oldest = g
                .calls
                .values()
                .filter_map(|r| r.ended_ms.map(|e| (e, r.id.clone())))
                .min();
            match oldest {
                Some((_, id)) => self.remove_locked(&mut g, &id),
                None => return Err(RegistryError::Full(g.calls.len())),
            }
        }
        let rec = CallRecord {
            id: c.id.clone(),
            call_connection_id: None,
            server_call_id: c.server_call_id,
            correlation_id: c.correlation_id,
            from: c.from,
            to: c.to,
            caller_display_name: c.caller_display_name,
            state: CallState::Answering,
            decision: c.decision,
            bidirectional: false,
            rule: c.rule,
            media_streaming: MediaStreamingInfo::default(),
            media_connection: MediaConnectionInfo::default(),
            recording: RecordingInfo::default(),
            dtmf: DtmfInfo::default(),
            participants: Vec::new(),
            received_at: rfc3339(now),
            answered_at: None,
            connected_at: None,
            ended_at: None,
            updated_at: rfc3339(now),
            last_error: None,
            callbacks: 0,
            last_event: None,
            token_expires_at: rfc3339(c.token_expires_unix.saturating_mul(1000)),
            token: c.token,
            token_expires_ms: c.token_expires_unix.saturating_mul(1000),
            received_ms: now,
            ended_ms: None,
            seen_events: VecDeque::new(),
            participants_seq: None,
        };
        g.calls.insert(c.id, rec);
        self.active.inc();
        Ok(())
    }

    fn remove_locked(&self, g: &mut Inner, id: &str) {
        if let Some(r) = g.calls.remove(id) {
            if let Some(c) = &r.call_connection_id {
                if g.by_connection.get(c).map(String::as_str) == Some(id) {
                    g.by_connection.remove(c);
                }
            }
            if !r.state.is_terminal() {
                self.active.dec();
            }
        }
    }

    fn sweep_locked(&self, g: &mut Inner, now: i64) {
        let ttl = self.ended_ttl_ms;
        let expired: Vec<String> = g
            .calls
            .values()
            .filter(|r| match r.ended_ms {
                Some(e) => e.saturating_add(ttl) <= now,
                None => r.token_expires_ms.saturating_add(ttl) <= now,
            })
            .map(|r| r.id.clone())
            .collect();
        for id in expired {
            self.remove_locked(g, &id);
        }
    }

    /// Cluster mode: takes `rec` (read from the shared bucket) as the record of its call,
    /// replacing the local copy; keeps the connection-id index and the active gauge right.
    pub fn replace(&self, rec: CallRecord) {
        let mut g = self.lock();
        let id = rec.id.clone();
        let was_live = g.calls.get(&id).map(|r| !r.state.is_terminal());
        if was_live.is_none() && g.calls.len() >= self.max_calls {
            return; // full: served from the bucket, not cached
        }
        match (was_live, !rec.state.is_terminal()) {
            (Some(true), false) => self.active.dec(),
            (Some(false) | None, true) => self.active.inc(),
            _ => {}
        }
        if let Some(c) = g.calls.get(&id).and_then(|r| r.call_connection_id.clone()) {
            g.by_connection.remove(&c);
        }
        if let Some(c) = &rec.call_connection_id {
            g.by_connection.insert(c.clone(), id.clone());
        }
        g.calls.insert(id, rec);
    }

    /// Drops what has outlived its TTL.
    pub fn sweep(&self, now: i64) {
        let mut g = self.lock();
        self.sweep_locked(&mut g, now);
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.lock().calls.len()
    }

    /// No records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gateway call id for a gateway id or a `callConnectionId`.
    pub fn resolve(&self, key: &str) -> Option<String> {
        let g = self.lock();
        if g.calls.contains_key(key) {
            return Some(key.to_owned());
        }
        g.by_connection.get(key).cloned()
    }

    /// A copy of a record, by gateway id or `callConnectionId`.
    pub fn get(&self, key: &str) -> Option<CallRecord> {
        let g = self.lock();
        let id = if g.calls.contains_key(key) {
            key
        } else {
            g.by_connection.get(key)?.as_str()
        };
        g.calls.get(id).cloned()
    }

    /// Every record, newest first.
    pub fn list(&self, now: i64) -> Vec<CallRecord> {
        let mut g = self.lock();
        self.sweep_locked(&mut g, now);
        let mut v: Vec<CallRecord> = g.calls.values().cloned().collect();
        v.sort_by(|a, b| b.received_ms.cmp(&a.received_ms).then(a.id.cmp(&b.id)));
        v
    }

    /// Changes a record (by gateway id) with `f`; keeps the connection-id index and the active
    /// gauge right. `None` if there is no such call.
    pub fn update<R>(&self, id: &str, now: i64, f: impl FnOnce(&mut CallRecord) -> R) -> Option<R> {
        let mut g = self.lock();
        let rec = g.calls.get_mut(id)?;
        let was_terminal = rec.state.is_terminal();
        let old_conn = rec.call_connection_id.clone();
        let out = f(rec);
        rec.updated_at = rfc3339(now);
        let now_terminal = rec.state.is_terminal();
        if now_terminal && rec.ended_ms.is_none() {
            rec.ended_ms = Some(now);
            rec.ended_at = Some(rfc3339(now));
        }
        let new_conn = rec.call_connection_id.clone();
        if !was_terminal && now_terminal {
            self.active.dec();
        }
        if new_conn != old_conn {
            if let Some(c) = old_conn {
                g.by_connection.remove(&c);
            }
            if let Some(c) = new_conn {
                g.by_connection.insert(c, id.to_owned());
            }
        }
        Some(out)
    }

    /// Sets the state unless the call already ended.
    pub fn set_state(&self, id: &str, state: CallState, now: i64) {
        self.update(id, now, |r| {
            if !r.state.is_terminal() {
                r.state = state;
            }
        });
    }

    /// Records an error (and optionally ends the call as `failed`).
    pub fn set_error(&self, id: &str, err: LastError, fail: bool, now: i64) {
        self.update(id, now, |r| {
            r.last_error = Some(err);
            if fail && !r.state.is_terminal() {
                r.state = CallState::Failed;
            }
        });
    }

    /// Ingress opened the call's media WebSocket (on `replica`, in cluster mode).
    pub fn media_connected(&self, id: &str, now: i64, replica: Option<&str>) {
        self.update(id, now, |r| {
            let m = &mut r.media_connection;
            m.connected = true;
            m.replica = replica.map(str::to_owned);
            m.connections = m.connections.saturating_add(1);
            m.last_connected_at = Some(rfc3339(now));
        });
    }

    /// Ingress closed the call's media WebSocket.
    pub fn media_disconnected(&self, id: &str, now: i64) {
        self.update(id, now, |r| {
            r.media_connection.connected = false;
            r.media_connection.last_disconnected_at = Some(rfc3339(now));
        });
    }

    /// Applies one callback event to call `id`.
    pub fn apply_callback(&self, id: &str, ev: &CallbackEvent, now: i64) -> Applied {
        let applied = self.update(id, now, |r| {
            if !ev.id.is_empty() {
                if r.seen_events.iter().any(|e| *e == ev.id) {
                    return Applied::Duplicate;
                }
                if r.seen_events.len() >= SEEN_EVENTS {
                    r.seen_events.pop_front();
                }
                r.seen_events.push_back(ev.id.clone());
            }
            apply(r, ev, now);
            Applied::Changed
        });
        applied.unwrap_or(Applied::UnknownCall)
    }
}

fn fill(slot: &mut Option<String>, v: &Option<String>) {
    if slot.is_none() {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *slot = Some(v.clone());
        }
    }
}

fn error_from(ev: &CallbackEvent, now: i64) -> LastError {
    let ri = ev.result_information.clone().unwrap_or_default();
    LastError {
        source: ev.kind.name().to_owned(),
        code: ri.code.map(i64::from),
        sub_code: ri.sub_code.map(|s| s.to_string()),
        message: ri.message.unwrap_or_default(),
        at: rfc3339(now),
    }
}

fn participant(m: &crate::protocol::identifier::CommunicationIdentifierModel) -> ParticipantInfo {
    ParticipantInfo {
        raw_id: m.raw_id(),
        is_muted: None,
        is_on_hold: None,
    }
}

fn apply(r: &mut CallRecord, ev: &CallbackEvent, now: i64) {
    use CallbackKind as K;
    r.callbacks += 1;
    r.last_event = Some(ev.kind.name().to_owned());
    fill(&mut r.call_connection_id, &ev.call_connection_id);
    fill(&mut r.server_call_id, &ev.server_call_id);
    fill(&mut r.correlation_id, &ev.correlation_id);
    let live = !r.state.is_terminal();
    match &ev.kind {
        K::CallConnected => {
            if r.state == CallState::Answering {
                r.state = CallState::Connected;
            }
            r.connected_at.get_or_insert_with(|| rfc3339(now));
        }
        K::CallDisconnected => {
            if live {
                r.state = CallState::Disconnected;
            }
            r.media_streaming.updated_at = Some(rfc3339(now));
        }
        K::AnswerFailed | K::ConnectFailed | K::CreateCallFailed => {
            r.last_error = Some(error_from(ev, now));
            if live {
                r.state = CallState::Failed;
            }
        }
        K::MediaStreamingStarted | K::MediaStreamingStopped | K::MediaStreamingFailed => {
            if let Some(u) = &ev.media_streaming_update {
                let m = &mut r.media_streaming;
                m.status = u
                    .media_streaming_status
                    .as_ref()
                    .map(|s| s.as_str().to_owned());
                m.details = u
                    .media_streaming_status_details
                    .as_ref()
                    .map(|s| s.as_str().to_owned());
                m.content_type.clone_from(&u.content_type);
            } else {
                r.media_streaming.status = Some(
                    match ev.kind {
                        K::MediaStreamingStarted => "mediaStreamingStarted",
                        K::MediaStreamingStopped => "mediaStreamingStopped",
                        _ => "mediaStreamingFailed",
                    }
                    .to_owned(),
                );
            }
            r.media_streaming.updated_at = Some(rfc3339(now));
            match ev.kind {
                K::MediaStreamingStarted if live => r.state = CallState::Streaming,
                K::MediaStreamingStopped if r.state == CallState::Streaming => {
                    r.state = CallState::Connected
                }
                K::MediaStreamingFailed => {
                    r.last_error = Some(error_from(ev, now));
                    if r.state == CallState::Streaming {
                        r.state = CallState::Connected;
                    }
                }
                _ => {}
            }
        }
        K::RecordingStateChanged => {
            let rec = &mut r.recording;
            if ev.recording_id.is_some() {
                rec.id.clone_from(&ev.recording_id);
            }
            if let Some(s) = &ev.recording_state {
                rec.state = Some(s.as_str().to_owned());
            }
            if let Some(k) = &ev.recording_kind {
                rec.kind = Some(k.as_str().to_owned());
            }
            if ev.start_date_time.is_some() {
                rec.started_at.clone_from(&ev.start_date_time);
            }
            rec.updated_at = Some(rfc3339(now));
        }
        K::StartRecordingFailed => {
            if ev.recording_id.is_some() {
                r.recording.id.clone_from(&ev.recording_id);
            }
            r.recording.state = Some("failed".into());
            r.recording.updated_at = Some(rfc3339(now));
            r.last_error = Some(error_from(ev, now));
        }
        K::ParticipantsUpdated => {
            let newer = match (ev.sequence_number, r.participants_seq) {
                (Some(n), Some(old)) => n > old,
                _ => true,
            };
            if newer {
                if let Some(ps) = &ev.participants {
                    r.participants = ps
                        .iter()
                        .map(|p| ParticipantInfo {
                            raw_id: p.identifier.raw_id(),
                            is_muted: p.is_muted,
                            is_on_hold: p.is_on_hold,
                        })
                        .collect();
                }
                if ev.sequence_number.is_some() {
                    r.participants_seq = ev.sequence_number;
                }
            }
        }
        K::AddParticipantSucceeded => {
            if let Some(p) = &ev.participant {
                let p = participant(p);
                if !r.participants.iter().any(|q| q.raw_id == p.raw_id) {
                    r.participants.push(p);
                }
            }
        }
        K::RemoveParticipantSucceeded => {
            if let Some(p) = &ev.participant {
                let raw = p.raw_id();
                r.participants.retain(|q| q.raw_id != raw);
            }
        }
        K::ContinuousDtmfRecognitionToneReceived => {
            let key = ev
                .extra
                .get("tone")
                .and_then(|t| t.as_str())
                .and_then(|t| crate::protocol::rest::DtmfTone::parse(t).key());
            if let Some(key) = key {
                let seq = ev.extra.get("sequenceId").and_then(|v| v.as_i64());
                r.dtmf.tone(seq, key);
                r.dtmf.updated_at = Some(rfc3339(now));
            }
        }
        K::ContinuousDtmfRecognitionStopped => {
            r.dtmf.recognition = Some("stopped".into());
            r.dtmf.updated_at = Some(rfc3339(now));
        }
        K::AddParticipantFailed
        | K::RemoveParticipantFailed
        | K::CallTransferFailed
        | K::CancelAddParticipantFailed
        | K::PlayFailed
        | K::RecognizeFailed
        | K::SendDtmfTonesFailed
        | K::HoldFailed
        | K::TranscriptionFailed
        | K::ContinuousDtmfRecognitionToneFailed => {
            r.last_error = Some(error_from(ev, now));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::events::parse_callbacks;

    fn gauge() -> IntGauge {
        IntGauge::new("t", "t").unwrap()
    }

    fn new_call(id: &str) -> NewCall {
        NewCall {
            id: id.into(),
            from: "4:+12065551212".into(),
            to: "28:orgid:x".into(),
            caller_display_name: None,
            server_call_id: None,
            correlation_id: None,
            decision: "answer:default".into(),
            rule: None,
            token: format!("tok-{id}"),
            token_expires_unix: 10_000,
        }
    }

    fn vector_events(name: &str) -> Vec<CallbackEvent> {
        parse_callbacks(crate::control::testkit::vector(name).as_bytes()).unwrap()
    }

    #[test]
    fn dtmf_tones_are_kept_in_sequence_order() {
        let reg = CallRegistry::new(10, 60, gauge());
        reg.insert(new_call("c1"), 1_000).unwrap();
        let tone = |id: &str, tone: &str, seq: i64| {
            let mut e = CallbackEvent::new(
                CallbackKind::ContinuousDtmfRecognitionToneReceived,
                id,
                "conn",
            );
            e.extra.insert("tone".into(), serde_json::json!(tone));
            e.extra.insert("sequenceId".into(), serde_json::json!(seq));
            e
        };
        // Out of order, a redelivery, an unknown tone.
        for e in [
            tone("t1", "one", 1),
            tone("t3", "pound", 3),
            tone("t2", "Two", 2),
            tone("t3", "pound", 3),
            tone("t4", "hash", 4),
        ] {
            reg.apply_callback("c1", &e, 2_000);
        }
        let r = reg.get("c1").unwrap();
        assert_eq!(r.dtmf.tones, "12#");
        assert_eq!(r.dtmf.last_sequence_id, Some(3));
        for i in 0..100 {
            reg.apply_callback("c1", &tone(&format!("n{i}"), "nine", 10 + i), 3_000);
        }
        let r = reg.get("c1").unwrap();
        assert_eq!(r.dtmf.tones, "9".repeat(MAX_DTMF_KEYS));
        let stopped =
            CallbackEvent::new(CallbackKind::ContinuousDtmfRecognitionStopped, "s", "conn");
        reg.apply_callback("c1", &stopped, 4_000);
        let v = serde_json::to_value(reg.get("c1").unwrap()).unwrap();
        assert_eq!(v["dtmf"]["recognition"], "stopped");
        assert_eq!(v["dtmf"]["lastSequenceId"], 109);
    }

    #[test]
    fn every_callback_vector_updates_the_record_in_order() {
        let g = gauge();
        let reg = CallRegistry::new(10, 60, g.clone());
        reg.insert(new_call("c1"), 1_000).unwrap();
        assert_eq!(g.get(), 1);
        let mut t = 2_000;
        let mut apply = |name: &str| {
            t += 1;
            for e in vector_events(name) {
                assert_eq!(reg.apply_callback("c1", &e, t), Applied::Changed, "{name}");
            }
            reg.get("c1").unwrap()
        };
        let r = apply("callback_call_connected_2022.json");
        assert_eq!(r.state, CallState::Connected);
        assert_eq!(
            r.call_connection_id.as_deref(),
            Some("401f3500-62bd-46a9-8c09-9e1b06caca01")
        );
        assert!(r.connected_at.is_some());
        // now findable by callConnectionId too
        assert_eq!(
            reg.resolve("401f3500-62bd-46a9-8c09-9e1b06caca01")
                .as_deref(),
            Some("c1")
        );
        let r = apply("callback_participants_updated_2022.json");
        assert_eq!(r.participants.len(), 2);
        assert_eq!(r.participants[0].is_muted, Some(false));
        let r = apply("callback_media_streaming_started.json");
        assert_eq!(r.state, CallState::Streaming);
        assert_eq!(
            r.media_streaming.status.as_deref(),
            Some("mediaStreamingStarted")
        );
        assert_eq!(
            r.media_streaming.details.as_deref(),
            Some("subscriptionStarted")
        );
        let r = apply("callback_recording_state_changed.json");
        assert_eq!(r.recording.id.as_deref(), Some("recordingId"));
        assert_eq!(r.recording.state.as_deref(), Some("active"));
        let r = apply("callback_media_streaming_failed.json");
        assert_eq!(r.state, CallState::Connected, "failure ends streaming");
        let err = r.last_error.clone().unwrap();
        assert_eq!(err.source, "MediaStreamingFailed");
        assert!(err.code.is_some());
        assert_eq!(
            r.media_streaming.details.as_deref(),
            Some("streamConnectionUnsuccessful")
        );
        let r = apply("callback_media_streaming_stopped.json");
        assert_eq!(
            r.media_streaming.status.as_deref(),
            Some("mediaStreamingStopped")
        );
        let r = apply("callback_play_failed.json");
        assert_eq!(r.last_error.as_ref().unwrap().source, "PlayFailed");
        let before = r.participants.len();
        let r = apply("callback_remove_participant_succeeded.json");
        assert!(r.participants.len() <= before);
        assert_eq!(r.callbacks, 8);
        assert_eq!(g.get(), 1, "still live");
        // CallDisconnected ends it; later events do not revive it.
        let mut e = CallbackEvent::new(CallbackKind::CallDisconnected, "d1", "conn");
        e.call_connection_id = None;
        assert_eq!(reg.apply_callback("c1", &e, 9_000), Applied::Changed);
        assert_eq!(reg.apply_callback("c1", &e, 9_001), Applied::Duplicate);
        let r = reg.get("c1").unwrap();
        assert_eq!(r.state, CallState::Disconnected);
        assert!(r.ended_at.is_some());
        assert_eq!(g.get(), 0);
        let late = CallbackEvent::new(CallbackKind::MediaStreamingStarted, "late", "conn");
        reg.apply_callback("c1", &late, 9_002);
        assert_eq!(reg.get("c1").unwrap().state, CallState::Disconnected);
        assert_eq!(
            reg.apply_callback("nope", &late, 9_003),
            Applied::UnknownCall
        );
    }

    #[test]
    fn bounded_and_ended_calls_evicted_after_ttl() {
        let g = gauge();
        let reg = CallRegistry::new(2, 60, g.clone());
        reg.insert(new_call("a"), 0).unwrap();
        reg.insert(new_call("b"), 1).unwrap();
        assert_eq!(
            reg.insert(new_call("c"), 2),
            Err(RegistryError::Full(2)),
            "no ended call to evict"
        );
        assert_eq!(
            reg.insert(new_call("a"), 2),
            Err(RegistryError::Duplicate("a".into()))
        );
        reg.set_state("a", CallState::Rejected, 10);
        assert_eq!(g.get(), 1);
        // full: the ended call makes room
        reg.insert(new_call("c"), 20).unwrap();
        assert!(reg.get("a").is_none());
        assert_eq!(reg.len(), 2);
        assert_eq!(g.get(), 2);
        // b ends at 100; gone 60 s later
        reg.set_state("b", CallState::Disconnected, 100);
        assert_eq!(reg.list(60_099).len(), 2);
        assert_eq!(reg.list(60_100).len(), 1);
        // c never ends: dropped 60 s after its token expired (10_000 s)
        assert_eq!(reg.list(10_000_000 + 59_999).len(), 1);
        assert_eq!(reg.list(10_000_000 + 60_000).len(), 0);
        assert_eq!(g.get(), 0);
        assert!(reg.is_empty());
    }

    #[test]
    fn media_connection_and_errors() {
        let reg = CallRegistry::new(4, 60, gauge());
        reg.insert(new_call("m"), 0).unwrap();
        reg.media_connected("m", 5, None);
        let r = reg.get("m").unwrap();
        assert!(r.media_connection.connected);
        assert_eq!(r.media_connection.connections, 1);
        reg.media_disconnected("m", 6);
        reg.media_connected("m", 7, None);
        let r = reg.get("m").unwrap();
        assert_eq!(r.media_connection.connections, 2);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mediaConnection"]["connected"], true);
        assert_eq!(v["state"], "answering");
        assert!(v.get("token").is_none(), "the token is never shown");
        reg.set_error(
            "m",
            LastError {
                source: "answer_call".into(),
                message: "boom".into(),
                ..Default::default()
            },
            true,
            8,
        );
        assert_eq!(reg.get("m").unwrap().state, CallState::Failed);
        assert!(!CallState::Failed.accepts_media());
    }
}
