//! End to end on loopback: a caller streams into the gateway's media WebSocket in real time →
//! resample (16 → 24 kHz) → forward sink → echo bot → back through the forward sink → paced
//! playback → outbound AudioData to the caller. Checks that the returned audio is what was sent
//! (after two rate conversions), that frames leave at 20 ms ± 5 ms, that the caller's speech
//! start (barge-in) brings StopAudio within 50 ms, and that a forward target killed and restarted
//! mid-call is reconnected without disturbing the recording.

mod common;
use acs_media_gateway::protocol::b64::decode_base64_into;
use acs_media_gateway::protocol::media::{parse_outbound, Outbound};
use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use acs_media_gateway::sinks::SinkConfig;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn sink(toml_text: &str) -> SinkConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

/// What the caller hears.
#[derive(Default)]
struct Heard {
    frames: Vec<(Instant, Vec<i16>)>,
    stops: Vec<Instant>,
}

/// Streams `frames` in real time (20 ms apart) while collecting outbound messages; keeps
/// listening for `tail` afterwards. `on_sent(k, t)` sees each frame's send time.
async fn talk(ws: Ws, frames: &[(Vec<i16>, bool)], tail: Duration) -> (Heard, Vec<Instant>) {
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut heard = Heard::default();
        let mut buf = Vec::new();
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            let Message::Text(t) = m else { continue };
            match parse_outbound(t.as_bytes()).unwrap() {
                Outbound::AudioData { data } => {
                    let n = decode_base64_into(data.as_bytes(), &mut buf).unwrap();
                    let s = buf[..n]
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    heard.frames.push((Instant::now(), s));
                }
                Outbound::StopAudio => heard.stops.push(Instant::now()),
                Outbound::Unknown { kind } => panic!("unexpected {kind}"),
            }
        }
        heard
    });
    tx.send(Message::text(metadata(16_000))).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut sent = Vec::new();
    for (k, (f, silent)) in frames.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(20 * k as u64)).await;
        tx.send(Message::text(audio(f, k as i64, None, *silent)))
            .await
            .unwrap();
        sent.push(Instant::now());
    }
    tokio::time::sleep(tail).await;
    let _ = tx.send(Message::Close(None)).await;
    let heard = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    (heard, sent)
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
    let mut gw = Gw::start(move |c| {
        c.media.bidirectional = true;
        c.sinks.push(sink(&format!(
            "type = \"resample\"\nrate = 24000\n[then]\ntype = \"forward\"\nurl = \"{url}\"\nbarge_in = false\n"
        )));
    })
    .await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let frames: Vec<(Vec<i16>, bool)> =
        frames(&tone, 320).into_iter().map(|f| (f, false)).collect();
    let ws = gw.connect("/ws", "echo-e2e").await;
    let (heard, _) = talk(ws, &frames, Duration::from_millis(600)).await;
    gw.wait_no_connections().await;
    let m = gw.metrics().await;
    assert!(gw.shutdown().await.clean());

    // the bot heard the call at 24 kHz
    let starts = bot.starts();
    assert_eq!(starts[0]["format"]["sampleRate"], 24_000, "{starts:?}");
    // what came back is what was said, after 16 → 24 → 16 kHz
    let back: Vec<i16> = heard.frames.iter().flat_map(|(_, f)| f.clone()).collect();
    assert!(
        back.len() >= tone.len() - 2 * 320,
        "{} samples back of {}",
        back.len(),
        tone.len()
    );
    let (lag, snr) = snr_db(&tone, &back);
    assert!(snr > 40.0, "returned audio SNR {snr:.1} dB at lag {lag}");
    // paced: 20 ms ± 5 ms
    assert!(heard
        .frames
        .iter()
        .all(|(_, f)| f.len() == 320 || f.len() < 320));
    let gaps: Vec<f64> = heard
        .frames
        .windows(2)
        .skip(3)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1e3)
        .collect();
    let within = gaps.iter().filter(|g| (**g - 20.0).abs() <= 5.0).count();
    assert!(
        within * 10 >= gaps.len() * 9,
        "90 % within 20 ± 5 ms: {gaps:?}"
    );
    let v = |s: &str| acs_sim::scrape::scrape_value(&m, s).unwrap_or(0.0);
    assert!(v("acs_gateway_playback_frames_total") >= 45.0);
    // the recording is untouched by all this
    let (_, rec) = read_wav(&gw.call_dir("echo-e2e").join("mixed.wav"));
    assert_eq!(rec, tone);
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
    let mut gw = Gw::start(move |c| {
        c.media.bidirectional = true;
        c.sinks.push(sink(&format!(
            "type = \"forward\"\nurl = \"{url}\"\nbarge_in = true\n"
        )));
    })
    .await;
    // the caller listens (digital silence) for 1 s, then talks (a loud tone) for 0.6 s
    let (_, tone) = fixture("tone_1k_16k.wav");
    let mut frames: Vec<(Vec<i16>, bool)> = (0..50).map(|_| (vec![0i16; 320], true)).collect();
    frames.extend(tone.chunks(320).take(30).map(|c| (c.to_vec(), false)));
    let ws = gw.connect("/ws", "barge-in-e2e").await;
    let (heard, sent) = talk(ws, &frames, Duration::from_millis(300)).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());

    assert!(
        heard.frames.len() >= 30,
        "the bot's clip was playing: {} frames",
        heard.frames.len()
    );
    let first_stop = *heard.stops.first().expect("StopAudio reached the caller");
    // speech start fires on the frame that completes min_speech_ms (40 ms): the 2nd voiced frame
    let speech_start_sent = sent[51];
    assert!(first_stop > sent[49], "no stop before the caller spoke");
    let latency = first_stop.duration_since(speech_start_sent);
    assert!(
        latency < Duration::from_millis(250),
        "StopAudio {latency:?} after speech start (wall clock, loose; exact in playback_paced.rs)"
    );
    // the bot was told
    assert!(!bot.texts("barge_in").is_empty());
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
    let mut gw = Gw::start(move |c| {
        c.media.bidirectional = true;
        c.sinks.push(sink(&format!(
            "type = \"forward\"\nurl = \"{url}\"\nbarge_in = false\n[reconnect]\ninitial_ms = 50\nmax_ms = 200\n"
        )));
    })
    .await;
    let (_, speech) = fixture("speech_16k.wav");
    let fr = frames(&speech, 320);
    let mut ws = gw.connect("/ws", "reconnect-e2e").await;
    send_all(&mut ws, vec![metadata(16_000)]).await;
    let t0 = tokio::time::Instant::now();
    let mut bot = Some(bot);
    let mut restarted = None;
    for (k, f) in fr.iter().enumerate() {
        tokio::time::sleep_until(t0 + Duration::from_millis(20 * k as u64)).await;
        ws.send(Message::text(audio(f, k as i64, None, false)))
            .await
            .unwrap();
        if k == 50 {
            bot.take().unwrap().kill().await;
        }
        if k == 80 {
            restarted = Some(
                EchoBot::start(addr.as_str(), EchoOptions::default())
                    .await
                    .unwrap(),
            );
        }
    }
    let restarted = restarted.unwrap();
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
    close_normally(ws).await;
    gw.wait_no_connections().await;
    assert!(gw.shutdown().await.clean());
    // ingress and the recording never noticed
    let (_, rec) = read_wav(&gw.call_dir("reconnect-e2e").join("mixed.wav"));
    assert_eq!(rec, speech);
}
