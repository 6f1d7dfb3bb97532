//! [`SimError`]: every way `acs-sim` can fail, and [`ConnectFailure`], the classified reason a
//! WebSocket connection could not be opened (a label in load reports).

use std::path::PathBuf;

/// Why a WebSocket connection could not be opened, classified for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectFailure {
    /// `EMFILE`: this process ran out of file descriptors (raise `ulimit -n`).
    TooManyOpenFiles,
    /// The TCP connection was refused (nothing listening).
    Refused,
    /// TCP connect + WebSocket handshake did not finish in time.
    Timeout,
    /// The server answered the upgrade with an HTTP status other than 101.
    HttpStatus(u16),
    /// Any other I/O or handshake error.
    Other,
}

impl ConnectFailure {
    /// A short stable label, e.g. `"emfile"`, `"refused"`, `"timeout"`, `"http_503"`, `"other"`.
    pub fn label(self) -> String {
        match self {
            ConnectFailure::TooManyOpenFiles => "emfile".into(),
            ConnectFailure::Refused => "refused".into(),
            ConnectFailure::Timeout => "timeout".into(),
            ConnectFailure::HttpStatus(code) => format!("http_{code}"),
            ConnectFailure::Other => "other".into(),
        }
    }
}

/// Everything `acs-sim` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A command-line option or plan field is out of range or inconsistent.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A WAV file could not be read or decoded.
    #[error("cannot read WAV {path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What hound reported.
        #[source]
        source: hound::Error,
    },
    /// A URL could not be parsed or is not of the expected scheme.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value given for the upgrade request is invalid.
    #[error("bad upgrade header {name:?}: {reason}")]
    Header {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The media WebSocket could not be opened.
    #[error("cannot connect to {url} ({}): {detail}", kind.label())]
    Connect {
        /// The URL.
        url: String,
        /// The classified reason.
        kind: ConnectFailure,
        /// The underlying error text.
        detail: String,
    },
    /// An HTTP request (the `/metrics` scrape) failed.
    #[error("HTTP GET {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading `/proc` failed (gateway CPU figures, file-descriptor limits).
    #[error("cannot read {path}: {reason}")]
    Proc {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Writing a report file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serializing a report failed.
    #[error("cannot serialize report: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading an input file (a PEM key, …) failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The fake ACS's RS256 signing key could not be loaded, generated or used.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// A call scenario step did not happen (the gateway did not answer in time, …).
    #[error("call scenario: {0}")]
    Scenario(String),
}
