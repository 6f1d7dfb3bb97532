//! The WAV recorder sink: one file per participant and, optionally, one mixed file per call,
//! under `<dir>/<YYYY-MM-DD>/<call>/`, with a `call.json` beside them.
//!
//! Files are written by the bulk writer in `writer` (16-bit mono PCM, one buffer per file of
//! `buffer_kib`, [`DEFAULT_BUFFER_KIB`]). Every file's header is brought up to date on each [`Sink::flush`] (at
//! least once a second), so a killed process leaves playable files; files are finalised when
//! their stream closes and at shutdown. Folder and file names come from `super::names`:
//! sanitised, bounded and distinct, never a Windows device name, and never one of the sink's own
//! names ([`OWN_NAMES`]): a participant called `mixed`, `CALL` or `con.txt` gets a hash-marked
//! name, the call's `mixed.wav` and `call.json` keep theirs, and ids differing only in case get
//! distinct files (compared case-insensitively). `call.json` maps each stream (participant id) to
//! its file.
//!
//! A bidirectional call's outbound audio (what the gateway sent to ACS:
//! [`StreamKind::Outbound`], see `pipeline::outbound`) is the `bot` track
//! ([`OUTBOUND_NAME`], `record_outbound`): it starts at the call's start, its silences are gaps
//! and a frame lost on the way (the queue was full) becomes silence, so it lines up sample for
//! sample with the inbound files. With `mix_outbound` it is also added into the call's mixed
//! file when the call ends (`mix_outbound`), so `mixed.wav` holds the whole conversation.
//!
//! A full disk (or any I/O error) never costs audio already on disk: a file whose write failed
//! stops taking audio and is finalised with a header stating the whole samples on disk; a file
//! that could not be created is removed (no 0-byte or header-less file is left); either way the
//! stream's entry in `call.json` carries the error (`error`, `file` null when there is no file,
//! `samplesInFile`), and the file is counted in `recordings_failed_total`. A `call.json` that
//! cannot be written is kept in memory and written again on each flush until it succeeds (so
//! once space is freed every call's `call.json` tells its story; a call whose `call.json` never
//! could be written loses it at shutdown, and its folder is removed if empty); the temporary
//! file of a failed write is always removed.
//!
//! `call.json` is written (atomically, via a temporary file and rename) on the first
//! [`Sink::flush`] after a stream of the call opens — so a killed process leaves it within one
//! header interval, like the WAV headers — and rewritten when the call ends or the sink shuts
//! down. A call that opens and ends between two flushes (connection churn) writes it once.
//! Nothing is fsynced: like the WAV headers, `call.json` is meant to survive the process, not
//! the machine, and an fsync per call would cost milliseconds on real disks.

use super::names::{sanitize, sanitize_avoiding, NameSet};
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamKind,
    StreamStats,
};
use crate::pipeline::sink::{QueueConfig, Sink, SinkError};
use crate::protocol::timestamp::format_timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod call_json;
use call_json::give_up_json;
pub(crate) mod mix_outbound;
pub(crate) mod writer;

use writer::WavFile;

/// Name of the mixed file of a call.
pub const MIXED_NAME: &str = "mixed";
/// Name of the outbound (bot) track of a call.
pub const OUTBOUND_NAME: &str = "bot";

/// The call's metadata file, written via [`CALL_JSON_TMP`] and a rename.
pub const CALL_JSON: &str = "call.json";
/// Temporary file of a `call.json` write (removed when the write fails).
pub const CALL_JSON_TMP: &str = ".call.json.tmp";

/// Stems of the files the sink writes in a call folder (`mixed.wav`, `mixed-2.wav`…,
/// `bot.wav`, `call.json`; the temporary file starts with a dot, which no sanitised name does): no
/// participant file is named with one of them, in any case, with or without an extension.
pub const OWN_NAMES: [&str; 3] = [MIXED_NAME, "call", OUTBOUND_NAME];

/// Ended calls whose `call.json` could not be written (a full disk) that are kept for retry; past
/// this the oldest is given up (logged).
pub const MAX_PENDING_JSON: usize = 1024;

/// Called with the `reason` (`disk_full`, `io_error`) when a recording could not be created or
/// stopped short.
pub type FailureHook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Called with a call's folder once it is final: the call ended (or the sink shut down), every
/// file of the call is finalised and its last `call.json` is on disk; nothing in the folder
/// changes after it (a `call.json` that could not be written at the end calls it when a later
/// flush writes it). The recordings uploader (the gateway's `upload` module) hangs here; the hook runs on
/// the sink's worker thread and must not block.
pub type FolderHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// The `reason` label of a failed recording.
pub fn failure_reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull => "disk_full",
        _ => "io_error",
    }
}

/// Default write buffer of each open WAV file, in KiB. 32 KiB is about a second of 16 kHz audio,
/// so with the one-second header tick ([`DEFAULT_HEADER_INTERVAL_MS`]) a file costs about three
/// `write`s a second (buffer, tick write-out, header) instead of eight with 8 KiB and 500 ms:
/// each `write` dirties the inode (ext4 journals the new mtime), and in paired runs at 400
/// real-time streams the writer threads' kernel time fell enough to take 0.44 µs off every frame
/// (README "Performance"). 1,000 open files hold 32 MiB of buffers.
pub const DEFAULT_BUFFER_KIB: usize = 32;
/// Default `header_interval_ms`: headers and buffers reach the file once a second (the most
/// audio a killed process loses; a graceful stop loses nothing).
pub const DEFAULT_HEADER_INTERVAL_MS: u64 = 1000;
/// Largest `buffer_kib`.
pub const MAX_BUFFER_KIB: usize = 1024;

/// Default audio frames each worker's queue holds: about 1.3 s of 1,000 real-time streams
/// split over the default workers, enough to ride out a burst of call set-ups (folder and file
/// creation) or a slow disk moment without dropping audio. A queued frame holds a slot of its
/// call's frame pool (~0.7 KiB at 16 kHz, ~1 KiB at 24 kHz), so a full queue pins 23-33 MiB.
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
    /// Write what a bidirectional call sent to ACS as the call's `bot.wav`.
    pub record_outbound: bool,
    /// Add the outbound track into the call's mixed file when the call ends.
    pub mix_outbound: bool,
    /// Audio frames the sink's queue holds per worker.
    pub queue_frames: usize,
    /// Worker threads (calls are spread by id).
    pub workers: usize,
    /// How often headers are brought up to date and buffers written out (ms, ≤ 1000): the most
    /// audio a killed process can lose.
    pub header_interval_ms: u64,
    /// Write buffer per open file (KiB, 4–1024).
    pub buffer_kib: usize,
}

impl Default for WavSinkConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./recordings"),
            participants: true,
            mixed: true,
            record_outbound: true,
            mix_outbound: false,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            workers: DEFAULT_WORKERS,
            header_interval_ms: DEFAULT_HEADER_INTERVAL_MS,
            buffer_kib: DEFAULT_BUFFER_KIB,
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
        if !(4..=MAX_BUFFER_KIB).contains(&self.buffer_kib) {
            p.push(format!(
                "buffer_kib {} must be between 4 and {MAX_BUFFER_KIB}",
                self.buffer_kib
            ));
        }
        if !self.participants && !self.mixed && !self.record_outbound {
            p.push(
                "participants, mixed and record_outbound are all false: nothing would be recorded"
                    .into(),
            );
        }
        if self.mix_outbound && !(self.mixed && self.record_outbound) {
            p.push("mix_outbound needs mixed and record_outbound".into());
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
    /// File name (without `.wav`), `None` when there is no file (not recorded, or not created).
    file: Option<String>,
    writer: Option<WavFile>,
    samples: u64,
    /// Samples the finalised file holds.
    samples_in_file: u64,
    /// The I/O error that stopped (or prevented) the file.
    error: Option<String>,
    /// Speech segments; for the outbound track, the segments audio was sent in.
    speech: Vec<(u64, u64)>,
    stats: Option<StreamStats>,
    closed: bool,
    /// A mixed file the outbound track was added into (`mix_outbound`).
    outbound_mixed: bool,
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
    /// `call.json` is behind (a stream opened since it was written, or the write failed).
    json_dirty: bool,
    /// The last `call.json` write failed (counted once until one succeeds).
    json_failing: bool,
    /// The call's first mixed stream has taken [`MIXED_NAME`].
    mixed_named: bool,
    /// The call's first outbound stream has taken [`OUTBOUND_NAME`].
    outbound_named: bool,
}

/// A `call.json` that could not be written yet.
struct PendingJson {
    dir: PathBuf,
    bytes: Vec<u8>,
}

/// The WAV recorder.
pub struct WavSink {
    cfg: WavSinkConfig,
    calls: HashMap<CallId, CallRec>,
    streams: HashMap<StreamId, StreamRec>,
    /// The date folder made last (name, path): calls of the same day skip `create_dir_all`.
    day: Option<(String, PathBuf)>,
    on_finalised: Option<Arc<dyn Fn() + Send + Sync>>,
    on_failed: Option<FailureHook>,
    on_folder: Option<FolderHook>,
    /// PCM bytes written to WAV files (`acs_gateway_recording_bytes_total`).
    bytes_written: Option<prometheus::IntCounter>,
    /// Bytes written since the counter was last brought up to date.
    bytes_pending: u64,
    /// Ended calls' `call.json` waiting for space, oldest first.
    pending_json: VecDeque<PendingJson>,
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
            on_failed: None,
            on_folder: None,
            bytes_written: None,
            bytes_pending: 0,
            pending_json: VecDeque::new(),
        }
    }

    /// Calls `hook` with the reason whenever a recording could not be created or stopped short
    /// (`acs_gateway_recordings_failed_total`).
    pub fn with_failure_hook(mut self, hook: FailureHook) -> Self {
        self.on_failed = Some(hook);
        self
    }

    /// Calls `hook` with each call folder once it is final (see [`FolderHook`]).
    pub fn with_folder_hook(mut self, hook: FolderHook) -> Self {
        self.on_folder = Some(hook);
        self
    }

    /// The call's folder is final when its last `call.json` is on disk.
    fn folder_final(&self, call: CallId) {
        if let (Some(hook), Some(c)) = (&self.on_folder, self.calls.get(&call)) {
            if !c.json_dirty {
                hook(&c.dir);
            }
        }
    }

    /// Adds the PCM bytes of every write that succeeded (audio and gap silence) to `counter`.
    pub fn with_bytes_counter(mut self, counter: prometheus::IntCounter) -> Self {
        self.bytes_written = Some(counter);
        self
    }

    /// Counts written samples locally; [`WavSink::publish_bytes`] adds them to the shared
    /// counter on each flush tick, so the writer threads do not share a cache line per frame.
    fn count_bytes(&mut self, samples: u64) {
        self.bytes_pending += samples * 2;
    }

    fn publish_bytes(&mut self) {
        if let Some(c) = &self.bytes_written {
            c.inc_by(std::mem::take(&mut self.bytes_pending));
        }
    }

    fn failed(&self, e: &io::Error) {
        if let Some(f) = &self.on_failed {
            f(failure_reason(e));
        }
    }

    fn wanted(&self, kind: StreamKind) -> bool {
        match kind {
            StreamKind::Participant => self.cfg.participants,
            StreamKind::Mixed | StreamKind::Mix => self.cfg.mixed,
            StreamKind::Outbound => self.cfg.record_outbound,
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
                    names: NameSet::with_reserved(&OWN_NAMES),
                    streams: Vec::new(),
                    dtmf: Vec::new(),
                    transcripts: Vec::new(),
                    marks: Vec::new(),
                    end: None,
                    json_dirty: false,
                    json_failing: false,
                    mixed_named: false,
                    outbound_named: false,
                },
            );
        }
        Ok(self.calls.get_mut(&info.id).expect("inserted above"))
    }

    fn finalise_stream(&mut self, id: StreamId) -> Result<(), SinkError> {
        let Some(rec) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        rec.closed = true;
        let Some(w) = rec.writer.take() else {
            return Ok(());
        };
        let was_failed = w.failed();
        let (samples, r) = w.finalize();
        rec.samples_in_file = samples;
        match r {
            Ok(()) => {
                if let Some(f) = &self.on_finalised {
                    f();
                }
                Ok(())
            }
            Err(e) => {
                rec.error.get_or_insert_with(|| e.to_string());
                let call = rec.call;
                if !was_failed {
                    // failed only now (the last buffer): counted here, else when it failed
                    self.failed(&e);
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.json_dirty = true;
                }
                Err(e.into())
            }
        }
    }

    /// Notes that a write to stream `id` failed: the first failure of its file sets the
    /// stream's error (for `call.json`) and is counted.
    fn write_failed(&mut self, id: StreamId, e: io::Error) -> SinkError {
        let Some(s) = self.streams.get_mut(&id) else {
            return e.into();
        };
        if s.error.is_none() && s.writer.as_ref().is_some_and(WavFile::failed) {
            s.error = Some(e.to_string());
            let call = s.call;
            self.failed(&e);
            if let Some(c) = self.calls.get_mut(&call) {
                c.json_dirty = true;
            }
        }
        e.into()
    }
}

impl WavSink {
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
}

impl Sink for WavSink {
    fn kind(&self) -> &'static str {
        "wav"
    }

    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        let wanted = self.wanted(stream.kind);
        let mut rec = StreamRec {
            call: stream.call.id,
            info: stream.clone(),
            file: None,
            writer: None,
            samples: 0,
            samples_in_file: 0,
            error: None,
            speech: Vec::new(),
            stats: None,
            closed: false,
            outbound_mixed: false,
        };
        let buffer_bytes = self.cfg.buffer_kib * 1024;
        let call = match self.call_rec(&stream.call) {
            Ok(call) => call,
            Err(e) => {
                // no call folder (e.g. a full disk on a file system where folders take space):
                // the stream is still known, so its frames are not errors one by one
                if wanted {
                    rec.error = Some(e.to_string());
                    if let SinkError::Io(io) = &e {
                        self.failed(io);
                    }
                }
                self.streams.insert(stream.id, rec);
                return Err(e);
            }
        };
        let name = match (stream.kind, &stream.participant) {
            (StreamKind::Participant, p) => call
                .names
                .claim(&sanitize_avoiding(p.as_deref().unwrap_or(""), &OWN_NAMES)),
            (StreamKind::Outbound, _) if !call.outbound_named => {
                call.outbound_named = true;
                OUTBOUND_NAME.to_string()
            }
            (StreamKind::Outbound, _) => call.names.claim(OUTBOUND_NAME),
            _ if !call.mixed_named => {
                call.mixed_named = true;
                MIXED_NAME.to_string()
            }
            _ => call.names.claim(MIXED_NAME),
        };
        let mut err = None;
        if wanted {
            let path = call.dir.join(format!("{name}.wav"));
            match WavFile::create(&path, stream.sample_rate, buffer_bytes) {
                Ok(w) => {
                    rec.writer = Some(w);
                    rec.file = Some(name);
                }
                Err(e) => {
                    // e.g. a full disk: no 0-byte or header-less file is left behind
                    let _ = fs::remove_file(&path);
                    rec.error = Some(e.to_string());
                    err = Some(e);
                }
            }
        }
        call.streams.push(stream.id);
        call.json_dirty |= wanted;
        self.streams.insert(stream.id, rec);
        match err {
            Some(e) => {
                self.failed(&e);
                Err(e.into())
            }
            None => Ok(()),
        }
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let s = self.stream_mut(frame.stream)?;
        // the outbound track keeps its timeline when a frame was lost on the way (queue full)
        let lost = match s.info.kind {
            StreamKind::Outbound => frame.pos.saturating_sub(s.samples),
            _ => 0,
        };
        if s.info.kind == StreamKind::Outbound {
            let start = s.samples + lost;
            let end = start + frame.len() as u64;
            match s.speech.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => s.speech.push((start, end)),
            }
        }
        s.samples += lost + frame.len() as u64;
        let r = match s.writer.as_mut() {
            // a failed file was reported when it failed (and is again at finalisation)
            Some(w) if !w.failed() => w
                .write_silence(lost)
                .and_then(|()| w.write(frame.samples())),
            _ => return Ok(()),
        };
        match r {
            Ok(()) => {
                self.count_bytes(lost + frame.len() as u64);
                Ok(())
            }
            Err(e) => Err(self.write_failed(frame.stream, e)),
        }
    }

    fn gap(&mut self, _call: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        let s = self.stream_mut(stream)?;
        s.samples += samples;
        let r = match s.writer.as_mut() {
            Some(w) if !w.failed() => w.write_silence(samples),
            _ => return Ok(()),
        };
        match r {
            Ok(()) => {
                self.count_bytes(samples);
                Ok(())
            }
            Err(e) => Err(self.write_failed(stream, e)),
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
            CallEvent::PlaybackCompleted(_) | CallEvent::PlaybackCancelled(_) => {
                let v = serde_json::to_value(event).unwrap_or_default();
                self.call_rec(call)?.marks.push(v)
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
        self.publish_bytes();
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
        self.mix_outbound(call.id);
        if let Some(c) = self.calls.get_mut(&call.id) {
            c.end = Some((chrono::Utc::now().timestamp_millis(), reason.to_string()));
        }
        let json = self.write_call_json(call.id, true);
        self.folder_final(call.id);
        // forget the call: its files are final (streams of a call without a folder included)
        self.calls.remove(&call.id);
        self.streams.retain(|_, s| s.call != call.id);
        match first_err {
            Some(e) => Err(e),
            None => json,
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.publish_bytes();
        let mut first_err = None;
        let mut failed = Vec::new();
        for (id, s) in &mut self.streams {
            if let Some(w) = s.writer.as_mut() {
                if let Err(e) = w.refresh() {
                    failed.push((*id, e));
                }
            }
        }
        for (id, e) in failed {
            first_err.get_or_insert(self.write_failed(id, e));
        }
        self.retry_pending_json();
        let dirty: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.json_dirty)
            .map(|(id, _)| *id)
            .collect();
        for call in dirty {
            if let Err(e) = self.write_call_json(call, false) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.publish_bytes();
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.finalise_stream(id) {
                first_err.get_or_insert(e);
            }
        }
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for c in calls {
            self.mix_outbound(c);
            if let Some(rec) = self.calls.get_mut(&c) {
                if rec.end.is_none() {
                    rec.end = Some((
                        chrono::Utc::now().timestamp_millis(),
                        EndReason::Shutdown.to_string(),
                    ));
                }
            }
            if let Err(e) = self.write_call_json(c, true) {
                first_err.get_or_insert(e);
            }
            self.folder_final(c);
        }
        self.calls.clear();
        self.streams.clear();
        // last chance for the kept call.json files; what still fails is given up
        self.retry_pending_json();
        for p in self.pending_json.drain(..) {
            give_up_json(&p);
        }
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
        let files: Vec<String> = fs::read_dir(day.join(&base))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(files.contains(&"mixed.wav".to_string()), "{files:?}");
        let own = sanitize_avoiding("mixed", &OWN_NAMES);
        assert!(
            own.starts_with("mixed-") && files.contains(&format!("{own}.wav")),
            "participant named 'mixed' got its own file: {files:?}"
        );
        assert!(day.join(format!("{base}-2")).join("mixed.wav").exists());
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(day.join(&base).join("call.json")).unwrap()).unwrap();
        assert_eq!(doc["streams"][0]["participantRawId"], "mixed");
        assert_eq!(doc["streams"][0]["file"], format!("{own}.wav"));
        assert_eq!(doc["streams"][1]["file"], "mixed.wav");
    }

    #[test]
    fn a_call_json_that_cannot_be_written_is_retried_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink_in(tmp.path());
        let c = contract::call(11);
        sink.open(&contract::stream(&c, 1, None, 16_000)).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-11");
        // a folder where call.json should go: the rename fails (as root too, unlike permissions)
        fs::create_dir(dir.join(CALL_JSON)).unwrap();
        assert!(sink.flush().is_err(), "the first failure is reported");
        assert!(sink.flush().is_ok(), "and counted once, not on every retry");
        assert!(sink.end_call(&c, &EndReason::PeerClosed).is_ok());
        assert!(!dir.join(CALL_JSON_TMP).exists(), "no stray temporary file");
        // space comes back: the next flush writes the kept document
        fs::remove_dir(dir.join(CALL_JSON)).unwrap();
        sink.flush().unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(CALL_JSON)).unwrap()).unwrap();
        assert_eq!(doc["call"]["endReason"], "peer closed");
        assert_eq!(doc["streams"][0]["complete"], true);
        assert_eq!(doc["streams"][0]["error"], serde_json::Value::Null);
        assert!(!dir.join(CALL_JSON_TMP).exists());
    }

    #[test]
    fn a_stream_whose_file_cannot_be_created_is_listed_with_its_error_and_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let f = failures.clone();
        let mut sink = sink_in(tmp.path()).with_failure_hook(Arc::new(move |reason| {
            assert_eq!(reason, "io_error");
            f.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        let c = contract::call(12);
        sink.open(&contract::stream(&c, 1, Some("alice"), 16_000))
            .unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-12");
        // the file name is taken by a folder: creating the file fails
        fs::create_dir(dir.join("mixed.wav")).unwrap();
        assert!(sink.open(&contract::stream(&c, 2, None, 16_000)).is_err());
        assert_eq!(failures.load(std::sync::atomic::Ordering::Relaxed), 1);
        // its frames are no errors one by one
        for i in 0..3u64 {
            sink.write(&AudioFrame::new(12, 2, i * 320, 16_000, &[1; 320]))
                .unwrap();
        }
        sink.end_call(&c, &EndReason::PeerClosed).unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(CALL_JSON)).unwrap()).unwrap();
        let mixed = &doc["streams"][1];
        assert_eq!(mixed["file"], serde_json::Value::Null);
        assert!(
            mixed["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{mixed}"
        );
        assert_eq!(
            (mixed["samples"].as_u64(), mixed["samplesInFile"].as_u64()),
            (Some(960), Some(0))
        );
        assert_eq!(doc["streams"][0]["file"], "alice.wav");
        assert_eq!(doc["streams"][0]["error"], serde_json::Value::Null);
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
    fn the_folder_hook_fires_once_per_call_after_its_last_call_json_is_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let seen: Arc<std::sync::Mutex<Vec<(PathBuf, bool)>>> = Arc::default();
        let s2 = seen.clone();
        let mut sink = sink_in(tmp.path()).with_folder_hook(Arc::new(move |dir: &Path| {
            // what the hook sees: the ended call's document, no open file
            let doc: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join(CALL_JSON)).unwrap()).unwrap();
            let ended = !doc["call"]["endReason"].is_null();
            s2.lock().unwrap().push((dir.to_path_buf(), ended));
        }));
        let c = contract::call(21);
        sink.open(&contract::stream(&c, 1, None, 16_000)).unwrap();
        sink.flush().unwrap();
        assert!(seen.lock().unwrap().is_empty(), "not while the call runs");
        sink.end_call(&c, &EndReason::PeerClosed).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-21");
        assert_eq!(*seen.lock().unwrap(), vec![(dir, true)]);

        // a call.json that cannot be written at the end: the hook waits for the flush that writes it
        let c = contract::call(22);
        sink.open(&contract::stream(&c, 2, None, 16_000)).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-22");
        fs::create_dir(dir.join(CALL_JSON)).unwrap();
        assert!(sink.end_call(&c, &EndReason::PeerClosed).is_err());
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "not final without its call.json"
        );
        fs::remove_dir(dir.join(CALL_JSON)).unwrap();
        sink.flush().unwrap();
        assert_eq!(seen.lock().unwrap().last(), Some(&(dir, true)));

        // a call still open at shutdown is final once shutdown finalised it
        let c = contract::call(23);
        sink.open(&contract::stream(&c, 3, None, 16_000)).unwrap();
        sink.shutdown().unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-23");
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(seen.lock().unwrap().last(), Some(&(dir, true)));
    }

    #[test]
    fn the_outbound_stream_is_bot_wav_a_lost_frame_is_silence_and_it_is_mixed_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = WavSink::new(
            WavSinkConfig {
                dir: tmp.path().into(),
                mix_outbound: true,
                ..Default::default()
            },
            None,
        );
        let c = contract::call(31);
        // a participant called "bot" does not take the track's name
        sink.open(&contract::stream(&c, 1, Some("bot"), 16_000))
            .unwrap();
        let mix = Arc::new(StreamInfo {
            kind: StreamKind::Mix,
            participant: None,
            ..(*contract::stream(&c, 2, None, 16_000)).clone()
        });
        let out = Arc::new(StreamInfo {
            kind: StreamKind::Outbound,
            participant: None,
            ..(*contract::stream(&c, 3, None, 16_000)).clone()
        });
        sink.open(&mix).unwrap();
        sink.open(&out).unwrap();
        for k in 0..10u64 {
            sink.write(&AudioFrame::new(31, 2, k * 320, 16_000, &[100; 320]))
                .unwrap();
        }
        // bot: 640 samples of silence, a frame, a lost frame, a frame
        sink.gap(31, 3, 640).unwrap();
        sink.write(&AudioFrame::new(31, 3, 640, 16_000, &[7; 320]))
            .unwrap();
        sink.write(&AudioFrame::new(31, 3, 1280, 16_000, &[9; 320]))
            .unwrap();
        let stats = StreamStats::default();
        for s in [1, 2, 3] {
            sink.close(31, s, &stats).unwrap();
        }
        sink.end_call(&c, &EndReason::PeerClosed).unwrap();
        let dir = find_call_dir(tmp.path(), "contract-call-31");
        let (_, bot) = read(&dir.join("bot.wav"));
        let mut want = vec![0i16; 1600];
        want[640..960].fill(7);
        want[1280..1600].fill(9);
        assert_eq!(bot, want, "the lost frame is silence: the timeline holds");
        let (_, mixed) = read(&dir.join("mixed.wav"));
        assert_eq!(mixed.len(), 3200);
        let sum: Vec<i16> = mixed
            .iter()
            .zip(want.iter().chain(std::iter::repeat(&0)))
            .map(|(m, b)| m - b)
            .collect();
        assert_eq!(sum, vec![100; 3200], "mixed.wav = the mix + the bot");
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(CALL_JSON)).unwrap()).unwrap();
        let s = &doc["streams"];
        assert_ne!(s[0]["file"], "bot.wav");
        assert!(
            s[0]["file"].as_str().unwrap().starts_with("bot-"),
            "{}",
            s[0]
        );
        assert_eq!(s[0]["direction"], "inbound");
        assert_eq!(
            (s[1]["file"].as_str(), s[1]["outboundMixed"].as_bool()),
            (Some("mixed.wav"), Some(true))
        );
        assert_eq!(s[2]["file"], "bot.wav");
        assert_eq!(
            (s[2]["kind"].as_str(), s[2]["direction"].as_str()),
            (Some("outbound"), Some("outbound"))
        );
        assert_eq!(s[2]["samples"], 1600);
        assert_eq!(
            s[2]["speechSegments"],
            json!([{"startMs": 40, "endMs": 60}, {"startMs": 80, "endMs": 100}])
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = WavSinkConfig {
            dir: PathBuf::new(),
            queue_frames: 1,
            workers: 0,
            header_interval_ms: 5000,
            buffer_kib: 2,
            participants: false,
            mixed: false,
            record_outbound: false,
            mix_outbound: true,
        };
        assert_eq!(c.validate().len(), 7);
        assert!(WavSinkConfig::default().validate().is_empty());
    }
}
