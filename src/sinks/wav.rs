//! The WAV recorder sink: one file per participant and, optionally, one mixed file per call,
//! under `<dir>/<YYYY-MM-DD>/<call>/`, with a `call.json` beside them.
//!
//! Files are written by the bulk writer in [`writer`] (16-bit mono PCM, one buffer per file of
//! [`FILE_BUFFER_BYTES`]). Every file's header is brought up to date on each [`Sink::flush`] (at
//! least once a second), so a killed process leaves playable files; files are finalised when
//! their stream closes and at shutdown. Folder and file names come from [`super::names`]:
//! sanitised, bounded and distinct.
//!
//! `call.json` is written (atomically, via a temporary file and rename) on the first
//! [`Sink::flush`] after a stream of the call opens — so a killed process leaves it within one
//! header interval, like the WAV headers — and rewritten when the call ends or the sink shuts
//! down. A call that opens and ends between two flushes (connection churn) writes it once.
//! Nothing is fsynced: like the WAV headers, `call.json` is meant to survive the process, not
//! the machine, and an fsync per call would cost milliseconds on real disks.

use super::names::{sanitize, NameSet};
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamKind,
    StreamStats,
};
use crate::pipeline::sink::{QueueConfig, Sink, SinkError};
use crate::protocol::timestamp::format_timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod writer;

use writer::WavFile;

/// Name of the mixed file of a call.
pub const MIXED_NAME: &str = "mixed";

/// Write buffer of each open WAV file. 8 KiB is 256 ms of 16 kHz audio, so a file reaches the
/// disk in two or three `write`s per 500 ms header tick; 1000 open files hold 8 MiB of buffers.
pub const FILE_BUFFER_BYTES: usize = 8 * 1024;

/// Default audio frames each worker's queue holds: about 1.3 s of 1,000 real-time streams
/// split over the default workers, enough to ride out a burst of call set-ups (folder and file
/// creation) or a slow disk moment without dropping audio. A queued frame holds a ~2 KiB slot of
/// its call's frame pool, so a full queue pins at most 64 MiB.
pub const DEFAULT_QUEUE_FRAMES: usize = 32 * 1024;
/// Default worker threads; calls are sharded across them by id, so one slow file system call
/// holds up only the calls of its worker.
pub const DEFAULT_WORKERS: usize = 2;

/// `[[sinks]] type = "wav"`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WavSinkConfig {
    /// Root folder of the recordings.
    pub dir: PathBuf,
    /// Write one file per participant (unmixed calls).
    pub participants: bool,
    /// Write the call's mixed file (ACS's mixed stream, or the gateway's mix of an unmixed call).
    pub mixed: bool,
    /// Audio frames the sink's queue holds per worker.
    pub queue_frames: usize,
    /// Worker threads (calls are spread by id).
    pub workers: usize,
    /// How often headers are brought up to date (ms, ≤ 1000).
    pub header_interval_ms: u64,
}

impl Default for WavSinkConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./recordings"),
            participants: true,
            mixed: true,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            workers: DEFAULT_WORKERS,
            header_interval_ms: 500,
        }
    }
}

impl WavSinkConfig {
    /// Problems with the values.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.dir.as_os_str().is_empty() {
            p.push("dir must not be empty".into());
        }
        if !(16..=1_000_000).contains(&self.queue_frames) {
            p.push(format!(
                "queue_frames {} must be between 16 and 1000000",
                self.queue_frames
            ));
        }
        if !(1..=64).contains(&self.workers) {
            p.push(format!("workers {} must be between 1 and 64", self.workers));
        }
        if !(50..=1000).contains(&self.header_interval_ms) {
            p.push(format!(
                "header_interval_ms {} must be between 50 and 1000 (a killed process must leave playable files)",
                self.header_interval_ms
            ));
        }
        if !self.participants && !self.mixed {
            p.push("participants and mixed are both false: nothing would be recorded".into());
        }
        p
    }

    /// Queue settings.
    pub fn queue(&self) -> QueueConfig {
        QueueConfig {
            audio_capacity: self.queue_frames,
            flush_interval: Duration::from_millis(self.header_interval_ms),
            workers: self.workers,
            ..QueueConfig::default()
        }
    }
}

struct StreamRec {
    call: CallId,
    info: Arc<StreamInfo>,
    file: String,
    writer: Option<WavFile>,
    samples: u64,
    speech: Vec<(u64, u64)>,
    stats: Option<StreamStats>,
    closed: bool,
}

struct CallRec {
    info: Arc<CallInfo>,
    dir: PathBuf,
    names: NameSet,
    streams: Vec<StreamId>,
    dtmf: Vec<serde_json::Value>,
    transcripts: Vec<serde_json::Value>,
    marks: Vec<serde_json::Value>,
    end: Option<(i64, String)>,
    /// `call.json` is behind (a stream opened since it was written).
    json_dirty: bool,
}

/// The WAV recorder.
pub struct WavSink {
    cfg: WavSinkConfig,
    calls: HashMap<CallId, CallRec>,
    streams: HashMap<StreamId, StreamRec>,
    /// The date folder made last (name, path): calls of the same day skip `create_dir_all`.
    day: Option<(String, PathBuf)>,
    on_finalised: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl WavSink {
    /// A recorder writing under `cfg.dir`; `on_finalised` is called for every file finalised.
    pub fn new(cfg: WavSinkConfig, on_finalised: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        Self {
            cfg,
            calls: HashMap::new(),
            streams: HashMap::new(),
            day: None,
            on_finalised,
        }
    }

    fn wanted(&self, kind: StreamKind) -> bool {
        match kind {
            StreamKind::Participant => self.cfg.participants,
            StreamKind::Mixed | StreamKind::Mix => self.cfg.mixed,
        }
    }

    fn call_rec(&mut self, info: &Arc<CallInfo>) -> Result<&mut CallRec, SinkError> {
        if !self.calls.contains_key(&info.id) {
            let dir = self.make_call_dir(info)?;
            self.calls.insert(
                info.id,
                CallRec {
                    info: info.clone(),
                    dir,
                    names: NameSet::with_reserved(&[MIXED_NAME, "call"]),
                    streams: Vec::new(),
                    dtmf: Vec::new(),
                    transcripts: Vec::new(),
                    marks: Vec::new(),
                    end: None,
                    json_dirty: false,
                },
            );
        }
        Ok(self.calls.get_mut(&info.id).expect("inserted above"))
    }

    fn finalise_stream(&mut self, id: StreamId) -> Result<(), SinkError> {
        if let Some(rec) = self.streams.get_mut(&id) {
            rec.closed = true;
            if let Some(w) = rec.writer.take() {
                w.finalize()?;
                if let Some(f) = &self.on_finalised {
                    f();
                }
            }
        }
        Ok(())
    }

    fn write_call_json(&mut self, call: CallId) -> Result<(), SinkError> {
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
            streams.push(json!({
                "file": format!("{}.wav", s.file),
                "kind": match s.info.kind {
                    StreamKind::Mixed => "mixed",
                    StreamKind::Participant => "participant",
                    StreamKind::Mix => "mix",
                },
                "participantRawId": s.info.participant.as_deref(),
                "sampleRate": s.info.sample_rate,
                "startTime": s.info.start_unix_ms.map(ts),
                "callOffsetMs": ms(s.info.call_offset),
                "samples": s.samples,
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
                "callConnectionId": c.info.call_connection_id,
                "correlationId": c.info.correlation_id,
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
        let tmp = c.dir.join(".call.json.tmp");
        let r = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, c.dir.join("call.json")));
        if r.is_err() {
            // a full disk must not leave a stray (possibly empty) temporary file behind
            let _ = fs::remove_file(&tmp);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.json_dirty = false;
        }
        Ok(r?)
    }

    fn stream_mut(&mut self, id: StreamId) -> Result<&mut StreamRec, SinkError> {
        match self.streams.get_mut(&id) {
            Some(s) if !s.closed => Ok(s),
            _ => Err(SinkError::UnknownStream(id)),
        }
    }
}

fn ts(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    format_timestamp(ms, &mut s);
    s
}

impl WavSink {
    /// Creates `<root>/<date>/<call>[-n]/`, never reusing an existing folder. The date folder
    /// is made once per day (and again if it disappears, e.g. removed by a retention job).
    fn make_call_dir(&mut self, call: &CallInfo) -> Result<PathBuf, SinkError> {
        let date = chrono::DateTime::from_timestamp_millis(call.opened_unix_ms)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let day = match &self.day {
            Some((d, path)) if *d == date => path.clone(),
            _ => {
                let path = self.cfg.dir.join(&date);
                fs::create_dir_all(&path)?;
                self.day = Some((date, path.clone()));
                path
            }
        };
        let base = sanitize(&call.label);
        let mut remade_day = false;
        let mut n = 1u32;
        while n <= 10_000 {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let dir = day.join(name);
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !remade_day => {
                    fs::create_dir_all(&day)?;
                    remade_day = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(SinkError::Other(format!(
            "no free folder name for call {}",
            call.label
        )))
    }

    /// Forgets a call none of whose streams opened (its first open failed) and removes its
    /// folder if it is empty, so a full disk leaves no litter; the next open starts afresh.
    fn drop_empty_call(&mut self, call: CallId) {
        if self.calls.get(&call).is_some_and(|c| c.streams.is_empty()) {
            if let Some(c) = self.calls.remove(&call) {
                let _ = fs::remove_dir(&c.dir);
            }
        }
    }
}

impl Sink for WavSink {
    fn kind(&self) -> &'static str {
        "wav"
    }

    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        let wanted = self.wanted(stream.kind);
        let call = self.call_rec(&stream.call)?;
        let base = match (stream.kind, &stream.participant) {
            (StreamKind::Participant, Some(p)) => sanitize(p),
            _ => MIXED_NAME.to_string(),
        };
        let file = if base == MIXED_NAME && call.names.reserve("mixed#taken") {
            MIXED_NAME.to_string()
        } else {
            call.names.claim(&base)
        };
        let writer = if wanted {
            let path = call.dir.join(format!("{file}.wav"));
            match WavFile::create(&path, stream.sample_rate, FILE_BUFFER_BYTES) {
                Ok(w) => Some(w),
                Err(e) => {
                    // e.g. a full disk: no 0-byte or header-only file is left behind
                    let _ = fs::remove_file(&path);
                    let call_id = stream.call.id;
                    self.drop_empty_call(call_id);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        call.streams.push(stream.id);
        call.json_dirty |= wanted;
        let call_id = stream.call.id;
        self.streams.insert(
            stream.id,
            StreamRec {
                call: call_id,
                info: stream.clone(),
                file,
                writer,
                samples: 0,
                speech: Vec::new(),
                stats: None,
                closed: false,
            },
        );
        Ok(())
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let s = self.stream_mut(frame.stream)?;
        s.samples += frame.len() as u64;
        match s.writer.as_mut() {
            // a failed file was reported when it failed (and is again at finalisation)
            Some(w) if !w.failed() => Ok(w.write(frame.samples())?),
            _ => Ok(()),
        }
    }

    fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        let s = self.stream_mut(stream)?;
        s.samples += samples;
        match s.writer.as_mut() {
            Some(w) if !w.failed() => Ok(w.write_silence(samples)?),
            _ => Ok(()),
        }
    }

    fn event(&mut self, call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
        match event {
            CallEvent::SpeechEnded { stream, start, end } => {
                if let Some(s) = self.streams.get_mut(stream) {
                    s.speech.push((*start, *end));
                }
            }
            CallEvent::Dtmf {
                tone,
                participant,
                unix_ms,
            } => {
                self.call_rec(call)?.dtmf.push(json!({
                    "tone": tone, "participantRawId": participant, "time": unix_ms.map(ts),
                }));
            }
            CallEvent::Transcription(t) => {
                self.call_rec(call)?.transcripts.push(json!({
                    "text": t.text, "participantRawId": t.participant, "final": t.is_final,
                    "confidence": t.confidence, "offsetTicks": t.offset_ticks, "durationTicks": t.duration_ticks,
                }));
            }
            CallEvent::Mark { id, status } => {
                self.call_rec(call)?
                    .marks
                    .push(json!({"id": id, "status": status}));
            }
            _ => {}
        }
        Ok(())
    }

    fn close(
        &mut self,
        _call: CallId,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError> {
        let s = self.stream_mut(stream)?;
        s.stats = Some(*stats);
        self.finalise_stream(stream)
    }

    fn end_call(&mut self, call: &Arc<CallInfo>, reason: &EndReason) -> Result<(), SinkError> {
        let open: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.call == call.id && !s.closed)
            .map(|(id, _)| *id)
            .collect();
        let mut first_err = None;
        for id in open {
            if let Err(e) = self.finalise_stream(id) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(c) = self.calls.get_mut(&call.id) {
            c.end = Some((chrono::Utc::now().timestamp_millis(), reason.to_string()));
        }
        let json = self.write_call_json(call.id);
        // forget the call: its files are final
        if let Some(c) = self.calls.remove(&call.id) {
            for sid in c.streams {
                self.streams.remove(&sid);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => json,
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut first_err = None;
        for s in self.streams.values_mut() {
            if let Some(w) = s.writer.as_mut() {
                if let Err(e) = w.refresh() {
                    first_err.get_or_insert(SinkError::from(e));
                }
            }
        }
        let dirty: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.json_dirty)
            .map(|(id, _)| *id)
            .collect();
        for call in dirty {
            if let Err(e) = self.write_call_json(call) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.finalise_stream(id) {
                first_err.get_or_insert(e);
            }
        }
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for c in calls {
            if let Some(rec) = self.calls.get_mut(&c) {
                if rec.end.is_none() {
                    rec.end = Some((
                        chrono::Utc::now().timestamp_millis(),
                        EndReason::Shutdown.to_string(),
                    ));
                }
            }
            if let Err(e) = self.write_call_json(c) {
                first_err.get_or_insert(e);
            }
        }
        self.calls.clear();
        self.streams.clear();
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::contract;
    use std::path::Path;

    use super::writer::tests::read;

    /// A sink with the default settings recording under `dir`.
    fn sink_in(dir: &Path) -> WavSink {
        WavSink::new(
            WavSinkConfig {
                dir: dir.into(),
                ..Default::default()
            },
            None,
        )
    }

    fn find_call_dir(root: &Path, label: &str) -> PathBuf {
        let day = fs::read_dir(root).unwrap().next().unwrap().unwrap().path();
        day.join(sanitize(label))
    }

    #[test]
    fn passes_the_sink_contract_and_writes_what_it_was_given() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink_in(tmp.path());
        contract::run(&mut sink);
        let dir = find_call_dir(tmp.path(), "contract-call-42");
        let (spec, alice) = read(&dir.join(format!("{}.wav", sanitize("8:acs:alice"))));
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        assert_eq!(
            alice.len(),
            10 * 320 + 640,
            "10 frames + the 640-sample gap"
        );
        assert_eq!(alice[320 + 5], 5, "frame 1 sample 5 = 5*1");
        assert!(alice[3200..].iter().all(|&s| s == 0), "gap is silence");
        // the hostile id stayed inside the call folder
        let files: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            files
                .iter()
                .any(|f| f.starts_with("_._.._etc_passwd-") && f.ends_with(".wav")),
            "{files:?}"
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("call.json")).unwrap()).unwrap();
        assert_eq!(doc["dtmfDigits"], "5");
        assert_eq!(doc["streams"][0]["participantRawId"], "8:acs:alice");
        assert_eq!(doc["streams"][0]["samples"], 3840);
        assert_eq!(doc["streams"][1]["participantRawId"], "../../etc/passwd");
        assert_eq!(doc["call"]["endReason"], "peer closed");
        // the stream left open was finalised by shutdown, with a complete header
        let dir2 = find_call_dir(tmp.path(), "contract-call-43");
        let (spec, d) = read(&dir2.join("mixed.wav"));
        assert_eq!(spec.sample_rate, 24_000);
        assert_eq!(d, vec![100; 480]);
        let doc2: serde_json::Value =
            serde_json::from_slice(&fs::read(dir2.join("call.json")).unwrap()).unwrap();
        assert_eq!(doc2["call"]["endReason"], "gateway shutdown");
    }

    #[test]
    fn header_is_current_after_flush_so_a_killed_process_leaves_a_playable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink_in(tmp.path());
        let c = contract::call(7);
        sink.open(&contract::stream(&c, 1, None, 16_000)).unwrap();
        for i in 0..5u64 {
            sink.write(&AudioFrame::new(7, 1, i * 320, 16_000, &[i as i16; 320]))
                .unwrap();
        }
        sink.flush().unwrap();
        // read while the writer is still open (as after a kill -9)
        let dir = find_call_dir(tmp.path(), "contract-call-7");
        let (_, samples) = read(&dir.join("mixed.wav"));
        assert_eq!(samples.len(), 1600);
        assert_eq!(samples[1599], 4);
        std::mem::forget(sink); // no finalisation, like a killed process
    }

    #[test]
    fn same_call_label_twice_gets_a_second_folder_and_mixed_name_is_not_stolen() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink_in(tmp.path());
        let c1 = contract::call(1);
        let c2 = Arc::new(CallInfo {
            id: 2,
            ..(*c1).clone()
        });
        sink.open(&contract::stream(&c1, 1, Some("mixed"), 16_000))
            .unwrap();
        sink.open(&contract::stream(&c1, 2, None, 16_000)).unwrap();
        sink.open(&contract::stream(&c2, 3, None, 16_000)).unwrap();
        sink.shutdown().unwrap();
        let day = fs::read_dir(tmp.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let base = sanitize(&c1.label);
        assert!(day.join(&base).join("mixed.wav").exists());
        assert!(
            day.join(&base).join("mixed-2.wav").exists(),
            "participant named 'mixed' got its own file"
        );
        assert!(day.join(format!("{base}-2")).join("mixed.wav").exists());
    }

    #[test]
    fn call_json_appears_at_the_first_flush_and_a_removed_day_folder_is_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink_in(tmp.path());
        let c = contract::call(8);
        sink.open(&contract::stream(&c, 1, None, 16_000)).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-8");
        assert!(dir.join("mixed.wav").exists());
        assert!(!dir.join("call.json").exists(), "written on the flush tick");
        sink.flush().unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("call.json")).unwrap()).unwrap();
        assert_eq!(doc["streams"][0]["complete"], false);
        sink.end_call(&c, &EndReason::PeerClosed).unwrap();
        // a retention job removes the day folder; the next call makes it again
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
        let c = contract::call(9);
        sink.open(&contract::stream(&c, 2, None, 16_000)).unwrap();
        sink.end_call(&c, &EndReason::PeerClosed).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-9");
        assert_eq!(read(&dir.join("mixed.wav")).1.len(), 0);
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("call.json")).unwrap()).unwrap();
        assert_eq!(doc["call"]["endReason"], "peer closed");
        assert!(!dir.join(".call.json.tmp").exists());
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = WavSinkConfig {
            dir: PathBuf::new(),
            queue_frames: 1,
            workers: 0,
            header_interval_ms: 5000,
            participants: false,
            mixed: false,
        };
        assert_eq!(c.validate().len(), 5);
        assert!(WavSinkConfig::default().validate().is_empty());
    }
}
