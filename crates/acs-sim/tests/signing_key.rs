//! `acs-sim acs` keeps its signing key across restarts: two starts on one state directory publish
//! the same `kid` in their JWKS, another directory gives another key. Runs the real binary on
//! 127.0.0.1:0; every wait is bounded.

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Bound on one HTTP exchange.
const STEP: Duration = Duration::from_secs(10);

/// Starts `acs-sim acs` with `state_dir`, returns the `kid` its JWKS publishes.
async fn acs_sim_kid(state_dir: &Path) -> String {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_acs-sim"))
        .args(["acs", "--listen", "127.0.0.1:0", "--duration-secs", "120"])
        .arg("--state-dir")
        .arg(state_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("acs-sim runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // generating the key takes seconds in a debug build
    let jwks_url = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.trim().strip_prefix("JWKS") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("acs-sim ended before printing its JWKS URL")
    })
    .await
    .expect("acs-sim starts in time");
    let jwks: serde_json::Value = reqwest::Client::new()
        .get(&jwks_url)
        .timeout(STEP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    keys[0]["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn acs_sim_publishes_the_same_kid_across_restarts() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    let first = acs_sim_kid(&dir).await;
    assert!(dir.join("signing-key.pem").is_file());
    let second = acs_sim_kid(&dir).await;
    assert_eq!(first, second, "a restart keeps the signing key");
    // Another state directory: another key.
    let other = acs_sim_kid(&state.path().join("other")).await;
    assert_ne!(other, first);
}
