//! A full disk while recording, on a small tmpfs mounted for the test (needs root; skipped with
//! a "skipped: …" message otherwise): a call that fills the disk keeps a playable file whose
//! header states exactly the audio on disk, a call started on the full disk leaves no 0-byte or
//! header-less file and no temporary file, and once space is freed the next call records and
//! every call's `call.json` tells what happened (`error`, `file`, `samplesInFile`), counted in
//! `recordings_failed_total`.
#![cfg(target_os = "linux")]

mod common;
use common::*;
use rustix::mount::{MountFlags, UnmountFlags};
use std::path::{Path, PathBuf};

/// A tmpfs mounted on a fresh temporary folder, unmounted when dropped (a failing test too).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB, or says why not and gives `None`.
    fn mount(kib: u64) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs to fill needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let opts = std::ffi::CString::new(format!("size={kib}k,mode=0700")).unwrap();
        let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        match rustix::mount::mount("tmpfs", dir.path(), "tmpfs", flags, opts.as_c_str()) {
            Ok(()) => Some(Self { dir }),
            Err(e) => {
                eprintln!("skipped: cannot mount a tmpfs: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // lazy: works even if a file is still open; the TempDir then removes the empty folder
        if let Err(e) = rustix::mount::unmount(self.dir.path(), UnmountFlags::DETACH) {
            eprintln!("unmounting {}: {e}", self.dir.path().display());
        }
    }
}

/// Frame `k` of a ramp that never repeats within the test, so misplaced samples show.
fn ramp(k: usize) -> Vec<i16> {
    (0..320)
        .map(|j| (((k * 320 + j) % 60_000) as i32 - 30_000) as i16)
        .collect()
}

/// The folder of call `label` under the recordings root (any date folder).
fn call_dir(root: &Path, label: &str) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .map(|d| d.unwrap().path().join(label))
        .find(|p| p.is_dir())
}

/// Every file under `root`.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// No 0-byte file, no temporary file, and every WAV's header states exactly the whole samples
/// on disk and is readable by hound.
fn assert_no_litter_and_true_headers(root: &Path) {
    for f in files(root) {
        let name = f.file_name().unwrap().to_str().unwrap();
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(
            !name.ends_with(".tmp"),
            "temporary file left: {}",
            f.display()
        );
        assert!(len > 0, "0-byte file: {}", f.display());
        if name.ends_with(".wav") {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                len >= 44 && &bytes[..4] == b"RIFF",
                "not a WAV: {}",
                f.display()
            );
            let data = u64::from(u32::from_le_bytes(bytes[40..44].try_into().unwrap()));
            assert_eq!(data, len - 44, "header of {} vs data on disk", f.display());
            assert_eq!(data % 2, 0);
            let (_, samples) = read_wav(&f);
            assert_eq!(samples.len() as u64, data / 2);
        }
    }
}

fn read_json(p: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

const FAILED: &str = "acs_gateway_recordings_failed_total{reason=\"disk_full\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_true_headers_leaves_no_litter_and_recording_resumes_when_space_returns()
{
    let Some(fs) = Tmpfs::mount(1024) else {
        return;
    };
    let root = fs.path().join("rec");
    let r = root.clone();
    // one worker: the sink sees the calls in the order they are made
    let mut gw = Gw::start(move |c| {
        let w = wav_only(c);
        w.dir = r;
        w.workers = 1;
    })
    .await;
    // leave 256 KiB (about 8 s of 16 kHz audio) free
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![7u8; 768 * 1024]).unwrap();

    // 1. a call that fills the disk: 1 s, its call.json on the next header tick, then 15 s more
    let mut ws = gw.connect("/ws", "call-fills-disk").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend((0..50).map(|k| audio(&ramp(k), k as i64, None, false)));
    send_all(&mut ws, msgs).await;
    wait_until("call.json of the first call", LONG, || async {
        call_dir(&root, "call-fills-disk").is_some_and(|d| d.join("call.json").exists())
    })
    .await;
    send_all(
        &mut ws,
        (50..800).map(|k| audio(&ramp(k), k as i64, None, false)),
    )
    .await;
    close_normally(ws).await;
    wait_until("the first recording fails", LONG, || async {
        gw.metric(FAILED).await >= 1.0
    })
    .await;

    // 2. a call started while the disk is full
    let mut ws = gw.connect("/ws", "call-on-full-disk").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend((0..25).map(|k| audio(&ramp(k), k as i64, None, false)));
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    wait_until("the second recording fails", LONG, || async {
        gw.metric(FAILED).await >= 2.0
    })
    .await;
    // still full: the first file was finalised with a header stating what is on disk, and its
    // audio is the audio sent; the second left no file
    let first = call_dir(&root, "call-fills-disk").unwrap();
    assert_no_litter_and_true_headers(&root);
    let (_, got) = read_wav(&first.join("mixed.wav"));
    let sent: Vec<i16> = (0..800).flat_map(ramp).collect();
    assert!(
        got.len() > 50 * 320 && got.len() < sent.len(),
        "{} samples kept",
        got.len()
    );
    assert!(
        got == sent[..got.len()],
        "the samples kept are the samples sent"
    );
    if let Some(d) = call_dir(&root, "call-on-full-disk") {
        assert!(!d.join("mixed.wav").exists(), "no file without audio");
    }

    // 3. space comes back: a new call records, and the kept call.json files are written
    std::fs::remove_file(&ballast).unwrap();
    let mut ws = gw.connect("/ws", "call-after-space-returns").await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend((0..50).map(|k| audio(&ramp(k), k as i64, None, false)));
    send_all(&mut ws, msgs).await;
    close_normally(ws).await;
    let docs = |label: &'static str| {
        let root = root.clone();
        move || call_dir(&root, label).and_then(|d| read_json(&d.join("call.json")))
    };
    let (doc1, doc2, doc3) = (
        docs("call-fills-disk"),
        docs("call-on-full-disk"),
        docs("call-after-space-returns"),
    );
    wait_until("every call's final call.json", LONG, || async {
        [doc1(), doc2(), doc3()].iter().all(|d| {
            d.as_ref()
                .is_some_and(|d| d["call"]["endReason"].is_string())
        })
    })
    .await;
    let third = call_dir(&root, "call-after-space-returns").unwrap();
    let (_, got3) = read_wav(&third.join("mixed.wav"));
    assert!(
        got3 == sent[..50 * 320],
        "the call after recovery is recorded"
    );
    assert_no_litter_and_true_headers(&root);

    let s1 = doc1().unwrap()["streams"][0].clone();
    assert_eq!(s1["file"], "mixed.wav");
    assert!(s1["error"].as_str().is_some_and(|e| !e.is_empty()), "{s1}");
    assert_eq!(s1["samples"], 800 * 320);
    assert_eq!(s1["samplesInFile"], got.len());
    assert_eq!(s1["complete"], true);
    let s2 = doc2().unwrap()["streams"][0].clone();
    assert_eq!(s2["file"], serde_json::Value::Null, "{s2}");
    assert!(s2["error"].as_str().is_some_and(|e| !e.is_empty()), "{s2}");
    assert_eq!(s2["samples"], 25 * 320);
    assert_eq!(s2["samplesInFile"], 0);
    let s3 = doc3().unwrap()["streams"][0].clone();
    assert_eq!(s3["error"], serde_json::Value::Null, "{s3}");
    assert_eq!(s3["samplesInFile"], 50 * 320);

    // counted once per file, not once per frame
    assert_eq!(gw.metric(FAILED).await, 2.0);
    let errors = gw
        .metric("acs_gateway_sink_write_errors_total{sink=\"wav\"}")
        .await;
    assert!((2.0..=10.0).contains(&errors), "{errors} sink errors");
    assert!(gw.metric("acs_gateway_recordings_finalised_total").await >= 1.0);
    assert!(gw.shutdown().await.clean());
    assert_no_litter_and_true_headers(&root);
}
