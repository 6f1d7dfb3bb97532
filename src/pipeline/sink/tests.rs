//! The queue, worker and fan-out tests: order, drops, failing and panicking sinks, control
//! messages past the reserve, stuck sinks.

use super::queue::CONTROL_WAIT_LIMIT;
use super::*;
use crate::metrics::Metrics;
use crate::pipeline::frame::SinkMsg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records what it saw; optionally slow, failing or panicking.
struct Probe {
    seen: Arc<Mutex<Vec<String>>>,
    delay: Duration,
    fail_writes: bool,
    panic_after: Option<u64>,
    writes: u64,
    open: std::collections::HashSet<StreamId>,
}

impl Probe {
    fn new(seen: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            seen,
            delay: Duration::ZERO,
            fail_writes: false,
            panic_after: None,
            writes: 0,
            open: Default::default(),
        }
    }
}

impl Sink for Probe {
    fn kind(&self) -> &'static str {
        "probe"
    }
    fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
        self.open.insert(s.id);
        self.seen.lock().unwrap().push(format!("open {}", s.id));
        Ok(())
    }
    fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
        if !self.open.contains(&f.stream) {
            return Err(SinkError::UnknownStream(f.stream));
        }
        self.writes += 1;
        if self.panic_after.is_some_and(|n| self.writes > n) {
            panic!("probe told to panic");
        }
        std::thread::sleep(self.delay);
        if self.fail_writes {
            return Err(SinkError::Other("told to fail".into()));
        }
        self.seen
            .lock()
            .unwrap()
            .push(format!("audio {} {}", f.stream, f.pos));
        Ok(())
    }
    fn close(&mut self, _c: CallId, s: StreamId, _st: &StreamStats) -> Result<(), SinkError> {
        if !self.open.remove(&s) {
            return Err(SinkError::UnknownStream(s));
        }
        self.seen.lock().unwrap().push(format!("close {s}"));
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.seen.lock().unwrap().push("shutdown".into());
        Ok(())
    }
}

#[test]
fn probe_passes_the_contract() {
    let mut p = Probe::new(Arc::default());
    contract::run(&mut p);
}

fn cfg(audio: usize) -> QueueConfig {
    QueueConfig {
        audio_capacity: audio,
        control_reserve: 8,
        flush_interval: Duration::from_millis(20),
        poll_interval: Duration::from_millis(1),
        workers: 1,
        overflow: Overflow::DropNewest,
    }
}

#[test]
fn order_is_kept_and_close_follows_its_audio() {
    let m = Metrics::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let w = spawn_blocking_sink(
        "probe",
        move |_| Box::new(Probe::new(s2.clone())),
        &cfg(64),
        m.sink("probe"),
    )
    .unwrap();
    let c = contract::call(1);
    w.handle
        .send_control(SinkMsg::Open(contract::stream(&c, 7, None, 16_000)));
    for i in 0..20 {
        assert!(w
            .handle
            .send_audio(&Arc::new(AudioFrame::new(1, 7, i * 320, 16_000, &[0; 320]))));
    }
    w.handle.send_control(SinkMsg::Close {
        call: 1,
        stream: 7,
        stats: Box::default(),
    });
    assert_eq!(
        w.finish_and_join(Instant::now() + Duration::from_secs(5)),
        0
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.first().unwrap(), "open 7");
    assert_eq!(seen[20], "audio 7 6080");
    assert_eq!(seen[21], "close 7");
    assert_eq!(seen.last().unwrap(), "shutdown");
}

#[test]
fn slow_sink_drops_and_counts_without_blocking_the_sender_or_other_sinks() {
    let m = Metrics::new();
    let slow_seen = Arc::new(Mutex::new(Vec::new()));
    let fast_seen = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (slow_seen.clone(), fast_seen.clone());
    let slow = spawn_blocking_sink(
        "slow",
        move |_| {
            let mut p = Probe::new(a.clone());
            p.delay = Duration::from_millis(20);
            Box::new(p)
        },
        &cfg(4),
        m.sink("slow"),
    )
    .unwrap();
    let fast = spawn_blocking_sink(
        "fast",
        move |_| Box::new(Probe::new(b.clone())),
        &cfg(1024),
        m.sink("fast"),
    )
    .unwrap();
    let fan = FanOut::new(vec![slow.handle.clone(), fast.handle.clone()]);
    let c = contract::call(1);
    fan.control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
    let t0 = Instant::now();
    for i in 0..500u64 {
        fan.audio(&Arc::new(AudioFrame::new(1, 1, i * 320, 16_000, &[1; 320])));
    }
    let offered = t0.elapsed();
    // 500 offers to a sink that takes 20 ms per frame would take 10 s if anything waited.
    assert!(
        offered < Duration::from_secs(2),
        "fan-out waited on the slow sink: {offered:?}"
    );
    fan.control(SinkMsg::Close {
        call: 1,
        stream: 1,
        stats: Box::default(),
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(fast.finish_and_join(deadline), 0);
    let fast_audio = fast_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("audio"))
        .count();
    assert_eq!(fast_audio, 500, "the fast sink lost nothing");
    let slow_drops = m.sink("slow").audio_drops.get();
    assert!(slow_drops > 400, "slow sink drops counted: {slow_drops}");
    assert_eq!(slow.finish_and_join(deadline), 0);
    let slow_audio = slow_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("audio"))
        .count() as u64;
    assert_eq!(
        slow_audio + slow_drops,
        500,
        "every frame is either written or counted"
    );
    assert!(
        slow_seen.lock().unwrap().contains(&"close 1".to_string()),
        "control survived the flood"
    );
}

#[test]
fn failing_and_panicking_sinks_are_counted_and_contained() {
    let m = Metrics::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let failing = spawn_blocking_sink(
        "failing",
        move |_| {
            let mut p = Probe::new(s.clone());
            p.fail_writes = true;
            Box::new(p)
        },
        &cfg(64),
        m.sink("failing"),
    )
    .unwrap();
    let s = seen.clone();
    let panicking = spawn_blocking_sink(
        "panicking",
        move |_| {
            let mut p = Probe::new(s.clone());
            p.panic_after = Some(3);
            Box::new(p)
        },
        &cfg(64),
        m.sink("panicking"),
    )
    .unwrap();
    let fan = FanOut::new(vec![failing.handle.clone(), panicking.handle.clone()]);
    let c = contract::call(3);
    fan.control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
    for i in 0..10u64 {
        fan.audio(&Arc::new(AudioFrame::new(3, 1, i * 320, 16_000, &[1; 320])));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    assert_eq!(failing.finish_and_join(deadline), 0);
    assert_eq!(panicking.finish_and_join(deadline), 0);
    assert_eq!(m.sink("failing").write_errors.get(), 10);
    assert_eq!(m.sink("failing").frames.get(), 0);
    assert_eq!(m.sink("panicking").frames.get(), 3);
    assert_eq!(m.sink("panicking").write_errors.get(), 1);
    assert_eq!(
        m.sink("panicking").audio_drops.get(),
        6,
        "after the panic, frames are counted as dropped"
    );
}

/// A probe whose `open` blocks until the gate opens: a sink stuck for as long as a test wants.
struct OpensWhenGateOpens(Probe, Arc<AtomicBool>);

impl Sink for OpensWhenGateOpens {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
        while !self.1.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.0.open(s)
    }
    fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
        self.0.write(f)
    }
    fn close(&mut self, c: CallId, s: StreamId, st: &StreamStats) -> Result<(), SinkError> {
        self.0.close(c, s, st)
    }
}

#[test]
fn control_messages_past_the_reserve_wait_for_room_and_are_never_lost() {
    let m = Metrics::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let gate = Arc::new(AtomicBool::new(false));
    let g2 = gate.clone();
    let w = spawn_blocking_sink(
        "gated2",
        move |_| Box::new(OpensWhenGateOpens(Probe::new(s.clone()), g2.clone())),
        &cfg(4), // 4 audio + 8 reserve
        m.sink("gated2"),
    )
    .unwrap();
    let c = contract::call(1);
    w.handle
        .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
    std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
    for i in 0..4u64 {
        assert!(w
            .handle
            .send_audio(&Arc::new(AudioFrame::new(1, 1, i * 320, 16_000, &[0; 320]))));
    }
    assert!(
        w.handle.fill() >= 1.0,
        "audio part full: {}",
        w.handle.fill()
    );
    // 8 control messages fill the reserve; the next ones wait until the sink moves again
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        gate.store(true, Ordering::Release);
    });
    for _ in 0..12 {
        assert!(w.handle.send_control(SinkMsg::Gap {
            call: 1,
            stream: 1,
            samples: 1
        }));
    }
    assert!(w.handle.send_control(SinkMsg::Close {
        call: 1,
        stream: 1,
        stats: Box::default()
    }));
    release.join().unwrap();
    assert_eq!(
        w.finish_and_join(Instant::now() + Duration::from_secs(5)),
        0
    );
    let sm = m.sink("gated2");
    assert!(sm.control_waits.get() >= 1, "someone had to wait");
    assert_eq!(sm.control_drops.get(), 0, "nothing lost");
    assert_eq!(sm.audio_drops.get(), 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|s| s.starts_with("audio")).count(), 4);
    assert_eq!(seen.last().map(String::as_str), Some("close 1"), "{seen:?}");
}

#[test]
fn a_stuck_sink_costs_one_wait_then_control_messages_fail_fast_until_it_moves() {
    let m = Metrics::new();
    let gate = Arc::new(AtomicBool::new(false));
    let g2 = gate.clone();
    let w = spawn_blocking_sink(
        "stuck",
        move |_| Box::new(OpensWhenGateOpens(Probe::new(Arc::default()), g2.clone())),
        &cfg(4), // 4 audio + 8 reserve
        m.sink("stuck"),
    )
    .unwrap();
    let c = contract::call(1);
    w.handle
        .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
    std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
    let gap = || SinkMsg::Gap {
        call: 1,
        stream: 1,
        samples: 1,
    };
    for _ in 0..12 {
        assert!(w.handle.send_control(gap()), "fits audio + reserve");
    }
    let t = Instant::now();
    assert!(
        !w.handle.send_control(gap()),
        "stuck: gives up after the limit"
    );
    assert!(t.elapsed() >= CONTROL_WAIT_LIMIT);
    let t = Instant::now();
    assert!(!w.handle.send_control(gap()), "then fails fast");
    assert!(t.elapsed() < CONTROL_WAIT_LIMIT / 2, "{:?}", t.elapsed());
    let sm = m.sink("stuck");
    assert_eq!(sm.control_drops.get(), 2);
    assert_eq!(sm.control_waits.get(), 1, "one wait, not one per message");
    // the sink moves again: control messages are accepted again
    gate.store(true, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.handle.depth() > 0 {
        assert!(Instant::now() < deadline, "drains");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(w.handle.send_control(gap()));
    assert_eq!(
        w.finish_and_join(Instant::now() + Duration::from_secs(5)),
        0
    );
}

#[test]
fn control_messages_use_the_reserve_when_audio_fills_the_queue() {
    let m = Metrics::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let gate = Arc::new(Mutex::new(()));
    let hold = gate.lock().unwrap();
    let g2 = gate.clone();
    struct Gated(Probe, Arc<Mutex<()>>);
    impl Sink for Gated {
        fn kind(&self) -> &'static str {
            "gated"
        }
        fn open(&mut self, s: &Arc<StreamInfo>) -> Result<(), SinkError> {
            let _g = self.1.lock().unwrap();
            self.0.open(s)
        }
        fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
            self.0.write(f)
        }
        fn close(&mut self, c: CallId, s: StreamId, st: &StreamStats) -> Result<(), SinkError> {
            self.0.close(c, s, st)
        }
    }
    let w = spawn_blocking_sink(
        "gated",
        move |_| Box::new(Gated(Probe::new(s.clone()), g2.clone())),
        &cfg(4),
        m.sink("gated"),
    )
    .unwrap();
    let c = contract::call(1);
    w.handle
        .send_control(SinkMsg::Open(contract::stream(&c, 1, None, 16_000)));
    std::thread::sleep(Duration::from_millis(50)); // the worker is now stuck in open()
    let accepted = (0..10u64)
        .filter(|i| {
            w.handle
                .send_audio(&Arc::new(AudioFrame::new(1, 1, i * 320, 16_000, &[0; 320])))
        })
        .count();
    assert_eq!(accepted, 4);
    assert!(w.handle.send_control(SinkMsg::Close {
        call: 1,
        stream: 1,
        stats: Box::default()
    }));
    drop(hold);
    assert_eq!(
        w.finish_and_join(Instant::now() + Duration::from_secs(5)),
        0
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|s| s.starts_with("audio")).count(), 4);
    assert_eq!(seen.iter().filter(|s| *s == "close 1").count(), 1);
    assert_eq!(m.sink("gated").audio_drops.get(), 6);
}
