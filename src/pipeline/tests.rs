//! Unit tests of [`super::CallPipeline`]: stream open, gap fill, out-of-order and duplicate
//! frames, speech edges, close and call end, and the fan-out to more than one sink. Each test
//! feeds WebSocket messages to a call and checks what a recording test sink received (delivered
//! deterministically through [`ManualSink`]) and the metrics.

use super::silence::{DetectorKind, SilenceConfig};
use super::sink::{ManualSink, QueueConfig};
use super::*;
use crate::protocol::media::{inbound_audio_data_json, inbound_audio_metadata_json};
use crate::protocol::timestamp::format_timestamp;
use base64::Engine as _;
use std::sync::Mutex;

/// 2024-11-15T19:16:12.925Z, the first frame's timestamp.
const T0: i64 = 1_731_698_172_925;
/// Samples in a 20 ms frame at 16 kHz.
const N: u64 = 320;

/// What the recording sink saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Rec {
    Open {
        stream: StreamId,
        kind: StreamKind,
        participant: Option<String>,
        rate: u32,
    },
    Audio {
        stream: StreamId,
        pos: u64,
        samples: Vec<i16>,
    },
    Gap {
        stream: StreamId,
        samples: u64,
    },
    Event(CallEvent),
    Close {
        stream: StreamId,
        stats: StreamStats,
    },
    End(EndReason),
}

struct Recorder(Arc<Mutex<Vec<Rec>>>);

impl Sink for Recorder {
    fn kind(&self) -> &'static str {
        "recorder"
    }
    fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Open {
            stream: s.id,
            kind: s.kind,
            participant: s.participant.as_deref().map(str::to_owned),
            rate: s.sample_rate,
        });
        Ok(())
    }
    fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Audio {
            stream: f.stream,
            pos: f.pos,
            samples: f.samples().to_vec(),
        });
        Ok(())
    }
    fn gap(&mut self, _c: CallId, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Gap { stream, samples });
        Ok(())
    }
    fn event(&mut self, _c: &Arc<CallInfo>, e: &CallEvent) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Event(e.clone()));
        Ok(())
    }
    fn close(&mut self, _c: CallId, stream: StreamId, st: &StreamStats) -> Result<(), SinkError> {
        self.0
            .lock()
            .unwrap()
            .push(Rec::Close { stream, stats: *st });
        Ok(())
    }
    fn end_call(&mut self, _c: &Arc<CallInfo>, r: &EndReason) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::End(r.clone()));
        Ok(())
    }
}

/// A pipeline with `sinks` recording sinks, each behind a hand-drained queue.
struct Bench {
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    sinks: Vec<(ManualSink, Arc<Mutex<Vec<Rec>>>)>,
}

impl Bench {
    fn new(sinks: usize, cfg: PipelineConfig) -> Bench {
        let metrics = Metrics::new();
        let mut handles = Vec::new();
        let mut manual = Vec::new();
        for _ in 0..sinks {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (h, m) = ManualSink::new(
                Box::new(Recorder(seen.clone())),
                &QueueConfig::default(),
                metrics.sink("recorder"),
            );
            handles.push(h);
            manual.push((m, seen));
        }
        Bench {
            pipeline: Pipeline::new(cfg, FanOut::new(handles), metrics.clone()),
            metrics,
            sinks: manual,
        }
    }

    fn call(&self) -> CallPipeline {
        self.pipeline
            .start_call(Some("conn-1".into()), Some("corr-1".into()), None, T0)
    }

    /// Everything sink `i` received so far.
    fn seen(&mut self, i: usize) -> Vec<Rec> {
        let (m, seen) = &mut self.sinks[i];
        m.drain();
        seen.lock().unwrap().clone()
    }
}

/// A pipeline config whose speech detector is the plain energy threshold (deterministic).
fn energy_cfg() -> PipelineConfig {
    PipelineConfig {
        silence: SilenceConfig {
            detector: DetectorKind::Energy,
            ..SilenceConfig::default()
        },
        ..PipelineConfig::default()
    }
}

fn metadata() -> String {
    inbound_audio_metadata_json(16_000, "89e8cb59-b991-48b0-b154-1db84f16a077")
}

/// AudioData for frame `k` (timestamp T0 + 20·k ms) filled with `value`.
fn audio(k: i64, value: i16, participant: Option<&str>, silent: bool) -> String {
    let bytes: Vec<u8> = std::iter::repeat_n(value.to_le_bytes(), N as usize)
        .flatten()
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut ts = String::new();
    format_timestamp(T0 + 20 * k, &mut ts);
    let mut out = String::new();
    inbound_audio_data_json(&mut out, &b64, &ts, participant, silent);
    out
}

/// (pos, first sample) of every audio block of `stream`.
fn audio_of(seen: &[Rec], stream: StreamId) -> Vec<(u64, i16)> {
    seen.iter()
        .filter_map(|r| match r {
            Rec::Audio {
                stream: s,
                pos,
                samples,
            } if *s == stream => Some((*pos, samples[0])),
            _ => None,
        })
        .collect()
}

fn opened(seen: &[Rec]) -> Vec<StreamId> {
    seen.iter()
        .filter_map(|r| match r {
            Rec::Open { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_frame_opens_a_stream_and_its_samples_reach_the_sink() {
    let mut b = Bench::new(1, PipelineConfig::default());
    let mut call = b.call();
    assert_eq!(
        call.handle(metadata().as_bytes()).unwrap(),
        Handled::Metadata
    );
    assert!(b.seen(0).is_empty(), "metadata alone opens nothing");
    assert_eq!(
        call.handle(audio(0, 7, None, false).as_bytes()).unwrap(),
        Handled::Audio
    );
    let seen = b.seen(0);
    let s = opened(&seen)[0];
    assert_eq!(
        seen[0],
        Rec::Open {
            stream: s,
            kind: StreamKind::Mixed,
            participant: None,
            rate: 16_000,
        }
    );
    assert_eq!(
        seen[1],
        Rec::Event(CallEvent::ParticipantJoined {
            stream: s,
            participant: None
        })
    );
    assert_eq!(
        seen[2],
        Rec::Audio {
            stream: s,
            pos: 0,
            samples: vec![7; N as usize]
        }
    );
    assert_eq!(call.participant_count(), 1);
    // a second participant key opens a second stream (unmixed), with its id
    call.handle(audio(1, 9, Some("4:+14255550123"), false).as_bytes())
        .unwrap();
    let seen = b.seen(0);
    assert!(seen.contains(&Rec::Open {
        stream: opened(&seen)[1],
        kind: StreamKind::Participant,
        participant: Some("4:+14255550123".into()),
        rate: 16_000,
    }));
    assert_eq!(call.participant_count(), 2);
    assert_eq!(b.metrics.participants.get(), 2);
}

#[test]
fn a_gap_in_the_timestamps_is_filled_with_silence_before_the_next_frame() {
    let mut b = Bench::new(1, PipelineConfig::default());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    for (k, v) in [(0, 1), (1, 2), (4, 5)] {
        assert_eq!(
            call.handle(audio(k, v, None, false).as_bytes()).unwrap(),
            Handled::Audio
        );
    }
    let seen = b.seen(0);
    let s = opened(&seen)[0];
    assert_eq!(audio_of(&seen, s), vec![(0, 1), (N, 2), (4 * N, 5)]);
    let gaps: Vec<&Rec> = seen
        .iter()
        .filter(|r| matches!(r, Rec::Gap { .. }))
        .collect();
    assert_eq!(
        gaps,
        vec![&Rec::Gap {
            stream: s,
            samples: 2 * N
        }]
    );
    // the gap comes right before the frame after it
    let gap_at = seen.iter().position(|r| matches!(r, Rec::Gap { .. }));
    let frame_at = seen
        .iter()
        .position(|r| matches!(r, Rec::Audio { pos, .. } if *pos == 4 * N));
    assert_eq!(gap_at.map(|g| g + 1), frame_at);
    assert_eq!(b.metrics.gaps_filled.get(), 1);
    assert_eq!(b.metrics.gap_fill_samples.get(), 2 * N);
}

#[test]
fn late_and_duplicate_frames_are_dropped_and_counted() {
    let mut b = Bench::new(1, PipelineConfig::default());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    // 0, 2 (frame 1 filled as a gap), then 1 arrives late, then 2 again
    assert_eq!(
        call.handle(audio(0, 1, None, false).as_bytes()).unwrap(),
        Handled::Audio
    );
    assert_eq!(
        call.handle(audio(2, 3, None, false).as_bytes()).unwrap(),
        Handled::Audio
    );
    assert_eq!(
        call.handle(audio(1, 2, None, false).as_bytes()).unwrap(),
        Handled::Dropped
    );
    assert_eq!(
        call.handle(audio(2, 3, None, false).as_bytes()).unwrap(),
        Handled::Dropped
    );
    assert_eq!(
        call.handle(audio(3, 4, None, false).as_bytes()).unwrap(),
        Handled::Audio
    );
    call.flush_metrics();
    let seen = b.seen(0);
    let s = opened(&seen)[0];
    assert_eq!(audio_of(&seen, s), vec![(0, 1), (2 * N, 3), (3 * N, 4)]);
    assert_eq!(b.metrics.late_frames.get(), 1);
    assert_eq!(b.metrics.duplicate_frames.get(), 1);
    call.finish(EndReason::PeerClosed);
    let seen = b.seen(0);
    let stats = seen
        .iter()
        .find_map(|r| match r {
            Rec::Close { stats, .. } => Some(*stats),
            _ => None,
        })
        .expect("the stream is closed");
    assert_eq!(
        (stats.late, stats.duplicates, stats.gaps, stats.frames),
        (1, 1, 1, 3)
    );
    assert_eq!(stats.samples, 4 * N, "3 frames and one frame of fill");
}

#[test]
fn speech_edges_follow_the_audio_and_acs_silent_flag() {
    let mut b = Bench::new(1, energy_cfg());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    // 10 silent frames, 10 loud ones, 25 silent ones (hang time 400 ms = 20 frames)
    for k in 0..45 {
        let loud = (10..20).contains(&k);
        let msg = audio(k, if loud { 8000 } else { 0 }, None, !loud);
        call.handle(msg.as_bytes()).unwrap();
    }
    let seen = b.seen(0);
    let s = opened(&seen)[0];
    let speech: Vec<&CallEvent> = seen
        .iter()
        .filter_map(|r| match r {
            Rec::Event(e @ (CallEvent::SpeechStarted { .. } | CallEvent::SpeechEnded { .. })) => {
                Some(e)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        speech,
        vec![
            &CallEvent::SpeechStarted {
                stream: s,
                pos: 10 * N
            },
            &CallEvent::SpeechEnded {
                stream: s,
                start: 10 * N,
                end: 20 * N
            },
        ]
    );
    assert_eq!(b.metrics.speech_segments.get(), 1);
    // loud audio that ACS flags silent is not speech (trust_acs_silent)
    for k in 45..60 {
        call.handle(audio(k, 8000, None, true).as_bytes()).unwrap();
    }
    // speech still going when the call ends is closed at the end of the stream
    for k in 60..70 {
        call.handle(audio(k, 8000, None, false).as_bytes()).unwrap();
    }
    call.finish(EndReason::PeerClosed);
    let seen = b.seen(0);
    let ends: Vec<&Rec> = seen
        .iter()
        .filter(|r| matches!(r, Rec::Event(CallEvent::SpeechEnded { .. })))
        .collect();
    assert_eq!(
        ends.last(),
        Some(&&Rec::Event(CallEvent::SpeechEnded {
            stream: s,
            start: 60 * N,
            end: 70 * N
        }))
    );
    assert_eq!(b.metrics.speech_segments.get(), 2);
}

#[test]
fn finish_closes_every_stream_then_ends_the_call_once() {
    let mut b = Bench::new(1, PipelineConfig::default());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    for k in 0..3 {
        call.handle(audio(k, 1, Some("4:+1"), false).as_bytes())
            .unwrap();
        call.handle(audio(k, 2, Some("8:acs:x"), false).as_bytes())
            .unwrap();
    }
    call.finish(EndReason::PeerClosed);
    call.finish(EndReason::Shutdown);
    assert_eq!(call.participant_count(), 0);
    drop(call);
    let seen = b.seen(0);
    let participants: Vec<StreamId> = seen
        .iter()
        .filter_map(|r| match r {
            Rec::Open {
                stream,
                kind: StreamKind::Participant,
                ..
            } => Some(*stream),
            _ => None,
        })
        .collect();
    assert_eq!(participants.len(), 2);
    for s in &participants {
        let close = seen
            .iter()
            .position(|r| matches!(r, Rec::Close { stream, .. } if stream == s))
            .expect("closed");
        let left = seen
            .iter()
            .position(|r| {
                matches!(r, Rec::Event(CallEvent::ParticipantLeft { stream, .. }) if stream == s)
            })
            .expect("left");
        let last_audio = seen
            .iter()
            .rposition(|r| matches!(r, Rec::Audio { stream, .. } if stream == s))
            .unwrap();
        assert!(last_audio < close && close < left, "{seen:#?}");
        let Rec::Close { stats, .. } = &seen[close] else {
            unreachable!()
        };
        assert_eq!((stats.frames, stats.samples), (3, 3 * N));
    }
    let ends: Vec<&Rec> = seen.iter().filter(|r| matches!(r, Rec::End(_))).collect();
    assert_eq!(
        ends,
        vec![&Rec::End(EndReason::PeerClosed)],
        "once, first reason"
    );
    assert_eq!(seen.last(), Some(&Rec::End(EndReason::PeerClosed)));
}

#[test]
fn bad_input_ends_the_connection_but_keeps_what_was_received() {
    let mut b = Bench::new(1, PipelineConfig::default());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    call.handle(audio(0, 5, None, false).as_bytes()).unwrap();
    let err = call
        .handle(br#"{"kind":"AudioData","audioData":"#)
        .unwrap_err();
    assert_eq!(err.close_code(), 1007);
    // an odd-length payload is refused (counted), the call goes on
    let odd = r#"{"kind":"AudioData","audioData":{"data":"AAAA","timestamp":"2024-11-15T19:16:12.965Z"}}"#;
    assert!(matches!(
        call.handle(odd.as_bytes()),
        Ok(Handled::Refused(_))
    ));
    drop(call); // a task that ends without finish() still closes its streams
    let seen = b.seen(0);
    let s = opened(&seen)[0];
    assert_eq!(audio_of(&seen, s), vec![(0, 5)]);
    assert!(seen
        .iter()
        .any(|r| matches!(r, Rec::Close { stream, .. } if *stream == s)));
    assert_eq!(seen.last(), Some(&Rec::End(EndReason::Disconnected)));
}

#[test]
fn every_sink_gets_the_same_messages_in_the_same_order() {
    let mut b = Bench::new(2, energy_cfg());
    let mut call = b.call();
    call.handle(metadata().as_bytes()).unwrap();
    for k in [0, 1, 3, 2, 4] {
        call.handle(audio(k, 4000, Some("4:+1"), false).as_bytes())
            .unwrap();
    }
    call.handle(br#"{"kind":"DtmfData","dtmfData":{"data":"5"}}"#)
        .unwrap();
    call.finish(EndReason::PeerClosed);
    let (a, c) = (b.seen(0), b.seen(1));
    assert!(a.len() > 8, "{a:#?}");
    assert_eq!(a, c);
    assert!(a.iter().any(|r| matches!(
        r,
        Rec::Event(CallEvent::Dtmf { tone, .. }) if tone == "5"
    )));
}
