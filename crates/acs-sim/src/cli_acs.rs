//! The control-plane subcommands of `acs-sim`: `acs` (run a fake ACS), `eventgrid` (deliver
//! Event Grid handshakes and IncomingCall events to a webhook) and `call` (a whole call through
//! a running gateway). Argument definitions and runners; the logic is in [`super::acs`],
//! [`super::eventgrid`] and [`super::scenario`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use clap::Args;

use super::acs::{
    connection_string, random_bytes, AfterAudio, CallAudio, EchoPath, FakeAcs, FakeAcsConfig,
    FakeAcsHandle, Fault, IncomingCallSpec,
};
use super::cli::parse_secs;
use super::error::SimError;
use super::eventgrid::{
    deliver_incoming_call, validate_subscription, DeliveryReport, EventGridTarget, Schema,
};
use super::ids::SimRng;
use super::jwt::{SigningKeySource, ACS_ISSUER};
use super::play::Pacing;
use super::scenario::{run_call, summary, CallScenario};
use acs_protocol::events::IncomingCallEventData;
use acs_protocol::parse_raw_id;
use acs_protocol::rest::CustomCallingContext;

/// The access key `acs-sim acs` and `acs-sim call` use unless told otherwise, so a gateway can
/// be configured before the fake starts. For local demos only: it is printed everywhere.
pub const DEMO_ACCESS_KEY: &[u8] = b"acs-sim local demo key, not secret";
/// The resource id (JWT audience) `acs-sim acs` and `acs-sim call` use unless told otherwise.
pub const DEMO_RESOURCE_ID: &str = "00000000-0000-4000-8000-0000000a51d0";
/// Where `acs-sim acs` and `acs-sim call` keep state between runs unless told otherwise
/// (relative to the working directory).
pub const DEFAULT_STATE_DIR: &str = ".acs-sim";
/// The signing key's file in the state directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// Where `acs-sim acs` and `acs-sim call` listen unless told otherwise.
pub const DEFAULT_ACS_LISTEN: &str = "127.0.0.1:8090";

/// A decoded access key given on the command line.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(pub Vec<u8>);

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessKey(<{} bytes>)", self.0.len())
    }
}

/// Retry delays in milliseconds given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delays(pub Vec<u64>);

fn parse_b64_key(s: &str) -> Result<AccessKey, String> {
    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
        Ok(k) if !k.is_empty() => Ok(AccessKey(k)),
        Ok(_) => Err("empty key".into()),
        Err(e) => Err(format!("not base64: {e}")),
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "expected NAME=VALUE".into())
}

fn parse_delays(s: &str) -> Result<Delays, String> {
    if s.trim().is_empty() {
        return Ok(Delays(Vec::new()));
    }
    s.split(',')
        .map(|v| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Delays)
}

/// Options of the fake ACS (shared by `acs` and `call`).
#[derive(Args, Debug, Clone)]
pub struct FakeAcsArgs {
    /// Access key (base64) requests must be signed with. Default: a fixed demo key (printed).
    #[arg(long, value_name = "BASE64", value_parser = parse_b64_key)]
    pub access_key: Option<AccessKey>,
    /// Use a random access key instead of the demo key.
    #[arg(long, conflicts_with = "access_key")]
    pub random_access_key: bool,
    /// ACS resource id: the audience of the JWTs.
    #[arg(long, default_value = DEMO_RESOURCE_ID, value_name = "ID")]
    pub resource_id: String,
    /// Issuer of the JWTs.
    #[arg(long, default_value = ACS_ISSUER, value_name = "URL")]
    pub issuer: String,
    /// RS256 signing key (PEM, PKCS#8 or PKCS#1), used as is. Default: `<state-dir>/signing-key.pem`,
    /// generated and saved there the first time, so the `kid` stays the same across restarts.
    #[arg(long, value_name = "PEM")]
    pub signing_key: Option<PathBuf>,
    /// Where the fake keeps state between runs (its signing key); relative to the working
    /// directory.
    #[arg(long, default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Generate a fresh signing key at every start and save nothing (a new `kid` each time, as
    /// after an ACS key rotation).
    #[arg(long, conflicts_with = "signing_key")]
    pub ephemeral_key: bool,
    /// `kid` of the signing key. Default: its RFC 7638 thumbprint.
    #[arg(long, value_name = "KID")]
    pub kid: Option<String>,
    /// Largest accepted x-ms-date skew, seconds.
    #[arg(long, default_value_t = 900)]
    pub max_skew_secs: u64,
    /// How long an issued incomingCallContext can be answered, seconds.
    #[arg(long, default_value_t = 60)]
    pub incoming_call_ttl_secs: u64,
    /// Audio of each answered call (repeatable: one talker per file, up to 4; mixed or unmixed
    /// as the answer asks). Default: 5 s of a generated tone.
    #[arg(long = "wav", value_name = "FILE")]
    pub wavs: Vec<PathBuf>,
    /// Loop the audio instead of sending silence after it.
    #[arg(long)]
    pub loop_audio: bool,
    /// Echo `LEVEL_DB:DELAY_MS` (e.g. `-10:100`): what the gateway plays comes back in the
    /// (first) caller's stream that much later and quieter, as a loudspeaker would return it.
    #[arg(long, value_name = "LEVEL_DB:DELAY_MS", value_parser = parse_echo)]
    pub echo: Option<EchoPath>,
    /// Hold each call's first `AudioData` back this long after its `AudioMetadata` (0–60000): the
    /// socket opens, the caller's audio starts later (timestamps shift with it).
    #[arg(long, default_value_t = 0, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub first_audio_after_ms: u64,
    /// Media pacing.
    #[arg(long, value_enum, default_value_t = Pacing::Realtime)]
    pub pace: Pacing,
    /// Fault injection `OP:KIND[:COUNT]` (repeatable): OP an operation name (answer_call,
    /// hang_up_call, add_participant, start_recording, …) or `any`; KIND 400, 401, 500, 503,
    /// 429, 429=SECS (Retry-After), delay=MS, drop.
    #[arg(long = "fault", value_name = "OP:KIND[:N]", value_parser = Fault::parse)]
    pub faults: Vec<Fault>,
    /// Adding or transferring to this raw id fails (repeatable).
    #[arg(long = "fail-participant", value_name = "RAWID")]
    pub fail_participants: Vec<String>,
    /// Recordings fail to start (StartRecordingFailed).
    #[arg(long)]
    pub fail_recording: bool,
    /// Refuse repeatable operations without Repeatability-Request-ID (real ACS accepts them).
    #[arg(long)]
    pub require_repeatability: bool,
}

/// `LEVEL_DB:DELAY_MS`: a level at or below 0 dB, a delay up to 2 s.
fn parse_echo(s: &str) -> Result<EchoPath, String> {
    let (l, d) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected LEVEL_DB:DELAY_MS, e.g. -10:100"))?;
    let level_db: f64 = l.trim().parse().map_err(|e| format!("level {l:?}: {e}"))?;
    let delay_ms: u32 = d.trim().parse().map_err(|e| format!("delay {d:?}: {e}"))?;
    if !(-100.0..=0.0).contains(&level_db) || delay_ms > 2_000 {
        return Err(format!(
            "{s:?}: level must be -100..=0 dB, delay at most 2000 ms"
        ));
    }
    Ok(EchoPath { level_db, delay_ms })
}

impl FakeAcsArgs {
    /// The fake ACS configuration these options describe, listening on `listen`.
    pub fn config(&self, listen: SocketAddr) -> Result<FakeAcsConfig, SimError> {
        if self.wavs.len() > 4 {
            return Err(SimError::InvalidOption(
                "at most 4 --wav (ACS streams up to 4 unmixed participants)".into(),
            ));
        }
        for w in &self.wavs {
            // Fail now rather than when the first call starts streaming.
            super::audio::read_wav_mono(w, 16_000)?;
        }
        let signing_key = match &self.signing_key {
            Some(p) => SigningKeySource::Pem(std::fs::read_to_string(p).map_err(|source| {
                SimError::Read {
                    path: p.clone(),
                    source,
                }
            })?),
            None if self.ephemeral_key => SigningKeySource::Generate,
            None => SigningKeySource::Persistent(self.state_dir.join(SIGNING_KEY_FILE)),
        };
        let access_key = match (&self.access_key, self.random_access_key) {
            (Some(k), _) => k.0.clone(),
            (None, true) => random_bytes(32),
            (None, false) => DEMO_ACCESS_KEY.to_vec(),
        };
        let mut audio = if self.wavs.is_empty() {
            CallAudio::default()
        } else {
            CallAudio::wavs(self.wavs.iter().cloned())
        };
        if self.loop_audio {
            audio.after = AfterAudio::Loop;
        }
        audio.echo = self.echo;
        audio.first_audio_after = Duration::from_millis(self.first_audio_after_ms);
        Ok(FakeAcsConfig {
            listen,
            access_key,
            resource_id: self.resource_id.clone(),
            issuer: self.issuer.clone(),
            signing_key,
            kid: self.kid.clone(),
            max_date_skew: Duration::from_secs(self.max_skew_secs),
            incoming_call_ttl: Duration::from_secs(self.incoming_call_ttl_secs),
            require_repeatability: self.require_repeatability,
            audio,
            pacing: self.pace,
            ..FakeAcsConfig::default()
        })
    }

    /// Applies the fault and outcome options to a running fake.
    pub fn apply(&self, acs: &FakeAcsHandle) {
        for f in &self.faults {
            acs.set_fault(f.clone());
        }
        for p in &self.fail_participants {
            acs.fail_participant(p);
        }
        acs.set_recording_fails(self.fail_recording);
    }
}

/// The incoming call to announce (shared by `eventgrid` and `call`).
#[derive(Args, Debug, Clone)]
pub struct IncomingCallArgs {
    /// Caller raw id (`4:+E164`, `8:acs:…`, …).
    #[arg(long, default_value = "4:+14255550123", value_name = "RAWID")]
    pub from: String,
    /// Callee raw id: a phone number `4:+E164`, an ACS user `8:acs:…`, or a Teams resource
    /// account `28:orgid:<object id>` (Teams Phone extensibility).
    #[arg(long, default_value = "4:+18005550100", value_name = "RAWID")]
    pub to: String,
    /// Send `to` as `{"kind":"unknown","rawId":…}` like the Teams Phone extensibility docs.
    #[arg(long)]
    pub to_as_unknown: bool,
    /// `callerDisplayName` (default: the caller's number or id).
    #[arg(long, value_name = "NAME")]
    pub caller_name: Option<String>,
    /// Custom SIP header `NAME=VALUE` (repeatable; `X-MS-Custom-…`, `userToUser`).
    #[arg(long = "sip-header", value_name = "NAME=VALUE", value_parser = parse_kv)]
    pub sip_headers: Vec<(String, String)>,
    /// Custom VoIP header `NAME=VALUE` (repeatable).
    #[arg(long = "voip-header", value_name = "NAME=VALUE", value_parser = parse_kv)]
    pub voip_headers: Vec<(String, String)>,
}

impl IncomingCallArgs {
    /// The custom context (`None`: the default demo headers).
    fn custom_context(&self) -> Option<CustomCallingContext> {
        if self.sip_headers.is_empty() && self.voip_headers.is_empty() {
            return None;
        }
        let map = |v: &[(String, String)]| {
            (!v.is_empty()).then(|| v.iter().cloned().collect::<BTreeMap<_, _>>())
        };
        Some(CustomCallingContext {
            sip_headers: map(&self.sip_headers),
            voip_headers: map(&self.voip_headers),
            teams_phone_call_details: None,
        })
    }

    /// The spec for a fake ACS.
    pub fn spec(&self) -> IncomingCallSpec {
        let default = IncomingCallSpec::default();
        IncomingCallSpec {
            from: parse_raw_id(&self.from),
            to: parse_raw_id(&self.to),
            to_as_unknown: self.to_as_unknown,
            caller_display_name: Some(
                self.caller_name
                    .clone()
                    .unwrap_or_else(|| self.from.trim_start_matches("4:").to_owned()),
            ),
            custom_context: self.custom_context().or(default.custom_context),
            ..default
        }
    }
}

/// How events are delivered (shared by `eventgrid` and `call`).
#[derive(Args, Debug, Clone)]
pub struct DeliveryArgs {
    /// Event subscription schema.
    #[arg(long, value_enum, default_value_t = Schema::EventGrid)]
    pub schema: Schema,
    /// Time allowed per delivery attempt, seconds (Event Grid: 30).
    #[arg(long, default_value_t = 30.0, value_parser = parse_secs, value_name = "S")]
    pub attempt_timeout_secs: f64,
    /// Retry delays in ms, comma-separated; their number bounds the retries (Event Grid:
    /// 10 s, 30 s, 1 min, …).
    #[arg(long, default_value = "1000,2000,5000", value_parser = parse_delays, value_name = "MS,MS,…")]
    pub retry_delays_ms: Delays,
    /// Extra request header `NAME=VALUE` (repeatable), e.g. `X-Webhook-Secret=…`.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_kv)]
    pub headers: Vec<(String, String)>,
    /// Deliver each event N more times after it was accepted (same event id).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub duplicates: u32,
}

impl DeliveryArgs {
    fn target(&self, url: &str) -> EventGridTarget {
        EventGridTarget {
            schema: self.schema,
            attempt_timeout: Duration::from_secs_f64(self.attempt_timeout_secs),
            retry_delays: self
                .retry_delays_ms
                .0
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            extra_headers: self.headers.clone(),
            ..EventGridTarget::new(url)
        }
    }
}

/// `acs-sim acs` options.
#[derive(Args, Debug, Clone)]
pub struct AcsArgs {
    /// Listen address (keep it on 127.0.0.1).
    #[arg(long, default_value = DEFAULT_ACS_LISTEN)]
    pub listen: SocketAddr,
    /// Stop after this many seconds (default: run until ctrl-c).
    #[arg(long, value_parser = parse_secs, value_name = "S")]
    pub duration_secs: Option<f64>,
    /// The fake ACS.
    #[command(flatten)]
    pub acs: FakeAcsArgs,
}

/// `acs-sim eventgrid` options.
#[derive(Args, Debug, Clone)]
pub struct EventGridArgs {
    /// The webhook, e.g. `http://127.0.0.1:8080/api/incomingCall?secret=…`.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A running `acs-sim acs` to get answerable incomingCallContexts from (its `/sim/` API).
    /// Without it the context is one no fake ACS issued: answering it fails like a stale call.
    #[arg(long, value_name = "URL")]
    pub acs: Option<String>,
    /// Only the validation handshake.
    #[arg(long, conflicts_with = "no_handshake")]
    pub handshake_only: bool,
    /// Skip the validation handshake.
    #[arg(long)]
    pub no_handshake: bool,
    /// IncomingCall events to send.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub events: u32,
    /// The call.
    #[command(flatten)]
    pub call: IncomingCallArgs,
    /// Delivery.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// `acs-sim call` options.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// The gateway's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub gateway: String,
    /// The webhook URL (default: `<gateway>/api/incomingCall`; add `?secret=…` if the gateway
    /// wants one).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Where the in-process fake ACS listens (the gateway's connection string points here).
    #[arg(long, default_value = DEFAULT_ACS_LISTEN)]
    pub acs_listen: SocketAddr,
    /// Print the gateway environment for these options and exit.
    #[arg(long)]
    pub print_env: bool,
    /// Expect the gateway to answer with audioChannelType unmixed (give several --wav).
    #[arg(long)]
    pub unmixed: bool,
    /// Expect enableBidirectional and record what the gateway sends back.
    #[arg(long)]
    pub bidirectional: bool,
    /// Where to write the gateway's outbound audio (default: `outbound-<call id>.wav` when it sent
    /// any).
    #[arg(long, value_name = "FILE")]
    pub outbound_wav: Option<PathBuf>,
    /// The far end hangs up this long after media started.
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs, value_name = "S")]
    pub hangup_after_secs: f64,
    /// Time the gateway has to answer.
    #[arg(long, default_value_t = 15.0, value_parser = parse_secs, value_name = "S")]
    pub answer_timeout_secs: f64,
    /// Skip the Event Grid validation handshake.
    #[arg(long)]
    pub no_handshake: bool,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The fake ACS.
    #[command(flatten)]
    pub acs: FakeAcsArgs,
    /// The call.
    #[command(flatten)]
    pub call: IncomingCallArgs,
    /// Delivery.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// The environment a gateway needs to use a fake ACS at `base_url`.
pub fn gateway_env(base_url: &str, access_key: &[u8], resource_id: &str) -> String {
    format!(
        "export ACS_GATEWAY_ACS__CONNECTION_STRING='{}'\nexport ACS_GATEWAY_ACS__RESOURCE_ID='{resource_id}'\nexport ACS_GATEWAY_ACS__JWT__JWKS_URL='{base_url}{}'\n",
        connection_string(base_url, access_key),
        super::jwt::JWKS_PATH
    )
}

fn print_fake(acs: &FakeAcsHandle) {
    println!("  fake ACS      {}", acs.base_url);
    println!("  connection    {}", acs.connection_string());
    println!(
        "  JWKS          {} (kid {})",
        acs.jwks_url,
        acs.signer().kid()
    );
    println!("  issuer        {}", acs.issuer);
    println!("  audience      {}", acs.audience);
    println!("  gateway environment:");
    for line in gateway_env(&acs.base_url, acs.access_key(), &acs.audience).lines() {
        println!("    {line}");
    }
}

/// `acs-sim acs`: runs a fake ACS and prints requests and callbacks as they happen.
pub async fn run_acs(a: AcsArgs) -> Result<bool, SimError> {
    let cfg = a.acs.config(a.listen)?;
    let key_file = match &cfg.signing_key {
        SigningKeySource::Persistent(p) => Some(p.clone()),
        _ => None,
    };
    let acs = FakeAcs::start(cfg).await?;
    a.acs.apply(&acs);
    println!("acs-sim acs: a fake Azure Communication Services resource");
    print_fake(&acs);
    if let Some(p) = key_file {
        println!(
            "  signing key   {} (kept across restarts; --ephemeral-key for a new one)",
            p.display()
        );
    }
    println!(
        "  admin         POST {0}/sim/incomingCalls, GET {0}/sim/calls, GET {0}/sim/requests, POST {0}/sim/calls/<id>:hangup",
        acs.base_url
    );
    let deadline = a
        .duration_secs
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    let (mut seen_requests, mut seen_callbacks) = (0u64, BTreeMap::<String, usize>::new());
    loop {
        let wait = acs.wait_for(Duration::from_millis(500), |_| None::<()>);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
            _ = wait => {}
        }
        let since = seen_requests;
        for r in acs.requests().into_iter().filter(|r| r.seq > since) {
            if r.status.is_none() && r.fault != Some(super::acs::FaultKind::Drop) {
                break; // still in progress: print it next time
            }
            seen_requests = r.seq;
            println!(
                "→ {} {} [{}] {} signature {}{}{}",
                r.method,
                r.path_and_query,
                r.operation_name.unwrap_or("-"),
                r.status.map_or_else(|| "dropped".into(), |s| s.to_string()),
                if r.signature.is_valid() {
                    "valid"
                } else {
                    "INVALID"
                },
                r.repeatability_request_id
                    .as_deref()
                    .map(|id| format!(" repeatability {id}"))
                    .unwrap_or_default(),
                if r.replayed { " (replayed)" } else { "" }
            );
        }
        for c in acs.calls() {
            let n = seen_callbacks
                .entry(c.call_connection_id.clone())
                .or_default();
            for cb in &c.callbacks[*n..] {
                println!(
                    "← {} {} → {}",
                    c.call_connection_id,
                    cb.event_type,
                    cb.status.map_or_else(
                        || format!("failed: {}", cb.error.as_deref().unwrap_or("")),
                        |s| s.to_string()
                    )
                );
            }
            *n = c.callbacks.len();
        }
    }
    acs.shutdown().await;
    Ok(true)
}

/// IncomingCall data for a context no fake ACS issued (answering it fails as stale).
fn unregistered_call(spec: &IncomingCallSpec) -> IncomingCallEventData {
    let mut rng = SimRng::from_entropy();
    let to = spec.to_model();
    IncomingCallEventData {
        to,
        from: (&spec.from).into(),
        server_call_id: Some(
            base64::engine::general_purpose::STANDARD
                .encode(format!("https://acs-sim.invalid/conv/{}", rng.uuid_like())),
        ),
        caller_display_name: spec.caller_display_name.clone(),
        custom_context: spec.custom_context.clone(),
        incoming_call_context: format!("acs-sim.unregistered.{}", rng.uuid_like()),
        correlation_id: Some(rng.uuid_like()),
        on_behalf_of_callee: None,
    }
}

async fn fetch_context(
    acs_url: &str,
    a: &IncomingCallArgs,
) -> Result<IncomingCallEventData, SimError> {
    let url = format!("{}/sim/incomingCalls", acs_url.trim_end_matches('/'));
    let err = |reason: String| SimError::Http {
        url: url.clone(),
        reason,
    };
    let spec = a.spec();
    let body = serde_json::json!({
        "from": a.from,
        "to": a.to,
        "toAsUnknown": a.to_as_unknown,
        "callerDisplayName": spec.caller_display_name,
        "customContext": spec.custom_context,
    });
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| err(e.to_string()))?
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(err(format!("status {}", resp.status())));
    }
    resp.json().await.map_err(|e| err(e.to_string()))
}

fn print_delivery(d: &DeliveryReport) {
    for a in &d.attempts {
        println!(
            "  delivery {}{}: {} in {:.0} ms",
            a.delivery_count,
            if a.duplicate { " (duplicate)" } else { "" },
            a.status
                .map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string()),
            a.elapsed_ms
        );
    }
    println!(
        "  event {}: {}",
        d.event_id,
        if d.delivered {
            "delivered"
        } else if d.dead_lettered {
            "refused (400/413: Event Grid would dead-letter it)"
        } else {
            "NOT delivered (retries exhausted)"
        }
    );
}

/// `acs-sim eventgrid`: handshake and IncomingCall deliveries.
pub async fn run_eventgrid(a: EventGridArgs) -> Result<bool, SimError> {
    let target = a.delivery.target(&a.url);
    println!(
        "acs-sim eventgrid: {} ({:?} schema)",
        a.url, a.delivery.schema
    );
    let mut ok = true;
    if !a.no_handshake {
        let h = validate_subscription(&target).await?;
        println!(
            "  handshake {}: {} (status {})",
            if h.ok { "ok" } else { "FAILED" },
            h.detail,
            h.status.map_or_else(|| "none".into(), |s| s.to_string())
        );
        ok &= h.ok;
    }
    if a.handshake_only {
        return Ok(ok);
    }
    let topic = "/subscriptions/acs-sim/resourceGroups/acs-sim/providers/Microsoft.Communication/communicationServices/acs-sim";
    for _ in 0..a.events {
        let data = match &a.acs {
            Some(url) => fetch_context(url, &a.call).await?,
            None => {
                println!("  (no --acs: this incomingCallContext cannot be answered)");
                unregistered_call(&a.call.spec())
            }
        };
        println!(
            "  IncomingCall {} → {} context {}…",
            data.from.raw_id(),
            data.to.raw_id(),
            data.incoming_call_context
                .chars()
                .take(24)
                .collect::<String>()
        );
        let d = deliver_incoming_call(&target, topic, &data, a.delivery.duplicates).await?;
        print_delivery(&d);
        ok &= d.delivered;
    }
    Ok(ok)
}

/// `acs-sim call`: a whole call through a running gateway.
pub async fn run_call_cmd(a: CallArgs) -> Result<bool, SimError> {
    let cfg = a.acs.config(a.acs_listen)?;
    if a.print_env {
        print!(
            "{}",
            gateway_env(
                &format!("http://{}", a.acs_listen),
                &cfg.access_key,
                &cfg.resource_id
            )
        );
        return Ok(true);
    }
    let acs = FakeAcs::start(cfg).await?;
    a.acs.apply(&acs);
    println!("acs-sim call: the gateway must use this fake ACS:");
    print_fake(&acs);
    let webhook = a
        .webhook_url
        .clone()
        .unwrap_or_else(|| format!("{}/api/incomingCall", a.gateway.trim_end_matches('/')));
    let scenario = CallScenario {
        handshake: !a.no_handshake,
        call: a.call.spec(),
        duplicates: a.delivery.duplicates,
        answer_timeout: Duration::from_secs_f64(a.answer_timeout_secs),
        hangup_after: Duration::from_secs_f64(a.hangup_after_secs),
        expect_unmixed: a.unmixed,
        expect_bidirectional: a.bidirectional,
        outbound_wav: a.outbound_wav.clone(),
        ..CallScenario::new(a.delivery.target(&webhook))
    };
    let result = run_call(&acs, &scenario).await;
    acs.shutdown().await;
    let report = result?;
    print!("{}", summary(&report));
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").map_err(|source| SimError::Write {
            path: path.clone(),
            source,
        })?;
        println!("  report      {}", path.display());
    }
    Ok(report.ok)
}

#[cfg(test)]
mod tests {
    use super::super::cli::{Cli, Command};
    use super::*;
    use acs_protocol::IdentifierKind;
    use clap::Parser;
    use std::path::Path;

    #[test]
    fn parses_call_options() {
        let cli = Cli::try_parse_from([
            "acs-sim",
            "call",
            "--gateway",
            "http://127.0.0.1:9000",
            "--bidirectional",
            "--hangup-after-secs",
            "3",
            "--access-key",
            "dGVzdC1rZXk=",
            "--fault",
            "answer_call:429=2:3",
            "--to",
            "28:orgid:abc",
            "--sip-header",
            "X-MS-Custom-a=b",
            "--schema",
            "cloud-events",
            "--retry-delays-ms",
            "10,20",
            "--first-audio-after-ms",
            "500",
        ])
        .unwrap();
        let Command::Call(a) = cli.command else {
            panic!("not call")
        };
        assert!(a.bidirectional);
        assert_eq!(a.hangup_after_secs, 3.0);
        assert_eq!(a.acs.access_key, Some(AccessKey(b"test-key".to_vec())));
        assert_eq!(a.acs.faults[0].count, 3);
        let spec = a.call.spec();
        assert_eq!(spec.to.raw_id(), "28:orgid:abc");
        assert_eq!(
            spec.custom_context.unwrap().sip_headers.unwrap()["X-MS-Custom-a"],
            "b"
        );
        let t = a.delivery.target("http://x/");
        assert_eq!(t.schema, Schema::CloudEvents);
        assert_eq!(
            t.retry_delays,
            [Duration::from_millis(10), Duration::from_millis(20)]
        );
        let cfg = a.acs.config("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(cfg.access_key, b"test-key");
        assert_eq!(cfg.audio.first_audio_after, Duration::from_millis(500));
        assert!(
            Cli::try_parse_from(["acs-sim", "acs", "--first-audio-after-ms", "60001"]).is_err(),
            "at most a minute"
        );
        match &cfg.signing_key {
            SigningKeySource::Persistent(p) => {
                assert_eq!(p, &Path::new(".acs-sim").join("signing-key.pem"))
            }
            other => panic!("{other:?}"),
        }
        let key_of = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Acs(a) = cli.command else {
                panic!("not acs")
            };
            a.acs
                .config("127.0.0.1:0".parse().unwrap())
                .unwrap()
                .signing_key
        };
        assert!(matches!(
            key_of(&["acs-sim", "acs", "--state-dir", "st"]),
            SigningKeySource::Persistent(p) if p == Path::new("st").join("signing-key.pem")
        ));
        assert!(matches!(
            key_of(&["acs-sim", "acs", "--ephemeral-key"]),
            SigningKeySource::Generate
        ));
        assert!(Cli::try_parse_from([
            "acs-sim",
            "acs",
            "--ephemeral-key",
            "--signing-key",
            "k.pem"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["acs-sim", "call", "--access-key", "!!"]).is_err());
        assert!(Cli::try_parse_from(["acs-sim", "acs", "--fault", "x:teapot"]).is_err());
    }

    #[test]
    #[cfg(unix)]
    fn print_env_output_exports_to_a_child_after_eval() {
        // `eval "$(acs-sim call --print-env)"` then `cargo run`: the gateway (a child of the
        // shell) must see the variables, so they must be exported, not only set
        let env = gateway_env("http://127.0.0.1:8090", DEMO_ACCESS_KEY, "rid");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"eval "$ENV_LINES"; sh -c 'echo "$ACS_GATEWAY_ACS__CONNECTION_STRING|$ACS_GATEWAY_ACS__RESOURCE_ID|$ACS_GATEWAY_ACS__JWT__JWKS_URL"'"#)
            .env("ENV_LINES", &env)
            .output()
            .unwrap();
        let seen = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            seen.trim(),
            format!(
                "{}|rid|http://127.0.0.1:8090/calling/keys",
                connection_string("http://127.0.0.1:8090", DEMO_ACCESS_KEY)
            )
        );
    }

    #[test]
    fn gateway_env_names_the_connection_string() {
        let env = gateway_env("http://127.0.0.1:8090", b"test-key", "rid");
        assert!(env.contains(
            "ACS_GATEWAY_ACS__CONNECTION_STRING='endpoint=http://127.0.0.1:8090/;accesskey=dGVzdC1rZXk='"
        ));
        assert!(env.contains("export ACS_GATEWAY_ACS__RESOURCE_ID='rid'"));
        assert!(env.contains(
            "export ACS_GATEWAY_ACS__JWT__JWKS_URL='http://127.0.0.1:8090/calling/keys'"
        ));
        let parsed = acs_protocol::ConnectionString::parse(&connection_string(
            "http://127.0.0.1:8090",
            DEMO_ACCESS_KEY,
        ))
        .unwrap();
        assert_eq!(parsed.host, "127.0.0.1:8090");
        assert_eq!(parsed.access_key, DEMO_ACCESS_KEY);
    }

    #[test]
    fn echo_option_parses_level_and_delay() {
        assert_eq!(
            parse_echo("-10:100"),
            Ok(EchoPath {
                level_db: -10.0,
                delay_ms: 100
            })
        );
        for bad in ["-10", "x:100", "-10:y", "6:100", "-10:5000"] {
            assert!(parse_echo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unregistered_calls_are_marked() {
        let a = IncomingCallArgs {
            from: "4:+1".into(),
            to: "8:acs:x".into(),
            to_as_unknown: true,
            caller_name: None,
            sip_headers: vec![],
            voip_headers: vec![],
        };
        let d = unregistered_call(&a.spec());
        assert!(d.incoming_call_context.starts_with("acs-sim.unregistered."));
        assert_eq!(d.to.kind, Some(IdentifierKind::Unknown));
        assert_eq!(d.caller_display_name.as_deref(), Some("+1"));
    }
}
