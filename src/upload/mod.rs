//! Recordings to Azure Blob Storage: the stage after the WAV sink. It owns its `[upload]`
//! settings ([`UploadConfig`]), a bounded queue of finalised call folders, the upload workers
//! (tasks on the gateway's runtime) and their metrics.
//!
//! A WAV sink hands over a call folder through its [`crate::sinks::wav::FolderHook`] only once
//! the folder is final (every file finalised, the last `call.json` on disk), so nothing is
//! uploaded half-written. The hook runs on the sink's worker thread: it writes the folder's
//! [`store::PENDING_MARKER`] and offers the folder to the queue with `try_send`, never waiting;
//! when the queue is full the folder stays on disk with its marker, counted
//! (`recording_uploads_deferred_total{reason="queue_full"}`), for the next start. At start the
//! folders a previous run left with a marker are queued again (`resume_pending`), never filling
//! more than half the queue so live calls keep room.
//!
//! Each file goes up as one blob under `<prefix>/<YYYY-MM-DD>/<call>/<file>`
//! ([`policy::blob_key`]), the recordings first and `call.json` last. A failed attempt is retried
//! after an exponential back-off ([`policy::Backoff`]) up to `max_retries` times (counted
//! `outcome="retry"`); then the folder counts `outcome="failed"` and stays with its marker. A
//! folder whose files are all up counts `outcome="ok"` and loses its marker, or the whole folder
//! with `delete_after_upload`.
//!
//! At shutdown ([`Uploader::drain`]), after the sinks have finalised their last calls, the queue
//! is closed and the workers finish what is queued until the drain deadline; what is left keeps
//! its marker.

pub mod policy;
pub mod store;

use crate::metrics::{Metrics, PREFIX};
use policy::Backoff;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Credential, Target};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Errors setting up the uploader.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The settings do not name a usable account, container or credential.
    #[error("upload configuration: {0}")]
    Config(String),
    /// The storage client could not be built.
    #[error("blob storage client: {0}")]
    Store(String),
    /// The metrics could not be registered.
    #[error("upload metrics: {0}")]
    Metrics(String),
}

/// `[upload]`: recordings to Azure Blob Storage. Secrets are best given through the environment
/// (`ACS_GATEWAY_UPLOAD__ACCOUNT_KEY`, `…__SAS_TOKEN`, `…__CONNECTION_STRING`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Upload every finalised call folder of the WAV sinks.
    pub enabled: bool,
    /// Storage account name (or from `connection_string`).
    pub account: String,
    /// Blob container (must exist).
    pub container: String,
    /// Account key (shared key authorisation).
    pub account_key: String,
    /// Shared access signature (query string), instead of a key.
    pub sas_token: String,
    /// Azure Storage connection string: account, key or SAS, and endpoint in one.
    pub connection_string: String,
    /// Blob service URL, e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`; empty:
    /// `https://<account>.blob.core.windows.net` (or the connection string's).
    pub endpoint: String,
    /// Key prefix of every blob (`<prefix>/<YYYY-MM-DD>/<call>/<file>`).
    pub prefix: String,
    /// Remove the local call folder once all its files are uploaded.
    pub delete_after_upload: bool,
    /// Call folders uploaded at once.
    pub concurrency: usize,
    /// Call folders waiting for upload; more are left on disk (marked) for the next start.
    pub queue_capacity: usize,
    /// Retries of a file after its first attempt.
    pub max_retries: u32,
    /// Wait before the first retry (ms); doubles per retry.
    pub backoff_initial_ms: u64,
    /// Longest wait between retries (ms).
    pub backoff_max_ms: u64,
    /// Timeout of one request (ms).
    pub request_timeout_ms: u64,
    /// At start, upload the folders a previous run finalised but did not upload.
    pub resume_pending: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            account: String::new(),
            container: String::new(),
            account_key: String::new(),
            sas_token: String::new(),
            connection_string: String::new(),
            endpoint: String::new(),
            prefix: "recordings".into(),
            delete_after_upload: false,
            concurrency: 2,
            queue_capacity: 1024,
            max_retries: 5,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            request_timeout_ms: 60_000,
            resume_pending: true,
        }
    }
}

impl UploadConfig {
    /// Problems with the values (none when disabled, whatever they are).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.enabled {
            return p;
        }
        if let Err(e) = self.target() {
            p.push(e.to_string());
        }
        let c = &self.container;
        if !(3..=63).contains(&c.len())
            || !c
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || c.starts_with('-')
            || c.ends_with('-')
            || c.contains("--")
        {
            p.push(format!(
                "container {c:?} must be 3-63 lowercase letters, digits and single hyphens"
            ));
        }
        if self.prefix.split('/').any(|s| s == "." || s == "..") {
            p.push(format!(
                "prefix {:?} must not hold . or .. segments",
                self.prefix
            ));
        }
        let mut range = |name: &str, v: u64, lo: u64, hi: u64| {
            if !(lo..=hi).contains(&v) {
                p.push(format!("{name} {v} must be between {lo} and {hi}"));
            }
        };
        range("concurrency", self.concurrency as u64, 1, 64);
        range("queue_capacity", self.queue_capacity as u64, 1, 1_000_000);
        range("max_retries", u64::from(self.max_retries), 0, 100);
        range("backoff_initial_ms", self.backoff_initial_ms, 1, 600_000);
        range("backoff_max_ms", self.backoff_max_ms, 1, 3_600_000);
        range(
            "request_timeout_ms",
            self.request_timeout_ms,
            100,
            3_600_000,
        );
        if self.backoff_max_ms < self.backoff_initial_ms {
            p.push("backoff_max_ms must not be below backoff_initial_ms".into());
        }
        p
    }

    /// The account, container, endpoint and credential: the explicit keys win over the
    /// connection string's.
    pub fn target(&self) -> Result<Target, UploadError> {
        let cs = if self.connection_string.trim().is_empty() {
            policy::ConnectionString::default()
        } else {
            policy::parse_connection_string(&self.connection_string).map_err(UploadError::Config)?
        };
        let pick = |own: &str, theirs: Option<String>| {
            Some(own.trim().to_string())
                .filter(|s| !s.is_empty())
                .or(theirs)
        };
        let account = pick(&self.account, cs.account).ok_or_else(|| {
            UploadError::Config("account (or a connection string) is required".into())
        })?;
        // an explicit key or SAS first, then the connection string's
        let credential = match (pick(&self.account_key, None), pick(&self.sas_token, None)) {
            (Some(k), _) => Credential::AccountKey(k),
            (None, Some(s)) => Credential::Sas(s),
            (None, None) => match (cs.key, cs.sas) {
                (Some(k), _) => Credential::AccountKey(k),
                (None, Some(s)) => Credential::Sas(s),
                (None, None) => {
                    return Err(UploadError::Config(
                        "account_key, sas_token or connection_string is required".into(),
                    ))
                }
            },
        };
        let endpoint = pick(&self.endpoint, cs.blob_endpoint);
        if let Some(e) = &endpoint {
            if !(e.starts_with("https://") || e.starts_with("http://")) {
                return Err(UploadError::Config(format!(
                    "endpoint {e:?} must be an http:// or https:// URL"
                )));
            }
        }
        Ok(Target {
            account,
            container: self.container.clone(),
            endpoint,
            credential,
        })
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.backoff_initial_ms),
            max: Duration::from_millis(self.backoff_max_ms),
        }
    }
}

/// The uploader's metrics, registered on the gateway's registry when uploads are on.
#[derive(Clone, Debug)]
pub struct UploadMetrics {
    ok: IntCounter,
    retry: IntCounter,
    failed: IntCounter,
    bytes: IntCounter,
    seconds: Histogram,
    queue_full: IntCounter,
    shutdown: IntCounter,
    queued: IntGauge,
}

impl UploadMetrics {
    /// Creates and registers the uploader's series.
    pub fn register(metrics: &Metrics) -> Result<Self, UploadError> {
        let reg = metrics.registry();
        let err = |e: prometheus::Error| UploadError::Metrics(e.to_string());
        let outcomes = IntCounterVec::new(
            Opts::new(
                format!("{PREFIX}_recording_uploads_total"),
                "Call folders uploaded to blob storage (ok, failed after every retry) and \
                 retried attempts, by outcome.",
            ),
            &["outcome"],
        )
        .map_err(err)?;
        let deferred = IntCounterVec::new(
            Opts::new(
                format!("{PREFIX}_recording_uploads_deferred_total"),
                "Call folders left on disk with their marker for the next start, by reason: \
                 queue_full, shutdown.",
            ),
            &["reason"],
        )
        .map_err(err)?;
        let bytes = IntCounter::new(
            format!("{PREFIX}_recording_upload_bytes_total"),
            "Bytes of recording files uploaded to blob storage.",
        )
        .map_err(err)?;
        let seconds = Histogram::with_opts(
            HistogramOpts::new(
                format!("{PREFIX}_recording_upload_seconds"),
                "Time to upload one call folder, retries included.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )
        .map_err(err)?;
        let queued = IntGauge::new(
            format!("{PREFIX}_recording_upload_queue"),
            "Call folders queued or being uploaded.",
        )
        .map_err(err)?;
        reg.register(Box::new(outcomes.clone())).map_err(err)?;
        reg.register(Box::new(deferred.clone())).map_err(err)?;
        reg.register(Box::new(bytes.clone())).map_err(err)?;
        reg.register(Box::new(seconds.clone())).map_err(err)?;
        reg.register(Box::new(queued.clone())).map_err(err)?;
        Ok(Self {
            ok: outcomes.with_label_values(&["ok"]),
            retry: outcomes.with_label_values(&["retry"]),
            failed: outcomes.with_label_values(&["failed"]),
            bytes,
            seconds,
            queue_full: deferred.with_label_values(&["queue_full"]),
            shutdown: deferred.with_label_values(&["shutdown"]),
            queued,
        })
    }
}

struct Inner {
    cfg: UploadConfig,
    store: Arc<dyn object_store::ObjectStore>,
    metrics: UploadMetrics,
    /// `None` once the drain began.
    tx: Mutex<Option<mpsc::Sender<PathBuf>>>,
    /// Folders queued or in flight.
    pending: AtomicI64,
}

impl Inner {
    /// Offers `dir` to the queue without waiting; a folder that does not fit stays marked.
    fn offer(&self, dir: PathBuf) {
        let tx = self.tx.lock().expect("upload queue lock");
        let r = match tx.as_ref() {
            Some(tx) => tx.try_send(dir),
            None => Err(mpsc::error::TrySendError::Closed(dir)),
        };
        match r {
            Ok(()) => self.queued(1),
            Err(mpsc::error::TrySendError::Full(dir)) => {
                self.metrics.queue_full.inc();
                tracing::warn!(dir = %dir.display(), "upload queue full; folder left for the next start");
            }
            Err(mpsc::error::TrySendError::Closed(dir)) => {
                self.metrics.shutdown.inc();
                tracing::warn!(dir = %dir.display(), "uploads stopped; folder left for the next start");
            }
        }
    }

    fn queued(&self, n: i64) {
        let now = self.pending.fetch_add(n, Ordering::Relaxed) + n;
        self.metrics.queued.set(now);
    }

    /// Uploads one call folder with retries; returns whether every file went up.
    async fn upload(&self, dir: &Path) -> bool {
        let started = Instant::now();
        let ok = self.upload_files(dir).await;
        self.metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        if !ok {
            self.metrics.failed.inc();
            return false;
        }
        self.metrics.ok.inc();
        let dir = dir.to_path_buf();
        let delete = self.cfg.delete_after_upload;
        let r = tokio::task::spawn_blocking(move || {
            // the marker first: a crash while deleting leaves no folder to upload again
            std::fs::remove_file(dir.join(store::PENDING_MARKER))
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()), // it could not be written
                    _ => Err(e),
                })
                .and_then(|()| {
                    if delete {
                        std::fs::remove_dir_all(&dir)
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| (dir, e))
        })
        .await;
        if let Ok(Err((dir, e))) = r {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "uploaded folder not cleaned up");
            }
        }
        true
    }

    async fn upload_files(&self, dir: &Path) -> bool {
        let d = dir.to_path_buf();
        let files = match tokio::task::spawn_blocking(move || store::folder_files(&d)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                tracing::error!(dir = %dir.display(), error = %e, "call folder not readable; not uploaded");
                return false;
            }
            Err(_) => return false,
        };
        let backoff = self.cfg.backoff();
        for (name, path) in files {
            let key = policy::blob_key(&self.cfg.prefix, dir, &name);
            let mut retries = 0;
            loop {
                match store::put_file(&self.store, &path, key.clone()).await {
                    Ok(n) => {
                        self.metrics.bytes.inc_by(n);
                        break;
                    }
                    Err(e @ store::PutError::Remote(_)) if retries < self.cfg.max_retries => {
                        retries += 1;
                        self.metrics.retry.inc();
                        let wait = backoff.delay(retries, rand::random::<f64>());
                        tracing::warn!(%key, error = %e, retry = retries, wait_ms = wait.as_millis() as u64, "upload failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => {
                        tracing::error!(%key, dir = %dir.display(), error = %e, retries, "upload failed; folder kept for the next start");
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// The running uploader: its queue, workers and start-up scan.
pub struct Uploader {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    scan: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Uploader {
    /// Builds the client, registers the metrics and starts the workers on the current runtime;
    /// with `resume_pending`, queues the marked folders found under `roots` (the WAV sinks'
    /// folders).
    pub fn start(
        cfg: &UploadConfig,
        roots: Vec<PathBuf>,
        metrics: &Metrics,
    ) -> Result<Self, UploadError> {
        let target = cfg.target()?;
        let store = store::build_store(&target, Duration::from_millis(cfg.request_timeout_ms))?;
        let metrics = UploadMetrics::register(metrics)?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let inner = Arc::new(Inner {
            cfg: cfg.clone(),
            store,
            metrics,
            tx: Mutex::new(Some(tx)),
            pending: AtomicI64::new(0),
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = (0..cfg.concurrency.max(1))
            .map(|_| {
                let (inner, rx) = (inner.clone(), rx.clone());
                tokio::spawn(async move {
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some(dir) = next else { break };
                        // its own task: a panic in one upload costs that folder, not the worker
                        let i = inner.clone();
                        let mut task =
                            AbortOnDrop(tokio::spawn(async move { i.upload(&dir).await }));
                        if (&mut task.0).await.is_err() {
                            inner.metrics.failed.inc();
                        }
                        inner.queued(-1);
                    }
                })
            })
            .collect();
        let scan = cfg
            .resume_pending
            .then(|| tokio::spawn(resume(inner.clone(), roots)));
        tracing::info!(?target, prefix = %cfg.prefix, "uploading recordings to blob storage");
        Ok(Self {
            inner,
            workers,
            scan,
        })
    }

    /// The hook WAV sinks call with each finalised call folder: marks it and queues it, never
    /// waiting.
    pub fn hook(&self) -> crate::sinks::wav::FolderHook {
        let inner = self.inner.clone();
        Arc::new(move |dir: &Path| {
            store::mark_pending(dir);
            inner.offer(dir.to_path_buf());
        })
    }

    /// Closes the queue and lets the workers finish what is queued until `deadline`; returns
    /// the folders left (queued or in flight when the deadline passed: they keep their marker).
    pub async fn drain(mut self, deadline: tokio::time::Instant) -> usize {
        if let Some(scan) = &self.scan {
            scan.abort();
        }
        // the workers end once the queue is empty and its one sender gone
        drop(self.inner.tx.lock().expect("upload queue lock").take());
        let workers = std::mem::take(&mut self.workers);
        let aborts: Vec<_> = workers.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(workers);
        let finished = tokio::time::timeout_at(deadline, all).await.is_ok();
        let left = self.inner.pending.load(Ordering::Relaxed).max(0) as usize;
        if !finished {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            self.inner.metrics.shutdown.inc_by(left as u64);
            tracing::warn!(
                left,
                "upload drain timed out; folders left for the next start"
            );
        }
        left
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
        if let Some(s) = &self.scan {
            s.abort();
        }
    }
}

/// An upload task aborted with the worker that awaits it (a drain cut short stops both).
struct AbortOnDrop(JoinHandle<bool>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Queues the marked folders of a previous run, at most up to half the queue at a time.
async fn resume(inner: Arc<Inner>, roots: Vec<PathBuf>) {
    let found = tokio::task::spawn_blocking(move || {
        roots
            .iter()
            .flat_map(|r| store::pending_folders(r))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    if found.is_empty() {
        return;
    }
    tracing::info!(
        folders = found.len(),
        "uploading folders a previous run left"
    );
    let half = (inner.cfg.queue_capacity / 2).max(1) as i64;
    for dir in found {
        while inner.pending.load(Ordering::Relaxed) >= half {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inner.offer(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> UploadConfig {
        UploadConfig {
            enabled: true,
            account: "acme".into(),
            container: "calls".into(),
            account_key: "a2V5".into(),
            ..Default::default()
        }
    }

    #[test]
    fn disabled_by_default_and_validation_reports_every_problem() {
        assert!(!UploadConfig::default().enabled);
        assert!(UploadConfig::default().validate().is_empty());
        assert!(
            enabled().validate().is_empty(),
            "{:?}",
            enabled().validate()
        );
        let bad = UploadConfig {
            account: String::new(),
            container: "Bad_Name".into(),
            prefix: "a/../b".into(),
            concurrency: 0,
            backoff_initial_ms: 10_000,
            backoff_max_ms: 100,
            ..enabled()
        };
        assert_eq!(bad.validate().len(), 5, "{:?}", bad.validate());
    }

    #[test]
    fn a_full_queue_leaves_the_folder_marked_and_counts_it_without_waiting() {
        let metrics = Metrics::new();
        let cfg = enabled();
        let (tx, mut rx) = mpsc::channel(1);
        let inner = Arc::new(Inner {
            store: store::build_store(&cfg.target().unwrap(), Duration::from_secs(1)).unwrap(),
            cfg,
            metrics: UploadMetrics::register(&metrics).unwrap(),
            tx: Mutex::new(Some(tx)),
            pending: AtomicI64::new(0),
        });
        let u = Uploader {
            inner: inner.clone(),
            workers: Vec::new(),
            scan: None,
        };
        let hook = u.hook();
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("c{i}"))).collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
            hook(d); // returns at once, queue full or not
        }
        assert!(dirs.iter().all(|d| d.join(store::PENDING_MARKER).exists()));
        assert_eq!(rx.try_recv().unwrap(), dirs[0]);
        let text = metrics.render();
        let v = |series: &str| sample(&text, series);
        assert_eq!(
            v("acs_gateway_recording_uploads_deferred_total{reason=\"queue_full\"}"),
            2.0
        );
        assert_eq!(v("acs_gateway_recording_upload_queue"), 1.0);
        // after the drain closed the queue, a late folder is left marked too
        drop(inner.tx.lock().unwrap().take());
        hook(&dirs[1]);
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                "acs_gateway_recording_uploads_deferred_total{reason=\"shutdown\"}"
            ),
            1.0
        );
    }

    /// One sample's value from a rendered exposition.
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn the_gateway_config_checks_the_section_and_needs_a_wav_sink() {
        let mut cfg = crate::config::Config {
            upload: enabled(),
            ..Default::default()
        };
        assert!(cfg.validate().is_ok());
        cfg.upload.concurrency = 0;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("upload: concurrency 0"), "{e}");
        cfg.upload.concurrency = 1;
        cfg.sinks = vec![crate::sinks::SinkConfig::Null(Default::default())];
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("needs a wav sink"), "{e}");
        cfg.upload.enabled = false;
        assert!(cfg.validate().is_ok(), "a disabled section is not checked");
    }

    #[test]
    fn explicit_keys_win_over_the_connection_string() {
        let c = UploadConfig {
            account: String::new(),
            account_key: String::new(),
            connection_string: "UseDevelopmentStorage=true".into(),
            ..enabled()
        };
        let t = c.target().unwrap();
        assert_eq!(t.account, policy::DEV_ACCOUNT);
        assert_eq!(t.endpoint.as_deref(), Some(policy::DEV_BLOB_ENDPOINT));
        let c = UploadConfig {
            endpoint: "http://127.0.0.1:1/x".into(),
            sas_token: "sv=1&sig=2".into(),
            account_key: String::new(),
            ..c
        };
        let t = c.target().unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:1/x"));
        assert_eq!(t.credential, Credential::Sas("sv=1&sig=2".into()));
        assert!(!format!("{t:?}").contains("sig"), "no secret in Debug");
        let c = UploadConfig {
            endpoint: "ftp://x".into(),
            ..enabled()
        };
        assert!(c.target().is_err());
    }
}
