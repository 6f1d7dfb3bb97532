//! Hostile HTTP over real sockets: bodies that are too big or never arrive, idle keep-alive
//! connections, and a crowd of stalled clients that must not lock health checks and media out.

mod common;
use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WEBHOOK: &str = "/api/incomingCall";

/// Opens a connection and sends `head` (a request head ending in a blank line) and `body`. A
/// write the gateway refused (closed at accept) is not an error here: the reply says what
/// happened.
async fn send(gw: &Gw, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    s
}

/// A POST head declaring `len` bytes of body.
fn post(path: &str, len: u64) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

async fn bad_requests(gw: &Gw, endpoint: &str, reason: &str) -> f64 {
    gw.metric(&format!(
        "acs_gateway_control_bad_requests_total{{endpoint=\"{endpoint}\",reason=\"{reason}\"}}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_json_at_once_and_are_counted() {
    let gw = Gw::start(|c| c.server.max_body_bytes = 4096).await;

    // 10 GB declared, 10 bytes sent: refused from the head alone, connection closed after
    let mut s = send(&gw, &post(WEBHOOK, 10_000_000_000), b"[{\"id\":1}]").await;
    let r = read_response(&mut s)
        .await
        .expect("a response, not silence");
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.head.contains("connection: close"), "{r:?}");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("larger than 4096"));
    wait_closed(&mut s).await;
    assert_eq!(bad_requests(&gw, "incoming_call", "too_large").await, 1.0);

    // a chunked body that grows past the limit is cut off there
    let mut s = send(
        &gw,
        &format!("POST {WEBHOOK} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"),
        b"",
    )
    .await;
    for _ in 0..5 {
        let chunk = format!("3e8\r\n{}\r\n", "x".repeat(1000));
        s.write_all(chunk.as_bytes()).await.unwrap();
    }
    let r = read_response(&mut s)
        .await
        .expect("413 on the chunked body");
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.json()["error"]["message"].is_string());
    wait_closed(&mut s).await;
    assert_eq!(bad_requests(&gw, "incoming_call", "too_large").await, 2.0);

    // routes that take no body take none: refused by the declared length alone
    let mut s = send(
        &gw,
        "GET /healthz HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n",
        b"",
    )
    .await;
    let r = read_response(&mut s).await.expect("413 on /healthz");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(bad_requests(&gw, "other", "too_large").await, 1.0);
    // the operator API stops at 64 KiB even under a bigger server limit (here 4 KiB wins)
    let mut s = send(&gw, &post("/api/calls/x/hangup", 5000), b"").await;
    assert_eq!(read_response(&mut s).await.unwrap().status, 413);
    assert_eq!(bad_requests(&gw, "operator", "too_large").await, 1.0);
    // a body within the limit is still read and judged on its content
    let mut s = send(&gw, &post(WEBHOOK, 5), b"nope!").await;
    assert_eq!(read_response(&mut s).await.unwrap().status, 400);
    assert_eq!(gw.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_within_the_body_timeout_and_is_counted() {
    let gw = Gw::start(|c| c.server.body_timeout_ms = 300).await;
    let started = tokio::time::Instant::now();
    // 1,000 bytes declared, 10 sent, then nothing
    let mut s = send(&gw, &post(WEBHOOK, 1000), b"[{\"id\":1}").await;
    let r = read_response(&mut s).await.expect("408, not silence");
    assert_eq!(r.status, 408, "{r:?}");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("300 ms"));
    wait_closed(&mut s).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before the timeout"
    );
    assert_eq!(
        bad_requests(&gw, "incoming_call", "body_timeout").await,
        1.0
    );
    // a callback that trickles is cut the same way
    let mut s = send(&gw, &post("/api/callbacks/some-token", 1000), b"[").await;
    let r = read_response(&mut s).await;
    // the call token is checked before the body is read: refused either way, never hung
    assert!(r.is_some_and(|r| r.status == 401 || r.status == 408));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_cut_but_not_counted_as_a_handshake_refusal() {
    let gw = Gw::start(|c| c.server.handshake_timeout_ms = 200).await;
    let mut s = send(&gw, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n", b"").await;
    assert_eq!(read_response(&mut s).await.unwrap().status, 200);
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.is_some(), "keep-alive works");
    // then the client says nothing: the gateway closes the connection
    wait_closed(&mut s).await;
    gw.wait_metric(
        "acs_gateway_http_connections_closed_total{reason=\"keepalive_idle\"}",
        1.0,
    )
    .await;
    assert_eq!(
        gw.metric("acs_gateway_ws_connections_rejected_total{reason=\"handshake_timeout\"}")
            .await,
        0.0,
        "an idle keep-alive connection is no refused handshake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_stalled_bodies_do_not_lock_out_health_checks_or_media() {
    // plain HTTP budget: 8 + 128 = 136 connections; bodies may take a minute
    let gw = Gw::start(|c| {
        c.server.max_connections = 8;
        c.server.body_timeout_ms = 60_000;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..200 {
        stalled.push(send(&gw, &post(WEBHOOK, 1000), b"[{\"id\":1}").await);
    }
    // health checks and a media upgrade still get in, well before any body timeout (they are
    // accepted after all 200 stallers)
    for _ in 0..3 {
        let mut s = send(&gw, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n", b"").await;
        let r = read_response(&mut s).await;
        assert_eq!(r.map(|r| r.status), Some(200), "/healthz locked out");
    }
    let ws = gw.connect("/ws", "through-the-crowd").await;
    close_normally(ws).await;
    assert_eq!(
        gw.metric("acs_gateway_ws_connections_rejected_total{reason=\"socket_limit\"}")
            .await,
        0.0
    );
    // room was made by closing the oldest stallers (a crowd of stallers churns itself)
    let evicted = gw
        .metric("acs_gateway_http_connections_closed_total{reason=\"evicted\"}")
        .await;
    assert!(evicted >= 64.0, "{evicted}");
    // the newest stallers are still waiting: nothing timed out, the oldest were closed
    let timed_out = bad_requests(&gw, "incoming_call", "body_timeout").await;
    assert_eq!(timed_out, 0.0);
    let mut first = stalled.remove(0);
    wait_closed(&mut first).await;
    drop(stalled);
}
