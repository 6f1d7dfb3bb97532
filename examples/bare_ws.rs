//! The transport floor: a bare tokio-tungstenite server that accepts WebSocket upgrades, reads
//! every message and counts it, nothing else (4 KiB read buffer, as the gateway uses). Run the
//! same `acs-sim load` against it and against the gateway to see what the gateway adds on top of
//! the socket, WebSocket and runtime work every server pays:
//!
//! The optional second argument is the runtime layout, to compare them on the same load: `mt`
//! (default: tokio's multi-thread runtime, one worker per core), `mt1` (multi-thread, one
//! worker), `ctN` (N `current_thread` runtimes on N threads, each with its own `SO_REUSEPORT`
//! listener, so the kernel spreads connections and no task ever moves between threads), `mtbN`
//! (multi-thread, each worker sleeping N µs before it parks, so one wake-up finds several
//! sockets ready: measured at 400 real-time streams with N = 200, 500 and 1000, no gain, as the
//! generator's frames already arrive about five per `epoll_wait`).
//!
//! ```sh
//! cargo run --release --example bare_ws -- 127.0.0.1:8090 [mt|mt1|ct2|mtb500]
//! acs-sim load --url ws://127.0.0.1:8090/ws --no-metrics --calls 400 --duration-secs 5 --gateway-pid <pid>
//! ```

use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into())
        .parse()
        .expect("address");
    let layout = std::env::args().nth(2).unwrap_or_else(|| "mt".into());
    let count = Arc::new(AtomicU64::new(0));
    match layout.as_str() {
        l if l.starts_with("mt") => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if layout == "mt1" {
                b.worker_threads(1);
            }
            if let Some(us) = l.strip_prefix("mtb") {
                let us: u64 = us.parse().unwrap_or(500);
                b.on_thread_park(move || std::thread::sleep(std::time::Duration::from_micros(us)));
            }
            b.enable_all().build()?.block_on(async {
                let listener = bind(addr)?;
                serve(listener, count).await
            })
        }
        _ => {
            let n: usize = layout.trim_start_matches("ct").parse().unwrap_or(2);
            let mut threads = Vec::new();
            for _ in 0..n {
                let count = count.clone();
                threads.push(std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(async {
                            let listener = bind(addr)?;
                            serve(listener, count).await
                        })
                }));
            }
            for t in threads {
                t.join().expect("thread")?;
            }
            Ok(())
        }
    }
}

fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.set_reuseport(true)?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    let l = s.listen(1024)?;
    eprintln!("bare_ws listening on {}", l.local_addr()?);
    Ok(l)
}

async fn serve(listener: TcpListener, count: Arc<AtomicU64>) -> std::io::Result<()> {
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
