//! End to end on loopback: a caller (acs-sim's fake ACS, calling through the control plane and
//! streaming the test's audio in real time) → the gateway's media WebSocket → resample (16 →
//! 24 kHz) → forward sink → echo bot → back through the forward sink → paced playback → outbound
//! AudioData to the caller, which records it with arrival times and its stream position. Checks
//! that the returned audio is what was sent (after two rate conversions), that frames leave at
//! 20 ms ± 5 ms, that the caller's speech start (barge-in) brings StopAudio soon after, and that a
//! forward target killed and restarted mid-call is reconnected without disturbing the recording.

mod common;
use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use acs_media_gateway::sinks::SinkConfig;
use acs_sim::acs::{
    AudioInput, AudioSource, CallAudio, FakeAcsHandle, IncomingCallSpec, OutboundKind,
};
use common::*;
use std::sync::Arc;
use std::time::Duration;

fn sink(toml_text: &str) -> SinkConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

/// The fake ACS as the caller: `pcm` (16 kHz) in real time, then digital silence until the call
/// is hung up.
async fn caller(pcm: Vec<i16>) -> FakeAcsHandle {
    fake_acs(|c| {
        c.audio = CallAudio {
            sources: vec![AudioSource {
                raw_id: None,
                input: AudioInput::Pcm {
                    sample_rate: 16_000,
                    samples: Arc::new(pcm),
                },
            }],
            ..CallAudio::default()
        };
        c.max_stream_duration = Duration::from_secs(60);
    })
    .await
}

/// A gateway pointed at `acs`, answering with bidirectional media, with `extra` after its WAV
/// sink.
async fn gateway(acs: &FakeAcsHandle, extra: SinkConfig) -> Gw {
    Gw::start_with_acs(acs, move |c| {
        c.media.bidirectional = true;
        for p in c.answer.profiles.values_mut() {
            p.enable_bidirectional = true;
        }
        c.sinks.push(extra);
    })
    .await
}

/// The call's recording is `pcm` and then the caller's silence, one frame for each sent.
fn assert_recorded(acs: &FakeAcsHandle, gw: &Gw, conn: &str, pcm: &[i16]) {
    let (_, rec) = read_wav(&gw.call_dir(conn).join("mixed.wav"));
    assert_eq!(rec.len() as u64, acs_frames_sent(acs, conn) * 320);
    assert_eq!(&rec[..pcm.len()], pcm);
    assert!(rec[pcm.len()..].iter().all(|&x| x == 0), "then silence");
}

/// Best alignment of `got` against `want` (lag in samples) and the SNR there, in dB.
fn snr_db(want: &[i16], got: &[i16]) -> (isize, f64) {
    let mut best = (0isize, f64::MIN);
    let (a, b) = (2000usize, want.len().saturating_sub(2000));
    for lag in -400isize..=400 {
        let (mut sig, mut err) = (0f64, 0f64);
        for (i, w) in want.iter().enumerate().take(b).skip(a) {
            let j = i as isize + lag;
            if j < 0 || j as usize >= got.len() {
                err = f64::MAX;
                break;
            }
            let (w, g) = (f64::from(*w), f64::from(got[j as usize]));
            sig += w * w;
            err += (w - g) * (w - g);
        }
        if err < f64::MAX {
            let snr = 10.0 * (sig / err.max(1e-9)).log10();
            if snr > best.1 {
                best = (lag, snr);
            }
        }
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_audio_goes_through_resample_forward_echo_and_comes_back_paced() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let url = bot.url("/calls/{call}");
    let (_, tone) = fixture("tone_1k_16k.wav");
    let acs = caller(tone.clone()).await;
    let mut gw = gateway(
        &acs,
        sink(&format!(
            "type = \"resample\"\nrate = 24000\n[then]\ntype = \"forward\"\nurl = \"{url}\"\nbarge_in = false\n"
        )),
    )
    .await;
    let conn = acs_call(&acs, &gw, IncomingCallSpec::default()).await;
    // the tone, then 600 ms of the caller's silence for the echo to come back
    wait_acs_frames(&acs, &conn, tone.len().div_ceil(320) as u64 + 30).await;
    acs_hang_up(&acs, &gw, &conn).await;
    let m = gw.metrics().await;
    assert!(gw.shutdown().await.clean());

    // the bot heard the call at 24 kHz
    let starts = bot.starts();
    assert_eq!(starts[0]["format"]["sampleRate"], 24_000, "{starts:?}");
    // what came back is what was said, after 16 → 24 → 16 kHz
    let back = acs.outbound_pcm(&conn).unwrap();
    assert!(
        back.len() >= tone.len() - 2 * 320,
        "{} samples back of {}",
        back.len(),
        tone.len()
    );
    let (lag, snr) = snr_db(&tone, &back);
    assert!(snr > 40.0, "returned audio SNR {snr:.1} dB at lag {lag}");
    // paced: 20 ms ± 5 ms (arrival times at the fake ACS)
    let audio: Vec<_> = acs
        .outbound_events(&conn)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            OutboundKind::Audio { pcm_bytes, .. } => Some((e.at_ms, pcm_bytes)),
            _ => None,
        })
        .collect();
    assert!(audio.iter().all(|&(_, n)| n <= 640), "{audio:?}");
    let gaps: Vec<f64> = audio.windows(2).skip(3).map(|w| w[1].0 - w[0].0).collect();
    let within = gaps.iter().filter(|g| (**g - 20.0).abs() <= 5.0).count();
    assert!(
        within * 10 >= gaps.len() * 9,
        "90 % within 20 ± 5 ms: {gaps:?}"
    );
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    assert!(v("acs_gateway_playback_frames_total") >= 45.0);
    // the recording is untouched by all this
    assert_recorded(&acs, &gw, &conn, &tone);
    acs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_speech_start_stops_the_bot_within_50_ms() {
    let (_, speech) = fixture("speech_16k.wav");
    let clip = Arc::new(Clip {
        samples: speech.clone(),
        rate: 16_000,
    });
    let bot = EchoBot::start(
        "127.0.0.1:0",
        EchoOptions {
            clip: Some(clip),
            play_on_start: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let url = bot.url("/calls/{call}");
    // the caller listens (digital silence) for 1 s, then talks (a loud tone) for 0.6 s
    let (_, tone) = fixture("tone_1k_16k.wav");
    let mut pcm = vec![0i16; 50 * 320];
    pcm.extend_from_slice(&tone[..30 * 320]);
    let acs = caller(pcm).await;
    let mut gw = gateway(
        &acs,
        sink(&format!(
            "type = \"forward\"\nurl = \"{url}\"\nbarge_in = true\n"
        )),
    )
    .await;
    let conn = acs_call(&acs, &gw, IncomingCallSpec::default()).await;
    wait_acs_frames(&acs, &conn, 80 + 15).await;
    acs_hang_up(&acs, &gw, &conn).await;
    assert!(gw.shutdown().await.clean());

    let call = acs.call(&conn).unwrap();
    let out = &call.media.outbound;
    assert!(
        out.audio_frames >= 30,
        "the bot's clip was playing: {} frames",
        out.audio_frames
    );
    let events = acs.outbound_events(&conn).unwrap();
    let first_stop = events
        .iter()
        .find(|e| e.kind == OutboundKind::StopAudio)
        .expect("StopAudio reached the caller");
    // the caller's frames 0–49 are silence, frame 50 the first voiced one
    assert!(
        first_stop.stream_frames >= 50,
        "no stop before the caller spoke: {first_stop:?}"
    );
    // the fake measures from the onset (frame 50); speech start fires on the frame that
    // completes min_speech_ms (40 ms): the 2nd voiced frame, 20 ms later
    let latency = out.stop_audio_latency_ms[0].expect("the onset before the stop") - 20.0;
    assert!(
        latency < 250.0,
        "StopAudio {latency:.1} ms after speech start (wall clock, loose; exact in playback_paced.rs)"
    );
    // the bot was told
    assert!(!bot.texts("barge_in").is_empty());
    acs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_forward_target_is_reconnected_without_disturbing_ingress() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let addr = bot
        .url("")
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let url = bot.url("/calls/{call}");
    let (_, speech) = fixture("speech_16k.wav");
    let acs = caller(speech.clone()).await;
    let mut gw = gateway(
        &acs,
        sink(&format!(
            "type = \"forward\"\nurl = \"{url}\"\nbarge_in = false\n[reconnect]\ninitial_ms = 50\nmax_ms = 200\n"
        )),
    )
    .await;
    let conn = acs_call(&acs, &gw, IncomingCallSpec::default()).await;
    wait_acs_frames(&acs, &conn, 50).await;
    bot.kill().await;
    wait_acs_frames(&acs, &conn, 80).await;
    let restarted = EchoBot::start(addr.as_str(), EchoOptions::default())
        .await
        .unwrap();
    wait_acs_frames(&acs, &conn, speech.len().div_ceil(320) as u64).await;
    assert!(
        restarted
            .wait_for(STEP, |r| r.iter().any(|x| matches!(
                x.what,
                acs_media_gateway::sinks::forward::echo::Received::Audio(_)
            )))
            .await,
        "audio flows to the restarted target"
    );
    let starts = restarted.starts();
    assert!(
        starts[0]["connection"].as_u64().unwrap() >= 2,
        "a reconnect: {starts:?}"
    );
    acs_hang_up(&acs, &gw, &conn).await;
    assert!(gw.shutdown().await.clean());
    // ingress and the recording never noticed
    assert_recorded(&acs, &gw, &conn, &speech);
    acs.shutdown().await;
}
