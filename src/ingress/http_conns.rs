//! The budget of plain HTTP connections — every accepted socket until it upgrades to a media
//! WebSocket (health checks, scrapes, the control plane, upgrades in progress, idle keep-alive) —
//! and who makes room when it is full.
//!
//! Media connections have their own budget (`max_connections`, counted from the upgrade on), so
//! plain HTTP can never take the slots of calls. When the plain budget is full, a new connection
//! does not wait or get refused: the **oldest connection that is waiting on its client** (for a
//! request head, a request body, or its next keep-alive request) is closed to make room, counted
//! `http_connections_closed_total{reason="evicted"}`. Clients that stall cannot lock the gateway
//! out — every new arrival pushes the oldest staller out — while a connection whose request the
//! gateway is working on is never evicted. Only when every connection in the budget is being
//! worked on is the newcomer closed at accept (`ws_connections_rejected_total{reason="socket_limit"}`).

use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const WAITING: u8 = 0;
const WORKING: u8 = 1;
const EVICTED: u8 = 2;

/// One plain HTTP connection's shared state.
#[derive(Debug, Default)]
pub(crate) struct ConnCtl {
    /// WAITING on its client, WORKING on a request that arrived whole, or EVICTED (for good).
    state: AtomicU8,
    /// Requests received on this connection.
    pub served: AtomicU64,
    evict: Notify,
}

impl ConnCtl {
    /// A request arrived whole: the gateway works on it, the connection cannot be evicted until
    /// [`ConnCtl::waiting`]. `false` when it was evicted already (then answer nothing of
    /// substance: the connection is going away).
    pub(crate) fn start_work(&self) -> bool {
        match self
            .state
            .compare_exchange(WAITING, WORKING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(s) => s != EVICTED,
        }
    }

    /// The request was answered and the connection waits on its client again.
    pub(crate) fn waiting(&self) {
        let _ = self
            .state
            .compare_exchange(WORKING, WAITING, Ordering::AcqRel, Ordering::Acquire);
    }

    fn try_evict(&self) -> bool {
        self.state
            .compare_exchange(WAITING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Resolves when this connection was chosen for eviction (then drop it).
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// The plain HTTP connections of one listener, oldest first.
#[derive(Debug)]
pub(crate) struct HttpConns {
    cap: usize,
    next: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<ConnCtl>>>,
    metrics: Arc<Metrics>,
}

/// A connection's place in the budget; leaving (drop) frees it.
#[derive(Debug)]
pub(crate) struct HttpConn {
    conns: Arc<HttpConns>,
    id: u64,
    /// Its shared state.
    pub ctl: Arc<ConnCtl>,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.conns.lock().remove(&self.id);
    }
}

impl HttpConns {
    /// A budget of `cap` connections.
    pub(crate) fn new(cap: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            next: AtomicU64::new(0),
            live: Mutex::new(BTreeMap::new()),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnCtl>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open plain HTTP connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes a place for a new connection, evicting the oldest one waiting on its client when
    /// the budget is full; `None` when every connection is being worked on.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<HttpConn> {
        let mut live = self.lock();
        if live.len() >= self.cap {
            // claimed atomically: a connection that just started work is not taken
            let victim = live
                .iter()
                .find(|(_, c)| c.try_evict())
                .map(|(id, _)| *id)?;
            if let Some(c) = live.remove(&victim) {
                c.evict.notify_one();
                self.metrics.http_closed("evicted");
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let ctl = Arc::new(ConnCtl::default());
        live.insert(id, ctl.clone());
        Some(HttpConn {
            conns: self.clone(),
            id,
            ctl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn full_budget_evicts_the_oldest_waiting_connection() {
        let m = Metrics::new();
        let conns = HttpConns::new(3, m.clone());
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        let c = conns.admit().unwrap();
        assert!(a.ctl.start_work()); // being answered: kept
        let d = conns.admit().expect("room made");
        assert_eq!(conns.len(), 3);
        assert_eq!(m.http_closed_count("evicted"), 1);
        // b, the oldest waiting one, was told to go; a was not
        tokio::time::timeout(Duration::from_secs(1), b.ctl.evicted())
            .await
            .expect("b evicted");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), a.ctl.evicted())
                .await
                .is_err(),
            "a is being worked on"
        );
        assert!(
            !b.ctl.start_work(),
            "an evicted connection does no more work"
        );
        drop(b); // its task ends: nothing left to remove
        assert_eq!(conns.len(), 3);
        for x in [&c, &d] {
            assert!(x.ctl.start_work());
        }
        assert!(conns.admit().is_none(), "all busy: the newcomer is refused");
        c.ctl.waiting();
        assert!(conns.admit().is_some(), "c answered and waits: evicted");
        assert_eq!(m.http_closed_count("evicted"), 2);
        drop((a, c, d));
        assert_eq!(conns.len(), 0, "the newest left with its guard");
    }
}
