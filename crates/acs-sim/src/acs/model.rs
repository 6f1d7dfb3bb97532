//! The fake ACS's configuration and the records it keeps: incoming-call specs, call audio, faults,
//! recorded requests, posted callbacks, media, recording and call info.

#[allow(unused_imports)]
use super::*;

/// Everything the fake ACS can be configured with. [`Default`]: `127.0.0.1:0`, a random 32-byte
/// access key, a random resource id (the JWT audience), the real ACS issuer, a generated key.
#[derive(Debug, Clone)]
pub struct FakeAcsConfig {
    /// Where to listen (keep it on 127.0.0.1).
    pub listen: SocketAddr,
    /// The decoded access key requests must be signed with.
    pub access_key: Vec<u8>,
    /// The ACS resource id: `aud` of every token, and the resource in generated identities.
    pub resource_id: String,
    /// `iss` of every token.
    pub issuer: String,
    /// The RS256 key. Generating one takes 0.1–0.3 s in a release build but 1–5 s in a debug
    /// build: tests load `fixtures/keys/jwt_test_key_1.pem` (kid `test-key-1`) instead.
    pub signing_key: SigningKeySource,
    /// `kid` of the key (`None`: its RFC 7638 thumbprint).
    pub kid: Option<String>,
    /// Largest accepted difference between `x-ms-date` and now, either way.
    pub max_date_skew: Duration,
    /// Pretend "now" is this Unix time when checking signature dates (official test vectors).
    pub now_override: Option<i64>,
    /// How long an issued `incomingCallContext` can be answered, rejected or redirected.
    pub incoming_call_ttl: Duration,
    /// Refuse (400) repeatable operations that carry no `Repeatability-Request-ID`. Real ACS
    /// accepts them; the log records the header either way.
    pub require_repeatability: bool,
    /// What every answered call streams, unless its [`IncomingCallSpec::audio`] says otherwise.
    pub audio: CallAudio,
    /// Real time (like ACS: the stream runs until it is stopped or the call ends) or as fast as
    /// the socket takes it (the audio once, then a normal close).
    pub pacing: Pacing,
    /// Delay between the answer and `CallConnected` (ACS answers first, connects after).
    pub connect_delay: Duration,
    /// How long an invited participant "rings" before the add succeeds or fails.
    pub ring_time: Duration,
    /// Bound on each callback POST.
    pub callback_timeout: Duration,
    /// A media stream ends by itself after this long (bounds every stream).
    pub max_stream_duration: Duration,
    /// The ACS resource name in Event Grid topics (`…/communicationServices/{name}`).
    pub resource_name: String,
    /// Participants per page of `GET …/participants` (the rest behind `nextLink`); 0 = one page.
    pub participants_page_size: usize,
}

impl Default for FakeAcsConfig {
    fn default() -> Self {
        FakeAcsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_key: random_bytes(32),
            resource_id: SimRng::from_entropy().uuid_like(),
            issuer: ACS_ISSUER.to_owned(),
            signing_key: SigningKeySource::Generate,
            kid: None,
            max_date_skew: DEFAULT_MAX_DATE_SKEW,
            now_override: None,
            incoming_call_ttl: Duration::from_secs(60),
            require_repeatability: false,
            audio: CallAudio::default(),
            pacing: Pacing::Realtime,
            connect_delay: Duration::from_millis(20),
            ring_time: Duration::from_millis(100),
            callback_timeout: Duration::from_secs(5),
            max_stream_duration: Duration::from_secs(3600),
            resource_name: "acs-sim".to_owned(),
            participants_page_size: 0,
        }
    }
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rsa::rand_core::RngCore as _;
    let mut b = vec![0u8; n];
    rsa::rand_core::OsRng.fill_bytes(&mut b);
    b
}

/// What a call's audio is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInput {
    /// The generated 220 Hz tone, 500 ms on / 500 ms off, this long.
    Generated {
        /// Milliseconds.
        duration_ms: u64,
    },
    /// A WAV file, read when the stream starts and converted to the call's rate.
    Wav(PathBuf),
    /// Mono 16-bit PCM at `sample_rate` (resampled to the call's rate if needed).
    Pcm {
        /// Its rate.
        sample_rate: u32,
        /// The samples.
        samples: Arc<Vec<i16>>,
    },
}

/// One talker of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSource {
    /// `participantRawID` in unmixed streams (`None`: the caller's raw id for the first source,
    /// a generated `8:acs:` id for the others).
    pub raw_id: Option<String>,
    /// The audio.
    pub input: AudioInput,
}

/// What a call streams after its audio ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterAudio {
    /// Silent frames (flagged `silent`) until the stream is stopped, like a quiet line.
    #[default]
    Silence,
    /// The audio again, back to back.
    Loop,
}

/// The audio of a call: 1 to 4 talkers, mixed into one stream or sent one stream each
/// according to the answer's `audioChannelType`, at its `audioFormat` rate.
#[derive(Debug, Clone, PartialEq)]
pub struct CallAudio {
    /// The talkers (1 to 4).
    pub sources: Vec<AudioSource>,
    /// What follows the end of the audio.
    pub after: AfterAudio,
    /// Frames quieter than this (RMS dBFS) are sent `"silent": true`.
    pub silent_threshold_dbfs: f64,
    /// The gateway's playback comes back in the (first) caller's stream (None: no echo).
    pub echo: Option<EchoPath>,
    /// Nothing on the wire between `AudioMetadata` (sent as the socket opens) and the first
    /// `AudioData`, this long: the caller's audio, and the call's timeline, start later than the
    /// connection. Every frame's schedule and timestamp shift by it. Zero: the first frame
    /// follows the metadata at once.
    pub first_audio_after: Duration,
}

/// An echo path: level (dB, negative) and delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoPath {
    /// Level of the echo relative to what was played (dB).
    pub level_db: f64,
    /// Delay from playing to hearing it in the caller's stream (ms).
    pub delay_ms: u32,
}

impl Default for CallAudio {
    /// One talker: 5 s of the generated tone, then silence.
    fn default() -> Self {
        CallAudio {
            sources: vec![AudioSource {
                raw_id: None,
                input: AudioInput::Generated { duration_ms: 5_000 },
            }],
            after: AfterAudio::Silence,
            silent_threshold_dbfs: -50.0,
            echo: None,
            first_audio_after: Duration::ZERO,
        }
    }
}

impl CallAudio {
    /// One talker per WAV file.
    pub fn wavs(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        CallAudio {
            sources: paths
                .into_iter()
                .map(|p| AudioSource {
                    raw_id: None,
                    input: AudioInput::Wav(p),
                })
                .collect(),
            ..CallAudio::default()
        }
    }
}

/// An incoming call for [`FakeAcsHandle::incoming_call`].
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingCallSpec {
    /// The caller.
    pub from: CommunicationIdentifier,
    /// The callee: a phone number, an ACS user, or a Teams resource account (`28:orgid:`).
    pub to: CommunicationIdentifier,
    /// Send `to` as `{"kind":"unknown","rawId":…}` like the Teams Phone extensibility docs
    /// sample instead of the full model.
    pub to_as_unknown: bool,
    /// `callerDisplayName`.
    pub caller_display_name: Option<String>,
    /// `customContext` (SIP / VoIP headers).
    pub custom_context: Option<CustomCallingContext>,
    /// `onBehalfOfCallee`.
    pub on_behalf_of_callee: Option<CommunicationIdentifier>,
    /// This call's audio (`None`: the fake's default).
    pub audio: Option<CallAudio>,
}

impl Default for IncomingCallSpec {
    /// A PSTN caller (`+14255550123`) calling a phone number (`+18005550100`), with a
    /// `X-MS-Custom-acs-sim` SIP header and a `acs-sim` VoIP header.
    fn default() -> Self {
        IncomingCallSpec::phone("+14255550123", "+18005550100")
    }
}

impl IncomingCallSpec {
    /// The callee as the IncomingCall event carries it: `{"kind":"unknown","rawId":…}` with
    /// [`IncomingCallSpec::to_as_unknown`], else the full identifier model.
    pub fn to_model(&self) -> acs_protocol::CommunicationIdentifierModel {
        if self.to_as_unknown {
            acs_protocol::CommunicationIdentifierModel {
                kind: Some(acs_protocol::IdentifierKind::Unknown),
                raw_id: Some(self.to.raw_id()),
                ..Default::default()
            }
        } else {
            (&self.to).into()
        }
    }

    /// A PSTN call from `from` to the number `to` (both E.164).
    pub fn phone(from: &str, to: &str) -> Self {
        IncomingCallSpec {
            from: CommunicationIdentifier::phone_number(from),
            to: CommunicationIdentifier::phone_number(to),
            to_as_unknown: false,
            caller_display_name: Some(from.to_owned()),
            custom_context: Some(default_custom_context()),
            on_behalf_of_callee: None,
            audio: None,
        }
    }

    /// A PSTN call to an ACS user (`8:acs:…`).
    pub fn to_acs_user(from: &str, user_id: &str) -> Self {
        IncomingCallSpec {
            to: CommunicationIdentifier::communication_user(user_id),
            ..IncomingCallSpec::phone(from, "+18005550100")
        }
    }

    /// A PSTN call to a Teams resource account (`28:orgid:{object_id}`), Teams Phone
    /// extensibility.
    pub fn to_teams_resource_account(from: &str, object_id: &str) -> Self {
        IncomingCallSpec {
            to: CommunicationIdentifier::teams_app(object_id),
            ..IncomingCallSpec::phone(from, "+18005550100")
        }
    }
}

pub(super) fn default_custom_context() -> CustomCallingContext {
    let mut sip = BTreeMap::new();
    sip.insert("X-MS-Custom-acs-sim".to_owned(), "1".to_owned());
    sip.insert(
        "userToUser".to_owned(),
        "6163732d73696d;encoding=hex".to_owned(),
    );
    let mut voip = BTreeMap::new();
    voip.insert("acs-sim".to_owned(), "incoming".to_owned());
    CustomCallingContext {
        sip_headers: Some(sip),
        voip_headers: Some(voip),
        teams_phone_call_details: None,
    }
}

/// How a request's HMAC signature fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum SignatureCheck {
    /// Verified.
    Valid,
    /// Refused, with [`acs_protocol::AuthError`]'s text.
    Invalid(String),
}

impl SignatureCheck {
    /// Whether it verified.
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid)
    }
}

/// One request the fake ACS received (JWKS, OpenID and `/sim/` requests are not logged).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub path_and_query: String,
    /// The routed operation (`None`: not an ACS route).
    #[serde(skip)]
    pub operation: Option<AcsOperation>,
    /// [`AcsOperation::name`] of the operation.
    pub operation_name: Option<&'static str>,
    /// The headers that matter (lower-case names): `host`, `x-ms-host`, `x-ms-date`,
    /// `x-ms-content-sha256`, `authorization`, `repeatability-request-id`,
    /// `repeatability-first-sent`, `content-type`, `user-agent`, `x-ms-client-request-id`.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (`Null` if empty, a string if not JSON).
    pub body: serde_json::Value,
    /// The signature check.
    pub signature: SignatureCheck,
    /// `Repeatability-Request-ID`.
    pub repeatability_request_id: Option<String>,
    /// Answered from the repeatability cache (no side effect).
    pub replayed: bool,
    /// The fault injected into this request, if any.
    pub fault: Option<FaultKind>,
    /// The response status (`None` while in progress, or the connection was dropped).
    pub status: Option<u16>,
}

/// A fault to inject into a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status (400, 401, 500, 503, …) and an ACS error body, no side effect.
    Status(u16),
    /// 429 with `Retry-After: retry_after_secs`, no side effect.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Process the request normally, but only after this long (a slow answer; a client that
    /// gives up earlier still gets the side effect, like with the real service).
    Delay(Duration),
    /// Close the connection without a response, no side effect.
    Drop,
}

/// A fault rule: the next `count` requests of `operation` get `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// [`AcsOperation::name`] (e.g. `answer_call`), or `None` for every request.
    pub operation: Option<String>,
    /// What happens.
    pub kind: FaultKind,
    /// How many requests it applies to.
    pub count: u32,
}

impl Fault {
    /// The next `count` requests of `operation` (an [`AcsOperation::name`]) get `kind`.
    pub fn new(operation: &str, kind: FaultKind, count: u32) -> Self {
        Fault {
            operation: Some(operation.to_owned()),
            kind,
            count,
        }
    }

    /// The next `count` requests, whatever their operation, get `kind`.
    pub fn any(kind: FaultKind, count: u32) -> Self {
        Fault {
            operation: None,
            kind,
            count,
        }
    }

    /// Parses `OP:KIND[:COUNT]` (CLI syntax): `OP` an operation name or `any`; `KIND` a status
    /// (`400`, `401`, `500`, …), `429` or `429=SECS` (Retry-After, default 1), `delay=MS`, or
    /// `drop`; `COUNT` defaults to 1.
    pub fn parse(s: &str) -> Result<Fault, String> {
        let mut parts = s.split(':');
        let op = parts.next().unwrap_or_default().trim();
        let kind = parts.next().ok_or("expected OP:KIND[:COUNT]")?.trim();
        let count = match parts.next() {
            Some(c) => c.trim().parse::<u32>().map_err(|e| format!("count: {e}"))?,
            None => 1,
        };
        if parts.next().is_some() {
            return Err("expected OP:KIND[:COUNT]".into());
        }
        if op.is_empty() {
            return Err("missing operation (an operation name or `any`)".into());
        }
        let kind = if kind.eq_ignore_ascii_case("drop") {
            FaultKind::Drop
        } else if let Some(ms) = kind.strip_prefix("delay=") {
            FaultKind::Delay(Duration::from_millis(
                ms.parse().map_err(|e| format!("delay: {e}"))?,
            ))
        } else if let Some(secs) = kind.strip_prefix("429=") {
            FaultKind::TooManyRequests {
                retry_after_secs: secs.parse().map_err(|e| format!("retry-after: {e}"))?,
            }
        } else {
            match kind.parse::<u16>() {
                Ok(429) => FaultKind::TooManyRequests {
                    retry_after_secs: 1,
                },
                Ok(code) if (400..600).contains(&code) => FaultKind::Status(code),
                _ => return Err(format!("unknown fault kind {kind:?}")),
            }
        };
        Ok(Fault {
            operation: (!op.eq_ignore_ascii_case("any")).then(|| op.to_owned()),
            kind,
            count,
        })
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// The gateway hung up (DELETE).
    HungUp,
    /// The gateway terminated the call for everyone.
    Terminated,
    /// The far end hung up ([`FakeAcsHandle::hang_up`]).
    RemoteHangUp,
    /// Transferred away.
    Transferred,
    /// The fake ACS shut down.
    Shutdown,
}

/// A callback the fake ACS posted.
#[derive(Debug, Clone, Serialize)]
pub struct PostedCallback {
    /// `Microsoft.Communication.<Event>`.
    pub event_type: String,
    /// The event id.
    pub id: String,
    /// Where it was posted.
    pub url: String,
    /// `operationContext` it carried.
    pub operation_context: Option<String>,
    /// The receiver's status (`None` when the POST failed).
    pub status: Option<u16>,
    /// Why the POST failed.
    pub error: Option<String>,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    /// How long the receiver took to answer the POST (request sent to status received), in
    /// microseconds; the time to the error when it failed.
    pub latency_us: u64,
}

impl PostedCallback {
    /// Whether the receiver answered 2xx.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The media stream of a call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaInfo {
    /// `AudioMetadata.subscriptionId` (also in `mediaStreamingSubscription.id`).
    pub subscription_id: String,
    /// `inactive` until the WebSocket is open, `active` while streaming.
    pub state: Option<SubscriptionState>,
    /// Sample rate streamed.
    pub sample_rate: u32,
    /// Participant streams (1 mixed, or one per unmixed talker).
    pub streams: usize,
    /// WebSocket connections opened so far.
    pub connections: u32,
    /// Connection attempts that failed.
    pub connect_failures: u32,
    /// When the first connection opened (milliseconds since the fake started).
    pub first_connected_at_ms: Option<u64>,
    /// `AudioData` messages sent (all streams).
    pub audio_frames_sent: u64,
    /// Messages the gateway sent back.
    pub outbound: OutboundSummary,
    /// How the last stream ended (text), if it did.
    pub last_end: Option<String>,
}

/// A recording of a call.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingInfo {
    /// The recording id.
    pub recording_id: String,
    /// Its state.
    pub state: RecordingState,
    /// Where its events go.
    pub callback_uri: String,
    /// Whether it failed to start.
    pub failed: bool,
}

/// A snapshot of one call the fake ACS knows.
#[derive(Debug, Clone, Serialize)]
pub struct CallInfo {
    /// `callConnectionId`.
    pub call_connection_id: String,
    /// `serverCallId`.
    pub server_call_id: String,
    /// `correlationId`.
    pub correlation_id: String,
    /// The `incomingCallContext` it was answered with.
    pub incoming_call_context: String,
    /// Connection state.
    pub state: CallConnectionState,
    /// The caller.
    pub from: CommunicationIdentifierModel,
    /// The callee.
    pub to: CommunicationIdentifierModel,
    /// `callbackUri` of the answer.
    pub callback_uri: String,
    /// `operationContext` of the answer.
    pub operation_context: Option<String>,
    /// `mediaStreamingOptions` of the answer.
    pub media_streaming_options: Option<MediaStreamingOptions>,
    /// The media stream.
    pub media: MediaInfo,
    /// Participants (the caller, the other talkers, added participants).
    pub participants: Vec<CallParticipant>,
    /// Recordings.
    pub recordings: Vec<RecordingInfo>,
    /// Callbacks posted for this call, in order.
    pub callbacks: Vec<PostedCallback>,
    /// Milliseconds since the fake started, when answered.
    pub answered_at_ms: u64,
    /// How it ended.
    pub ended: Option<CallEnd>,
}

impl CallInfo {
    /// The `type`s of the callbacks posted so far, without the `Microsoft.Communication.` prefix.
    pub fn callback_names(&self) -> Vec<String> {
        self.callbacks
            .iter()
            .map(|c| {
                c.event_type
                    .strip_prefix(acs_protocol::events::CALLBACK_TYPE_PREFIX)
                    .unwrap_or(&c.event_type)
                    .to_owned()
            })
            .collect()
    }
}

/// What happened to an issued `incomingCallContext`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum ContextOutcome {
    /// Not answered, rejected or redirected yet.
    Pending,
    /// Answered; the call connection id.
    Answered(String),
    /// Rejected, with the reason given.
    Rejected(Option<String>),
    /// Redirected to this rawId.
    Redirected(String),
}
