//! EDGE: a round-robin TCP proxy (`acs-sim proxy`): each accepted connection goes to the next
//! backend in turn (a backend that refuses is skipped for that connection), bytes copied both
//! ways until either side closes. It stands in for the load balancer in front of a gateway
//! fleet, so Event Grid deliveries, callbacks, media WebSockets and operator requests of one
//! call land on different replicas. Counts connections per backend.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy.
#[derive(Debug)]
pub struct ProxyHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The backends, in turn order.
    pub backends: Vec<SocketAddr>,
    counts: Arc<Vec<AtomicU64>>,
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
    if backends.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the proxy needs at least one backend",
        ));
    }
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let (b, c) = (backends.clone(), counts.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (b, c, next) = (b.clone(), c.clone(), next.clone());
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                for _ in 0..b.len() {
                    let i = next.fetch_add(1, Ordering::Relaxed) % b.len();
                    let connect = TcpStream::connect(b[i]);
                    if let Ok(Ok(server)) =
                        tokio::time::timeout(Duration::from_secs(2), connect).await
                    {
                        c[i].fetch_add(1, Ordering::Relaxed);
                        let _ = server.set_nodelay(true);
                        let (mut client, mut server) = (client, server);
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
        task,
    })
}
