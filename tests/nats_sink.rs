//! The NATS sink against a real `nats-server` (`.ci/run` installs and starts one on
//! 127.0.0.1:4222; elsewhere set `ACS_TEST_NATS_URL` or the test says it skipped).
//! A call streamed into the gateway reaches a NATS consumer frame by frame, in order, with its
//! headers, and the call's events arrive on the events subject.

mod common;
use acs_media_gateway::sinks::nats::NatsSinkConfig;
use acs_media_gateway::sinks::SinkConfig;
use common::*;
use futures_util::StreamExt;
use std::time::Duration;

fn nats_url() -> String {
    std::env::var("ACS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn consumer() -> Option<async_nats::Client> {
    let url = nats_url();
    match tokio::time::timeout(Duration::from_secs(2), async_nats::connect(url.as_str())).await {
        Ok(Ok(c)) => Some(c),
        _ => {
            let msg = format!("SKIPPED: no nats-server reachable at {url} (.ci/run starts one; set ACS_TEST_NATS_URL)");
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("{msg}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_reaches_a_nats_consumer_in_order_with_headers_and_events() {
    let Some(nc) = consumer().await else { return };
    let prefix = format!("acs.test{}", std::process::id());
    let mut audio_sub = nc.subscribe(format!("{prefix}.*.audio.>")).await.unwrap();
    let mut events = nc.subscribe(format!("{prefix}.*.events")).await.unwrap();
    nc.flush().await.unwrap();

    let p2 = prefix.clone();
    let mut gw = Gw::start(move |c| {
        c.sinks.push(SinkConfig::Nats(NatsSinkConfig {
            url: nats_url(),
            subject_prefix: p2,
            ..Default::default()
        }));
    })
    .await;
    let (_, pcm) = fixture("speech_16k.wav");
    let fr = frames(&pcm, 320);
    let mut ws = gw.connect("/ws", "nats-call.1").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        fr.iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, Some("8:acs:alice"), false)),
    );
    msgs.push(r#"{"kind":"DtmfData","dtmfData":{"data":"7"}}"#.into());
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());

    // participant stream: every frame, in order, bytes equal to what was sent
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    let want_subject = format!(
        "{prefix}.{}.audio.",
        acs_media_gateway::sinks::nats::subject_token("nats-call.1")
    );
    let alice = acs_media_gateway::sinks::nats::subject_token("8:acs:alice");
    while got.len() < pcm.len() * 2 {
        let m = tokio::time::timeout(STEP, audio_sub.next())
            .await
            .expect("audio in time")
            .expect("subscription open");
        assert!(
            m.subject.as_str().starts_with(&want_subject),
            "{}",
            m.subject
        );
        if !m.subject.as_str().ends_with(&format!(".audio.{alice}")) {
            assert!(m.subject.as_str().ends_with(".audio.mix"), "{}", m.subject);
            continue; // the gateway's mix of this unmixed call
        }
        let h = m.headers.as_ref().expect("headers");
        assert_eq!(
            h.get("Acs-Format").unwrap().as_str(),
            "pcm_s16le;rate=16000;channels=1"
        );
        assert_eq!(h.get("Acs-Participant").unwrap().as_str(), "8:acs:alice");
        seqs.push(h.get("Acs-Seq").unwrap().as_str().parse::<u64>().unwrap());
        if seqs.len() == 1 {
            assert_eq!(
                h.get("Acs-Timestamp").unwrap().as_str(),
                "2024-11-15T19:16:12.925Z"
            );
        }
        got.extend_from_slice(&m.payload);
    }
    assert_eq!(
        seqs,
        (0..fr.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    let sent: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    assert!(got == sent, "payloads are the PCM sent");

    // events: stream_open first, dtmf, stream_close and call_ended last
    let mut types = Vec::new();
    while !types.iter().any(|t| t == "call_ended") {
        let m = tokio::time::timeout(STEP, events.next())
            .await
            .expect("events in time")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        if v["type"] == "dtmf" {
            assert_eq!(v["tone"], "7");
            // the one wire shape of call events (shared with the forward sink)
            assert!(v.get("participantRawId").is_some(), "{v}");
        }
        types.push(v["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types.first().map(String::as_str), Some("stream_open"));
    for t in [
        "participant_joined",
        "speech_started",
        "speech_ended",
        "dtmf",
        "stream_close",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    assert_eq!(types.last().map(String::as_str), Some("call_ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_sink_passes_the_shared_sink_contract() {
    let Some(nc) = consumer().await else { return };
    let prefix = format!("acs.contract{}", std::process::id());
    let mut sub = nc.subscribe(format!("{prefix}.>")).await.unwrap();
    nc.flush().await.unwrap();
    let cfg = NatsSinkConfig {
        url: nats_url(),
        subject_prefix: prefix.clone(),
        ..Default::default()
    };
    // the sink drives its own runtime: run it off the test's async threads, like its worker does
    let written = tokio::task::spawn_blocking(move || {
        let mut sink = acs_media_gateway::sinks::nats::NatsSink::new(cfg);
        acs_media_gateway::pipeline::sink::contract::run(&mut sink)
    })
    .await
    .unwrap();
    // every audio frame the contract wrote was published (10 per stream + the open stream's 1)
    let mut audio = 0;
    while audio < written.0 + written.1 + 1 {
        let m = tokio::time::timeout(STEP, sub.next())
            .await
            .expect("published in time")
            .unwrap();
        if m.subject.as_str().contains(".audio.") {
            audio += 1;
        }
    }
}
