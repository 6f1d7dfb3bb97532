//! Connection churn against an in-process gateway with its default WAV sink: 600 short
//! connect → `AudioMetadata` → 5 × `AudioData` → close cycles, 50 at a time (`acs-sim churn`'s
//! library function). Every cycle must complete, every call must get its own recordings folder
//! with a finalised `call.json` and finalised WAVs within 5 s of the last close, and the
//! process's file descriptors must come back to where they were. Loopback only, bounded.

mod common;

use std::time::Duration;

use acs_sim::churn::{check_recordings, run_churn, ChurnConfig};
use acs_sim::procstat::open_fds;
use common::Gw;

const CYCLES: u64 = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_finalises_every_recording_and_leaks_no_fds() {
    churn_against(Gw::start(|_| {}).await).await;
}

/// The control lane must not lose a message even when the audio lane is tiny and always full:
/// with a 16-frame audio queue most audio is dropped (counted), yet every stream-open,
/// stream-close and call-end arrives, so every recording exists and is finalised. (Load
/// shedding on queue fill is off here: it would refuse the calls instead.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_behind_a_saturated_audio_queue_still_finalises_every_recording() {
    let gw = Gw::start(|c| {
        c.server.shed_queue_fill = 0.0;
        let w = common::wav_only(c);
        w.queue_frames = 16;
        w.workers = 1;
    })
    .await;
    churn_against(gw).await;
}

async fn churn_against(gw: Gw) {
    let fds_before = open_fds(None).unwrap();

    let mut cfg = ChurnConfig::new(&gw.url("/ws"), CYCLES, 5);
    cfg.concurrency = 50;
    cfg.recordings_dir = Some(gw.dir.path().to_path_buf());
    cfg.finalise_timeout = Duration::from_secs(5);
    let report = tokio::time::timeout(Duration::from_secs(50), run_churn(cfg))
        .await
        .expect("churn finishes in time")
        .expect("churn runs");
    eprintln!("{report}");

    // Let the last sockets close before counting descriptors.
    let mut fds_after = open_fds(None).unwrap();
    for _ in 0..20 {
        if fds_after <= fds_before + 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds_after = open_fds(None).unwrap();
    }

    assert_eq!(report.cycles_failed, 0, "{:?}", report.failure_reasons);
    assert_eq!(report.cycles_ok, CYCLES);
    let rec = report.recordings.clone().expect("recordings checked");
    assert_eq!(rec.call_folders, CYCLES, "{:?}", rec.problems);
    assert_eq!(rec.finalised_calls, CYCLES, "{:?}", rec.problems);
    assert!(rec.wav_files >= CYCLES, "{} WAVs", rec.wav_files);
    assert_eq!(rec.unfinalised_wavs, 0, "{:?}", rec.problems);
    assert!(
        rec.finalised_after_secs.is_some(),
        "not finalised within 5 s: {rec:?}"
    );
    // The same check, called directly, agrees.
    let again = check_recordings(gw.dir.path(), &report.call_id_prefix, CYCLES);
    assert!(again.complete(), "{again:?}");
    let m = gw.app().metrics();
    assert_eq!(
        m.sink("wav").control_drops.get(),
        0,
        "no control message lost"
    );
    assert!(
        fds_after <= fds_before + 8,
        "fds {fds_before} → {fds_after}"
    );
}

/// `warmup_cycles` run first with their own call ids and are not counted: the report has the
/// warm-up apart, the measured cycles' recordings are checked on their own, and the warm-up's
/// recordings are finalised too (they were waited for before the measured run began).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_up_runs_first_and_is_reported_apart() {
    let gw = Gw::start(|_| {}).await;
    let pid = std::process::id();
    let mut cfg = ChurnConfig::new(&gw.url("/ws"), 40, 3);
    cfg.concurrency = 10;
    cfg.warmup_cycles = 30;
    cfg.gateway_pid = Some(pid);
    cfg.recordings_dir = Some(gw.dir.path().to_path_buf());
    let report = tokio::time::timeout(Duration::from_secs(30), run_churn(cfg))
        .await
        .expect("churn finishes in time")
        .expect("churn runs");
    eprintln!("{report}");
    let w = report.warmup.clone().expect("a warm-up ran");
    assert_eq!((w.cycles, w.cycles_ok), (30, 30));
    assert!(w.rss_cold_kib.is_some_and(|k| k > 0), "{w:?}");
    assert_eq!((report.cycles_ok, report.cycles_failed), (40, 0));
    let g = report.gateway.clone().expect("process figures");
    assert!(
        g.rss_before_kib.is_some() && g.rss_settled_kib.is_some(),
        "{g:?}"
    );
    let rec = report.recordings.clone().expect("recordings checked");
    assert!(rec.complete(), "the measured cycles' own calls: {rec:?}");
    assert_eq!(rec.call_folders, 40, "warm-up folders are not counted");
    let text = report.to_string();
    assert!(
        text.contains("warm-up    30 cycles first (30 ok)"),
        "{text}"
    );
    // every folder of the run, warm-up included, is there and finalised
    let all = check_recordings(gw.dir.path(), "churn", 70);
    assert!(all.complete(), "{all:?}");
}
