//! Hostile and broken input over real WebSockets: each case gets its documented close code or
//! is dropped and counted, the process stays up, and audio received before is kept.

mod common;
use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

/// Sends `good` frames of the tone fixture, then `bad`, and returns the gateway with the
/// connection still open.
async fn prelude(gw: &Gw, call: &str, good: usize) -> (Ws, Vec<i16>) {
    let (_, tone) = fixture("tone_1k_16k.wav");
    let fr = frames(&tone, 320);
    let mut ws = gw.connect("/ws", call).await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        fr.iter()
            .take(good)
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, None, false)),
    );
    send_all(&mut ws, msgs).await;
    (ws, tone[..good * 320].to_vec())
}

async fn kept(gw: &Gw, call: &str) -> Vec<i16> {
    read_wav(&gw.call_dir(call).join("mixed.wav")).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_input_closes_with_the_documented_code_and_keeps_earlier_audio() {
    let mut gw = Gw::start(|c| c.server.max_frame_bytes = 64 * 1024).await;
    // (call, what to send, expected close code, reason fragment, metric reason)
    let cases: Vec<(&str, Message, u16, &str, &str)> = vec![
        (
            "bad-json",
            Message::text("{\"kind\":\"AudioData\",\"audioData\":"),
            1007,
            "malformed JSON",
            "malformed_json",
        ),
        (
            "not-json",
            Message::text("hello there"),
            1007,
            "malformed JSON",
            "malformed_json",
        ),
        (
            "garbage-binary",
            Message::binary(vec![0xff, 0xfe, 0x00, 0x81, 0x9a]),
            1007,
            "UTF-8",
            "not_utf8",
        ),
        (
            "no-kind",
            Message::text("{\"audioData\":{\"data\":\"AAAA\"}}"),
            1007,
            "kind",
            "missing_kind",
        ),
        (
            "no-payload",
            Message::text("{\"kind\":\"AudioData\"}"),
            1007,
            "payload",
            "missing_payload",
        ),
        (
            "huge-frame",
            Message::text("x".repeat(1 << 20)),
            1009,
            "too large",
            "frame_too_large",
        ),
        (
            "8khz",
            Message::text(
                r#"{"kind":"AudioMetadata","audioMetadata":{"sampleRate":8000,"channels":1,"encoding":"PCM"}}"#,
            ),
            1003,
            "unsupported audio format",
            "unsupported_format",
        ),
    ];
    for (call, msg, code, fragment, reason) in cases {
        let (mut ws, sent) = prelude(&gw, call, 5).await;
        ws.send(msg).await.expect("send bad frame");
        let (got_code, got_reason) = expect_close(&mut ws).await;
        assert_eq!(got_code, code, "{call}: {got_reason}");
        assert!(
            got_reason.contains(fragment),
            "{call}: reason {got_reason:?}"
        );
        assert!(got_reason.len() <= 123);
        let series = format!("acs_gateway_decode_errors_total{{reason=\"{reason}\"}}");
        assert!(gw.metric(&series).await >= 1.0, "{call}: {series}");
        gw.wait_no_connections().await;
        // the process is up and the next call works
        assert_eq!(gw.get("/healthz").await.0, 200);
        let _ = sent;
    }
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1007\"}")
            .await,
        5.0
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1009\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1003\"}")
            .await,
        1.0
    );
    assert!(gw.shutdown().await.clean());
    let (_, tone) = fixture("tone_1k_16k.wav");
    for call in [
        "bad-json",
        "not-json",
        "garbage-binary",
        "no-kind",
        "no-payload",
        "huge-frame",
        "8khz",
    ] {
        let got = kept(&gw, call).await;
        assert_eq!(
            got,
            tone[..5 * 320].to_vec(),
            "{call}: audio before the bad frame is kept"
        );
        assert_eq!(
            call_json(&gw.call_dir(call))["streams"][0]["complete"],
            true,
            "{call}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_is_dropped_and_counted_and_the_call_goes_on() {
    let mut gw = Gw::start(|_| {}).await;
    let (mut ws, mut expected) = prelude(&gw, "soft", 3).await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let odd = audio_bytes(&[1, 2, 3], 3, None, false);
    let bad_b64 = audio(&tone[..320], 3, None, false).replace("\"data\":\"", "\"data\":\"!!");
    let docs_truncated = fixture_text("vectors/ws_inbound_audio_data_docs_truncated.json");
    let empty = audio_bytes(&[], 3, None, false);
    let unknown = r#"{"kind":"FutureKind","futureKind":{"x":1}}"#.to_string();
    // 100 samples instead of 320: whole samples, accepted and counted as a length mismatch
    let short: Vec<i16> = tone[960..1060].to_vec();
    let short_msg = audio(&short, 3, None, false);
    send_all(
        &mut ws,
        vec![odd, bad_b64, docs_truncated, empty, unknown, short_msg],
    )
    .await;
    // then the call continues normally, contiguous after the short frame
    let next = &tone[1280..1600];
    let mut ts = String::new();
    acs_media_gateway::protocol::timestamp::format_timestamp(
        T0 + 3 * 20 + 100 * 1000 / 16_000,
        &mut ts,
    );
    let b64 = {
        use base64::Engine as _;
        let bytes: Vec<u8> = next.iter().flat_map(|s| s.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let mut msg = String::new();
    acs_media_gateway::protocol::media::inbound_audio_data_json(&mut msg, &b64, &ts, None, false);
    send_all(&mut ws, vec![msg]).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    let m = gw.metrics().await;
    assert!(gw.shutdown().await.clean());
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(-1.0);
    assert_eq!(
        v("acs_gateway_decode_errors_total{reason=\"odd_length\"}"),
        1.0
    );
    assert_eq!(
        v("acs_gateway_decode_errors_total{reason=\"bad_base64\"}"),
        2.0,
        "!! and the docs' ellipsis"
    );
    assert_eq!(v("acs_gateway_decode_errors_total{reason=\"empty\"}"), 1.0);
    assert_eq!(
        v("acs_gateway_decode_errors_total{reason=\"length_mismatch\"}"),
        1.0
    );
    assert_eq!(v("acs_gateway_frames_total{kind=\"unknown\"}"), 1.0);
    assert_eq!(
        v("acs_gateway_ws_closes_total{code=\"1007\"}"),
        -1.0,
        "no close by the gateway"
    );
    expected.extend_from_slice(&short);
    expected.extend_from_slice(next);
    let got = kept(&gw, "soft").await;
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_participant_id_stays_inside_the_call_folder() {
    let mut gw = Gw::start(|_| {}).await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let fr = frames(&tone, 320);
    let hostile = "../../etc/passwd";
    let mut ws = gw.connect("/ws", "../call/../../x").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        fr.iter()
            .take(10)
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, Some(hostile), false)),
    );
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());
    // exactly one date folder with exactly one call folder; nothing escaped the root
    let root = gw.dir.path();
    let days: Vec<_> = std::fs::read_dir(root).unwrap().collect();
    assert_eq!(days.len(), 1);
    let day = days.into_iter().next().unwrap().unwrap().path();
    let calls: Vec<_> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    let name = call.file_name().unwrap().to_str().unwrap();
    assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
    let doc = call_json(call);
    let s = doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["participantRawId"] == hostile)
        .unwrap()
        .clone();
    let file = s["file"].as_str().unwrap();
    assert!(!file.contains('/') && !file.starts_with('.'), "{file}");
    let (_, got) = read_wav(&call.join(file));
    assert_eq!(got, tone[..3200].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_ids_never_take_the_gateways_own_names_devices_or_each_others() {
    let mut gw = Gw::start(|_| {}).await;
    // an unmixed call whose participants are named like the gateway's own files, like Windows
    // devices, and like each other but for case
    let ids = [
        "mixed",
        "MIXED",
        "call",
        "CON",
        "con.txt",
        "nul",
        "Ann",
        "ann",
        "8:acs:Bob",
        "8:acs:bob",
    ];
    let value = |i: usize| (i as i16 + 1) * 100;
    let mut msgs = vec![metadata(16_000)];
    for k in 0..10 {
        for (i, id) in ids.iter().enumerate() {
            msgs.push(audio(&[value(i); 320], k, Some(id), false));
        }
    }
    let mut ws = gw.connect("/ws", "call-names").await;
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());

    let dir = gw.call_dir("call-names");
    let doc = call_json(&dir);
    let streams = doc["streams"].as_array().unwrap();
    // the gateway's own files keep their names
    let mix = streams.iter().find(|s| s["kind"] == "mix").expect("mix");
    assert_eq!(mix["file"], "mixed.wav");
    assert!(read_wav(&dir.join("mixed.wav")).1.len() >= 3200);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    // each participant has its own file, with its own audio, named safely
    let devices = ["con", "prn", "aux", "nul", "com1", "lpt1"];
    let mut listed = vec!["call.json".to_string(), "mixed.wav".to_string()];
    for (i, id) in ids.iter().enumerate() {
        let s = streams
            .iter()
            .find(|s| s["participantRawId"] == *id)
            .unwrap_or_else(|| panic!("{id} in call.json"));
        let file = s["file"].as_str().unwrap().to_string();
        let stem = file.split('.').next().unwrap().to_ascii_lowercase();
        assert!(
            !["mixed", "call"].contains(&stem.as_str()) && !devices.contains(&stem.as_str()),
            "{id} was given {file}"
        );
        assert!(file.ends_with(".wav"), "{file}");
        let (_, got) = read_wav(&dir.join(&file));
        assert!(
            got.len() == 3200 && got.iter().all(|&x| x == value(i)),
            "{file} holds {id}'s audio"
        );
        listed.push(file);
    }
    // distinct even on a case-insensitive file system, and nothing else in the folder
    let lower: std::collections::HashSet<String> =
        listed.iter().map(|f| f.to_ascii_lowercase()).collect();
    assert_eq!(lower.len(), listed.len(), "{listed:?}");
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_2000_connections_is_refused_beyond_the_limit_and_streams_go_on() {
    let mut gw = Gw::start(|c| c.server.max_connections = 40).await;
    // a legitimate call streaming throughout
    let (_, tone) = fixture("tone_1k_16k.wav");
    let fr = frames(&tone, 320);
    let mut live = gw.connect("/ws", "live-call").await;
    send_all(
        &mut live,
        vec![metadata(16_000), audio(&fr[0], 0, None, false)],
    )
    .await;

    let addr = gw.addr;
    let mut tasks = Vec::new();
    for i in 0..2000 {
        tasks.push(tokio::spawn(async move {
            let url = format!("ws://{addr}/ws/flood-{i}");
            match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url)).await {
                Ok(Ok((ws, _))) => Some(ws), // keep it open
                _ => None,
            }
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Some(ws) = t.await.unwrap() {
            held.push(ws);
        }
    }
    assert!(
        held.len() <= 39,
        "at most the limit minus the live call: {}",
        held.len()
    );
    assert!(!held.is_empty());
    let m = gw.metrics().await;
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    eprintln!(
        "cl {} sl {} ev {} held {}",
        v("acs_gateway_ws_connections_rejected_total{reason=\"connection_limit\"}"),
        v("acs_gateway_ws_connections_rejected_total{reason=\"socket_limit\"}"),
        v("acs_gateway_http_connections_closed_total{reason=\"evicted\"}"),
        held.len()
    );
    // refused at the upgrade or at accept, or (not yet upgraded, waiting on its client while the
    // plain-HTTP budget was full) closed to make room for a newer one
    let refused = v("acs_gateway_ws_connections_rejected_total{reason=\"connection_limit\"}")
        + v("acs_gateway_ws_connections_rejected_total{reason=\"socket_limit\"}")
        + v("acs_gateway_http_connections_closed_total{reason=\"evicted\"}");
    assert_eq!(
        refused as usize + held.len(),
        2000,
        "every refusal is counted"
    );
    assert_eq!(
        v("acs_gateway_ws_connections_active"),
        (held.len() + 1) as f64
    );
    // the live call was not disturbed
    send_all(
        &mut live,
        fr[1..10]
            .iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64 + 1, None, false)),
    )
    .await;
    close_normally(live).await;
    drop(held);
    assert_eq!(gw.get("/healthz").await.0, 200);
    let report = gw.shutdown().await;
    assert_eq!(report.connections_left, 0);
    let (_, got) = read_wav(&gw.call_dir("live-call").join("mixed.wav"));
    assert_eq!(got, tone[..3200].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_before_metadata_uses_the_default_rate_and_is_counted() {
    let mut gw = Gw::start(|c| c.media.default_sample_rate = 24_000).await;
    let (_, pcm) = fixture("speech_24k.wav");
    let fr = frames(&pcm, 480);
    let mut ws = gw.connect("/ws", "no-metadata").await;
    send_all(
        &mut ws,
        fr.iter()
            .take(20)
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, None, false)),
    )
    .await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert_eq!(
        gw.metric("acs_gateway_frames_before_metadata_total").await,
        20.0
    );
    assert!(gw.shutdown().await.clean());
    let (rate, got) = read_wav(&gw.call_dir("no-metadata").join("mixed.wav"));
    assert_eq!(rate, 24_000);
    assert_eq!(got, pcm[..20 * 480].to_vec());
}
