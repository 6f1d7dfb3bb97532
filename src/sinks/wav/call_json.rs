//! `call.json` of the WAV sink: the document describing a call folder (ids — label,
//! callConnectionId, correlationId and, for a call the control plane admitted, the gateway call
//! id, serverCallId, from and to —, times, per-stream file (the outbound `bot` track among them,
//! `direction` = `outbound`), samples, statistics, speech segments,
//! DTMF, transcripts, marks), written through a temporary file and a rename, kept in memory and
//! retried on each flush while it cannot be written (a full disk), and given up (logged) only
//! when the sink shuts down.

use super::*;

impl WavSink {
    /// Writes `call.json` of `call`. A failure is returned (counted) once until a write of the
    /// call succeeds again; the call stays dirty so the next flush tries again, and when `last`
    /// (the call ended) the document is kept in [`WavSink::pending_json`] instead.
    pub(super) fn write_call_json(&mut self, call: CallId, last: bool) -> Result<(), SinkError> {
        let Some(c) = self.calls.get(&call) else {
            return Ok(());
        };
        let mut streams = Vec::new();
        let mut rate = None;
        for sid in &c.streams {
            let Some(s) = self.streams.get(sid) else {
                continue;
            };
            rate.get_or_insert(s.info.sample_rate);
            let r = u64::from(s.info.sample_rate);
            let ms = |samples: u64| samples * 1000 / r;
            let stats = s.stats.unwrap_or_default();
            let samples_in_file = match &s.writer {
                Some(w) if w.failed() => w.samples_in_header(),
                Some(w) => w.samples(),
                None => s.samples_in_file,
            };
            streams.push(json!({
                "file": s.file.as_ref().map(|f| format!("{f}.wav")),
                "error": s.error,
                "kind": match s.info.kind {
                    StreamKind::Mixed => "mixed",
                    StreamKind::Participant => "participant",
                    StreamKind::Mix => "mix",
                    StreamKind::Outbound => "outbound",
                },
                "direction": if s.info.kind == StreamKind::Outbound { "outbound" } else { "inbound" },
                "participantRawId": s.info.participant.as_deref(),
                "sampleRate": s.info.sample_rate,
                "startTime": s.info.start_unix_ms.map(ts),
                "callOffsetMs": ms(s.info.call_offset),
                "samples": s.samples,
                "samplesInFile": samples_in_file,
                "durationMs": ms(s.samples),
                "frames": stats.frames,
                "gapsFilled": stats.gaps,
                "filledSamples": stats.filled_samples,
                "lateFrames": stats.late,
                "duplicateFrames": stats.duplicates,
                "timelineResyncs": stats.resyncs,
                "timestampOutliers": stats.outliers,
                "acsSilentFrames": stats.acs_silent_frames,
                "silenceRatio": s.stats.map(|st| (st.silence_ratio() * 1000.0).round() / 1000.0),
                "speechSegments": s.speech.iter().map(|(a, b)| json!({"startMs": ms(*a), "endMs": ms(*b)})).collect::<Vec<_>>(),
                "complete": s.closed,
                "outboundMixed": s.outbound_mixed,
            }));
        }
        let digits: String = c
            .dtmf
            .iter()
            .filter_map(|d| d.get("tone").and_then(|t| t.as_str()))
            .collect();
        let doc = json!({
            "call": {
                "label": c.info.label,
                "gatewayCallId": c.info.ids.gateway_call_id,
                "callConnectionId": c.info.call_connection_id,
                "serverCallId": c.info.ids.server_call_id,
                "correlationId": c.info.correlation_id,
                "from": c.info.ids.from,
                "to": c.info.ids.to,
                "openedAt": ts(c.info.opened_unix_ms),
                "endedAt": c.end.as_ref().map(|(t, _)| ts(*t)),
                "endReason": c.end.as_ref().map(|(_, r)| r.clone()),
            },
            "format": {"encoding": "pcm_s16le", "channels": 1, "sampleRate": rate},
            "streams": streams,
            "dtmfDigits": digits,
            "dtmf": c.dtmf,
            "transcripts": c.transcripts,
            "marks": c.marks,
        });
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| SinkError::Other(e.to_string()))?;
        let dir = c.dir.clone();
        let r = write_json_file(&dir, &bytes);
        let c = self.calls.get_mut(&call).expect("looked up above");
        match r {
            Ok(()) => {
                c.json_dirty = false;
                c.json_failing = false;
                Ok(())
            }
            Err(e) => {
                c.json_dirty = true;
                let counted = std::mem::replace(&mut c.json_failing, true);
                if !counted {
                    tracing::warn!(error = %e, dir = %dir.display(), "call.json not written; retried on every flush");
                }
                if last {
                    self.keep_pending(PendingJson { dir, bytes });
                }
                if counted {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
        }
    }

    pub(super) fn keep_pending(&mut self, p: PendingJson) {
        if self.pending_json.len() >= MAX_PENDING_JSON {
            if let Some(old) = self.pending_json.pop_front() {
                give_up_json(&old);
            }
        }
        self.pending_json.push_back(p);
    }

    /// Writes the kept `call.json` of ended calls, oldest first, stopping at the first failure
    /// (the disk is still full).
    pub(super) fn retry_pending_json(&mut self) {
        while let Some(p) = self.pending_json.front() {
            if write_json_file(&p.dir, &p.bytes).is_err() {
                return;
            }
            if let Some(hook) = &self.on_folder {
                hook(&p.dir);
            }
            self.pending_json.pop_front();
        }
    }
}

/// Writes `bytes` as `dir/call.json` through a temporary file and a rename; a failed write
/// removes the temporary file (a full disk leaves no stray, possibly empty, `.tmp`).
pub(super) fn write_json_file(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(CALL_JSON_TMP);
    let r = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, dir.join(CALL_JSON)));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Gives up a `call.json` that could never be written: logged, and the call's folder removed if
/// nothing is in it.
pub(super) fn give_up_json(p: &PendingJson) {
    tracing::error!(dir = %p.dir.display(), "call.json could not be written; given up");
    let _ = fs::remove_dir(&p.dir);
}
