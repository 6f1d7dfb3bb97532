//! WebSocket framing errors over real sockets, sent as raw frames by a hand-built client (the
//! `acs_sim::wsraw` framing helpers): text that is not UTF-8 (whole, or split across
//! fragments) closes 1007 counted `not_utf8`, a text message split inside a character is taken,
//! protocol violations close 1002 counted `protocol_violation`, and the close frame of a 1009
//! reaches a client that reads it late (no reset while it is unread). Audio received before is
//! kept in every case.

mod common;
use acs_sim::ids::SimRng;
use acs_sim::wsraw::{self, opcode, FrameParser, ServerEvent, WsUrl};
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A raw media connection.
struct Raw {
    s: TcpStream,
    parser: FrameParser,
    buffered: Vec<u8>,
}

impl Raw {
    async fn connect(gw: &Gw, call: &str) -> Raw {
        let url_text = gw.url("/ws");
        let url = WsUrl::parse(&url_text).unwrap();
        let headers = vec![("x-ms-call-connection-id".to_string(), call.to_string())];
        let up = wsraw::connect(&url, &url_text, &headers, &mut SimRng::seeded(7), STEP)
            .await
            .expect("upgrade");
        Raw {
            s: up.stream,
            parser: FrameParser::default(),
            buffered: up.leftover,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(STEP, self.s.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    async fn text(&mut self, msg: &str) {
        let mut out = Vec::new();
        wsraw::push_frame(&mut out, opcode::TEXT, msg.as_bytes(), KEY);
        self.send(&out).await;
    }

    /// Reads until the server's close frame; panics on a reset or end of stream before it.
    /// Answers the close and reads on to the server's end of stream, which must be a FIN (a
    /// graceful close), not a reset.
    async fn expect_close(&mut self) -> (u16, String) {
        let fut = async {
            let mut got = None;
            let mut buf = vec![0u8; 8192];
            let mut data = std::mem::take(&mut self.buffered);
            loop {
                self.parser.feed(&data, |ev| {
                    if let ServerEvent::Close(c, r) = ev {
                        got.get_or_insert((c, r));
                    }
                });
                if let Some(close) = got.take() {
                    let mut reply = Vec::new();
                    wsraw::push_close(&mut reply, close.0, KEY);
                    let _ = self.s.write_all(&reply).await;
                    // the server ends the stream after its close (FIN, not a reset); then so
                    // does the client
                    loop {
                        match self.s.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(_) => continue,
                            Err(e) => panic!("{e} after the close frame: not a graceful close"),
                        }
                    }
                    let _ = self.s.shutdown().await;
                    return close;
                }
                let n = match self.s.read(&mut buf).await {
                    Ok(0) => panic!("end of stream before a close frame"),
                    Ok(n) => n,
                    Err(e) => panic!("{e} before a close frame"),
                };
                data = buf[..n].to_vec();
            }
        };
        tokio::time::timeout(STEP, fut)
            .await
            .expect("close in time")
    }
}

/// One frame with every header bit chosen: `first` is the whole first byte (FIN, RSV, opcode).
fn raw_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    wsraw::push_header(&mut out, 0, payload.len(), KEY);
    out[0] = first;
    let start = out.len();
    out.extend_from_slice(payload);
    wsraw::mask(&mut out[start..], KEY);
    if !masked {
        // drop the mask bit and key, send the payload as it is
        out[1] &= 0x7f;
        let hdr = start - 4;
        out.truncate(hdr);
        out.extend_from_slice(payload);
    }
    out
}

const FIN: u8 = 0x80;

/// AudioMetadata and `good` frames of the tone; returns the samples sent.
async fn prelude(raw: &mut Raw, good: usize) -> Vec<i16> {
    let (_, tone) = fixture("tone_1k_16k.wav");
    raw.text(&metadata(16_000)).await;
    for (k, f) in frames(&tone, 320).iter().take(good).enumerate() {
        raw.text(&audio(f, k as i64, None, false)).await;
    }
    tone[..good * 320].to_vec()
}

fn recorded(gw: &Gw, call: &str) -> Vec<i16> {
    read_wav(&gw.call_dir(call).join("mixed.wav")).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_closes_1007_whole_or_fragmented_and_a_split_character_is_fine() {
    let mut gw = Gw::start(|_| {}).await;
    // (call, frames sent after the prelude)
    let mut whole = b"{\"kind\":\"".to_vec();
    whole.push(0xff);
    whole.extend_from_slice(b"\"}");
    // the first fragment ends inside a 3-byte sequence (E2 82 ..) that the next one breaks
    let mut part1 = b"{\"kind\":\"AudioData\",\"note\":\"".to_vec();
    part1.extend_from_slice(&[0xe2, 0x82]);
    let part2 = b"A\"}".to_vec();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "utf8-whole",
            vec![raw_frame(FIN | opcode::TEXT, &whole, true)],
        ),
        (
            "utf8-fragments",
            vec![
                raw_frame(opcode::TEXT, &part1, true),
                raw_frame(FIN | opcode::CONTINUATION, &part2, true),
            ],
        ),
    ];
    for (call, bad) in &cases {
        let mut raw = Raw::connect(&gw, call).await;
        prelude(&mut raw, 5).await;
        for f in bad {
            raw.send(f).await;
        }
        let (code, reason) = raw.expect_close().await;
        assert_eq!(code, 1007, "{call}: {reason}");
        assert!(reason.contains("UTF-8"), "{call}: {reason}");
        gw.wait_no_connections().await;
    }
    assert_eq!(
        gw.metric("acs_gateway_decode_errors_total{reason=\"not_utf8\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1007\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1002\"}")
            .await,
        0.0
    );

    // a valid text message cut inside "€" (3 bytes) and inside "😀" (4 bytes) is one message
    let (_, tone) = fixture("tone_1k_16k.wav");
    let fr = frames(&tone, 320);
    let mut raw = Raw::connect(&gw, "utf8-split-char").await;
    let mut sent = prelude(&mut raw, 3).await;
    let msg = audio(&fr[3], 3, None, false).replacen('{', "{\"note\":\"h€llo 😀\",", 1);
    let b = msg.as_bytes();
    let euro = msg.find('€').unwrap() + 1;
    let smile = msg.find('😀').unwrap() + 2;
    raw.send(&raw_frame(opcode::TEXT, &b[..euro], true)).await;
    raw.send(&raw_frame(opcode::CONTINUATION, &b[euro..smile], true))
        .await;
    raw.send(&raw_frame(FIN | opcode::CONTINUATION, &b[smile..], true))
        .await;
    raw.text(&audio(&fr[4], 4, None, false)).await;
    let mut close = Vec::new();
    wsraw::push_close(&mut close, 1000, KEY);
    raw.send(&close).await;
    assert_eq!(raw.expect_close().await.0, 1000);
    sent.extend_from_slice(&fr[3]);
    sent.extend_from_slice(&fr[4]);
    gw.wait_no_connections().await;

    assert!(gw.shutdown().await.clean());
    for (call, _) in &cases {
        assert_eq!(recorded(&gw, call), fixture("tone_1k_16k.wav").1[..1600]);
    }
    assert_eq!(recorded(&gw, "utf8-split-char"), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_1002_and_are_counted() {
    let mut gw = Gw::start(|_| {}).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", raw_frame(FIN | opcode::TEXT, b"{}", false)),
        ("rsv1", raw_frame(FIN | 0x40 | opcode::TEXT, b"{}", true)),
        ("data-opcode-3", raw_frame(FIN | 0x3, b"{}", true)),
        ("control-opcode-b", raw_frame(FIN | 0xb, b"", true)),
        (
            "stray-continuation",
            raw_frame(FIN | opcode::CONTINUATION, b"{}", true),
        ),
        ("fragmented-ping", raw_frame(opcode::PING, b"x", true)),
    ];
    for (call, bad) in &cases {
        let mut raw = Raw::connect(&gw, call).await;
        prelude(&mut raw, 5).await;
        raw.send(bad).await;
        let (code, reason) = raw.expect_close().await;
        assert_eq!(code, 1002, "{call}: {reason}");
        assert!(reason.starts_with("protocol violation"), "{call}: {reason}");
        assert!(reason.len() <= 123);
        gw.wait_no_connections().await;
    }
    let n = cases.len() as f64;
    assert_eq!(
        gw.metric("acs_gateway_decode_errors_total{reason=\"protocol_violation\"}")
            .await,
        n
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1002\"}")
            .await,
        n
    );
    assert_eq!(gw.get("/healthz").await.0, 200);
    assert!(gw.shutdown().await.clean());
    for (call, _) in &cases {
        assert_eq!(
            recorded(&gw, call),
            fixture("tone_1k_16k.wav").1[..1600],
            "{call}: audio before the violation is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1009_close_frame_reaches_a_client_that_reads_it_late() {
    let mut gw = Gw::start(|c| c.server.max_frame_bytes = 16 * 1024).await;
    let (_, tone) = fixture("tone_1k_16k.wav");
    let fr = frames(&tone, 320);
    for (call, late_ms) in [("late-500ms", 500u64), ("late-1500ms", 1500)] {
        let mut raw = Raw::connect(&gw, call).await;
        prelude(&mut raw, 5).await;
        // one 40 KiB message: the gateway refuses it at its header, most of it still unread
        let big = vec![b'x'; 40 * 1024];
        raw.send(&raw_frame(FIN | opcode::BINARY, &big, true)).await;
        // like ACS, the client goes on sending a frame every 20 ms and reads only later: its
        // writes must not meet a reset, and the close frame must still be there
        for k in 0..late_ms / 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let k = 5 + k as usize % 40;
            raw.text(&audio(&fr[k], k as i64, None, false)).await;
        }
        let (code, reason) = raw.expect_close().await;
        assert_eq!(code, 1009, "{call}: {reason}");
        assert!(reason.starts_with("message too large"), "{reason}");
        gw.wait_no_connections().await;
    }
    assert_eq!(
        gw.metric("acs_gateway_decode_errors_total{reason=\"frame_too_large\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("acs_gateway_ws_closes_total{code=\"1009\"}")
            .await,
        2.0
    );
    assert!(gw.shutdown().await.clean());
    for call in ["late-500ms", "late-1500ms"] {
        assert_eq!(recorded(&gw, call), tone[..1600]);
    }
}
