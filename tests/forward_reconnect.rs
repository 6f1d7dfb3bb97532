//! A forward target that dies mid-call and comes back on the same port, on 127.0.0.1: the sink
//! notices, backs off, reconnects, sends `start` again (`connection: 2`) and frames flow again;
//! frames sent during the outage are dropped and counted exactly; a null sink beside it in the
//! same fan-out loses nothing; the ingress side (the fan-out) never waits.

mod forward_support;

use acs_media_gateway::metrics::Metrics;
use acs_media_gateway::pipeline::frame::{AudioFrame, SinkMsg};
use acs_media_gateway::pipeline::FanOut;
use acs_media_gateway::sinks::forward::echo::{EchoBot, EchoOptions, Received, RecordingPlayback};
use acs_media_gateway::sinks::null::NullSinkConfig;
use acs_media_gateway::sinks::SinkConfig;
use forward_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL: u64 = 31;

fn offer(fan: &FanOut, range: std::ops::Range<u64>) -> (Vec<i16>, Duration) {
    let mut all = Vec::new();
    let t = Instant::now();
    for i in range {
        let s = samples(i, 16_000, 1);
        fan.audio(&Arc::new(AudioFrame::new(CALL, 1, i * 320, 16_000, &s)));
        all.extend_from_slice(&s);
    }
    (all, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_killed_and_restarted_reconnects_and_counts_the_outage() {
    let bot = EchoBot::start("127.0.0.1:0", EchoOptions::default())
        .await
        .unwrap();
    let addr = bot.addr();
    let pb = RecordingPlayback::new();
    pb.add_call(CALL, 16_000);
    let metrics = Metrics::new();
    let ctx = context(&metrics, Some(pb.clone()));
    let mut cfg = forward_cfg(bot.url("/calls/{call}"));
    cfg.ping_interval_ms = 200;
    let fwd = start(SinkConfig::Forward(cfg), &ctx);
    let null = start(SinkConfig::Null(NullSinkConfig::default()), &ctx);
    let fan = FanOut::new(vec![fwd.handle.clone(), null.handle.clone()]);
    let c = call(CALL);
    fan.control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| matches!(r.what, Received::Start(_))))
            .await
    );

    // A: connected
    let (a, _) = offer(&fan, 0..20);
    assert!(until(STEP, || bot.audio(None).len() == a.len()).await);

    // the target dies (no close frame); the sink notices
    let f = &metrics.forward;
    let killed = Instant::now();
    bot.kill().await;
    assert!(
        until(STEP, || f.connections_active.get() == 0).await,
        "loss noticed"
    );
    assert!(
        until(STEP, || f.connect_failures.get() >= 1).await,
        "retrying"
    );

    // B: the outage — every frame dropped and counted, nobody waits
    let (_, offered) = offer(&fan, 20..50);
    assert!(
        offered < Duration::from_millis(100),
        "the fan-out waited: {offered:?}"
    );
    assert!(
        until(STEP, || f.dropped_audio_disconnected.get() == 30).await,
        "outage drops counted: {}",
        f.dropped_audio_disconnected.get()
    );

    // the target comes back on the same port
    let bot2 = EchoBot::start(addr, EchoOptions::default()).await.unwrap();
    assert!(
        bot2.wait_for(STEP, |l| l
            .iter()
            .any(|r| matches!(r.what, Received::Start(_))))
            .await
    );
    let back_after = killed.elapsed();
    let start2 = &bot2.starts()[0];
    assert_eq!(start2["connection"], 2, "start sent again, as a reconnect");
    assert_eq!(start2["stream"]["id"], 1, "the open stream is listed again");
    assert_eq!(start2["call"]["label"], "contract-call-31");

    // C: flowing again
    let (cc, _) = offer(&fan, 50..75);
    assert!(until(STEP, || bot2.audio(None).len() == cc.len()).await);
    fan.control(SinkMsg::Close {
        call: CALL,
        stream: 1,
        stats: Box::default(),
    });
    fan.control(ended(&c));
    assert!(
        bot2.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );

    assert_eq!(bot2.audio(None), cc, "after the reconnect, frames in order");
    assert_eq!(f.dropped_audio_disconnected.get(), 30, "exactly the outage");
    assert_eq!(f.dropped_audio_queue_full.get(), 0);
    assert_eq!(f.reconnects.get(), 1);
    assert_eq!(f.connects.get(), 2);
    assert_eq!(f.frames_sent.get(), 45);
    let failures = f.connect_failures.get();
    println!(
        "reconnected {:.0} ms after the kill, {failures} failed attempts in between",
        back_after.as_secs_f64() * 1000.0
    );
    finish(fwd).await;
    finish(null).await;
    // the sink beside it lost nothing, and neither sink's queue dropped anything
    assert_eq!(metrics.sink("null").frames.get(), 75);
    assert_eq!(metrics.sink("null").audio_drops.get(), 0);
    assert_eq!(metrics.sink("forward").audio_drops.get(), 0);
    assert_eq!(metrics.sink("forward").write_errors.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_at_call_start_is_retried_until_it_comes_up() {
    // a port with nothing behind it yet
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = Metrics::new();
    let ctx = context(&metrics, None);
    let w = start(
        SinkConfig::Forward(forward_cfg(format!("ws://127.0.0.1:{port}/{{call}}"))),
        &ctx,
    );
    let c = call(CALL);
    w.handle
        .send_control(SinkMsg::Open(stream(&c, 1, None, 16_000)));
    let f = &metrics.forward;
    assert!(
        until(STEP, || f.connect_failures.get() >= 3).await,
        "backing off and retrying"
    );
    let bot = EchoBot::start(("127.0.0.1", port), EchoOptions::default())
        .await
        .unwrap();
    assert!(
        bot.wait_for(STEP, |l| l
            .iter()
            .any(|r| matches!(r.what, Received::Start(_))))
            .await
    );
    assert_eq!(bot.starts()[0]["connection"], 1);
    assert_eq!(f.reconnects.get(), 1, "a connection after failed attempts");
    w.handle.send_control(ended(&c));
    assert!(
        bot.wait_for(STEP, |l| l.iter().any(|r| r.what == Received::Closed))
            .await
    );
    assert_eq!(bot.texts("end")[0].1["reason"], "peer closed");
    finish(w).await;
}
