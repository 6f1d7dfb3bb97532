//! EDGE: a minimal WebSocket client for the cheap load engines (`acs-sim load` on `ws://`,
//! `acs-sim churn`): the HTTP/1.1 upgrade done by hand on a raw [`TcpStream`] ([`connect`]),
//! masked client frames written into caller-owned buffers ([`push_frame`], [`mask`]) and a
//! small parser for the (unmasked) frames a server sends ([`FrameParser`]).
//!
//! Nothing here allocates per frame: callers reuse their buffers.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::error::{ConnectFailure, SimError};
use super::ids::SimRng;
use super::play::classify_io;

/// WebSocket opcodes used here.
pub mod opcode {
    /// Continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// Largest upgrade response head accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// `ws://host[:port][/path]` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Host name or address (IPv6 in brackets, as written).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl WsUrl {
    /// Parses a plain `ws://` URL; `wss://` and anything else is an error.
    pub fn parse(url: &str) -> Result<Self, SimError> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| SimError::Url {
            url: url.to_string(),
            reason: "only ws:// is supported by this engine".into(),
        })?;
        let u = super::scrape::HttpUrl::parse(&format!("http://{rest}")).map_err(|_| {
            SimError::Url {
                url: url.to_string(),
                reason: "cannot parse host, port and path".into(),
            }
        })?;
        Ok(WsUrl {
            host: u.host,
            port: u.port,
            path: u.path,
        })
    }

    /// `host:port` for the `Host` header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An open WebSocket connection after a successful upgrade: the socket and any bytes the
/// server sent right after its `101` head (already WebSocket frames).
#[derive(Debug)]
pub struct Upgraded {
    /// The socket (Nagle disabled).
    pub stream: TcpStream,
    /// Bytes read past the end of the response head.
    pub leftover: Vec<u8>,
}

/// Connects to `url`, sends the upgrade request with `headers` and checks the `101` answer
/// and its `Sec-WebSocket-Accept`, all bounded by `timeout`. Failures are
/// [`SimError::Connect`] with a [`ConnectFailure`] (`HttpStatus(503)` for a 503, …).
pub async fn connect(
    url: &WsUrl,
    url_text: &str,
    headers: &[(String, String)],
    rng: &mut SimRng,
    timeout: Duration,
) -> Result<Upgraded, SimError> {
    let fail = |kind, detail: String| SimError::Connect {
        url: url_text.to_string(),
        kind,
        detail,
    };
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    key_bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.path,
        url.authority()
    );
    for (n, v) in headers {
        if n.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(SimError::Header {
                name: n.clone(),
                reason: "contains CR, LF or ':'".into(),
            });
        }
        req.push_str(n);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");

    let work = async {
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let mut stream = TcpStream::connect((host, url.port))
            .await
            .map_err(|e| fail(classify_io(&e), e.to_string()))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| fail(classify_io(&e), e.to_string()))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let head_end = loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| fail(classify_io(&e), e.to_string()))?;
            if n == 0 {
                return Err(fail(
                    ConnectFailure::Other,
                    "connection closed during the upgrade".into(),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(fail(
                    ConnectFailure::Other,
                    "upgrade response head too long".into(),
                ));
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        check_response(&head, &key).map_err(|(kind, detail)| fail(kind, detail))?;
        let leftover = buf[head_end..].to_vec();
        Ok(Upgraded { stream, leftover })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(fail(
            ConnectFailure::Timeout,
            format!("no handshake within {timeout:?}"),
        )),
    }
}

/// Checks an upgrade response head: status 101 and the right `Sec-WebSocket-Accept`.
pub fn check_response(head: &str, key: &str) -> Result<(), (ConnectFailure, String)> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            (
                ConnectFailure::Other,
                format!("bad status line {status_line:?}"),
            )
        })?;
    if status != 101 {
        return Err((ConnectFailure::HttpStatus(status), status_line.to_string()));
    }
    let accept = lines.find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| v.trim().to_string())
    });
    let want = derive_accept_key(key.as_bytes());
    match accept {
        Some(a) if a == want => Ok(()),
        Some(a) => Err((
            ConnectFailure::Other,
            format!("Sec-WebSocket-Accept {a:?}, expected {want:?}"),
        )),
        None => Err((
            ConnectFailure::Other,
            "101 without Sec-WebSocket-Accept".into(),
        )),
    }
}

/// XORs `data` with the 4-byte `key`, 8 bytes at a time.
pub fn mask(data: &mut [u8], key: [u8; 4]) {
    let k8 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k8).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Appends one masked, final client frame with `opcode` and `payload` to `out`.
pub fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    push_header(out, opcode, payload.len(), key);
    let start = out.len();
    out.extend_from_slice(payload);
    mask(&mut out[start..], key);
}

/// Appends the header of a masked, final client frame (length `len`, mask `key`) to `out`;
/// the caller appends the payload and masks it.
pub fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize, key: [u8; 4]) {
    out.push(0x80 | (opcode & 0x0f));
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
}

/// Appends a masked close frame with `code` (and no reason) to `out`.
pub fn push_close(out: &mut Vec<u8>, code: u16, key: [u8; 4]) {
    push_frame(out, opcode::CLOSE, &code.to_be_bytes(), key);
}

/// A fresh mask from `rng`.
pub fn mask_key(rng: &mut SimRng) -> [u8; 4] {
    (rng.next_u64() as u32).to_ne_bytes()
}

/// Something a server sent, as seen by [`FrameParser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A complete text or binary message (its final frame).
    Message,
    /// A ping with this payload (to be answered with a pong).
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// A close frame: code (1005 when absent) and reason.
    Close(u16, String),
    /// The stream is not valid WebSocket framing.
    Invalid(&'static str),
}

/// Incremental parser of server frames. Data payloads are skipped without being kept; only
/// control frames (≤ 125 bytes) are buffered.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: Vec<u8>,
    /// Payload bytes of the current data frame still to skip.
    skip: u64,
    /// The frame being skipped ends a message.
    skip_fin: bool,
}

impl FrameParser {
    /// Feeds bytes; returns the events they complete (in order) through `on`.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(ServerEvent)) {
        self.feed_dyn(data, &mut on);
    }

    fn feed_dyn(&mut self, mut data: &[u8], on: &mut dyn FnMut(ServerEvent)) {
        loop {
            if self.skip > 0 {
                let n = (self.skip as usize).min(data.len());
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip > 0 {
                    return;
                }
                if self.skip_fin {
                    on(ServerEvent::Message);
                }
            }
            if self.buf.is_empty() {
                // Fast path: parse straight from `data`.
                match parse_head(data) {
                    Head::Incomplete => {
                        self.buf.extend_from_slice(data);
                        return;
                    }
                    Head::Invalid(e) => {
                        on(ServerEvent::Invalid(e));
                        return;
                    }
                    Head::Data { header, len, fin } => {
                        data = &data[header..];
                        self.skip = len;
                        self.skip_fin = fin;
                        if len == 0 {
                            if fin {
                                on(ServerEvent::Message);
                            }
                            continue;
                        }
                        if data.is_empty() {
                            return;
                        }
                    }
                    Head::Control { header, len, op } => {
                        if data.len() < header + len {
                            self.buf.extend_from_slice(data);
                            return;
                        }
                        on(control(op, &data[header..header + len]));
                        data = &data[header + len..];
                    }
                }
            } else {
                self.buf.extend_from_slice(data);
                let buf = std::mem::take(&mut self.buf);
                // Re-run on the joined bytes (small: a header or a control frame).
                self.feed_dyn(&buf, on);
                return;
            }
        }
    }
}

enum Head {
    Incomplete,
    Invalid(&'static str),
    Data { header: usize, len: u64, fin: bool },
    Control { header: usize, len: usize, op: u8 },
}

fn parse_head(d: &[u8]) -> Head {
    if d.len() < 2 {
        return Head::Incomplete;
    }
    let fin = d[0] & 0x80 != 0;
    let op = d[0] & 0x0f;
    let masked = d[1] & 0x80 != 0;
    let (mut header, len) = match d[1] & 0x7f {
        126 => {
            if d.len() < 4 {
                return Head::Incomplete;
            }
            (4, u64::from(u16::from_be_bytes([d[2], d[3]])))
        }
        127 => {
            if d.len() < 10 {
                return Head::Incomplete;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[2..10]);
            (10, u64::from_be_bytes(b))
        }
        n => (2, u64::from(n)),
    };
    if masked {
        // Servers must not mask; tolerate it (the key is skipped, control payloads unmasked).
        header += 4;
    }
    if d.len() < header {
        return Head::Incomplete;
    }
    match op {
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => Head::Data { header, len, fin },
        opcode::CLOSE | opcode::PING | opcode::PONG => {
            if len > 125 || !fin {
                return Head::Invalid("bad control frame");
            }
            if masked {
                // Rare and not allowed: such a close is reported without its code.
                return Head::Control {
                    header,
                    len: len as usize,
                    op: op | 0x80,
                };
            }
            Head::Control {
                header,
                len: len as usize,
                op,
            }
        }
        _ => Head::Invalid("reserved opcode"),
    }
}

fn control(op: u8, payload: &[u8]) -> ServerEvent {
    let masked = op & 0x80 != 0;
    match op & 0x0f {
        opcode::CLOSE if masked || payload.len() < 2 => ServerEvent::Close(1005, String::new()),
        opcode::CLOSE => ServerEvent::Close(
            u16::from_be_bytes([payload[0], payload[1]]),
            String::from_utf8_lossy(&payload[2..]).into_owned(),
        ),
        opcode::PING => ServerEvent::Ping(payload.to_vec()),
        _ => ServerEvent::Pong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(op: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80 | op];
        if payload.len() < 126 {
            v.push(payload.len() as u8);
        } else {
            v.push(126);
            v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn masking_round_trips_and_matches_bytewise() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
        let key = [1, 2, 3, 250];
        let mut m = data.clone();
        mask(&mut m, key);
        for (i, (a, b)) in data.iter().zip(&m).enumerate() {
            assert_eq!(a ^ key[i % 4], *b);
        }
        mask(&mut m, key);
        assert_eq!(m, data);
    }

    #[test]
    fn client_frames_have_the_right_header() {
        let mut out = Vec::new();
        push_frame(&mut out, opcode::TEXT, &[b'x'; 300], [0, 0, 0, 0]);
        assert_eq!(&out[..4], &[0x81, 0x80 | 126, 1, 44]);
        assert_eq!(out.len(), 4 + 4 + 300);
        out.clear();
        push_close(&mut out, 1000, [9, 9, 9, 9]);
        assert_eq!(out[0], 0x88);
        assert_eq!(out[1], 0x82);
        assert_eq!([out[6] ^ 9, out[7] ^ 9], 1000u16.to_be_bytes());
    }

    #[test]
    fn parser_handles_split_frames_and_close() {
        let mut bytes = server_frame(opcode::TEXT, &[b'a'; 200]);
        bytes.extend(server_frame(opcode::BINARY, b"xyz"));
        bytes.extend(server_frame(opcode::PING, b"hi"));
        let mut close = 1011u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        bytes.extend(server_frame(opcode::CLOSE, &close));
        for split in [1usize, 2, 3, 5, 64, 1000] {
            let mut p = FrameParser::default();
            let mut ev = Vec::new();
            for c in bytes.chunks(split) {
                p.feed(c, |e| ev.push(e));
            }
            assert_eq!(
                ev,
                vec![
                    ServerEvent::Message,
                    ServerEvent::Message,
                    ServerEvent::Ping(b"hi".to_vec()),
                    ServerEvent::Close(1011, "bye".into())
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn upgrade_responses_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert!(check_response(ok, key).is_ok());
        let busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
        assert_eq!(
            check_response(busy, key).unwrap_err().0,
            ConnectFailure::HttpStatus(503)
        );
        let wrong = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert_eq!(
            check_response(wrong, key).unwrap_err().0,
            ConnectFailure::Other
        );
        assert!(WsUrl::parse("wss://x/ws").is_err());
        let u = WsUrl::parse("ws://127.0.0.1:9/ws/t").unwrap();
        assert_eq!((u.port, u.path.as_str()), (9, "/ws/t"));
    }
}
