//! Cluster mode: two gateways in this process share one NATS JetStream (`.ci/run` starts
//! `nats-server -js`; elsewhere set `ACS_TEST_NATS_URL` or the test says it skipped), driven by
//! `acs-sim`'s fake ACS. A answers; its public URLs point at B, so ACS's callbacks and media
//! land on B. Checked: the IncomingCall delivered to both is answered once; callbacks on B move
//! the record A reads; `/play` on A reaches the media socket B holds (routed by NATS
//! request-reply); a media operation for a replica that is gone is 503, one for a replica that
//! does not answer is 504, both clear JSON and counted; `/readyz` reports NATS. And with NATS
//! gone mid-call (a `nats-server` of the test's own, not the shared one; skipped with a message
//! without `nats-server` on PATH): an IncomingCall and an operator request are 503
//! `nats_unreachable`, the call's media keeps streaming and recording.

mod common;

use acs_sim::acs::{FakeAcsHandle, IncomingCallSpec};
use acs_sim::eventgrid::{self, EventGridTarget};
use common::{eventually, nats_url, wait_until, Gw, STEP};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

const OPERATOR_KEY: &str = "cluster-operator-key-0123";
const TOKEN_SECRET: &str = "cluster-call-token-secret-0123456789";

async fn fake_acs() -> FakeAcsHandle {
    common::fake_acs_realtime(Duration::from_secs(60), |_| {}).await
}

/// A replica named `name` in the cluster `prefix`; `public` is where ACS sends its callbacks
/// and media (another replica's address), if given.
async fn replica(acs: &FakeAcsHandle, prefix: &str, name: &str, public: Option<String>) -> Gw {
    replica_on(acs, prefix, name, public, nats_url()).await
}

async fn replica_on(
    acs: &FakeAcsHandle,
    prefix: &str,
    name: &str,
    public: Option<String>,
    nats: String,
) -> Gw {
    let (cs, aud, iss, jwks) = (
        acs.connection_string(),
        acs.audience.clone(),
        acs.issuer.clone(),
        acs.jwks_url.clone(),
    );
    let (prefix, name) = (prefix.to_owned(), name.to_owned());
    Gw::start(move |c| {
        c.acs.connection_string = cs;
        c.acs.resource_id = aud;
        c.acs.jwt.issuer = iss;
        c.acs.jwt.jwks_url = jwks;
        c.control.operator_api_key = OPERATOR_KEY.into();
        c.control.call_token_secret = TOKEN_SECRET.into();
        if let Some(p) = public {
            c.control.public_base_url = p;
        }
        for p in c.answer.profiles.values_mut() {
            p.enable_bidirectional = true;
        }
        c.cluster.nats_url = nats;
        c.cluster.bucket_prefix = prefix;
        c.cluster.replica_id = name;
        c.cluster.heartbeat_secs = 1;
        c.cluster.request_timeout_ms = 1_000;
    })
    .await
}

async fn operator(
    gw: &Gw,
    method: reqwest::Method,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    common::api(gw.addr, method, path, OPERATOR_KEY, ct, body).await
}

/// Key-value operations (claim, load, store, list; any outcome) the replicas have made, by op.
async fn kv_ops(gws: &[&Gw]) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    for op in ["claim", "load", "store", "list"] {
        for outcome in ["ok", "conflict", "timeout", "error"] {
            for gw in gws {
                let series = format!(
                    "acs_gateway_cluster_requests_total{{op=\"{op}\",outcome=\"{outcome}\"}}"
                );
                *m.entry(op.to_owned()).or_insert(0.0) += gw.metric(&series).await;
            }
        }
    }
    m
}

/// GET `path` with the operator key on replica `gw`.
async fn get(gw: &Gw, path: &str) -> (u16, Value) {
    operator(gw, reqwest::Method::GET, path, "", vec![]).await
}

/// The call `id` as replica `gw` reports it, once `f` holds for it.
async fn wait_call(gw: &Gw, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let f = &f;
    eventually(&format!("call {what}"), STEP, || async move {
        let (_, v) = get(gw, &format!("/api/calls/{id}")).await;
        if f(&v) {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await
}

/// The delivered callbacks of a call as (event without prefix, time the receiver took).
fn callback_latencies(acs: &FakeAcsHandle, conn: &str) -> Vec<(String, Duration)> {
    let call = acs.call(conn).expect("call known to the fake ACS");
    call.callbacks
        .iter()
        .filter(|c| c.delivered())
        .map(|c| {
            let event = c
                .event_type
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            (event, Duration::from_micros(c.latency_us))
        })
        .collect()
}

fn target(gw: &Gw) -> EventGridTarget {
    let mut t = EventGridTarget::new(format!("http://{}/api/incomingCall", gw.addr));
    t.attempt_timeout = STEP;
    t.retry_delays = vec![];
    t
}

fn wav(rate: u32, ms: u32) -> Vec<u8> {
    let n = (rate * ms / 1000) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| (6_000.0 * (i as f64 * 0.3).sin()) as i16)
        .collect();
    let mut c = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut c, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    c.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_calls_answer_once_and_route_media_operations() {
    let Some(js) = common::jetstream().await else {
        return;
    };

    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let acs = fake_acs().await;
    let b = replica(&acs, &prefix, "b", None).await;
    let a = replica(&acs, &prefix, "a", Some(format!("http://{}", b.addr))).await;
    let (s, ready) = common::http_get(a.addr, "/readyz").await;
    assert_eq!(s, 200, "{ready}");
    assert!(ready.contains("\"nats\":\"reachable\""), "{ready}");

    // The IncomingCall delivered to both replicas: answered once.
    let kv_before = kv_ops(&[&a, &b]).await;
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550123", "+18005550100"));
    let mut webhook = Vec::new();
    for gw in [&a, &b] {
        let t = std::time::Instant::now();
        let r = eventgrid::deliver_incoming_call(&target(gw), &acs.topic(), &data, 0)
            .await
            .unwrap();
        webhook.push(t.elapsed());
        assert!(r.delivered, "{r:?}");
    }
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered")
        .call_connection_id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        acs.requests_of("answer_call").len(),
        1,
        "answered exactly once"
    );
    assert_eq!(
        a.metric("acs_gateway_incoming_calls_total{outcome=\"answered\"}")
            .await,
        1.0
    );
    assert_eq!(
        b.metric("acs_gateway_incoming_calls_total{outcome=\"duplicate\"}")
            .await,
        1.0
    );

    // Callbacks and media land on B; A sees the shared record move.
    let v = wait_call(&a, &conn, "streaming with media on b", |v| {
        v["state"] == "streaming"
            && v["mediaConnection"]["connected"] == true
            && v["mediaConnection"]["replica"] == "b"
    })
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(
        b.metric("acs_gateway_callbacks_total{type=\"CallConnected\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        a.metric("acs_gateway_callbacks_total{type=\"CallConnected\"}")
            .await,
        0.0
    );
    assert_eq!(a.app().media_connections(), 0);
    assert_eq!(b.app().media_connections(), 1);
    // What the shared registry cost this call so far (answer, callbacks, media admission):
    // the key-value operations of both replicas, printed for the README and bounded here.
    let kv_after = kv_ops(&[&a, &b]).await;
    let per_op: Vec<String> = kv_after
        .iter()
        .map(|(op, n)| format!("{op} {}", n - kv_before.get(op).copied().unwrap_or(0.0)))
        .collect();
    let total: f64 = kv_after.values().sum::<f64>() - kv_before.values().sum::<f64>();
    eprintln!(
        "cluster: one call from IncomingCall (delivered twice) to streaming: {total} KV operations \
         ({}); IncomingCall webhook on the answering replica {:?}, on the other {:?}",
        per_op.join(", "),
        webhook[0],
        webhook[1]
    );
    assert!(
        (3.0..=60.0).contains(&total),
        "KV operations per call out of bounds: {total}"
    );

    // /play on A: routed to B, which holds the socket and plays it.
    let (s, p) = operator(
        &a,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/play"),
        "audio/wav",
        wav(16_000, 200),
    )
    .await;
    assert_eq!(s, 202, "{p}");
    let pid = p["playbackId"].as_str().unwrap().to_owned();
    eventually("playback sent on b", STEP, || async {
        let (s, v) = get(&a, &format!("/api/calls/{id}/playbacks/{pid}")).await;
        assert_eq!(s, 200, "{v}");
        if v["framesSent"].as_u64().unwrap_or(0) >= 10 {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;
    assert!(
        a.metric("acs_gateway_cluster_requests_total{op=\"route\",outcome=\"ok\"}")
            .await
            >= 2.0
    );
    let (s, v) = operator(
        &a,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/stop-audio"),
        "",
        vec![],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // The record names a replica that is gone (no heartbeat): 503, clear JSON, counted.
    let kv = js.get_key_value(format!("{prefix}-calls")).await.unwrap();
    let set_owner = |owner: &'static str| {
        let kv = kv.clone();
        let key = format!("call.{id}");
        async move {
            let e = kv.entry(key.as_str()).await.unwrap().unwrap();
            let mut v: Value = serde_json::from_slice(&e.value).unwrap();
            v["record"]["mediaConnection"]["replica"] = owner.into();
            v["record"]["mediaConnection"]["connected"] = true.into();
            kv.update(
                key.as_str(),
                serde_json::to_vec(&v).unwrap().into(),
                e.revision,
            )
            .await
            .unwrap();
        }
    };
    set_owner("ghost").await;
    let (s, v) = operator(
        &a,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/stop-audio"),
        "",
        vec![],
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["code"], "routing_replica_gone", "{v}");
    assert_eq!(
        a.metric("acs_gateway_cluster_routing_failures_total{reason=\"replica_gone\"}")
            .await,
        1.0
    );

    // A replica with a heartbeat that never answers: 504 after request_timeout_ms.
    let hb = js
        .get_key_value(format!("{prefix}-replicas"))
        .await
        .unwrap();
    hb.put("mute", "{}".into()).await.unwrap();
    let client = async_nats::connect(nats_url().as_str()).await.unwrap();
    let mut mute = client
        .subscribe(format!("{prefix}.media.mute"))
        .await
        .unwrap();
    set_owner("mute").await;
    let (s, v) = operator(
        &a,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/stop-audio"),
        "",
        vec![],
    )
    .await;
    assert_eq!(s, 504, "{v}");
    assert_eq!(v["code"], "routing_timeout", "{v}");
    assert!(
        tokio::time::timeout(STEP, mute.next())
            .await
            .unwrap()
            .is_some(),
        "request reached the mute replica"
    );
    assert_eq!(
        a.metric("acs_gateway_cluster_routing_failures_total{reason=\"timeout\"}")
            .await,
        1.0
    );
    assert!(a.metric("acs_gateway_cluster_replicas").await >= 2.0);

    // The same IncomingCall delivery to a gateway without a cluster (same fake ACS, same
    // machine), for the latency the shared registry adds: first delivery and a duplicate.
    let solo = replica_on(&acs, &prefix, "solo", None, String::new()).await;
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550124", "+18005550100"));
    let mut solo_webhook = Vec::new();
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let r = eventgrid::deliver_incoming_call(&target(&solo), &acs.topic(), &data, 0)
            .await
            .unwrap();
        solo_webhook.push(t.elapsed());
        assert!(r.delivered, "{r:?}");
    }
    eprintln!(
        "cluster: IncomingCall webhook without a cluster: {:?} (duplicate {:?}); with NATS: {:?} \
         (duplicate on the other replica {:?})",
        solo_webhook[0], solo_webhook[1], webhook[0], webhook[1]
    );
    // Callbacks: how long each replica took to answer ACS's POSTs (the fake ACS times them),
    // the clustered call's (on B, which loads and stores the shared record) against the solo
    // gateway's call.
    let solo_conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("solo answered")
        .call_connection_id;
    acs.wait_for_callback(&solo_conn, "CallConnected", STEP)
        .await
        .expect("solo CallConnected");
    let (clustered, single) = (
        callback_latencies(&acs, &conn),
        callback_latencies(&acs, &solo_conn),
    );
    eprintln!(
        "cluster: callback POST answered in (event, time) with NATS: {clustered:?}; without a \
         cluster: {single:?}"
    );
    for (event, took) in clustered.iter().chain(&single) {
        assert!(*took < STEP, "{event} took {took:?}");
    }
    assert!(
        clustered.iter().any(|(e, _)| e == "CallConnected")
            && single.iter().any(|(e, _)| e == "CallConnected"),
        "{clustered:?} {single:?}"
    );

    // Hang up through A: the call ends on ACS, whose CallDisconnected lands on B.
    let (s, v) = operator(
        &a,
        reqwest::Method::POST,
        &format!("/api/calls/{id}/hangup"),
        "application/json",
        b"{\"forEveryone\":true}".to_vec(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_call(&a, &id, "disconnected", |v| v["state"] == "disconnected").await;
}

/// A `nats-server -js` of this test's own on a free port (stopping it must not break the other
/// tests, which share the one `.ci/run` starts); `None` with a visible message (a failure under
/// `CI`) when `nats-server` is not on PATH.
struct OwnNats {
    url: String,
    child: std::process::Child,
    _store: tempfile::TempDir,
}

impl OwnNats {
    async fn start() -> Option<Self> {
        let store = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            let msg =
                "SKIPPED: NATS-unreachable test: no nats-server on PATH (.ci/run installs it)";
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("{msg}");
            return None;
        };
        let me = Self {
            url: format!("nats://127.0.0.1:{port}"),
            child,
            _store: store,
        };
        wait_until("own nats-server started", STEP, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Some(me)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_gone_mid_call_requests_get_503_and_media_keeps_recording() {
    let Some(mut nats) = OwnNats::start().await else {
        return;
    };
    let acs = fake_acs().await;
    let gw = replica_on(&acs, "u", "solo", None, nats.url.clone()).await;
    let data = acs.incoming_call(IncomingCallSpec::phone("+14255550124", "+18005550100"));
    let r = eventgrid::deliver_incoming_call(&target(&gw), &acs.topic(), &data, 0)
        .await
        .unwrap();
    assert!(r.delivered, "{r:?}");
    let conn = acs
        .wait_for_answer(&data.incoming_call_context, STEP)
        .await
        .expect("answered")
        .call_connection_id;
    let v = wait_call(&gw, &conn, "streaming", |v| {
        v["state"] == "streaming" && v["mediaConnection"]["connected"] == true
    })
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let audio = "acs_gateway_frames_total{kind=\"audio_data\"}";
    let wav = "acs_gateway_sink_frames_total{sink=\"wav\"}";
    wait_until("audio", STEP, || async { gw.metric(audio).await >= 10.0 }).await;

    nats.stop();
    let body = eventually("/readyz 503", STEP, || async {
        match common::http_get(gw.addr, "/readyz").await {
            (503, body) => Ok(body),
            other => Err(other),
        }
    })
    .await;
    assert!(body.contains("nats_unreachable"), "{body}");
    let (frames, written) = (gw.metric(audio).await, gw.metric(wav).await);

    // A new IncomingCall cannot be claimed cluster-wide: 503 for Event Grid to redeliver.
    let data2 = acs.incoming_call(IncomingCallSpec::phone("+14255550125", "+18005550100"));
    let r = eventgrid::deliver_incoming_call(&target(&gw), &acs.topic(), &data2, 0)
        .await
        .unwrap();
    assert!(!r.delivered, "{r:?}");
    assert_eq!(r.attempts[0].status, Some(503), "{r:?}");
    assert_eq!(
        gw.metric("acs_gateway_cluster_nats_unreachable_total{endpoint=\"incoming_call\"}")
            .await,
        1.0
    );
    // An operator request: 503 JSON naming the cause.
    let (s, v) = get(&gw, &format!("/api/calls/{id}")).await;
    assert_eq!((s, &v["code"]), (503, &"nats_unreachable".into()), "{v}");

    // The call's media keeps streaming and recording (half a second more of it).
    wait_until("media going on without NATS", STEP, || async {
        gw.metric(audio).await >= frames + 25.0 && gw.metric(wav).await >= written + 25.0
    })
    .await;
    assert_eq!(gw.app().media_connections(), 1);
    assert_eq!(
        acs.requests_of("answer_call").len(),
        1,
        "the second call not answered"
    );
    eprintln!(
        "NATS gone: {} more frames streamed and recorded; IncomingCall and operator got 503",
        gw.metric(audio).await - frames
    );
}
