//! EDGE: the `acs-sim call` scenario — one whole call through a running gateway, with a fake ACS
//! ([`crate::acs`]) and the Event Grid emulator ([`crate::eventgrid`]):
//!
//! 1. (optional) the Event Grid validation handshake on the gateway's webhook;
//! 2. an IncomingCall whose `incomingCallContext` the fake ACS issued, delivered with Event
//!    Grid's retries (and duplicates on request);
//! 3. wait for the gateway to answer the fake ACS (signed; the fake verifies it) — or reject /
//!    redirect, which ends the scenario;
//! 4. the fake posts `CallConnected` … and, when the answer asked for media, opens the media
//!    WebSocket to the gateway's `transportUrl` and streams the call's audio in real time (if the
//!    answer did not start streaming, the scenario waits for the gateway's `:startMediaStreaming`);
//! 5. after [`CallScenario::hangup_after`] the far end hangs up: the fake closes the media socket
//!    and posts `MediaStreamingStopped` and `CallDisconnected`;
//! 6. the report: answer latency and checks, media figures, every callback and the gateway's
//!    status for it, and what the gateway sent back on the media socket (written to a WAV; its
//!    pacing and the `StopAudio` latency measured).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::acs::{
    CallEnd, CallInfo, ContextOutcome, FakeAcsHandle, IncomingCallSpec, MediaInfo, PostedCallback,
    SignatureCheck,
};
use super::error::SimError;
use super::eventgrid::{
    deliver_incoming_call, validate_subscription, DeliveryReport, EventGridTarget, HandshakeReport,
};
use acs_protocol::rest::{MediaStreamingAudioChannelType, MediaStreamingOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct CallScenario {
    /// The gateway's Event Grid webhook (schema, timeouts, retries).
    pub webhook: EventGridTarget,
    /// Run the validation handshake first.
    pub handshake: bool,
    /// The incoming call (caller, callee, headers, audio).
    pub call: IncomingCallSpec,
    /// Extra deliveries of the same IncomingCall event after the first success.
    pub duplicates: u32,
    /// How long the gateway has to answer (or reject / redirect).
    pub answer_timeout: Duration,
    /// How long the gateway has to get media streaming (its WebSocket open) after the answer.
    pub media_timeout: Duration,
    /// The far end hangs up this long after media started (after the answer when there is no
    /// media).
    pub hangup_after: Duration,
    /// The gateway should answer with `audioChannelType: unmixed`.
    pub expect_unmixed: bool,
    /// The gateway should answer with `enableBidirectional: true`.
    pub expect_bidirectional: bool,
    /// Write what the gateway sent back here (16-bit mono WAV at the call's rate).
    pub outbound_wav: Option<PathBuf>,
}

impl CallScenario {
    /// Defaults: handshake on, a PSTN call, no duplicates, 15 s to answer, 10 s to start media,
    /// hang up after 5 s.
    pub fn new(webhook: EventGridTarget) -> Self {
        CallScenario {
            webhook,
            handshake: true,
            call: IncomingCallSpec::default(),
            duplicates: 0,
            answer_timeout: Duration::from_secs(15),
            media_timeout: Duration::from_secs(10),
            hangup_after: Duration::from_secs(5),
            expect_unmixed: false,
            expect_bidirectional: false,
            outbound_wav: None,
        }
    }
}

/// The `mediaStreamingOptions` of the answer, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct MediaOptionsSummary {
    /// `transportUrl`.
    pub transport_url: Option<String>,
    /// `mixed` / `unmixed`.
    pub audio_channel_type: String,
    /// `pcm16KMono` / `pcm24KMono` (`None`: the default, 16 kHz).
    pub audio_format: Option<String>,
    /// `startMediaStreaming`.
    pub start_media_streaming: Option<bool>,
    /// `enableBidirectional`.
    pub enable_bidirectional: Option<bool>,
    /// `enableDtmfTones`.
    pub enable_dtmf_tones: Option<bool>,
}

impl From<&MediaStreamingOptions> for MediaOptionsSummary {
    fn from(m: &MediaStreamingOptions) -> Self {
        MediaOptionsSummary {
            transport_url: m.transport_url.clone(),
            audio_channel_type: m.audio_channel_type.as_str().to_owned(),
            audio_format: m.audio_format.as_ref().map(|f| f.as_str().to_owned()),
            start_media_streaming: m.start_media_streaming,
            enable_bidirectional: m.enable_bidirectional,
            enable_dtmf_tones: m.enable_dtmf_tones,
        }
    }
}

/// What the scenario saw.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The fake ACS's endpoint.
    pub fake_acs: String,
    /// The webhook URL.
    pub webhook: String,
    /// The validation handshake, if run.
    pub handshake: Option<HandshakeReport>,
    /// The IncomingCall delivery.
    pub delivery: Option<DeliveryReport>,
    /// `answered`, `rejected (reason)`, `redirected to …`, or `no answer`.
    pub outcome: String,
    /// The call, when answered.
    pub call_connection_id: Option<String>,
    /// Answer requests the fake got for this call's context (more than one: the gateway
    /// answered a duplicate delivery or retried without repeatability).
    pub answer_requests: usize,
    /// IncomingCall sent → answer received by the fake.
    pub answer_latency_ms: Option<f64>,
    /// The answer's HMAC signature verified.
    pub answer_signature_valid: Option<bool>,
    /// The answer's `Repeatability-Request-ID`.
    pub answer_repeatability_request_id: Option<String>,
    /// The answer's media options.
    pub media_options: Option<MediaOptionsSummary>,
    /// Answer → media WebSocket open.
    pub media_start_ms: Option<f64>,
    /// The media stream (frames sent, outbound audio and its analysis).
    pub media: Option<MediaInfo>,
    /// Callbacks the fake posted, in order, with the gateway's status.
    pub callbacks: Vec<PostedCallback>,
    /// How the call ended.
    pub ended: Option<CallEnd>,
    /// Where the outbound audio was written.
    pub outbound_wav: Option<PathBuf>,
    /// Wall-clock duration of the scenario.
    pub duration_ms: f64,
    /// What went wrong (empty when all is well).
    pub problems: Vec<String>,
    /// No problems.
    pub ok: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the scenario against the gateway behind `s.webhook`, with `acs` as its ACS (the gateway
/// must be configured with `acs.connection_string()` and, for JWT checks, its JWKS and
/// audience).
pub async fn run_call(acs: &FakeAcsHandle, s: &CallScenario) -> Result<CallReport, SimError> {
    let t0 = Instant::now();
    let mut r = CallReport {
        fake_acs: acs.base_url.clone(),
        webhook: s.webhook.url.clone(),
        handshake: None,
        delivery: None,
        outcome: "no answer".into(),
        call_connection_id: None,
        answer_requests: 0,
        answer_latency_ms: None,
        answer_signature_valid: None,
        answer_repeatability_request_id: None,
        media_options: None,
        media_start_ms: None,
        media: None,
        callbacks: Vec::new(),
        ended: None,
        outbound_wav: None,
        duration_ms: 0.0,
        problems: Vec::new(),
        ok: false,
    };
    if s.handshake {
        let h = validate_subscription(&s.webhook).await?;
        if !h.ok {
            r.problems
                .push(format!("validation handshake failed: {}", h.detail));
        }
        r.handshake = Some(h);
    }

    let data = acs.incoming_call(s.call.clone());
    let context = data.incoming_call_context.clone();
    let sent_at_ms = acs.elapsed_ms();
    let delivery = deliver_incoming_call(&s.webhook, &acs.topic(), &data, s.duplicates).await?;
    let delivered = delivery.delivered;
    r.delivery = Some(delivery);
    if !delivered {
        r.problems
            .push("the IncomingCall event was not accepted by the webhook".into());
        return Ok(finish(r, t0));
    }

    // The answer (or a reject / redirect).
    let decided = acs
        .wait_for(s.answer_timeout, |h| match h.context_outcome(&context) {
            Some(ContextOutcome::Pending) | None => None,
            Some(o) => Some(o),
        })
        .await;
    let call = match decided {
        None => {
            r.problems.push(format!(
                "the gateway did not answer within {:?}",
                s.answer_timeout
            ));
            if let Some(last) = acs
                .requests_of("answer_call")
                .into_iter()
                .rev()
                .find(|q| q.body["incomingCallContext"] == context.as_str())
            {
                r.problems.push(format!(
                    "its last answer attempt got {:?} (signature {:?})",
                    last.status, last.signature
                ));
            }
            return Ok(finish(r, t0));
        }
        Some(ContextOutcome::Rejected(reason)) => {
            r.outcome = format!("rejected ({})", reason.as_deref().unwrap_or("no reason"));
            r.problems.push("the gateway rejected the call".into());
            return Ok(finish(r, t0));
        }
        Some(ContextOutcome::Redirected(to)) => {
            r.outcome = format!("redirected to {to}");
            r.problems.push("the gateway redirected the call".into());
            return Ok(finish(r, t0));
        }
        Some(ContextOutcome::Pending) => unreachable!("filtered above"),
        Some(ContextOutcome::Answered(id)) => acs
            .call(&id)
            .ok_or_else(|| SimError::Scenario(format!("answered call {id} is unknown")))?,
    };
    r.outcome = "answered".into();
    r.call_connection_id = Some(call.call_connection_id.clone());
    r.answer_latency_ms = Some(call.answered_at_ms.saturating_sub(sent_at_ms) as f64);
    // The context is claimed inside the request; its log entry gets its status just after.
    let answers_of = |h: &FakeAcsHandle| {
        h.requests_of("answer_call")
            .into_iter()
            .filter(|q| q.body["incomingCallContext"] == context.as_str())
            .collect::<Vec<_>>()
    };
    let answered = acs
        .wait_for(Duration::from_secs(5), |h| {
            answers_of(h).into_iter().find(|q| q.status == Some(200))
        })
        .await;
    r.answer_requests = answers_of(acs).len();
    match answered {
        Some(a) => {
            r.answer_signature_valid = Some(a.signature == SignatureCheck::Valid);
            r.answer_repeatability_request_id = a.repeatability_request_id.clone();
            if a.repeatability_request_id.is_none() {
                r.problems
                    .push("the answer carried no Repeatability-Request-ID".into());
            }
        }
        None => r
            .problems
            .push("the successful answer request is missing from the log".into()),
    }
    check_options(&call, s, &mut r);

    let id = call.call_connection_id.clone();
    if call.media_streaming_options.is_some() {
        let media_up = acs
            .wait_for(s.media_timeout, |h| {
                h.call(&id).filter(|c| {
                    c.media.connections > 0 || c.media.connect_failures > 0 || c.ended.is_some()
                })
            })
            .await;
        match media_up {
            Some(c) if c.media.connections > 0 => {
                r.media_start_ms = c
                    .media
                    .first_connected_at_ms
                    .map(|t| t.saturating_sub(c.answered_at_ms) as f64);
            }
            Some(c) if c.ended.is_some() => r
                .problems
                .push("the call ended before media started".into()),
            Some(c) => r.problems.push(format!(
                "the media WebSocket could not be opened: {}",
                c.media.last_end.unwrap_or_default()
            )),
            None => r.problems.push(format!(
                "media streaming did not start within {:?}",
                s.media_timeout
            )),
        }
    }
    let hang_at = tokio::time::Instant::now() + s.hangup_after;

    // Let the call run (the gateway may hang up first), then hang up from the far end.
    let ended_early = acs
        .wait_for(
            hang_at.saturating_duration_since(tokio::time::Instant::now()),
            |h| h.call(&id).filter(|c| c.ended.is_some()),
        )
        .await;
    if ended_early.is_none() {
        acs.hang_up(&id);
    }
    let last = acs
        .wait_for(Duration::from_secs(10), |h| {
            h.call(&id).filter(|c| c.ended.is_some())
        })
        .await
        .or_else(|| acs.call(&id))
        .ok_or_else(|| SimError::Scenario(format!("call {id} vanished")))?;
    if last.ended.is_none() {
        r.problems
            .push("the call did not end within 10 s of the hang-up".into());
    }
    for c in &last.callbacks {
        if !c.delivered() {
            r.problems.push(format!(
                "callback {} was not accepted: {}",
                c.event_type,
                c.status
                    .map_or_else(|| c.error.clone().unwrap_or_default(), |s| s.to_string())
            ));
        }
    }
    if last.media_streaming_options.is_some() && last.media.audio_frames_sent == 0 {
        r.problems.push("no audio was streamed".into());
    }
    let pcm = acs.outbound_pcm(&id).unwrap_or_default();
    if s.expect_bidirectional && last.media.outbound.audio_frames == 0 {
        r.problems
            .push("the gateway sent no audio back on the media socket".into());
    }
    if !pcm.is_empty() || s.outbound_wav.is_some() {
        let path = s
            .outbound_wav
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("outbound-{id}.wav")));
        write_wav(&path, &pcm, last.media.sample_rate.max(16_000))?;
        r.outbound_wav = Some(path);
    }
    r.ended = last.ended;
    r.callbacks = last.callbacks.clone();
    r.media = Some(last.media);
    Ok(finish(r, t0))
}

fn check_options(call: &CallInfo, s: &CallScenario, r: &mut CallReport) {
    match &call.media_streaming_options {
        None => r
            .problems
            .push("the answer has no mediaStreamingOptions".into()),
        Some(m) => {
            if s.expect_unmixed && m.audio_channel_type != MediaStreamingAudioChannelType::Unmixed {
                r.problems.push(format!(
                    "expected audioChannelType unmixed, the gateway asked for {}",
                    m.audio_channel_type.as_str()
                ));
            }
            if s.expect_bidirectional && m.enable_bidirectional != Some(true) {
                r.problems
                    .push("expected enableBidirectional, the gateway did not ask for it".into());
            }
            r.media_options = Some(m.into());
        }
    }
    if r.answer_signature_valid == Some(false) {
        r.problems.push("the answer's signature was invalid".into());
    }
}

fn finish(mut r: CallReport, t0: Instant) -> CallReport {
    r.duration_ms = ms(t0.elapsed());
    r.ok = r.problems.is_empty();
    r
}

/// Writes 16-bit mono PCM as a WAV file.
pub fn write_wav(path: &Path, pcm: &[i16], sample_rate: u32) -> Result<(), SimError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let io = |e: hound::Error| SimError::Write {
        path: path.to_path_buf(),
        source: match e {
            hound::Error::IoError(io) => io,
            other => std::io::Error::other(other.to_string()),
        },
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
    for &s in pcm {
        w.write_sample(s).map_err(io)?;
    }
    w.finalize().map_err(io)
}

/// The human summary of a report.
pub fn summary(r: &CallReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "acs-sim call: {} → {}", r.fake_acs, r.webhook);
    if let Some(h) = &r.handshake {
        let _ = writeln!(
            s,
            "  handshake   {} ({:?}): {}",
            if h.ok { "ok" } else { "FAILED" },
            h.schema,
            h.detail
        );
    }
    if let Some(d) = &r.delivery {
        let statuses: Vec<String> = d
            .attempts
            .iter()
            .map(|a| {
                let st = a
                    .status
                    .map_or_else(|| "error".to_owned(), |s| s.to_string());
                if a.duplicate {
                    format!("{st} (duplicate)")
                } else {
                    st
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  IncomingCall event {}: {}",
            d.event_id,
            statuses.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "  outcome     {}{}",
        r.outcome,
        r.call_connection_id
            .as_deref()
            .map(|id| format!(" — callConnectionId {id}"))
            .unwrap_or_default()
    );
    if let Some(l) = r.answer_latency_ms {
        let _ = writeln!(
            s,
            "  answer      {l:.0} ms after the event; signature {}; Repeatability-Request-ID {}; {} answer request(s)",
            match r.answer_signature_valid {
                Some(true) => "valid",
                Some(false) => "INVALID",
                None => "?",
            },
            r.answer_repeatability_request_id.as_deref().unwrap_or("none"),
            r.answer_requests
        );
    }
    if let Some(m) = &r.media_options {
        let flag = |v: Option<bool>| v.map_or("unset", |b| if b { "true" } else { "false" });
        let _ = writeln!(
            s,
            "  media opts  {} {}, startMediaStreaming {}, enableBidirectional {} → {}",
            m.audio_channel_type,
            m.audio_format.as_deref().unwrap_or("pcm16KMono"),
            flag(m.start_media_streaming),
            flag(m.enable_bidirectional),
            m.transport_url.as_deref().unwrap_or("-")
        );
    }
    if let Some(m) = &r.media {
        let _ = writeln!(
            s,
            "  media       {} connection(s), {} stream(s) at {} Hz, {} AudioData frames sent{}; {}",
            m.connections,
            m.streams,
            m.sample_rate,
            m.audio_frames_sent,
            r.media_start_ms
                .map(|t| format!(", open {t:.0} ms after the answer"))
                .unwrap_or_default(),
            m.last_end.as_deref().unwrap_or("-")
        );
        let o = &m.outbound;
        let _ = writeln!(
            s,
            "  outbound    {} AudioData ({:.0} ms of audio over {:.0} ms), {} StopAudio, {} other, {} invalid",
            o.audio_frames, o.audio_ms, o.span_ms, o.stop_audio, o.other, o.invalid
        );
        if let Some(iv) = &o.intervals {
            let _ = writeln!(
                s,
                "  pacing      interval ms: min {:.1} p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} (mean {:.1}, {} intervals)",
                iv.min_ms, iv.p50_ms, iv.p90_ms, iv.p99_ms, iv.max_ms, iv.mean_ms, iv.count
            );
        }
        if !o.stop_audio_latency_ms.is_empty() {
            let ms = |v: &Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0} ms"));
            let l: Vec<String> = o
                .stop_audio_latency_ms
                .iter()
                .zip(&o.stop_audio_stream_latency_ms)
                .map(|(w, st)| format!("{} ({} of stream)", ms(w), ms(st)))
                .collect();
            let _ = writeln!(s, "  StopAudio   after speech onset: {}", l.join(", "));
        }
    }
    if let Some(p) = &r.outbound_wav {
        let _ = writeln!(s, "  outbound wav {}", p.display());
    }
    for c in &r.callbacks {
        let _ = writeln!(
            s,
            "  callback    {:<48} {}",
            c.event_type,
            c.status.map_or_else(
                || format!("failed: {}", c.error.as_deref().unwrap_or("")),
                |st| st.to_string()
            )
        );
    }
    if let Some(e) = r.ended {
        let _ = writeln!(s, "  ended       {e:?}");
    }
    for p in &r.problems {
        let _ = writeln!(s, "  PROBLEM     {p}");
    }
    let _ = writeln!(
        s,
        "  result      {} in {:.1} s",
        if r.ok { "ok" } else { "FAILED" },
        r.duration_ms / 1e3
    );
    s
}
