//! Both directions recorded: a bidirectional call whose caller (this test, speaking the ACS
//! media protocol in real time) hears two utterances of the bot — the second cut by a stop — gets
//! a `bot.wav` in its call folder, listed in `call.json` as the outbound stream, holding exactly
//! the samples ACS received (bit for bit, silence between the utterances), nothing of the audio
//! the stop flushed, and lined up with the inbound track on the call timeline; with
//! `mix_outbound` the call's `mixed.wav` is the caller plus the bot, sample for sample.
//!
//! The bot here is the playback hub itself (`PlaybackTarget::enqueue` and `stop`, the calls the
//! forward sink makes for its target's audio and for a barge-in).

mod common;
use acs_media_gateway::pipeline::playback::{Enqueued, PlaybackTarget};
use acs_media_gateway::protocol::b64::decode_base64_into;
use acs_media_gateway::protocol::media::{parse_outbound, Outbound};
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What the fake ACS side saw.
#[derive(Default)]
struct Seen {
    /// Inbound frames sent so far.
    sent: u64,
    /// Outbound messages in order: (inbound frames sent when it arrived, audio or `None` for
    /// StopAudio).
    out: Vec<(u64, Option<Vec<i16>>)>,
}

impl Seen {
    fn audio_samples(&self) -> usize {
        self.out
            .iter()
            .filter_map(|(_, a)| a.as_ref())
            .map(Vec::len)
            .sum()
    }
    fn stopped(&self) -> bool {
        self.out.iter().any(|(_, a)| a.is_none())
    }
}

/// The caller's audio: small, never saturates with the bot's, deterministic.
fn caller(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i * 7919 % 2001) as i16) - 1000).collect()
}

/// A bot utterance: never zero (so its runs in `bot.wav` are exactly the audio sent).
fn utterance(n: usize, seed: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let v = 1000 + ((i * 104_729 + seed * 7) % 3000) as i16;
            if i % 2 == 0 {
                v
            } else {
                -v
            }
        })
        .collect()
}

/// Plays the caller side of a call in real time (20 ms frames, timestamps from `T0`) and records
/// what comes back, until `close` fires; then closes normally. The first frame goes 500 ms after
/// the connection opened. Returns the caller audio sent.
async fn caller_side(
    mut ws: Ws,
    rate: u32,
    seen: Arc<Mutex<Seen>>,
    mut close: oneshot::Receiver<()>,
) -> Vec<i16> {
    let per = rate as usize / 50;
    let audio_in = caller(per * 50 * 30);
    ws.send(Message::text(metadata(rate))).await.unwrap();
    // the caller's first sample (the call timeline's 0) comes well after the connection opened:
    // the bot track must follow the caller's timeline, not the connection's clock
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut k = 0usize;
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            _ = &mut close => break,
            _ = tick.tick(), if (k + 1) * per <= audio_in.len() => {
                let frame = &audio_in[k * per..(k + 1) * per];
                ws.send(Message::text(audio(frame, k as i64, None, false))).await.unwrap();
                k += 1;
                seen.lock().unwrap().sent = k as u64;
            }
            m = ws.next() => {
                let Some(Ok(Message::Text(t))) = m else { continue };
                let item = match parse_outbound(t.as_bytes()).unwrap() {
                    Outbound::AudioData { data } => {
                        let n = decode_base64_into(data.as_bytes(), &mut buf).unwrap();
                        Some(buf[..n].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
                    }
                    Outbound::StopAudio => None,
                    Outbound::Unknown { kind } => panic!("unexpected outbound {kind}"),
                };
                let mut s = seen.lock().unwrap();
                let at = s.sent;
                s.out.push((at, item));
            }
        }
    }
    ws.send(Message::Close(Some(CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let _ = tokio::time::timeout(STEP, async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    audio_in[..k * per].to_vec()
}

/// Runs one call at `rate`; checks `bot.wav`, `call.json` and `mixed.wav` (with `mix`).
async fn both_directions(rate: u32, mix: bool) {
    let mut gw = Gw::start(|c| {
        c.media.bidirectional = true;
        wav_only(c).mix_outbound = mix;
    })
    .await;
    let label = format!("botrec-{rate}");
    let ws = gw.connect("/ws", &label).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (close_tx, close_rx) = oneshot::channel();
    let side = tokio::spawn(caller_side(ws, rate, seen.clone(), close_rx));
    let hub = gw.app().playback().clone();
    let call = eventually("the call registers for playback", STEP, || async {
        hub.calls().first().copied().ok_or("no call")
    })
    .await;
    let per = rate as usize / 50;
    let sent = |s: &Seen| s.sent;
    wait_until("half a second of caller audio", STEP, || async {
        sent(&seen.lock().unwrap()) >= 25
    })
    .await;
    wait_until("the call's rate", STEP, || async {
        hub.sample_rate(call) == Some(rate)
    })
    .await;

    // the bot's first utterance (0.6 s) plays whole
    let a = utterance(per * 30, 1);
    assert_eq!(hub.enqueue(call, &a, rate), Enqueued::Queued);
    wait_until("the first utterance reached ACS", STEP, || async {
        seen.lock().unwrap().audio_samples() >= a.len()
    })
    .await;
    // a pause, then a 3 s utterance cut after about 10 frames
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = utterance(per * 150, 2);
    assert_eq!(hub.enqueue(call, &b, rate), Enqueued::Queued);
    wait_until("ten frames of the second utterance", STEP, || async {
        seen.lock().unwrap().audio_samples() >= a.len() + 10 * per
    })
    .await;
    assert!(hub.stop(call), "the stop stops something");
    wait_until("StopAudio", STEP, || async {
        seen.lock().unwrap().stopped()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    close_tx.send(()).unwrap();
    let inbound = tokio::time::timeout(LONG, side).await.unwrap().unwrap();
    gw.wait_no_connections().await;
    let dir = gw.call_dir(&label);
    let doc = eventually("the ended call's call.json", LONG, || async {
        let p = dir.join("call.json");
        let doc: serde_json::Value = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if doc["call"]["endReason"].is_null() {
            Err(doc)
        } else {
            Ok(doc)
        }
    })
    .await;

    // what ACS received, in order: every audio frame before and after the stop
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let received: Vec<i16> = seen
        .out
        .iter()
        .filter_map(|(_, a)| a.clone())
        .flatten()
        .collect();
    assert_eq!(&received[..a.len()], &a[..], "the first utterance whole");
    let b_sent = received.len() - a.len();
    assert!(
        b_sent >= 10 * per && b_sent < b.len() / 2,
        "the second was cut: {b_sent} of {} samples sent",
        b.len()
    );
    assert_eq!(&received[a.len()..], &b[..b_sent]);

    // call.json lists the outbound track
    let streams = doc["streams"].as_array().unwrap();
    let bot = streams
        .iter()
        .find(|s| s["kind"] == "outbound")
        .unwrap_or_else(|| panic!("an outbound stream in call.json: {doc:#}"));
    assert_eq!(bot["file"], "bot.wav");
    assert_eq!(bot["direction"], "outbound");
    assert_eq!(bot["participantRawId"], serde_json::Value::Null);
    assert_eq!(bot["sampleRate"], rate);
    assert_eq!(bot["callOffsetMs"], 0);
    assert_eq!(bot["complete"], true);
    let caller_stream = streams.iter().find(|s| s["kind"] == "mixed").unwrap();
    assert_eq!(caller_stream["direction"], "inbound");
    assert_eq!(caller_stream["callOffsetMs"], 0);
    assert_eq!(caller_stream["outboundMixed"], mix);

    // bot.wav: silence, then exactly what ACS received, the pause as silence, nothing flushed
    let (r, track) = read_wav(&dir.join("bot.wav"));
    assert_eq!(r, rate);
    assert_eq!(bot["samples"], track.len());
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < track.len() {
            if track[i] == 0 {
                i += 1;
                continue;
            }
            let s = i;
            while i < track.len() && track[i] != 0 {
                i += 1;
            }
            runs.push((s, i));
        }
        runs
    };
    let recorded: Vec<i16> = runs
        .iter()
        .flat_map(|&(s, e)| track[s..e].to_vec())
        .collect();
    assert_eq!(
        recorded, received,
        "the track holds exactly the samples sent, in order"
    );
    assert_eq!(runs.last().unwrap().1, track.len(), "and ends with them");
    let segs = bot["speechSegments"].as_array().unwrap();
    assert!(
        segs.len() >= 2,
        "sent segments listed: {}",
        bot["speechSegments"]
    );
    // the second utterance starts after the pause (at least 300 ms of silence before it)
    let pos_of: Vec<usize> = runs.iter().flat_map(|&(s, e)| s..e).collect();
    let (a_end, b_start) = (pos_of[a.len() - 1] + 1, pos_of[a.len()]);
    assert!(
        b_start - a_end >= rate as usize * 3 / 10,
        "the pause is silence: {} samples",
        b_start - a_end
    );

    // on the call timeline: the first frame sits where the caller's audio was when it was sent
    let first_at = seen.out.iter().find(|(_, a)| a.is_some()).unwrap().0 as usize * per;
    let a_start = runs[0].0 as i64;
    let tolerance = rate as i64 * 15 / 100; // 150 ms: scheduling on a loaded machine
    eprintln!(
        "rate {rate}: bot's first sample at {a_start}, caller had sent {first_at}; pause {} samples",
        b_start - a_end
    );
    assert!(
        (a_start - first_at as i64).abs() <= tolerance,
        "the bot's first sample at {a_start}, the caller had sent {first_at} samples"
    );

    // the caller's track (ACS's mixed stream) starts at the same place: with the bot mixed in
    // when asked, exactly the caller otherwise
    let (_, mixed) = read_wav(&dir.join("mixed.wav"));
    for (i, &m) in mixed.iter().enumerate() {
        let want = inbound[i] + if mix { *track.get(i).unwrap_or(&0) } else { 0 };
        assert_eq!(m, want, "mixed.wav sample {i} (mix_outbound = {mix})");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_track_at_16k_is_recorded_aligned_and_mixed() {
    both_directions(16_000, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_track_at_24k_is_recorded_aligned_and_the_mix_left_alone() {
    both_directions(24_000, false).await;
}
