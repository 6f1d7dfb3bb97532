//! One task per answered call. It owns the call's timeline: every callback is posted from here,
//! one at a time, in the order the commands arrive, so the gateway sees them in ACS's order; the
//! media stream runs as a child task that reports back with [`Cmd::MediaUp`] and
//! [`Cmd::MediaDown`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::media::{self, MediaParams};
use super::state::Shared;
use super::{CallEnd, PostedCallback};
use crate::ids::SimRng;

mod ops;
use crate::jwt::CALLBACK_TOKEN_LIFETIME;
use crate::play::{CloseInfo, StreamEnd};
use crate::ConnectFailure;
use acs_protocol::events::{
    callbacks_body, CallbackEvent, CallbackKind, MediaStreamingStatus, MediaStreamingStatusDetails,
    MediaStreamingUpdate, ResultInformation,
};
use acs_protocol::rest::{
    CallConnectionState, CallParticipant, DtmfTone, MediaStreamingAudioChannelType, RecordingKind,
    RecordingState, SubscriptionState, CALL_AUTOMATION_API_VERSION,
};
use acs_protocol::CommunicationIdentifierModel;

/// How long a hang-up waits for the media task to close its socket.
const MEDIA_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How a media task ended.
#[derive(Debug)]
pub(crate) enum MediaOutcome {
    /// The audio could not be prepared (unreadable WAV, …).
    AudioError(String),
    /// The WebSocket could not be opened.
    ConnectFailed {
        failure: ConnectFailure,
        detail: String,
    },
    /// The stream ran and ended this way.
    Ended(StreamEnd),
}

/// What a call task is asked to do.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// The call was answered.
    Connected,
    /// `:startMediaStreaming`.
    StartMedia {
        operation_context: Option<String>,
        callback_uri: Option<String>,
    },
    /// `:stopMediaStreaming`.
    StopMedia {
        operation_context: Option<String>,
        callback_uri: Option<String>,
    },
    /// The media WebSocket of `generation` is open.
    MediaUp { generation: u64 },
    /// The media task of `generation` ended.
    MediaDown {
        generation: u64,
        outcome: MediaOutcome,
    },
    /// An invitation finished ringing.
    InviteAnswered { invitation_id: String },
    /// `participants:cancelAddParticipant`.
    CancelInvite {
        invitation_id: String,
        operation_context: Option<String>,
        callback_uri: Option<String>,
    },
    /// `participants:remove` (already removed from the state).
    Removed {
        participant: Box<CommunicationIdentifierModel>,
        operation_context: Option<String>,
        callback_uri: Option<String>,
    },
    /// `:transferToParticipant`.
    Transfer {
        target: Box<CommunicationIdentifierModel>,
        transferee: Option<Box<CommunicationIdentifierModel>>,
        operation_context: Option<String>,
        callback_uri: Option<String>,
        fail: bool,
    },
    /// A recording changed state (or failed to start).
    Recording {
        recording_id: String,
        state: RecordingState,
        failed: bool,
        callback_uri: String,
    },
    /// `:hold` (`on_hold`) or `:unhold` of a participant of the call.
    Hold {
        raw_id: String,
        on_hold: bool,
        with_audio: bool,
        operation_context: Option<String>,
        callback_uri: Option<String>,
        fail: bool,
    },
    /// `:sendDtmfTones` to a participant of the call.
    DtmfSent {
        tones: usize,
        operation_context: Option<String>,
        callback_uri: Option<String>,
        fail: bool,
    },
    /// `:startContinuousDtmfRecognition` (`start`) / `:stopContinuousDtmfRecognition`.
    DtmfRecognition {
        raw_id: String,
        start: bool,
        operation_context: Option<String>,
        callback_uri: Option<String>,
    },
    /// The participants' state changed (mute): post `ParticipantsUpdated`.
    ParticipantsChanged,
    /// A participant pressed keys ([`super::FakeAcsHandle::press_dtmf`]).
    KeysPressed {
        raw_id: String,
        tones: Vec<DtmfTone>,
    },
    /// The call ends.
    HangUp {
        end: CallEnd,
        operation_context: Option<String>,
    },
}

/// Starts the task of call `id`; returns its command sender.
pub(crate) fn spawn(shared: Arc<Shared>, id: String) -> mpsc::UnboundedSender<Cmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Actor {
        shared,
        id,
        tx: tx.clone(),
        rx,
        media: None,
        generation: 0,
        sequence: 0,
        dtmf: HashMap::new(),
        dtmf_sequence: 0,
        hold_audio: HashSet::new(),
    };
    tokio::spawn(actor.run());
    tx
}

struct MediaRun {
    generation: u64,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
    up: bool,
    start_context: Option<String>,
    callback_uri: Option<String>,
    stop_request: Option<(Option<String>, Option<String>)>,
}

struct Actor {
    shared: Arc<Shared>,
    id: String,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    media: Option<MediaRun>,
    generation: u64,
    sequence: i64,
    /// Continuous DTMF recognition: rawId → (operation context, callback URI) of the start.
    dtmf: HashMap<String, (Option<String>, Option<String>)>,
    /// `sequenceId` of the last `ContinuousDtmfRecognitionToneReceived`.
    dtmf_sequence: i64,
    /// Participants on hold with hold audio playing.
    hold_audio: HashSet<String>,
}

fn ok_result() -> ResultInformation {
    ResultInformation {
        code: Some(200),
        sub_code: Some(0),
        message: Some("Action completed successfully.".to_owned()),
    }
}

fn failed_result(code: i32, sub_code: i32, message: &str) -> ResultInformation {
    ResultInformation {
        code: Some(code),
        sub_code: Some(sub_code),
        message: Some(message.to_owned()),
    }
}

fn media_update(
    status: MediaStreamingStatus,
    details: MediaStreamingStatusDetails,
) -> MediaStreamingUpdate {
    MediaStreamingUpdate {
        content_type: Some("Audio".to_owned()),
        media_streaming_status: Some(status),
        media_streaming_status_details: Some(details),
    }
}

impl Actor {
    async fn run(mut self) {
        while let Some(cmd) = self.rx.recv().await {
            match cmd {
                Cmd::Connected => self.connected().await,
                Cmd::StartMedia {
                    operation_context,
                    callback_uri,
                } => self.start_media(operation_context, callback_uri),
                Cmd::StopMedia {
                    operation_context,
                    callback_uri,
                } => {
                    if let Some(m) = &mut self.media {
                        m.stop_request = Some((operation_context, callback_uri));
                        m.stop.store(true, Ordering::Release);
                    }
                }
                Cmd::MediaUp { generation } => self.media_up(generation).await,
                Cmd::MediaDown {
                    generation,
                    outcome,
                } => self.media_down(generation, outcome).await,
                Cmd::InviteAnswered { invitation_id } => self.invite_answered(&invitation_id).await,
                Cmd::CancelInvite {
                    invitation_id,
                    operation_context,
                    callback_uri,
                } => {
                    self.cancel_invite(invitation_id, operation_context, callback_uri)
                        .await
                }
                Cmd::Removed {
                    participant,
                    operation_context,
                    callback_uri,
                } => {
                    let mut e = self.event(CallbackKind::RemoveParticipantSucceeded);
                    e.participant = Some(*participant);
                    e.operation_context = operation_context;
                    self.post(e, callback_uri.as_deref()).await;
                    self.participants_updated().await;
                }
                Cmd::Transfer {
                    target,
                    transferee,
                    operation_context,
                    callback_uri,
                    fail,
                } => {
                    let kind = if fail {
                        CallbackKind::CallTransferFailed
                    } else {
                        CallbackKind::CallTransferAccepted
                    };
                    let mut e = self.event(kind);
                    e.transfer_target = Some(*target);
                    e.transferee = transferee.map(|t| *t);
                    e.operation_context = operation_context.clone();
                    if fail {
                        e.result_information = Some(failed_result(
                            500,
                            8583,
                            "Transfer failed: the target did not answer.",
                        ));
                    }
                    self.post(e, callback_uri.as_deref()).await;
                    if !fail {
                        self.finish(CallEnd::Transferred, operation_context).await;
                        return;
                    }
                }
                Cmd::Recording {
                    recording_id,
                    state,
                    failed,
                    callback_uri,
                } => {
                    self.recording(recording_id, state, failed, callback_uri)
                        .await
                }
                Cmd::Hold {
                    raw_id,
                    on_hold,
                    with_audio,
                    operation_context,
                    callback_uri,
                    fail,
                } => {
                    let ctx = (operation_context, callback_uri);
                    self.hold(raw_id, on_hold, with_audio, ctx, fail).await
                }
                Cmd::DtmfSent {
                    tones,
                    operation_context,
                    callback_uri,
                    fail,
                } => {
                    let kind = if fail {
                        CallbackKind::SendDtmfTonesFailed
                    } else {
                        CallbackKind::SendDtmfTonesCompleted
                    };
                    // Tones take time to play (about 0.1 s each on a phone line).
                    let played = Duration::from_millis(20 * tones as u64);
                    tokio::time::sleep(played).await;
                    let mut e = self.event(kind);
                    e.operation_context = operation_context;
                    if fail {
                        e.result_information =
                            Some(failed_result(400, 8606, "Sending DTMF tones failed."));
                    }
                    self.post(e, callback_uri.as_deref()).await;
                }
                Cmd::DtmfRecognition {
                    raw_id,
                    start,
                    operation_context,
                    callback_uri,
                } => {
                    if start {
                        self.dtmf.insert(raw_id, (operation_context, callback_uri));
                    } else {
                        self.dtmf.remove(&raw_id);
                        let mut e = self.event(CallbackKind::ContinuousDtmfRecognitionStopped);
                        e.operation_context = operation_context;
                        self.post(e, callback_uri.as_deref()).await;
                    }
                }
                Cmd::ParticipantsChanged => self.participants_updated().await,
                Cmd::KeysPressed { raw_id, tones } => {
                    let Some((context, url)) = self.dtmf.get(&raw_id).cloned() else {
                        continue;
                    };
                    for tone in tones {
                        self.dtmf_sequence += 1;
                        let mut e = self.event(CallbackKind::ContinuousDtmfRecognitionToneReceived);
                        e.operation_context.clone_from(&context);
                        e.extra
                            .insert("tone".into(), serde_json::json!(tone.as_str()));
                        e.extra
                            .insert("sequenceId".into(), serde_json::json!(self.dtmf_sequence));
                        self.post(e, url.as_deref()).await;
                    }
                }
                Cmd::HangUp {
                    end,
                    operation_context,
                } => {
                    self.finish(end, operation_context).await;
                    return;
                }
            }
        }
    }

    /// A callback for this call with the common fields filled in.
    fn event(&self, kind: CallbackKind) -> CallbackEvent {
        let (server_call_id, correlation_id) = {
            let mut s = self.shared.lock();
            s.call_mut(&self.id)
                .map(|c| (c.info.server_call_id.clone(), c.info.correlation_id.clone()))
                .unwrap_or_default()
        };
        let mut e = CallbackEvent::new(kind.clone(), SimRng::from_entropy().uuid_like(), &self.id);
        e.time = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false));
        e.server_call_id = Some(server_call_id);
        e.correlation_id = Some(correlation_id);
        e.result_information = Some(ok_result());
        e.version = Some(CALL_AUTOMATION_API_VERSION.to_owned());
        e.event_source = Some(e.source.clone());
        e.public_event_type = Some(kind.event_type());
        e
    }

    /// Posts one callback (to `url`, else the call's callback URI) and records the outcome.
    async fn post(&self, event: CallbackEvent, url: Option<&str>) {
        let url = match url {
            Some(u) => u.to_owned(),
            None => {
                let mut s = self.shared.lock();
                match s.call_mut(&self.id) {
                    Some(c) => c.info.callback_uri.clone(),
                    None => return,
                }
            }
        };
        let body = callbacks_body(std::slice::from_ref(&event));
        let mut sent = std::time::Instant::now();
        let result = match self.shared.signer().sign(CALLBACK_TOKEN_LIFETIME) {
            Ok(token) => {
                sent = std::time::Instant::now();
                self.shared
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .bearer_auth(token)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let record = PostedCallback {
            event_type: event.raw_type.clone(),
            id: event.id.clone(),
            url,
            operation_context: event.operation_context.clone(),
            status: result.as_ref().ok().copied(),
            error: result.err(),
            at_ms: self.shared.elapsed_ms(),
            latency_us,
        };
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                c.info.callbacks.push(record);
            }
        });
    }

    async fn participants_updated(&mut self) {
        self.sequence += 1;
        let participants: Vec<CallParticipant> = {
            let mut s = self.shared.lock();
            s.call_mut(&self.id)
                .map(|c| c.info.participants.clone())
                .unwrap_or_default()
        };
        let mut e = self.event(CallbackKind::ParticipantsUpdated);
        e.participants = Some(participants);
        e.sequence_number = Some(self.sequence);
        e.result_information = None;
        self.post(e, None).await;
    }

    async fn connected(&mut self) {
        tokio::time::sleep(self.shared.cfg.connect_delay).await;
        let (context, autostart) = self.shared.update(|s| {
            s.call_mut(&self.id)
                .map(|c| {
                    c.info.state = CallConnectionState::Connected;
                    let autostart = c
                        .info
                        .media_streaming_options
                        .as_ref()
                        .is_some_and(|m| m.start_media_streaming == Some(true));
                    if autostart {
                        c.media_running = true;
                    }
                    (c.info.operation_context.clone(), autostart)
                })
                .unwrap_or_default()
        });
        let mut e = self.event(CallbackKind::CallConnected);
        e.operation_context = context.clone();
        self.post(e, None).await;
        self.participants_updated().await;
        if autostart {
            self.start_media(context, None);
        }
    }

    fn start_media(&mut self, operation_context: Option<String>, callback_uri: Option<String>) {
        if self.media.is_some() {
            return;
        }
        let params = {
            let mut s = self.shared.lock();
            let Some(c) = s.call_mut(&self.id) else {
                return;
            };
            let Some(opts) = c.info.media_streaming_options.clone() else {
                return;
            };
            c.media_running = true;
            self.generation += 1;
            MediaParams {
                shared: Arc::clone(&self.shared),
                call_id: self.id.clone(),
                correlation_id: c.info.correlation_id.clone(),
                generation: self.generation,
                transport_url: opts.transport_url.clone().unwrap_or_default(),
                sample_rate: opts
                    .audio_format
                    .as_ref()
                    .and_then(|f| f.sample_rate())
                    .unwrap_or(16_000),
                unmixed: opts.audio_channel_type == MediaStreamingAudioChannelType::Unmixed,
                audio: c.audio.clone(),
                raw_ids: c.talker_ids.clone(),
                subscription_id: c.info.media.subscription_id.clone(),
                stop: Arc::new(AtomicBool::new(false)),
                tx: self.tx.clone(),
                pacing: self.shared.cfg.pacing,
                max_duration: self.shared.cfg.max_stream_duration,
            }
        };
        let stop = Arc::clone(&params.stop);
        let generation = params.generation;
        self.media = Some(MediaRun {
            generation,
            stop,
            task: tokio::spawn(media::run(params)),
            up: false,
            start_context: operation_context,
            callback_uri,
            stop_request: None,
        });
    }

    async fn media_up(&mut self, generation: u64) {
        let Some(m) = self.media.as_mut().filter(|m| m.generation == generation) else {
            return;
        };
        m.up = true;
        let (context, url) = (m.start_context.clone(), m.callback_uri.clone());
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                c.info.media.state = Some(SubscriptionState::Active);
            }
        });
        let mut e = self.event(CallbackKind::MediaStreamingStarted);
        e.operation_context = context;
        e.media_streaming_update = Some(media_update(
            MediaStreamingStatus::MediaStreamingStarted,
            MediaStreamingStatusDetails::SubscriptionStarted,
        ));
        self.post(e, url.as_deref()).await;
    }

    /// Records the end of a media run in the state (not running, inactive, how it ended).
    fn media_ended(&self, text: String, connect_failed: bool) {
        self.shared.update(|s| {
            if let Some(c) = s.call_mut(&self.id) {
                c.media_running = false;
                c.info.media.state = Some(SubscriptionState::Inactive);
                c.info.media.last_end = Some(text);
                if connect_failed {
                    c.info.media.connect_failures += 1;
                }
            }
        });
    }

    async fn media_down(&mut self, generation: u64, outcome: MediaOutcome) {
        let Some(m) = self.media.take_if(|m| m.generation == generation) else {
            return;
        };
        let (text, connect_failed) = describe(&outcome);
        self.media_ended(text, connect_failed);
        let (status, details, result) = match (&outcome, &m.stop_request) {
            (MediaOutcome::Ended(_), Some(_)) => (
                MediaStreamingStatus::MediaStreamingStopped,
                MediaStreamingStatusDetails::SubscriptionStopped,
                ok_result(),
            ),
            (MediaOutcome::Ended(StreamEnd::Completed { .. }), None) => (
                MediaStreamingStatus::MediaStreamingStopped,
                MediaStreamingStatusDetails::SubscriptionStopped,
                ok_result(),
            ),
            (MediaOutcome::Ended(_), None) => (
                MediaStreamingStatus::MediaStreamingFailed,
                MediaStreamingStatusDetails::StreamConnectionInterrupted,
                failed_result(
                    500,
                    8603,
                    "Action failed, the websocket connection was interrupted.",
                ),
            ),
            (
                MediaOutcome::ConnectFailed {
                    failure: ConnectFailure::HttpStatus(401 | 403),
                    ..
                },
                _,
            ) => (
                MediaStreamingStatus::MediaStreamingFailed,
                MediaStreamingStatusDetails::AuthenticationFailure,
                failed_result(
                    401,
                    8603,
                    "Action failed, not able to establish websocket connection.",
                ),
            ),
            (MediaOutcome::ConnectFailed { .. }, _) => (
                MediaStreamingStatus::MediaStreamingFailed,
                MediaStreamingStatusDetails::StreamConnectionUnsuccessful,
                failed_result(
                    500,
                    8603,
                    "Action failed, not able to establish websocket connection.",
                ),
            ),
            (MediaOutcome::AudioError(_), _) => (
                MediaStreamingStatus::MediaStreamingFailed,
                MediaStreamingStatusDetails::UnspecifiedError,
                failed_result(500, 8604, "Action failed, media could not be prepared."),
            ),
        };
        let kind = if status == MediaStreamingStatus::MediaStreamingStopped {
            CallbackKind::MediaStreamingStopped
        } else {
            CallbackKind::MediaStreamingFailed
        };
        let (context, url) = match m.stop_request {
            Some((ctx, url)) => (ctx, url),
            None => (m.start_context, m.callback_uri),
        };
        let mut e = self.event(kind);
        e.operation_context = context;
        e.result_information = Some(result);
        e.media_streaming_update = Some(media_update(status, details));
        self.post(e, url.as_deref()).await;
    }
}

/// A one-line description of how a media run ended, and whether it never connected.
fn describe(o: &MediaOutcome) -> (String, bool) {
    let close = |c: &Option<CloseInfo>| c.as_ref().map_or("no code".to_owned(), |c| c.to_string());
    match o {
        MediaOutcome::AudioError(e) => (format!("audio error: {e}"), true),
        MediaOutcome::ConnectFailed { failure, detail } => (
            format!("connect failed ({}): {detail}", failure.label()),
            true,
        ),
        MediaOutcome::Ended(StreamEnd::Completed { reply }) => {
            (format!("closed with 1000; reply {}", close(reply)), false)
        }
        MediaOutcome::Ended(StreamEnd::ServerClosed(c)) => {
            (format!("gateway closed: {}", close(c)), false)
        }
        MediaOutcome::Ended(StreamEnd::Disconnected) => ("disconnected".to_owned(), false),
        MediaOutcome::Ended(StreamEnd::Failed(e)) => (format!("failed: {e}"), false),
    }
}
