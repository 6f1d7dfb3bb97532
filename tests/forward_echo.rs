//! Forward sink → echo bot → back, on 127.0.0.1: the sink started through `SinkConfig` (worker
//! thread and all) sends `start`, frames in order, events and `end`; the echo bot's answers come
//! back to the call's playback target equal to what was sent, in `pcm` and `acs` mode, per call
//! and per participant, and through a `resample` in front.

mod forward_support;

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::frame::{AudioFrame, CallEvent, SinkMsg, StreamStats};
use acs_media_gateway::sinks::forward::echo::{EchoBot, EchoOptions, Received, RecordingPlayback};
use acs_media_gateway::sinks::forward::{ForwardMode, Per};
use acs_media_gateway::sinks::resample::ResampleSinkConfig;
use acs_media_gateway::sinks::SinkConfig;
use forward_support::*;
use serde_json::json;
use std::sync::Arc;

fn close(call: u64, stream: u64, frames: u64) -> SinkMsg {
    SinkMsg::Close {
        call,
        stream,
        stats: Box::new(StreamStats {
            frames,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcm_per_call_frames_arrive_in_order_and_echoes_play_back_unchanged() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let pb = RecordingPlayback::new();
    pb.add_call(7, 16_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let w = start(
        SinkConfig::Forward(forward_cfg(bot.url("/calls/{call}?x=1"))),
        &ctx,
    );
    let c = call(7);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    // the connection opens at the stream's Open, before any audio
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| matches!(r.what, Received::Start(_))))
            .await
    );
    let start = &bot.starts()[0];
    assert_eq!(start["call"]["label"], "contract-call-7");
    assert_eq!(start["call"]["callConnectionId"], "contract-call-7");
    assert_eq!(start["call"]["correlationId"], "corr");
    assert_eq!(
        start["format"],
        json!({"encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1})
    );
    assert_eq!(start["stream"]["kind"], "mixed");
    assert_eq!(start["stream"]["id"], 1);
    assert_eq!(start["per"], "call");
    assert_eq!(start["mode"], "pcm");
    assert_eq!(start["bidirectional"], true);
    assert_eq!(start["connection"], 1);
    assert!(bot
        .records()
        .iter()
        .any(|r| r.what == Received::Connected("/calls/contract-call-7?x=1".into())));

    w.handle.send_control(event(
        &c,
        CallEvent::Dtmf {
            tone: "5".into(),
            participant: None,
            unix_ms: None,
        },
    ));
    let sent = send_frames(&w.handle, 7, 1, 16_000, 1, 0..100);
    w.handle.send_control(SinkMsg::Gap {
        call: 7,
        stream: 1,
        samples: 640,
    });
    assert!(
        until(STEP, || pb.samples(7).len() == sent.len()).await,
        "echo played back"
    );
    w.handle.send_control(close(7, 1, 100));
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );

    assert_eq!(bot.audio(None), sent, "frames reached the bot in order");
    assert_eq!(pb.samples(7), sent, "the echo came back unchanged");
    let types: Vec<String> = bot
        .records()
        .iter()
        .filter_map(|r| r.text_type().map(str::to_string))
        .collect();
    assert_eq!(types, ["start", "dtmf", "gap", "stream_close", "end"]);
    assert_eq!(
        bot.texts("end")[0].1,
        json!({"type": "end", "reason": "peer closed"})
    );
    assert_eq!(bot.texts("gap")[0].1["samples"], 640);
    let f = &metrics.forward;
    assert_eq!(f.frames_sent.get(), 100);
    assert_eq!(f.connects.get(), 1);
    assert_eq!(f.reconnects.get(), 0);
    assert_eq!(
        f.dropped_audio_queue_full.get() + f.dropped_audio_disconnected.get(),
        0
    );
    assert_eq!(f.playback_samples.get(), sent.len() as u64);
    assert!(
        until(STEP, || f.connections_active.get() == 0).await,
        "closed"
    );
    finish(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acs_per_participant_one_connection_each_with_acs_messages_both_ways() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let pb = RecordingPlayback::new();
    pb.add_call(8, 24_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let mut cfg = forward_cfg(bot.url("/c/{call}/p/{participant}"));
    cfg.per = Per::Participant;
    cfg.mode = ForwardMode::Acs;
    let w = start(SinkConfig::Forward(cfg), &ctx);
    let c = call(8);
    let (alice, bob) = ("8:acs:alice", "8:acs:bob/../x");
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, Some(alice), 24_000)));
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 2, Some(bob), 24_000)));
    // the gateway's mix is not forwarded per participant (by default)
    let mut mix = (*stream(&c, 3, None, 24_000)).clone();
    mix.kind = acs_media_gateway::pipeline::StreamKind::Mix;
    w.handle.send_control(SinkMsg::Open(Arc::new(mix)));
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .filter(|r| matches!(r.what, Received::Start(_)))
            .count()
            == 2)
            .await
    );
    let mut a_sent = Vec::new();
    let mut b_sent = Vec::new();
    for i in 0..40 {
        a_sent.extend(send_frames(&w.handle, 8, 1, 24_000, 1, i..i + 1));
        b_sent.extend(send_frames(&w.handle, 8, 2, 24_000, -1, i..i + 1));
        let m = AudioFrame::new(8, 3, i * 480, 24_000, &[5; 480]);
        assert!(w.handle.send_audio(&Arc::new(m)));
    }
    let total = a_sent.len() + b_sent.len();
    assert!(
        until(STEP, || pb.samples(8).len() == total).await,
        "echoes played back"
    );
    w.handle.send_control(close(8, 1, 40));
    w.handle.send_control(close(8, 2, 40));
    w.handle.send_control(close(8, 3, 40));
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .filter(|r| r.what == Received::Closed)
            .count()
            == 2)
            .await
    );

    let recs = bot.records();
    let conn_of = |who: &str| {
        recs.iter()
            .find_map(|r| match &r.what {
                Received::Start(v) if v["participant"] == who => Some(r.conn),
                _ => None,
            })
            .unwrap()
    };
    let (ca, cb) = (conn_of(alice), conn_of(bob));
    assert_ne!(ca, cb);
    assert_eq!(
        bot.audio(Some(ca)),
        a_sent,
        "alice's connection carries alice"
    );
    assert_eq!(bot.audio(Some(cb)), b_sent, "bob's connection carries bob");
    // the URL holds each participant, percent-encoded
    assert!(recs
        .iter()
        .any(|r| r.what == Received::Connected("/c/contract-call-8/p/8%3Aacs%3Aalice".into())));
    assert!(recs.iter().any(
        |r| r.what == Received::Connected("/c/contract-call-8/p/8%3Aacs%3Abob%2F..%2Fx".into())
    ));
    // acs mode: AudioMetadata after start, AudioData carrying participantRawID
    let meta: Vec<_> = recs
        .iter()
        .filter(|r| r.conn == ca)
        .filter_map(|r| match &r.what {
            Received::Text(v) if v["kind"] == "AudioMetadata" => Some(v.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["audioMetadata"]["sampleRate"], 24000);
    let start = bot
        .starts()
        .into_iter()
        .find(|s| s["participant"] == alice)
        .unwrap();
    assert_eq!(start["stream"]["participant"], alice);
    assert_eq!(start["per"], "participant");
    assert_eq!(start["mode"], "acs");
    // every participant's echo came back in order (alice's samples are positive, bob's negative)
    let played = pb.samples(8);
    let pos: Vec<i16> = played.iter().copied().filter(|s| *s > 0).collect();
    let neg: Vec<i16> = played.iter().copied().filter(|s| *s < 0).collect();
    assert_eq!(pos, a_sent);
    assert_eq!(neg, b_sent);
    assert_eq!(
        metrics.forward.frames_sent.get(),
        80,
        "the mix was not forwarded"
    );
    finish(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_audio_for_a_call_without_bidirectional_media_is_counted_not_played() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let pb = RecordingPlayback::new(); // call 9 never registered
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let w = start(SinkConfig::Forward(forward_cfg(bot.url("/{call}"))), &ctx);
    let c = call(9);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    send_frames(&w.handle, 9, 1, 16_000, 1, 0..10);
    assert!(
        until(STEP, || metrics.forward.playback_not_bidirectional.get()
            == 10)
        .await
    );
    assert_eq!(bot.starts()[0]["bidirectional"], false);
    // barge-in does nothing on such a call
    w.handle
        .send_control(event(&c, CallEvent::SpeechStarted { stream: 1, pos: 0 }));
    w.handle.send_control(close(9, 1, 10));
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );
    assert!(pb.samples(9).is_empty());
    assert!(pb.stop_times(9).is_empty());
    assert!(bot.texts("barge_in").is_empty());
    assert_eq!(bot.texts("speech_started").len(), 1);
    // call events use the one wire shape (participantRawId, shared with the NATS sink)
    let speech = &bot.texts("speech_started")[0].1;
    assert!(speech.get("participantRawId").is_some(), "{speech}");
    assert!(speech.get("participant").is_none(), "{speech}");
    finish(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resample_in_front_the_target_hears_24k_and_the_call_gets_16k_back() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let pb = RecordingPlayback::new();
    pb.add_call(10, 16_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let cfg = SinkConfig::Resample(ResampleSinkConfig::new(
        24_000,
        SinkConfig::Forward(forward_cfg(bot.url("/{call}"))),
    ));
    let w = start(cfg, &ctx);
    let c = call(10);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    let tone: Vec<i16> = (0..16_000)
        .map(|k| (8000.0 * (std::f64::consts::TAU * 440.0 * k as f64 / 16_000.0).sin()) as i16)
        .collect();
    for (i, chunk) in tone.chunks(320).enumerate() {
        let f = AudioFrame::new(10, 1, i as u64 * 320, 16_000, chunk);
        assert!(w.handle.send_audio(&Arc::new(f)));
    }
    w.handle.send_control(close(10, 1, 50));
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );
    assert_eq!(bot.starts()[0]["format"]["sampleRate"], 24000);
    assert_eq!(bot.audio(None).len(), 24_000, "one second at 24 kHz");
    // the converter's held-back tail comes out once the bot goes quiet: exactly one second
    assert!(until(STEP, || pb.samples(10).len() >= 16_000).await);
    let back = pb.samples(10);
    assert_eq!(back.len(), 16_000);
    assert!(pb.enqueued.lock().unwrap().iter().all(|p| p.rate == 16_000));
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (g, w) in back.iter().zip(&tone).skip(100).take(15_000) {
        sig += f64::from(*w).powi(2);
        err += (f64::from(*g) - f64::from(*w)).powi(2);
    }
    let snr = 10.0 * (sig / err).log10();
    println!("16 kHz → resample 24 kHz → echo → sinc 24 kHz → 16 kHz, 440 Hz: SNR {snr:.1} dB");
    assert!(snr > 30.0, "16k → 24k → 16k SNR {snr:.1} dB");
    finish(w).await;
}
