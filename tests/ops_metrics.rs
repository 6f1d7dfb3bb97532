//! The operations files against a running gateway: every metric the Grafana dashboard
//! (`deploy/grafana/acs-media-gateway.json`) and the alert rules (`deploy/prometheus/alerts.yml`)
//! name exists on `/metrics` of a gateway that has served one short call (the `acs-sim` call
//! scenario against its fake ACS: answer, media, callbacks, hang-up, so the labelled series
//! exist), and `acs_gateway_recording_bytes_total` adds up to the WAV data written. Also: the
//! Compose stack's gateway config is valid, and the Dockerfile's version label follows Cargo.toml.

mod common;

use acs_media_gateway::config::{Config, Overrides};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::scenario::{run_call, summary, CallScenario};
use acs_sim::scrape::scrape_value;
use common::{fake_acs, read_response, Gw};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The metric names in a query or text: identifiers starting `acs_gateway_` or `process_`
/// (`process_*` only where the process collector exists, on Linux).
fn metric_names(text: &str, into: &mut BTreeSet<String>) {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| ident(c)) {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
        let word = &tail[..end];
        let preceded_by_ident = rest[..start].chars().next_back().is_some_and(ident);
        if !preceded_by_ident
            && (word.starts_with("acs_gateway_")
                || (cfg!(target_os = "linux") && word.starts_with("process_")))
        {
            into.insert(word.to_owned());
        }
        rest = &tail[end..];
    }
}

/// Every PromQL query of the dashboard: panel targets' `expr` and template variables' queries.
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// Metric names the dashboard and the alert rules use (the rules' runbook text included: it
/// points operators at metrics, which must exist too). Comment lines are skipped.
fn names_used() -> (BTreeSet<String>, BTreeSet<String>) {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/acs-media-gateway.json")).unwrap(),
    )
    .expect("dashboard JSON parses");
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    let mut in_dashboard = BTreeSet::new();
    for q in &queries {
        metric_names(q, &mut in_dashboard);
    }
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let mut in_rules = BTreeSet::new();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        metric_names(line, &mut in_rules);
    }
    (in_dashboard, in_rules)
}

/// Names of the series in a Prometheus text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn metric_names_are_found_in_queries_and_text() {
    let mut got = BTreeSet::new();
    metric_names(
        r#"sum by (le) (rate(acs_gateway_frame_processing_seconds_bucket{job=~"$job"}[5m])) / x_acs_gateway_no"#,
        &mut got,
    );
    metric_names(
        "Check acs_gateway_sink_queue_depth and process_open_fds.",
        &mut got,
    );
    let mut want: BTreeSet<String> = [
        "acs_gateway_frame_processing_seconds_bucket",
        "acs_gateway_sink_queue_depth",
    ]
    .map(String::from)
    .into();
    if cfg!(target_os = "linux") {
        want.insert("process_open_fds".into());
    }
    assert_eq!(got, want);
    assert_eq!(
        exposed("# HELP a x\na_total{k=\"v\"} 1\nb 2\n"),
        ["a_total", "b"].map(String::from).into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_exists_on_a_running_gateway() {
    let (in_dashboard, in_rules) = names_used();
    // the parse found the queries (a broken parse must not pass as "nothing missing")
    assert!(in_dashboard.len() >= 25, "{in_dashboard:?}");
    assert!(in_rules.len() >= 10, "{in_rules:?}");

    let acs = fake_acs(|_| {}).await;
    let mut gw = Gw::start_with_acs(&acs, |_| {}).await;

    // One short call: answered, streamed, called back, hung up.
    let scenario = CallScenario {
        hangup_after: Duration::from_secs(2),
        ..CallScenario::new(EventGridTarget::new(format!(
            "http://{}/api/incomingCall",
            gw.addr
        )))
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_call(&acs, &scenario))
        .await
        .expect("scenario bounded")
        .expect("scenario runs");
    assert!(report.ok, "{}", summary(&report));
    // One refused control-plane request (control_bad_requests_total is labelled by what happened).
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let body = "{not json";
    s.write_all(
        format!(
            "POST /api/incomingCall HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let resp = read_response(&mut s).await.expect("a response");
    assert_eq!(resp.status, 400, "{resp:?}");
    gw.wait_no_connections().await;

    let text = gw.metrics().await;
    let have = exposed(&text);
    let missing: Vec<_> = in_dashboard
        .iter()
        .map(|n| ("dashboard", n))
        .chain(in_rules.iter().map(|n| ("alerts.yml", n)))
        .filter(|(_, n)| !have.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used but not exposed: {missing:?}\n{text}"
    );
    assert_eq!(
        scrape_value(
            &text,
            "acs_gateway_incoming_calls_total{outcome=\"answered\"}"
        ),
        Some(1.0)
    );

    // acs_gateway_recording_bytes_total is the PCM data of the WAV files written.
    let metrics = gw.app().metrics().clone();
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    let mut data_bytes = 0;
    for wav in wavs(gw.dir.path()) {
        let r = hound::WavReader::open(&wav).unwrap();
        data_bytes += u64::from(r.len()) * 2;
    }
    assert!(data_bytes > 0);
    assert_eq!(metrics.recording_bytes.get(), data_bytes);
    acs.shutdown().await;
}

fn wavs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(wavs(&p));
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_compose_gateway_config_is_valid_and_publishes_to_the_stacks_nats() {
    let path = root().join("deploy/compose/gateway.toml");
    let cfg = Config::load(Some(&path), &Overrides::default()).expect("compose config valid");
    assert!(!cfg.server.listens_on_loopback());
    assert!(cfg.server.allow_unauthenticated_media);
    let compose = std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap();
    // its port is published on the host's loopback only (see the config's comment)
    assert!(compose.contains("\"127.0.0.1:8080:8080\""), "{compose}");
    assert!(!compose.contains("\"8080:8080\""));
    let toml = std::fs::read_to_string(&path).unwrap();
    assert!(toml.contains("url = \"nats://nats:4222\""));
}

#[test]
fn the_dockerfile_labels_the_crate_version() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let want = format!("ARG VERSION={}\n", env!("CARGO_PKG_VERSION"));
    assert!(
        dockerfile.contains(&want),
        "deploy/Dockerfile lacks {want:?}"
    );
    let compose = std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap();
    let image = format!("image: acs-media-gateway:{}\n", env!("CARGO_PKG_VERSION"));
    assert!(
        compose.contains(&image),
        "deploy/docker-compose.yml lacks {image:?}"
    );
}
