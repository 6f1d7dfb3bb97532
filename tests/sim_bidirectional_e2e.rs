//! The bidirectional demo as a test: `acs-sim`'s fake ACS answers through the gateway with
//! `enableBidirectional`, streams speech in real time; the gateway forwards the call to the echo
//! bot, which plays a clip back; the fake ACS records what the gateway sends into the call. The
//! playback leaves at 20 ms ± 5 ms, and each of the caller's speech onsets brings `StopAudio`
//! (barge-in) within 50 ms of the gateway's speech-start (which fires `min_speech_ms` = 40 ms
//! into the utterance).

use acs_media_gateway::app;
use acs_media_gateway::config::Config;
use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use acs_media_gateway::sinks::SinkConfig;
use acs_sim::acs::{CallAudio, FakeAcs, FakeAcsConfig};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::jwt::SigningKeySource;
use acs_sim::scenario::{run_call, summary, CallScenario};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acs_sim_hears_the_bot_paced_and_barge_in_stops_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let speech = root.join("fixtures/audio/speech_16k.wav");
    let acs = FakeAcs::start(FakeAcsConfig {
        signing_key: SigningKeySource::Pem(
            std::fs::read_to_string(root.join("fixtures/keys/jwt_test_key_1.pem")).unwrap(),
        ),
        kid: Some("test-key-1".into()),
        audio: CallAudio::wavs([speech.clone()]),
        ..FakeAcsConfig::default()
    })
    .await
    .unwrap();
    let clip = Arc::new(Clip::from_wav(&root.join("fixtures/audio/tone_1k_16k.wav")).unwrap());
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

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    // timing-based load shedding is tested on its own (tests/overload.rs)
    cfg.server.shed_lag_ms = 0;
    for s in &mut cfg.sinks {
        s.set_recordings_dir(dir.path());
    }
    cfg.sinks.push(
        toml::from_str::<SinkConfig>(&format!(
            "type = \"forward\"\nurl = \"{}\"\nbarge_in = true\n",
            bot.url("/calls/{call}")
        ))
        .unwrap(),
    );
    cfg.acs.connection_string = acs.connection_string();
    cfg.acs.resource_id = acs.audience.clone();
    cfg.acs.jwt.issuer = acs.issuer.clone();
    cfg.acs.jwt.jwks_url = acs.jwks_url.clone();
    for p in cfg.answer.profiles.values_mut() {
        p.enable_bidirectional = true;
    }
    let gw = app::start(cfg).await.expect("gateway starts");

    let scenario = CallScenario {
        hangup_after: Duration::from_secs(4),
        expect_bidirectional: true,
        outbound_wav: Some(dir.path().join("outbound.wav")),
        ..CallScenario::new(EventGridTarget::new(format!(
            "http://{}/api/incomingCall",
            gw.addr()
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
    assert!(
        (iv.p50_ms - 20.0).abs() <= 5.0 && (iv.p90_ms - 20.0).abs() <= 5.0,
        "{text}"
    );
    assert!((iv.mean_ms - 20.0).abs() <= 2.0, "{text}");
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
            *l < 40.0 + 50.0,
            "StopAudio {l:.1} ms after the onset (speech-start fires at 40 ms): {text}"
        );
    }
    tokio::time::timeout(Duration::from_secs(30), gw.shutdown())
        .await
        .expect("gateway drains");
    acs.shutdown().await;
}
