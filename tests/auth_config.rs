//! Secure defaults end to end: a gateway listening beyond loopback with no credential on media
//! refuses to start (library and binary) unless `server.allow_unauthenticated_media` says so;
//! the shipped deploy config fails closed and passes `--check-config` with its documented
//! environment. (That `acs-sim acs` keeps its key across restarts is tested in acs-sim's own
//! tests, `crates/acs-sim/tests/signing_key.rs`.)

mod common;

use acs_media_gateway::app;
use acs_media_gateway::config::Config;
use common::{http_get, Gw};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "server.allow_unauthenticated_media";

#[tokio::test]
async fn an_exposed_listener_with_open_media_admission_does_not_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.listen = "0.0.0.0:0".into();
    for s in &mut cfg.sinks {
        s.set_recordings_dir(dir.path());
    }
    let e = app::start(cfg).await.expect_err("must not start");
    let msg = e.to_string();
    assert!(msg.contains(KEY) && msg.contains("0.0.0.0:0"), "{msg}");
    assert_eq!(msg.matches("\n  - ").count(), 1, "one clear error: {msg}");

    // Explicitly allowed, it starts (probed over loopback only).
    let mut gw = Gw::start(|c| {
        c.server.listen = "0.0.0.0:0".into();
        c.server.allow_unauthenticated_media = true;
    })
    .await;
    let local = SocketAddr::from(([127, 0, 0, 1], gw.addr.port()));
    let (status, _) = http_get(local, "/healthz").await;
    assert_eq!(status, 200);
    assert!(gw.shutdown().await.clean());
}

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acs-media-gateway"));
    cmd.args(args).current_dir(dir.path());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ACS_GATEWAY_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the gateway binary runs")
}

#[test]
fn the_binary_refuses_an_exposed_open_config_with_one_clear_error() {
    for extra in [&["--check-config"][..], &[]] {
        let mut args = vec!["--listen", "0.0.0.0:0"];
        args.extend_from_slice(extra);
        let out = gateway(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(KEY), "{stderr}");
        assert!(
            stderr.contains("ACS_GATEWAY_SERVER__ALLOW_UNAUTHENTICATED_MEDIA=true"),
            "{stderr}"
        );
    }
    let out = gateway(
        &["--listen", "0.0.0.0:0", "--check-config"],
        &[("ACS_GATEWAY_SERVER__ALLOW_UNAUTHENTICATED_MEDIA", "true")],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configuration ok\n");
    // Loopback stays open by default.
    let out = gateway(&["--check-config"], &[]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_deploy_config_fails_closed_and_checks_with_its_documented_env() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway.toml");
    let file = file.to_str().unwrap();
    let out = gateway(&["--config", file, "--check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("acs.resource_id"), "{stderr}");
    let documented = [
        (
            "ACS_GATEWAY_ACS__RESOURCE_ID",
            "11111111-2222-3333-4444-555555555555",
        ),
        (
            "ACS_GATEWAY_ACS__CONNECTION_STRING",
            "endpoint=https://contoso.communication.azure.com/;accesskey=dGVzdC1rZXk=",
        ),
        (
            "ACS_GATEWAY_CONTROL__PUBLIC_BASE_URL",
            "https://media-gateway.example.com",
        ),
        (
            "ACS_GATEWAY_CONTROL__CALL_TOKEN_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
    ];
    let out = gateway(&["--config", file, "--check-config"], &documented);
    assert!(out.status.success(), "{out:?}");
    // A connection string without the public base URL is reported.
    let out = gateway(&["--config", file, "--check-config"], &documented[..2]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("control.public_base_url"), "{stderr}");
}
