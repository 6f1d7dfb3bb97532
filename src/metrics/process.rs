//! Process and build metrics: the standard `process_*` families (CPU seconds, resident and virtual
//! memory, open and maximum file descriptors, start time, threads), read from procfs at each
//! scrape by the `prometheus` crate's process collector (Linux only; elsewhere they are absent),
//! and `acs_gateway_build_info{version,commit}`, always 1, which says what is running.

use super::register::Reg;
use prometheus::Registry;

/// The gateway's version (`Cargo.toml`).
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the gateway was built from (12 hex digits), `unknown` when the build had no git
/// checkout and no `ACS_MEDIA_GATEWAY_COMMIT` (set by `build.rs`).
pub(crate) const COMMIT: &str = env!("ACS_MEDIA_GATEWAY_GIT_COMMIT");

/// Registers the process collector (on Linux) and `acs_gateway_build_info`.
pub(super) fn register(registry: &Registry) {
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("register");
    Reg(registry)
        .gauge_vec(
            "build_info",
            "Always 1; its labels say which build is running: version (Cargo.toml) and commit \
             (git, or unknown).",
            &["version", "commit"],
        )
        .with_label_values(&[VERSION, COMMIT])
        .set(1);
}
