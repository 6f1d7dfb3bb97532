//! Test support: the committed ACS vectors under the repository's `fixtures/vectors/`, read
//! by every module's tests (one loader instead of one per module).

use std::path::PathBuf;

/// The vectors folder.
pub(crate) fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/vectors"
    ))
}

/// The bytes of vector `name`; panics naming the path when it cannot be read.
pub(crate) fn bytes(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Vector `name` as JSON.
pub(crate) fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
