//! The uploader's I/O: the Azure Blob Storage client (object_store's Azure backend, its own
//! retries off: the uploader's [`super::policy::Backoff`] decides and counts them), one file put
//! as one blob (a single `Put Blob` up to [`PART_BYTES`], staged blocks above), and the local
//! folder's files and marker.

use super::UploadError;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::buffered::BufWriter;
use object_store::path::Path as BlobPath;
use object_store::{Attribute, Attributes, ClientOptions, ObjectStore, RetryConfig};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Files up to this size go up in one request; bigger ones as blocks of this size.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// The marker file of a call folder finalised but not (yet) uploaded. Written when the WAV sink
/// hands the folder over, removed once every file is up, so the folders a previous run left
/// (queue overflow, failed uploads, a drain cut short, a crash) are found at the next start.
/// It starts with a dot, which no recording's name does, and is never uploaded.
pub const PENDING_MARKER: &str = ".upload-pending";

/// Where and how to connect, resolved from the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Storage account.
    pub account: String,
    /// Blob container.
    pub container: String,
    /// Blob service URL (`None`: `https://<account>.blob.core.windows.net`).
    pub endpoint: Option<String>,
    /// The credential.
    pub credential: Credential,
}

/// How requests are authorised.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Shared key (the account key).
    AccountKey(String),
    /// A shared access signature (query string).
    Sas(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the kind, never the secret
        f.write_str(match self {
            Credential::AccountKey(_) => "AccountKey(..)",
            Credential::Sas(_) => "Sas(..)",
        })
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secret
        f.debug_struct("Target")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The object store of `target`, one request per attempt (no retries inside), `timeout` per
/// request.
pub fn build_store(
    target: &Target,
    timeout: Duration,
) -> Result<Arc<dyn ObjectStore>, UploadError> {
    let mut options = ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(Duration::from_secs(5));
    let mut b = MicrosoftAzureBuilder::new()
        .with_account(&target.account)
        .with_container_name(&target.container)
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
    if let Some(e) = &target.endpoint {
        options = options.with_allow_http(e.starts_with("http://"));
        b = b.with_endpoint(e.clone());
    }
    b = match &target.credential {
        Credential::AccountKey(k) => b.with_access_key(k),
        Credential::Sas(s) => b.with_config(AzureConfigKey::SasKey, s),
    };
    let store = b
        .with_client_options(options)
        .build()
        .map_err(|e| UploadError::Store(e.to_string()))?;
    Ok(Arc::new(store))
}

/// Why one file did not go up.
#[derive(Debug)]
pub enum PutError {
    /// Reading the local file failed (not retried: the file is gone or unreadable).
    Local(io::Error),
    /// The store refused or could not be reached (retried).
    Remote(String),
}

impl std::fmt::Display for PutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutError::Local(e) => write!(f, "reading the file: {e}"),
            PutError::Remote(e) => write!(f, "blob storage: {e}"),
        }
    }
}

/// Uploads `file` as the blob `key`; returns the bytes sent.
pub async fn put_file(
    store: &Arc<dyn ObjectStore>,
    file: &Path,
    key: BlobPath,
) -> Result<u64, PutError> {
    let mut f = tokio::fs::File::open(file).await.map_err(PutError::Local)?;
    let content_type = if file.extension().is_some_and(|e| e == "json") {
        "application/json"
    } else {
        "audio/wav"
    };
    let mut w = BufWriter::with_capacity(store.clone(), key, PART_BYTES)
        .with_max_concurrency(4)
        .with_attributes(Attributes::from_iter([(
            Attribute::ContentType,
            content_type,
        )]));
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let written = async {
        loop {
            let n = f.read(&mut buf).await.map_err(PutError::Local)?;
            if n == 0 {
                return Ok(());
            }
            w.write_all(&buf[..n])
                .await
                .map_err(|e| PutError::Remote(e.to_string()))?;
            sent += n as u64;
        }
    }
    .await;
    if let Err(e) = written {
        // abandons a staged multipart upload (a no-op while the file was still buffered)
        let _ = w.abort().await;
        return Err(e);
    }
    // a failed shutdown leaves uncommitted blocks at most, which the service discards
    w.shutdown()
        .await
        .map_err(|e| PutError::Remote(e.to_string()))?;
    Ok(sent)
}

/// The files of a call folder to upload, in upload order: the recordings by name, then
/// `call.json` last (a reader that sees `call.json` in the container sees the whole call).
/// Dot files (the marker, a temporary `call.json`) and anything but regular files are skipped.
pub fn folder_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // never written by the WAV sink (its names are sanitised UTF-8)
        };
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        files.push((name, entry.path()));
    }
    let json = crate::sinks::wav::CALL_JSON;
    files.sort_by(|a, b| (a.0 == json, &a.0).cmp(&(b.0 == json, &b.0)));
    Ok(files)
}

/// Writes the pending marker into `dir` (logged, not fatal, when it cannot).
pub fn mark_pending(dir: &Path) {
    if let Err(e) = std::fs::write(dir.join(PENDING_MARKER), b"") {
        tracing::warn!(dir = %dir.display(), error = %e, "upload marker not written; the folder is not retried after a restart");
    }
}

/// The call folders under the recordings `root` (`<root>/<date>/<call>/`) that carry the pending
/// marker; unreadable entries are skipped.
pub fn pending_folders(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(days) = std::fs::read_dir(root) else {
        return found;
    };
    for day in days.flatten().filter(|d| d.path().is_dir()) {
        let Ok(calls) = std::fs::read_dir(day.path()) else {
            continue;
        };
        for call in calls.flatten() {
            if call.path().join(PENDING_MARKER).is_file() {
                found.push(call.path());
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_files_put_call_json_last_and_skip_markers_and_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let call = root.join("2024-11-15").join("c1");
        std::fs::create_dir_all(call.join("sub")).unwrap();
        for f in ["call.json", "mixed.wav", "alice.wav", ".call.json.tmp"] {
            std::fs::write(call.join(f), f).unwrap();
        }
        mark_pending(&call);
        let names: Vec<String> = folder_files(&call)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["alice.wav", "mixed.wav", "call.json"]);
        std::fs::create_dir_all(root.join("2024-11-15").join("c2")).unwrap();
        assert_eq!(pending_folders(root), vec![call]);
        assert!(pending_folders(&root.join("missing")).is_empty());
    }
}
