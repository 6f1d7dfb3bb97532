//! Barge-in on 127.0.0.1: while the echo bot plays a clip into a bidirectional call, the caller's
//! speech start (our detector's `SpeechStarted`) stops playback at once and reaches the bot as
//! `barge_in` within 50 ms; the bot stops and answers `stop`, which stops playback again. With
//! `barge_in = false` nothing is stopped and only `speech_started` is forwarded.

mod forward_support;

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::frame::{CallEvent, SinkMsg};
use acs_media_gateway::sinks::forward::echo::{
    Clip, EchoBot, EchoOptions, Received, RecordingPlayback,
};
use acs_media_gateway::sinks::SinkConfig;
use forward_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL: u64 = 21;

fn tone(rate: u32, ms: u32) -> Clip {
    let n = rate * ms / 1000;
    Clip {
        samples: (0..n)
            .map(|k| {
                (6000.0 * (std::f64::consts::TAU * 300.0 * f64::from(k) / f64::from(rate)).sin())
                    as i16
            })
            .collect(),
        rate,
    }
}

async fn playing_bot() -> EchoBot {
    EchoBot::start(
        "127.0.0.1:0",
        EchoOptions {
            clip: Some(Arc::new(tone(16_000, 5_000))),
            play_on_start: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_start_stops_playback_and_tells_the_bot_within_50_ms() {
    let bot = playing_bot().await;
    let pb = RecordingPlayback::new();
    pb.add_call(CALL, 16_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let w = start(SinkConfig::Forward(forward_cfg(bot.url("/{call}"))), &ctx);
    let c = call(CALL);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, Some("8:acs:caller"), 16_000)));
    // the bot's clip is playing into the call
    assert!(
        until(STEP, || pb.samples(CALL).len() >= 320 * 10).await,
        "playback flowing"
    );
    assert!(pb.stop_times(CALL).is_empty());

    let t0 = Instant::now();
    w.handle.send_control(event(
        &c,
        CallEvent::SpeechStarted {
            stream: 1,
            pos: 4800,
        },
    ));
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| r.text_type() == Some("barge_in")))
            .await
    );
    let stop_at = pb.stop_times(CALL)[0];
    let (bot_at, msg) = bot.texts("barge_in")[0].clone();
    let stop_ms = stop_at.duration_since(t0).as_secs_f64() * 1000.0;
    let bot_ms = bot_at.duration_since(t0).as_secs_f64() * 1000.0;
    println!("barge-in: playback stopped after {stop_ms:.2} ms, bot told after {bot_ms:.2} ms");
    assert!(stop_ms < 50.0, "stop after {stop_ms:.1} ms");
    assert!(
        bot_ms < 50.0,
        "barge_in reached the bot after {bot_ms:.1} ms"
    );
    assert_eq!(msg["stream"], 1);
    assert_eq!(msg["participant"], "8:acs:caller");
    assert_eq!(msg["pos"], 4800);
    // the event follows in call order (barge_in overtakes queued messages)
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| r.text_type() == Some("speech_started")))
            .await,
        "the event is forwarded too"
    );

    // the bot stopped and said so: its `stop` stops playback a second time, and nothing it sent
    // before that can arrive after it (one connection, in order)
    assert!(
        until(STEP, || pb.stop_times(CALL).len() == 2).await,
        "the bot's stop arrived"
    );
    let played = pb.samples(CALL).len();
    assert!(played < 16 * 5_000, "the clip was cut short");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        pb.samples(CALL).len(),
        played,
        "nothing played after the bot stopped"
    );
    assert_eq!(metrics.forward.barge_ins.get(), 1);
    assert_eq!(metrics.forward.stops_target.get(), 1);

    w.handle.send_control(SinkMsg::Close {
        call: CALL,
        stream: 1,
        stats: Box::default(),
    });
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );
    finish(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_off_forwards_the_event_and_stops_nothing() {
    let bot = playing_bot().await;
    let pb = RecordingPlayback::new();
    pb.add_call(CALL, 16_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let mut cfg = forward_cfg(bot.url("/{call}"));
    cfg.barge_in = false;
    let w = start(SinkConfig::Forward(cfg), &ctx);
    let c = call(CALL);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    assert!(
        until(STEP, || pb.samples(CALL).len() >= 320 * 5).await,
        "playback flowing"
    );
    w.handle
        .send_control(event(&c, CallEvent::SpeechStarted { stream: 1, pos: 0 }));
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| r.text_type() == Some("speech_started")))
            .await
    );
    let before = pb.samples(CALL).len();
    assert!(
        until(STEP, || pb.samples(CALL).len() > before + 320 * 5).await,
        "the clip plays on"
    );
    assert!(pb.stop_times(CALL).is_empty());
    assert!(bot.texts("barge_in").is_empty());
    assert_eq!(metrics.forward.barge_ins.get(), 0);
    w.handle.send_control(SinkMsg::Close {
        call: CALL,
        stream: 1,
        stats: Box::default(),
    });
    w.handle.send_control(ended(&c));
    finish(w).await;
}
