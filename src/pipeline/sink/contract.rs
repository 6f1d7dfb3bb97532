//! The shared contract every sink must pass, used by each sink's tests: a scripted two-stream
//! call with gaps, events and closes, plus misuse (unknown streams, writes after close, repeated
//! shutdown) that must give errors, never panics.

use super::Sink;
use crate::pipeline::frame::{
    AudioFrame, CallEvent, CallId, CallInfo, EndReason, StreamId, StreamInfo, StreamKind,
    StreamStats,
};
use std::sync::Arc;

/// The scripted call's info.
pub fn call(id: CallId) -> Arc<CallInfo> {
    Arc::new(CallInfo::new(
        id,
        Some(format!("contract-call-{id}")),
        Some("corr".into()),
        None,
        1_700_000_000_000,
    ))
}

/// A stream of the scripted call.
pub fn stream(
    call: &Arc<CallInfo>,
    id: StreamId,
    participant: Option<&str>,
    rate: u32,
) -> Arc<StreamInfo> {
    Arc::new(StreamInfo {
        call: call.clone(),
        id,
        kind: if participant.is_some() {
            StreamKind::Participant
        } else {
            StreamKind::Mixed
        },
        participant: participant.map(Arc::from),
        sample_rate: rate,
        start_unix_ms: Some(1_700_000_000_000),
        call_offset: 0,
    })
}

/// Runs the contract against `sink`; returns the number of frames written per stream
/// (stream 1 and 2) so the caller can check its outputs.
pub fn run(sink: &mut dyn Sink) -> (u64, u64) {
    let c = call(42);
    let a = stream(&c, 1, Some("8:acs:alice"), 16_000);
    let b = stream(&c, 2, Some("../../etc/passwd"), 16_000);
    sink.open(&a).expect("open a");
    sink.open(&b).expect("open b");
    let ev = CallEvent::ParticipantJoined {
        stream: 1,
        participant: a.participant.clone(),
    };
    sink.event(&c, &ev).expect("event");
    let mut pos = 0u64;
    for i in 0..10i16 {
        let samples: Vec<i16> = (0..320).map(|k| (k as i16).wrapping_mul(i)).collect();
        let f = AudioFrame::new(c.id, 1, pos, 16_000, &samples);
        sink.write(&f).expect("write a");
        let f = AudioFrame::new(c.id, 2, pos, 16_000, &samples);
        sink.write(&f).expect("write b");
        pos += 320;
    }
    sink.gap(c.id, 1, 640).expect("gap");
    sink.event(
        &c,
        &CallEvent::Dtmf {
            tone: "5".into(),
            participant: None,
            unix_ms: None,
        },
    )
    .expect("dtmf");
    sink.flush().expect("flush");
    // misuse must be an error, not a panic
    assert!(
        sink.write(&AudioFrame::new(c.id, 99, 0, 16_000, &[1, 2]))
            .is_err(),
        "write to unknown stream"
    );
    sink.close(
        c.id,
        1,
        &StreamStats {
            frames: 10,
            ..Default::default()
        },
    )
    .expect("close a");
    assert!(
        sink.write(&AudioFrame::new(c.id, 1, 0, 16_000, &[1, 2]))
            .is_err(),
        "write after close"
    );
    sink.close(
        c.id,
        2,
        &StreamStats {
            frames: 10,
            ..Default::default()
        },
    )
    .expect("close b");
    sink.end_call(&c, &EndReason::PeerClosed).expect("end call");
    // a stream left open is finalised by shutdown
    let c2 = call(43);
    let d = stream(&c2, 3, None, 24_000);
    sink.open(&d).expect("open d");
    sink.write(&AudioFrame::new(c2.id, 3, 0, 24_000, &[100; 480]))
        .expect("write d");
    sink.shutdown().expect("shutdown");
    (10, 10)
}
