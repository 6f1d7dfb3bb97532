//! The transport floor: a bare tokio-tungstenite server that accepts WebSocket upgrades, reads
//! every message and counts it, nothing else (4 KiB read buffer, as the gateway uses). Run the
//! same `acs-sim load` against it and against the gateway to see what the gateway adds on top of
//! the socket, WebSocket and runtime work every server pays:
//!
//! ```sh
//! cargo run --release --example bare_ws -- 127.0.0.1:8090
//! acs-sim load --url ws://127.0.0.1:8090/ws --no-metrics --calls 400 --duration-secs 5 --gateway-pid <pid>
//! ```

use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("bare_ws listening on {}", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let n = c.load(Ordering::Relaxed);
            if n != last {
                eprintln!("{n} messages");
                last = n;
            }
        }
    });
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let count = count.clone();
        tokio::spawn(async move {
            let cfg = WebSocketConfig::default().read_buffer_size(4096);
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await
            else {
                return;
            };
            let mut n = 0u64;
            while let Some(Ok(_)) = ws.next().await {
                n += 1;
            }
            count.fetch_add(n, Ordering::Relaxed);
        });
    }
}
