//! Recordings to Azure Blob Storage against Azurite, the official storage emulator (`.ci/run`
//! installs it and starts `azurite-blob` on 127.0.0.1:10000; elsewhere set
//! `ACS_TEST_AZURITE_URL` to its account URL or the tests say they skipped; with `CI` set they
//! fail instead). Calls streamed through an in-process gateway end up as blobs holding exactly
//! the bytes of the local files, also when the call is finalised by the shutdown drain; with
//! `delete_after_upload` the local folder goes; an unreachable endpoint gives retries, then
//! `failed` with the folder kept and marked, and the next start uploads it.

mod common;
use acs_media_gateway::upload::policy::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use acs_media_gateway::upload::store::PENDING_MARKER;
use acs_media_gateway::upload::UploadConfig;
use common::azurite::{azurite_url, container, reader};
use common::*;
use object_store::path::Path as BlobPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The upload settings of a test gateway: Azurite, fast retries.
fn upload_to(container: &str) -> UploadConfig {
    UploadConfig {
        enabled: true,
        account: DEV_ACCOUNT.into(),
        account_key: DEV_ACCOUNT_KEY.into(),
        container: container.into(),
        endpoint: azurite_url(),
        prefix: "gw-test".into(),
        backoff_initial_ms: 20,
        backoff_max_ms: 100,
        request_timeout_ms: 10_000,
        ..Default::default()
    }
}

/// Streams two seconds of speech as one participant of call `id` (metadata + frames).
async fn stream_call(gw: &Gw, id: &str) -> Ws {
    let (_, pcm) = fixture("speech_16k.wav");
    let mut ws = gw.connect("/ws", id).await;
    let mut msgs = vec![metadata(16_000)];
    msgs.extend(
        frames(&pcm[..32_000], 320)
            .iter()
            .enumerate()
            .map(|(k, f)| audio(f, k as i64, Some("8:acs:../../etc/passwd"), false)),
    );
    send_all(&mut ws, msgs).await;
    ws
}

/// The call folders under a recordings root.
fn call_folders(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// The blob key of `file` in call folder `dir` under the test prefix.
fn key(dir: &Path, file: &str) -> BlobPath {
    acs_media_gateway::upload::policy::blob_key("gw-test", dir, file)
}

/// Every file of `dir` (but the marker) is a blob with exactly its bytes; returns the names.
async fn assert_uploaded(store: &Arc<dyn ObjectStore>, dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.starts_with('.') {
            continue;
        }
        let local = std::fs::read(e.path()).unwrap();
        let blob = store
            .get(&key(dir, &name))
            .await
            .unwrap_or_else(|err| panic!("blob of {name}: {err}"))
            .bytes()
            .await
            .unwrap();
        assert_eq!(blob.len(), local.len(), "{name}");
        assert!(
            blob[..] == local[..],
            "{name}: blob bytes differ from the file"
        );
        names.push(name);
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalised_calls_become_blobs_with_the_files_bytes_also_when_the_drain_finalises_them() {
    let Some(container) = container().await else {
        return;
    };
    let c2 = container.clone();
    let mut gw = Gw::start(move |c| c.upload = upload_to(&c2)).await;
    // one call ends while running, one is finalised by the shutdown drain
    let ws = stream_call(&gw, "blob-call-1").await;
    close_normally(ws).await;
    gw.wait_metric("acs_gateway_recording_uploads_total{outcome=\"ok\"}", 1.0)
        .await;
    let _open = stream_call(&gw, "blob-call-2").await;
    let bytes_before = gw.metric("acs_gateway_recording_upload_bytes_total").await;
    assert!(
        bytes_before > 64_000.0,
        "2 s of 16-bit audio went up: {bytes_before}"
    );
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    assert_eq!(report.uploads_left, 0);
    let steps = &report.steps;
    let sinks_done = steps
        .iter()
        .position(|s| matches!(s, acs_media_gateway::shutdown::Step::SinksDone { .. }))
        .unwrap();
    assert_eq!(
        steps.get(sinks_done + 1),
        Some(&acs_media_gateway::shutdown::Step::UploadsDone { left: 0 }),
        "uploads drain after the sinks finalised: {steps:?}"
    );

    let store = reader(&container);
    let folders = call_folders(gw.dir.path());
    assert_eq!(folders.len(), 2, "{folders:?}");
    for dir in &folders {
        let names = assert_uploaded(&store, dir).await;
        assert!(names.contains(&"call.json".to_string()), "{names:?}");
        assert_eq!(names.len(), 3, "participant, mixed, call.json: {names:?}");
        assert!(
            !dir.join(PENDING_MARKER).exists(),
            "marker removed after upload"
        );
    }
    // nothing else was put: six blobs, all under the prefix/date/call layout
    let listed: Vec<String> = {
        use futures_util::StreamExt;
        store
            .list(Some(&BlobPath::from("gw-test")))
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await
    };
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert!(
        listed.iter().all(|k| k.split('/').count() == 4),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_after_upload_removes_the_local_folder() {
    let Some(container) = container().await else {
        return;
    };
    let c2 = container.clone();
    let mut gw = Gw::start(move |c| {
        c.upload = UploadConfig {
            delete_after_upload: true,
            ..upload_to(&c2)
        }
    })
    .await;
    let ws = stream_call(&gw, "blob-del-1").await;
    close_normally(ws).await;
    gw.wait_metric("acs_gateway_recording_uploads_total{outcome=\"ok\"}", 1.0)
        .await;
    assert!(gw.shutdown().await.clean());
    assert!(
        call_folders(gw.dir.path()).is_empty(),
        "the uploaded folder was removed: {:?}",
        call_folders(gw.dir.path())
    );
    // the blobs are there: the participant's recording decodes to the samples sent
    let store = reader(&container);
    let listed: Vec<String> = {
        use futures_util::StreamExt;
        store
            .list(Some(&BlobPath::from("gw-test")))
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await
    };
    assert_eq!(listed.len(), 3, "{listed:?}");
    let participant = listed
        .iter()
        .find(|k| k.contains("etc_passwd"))
        .unwrap_or_else(|| panic!("the participant's file: {listed:?}"));
    let wav = store
        .get(&BlobPath::from(participant.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.wav"), &wav).unwrap();
    let (_, pcm) = fixture("speech_16k.wav");
    assert_eq!(
        read_wav(&tmp.path().join("p.wav")).1,
        pcm[..32_000].to_vec()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_gives_retries_then_failed_and_the_next_start_uploads_the_folder() {
    let Some(container) = container().await else {
        return;
    };
    // a port nothing listens on: every attempt is refused
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/{DEV_ACCOUNT}", closed.local_addr().unwrap());
    drop(closed);
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_path_buf();
    let c2 = container.clone();
    let mut gw = Gw::start(move |c| {
        wav_only(c).dir = r;
        c.upload = UploadConfig {
            endpoint: dead,
            max_retries: 2,
            delete_after_upload: true,
            ..upload_to(&c2)
        };
    })
    .await;
    let ws = stream_call(&gw, "blob-fail-1").await;
    close_normally(ws).await;
    gw.wait_metric(
        "acs_gateway_recording_uploads_total{outcome=\"failed\"}",
        1.0,
    )
    .await;
    assert_eq!(
        gw.metric("acs_gateway_recording_uploads_total{outcome=\"retry\"}")
            .await,
        2.0,
        "max_retries retries, then failed"
    );
    assert_eq!(
        gw.metric("acs_gateway_recording_uploads_total{outcome=\"ok\"}")
            .await,
        0.0
    );
    assert!(gw.shutdown().await.clean());
    let folders = call_folders(root.path());
    assert_eq!(folders.len(), 1, "the folder is kept: {folders:?}");
    assert!(folders[0].join(PENDING_MARKER).exists(), "and marked");
    let mixed = std::fs::read(folders[0].join("mixed.wav")).unwrap();

    // the next start, with a working store, uploads what the last run left
    let r = root.path().to_path_buf();
    let c2 = container.clone();
    let mut gw = Gw::start(move |c| {
        wav_only(c).dir = r;
        c.upload = upload_to(&c2);
    })
    .await;
    gw.wait_metric("acs_gateway_recording_uploads_total{outcome=\"ok\"}", 1.0)
        .await;
    assert!(gw.shutdown().await.clean());
    let store = reader(&container);
    let names = assert_uploaded(&store, &folders[0]).await;
    assert_eq!(names.len(), 3, "{names:?}");
    let blob = store
        .get(&key(&folders[0], "mixed.wav"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(blob[..] == mixed[..]);
    assert!(!folders[0].join(PENDING_MARKER).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_bigger_than_one_part_goes_up_in_blocks_with_its_exact_bytes() {
    let Some(container) = container().await else {
        return;
    };
    use acs_media_gateway::upload::store;
    let target = upload_to(&container).target().unwrap();
    let up = store::build_store(&target, Duration::from_secs(30)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.wav");
    // 2.5 parts of a pattern that shows any misplaced block
    let bytes: Vec<u8> = (0..store::PART_BYTES * 5 / 2)
        .map(|i| (i % 251) as u8 ^ (i / store::PART_BYTES) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let key = BlobPath::from("big/long.wav");
    let sent = store::put_file(&up, &path, key.clone()).await.unwrap();
    assert_eq!(sent, bytes.len() as u64);
    let blob = reader(&container)
        .get(&key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(blob.len(), bytes.len());
    assert!(blob[..] == bytes[..], "block order and contents kept");
}
