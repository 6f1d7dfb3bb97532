//! EDGE: a round-robin TCP proxy (`acs-sim proxy`): each accepted connection goes to the next
//! backend in turn (a backend that refuses is skipped for that connection), bytes copied both
//! ways until either side closes. It stands in for the load balancer in front of a gateway
//! fleet, so Event Grid deliveries, callbacks, media WebSockets and operator requests of one
//! call land on different replicas.
//!
//! Like an ingress routing by path, it can pin a path prefix to some of the backends
//! ([`Route`], e.g. `/ws` → one replica): it reads the connection's first request line (HTTP
//! clients speak first), takes the first route whose prefix the path starts with (its own
//! rotation), else the rotation over all backends. It counts connections per backend and keeps
//! a log of where each went ([`Routed`]: method and path without the query), so a test can see
//! which replica got what.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest request line looked at (a longer head is routed by its first 8 KiB).
const HEAD_LIMIT: usize = 8192;
/// How long the proxy waits for the client's first request line before routing without it.
const HEAD_WAIT: Duration = Duration::from_secs(5);

/// Connections whose path starts with `prefix` go to `backends` (indices into the proxy's
/// backends) in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix, e.g. `/ws`.
    pub prefix: String,
    /// Indices of the backends that serve it.
    pub backends: Vec<usize>,
}

/// Where one connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Index of the backend.
    pub backend: usize,
    /// The request's method ("" when the client sent no request line).
    pub method: String,
    /// The request's path without its query ("" when none).
    pub path: String,
}

/// A running proxy.
#[derive(Debug)]
pub struct ProxyHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The backends, in turn order.
    pub backends: Vec<SocketAddr>,
    counts: Arc<Vec<AtomicU64>>,
    log: Arc<Mutex<Vec<Routed>>>,
    task: JoinHandle<()>,
}

impl ProxyHandle {
    /// Connections handed to each backend so far.
    pub fn connections(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Every connection handed to a backend so far, in order.
    pub fn log(&self) -> Vec<Routed> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops accepting (open connections carry on until they close).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `listen` and spreads connections over `backends` round robin.
pub async fn start(listen: SocketAddr, backends: Vec<SocketAddr>) -> std::io::Result<ProxyHandle> {
    start_with_routes(listen, backends, Vec::new()).await
}

/// The rotation of one route (or of all backends).
#[derive(Debug)]
struct Rotation {
    prefix: String,
    backends: Vec<usize>,
    next: AtomicUsize,
}

/// [`start`], with `routes` pinning path prefixes to some of the backends (first match wins).
pub async fn start_with_routes(
    listen: SocketAddr,
    backends: Vec<SocketAddr>,
    routes: Vec<Route>,
) -> std::io::Result<ProxyHandle> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    if backends.is_empty() {
        return Err(invalid("the proxy needs at least one backend".into()));
    }
    for r in &routes {
        if r.backends.is_empty() || r.backends.iter().any(|i| *i >= backends.len()) {
            return Err(invalid(format!(
                "route {}: backends {:?} are not among the {} backends",
                r.prefix,
                r.backends,
                backends.len()
            )));
        }
    }
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
    let mut rotations: Vec<Rotation> = routes
        .into_iter()
        .map(|r| Rotation {
            prefix: r.prefix,
            backends: r.backends,
            next: AtomicUsize::new(0),
        })
        .collect();
    rotations.push(Rotation {
        prefix: String::new(),
        backends: (0..backends.len()).collect(),
        next: AtomicUsize::new(0),
    });
    let rotations = Arc::new(rotations);
    let log: Arc<Mutex<Vec<Routed>>> = Arc::default();
    let (b, c, l) = (backends.clone(), counts.clone(), log.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (b, c, l, rot) = (b.clone(), c.clone(), l.clone(), rotations.clone());
            tokio::spawn(async move {
                let mut client = client;
                let _ = client.set_nodelay(true);
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let (method, path) = request_line(&head);
                let r = rot
                    .iter()
                    .find(|r| path.starts_with(r.prefix.as_str()))
                    .unwrap_or(&rot[rot.len() - 1]);
                for _ in 0..r.backends.len() {
                    let i = r.backends[r.next.fetch_add(1, Ordering::Relaxed) % r.backends.len()];
                    let connect = TcpStream::connect(b[i]);
                    if let Ok(Ok(mut server)) =
                        tokio::time::timeout(Duration::from_secs(2), connect).await
                    {
                        c[i].fetch_add(1, Ordering::Relaxed);
                        l.lock().unwrap_or_else(|p| p.into_inner()).push(Routed {
                            backend: i,
                            method: method.clone(),
                            path: path.clone(),
                        });
                        let _ = server.set_nodelay(true);
                        if server.write_all(&head).await.is_err() {
                            return;
                        }
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                }
            });
        }
    });
    Ok(ProxyHandle {
        addr,
        backends,
        counts,
        log,
        task,
    })
}

/// The client's first bytes, up to the end of its request line (or [`HEAD_LIMIT`], or what came
/// within [`HEAD_WAIT`]); `None` when it closed without sending anything.
async fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < HEAD_LIMIT {
        match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                if head.is_empty() {
                    return None;
                }
                break;
            }
            Ok(Ok(n)) => head.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    Some(head)
}

/// Method and path (query dropped) of an HTTP request line; empty strings when it is none.
fn request_line(head: &[u8]) -> (String, String) {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(m), Some(target)) if !m.is_empty() && target.starts_with('/') => {
            let path = target.split('?').next().unwrap_or_default();
            (m.to_owned(), path.to_owned())
        }
        _ => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn backend() -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let t = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let _ = s.write_all(&buf[..n]).await;
                });
            }
        });
        (a, t)
    }

    async fn send(p: SocketAddr, line: &str) -> String {
        let mut s = TcpStream::connect(p).await.unwrap();
        s.write_all(line.as_bytes()).await.unwrap();
        let mut out = vec![0u8; line.len()];
        s.read_exact(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn routes_pin_a_prefix_and_the_rest_goes_round_robin_and_everything_is_logged() {
        let (a, _ta) = backend().await;
        let (b, _tb) = backend().await;
        let (c, _tc) = backend().await;
        let p = start_with_routes(
            "127.0.0.1:0".parse().unwrap(),
            vec![a, b, c],
            vec![Route {
                prefix: "/ws".into(),
                backends: vec![2],
            }],
        )
        .await
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                send(p.addr, "GET /ws/tok?x=1 HTTP/1.1\r\n").await,
                "GET /ws/tok?x=1 HTTP/1.1\r\n",
                "the head is passed on"
            );
        }
        for _ in 0..3 {
            send(p.addr, "POST /api/x HTTP/1.1\r\n").await;
        }
        let log = p.log();
        let ws: Vec<usize> = log
            .iter()
            .filter(|r| r.path == "/ws/tok")
            .map(|r| r.backend)
            .collect();
        assert_eq!(ws, vec![2, 2], "{log:?}");
        let mut api: Vec<usize> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/x")
            .map(|r| r.backend)
            .collect();
        api.sort();
        assert_eq!(api, vec![0, 1, 2], "one each, in turn: {log:?}");
        assert_eq!(p.connections(), vec![1, 1, 3]);
        assert!(start_with_routes(
            "127.0.0.1:0".parse().unwrap(),
            vec![a],
            vec![Route {
                prefix: "/ws".into(),
                backends: vec![1],
            }],
        )
        .await
        .is_err());
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /a/b?q=1 HTTP/1.1\r\nHost: x\r\n"),
            ("GET".into(), "/a/b".into())
        );
        assert_eq!(
            request_line(b"\x16\x03\x01garbage"),
            (String::new(), String::new())
        );
    }
}
