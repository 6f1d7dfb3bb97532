//! Build script: finds the git commit the gateway is built from, for
//! `acs_gateway_build_info{commit}` (`src/metrics/process.rs`).
//!
//! Neither variable starts with `ACS_GATEWAY_`: `cargo run` and `cargo test` put `rustc-env`
//! variables in the program's environment too, and the gateway refuses unknown `ACS_GATEWAY_*`
//! configuration variables.
//!
//! `ACS_MEDIA_GATEWAY_COMMIT`, when set and not empty, wins (a container build has no `.git`; the
//! Dockerfile passes it as a build argument). Otherwise `git rev-parse` in the package directory;
//! without git or outside a checkout the commit is `unknown`, and the build never fails for it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ACS_MEDIA_GATEWAY_COMMIT");
    let from_env = std::env::var("ACS_MEDIA_GATEWAY_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    let commit = from_env
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ACS_MEDIA_GATEWAY_GIT_COMMIT={commit}");
}

/// `git rev-parse --short=12 HEAD`, and rerun triggers on the files that move when HEAD does.
fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let commit = git(&dir, &["rev-parse", "--short=12", "HEAD"])?;
    if !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (another branch checked out), the branch's ref file
    // (a commit) and packed-refs. Only files that exist: a missing one would rerun every build.
    let mut watch = Vec::new();
    if let Some(git_dir) = git(&dir, &["rev-parse", "--absolute-git-dir"]) {
        watch.push(Path::new(&git_dir).join("HEAD"));
    }
    if let Some(common) = git(
        &dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ) {
        let common = PathBuf::from(common);
        if let Some(head_ref) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(common.join(head_ref));
        }
        watch.push(common.join("packed-refs"));
    }
    for path in watch.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

/// One git command's trimmed standard output, `None` on any failure.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
