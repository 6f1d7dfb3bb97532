//! Operator playback: the routes that play audio into a call's bidirectional media socket and
//! report how it went, and the [`Player`] seam through which they reach the media connections
//! (the ingress's playback hub implements it; `app` attaches it with
//! [`ControlPlane::set_player`](super::ControlPlane::set_player)).
//!
//! | route | does |
//! |---|---|
//! | `POST /api/calls/{id}/play` | body `audio/wav`, `audio/pcm;rate=N` (PCM16LE mono) or `application/json` `{"file":"<relative path>"}` (under `control.playback_dir`) → 202 `{"callId","playbackId","state":"queued",…}` |
//! | `POST /api/calls/{id}/stop-audio` | `StopAudio` on the socket; queued and playing playbacks are cancelled → 200 `{"callId","cancelled":[ids]}` |
//! | `GET /api/calls/{id}/playbacks/{pid}` | the playback's [`PlaybackRecord`] |
//! | `GET /api/calls/{id}/playbacks` | the call's last [`MAX_RECORDS`] playbacks |
//!
//! Refusals: unknown call 404; call ended, without a media connection, or not bidirectional
//! 409; call's playback queue full 429; bad WAV / PCM / file 400; unsupported Content-Type 415;
//! body over [`MAX_PLAY_BYTES`] or audio over
//! [`MAX_PLAY_SECONDS`](play_audio::MAX_PLAY_SECONDS) 413; file playback without
//! `control.playback_dir` 403.

use super::api::{ApiError, Res};
use super::http::{header_str, read_body};
use super::plane::ControlPlane;
use super::play_audio::{self, AudioError, Pcm, MAX_PLAY_BYTES};
use super::registry::CallRecord;
use super::{json_response, HttpResponse};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// Most playbacks a call keeps a record of (older finished ones are forgotten).
pub(crate) const MAX_RECORDS: usize = 32;
/// Most playbacks queued or playing per call; more is refused with 429.
pub(crate) const MAX_QUEUED: usize = 8;

/// Where a playback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayState {
    /// Waiting for the playbacks before it.
    Queued,
    /// Frames are being sent (or the last one was sent and ACS has not confirmed it yet).
    Playing,
    /// Played to the end.
    Completed,
    /// Stopped before the end.
    Cancelled,
}

/// One playback, as `GET /api/calls/{id}/playbacks/{pid}` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybackRecord {
    /// Playback id (also the mark id on the wire).
    pub id: String,
    /// State.
    pub state: PlayState,
    /// Samples to play (at `sampleRate`).
    pub samples: u64,
    /// The call's rate.
    pub sample_rate: u32,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Frames sent so far.
    pub frames_sent: u64,
    /// Samples sent so far.
    pub samples_sent: u64,
    /// Queued (RFC 3339).
    pub queued_at: String,
    /// First frame sent.
    pub started_at: Option<String>,
    /// Last frame (with the mark) sent.
    pub last_frame_at: Option<String>,
    /// Completed or cancelled.
    pub ended_at: Option<String>,
    /// Who ended it: `acs` (MarkData) or `gateway` (its own queue).
    pub source: Option<&'static str>,
}

/// Why a [`Player`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayError {
    /// The call has no bidirectional media connection.
    NotBidirectional,
    /// [`MAX_QUEUED`] playbacks are already waiting.
    QueueFull,
}

/// The media side of operator playback. `keys` name the call: its gateway id and, when known,
/// its `callConnectionId` (a media connection is found by either).
pub(crate) trait Player: std::fmt::Debug + Send + Sync + 'static {
    /// The call's negotiated rate; `None` when it has no bidirectional media connection.
    fn rate(&self, keys: &[&str]) -> Option<u32>;
    /// Queues `samples` (at [`Player::rate`]) as a new playback.
    fn play(&self, keys: &[&str], samples: Vec<i16>) -> Result<PlaybackRecord, PlayError>;
    /// Sends `StopAudio`; returns the playbacks it cancelled.
    fn stop(&self, keys: &[&str]) -> Result<Vec<PlaybackRecord>, PlayError>;
    /// The call's playback records, oldest first (empty when it has no media connection).
    fn playbacks(&self, keys: &[&str]) -> Vec<PlaybackRecord>;
}

fn keys(r: &CallRecord) -> Vec<&str> {
    let mut k = vec![r.id.as_str()];
    if let Some(c) = &r.call_connection_id {
        k.push(c);
    }
    k
}

fn no_socket(r: &CallRecord) -> ApiError {
    ApiError::status(
        StatusCode::CONFLICT,
        format!(
            "call {} has no bidirectional media connection (answered without enableBidirectional, or media not connected)",
            r.id
        ),
        "not_bidirectional",
    )
}

/// The call, refused when it ended; and the player.
fn call_and_player(cp: &ControlPlane, id: &str) -> Res<(CallRecord, Arc<dyn Player>)> {
    let r = cp.registry.get(id).ok_or_else(|| {
        ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no call {id}"),
            "unknown_call",
        )
    })?;
    if r.state.is_terminal() {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            format!("call {} has ended ({:?})", r.id, r.state),
            "call_ended",
        ));
    }
    let player = cp.player().ok_or_else(|| no_socket(&r))?;
    Ok((r, player))
}

fn audio_error(e: AudioError) -> ApiError {
    match e {
        AudioError::UnsupportedType(_) => {
            ApiError::status(StatusCode::UNSUPPORTED_MEDIA_TYPE, e, "unsupported_type")
        }
        AudioError::TooLarge(_) => ApiError::status(StatusCode::PAYLOAD_TOO_LARGE, e, "too_large"),
        AudioError::NoPlaybackDir => {
            ApiError::status(StatusCode::FORBIDDEN, e, "playback_dir_unset")
        }
        AudioError::BadFile(_) => ApiError::field("file", e),
        AudioError::Resample(_) => {
            ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, e, "resample")
        }
        _ => ApiError::field("body", e),
    }
}

/// The `rate` parameter of a Content-Type.
fn rate_param(content_type: &str) -> Option<u32> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("rate")
            .then(|| v.trim().parse().ok())?
    })
}

/// Decodes the body by its Content-Type (off the async threads: files, WAV parsing, rubato).
fn decode(
    content_type: &str,
    body: &[u8],
    playback_dir: Option<&std::path::Path>,
    to: u32,
) -> Result<Vec<i16>, AudioError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let pcm: Pcm = match mime.as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => {
            play_audio::decode_wav(body)?
        }
        "audio/pcm" => play_audio::decode_pcm(body, rate_param(content_type))?,
        "application/json" => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| AudioError::BadFile(format!("the body is not JSON: {e}")))?;
            let Some(rel) = v.get("file").and_then(Value::as_str) else {
                return Err(AudioError::BadFile(
                    "the JSON body needs {\"file\":\"<path under control.playback_dir>\"}".into(),
                ));
            };
            let path = play_audio::resolve_file(playback_dir, rel)?;
            play_audio::read_wav_file(&path)?
        }
        _ => return Err(AudioError::UnsupportedType(content_type.to_owned())),
    };
    play_audio::resample(pcm, to)
}

/// `POST /api/calls/{id}/play` → 202 with the new playback.
pub(crate) async fn play(
    cp: &Arc<ControlPlane>,
    id: &str,
    content_type: &str,
    body: bytes::Bytes,
) -> Res<(StatusCode, Value)> {
    let (r, player) = call_and_player(cp, id)?;
    let k = keys(&r);
    let rate = player.rate(&k).ok_or_else(|| no_socket(&r))?;
    let (ct, dir) = (content_type.to_owned(), cp.playback_dir.clone());
    let samples = tokio::task::spawn_blocking(move || decode(&ct, &body, dir.as_deref(), rate))
        .await
        .map_err(|e| ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, e, "decode_panicked"))?
        .map_err(audio_error)?;
    let rec = player.play(&k, samples).map_err(|e| match e {
        PlayError::NotBidirectional => no_socket(&r),
        PlayError::QueueFull => ApiError::status(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "call {} already has {MAX_QUEUED} playbacks queued; stop-audio or wait",
                r.id
            ),
            "queue_full",
        ),
    })?;
    tracing::info!(call = %r.id, playback = %rec.id, ms = rec.duration_ms, "operator: playback queued");
    Ok((
        StatusCode::ACCEPTED,
        json!({"callId": r.id, "playbackId": rec.id, "playback": rec}),
    ))
}

/// `POST /api/calls/{id}/stop-audio`.
pub(crate) fn stop(cp: &Arc<ControlPlane>, id: &str) -> Res<Value> {
    let (r, player) = call_and_player(cp, id)?;
    let cancelled = player.stop(&keys(&r)).map_err(|_| no_socket(&r))?;
    let ids: Vec<&str> = cancelled.iter().map(|p| p.id.as_str()).collect();
    tracing::info!(call = %r.id, cancelled = ?ids, "operator: stop-audio");
    Ok(json!({"callId": r.id, "operation": "stop_audio", "cancelled": ids}))
}

/// `GET /api/calls/{id}/playbacks[/{pid}]`.
pub(crate) fn status(cp: &Arc<ControlPlane>, id: &str, pid: Option<&str>) -> Res<Value> {
    let r = cp.registry.get(id).ok_or_else(|| {
        ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no call {id}"),
            "unknown_call",
        )
    })?;
    let list = cp
        .player()
        .map(|p| p.playbacks(&keys(&r)))
        .unwrap_or_default();
    match pid {
        None => Ok(json!({"callId": r.id, "playbacks": list})),
        Some(pid) => list
            .into_iter()
            .find(|p| p.id == pid)
            .map(|p| json!(p))
            .ok_or_else(|| {
                ApiError::status(
                    StatusCode::NOT_FOUND,
                    format!("call {} has no playback {pid} (the last {MAX_RECORDS} are kept while its media connection lasts)", r.id),
                    "unknown_playback",
                )
            }),
    }
}

/// Cluster mode: forwards a playback route of a call whose media socket another replica holds
/// to that replica (request-reply over the cluster link); gives the request back otherwise.
async fn route_to_owner<B>(
    cp: &Arc<ControlPlane>,
    req: Request<B>,
    segs: &[&str],
) -> Result<HttpResponse, Request<B>>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let id = match segs {
        ["calls", id, "play" | "stop-audio" | "playbacks"] | ["calls", id, "playbacks", _] => *id,
        _ => return Err(req),
    };
    if cp.link().is_none() || req.headers().contains_key(super::shared::ROUTED_HEADER) {
        return Err(req);
    }
    if let Err(e) = cp.refresh(id).await {
        return Ok(cp.nats_unreachable("operator", &e));
    }
    let Some(owner) = cp.registry.get(id).and_then(|r| cp.media_owner(&r)) else {
        return Err(req);
    };
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let content_type = header_str(req.headers(), "content-type")
        .unwrap_or("")
        .to_owned();
    let body = match read_body(req.into_body(), MAX_PLAY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            cp.metrics.control.bad_request("operator", e.reason());
            return Ok(e.response());
        }
    };
    let fwd = super::shared::Forwarded {
        method,
        path,
        content_type,
        body,
    };
    Ok(cp.forward_media(&owner, fwd).await)
}

/// Serves the playback routes; gives the request back when it is not one of them. Runs after
/// the operator API's key check.
pub(crate) async fn route<B>(
    cp: &Arc<ControlPlane>,
    req: Request<B>,
) -> Result<HttpResponse, Request<B>>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path
        .trim_start_matches("/api/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let method = req.method().clone();
    let req = match route_to_owner(cp, req, &segs).await {
        Ok(forwarded) => return Ok(forwarded),
        Err(req) => req,
    };
    let res = match (&method, segs.as_slice()) {
        (&Method::POST, ["calls", id, "play"]) => {
            let ct = header_str(req.headers(), "content-type")
                .unwrap_or("")
                .to_owned();
            match read_body(req.into_body(), MAX_PLAY_BYTES).await {
                Ok(body) => play(cp, id, &ct, body).await,
                Err(e) => {
                    cp.metrics.control.bad_request("operator", e.reason());
                    return Ok(e.response());
                }
            }
        }
        (&Method::POST, ["calls", id, "stop-audio"]) => stop(cp, id).map(|v| (StatusCode::OK, v)),
        (&Method::GET, ["calls", id, "playbacks"]) => {
            status(cp, id, None).map(|v| (StatusCode::OK, v))
        }
        (&Method::GET, ["calls", id, "playbacks", pid]) => {
            status(cp, id, Some(pid)).map(|v| (StatusCode::OK, v))
        }
        (_, ["calls", _, "play" | "stop-audio" | "playbacks"] | ["calls", _, "playbacks", _]) => {
            Err(ApiError::status(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
                "method_not_allowed",
            ))
        }
        _ => return Err(req),
    };
    Ok(match res {
        Ok((status, v)) => json_response(status, &v),
        Err(e) => e.response(cp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_parameter_and_content_types() {
        assert_eq!(rate_param("audio/pcm;rate=16000"), Some(16_000));
        assert_eq!(rate_param("audio/pcm; charset=x; RATE = 8000"), Some(8_000));
        assert_eq!(rate_param("audio/pcm"), None);
        assert!(matches!(
            decode("text/plain", b"x", None, 16_000),
            Err(AudioError::UnsupportedType(_))
        ));
        assert_eq!(
            decode("application/json", br#"{"file":"a.wav"}"#, None, 16_000),
            Err(AudioError::NoPlaybackDir)
        );
        assert_eq!(
            decode(
                "audio/pcm;rate=8000",
                &[1, 0, 1, 0, 1, 0, 1, 0],
                None,
                8_000
            )
            .unwrap(),
            vec![1, 1, 1, 1]
        );
        assert_eq!(
            audio_error(AudioError::TooLarge("x".into())).status_code(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            audio_error(AudioError::NoPlaybackDir).status_code(),
            StatusCode::FORBIDDEN
        );
    }
}
