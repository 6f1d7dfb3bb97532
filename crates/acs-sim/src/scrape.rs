//! EDGE: reads the gateway's `/metrics` with a minimal HTTP/1.1 GET over a tokio `TcpStream`
//! ([`http_get`]) and extracts the figures a load report compares before and after a run
//! ([`GatewayFigures`]).

use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::error::SimError;

/// Reads one sample's value out of a rendered Prometheus exposition (`name` with exact
/// `{labels}` text, or no labels): what a load report compares before and after a run, and what
/// tests read from `/metrics`.
pub fn scrape_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}

/// Largest response body accepted.
const MAX_RESPONSE: usize = 32 << 20;

/// `http://host[:port][/path]` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 in brackets, as written).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl HttpUrl {
    /// Parses a plain `http://` URL (no TLS, no user info).
    pub fn parse(url: &str) -> Result<Self, SimError> {
        let bad = |reason: &str| SimError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// is supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing host"));
        }
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => (
                &authority[..i],
                authority[i + 1..]
                    .parse::<u16>()
                    .map_err(|_| bad("bad port"))?,
            ),
            _ => (authority, 80),
        };
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// The gateway's metrics URL next to a media WebSocket URL: `ws://h:p/ws/…` →
/// `http://h:p/metrics`.
pub fn metrics_url_for(ws_url: &str) -> Option<String> {
    let rest = ws_url.strip_prefix("ws://")?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| format!("http://{authority}/metrics"))
}

/// The gateway's health URL next to a media WebSocket URL: `ws://h:p/ws/…` →
/// `http://h:p/healthz`.
pub fn health_url_for(ws_url: &str) -> Option<String> {
    metrics_url_for(ws_url).map(|m| m.replace("/metrics", "/healthz"))
}

/// `--gateway-pid`: a process id, or `auto` (ask the gateway at `--url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidSpec {
    /// This process id.
    Pid(u32),
    /// The `pid` the gateway's `/healthz` reports (same machine; several gateways are told
    /// apart by their address, which `pgrep` cannot do).
    Auto,
}

impl std::str::FromStr for PidSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(PidSpec::Auto);
        }
        s.parse()
            .map(PidSpec::Pid)
            .map_err(|_| format!("a process id or `auto`, not {s:?}"))
    }
}

/// Resolves `--gateway-pid` for the gateway whose media URL is `ws_url`.
pub async fn resolve_pid(spec: Option<PidSpec>, ws_url: &str) -> Result<Option<u32>, SimError> {
    match spec {
        None => Ok(None),
        Some(PidSpec::Pid(p)) => Ok(Some(p)),
        Some(PidSpec::Auto) => {
            let url = health_url_for(ws_url).ok_or_else(|| SimError::Http {
                url: ws_url.to_string(),
                reason: "--gateway-pid auto needs a ws:// --url".into(),
            })?;
            let body = http_get(&url, Duration::from_secs(5)).await?;
            pid_from_health(&body).ok_or_else(|| SimError::Http {
                url,
                reason: format!("no \"pid\" in the health answer {body:?} (an older gateway?)"),
            })
        }
        .map(Some),
    }
}

/// The `pid` of a gateway's `/healthz` JSON body.
pub fn pid_from_health(body: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("pid")?.as_u64()?.try_into().ok()
}

/// What a gateway's exposition says about the gateway itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayIdentity {
    /// `acs_gateway_build_info{version}` and `{commit}`: `0.1.0 (commit abc1234)`.
    pub version: Option<String>,
    /// A `wav` sink is configured (its series carry `sink="wav"`): the run is being recorded.
    pub records_wav: bool,
}

impl GatewayIdentity {
    /// Reads the identity from a Prometheus text exposition.
    pub fn from_exposition(text: &str) -> Self {
        let label = |line: &str, name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let version = text
            .lines()
            .find(|l| l.starts_with("acs_gateway_build_info{"))
            .and_then(|l| {
                let v = label(l, "version")?;
                Some(match label(l, "commit") {
                    Some(c) => format!("{v} (commit {c})"),
                    None => v,
                })
            });
        let records_wav = text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("sink=\"wav\""));
        Self {
            version,
            records_wav,
        }
    }
}

/// `GET url` over HTTP/1.1 with `Connection: close`; returns the body of a 200 response
/// (chunked transfer encoding is decoded). Bounded by `timeout`.
pub async fn http_get(url: &str, timeout: Duration) -> Result<String, SimError> {
    let u = HttpUrl::parse(url)?;
    let err = |reason: String| SimError::Http {
        url: url.to_string(),
        reason,
    };
    let fetch = async {
        let host = u.host.trim_start_matches('[').trim_end_matches(']');
        let mut s = TcpStream::connect((host, u.port))
            .await
            .map_err(|e| err(e.to_string()))?;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            u.path, u.host, u.port
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut buf = Vec::new();
        (&mut s)
            .take(MAX_RESPONSE as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok::<_, SimError>(buf)
    };
    let raw = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| err(format!("no answer within {timeout:?}")))??;
    parse_response(&raw).map_err(err)
}

/// Parses a complete HTTP/1.1 response; the body of a 200, or why not.
pub fn parse_response(raw: &[u8]) -> Result<String, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated response (no end of headers)")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!("status {status:?}"));
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

/// Sum of every sample of the metric family `name` (all label sets; the bare name too).
pub fn sum_family(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            l.rsplit_once(' ')?.1.parse::<f64>().ok()
        })
        .sum()
}

/// Serializes a Prometheus counter (a float in the exposition) as the integer it is.
fn as_count<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// Gateway counters a load run compares before and after (counts serialize as integers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GatewayFigures {
    /// `acs_gateway_frames_total{kind="audio_data"}`.
    #[serde(serialize_with = "as_count")]
    pub audio_frames: f64,
    /// Sum of all `acs_gateway_sink_queue_drops_total` series.
    #[serde(serialize_with = "as_count")]
    pub sink_queue_drops: f64,
    /// Sum of all `acs_gateway_decode_errors_total` series.
    #[serde(serialize_with = "as_count")]
    pub decode_errors: f64,
    /// `acs_gateway_frame_processing_seconds_sum`.
    pub frame_seconds_sum: f64,
    /// `acs_gateway_frame_processing_seconds_count`.
    #[serde(serialize_with = "as_count")]
    pub frame_seconds_count: f64,
    /// `acs_gateway_ws_connections_total`.
    #[serde(serialize_with = "as_count")]
    pub connections_total: f64,
    /// Sum of all `acs_gateway_ws_connections_rejected_total` series.
    #[serde(serialize_with = "as_count")]
    pub connections_rejected: f64,
}

impl GatewayFigures {
    /// Extracts the figures from a Prometheus text exposition (missing series count as 0).
    pub fn from_exposition(text: &str) -> Self {
        let one = |s: &str| scrape_value(text, s).unwrap_or(0.0);
        GatewayFigures {
            audio_frames: one("acs_gateway_frames_total{kind=\"audio_data\"}"),
            sink_queue_drops: sum_family(text, "acs_gateway_sink_queue_drops_total"),
            decode_errors: sum_family(text, "acs_gateway_decode_errors_total"),
            frame_seconds_sum: one("acs_gateway_frame_processing_seconds_sum"),
            frame_seconds_count: one("acs_gateway_frame_processing_seconds_count"),
            connections_total: one("acs_gateway_ws_connections_total"),
            connections_rejected: sum_family(text, "acs_gateway_ws_connections_rejected_total"),
        }
    }

    /// `self − before`, field by field.
    pub fn delta(&self, before: &GatewayFigures) -> GatewayFigures {
        GatewayFigures {
            audio_frames: self.audio_frames - before.audio_frames,
            sink_queue_drops: self.sink_queue_drops - before.sink_queue_drops,
            decode_errors: self.decode_errors - before.decode_errors,
            frame_seconds_sum: self.frame_seconds_sum - before.frame_seconds_sum,
            frame_seconds_count: self.frame_seconds_count - before.frame_seconds_count,
            connections_total: self.connections_total - before.connections_total,
            connections_rejected: self.connections_rejected - before.connections_rejected,
        }
    }

    /// Mean processing time per frame in µs (`sum / count`), if any frame was counted.
    pub fn mean_frame_us(&self) -> Option<f64> {
        (self.frame_seconds_count > 0.0)
            .then(|| self.frame_seconds_sum / self.frame_seconds_count * 1e6)
    }
}

/// Scrapes `url` and extracts [`GatewayFigures`].
pub async fn scrape_gateway(url: &str) -> Result<GatewayFigures, SimError> {
    let text = http_get(url, Duration::from_secs(5)).await?;
    Ok(GatewayFigures::from_exposition(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPO: &str = "# HELP x\n# TYPE acs_gateway_frames_total counter\n\
        acs_gateway_frames_total{kind=\"audio_data\"} 1500\n\
        acs_gateway_frames_total{kind=\"audio_metadata\"} 3\n\
        acs_gateway_sink_queue_drops_total{class=\"audio\",sink=\"wav\"} 2\n\
        acs_gateway_sink_queue_drops_total{class=\"control\",sink=\"wav\"} 1\n\
        acs_gateway_sink_queue_drops_total_extra 100\n\
        acs_gateway_decode_errors_total{reason=\"bad_base64\"} 4\n\
        acs_gateway_frame_processing_seconds_sum 0.003\n\
        acs_gateway_frame_processing_seconds_count 1500\n";

    #[test]
    fn figures_from_exposition() {
        let f = GatewayFigures::from_exposition(EXPO);
        assert_eq!(f.audio_frames, 1500.0);
        assert_eq!(f.sink_queue_drops, 3.0);
        assert_eq!(f.decode_errors, 4.0);
        assert!((f.mean_frame_us().unwrap() - 2.0).abs() < 1e-9);
        let d = f.delta(&GatewayFigures {
            audio_frames: 500.0,
            ..Default::default()
        });
        assert_eq!(d.audio_frames, 1000.0);
        assert_eq!(GatewayFigures::default().mean_frame_us(), None);
        let json = serde_json::to_value(d).unwrap();
        assert!(json["audio_frames"].is_u64(), "{json}");
        assert!(json["frame_seconds_sum"].is_f64(), "{json}");
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/metrics").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/metrics")
        );
        let u = HttpUrl::parse("http://[::1]:9/x?y").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[::1]", 9, "/x?y")
        );
        assert_eq!(HttpUrl::parse("http://localhost").unwrap().port, 80);
        assert!(HttpUrl::parse("https://x/").is_err());
        assert_eq!(
            metrics_url_for("ws://127.0.0.1:8080/ws/tok").as_deref(),
            Some("http://127.0.0.1:8080/metrics")
        );
        assert_eq!(metrics_url_for("wss://x/ws"), None);
    }

    #[test]
    fn responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), "hello");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), "hello world");
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn identity_from_exposition() {
        let text = "# HELP acs_gateway_build_info x\n\
            acs_gateway_build_info{commit=\"abc1234\",version=\"0.1.0\"} 1\n\
            acs_gateway_sink_frames_total{sink=\"wav\"} 0\n";
        let id = GatewayIdentity::from_exposition(text);
        assert_eq!(id.version.as_deref(), Some("0.1.0 (commit abc1234)"));
        assert!(id.records_wav);
        let id =
            GatewayIdentity::from_exposition("acs_gateway_sink_frames_total{sink=\"null\"} 0\n");
        assert_eq!(id, GatewayIdentity::default());
    }

    #[test]
    fn pid_spec_and_health_body() {
        assert_eq!("auto".parse::<PidSpec>(), Ok(PidSpec::Auto));
        assert_eq!("42".parse::<PidSpec>(), Ok(PidSpec::Pid(42)));
        assert!("$(pgrep x)".parse::<PidSpec>().is_err());
        assert_eq!(
            pid_from_health(r#"{"status":"ok","pid":4321,"version":"0.1.0"}"#),
            Some(4321)
        );
        assert_eq!(pid_from_health(r#"{"status":"ok"}"#), None);
        assert_eq!(
            health_url_for("ws://127.0.0.1:18080/ws").as_deref(),
            Some("http://127.0.0.1:18080/healthz")
        );
    }

    #[tokio::test]
    async fn get_from_a_local_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /metrics HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let body = http_get(&format!("http://{addr}/metrics"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(body, "ok");
        server.await.unwrap();
    }
}
