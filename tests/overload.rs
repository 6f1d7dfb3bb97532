//! Overload protection end to end: when the runtime falls behind (here a task that hogs the
//! runtime's one thread, as a saturated box would), new media upgrades get HTTP 503 with
//! `Retry-After` and a JSON body, counted as `rejected{reason="overload"}`, while the call that
//! was already admitted keeps every frame; once the lag is gone, upgrades are admitted again.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a media upgrade request by hand; returns the response head and body (up to 4 KiB).
async fn raw_upgrade(addr: std::net::SocketAddr) -> String {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 x-ms-call-connection-id: shed-me\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        // a 503 ends with its JSON body; a 101 ends with its head
        while n < buf.len() {
            let k = s.read(&mut buf[n..]).await.unwrap();
            if k == 0 {
                break;
            }
            n += k;
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                break;
            }
            if text.contains("\r\n\r\n{") && text.trim_end().ends_with('}') {
                break;
            }
        }
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    tokio::time::timeout(STEP, fut)
        .await
        .expect("answer in time")
}

#[tokio::test]
async fn runtime_lag_sheds_new_upgrades_and_admitted_calls_keep_their_audio() {
    let mut gw = Gw::start(|c| {
        c.server.shed_lag_ms = 20;
    })
    .await;
    let (rate, tone) = fixture("speech_16k.wav");
    let fr = frames(&tone, 320);
    let mut live = gw.connect("/ws", "admitted-call").await;
    send_all(
        &mut live,
        std::iter::once(metadata(rate))
            .chain((0..10).map(|k| audio(&fr[k], k as i64, None, false))),
    )
    .await;

    // Hog the runtime's one thread: every timer on it fires 80 ms late, again and again.
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(80));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(gw.app().metrics().overloaded.get(), 1, "the monitor saw it");
    assert!(gw.app().metrics().runtime_lag_us.get() > 20_000);

    let answer = raw_upgrade(gw.addr).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 2\r\n"),
        "{answer}"
    );
    assert!(answer.contains("no headroom"), "{answer}");
    assert_eq!(gw.app().metrics().rejected_count("overload"), 1);

    // the admitted call goes on and loses nothing
    send_all(
        &mut live,
        (10..fr.len().min(50)).map(|k| audio(&fr[k], k as i64, None, false)),
    )
    .await;

    // the lag is gone: after the calm period upgrades are admitted again
    let app = gw.app();
    wait_until("admission resumes", STEP, || async {
        app.metrics().overloaded.get() != 1
    })
    .await;
    let answer = raw_upgrade(gw.addr).await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");

    close_normally(live).await;
    gw.wait_no_connections().await;
    let report = gw.shutdown().await;
    assert!(report.clean(), "{report:?}");
    let (_, got) = read_wav(&gw.call_dir("admitted-call").join("mixed.wav"));
    let sent = fr.len().min(50) * 320;
    assert_eq!(
        got,
        tone[..sent].to_vec(),
        "every frame of the admitted call"
    );
}
