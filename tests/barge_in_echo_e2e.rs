//! Barge-in a voice bot can rely on, end to end: `acs-sim`'s fake ACS calls the gateway with
//! `enableBidirectional`, the gateway forwards the call to the echo bot (here a bot that plays a
//! speech clip and does not echo), and the fake records what the gateway sends into the call.
//!
//! - **Echo.** The fake returns the bot's playback in the caller's stream at −6 dB/40 ms,
//!   −10 dB/100 ms and −20 dB/200 ms: no `StopAudio`, the whole clip plays (the gateway heard the
//!   echo as speech and let it be: `forward_barge_in_suppressed_total{reason="echo"}`).
//! - **Talk over the bot.** With the −6 dB/40 ms echo on, a caller who starts talking while the
//!   bot plays gets `StopAudio` within 100 ms of the onset, once — in stream time: the caller's
//!   audio the fake had sent from the onset's frame until the `StopAudio` arrived.
//! - **No answer loop.** A bot that answers when the caller's turn ends, with each echo on,
//!   plays its answer to the end: its own echo never stops it (nor makes it answer again).
//!
//! The fake places its echo and counts stream time by stream position, not by the clock, and
//! the gateway places the caller's audio by stream position too, so a loaded host (these tests
//! run while other builds compile) delays messages without changing what is asserted.
//! - **Stale audio.** A bot that reacts to `barge_in` only after 50 or 200 ms (and keeps sending
//!   meanwhile) has none of that audio played after the `StopAudio`.
//! - **Nothing to stop.** A caller speaking while nothing plays brings no `StopAudio`.

mod common;

use acs_media_gateway::app;
use acs_media_gateway::config::Config;
use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use acs_media_gateway::sinks::SinkConfig;
use acs_sim::acs::{
    AudioInput, AudioSource, CallAudio, EchoPath, FakeAcs, FakeAcsConfig, OutboundSummary,
};
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::jwt::SigningKeySource;
use acs_sim::scenario::{run_call, summary, CallScenario};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What the caller says.
#[derive(Clone, Copy)]
enum Caller {
    /// Digital silence.
    Silent,
    /// A fixture WAV from the start.
    Wav(&'static str),
    /// A fixture WAV after this many ms of silence (the bot is speaking by then).
    After(u32, &'static str),
    /// A fixture WAV's first this many ms, then silence.
    Cut(u32, &'static str),
}

struct Run {
    out: OutboundSummary,
    text: String,
    metrics: String,
    /// The bot's `barge_in` messages (each names the caller's stream position the gateway
    /// decided at).
    barge_ins: Vec<serde_json::Value>,
    /// The fake sent fewer than 90 % of the call's frames before its (wall-clock) hang-up: the
    /// host froze the whole process for a while.
    frozen: bool,
}

/// One call at a time in this file: each runs a gateway, a fake ACS and a bot in real time, and
/// five at once on a busy two-core host starve each other for seconds.
static ONE_CALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One call ([`call_once`]), made again (at most three times) when the host froze it: a
/// process stopped for seconds (a busy CI box, a supervisor pausing jobs) hangs up before the
/// audio it is judged on was streamed.
async fn call(caller: Caller, echo: Option<EchoPath>, bot: EchoOptions, secs: u64) -> Run {
    let mut attempt = 1;
    loop {
        let run = call_once(caller, echo, bot.clone(), secs).await;
        if !run.frozen || attempt == 3 {
            return run;
        }
        println!("the host froze the call (hung up before 90 % of its audio was sent): again");
        attempt += 1;
    }
}

/// One call: the caller's audio (`caller`: a fixture WAV, or `None` for digital silence), the
/// fake's echo, the bot's options; hangs up after `secs`.
async fn call_once(caller: Caller, echo: Option<EchoPath>, bot: EchoOptions, secs: u64) -> Run {
    let _one = ONE_CALL.lock().await;
    let bot_speaks = bot.clip.is_some();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = match caller {
        Caller::Wav(f) => AudioInput::Wav(root.join("fixtures/audio").join(f)),
        Caller::Silent => AudioInput::Pcm {
            sample_rate: 16_000,
            samples: Arc::new(vec![0; 16_000 * secs as usize]),
        },
        Caller::After(ms, f) => {
            let (rate, speech) = common::fixture(f);
            assert_eq!(rate, 16_000);
            let mut pcm = vec![0i16; 16 * ms as usize];
            pcm.extend(speech);
            AudioInput::Pcm {
                sample_rate: 16_000,
                samples: Arc::new(pcm),
            }
        }
        Caller::Cut(ms, f) => {
            let (rate, mut pcm) = common::fixture(f);
            assert_eq!(rate, 16_000);
            pcm.truncate(16 * ms as usize);
            pcm.resize(16_000 * secs as usize, 0);
            AudioInput::Pcm {
                sample_rate: 16_000,
                samples: Arc::new(pcm),
            }
        }
    };
    let acs = FakeAcs::start(FakeAcsConfig {
        signing_key: SigningKeySource::Pem(
            std::fs::read_to_string(root.join("fixtures/keys/jwt_test_key_1.pem")).unwrap(),
        ),
        kid: Some("test-key-1".into()),
        audio: CallAudio {
            sources: vec![AudioSource {
                raw_id: None,
                input,
            }],
            echo,
            ..CallAudio::default()
        },
        ..FakeAcsConfig::default()
    })
    .await
    .unwrap();
    let bot = EchoBot::start("127.0.0.1:0", bot).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.shed_lag_ms = 0;
    for s in &mut cfg.sinks {
        s.set_recordings_dir(dir.path());
    }
    cfg.sinks.push(
        toml::from_str::<SinkConfig>(&format!(
            "type = \"forward\"\nurl = \"{}\"\n",
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
        hangup_after: Duration::from_secs(secs),
        expect_bidirectional: true,
        // what the call heard goes to the temporary folder, never the working directory
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
    // a bot that only listens sends nothing back: the one problem the scenario may find
    let allowed = |p: &String| !bot_speaks && p.contains("sent no audio back");
    assert!(report.problems.iter().all(allowed), "{text}");
    let (status, metrics) = common::http_get(gw.addr(), "/metrics").await;
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(30), gw.shutdown())
        .await
        .expect("gateway drains");
    acs.shutdown().await;
    let media = report.media.as_ref().expect("media ran");
    let out = media.outbound.clone();
    let frozen = media.audio_frames_sent < secs * 50 * 9 / 10;
    let barge_ins = bot.texts("barge_in").into_iter().map(|(_, v)| v).collect();
    Run {
        out,
        text,
        metrics,
        barge_ins,
        frozen,
    }
}

fn metric(run: &Run, series: &str) -> f64 {
    acs_sim::scrape::scrape_value(&run.metrics, series).unwrap_or(0.0)
}

/// The bot: plays `clip` (a fixture WAV) as soon as the call is forwarded, echoes nothing.
fn speaking_bot(clip: &str, reaction: Duration) -> EchoOptions {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = Clip::from_wav(&root.join("fixtures/audio").join(clip)).unwrap();
    EchoOptions {
        clip: Some(Arc::new(clip)),
        play_on_start: true,
        reaction,
        no_echo: true,
        ..Default::default()
    }
}

const ECHOES: [(f64, u32); 3] = [(-6.0, 40), (-10.0, 100), (-20.0, 200)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_own_echo_never_barges_in() {
    for (level_db, delay_ms) in ECHOES {
        let echo = EchoPath { level_db, delay_ms };
        let run = call(
            Caller::Silent,
            Some(echo),
            speaking_bot("speaker_a_16k.wav", Duration::ZERO),
            6,
        )
        .await;
        let text = &run.text;
        let suppressed = metric(
            &run,
            "acs_gateway_forward_barge_in_suppressed_total{reason=\"echo\"}",
        );
        println!(
            "echo {level_db} dB / {delay_ms} ms: {} StopAudio, {} frames played, echo speech starts let be: {suppressed}, barge_in at {:?}",
            run.out.stop_audio, run.out.audio_frames, run.barge_ins
        );
        assert_eq!(run.out.stop_audio, 0, "{level_db}/{delay_ms}: {text}");
        // the clip (2.14 s) played to its end
        assert!(run.out.audio_frames >= 105, "{level_db}/{delay_ms}: {text}");
        // the echo was heard as speech, and let be
        assert!(suppressed >= 1.0, "{level_db}/{delay_ms}: {}", run.metrics);
        assert_eq!(
            metric(
                &run,
                "acs_gateway_forward_playback_stops_total{source=\"barge_in\"}"
            ),
            0.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_talking_over_the_echoing_bot_stops_it_within_100_ms() {
    // The gateway's decision (on which of the caller's frames it barges in) depends on the audio
    // alone and is asserted every time. When its StopAudio reaches the fake also depends on how
    // soon the host runs the gateway's threads while the fake's keep sending: a busy two-core
    // host can hold one back for hundreds of ms, so the arrival gets up to three calls.
    for attempt in 1..=3 {
        // speech_16k.wav after 1 s: onsets at 1.3 s and 3.2 s; the bot's clip (2.14 s, from the
        // start) is playing at the first one. The caller's first 80 ms are soft (about
        // −41 dBFS, some 20 dB under the echo), then loud.
        let run = call(
            Caller::After(1_000, "speech_16k.wav"),
            Some(EchoPath {
                level_db: -6.0,
                delay_ms: 40,
            }),
            speaking_bot("speaker_a_16k.wav", Duration::ZERO),
            3,
        )
        .await;
        let text = &run.text;
        let stream: Vec<f64> = run
            .out
            .stop_audio_stream_latency_ms
            .iter()
            .flatten()
            .copied()
            .collect();
        // the end of the caller's frame the gateway barged in on, ms after the onset (1.3 s)
        let decided: Vec<f64> = run
            .barge_ins
            .iter()
            .filter_map(|b| b["pos"].as_u64())
            .map(|pos| (pos + 320) as f64 / 16.0 - 1_300.0)
            .collect();
        println!(
            "attempt {attempt}: StopAudio {stream:?} ms of stream after the caller's onset ({:?} ms of wall clock); decided on the caller's audio up to {decided:?} ms after the onset",
            run.out.stop_audio_latency_ms
        );
        // once: the bot stopped, so the second onset has nothing to stop
        assert_eq!(run.out.stop_audio, 1, "{text}");
        assert_eq!(stream.len(), 1, "{text}");
        assert_eq!(decided.len(), 1, "{text}");
        assert!(
            decided[0] > 0.0 && decided[0] <= 100.0,
            "{decided:?}: {text}"
        );
        if stream[0] <= 100.0 {
            return;
        }
    }
    panic!("StopAudio came more than 100 ms of stream after the onset three times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_answering_after_the_caller_is_not_stopped_by_its_echo() {
    for (level_db, delay_ms) in ECHOES {
        // the caller says one phrase (speech_16k.wav's first, 0.3–0.6 s) and waits; the bot
        // answers when that turn ends, its echo coming back all along
        let bot = EchoOptions {
            play_on_start: false,
            answer: true,
            ..speaking_bot("speaker_a_16k.wav", Duration::ZERO)
        };
        let run = call(
            Caller::Cut(620, "speech_16k.wav"),
            Some(EchoPath { level_db, delay_ms }),
            bot,
            6,
        )
        .await;
        let text = &run.text;
        println!(
            "answering bot, echo {level_db} dB / {delay_ms} ms: {} StopAudio, {} frames played",
            run.out.stop_audio, run.out.audio_frames
        );
        assert_eq!(run.out.stop_audio, 0, "{level_db}/{delay_ms}: {text}");
        // one answer (2.14 s), played to its end
        assert!(
            (105..=110).contains(&run.out.audio_frames),
            "{level_db}/{delay_ms}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_a_slow_bot_sent_before_the_barge_in_never_plays_after_stop_audio() {
    for reaction_ms in [50, 200] {
        let run = call(
            Caller::After(1_000, "speech_16k.wav"),
            None,
            speaking_bot("speaker_a_16k.wav", Duration::from_millis(reaction_ms)),
            3,
        )
        .await;
        let text = &run.text;
        let stale = metric(
            &run,
            "acs_gateway_forward_playback_refused_total{reason=\"stale\"}",
        );
        println!(
            "bot reacting in {reaction_ms} ms: {} StopAudio, {} frames after it, {stale} stale messages refused",
            run.out.stop_audio, run.out.audio_after_stop
        );
        assert_eq!(run.out.stop_audio, 1, "{text}");
        assert_eq!(run.out.audio_after_stop, 0, "{reaction_ms} ms: {text}");
        assert!(stale >= 1.0, "{reaction_ms} ms: {}", run.metrics);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_while_nothing_plays_sends_no_stop_audio() {
    // a bot that only listens
    let bot = EchoOptions {
        no_echo: true,
        ..Default::default()
    };
    let run = call(Caller::Wav("speech_16k.wav"), None, bot, 3).await;
    let idle = metric(
        &run,
        "acs_gateway_forward_barge_in_suppressed_total{reason=\"idle\"}",
    );
    println!(
        "nothing playing: {} StopAudio, {idle} speech starts with nothing to stop",
        run.out.stop_audio
    );
    assert_eq!(run.out.stop_audio, 0, "{}", run.text);
    assert!(idle >= 2.0, "{}", run.metrics);
}
