//! Both directions recorded: a bidirectional call whose caller (acs-sim's fake ACS, streaming
//! the test's PCM in real time, its first frame 500 ms after the media socket opened) hears two
//! utterances of the bot — the second cut by a stop — gets a `bot.wav` in its call folder, listed
//! in `call.json` as the outbound stream, holding exactly the samples ACS received (bit for bit,
//! silence between the utterances), nothing of the audio the stop flushed, and lined up with the
//! inbound track on the call timeline (the fake records each outbound message with the caller's
//! stream position at its arrival); with `mix_outbound` the call's `mixed.wav` is the caller plus
//! the bot, sample for sample.
//!
//! The bot here is the playback hub itself (`PlaybackTarget::enqueue` and `stop`, the calls the
//! forward sink makes for its target's audio and for a barge-in).

mod common;
use acs_media_gateway::pipeline::playback::{Enqueued, PlaybackTarget};
use acs_sim::acs::{
    AudioInput, AudioSource, CallAudio, FakeAcsHandle, IncomingCallSpec, OutboundKind,
};
use common::*;
use std::sync::Arc;
use std::time::Duration;

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

/// What the fake ACS received back on the call's media socket.
struct Received {
    /// The audio, in arrival order.
    pcm: Vec<i16>,
    /// The caller's frames sent when the first `AudioData` arrived.
    first_at: Option<u64>,
    /// A `StopAudio` came.
    stopped: bool,
}

/// What the fake ACS has received on call `conn` so far; nothing but `AudioData` and `StopAudio`.
fn received(acs: &FakeAcsHandle, conn: &str) -> Received {
    let events = acs.outbound_events(conn).expect("the call");
    for e in &events {
        assert!(
            matches!(e.kind, OutboundKind::Audio { .. } | OutboundKind::StopAudio),
            "unexpected outbound {e:?}"
        );
    }
    Received {
        pcm: acs.outbound_pcm(conn).expect("the call"),
        first_at: events
            .iter()
            .find(|e| matches!(e.kind, OutboundKind::Audio { .. }))
            .map(|e| e.stream_frames),
        stopped: events.iter().any(|e| e.kind == OutboundKind::StopAudio),
    }
}

/// Runs one call at `rate`; checks `bot.wav`, `call.json` and `mixed.wav` (with `mix`).
async fn both_directions(rate: u32, mix: bool) {
    let per = rate as usize / 50;
    let audio_in = caller(per * 50 * 30);
    let pcm = Arc::new(audio_in.clone());
    let acs = fake_acs(|c| {
        c.audio = CallAudio {
            sources: vec![AudioSource {
                raw_id: None,
                input: AudioInput::Pcm {
                    sample_rate: rate,
                    samples: pcm,
                },
            }],
            // the caller's first sample (the call timeline's 0) comes well after the connection
            // opened: the bot track must follow the caller's timeline, not the connection's clock
            first_audio_after: Duration::from_millis(500),
            ..CallAudio::default()
        };
        c.max_stream_duration = Duration::from_secs(60);
    })
    .await;
    let format = if rate == 24_000 {
        "pcm24KMono"
    } else {
        "pcm16KMono"
    };
    let mut gw = Gw::start_with_acs(&acs, |c| {
        c.media.bidirectional = true;
        for p in c.answer.profiles.values_mut() {
            p.enable_bidirectional = true;
            p.audio_format = format.into();
        }
        wav_only(c).mix_outbound = mix;
    })
    .await;
    let conn = acs_call(&acs, &gw, IncomingCallSpec::default()).await;
    let hub = gw.app().playback().clone();
    let call = eventually("the call registers for playback", STEP, || async {
        hub.calls().first().copied().ok_or("no call")
    })
    .await;
    // half a second of caller audio
    wait_acs_frames(&acs, &conn, 25).await;
    wait_until("the call's rate", STEP, || async {
        hub.sample_rate(call) == Some(rate)
    })
    .await;

    // the bot's first utterance (0.6 s) plays whole
    let a = utterance(per * 30, 1);
    assert_eq!(hub.enqueue(call, &a, rate), Enqueued::Queued);
    wait_until("the first utterance reached ACS", STEP, || async {
        received(&acs, &conn).pcm.len() >= a.len()
    })
    .await;
    // a pause, then a 3 s utterance cut after about 10 frames
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = utterance(per * 150, 2);
    assert_eq!(hub.enqueue(call, &b, rate), Enqueued::Queued);
    wait_until("ten frames of the second utterance", STEP, || async {
        received(&acs, &conn).pcm.len() >= a.len() + 10 * per
    })
    .await;
    assert!(hub.stop(call), "the stop stops something");
    wait_until("StopAudio", STEP, || async {
        received(&acs, &conn).stopped
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the caller hangs up: the fake closes the media socket (1000) and posts the call's end
    acs_hang_up(&acs, &gw, &conn).await;
    let sent = acs_frames_sent(&acs, &conn) as usize * per;
    assert!(
        sent <= audio_in.len(),
        "the caller's audio outlasts the call"
    );
    let inbound = &audio_in[..sent];
    let dir = gw.call_dir(&conn);
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
    let Received {
        pcm: received,
        first_at,
        ..
    } = received(&acs, &conn);
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
    let first_at = first_at.expect("audio came") as usize * per;
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
    assert_eq!(mixed.len(), inbound.len(), "every frame the caller sent");
    for (i, &m) in mixed.iter().enumerate() {
        let want = inbound[i] + if mix { *track.get(i).unwrap_or(&0) } else { 0 };
        assert_eq!(m, want, "mixed.wav sample {i} (mix_outbound = {mix})");
    }
    gw.shutdown().await;
    acs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_track_at_16k_is_recorded_aligned_and_mixed() {
    both_directions(16_000, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_track_at_24k_is_recorded_aligned_and_the_mix_left_alone() {
    both_directions(24_000, false).await;
}
