//! The bidirectional demo as a test: `acs-sim`'s fake ACS answers through the gateway with
//! `enableBidirectional`, streams speech in real time; the gateway forwards the call to the echo
//! bot, which plays a clip back; the fake ACS records what the gateway sends into the call. On
//! the wall clock of a loaded test machine the bounds are loose: the playback's median interval
//! is 20 ± 5 ms, and each of the caller's speech onsets brings `StopAudio` (barge-in) soon after
//! the gateway's speech-start (which fires `min_speech_ms` = 40 ms into the utterance). The exact
//! pacing (20 ms) and an immediate `StopAudio` are asserted on tokio's paused clock in
//! `tests/playback_paced.rs`.

mod common;

use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use acs_media_gateway::sinks::SinkConfig;
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::scenario::{run_call, summary, CallScenario};
use common::{fake_acs, fixture_path, Gw, LONG};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acs_sim_hears_the_bot_paced_and_barge_in_stops_it() {
    let acs = fake_acs(|_| {}).await;
    let clip = Arc::new(Clip::from_wav(&fixture_path("audio/tone_1k_16k.wav")).unwrap());
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

    let forward = toml::from_str::<SinkConfig>(&format!(
        "type = \"forward\"\nurl = \"{}\"\nbarge_in = true\n",
        bot.url("/calls/{call}")
    ))
    .unwrap();
    let mut gw = Gw::start_with_acs(&acs, move |cfg| {
        cfg.sinks.push(forward);
        for p in cfg.answer.profiles.values_mut() {
            p.enable_bidirectional = true;
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();

    let scenario = CallScenario {
        hangup_after: Duration::from_secs(4),
        expect_bidirectional: true,
        outbound_wav: Some(dir.path().join("outbound.wav")),
        ..CallScenario::new(EventGridTarget::new(format!(
            "http://{}/api/incomingCall",
            gw.addr
        )))
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_call(&acs, &scenario))
        .await
        .expect("scenario bounded")
        .expect("scenario runs");
    let text = summary(&report);
    assert!(report.ok, "{text}");
    // what the call heard was written where asked (never into the working directory)
    let heard = hound::WavReader::open(dir.path().join("outbound.wav")).unwrap();
    assert!(heard.len() >= 50 * 320, "{text}");
    let out = &report.media.as_ref().unwrap().outbound;
    assert!(
        out.audio_frames >= 50,
        "the bot's audio reached the call: {text}"
    );
    let iv = out.intervals.as_ref().expect("pacing measured");
    // wall clock on a loaded machine: the median is steady, the tail and mean get loose bounds
    assert!((iv.p50_ms - 20.0).abs() <= 5.0, "{text}");
    assert!(iv.p90_ms <= 20.0 + 20.0, "{text}");
    assert!((iv.mean_ms - 20.0).abs() <= 5.0, "{text}");
    // speech_16k.wav has two onsets (0.3 s and 2.2 s): each stops the bot
    assert!(out.stop_audio >= 2, "{text}");
    let latencies: Vec<f64> = out
        .stop_audio_latency_ms
        .iter()
        .flatten()
        .copied()
        .collect();
    assert!(latencies.len() >= 2, "{text}");
    for l in &latencies {
        assert!(
            *l < 40.0 + 250.0,
            "StopAudio {l:.1} ms after the onset (speech-start fires at 40 ms): {text}"
        );
    }
    tokio::time::timeout(LONG, gw.shutdown())
        .await
        .expect("gateway drains");
    acs.shutdown().await;
}
