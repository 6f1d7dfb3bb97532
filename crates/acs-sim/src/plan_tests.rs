//! Unit tests of [`super::plan::plan_frames`]: message order, timestamps, payload sizes,
//! participant ids, silent flags and every fault injection, checked by parsing each planned
//! message with the gateway's own [`acs_protocol::parse_inbound`].

use std::time::Duration;

use base64::Engine as _;

use super::audio::speech_like;
use super::plan::*;
use acs_protocol::{parse_inbound, parse_timestamp, Inbound, ResultStatus};

const START: i64 = 1_731_698_172_925; // 2024-11-15T19:16:12.925Z

fn loud(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
        .collect()
}

fn plan(rate: u32, participants: Vec<Participant>) -> StreamPlan {
    let mut p = StreamPlan::new(rate, participants);
    p.start_unix_ms = START;
    p.subscription_id = "89e8cb59-b991-48b0-b154-1db84f16a077".into();
    p
}

fn mixed(rate: u32, frames: usize) -> StreamPlan {
    plan(
        rate,
        vec![Participant {
            raw_id: None,
            pcm: loud(frames * rate as usize / 50),
        }],
    )
}

/// (participant, frame number, delivery, timestamp ms, at) of every audio message, in order.
fn audio(frames: &[PlannedFrame]) -> Vec<(usize, u64, Delivery, i64, Duration)> {
    frames
        .iter()
        .filter_map(|f| match f.kind {
            PlannedKind::Audio {
                participant,
                frame,
                delivery,
                ..
            } => {
                let Inbound::AudioData(a) = parse_inbound(f.text.as_bytes()).unwrap() else {
                    panic!("audio kind but not AudioData: {}", f.text)
                };
                let ts = parse_timestamp(a.timestamp.as_deref().unwrap()).unwrap();
                Some((participant, frame, delivery, ts.unix_ms, f.at))
            }
            _ => None,
        })
        .collect()
}

fn numbers(frames: &[PlannedFrame]) -> Vec<u64> {
    audio(frames).iter().map(|a| a.1).collect()
}

#[test]
fn clean_mixed_stream_at_16k() {
    let frames = plan_frames(&mixed(16_000, 50)).unwrap();
    assert_eq!(frames.len(), 51);
    assert_eq!(frames[0].kind, PlannedKind::AudioMetadata);
    assert_eq!(frames[0].at, Duration::ZERO);
    let Inbound::AudioMetadata(m) = parse_inbound(frames[0].text.as_bytes()).unwrap() else {
        panic!("first message is not AudioMetadata")
    };
    assert_eq!(m.sample_rate, Some(16_000));
    assert_eq!(m.channels, Some(1));
    assert_eq!(m.length, Some(640));
    assert_eq!(m.encoding.as_deref(), Some("PCM"));
    assert_eq!(
        m.subscription_id.as_deref(),
        Some("89e8cb59-b991-48b0-b154-1db84f16a077")
    );

    for (i, f) in frames[1..].iter().enumerate() {
        assert_eq!(f.at, Duration::from_millis(20 * i as u64));
        let Inbound::AudioData(a) = parse_inbound(f.text.as_bytes()).unwrap() else {
            panic!("not AudioData")
        };
        assert_eq!(a.participant_raw_id, None, "mixed has no participantRawID");
        assert!(!f.text.contains("participantRawID"));
        assert!(!a.silent);
        let pcm = base64::engine::general_purpose::STANDARD
            .decode(a.data.as_bytes())
            .unwrap();
        assert_eq!(pcm.len(), 640);
        let ts = a.timestamp.as_deref().unwrap();
        assert_eq!(ts.len(), "2024-11-15T19:16:12.925Z".len());
        assert!(ts.ends_with('Z'));
        assert_eq!(parse_timestamp(ts).unwrap().unix_ms, START + 20 * i as i64);
    }
    assert!(frames[1]
        .text
        .contains(r#""timestamp":"2024-11-15T19:16:12.925Z""#));
    assert!(frames[2]
        .text
        .contains(r#""timestamp":"2024-11-15T19:16:12.945Z""#));
}

#[test]
fn frames_at_24k_carry_960_bytes_and_partial_frames_are_padded() {
    let mut p = mixed(24_000, 3);
    p.participants[0].pcm.truncate(480 * 2 + 100);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(frames.len(), 1 + 3);
    let Inbound::AudioMetadata(m) = parse_inbound(frames[0].text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!((m.sample_rate, m.length), (Some(24_000), Some(960)));
    for f in &frames[1..] {
        let Inbound::AudioData(a) = parse_inbound(f.text.as_bytes()).unwrap() else {
            panic!()
        };
        let pcm = base64::engine::general_purpose::STANDARD
            .decode(a.data.as_bytes())
            .unwrap();
        assert_eq!(pcm.len(), 960);
        assert!(matches!(f.kind, PlannedKind::Audio { pcm_bytes: 960, .. }));
    }
}

#[test]
fn unmixed_participants_have_ids_and_interleave_per_slot() {
    let p = plan(
        16_000,
        vec![
            Participant {
                raw_id: Some("8:acs:aaa".into()),
                pcm: loud(320 * 3),
            },
            Participant {
                raw_id: Some("8:acs:bbb".into()),
                pcm: loud(320 * 2),
            },
        ],
    );
    let frames = plan_frames(&p).unwrap();
    let a = audio(&frames);
    let order: Vec<(usize, u64)> = a.iter().map(|x| (x.0, x.1)).collect();
    assert_eq!(order, vec![(0, 1), (1, 1), (0, 2), (1, 2), (0, 3)]);
    for f in &frames[1..] {
        let Inbound::AudioData(d) = parse_inbound(f.text.as_bytes()).unwrap() else {
            panic!()
        };
        let PlannedKind::Audio { participant, .. } = f.kind else {
            panic!()
        };
        let want = ["8:acs:aaa", "8:acs:bbb"][participant];
        assert_eq!(d.participant(), Some(want));
        assert!(f.text.contains(r#""participantRawID":"8:acs:"#));
    }
    // Both participants' frame 2 carry the same timestamp.
    assert_eq!(a[2].3, a[3].3);
}

#[test]
fn silent_flag_follows_the_threshold() {
    let mut pcm = loud(320);
    pcm.extend(vec![0i16; 320]); // digital silence
    pcm.extend(vec![3i16; 320]); // about −80 dBFS
    let mut p = plan(16_000, vec![Participant { raw_id: None, pcm }]);
    let flags = |p: &StreamPlan| -> Vec<bool> {
        plan_frames(p).unwrap()[1..]
            .iter()
            .map(|f| match parse_inbound(f.text.as_bytes()).unwrap() {
                Inbound::AudioData(a) => a.silent,
                _ => panic!(),
            })
            .collect()
    };
    assert_eq!(flags(&p), vec![false, true, true]);
    p.silent_threshold_dbfs = -90.0;
    assert_eq!(flags(&p), vec![false, true, false]);
    p.silent_threshold_dbfs = f64::NEG_INFINITY;
    assert_eq!(flags(&p), vec![false, false, false]);
    // The generated speech-like signal alternates speech and silence every 500 ms.
    let g = plan(
        16_000,
        vec![Participant {
            raw_id: None,
            pcm: speech_like(16_000, 2_000),
        }],
    );
    let f = flags(&g);
    assert!(f[..25].iter().all(|s| !s) && f[25..50].iter().all(|s| *s));
}

#[test]
fn gap_every_skips_frames_but_timestamps_advance() {
    let mut p = mixed(16_000, 10);
    p.faults.gap_every = Some(3);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(numbers(&frames), vec![1, 2, 4, 5, 7, 8, 10]);
    for (_, n, d, ts, at) in audio(&frames) {
        assert_eq!(d, Delivery::Normal);
        assert_eq!(ts, START + 20 * (n as i64 - 1));
        assert_eq!(at, Duration::from_millis(20 * (n - 1)));
    }
}

#[test]
fn duplicate_every_sends_twice_in_a_row() {
    let mut p = mixed(16_000, 9);
    p.faults.duplicate_every = Some(4);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(numbers(&frames), vec![1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9]);
    let a = audio(&frames);
    assert_eq!(a[3].2, Delivery::Normal);
    assert_eq!(a[4].2, Delivery::Duplicate);
    assert_eq!(frames[4].text, frames[5].text);
    assert_eq!(a[3].4, a[4].4);
}

#[test]
fn reorder_every_swaps_with_the_next_frame() {
    let mut p = mixed(16_000, 12);
    p.faults.reorder_every = Some(5);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(
        numbers(&frames),
        vec![1, 2, 3, 4, 6, 5, 7, 8, 9, 11, 10, 12]
    );
    let a = audio(&frames);
    // Frame 5 keeps its timestamp but is sent in frame 6's slot, after it.
    assert_eq!(a[5].1, 5);
    assert_eq!(a[5].2, Delivery::Reordered);
    assert_eq!(a[5].3, START + 4 * 20);
    assert_eq!(a[5].4, Duration::from_millis(5 * 20));
    assert_eq!(a[4].4, Duration::from_millis(5 * 20));
    // The last frame has no successor to swap with.
    let mut q = mixed(16_000, 5);
    q.faults.reorder_every = Some(5);
    assert_eq!(numbers(&plan_frames(&q).unwrap()), vec![1, 2, 3, 4, 5]);
    // No swap into a gap (2 ↛ 3), a gapped frame is not swapped (6), 4 ↔ 5 swap, and 8 is last.
    let mut r = mixed(16_000, 8);
    r.faults.reorder_every = Some(2);
    r.faults.gap_every = Some(3);
    assert_eq!(numbers(&plan_frames(&r).unwrap()), vec![1, 2, 5, 4, 7, 8]);
}

#[test]
fn late_every_resends_after_five_frames_with_the_original_timestamp() {
    let mut p = mixed(16_000, 20);
    p.faults.late_every = Some(10);
    let frames = plan_frames(&p).unwrap();
    let n = numbers(&frames);
    assert_eq!(
        n,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 10, 16, 17, 18, 19, 20, 20]
    );
    let a = audio(&frames);
    let late = &a[15];
    assert_eq!((late.1, late.2), (10, Delivery::Late));
    assert_eq!(late.3, START + 9 * 20);
    assert_eq!(late.4, Duration::from_millis(14 * 20));
    assert_eq!(frames[10].text, frames[16].text);
    // A late copy past the end is still sent, after the last frame.
    assert_eq!(a[21].2, Delivery::Late);
    assert_eq!(a[21].4, Duration::from_millis(24 * 20));
}

#[test]
fn malformed_at_replaces_exactly_that_frame() {
    let mut p = mixed(16_000, 6);
    p.faults.malformed_at = Some(4);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(frames.len(), 7);
    assert_eq!(
        frames[4].kind,
        PlannedKind::Malformed {
            participant: 0,
            frame: 4
        }
    );
    assert_eq!(frames[4].text, MALFORMED_FRAME);
    assert_eq!(frames[4].at, Duration::from_millis(60));
    assert!(parse_inbound(frames[4].text.as_bytes()).is_err());
    assert_eq!(numbers(&frames), vec![1, 2, 3, 5, 6]);
}

#[test]
fn disconnect_after_stops_the_plan() {
    let mut p = mixed(16_000, 20);
    p.faults.disconnect_after = Some(7);
    p.faults.late_every = Some(5);
    let frames = plan_frames(&p).unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last.kind, PlannedKind::Disconnect);
    assert!(last.text.is_empty());
    assert_eq!(last.at, Duration::from_millis(6 * 20));
    // Frames 1..=7, and no late copy of frame 5 (it would be due in slot 9).
    assert_eq!(numbers(&frames), vec![1, 2, 3, 4, 5, 6, 7]);
    p.faults.disconnect_after = Some(0);
    let frames = plan_frames(&p).unwrap();
    assert_eq!(
        frames.iter().map(|f| f.kind).collect::<Vec<_>>(),
        vec![PlannedKind::AudioMetadata, PlannedKind::Disconnect]
    );
}

#[test]
fn dtmf_is_spread_evenly() {
    let mut p = mixed(16_000, 40);
    p.dtmf = "12#".into();
    let frames = plan_frames(&p).unwrap();
    let dtmf: Vec<(String, Duration)> = frames
        .iter()
        .filter(|f| f.kind == PlannedKind::Dtmf)
        .map(|f| match parse_inbound(f.text.as_bytes()).unwrap() {
            Inbound::DtmfData(d) => {
                let ts = parse_timestamp(d.timestamp.as_deref().unwrap()).unwrap();
                assert_eq!(ts.unix_ms, START + f.at.as_millis() as i64);
                (d.data.to_string(), f.at)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        dtmf,
        vec![
            ("1".to_string(), Duration::from_millis(10 * 20)),
            ("2".to_string(), Duration::from_millis(20 * 20)),
            ("#".to_string(), Duration::from_millis(30 * 20)),
        ]
    );
}

#[test]
fn transcript_sends_metadata_first_and_final_data_last() {
    let mut p = mixed(16_000, 10);
    p.transcript = Some("Hello everyone".into());
    p.call_connection_id = Some("call-1".into());
    p.correlation_id = Some("corr-1".into());
    let frames = plan_frames(&p).unwrap();
    assert_eq!(frames[0].kind, PlannedKind::AudioMetadata);
    assert_eq!(frames[1].kind, PlannedKind::TranscriptionMetadata);
    let Inbound::TranscriptionMetadata(m) = parse_inbound(frames[1].text.as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(m.call_connection_id.as_deref(), Some("call-1"));
    assert_eq!(m.correlation_id.as_deref(), Some("corr-1"));
    let last = frames.last().unwrap();
    assert_eq!(last.kind, PlannedKind::TranscriptionData);
    assert_eq!(last.at, Duration::from_millis(9 * 20));
    let Inbound::TranscriptionData(t) = parse_inbound(last.text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(t.text, "Hello everyone");
    assert_eq!(t.result_status, Some(ResultStatus::Final));
    assert_eq!(t.words.len(), 2);
    assert_eq!(t.duration, Some(10 * 20 * 10_000));
}

#[test]
fn loops_repeat_audio_with_advancing_timestamps() {
    let mut p = mixed(16_000, 3);
    p.loops = 2;
    let frames = plan_frames(&p).unwrap();
    let a = audio(&frames);
    assert_eq!(a.len(), 6);
    assert_eq!(
        frames[1].text.split("\"data\"").nth(1),
        frames[4].text.split("\"data\"").nth(1)
    );
    for (i, x) in a.iter().enumerate() {
        assert_eq!(x.3, START + 20 * i as i64);
    }
}

#[test]
fn every_planned_message_parses() {
    let mut p = plan(
        24_000,
        vec![
            Participant {
                raw_id: Some("8:acs:1".into()),
                pcm: speech_like(24_000, 1_000),
            },
            Participant {
                raw_id: Some("8:acs:2".into()),
                pcm: speech_like(24_000, 800),
            },
        ],
    );
    p.dtmf = "9".into();
    p.transcript = Some("hi".into());
    p.faults = Faults {
        gap_every: Some(7),
        duplicate_every: Some(5),
        reorder_every: Some(4),
        late_every: Some(6),
        malformed_at: Some(3),
        disconnect_after: None,
    };
    let frames = plan_frames(&p).unwrap();
    assert_eq!(
        frames,
        plan_frames(&p).unwrap(),
        "planning is deterministic"
    );
    let mut last_at = Duration::ZERO;
    for f in &frames {
        assert!(f.at >= last_at, "send times never go backwards");
        last_at = f.at;
        match f.kind {
            PlannedKind::Malformed { .. } => assert!(parse_inbound(f.text.as_bytes()).is_err()),
            _ => assert!(parse_inbound(f.text.as_bytes()).is_ok(), "{}", f.text),
        }
    }
}

#[test]
fn invalid_plans_are_refused() {
    let base = mixed(16_000, 2);
    let mut p = base.clone();
    p.sample_rate = 8_000;
    assert!(plan_frames(&p).is_err());
    let mut p = base.clone();
    p.faults.reorder_every = Some(1);
    assert!(plan_frames(&p).is_err());
    let mut p = base.clone();
    p.loops = 0;
    assert!(plan_frames(&p).is_err());
    let mut p = base.clone();
    p.participants.push(p.participants[0].clone());
    assert!(plan_frames(&p).is_err(), "unmixed participants need ids");
    let mut p = base.clone();
    p.participants = (0..5)
        .map(|i| Participant {
            raw_id: Some(format!("8:acs:{i}")),
            pcm: vec![0; 320],
        })
        .collect();
    assert!(plan_frames(&p).is_err());
    p.participants.truncate(2);
    p.participants[1].raw_id = p.participants[0].raw_id.clone();
    assert!(plan_frames(&p).is_err(), "duplicate ids");
}

#[test]
fn plan_audio_frame_is_the_frame_plan_frames_writes() {
    // the live planners (fake ACS media, load) and plan_frames write a slot's AudioData alike
    let rate = 16_000;
    let plan = plan(
        rate,
        vec![Participant {
            raw_id: Some("4:+14255550123".into()),
            pcm: loud(320 * 3),
        }],
    );
    let planned = plan_frames(&plan).unwrap();
    let third = planned
        .iter()
        .find(|f| matches!(f.kind, PlannedKind::Audio { frame: 3, .. }))
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(
        loud(320)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let at = AudioSlot {
        slot: 2,
        participant: 0,
        pcm_bytes: 640,
    };
    let live = plan_audio_frame(START, at, &b64, Some("4:+14255550123"), false);
    assert_eq!(&live, third);
    assert_eq!(live.at, Duration::from_millis(40));
    let Ok(Inbound::AudioData(a)) = parse_inbound(live.text.as_bytes()) else {
        panic!("not AudioData: {}", live.text)
    };
    assert_eq!(
        parse_timestamp(a.timestamp.as_deref().unwrap())
            .unwrap()
            .unix_ms,
        START + 40
    );
    assert_eq!(a.participant_raw_id.as_deref(), Some("4:+14255550123"));
    assert!(!a.silent);
    // the mixed stream omits the participant
    let mixed = plan_audio_frame(START, at, &b64, None, true);
    let Ok(Inbound::AudioData(a)) = parse_inbound(mixed.text.as_bytes()) else {
        panic!("not AudioData: {}", mixed.text)
    };
    assert_eq!(a.participant_raw_id, None);
    assert!(a.silent);
}
