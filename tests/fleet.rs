//! The fleet: three gateway processes (the real binary) sharing one `nats-server -js`, behind
//! `acs-sim`'s round-robin TCP proxy, driven through the proxy by `acs-sim`'s fake ACS (its
//! callbacks and media go to the proxy too, as they would to a load balancer). The proxy routes
//! like an ingress by path: Event Grid's `/api/incomingCall` to r0 and r1 in turn, media (`/ws`)
//! to r2, ACS's callbacks starting at r2, everything else round robin over all three; so the
//! answering replica (r0 or r1) never holds the media nor gets the first callbacks,
//! deterministically. Which replica did what is observed, not assumed: the
//! proxy's log (where each connection went) and each replica's own metrics (answers, callbacks,
//! `ws_connections_active`). Checked: the IncomingCall delivered twice (to different replicas)
//! is answered once; callbacks land on replicas other than the one that answered; media lands on
//! another replica than the answering one; that replica (observed holding no media) is
//! SIGKILLed mid-call and the call carries on (operator requests, a recording started and its
//! callback applied, all through the proxy); the replica observed holding the media is
//! SIGTERMed, finalises the call's WAV and uploads the call folder to Azurite before it exits
//! (each file a blob with the same bytes; without Azurite, `ACS_TEST_AZURITE_URL`, that check
//! says SKIPPED); the operator hang-up through the proxy (on the last replica) ends the call.
//! Skips with a message without a JetStream-enabled NATS (`ACS_TEST_NATS_URL`).

mod common;
use acs_media_gateway::upload::policy::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use acs_sim::acs::IncomingCallSpec;
use acs_sim::eventgrid::{self, EventGridTarget};
use acs_sim::proxy::Route;
use common::{eventually, nats_url, wait_until, STEP};
use object_store::ObjectStoreExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OPERATOR_KEY: &str = "fleet-operator-key-0123";

struct Replica {
    name: String,
    addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn http(addr: SocketAddr, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    // common::api opens a new connection per request: the proxy balances connections
    common::api(
        addr,
        method,
        path,
        OPERATOR_KEY,
        "application/json",
        body.to_owned(),
    )
    .await
}

async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, text) = common::http_get(addr, "/metrics").await;
    acs_sim::scrape::scrape_value(&text, series).unwrap_or(0.0)
}

/// Media sockets open on the replica at `addr` (its own gauge; panics when it cannot be read).
async fn media_sockets(addr: SocketAddr) -> f64 {
    let (s, text) = common::http_get(addr, "/metrics").await;
    assert_eq!(s, 200, "/metrics of {addr}");
    acs_sim::scrape::scrape_value(&text, "acs_gateway_ws_connections_active")
        .unwrap_or_else(|| panic!("no ws_connections_active on {addr}"))
}

/// How long the fleet is given for each step it is waited on.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_a_proxy_carry_a_call_through_kill_and_drain() {
    let Some(_js) = common::jetstream().await else {
        return;
    };
    let started = Instant::now();
    let acs = common::fake_acs_realtime(Duration::from_secs(120), |_| {}).await;
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    // an ingress routing by path: deliveries to r0/r1, media to r2, callbacks starting at r2
    // (the fake ACS keeps its connection: the next replica only once r2 is gone), the rest
    // round robin
    let routes = vec![
        Route {
            prefix: "/api/incomingCall".into(),
            backends: vec![0, 1],
        },
        Route {
            prefix: "/ws".into(),
            backends: vec![2],
        },
        Route {
            prefix: "/api/callbacks".into(),
            backends: vec![2, 0, 1],
        },
    ];
    let proxy =
        acs_sim::proxy::start_with_routes("127.0.0.1:0".parse().unwrap(), addrs.clone(), routes)
            .await
            .unwrap();
    let prefix = format!("f{}", uuid::Uuid::new_v4().simple());
    // recordings go to Azurite when it runs (.ci/run starts it); otherwise that check says SKIPPED
    let container = common::azurite::container().await;
    let upload = container.as_deref().map_or(String::new(), |c| {
        format!(
            "[upload]\nenabled = true\naccount = \"{}\"\naccount_key = \"{}\"\ncontainer = \"{c}\"\n\
             endpoint = \"{}\"\nprefix = \"fleet\"\nbackoff_initial_ms = 20\nbackoff_max_ms = 100\n",
            DEV_ACCOUNT,
            DEV_ACCOUNT_KEY,
            common::azurite::azurite_url()
        )
    });
    let mut replicas = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let name = format!("r{i}");
        let dir = tmp.path().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let toml = format!(
            r#"[server]
listen = "{addr}"
shed_lag_ms = 0
shutdown_grace_ms = 10000
[acs]
connection_string = "{cs}"
resource_id = "{aud}"
[acs.jwt]
issuer = "{iss}"
jwks_url = "{jwks}"
[control]
public_base_url = "http://{proxy}"
operator_api_key = "{OPERATOR_KEY}"
call_token_secret = "fleet-call-token-secret-0123456789abcdef"
[cluster]
nats_url = "{nats}"
replica_id = "{name}"
bucket_prefix = "{prefix}"
heartbeat_secs = 1
request_timeout_ms = 2000
[[sinks]]
type = "wav"
dir = "{dir}"
{upload}"#,
            cs = acs.connection_string(),
            aud = acs.audience,
            iss = acs.issuer,
            jwks = acs.jwks_url,
            proxy = proxy.addr,
            nats = nats_url(),
            dir = dir.display(),
        );
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_acs-media-gateway"))
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gateway binary starts");
        replicas.push(Replica {
            name,
            addr: *addr,
            dir,
            child,
        });
    }
    for r in &replicas {
        let a = r.addr;
        wait_until(&format!("{} ready", r.name), WAIT, || async {
            tokio::net::TcpStream::connect(a).await.is_ok()
                && common::http_get(a, "/readyz").await.0 == 200
        })
        .await;
    }
    let ready = started.elapsed();

    // The IncomingCall, delivered twice through the proxy (two connections: two replicas).
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550123", "+18005550100"));
    let mut t = EventGridTarget::new(format!("http://{}/api/incomingCall", proxy.addr));
    t.attempt_timeout = STEP;
    t.retry_delays = vec![];
    let t0 = Instant::now();
    for _ in 0..2 {
        let r = eventgrid::deliver_incoming_call(&t, &acs.topic(), &data, 0)
            .await
            .unwrap();
        assert!(r.delivered, "{r:?}");
    }
    let delivered_to: Vec<usize> = proxy
        .log()
        .iter()
        .filter(|r| r.path == "/api/incomingCall")
        .map(|r| r.backend)
        .collect();
    assert_eq!(delivered_to.len(), 2, "{:?}", proxy.log());
    assert_ne!(
        delivered_to[0], delivered_to[1],
        "the two deliveries reached different replicas"
    );
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered")
        .call_connection_id;
    let answered_in = t0.elapsed();
    let mut answered_by = None;
    let mut answers = 0.0;
    for r in &replicas {
        let n = metric(
            r.addr,
            "acs_gateway_incoming_calls_total{outcome=\"answered\"}",
        )
        .await;
        if n > 0.0 {
            answered_by = Some(r.name.clone());
        }
        answers += n;
    }
    assert_eq!(answers, 1.0, "answered once across the fleet");
    assert_eq!(acs.requests_of("answer_call").len(), 1);
    let answered_by = answered_by.unwrap();

    // Media lands on one replica, another than the answering one: observed on the replicas'
    // own gauges, and the shared record and the proxy's log agree.
    let rec = eventually("streaming", WAIT, || async {
        let rec = http(
            proxy.addr,
            reqwest::Method::GET,
            &format!("/api/calls/{conn}"),
            "",
        )
        .await
        .1;
        if rec["state"] == "streaming" && rec["mediaConnection"]["connected"] == true {
            Ok(rec)
        } else {
            Err(rec)
        }
    })
    .await;
    let id = rec["id"].as_str().unwrap().to_owned();
    let holders = media_holders(&replicas).await;
    assert_eq!(
        holders.len(),
        1,
        "one replica holds the media socket: {holders:?}"
    );
    let holder = holders[0].clone();
    assert_eq!(
        rec["mediaConnection"]["replica"],
        holder.as_str(),
        "the shared record names the holder: {rec}"
    );
    let ws_to: Vec<String> = proxy
        .log()
        .iter()
        .filter(|r| r.path.starts_with("/ws"))
        .map(|r| replicas[r.backend].name.clone())
        .collect();
    assert_eq!(
        ws_to,
        vec![holder.clone()],
        "the proxy handed the media socket to {holder}"
    );
    assert_ne!(
        holder, answered_by,
        "media landed on another replica than the answering one"
    );
    // Callbacks went through the proxy: to replicas other than the one that answered.
    let mut with_callbacks = Vec::new();
    for r in &replicas {
        if metric(
            r.addr,
            "acs_gateway_callbacks_total{type=\"CallConnected\"}",
        )
        .await
            + metric(
                r.addr,
                "acs_gateway_callbacks_total{type=\"MediaStreamingStarted\"}",
            )
            .await
            > 0.0
        {
            with_callbacks.push(r.name.clone());
        }
    }
    assert!(
        with_callbacks.iter().any(|n| *n != answered_by),
        "callbacks only on the answering replica {answered_by}: {with_callbacks:?}"
    );

    // SIGKILL a replica observed holding no media (the answering one): the call carries on.
    let victim = replicas.iter().position(|r| r.name == answered_by).unwrap();
    assert_eq!(
        media_sockets(replicas[victim].addr).await,
        0.0,
        "{answered_by} holds no media socket"
    );
    replicas[victim].child.kill().unwrap();
    replicas[victim].child.wait().unwrap();
    let killed = replicas[victim].name.clone();
    for _ in 0..3 {
        let (s, v) = http(
            proxy.addr,
            reqwest::Method::GET,
            &format!("/api/calls/{id}"),
            "",
        )
        .await;
        assert_eq!(s, 200, "after SIGKILL of {killed}: {v}");
        assert_eq!(v["state"], "streaming", "{v}");
    }
    let (s, v) = http(
        proxy.addr,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/recording/start"),
        "{}",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_until("the recording callback applied", WAIT, || async {
        let v = http(
            proxy.addr,
            reqwest::Method::GET,
            &format!("/api/calls/{id}"),
            "",
        )
        .await
        .1;
        v["recording"]["state"] == "active"
    })
    .await;

    // SIGTERM the media holder mid-call: it drains and finalises the call's WAV. First let it
    // take a second of audio (on a loaded machine the stream may have started late).
    let h = replicas.iter().position(|r| r.name == holder).unwrap();
    let holder_addr = replicas[h].addr;
    assert_eq!(
        media_holders(&replicas[h..=h]).await,
        vec![holder.clone()],
        "{holder} still holds the media socket before SIGTERM"
    );
    wait_until("a second of audio on the media holder", WAIT, || async {
        metric(holder_addr, "acs_gateway_frames_total{kind=\"audio_data\"}").await >= 50.0
    })
    .await;
    let pid = replicas[h].child.id();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let drain = Instant::now();
    let status = eventually(
        &format!("{holder} exited on SIGTERM"),
        Duration::from_secs(30),
        || {
            let exited = replicas[h].child.try_wait().unwrap();
            async move { exited.ok_or("running") }
        },
    )
    .await;
    assert!(status.success(), "{holder} exit: {status:?}");
    let wavs: Vec<PathBuf> = walk(&replicas[h].dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    assert!(!wavs.is_empty(), "no WAV on {holder}");
    for w in &wavs {
        let (rate, samples) = common::read_wav(w);
        assert_eq!(rate, 16_000);
        assert!(
            samples.len() > 16_000 / 2,
            "{w:?}: {} samples",
            samples.len()
        );
    }

    // The drained replica uploaded the finalised call folder before it exited: every local file
    // of the call is a blob with the same bytes.
    if let Some(c) = container.as_deref() {
        let store = common::azurite::reader(c);
        let listed: Vec<String> = {
            use futures_util::StreamExt;
            store
                .list(Some(&object_store::path::Path::from("fleet")))
                .map(|m| m.unwrap().location.to_string())
                .collect()
                .await
        };
        for w in &wavs {
            let call_dir = w.parent().unwrap();
            for f in ["mixed.wav", "call.json"] {
                let local = std::fs::read(call_dir.join(f)).unwrap();
                let key = listed
                    .iter()
                    .find(|k| {
                        k.ends_with(&format!(
                            "/{}/{f}",
                            call_dir.file_name().unwrap().to_string_lossy()
                        ))
                    })
                    .unwrap_or_else(|| panic!("{f} of {call_dir:?} not uploaded: {listed:?}"));
                let blob = store
                    .get(&object_store::path::Path::from(key.as_str()))
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(blob.as_ref(), local.as_slice(), "{key}");
            }
        }
    } else {
        eprintln!("SKIPPED: the upload check (no Azurite; .ci/run starts one)");
    }

    // Hang up through the proxy: the last replica serves it.
    let (s, v) = http(
        proxy.addr,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/hangup"),
        r#"{"forEveryone":true}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_until("disconnected", WAIT, || async {
        let v = http(
            proxy.addr,
            reqwest::Method::GET,
            &format!("/api/calls/{id}"),
            "",
        )
        .await
        .1;
        v["state"] == "disconnected"
    })
    .await;
    eprintln!(
        "fleet: 3 replicas ready in {ready:?}; answered in {answered_in:?} by {answered_by}; media on {holder}; \
         SIGKILLed {killed}; {holder} drained in {:?}; proxy connections {:?}; whole test {:?}",
        drain.elapsed(),
        proxy.connections(),
        started.elapsed()
    );
}

/// The replicas whose `ws_connections_active` gauge shows an open media socket.
async fn media_holders(replicas: &[Replica]) -> Vec<String> {
    let mut out = Vec::new();
    for r in replicas {
        if media_sockets(r.addr).await > 0.0 {
            out.push(r.name.clone());
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
