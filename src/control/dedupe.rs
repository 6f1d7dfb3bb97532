//! A bounded set of recently seen keys with a time-to-live, for at-least-once Event Grid
//! deliveries: an IncomingCall is a duplicate when its event id or its `incomingCallContext` was
//! seen within the TTL. Keys are stored as SHA-256 digests (contexts are long), at most
//! `capacity` of them; the oldest go first.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default number of keys kept.
pub(crate) const DEFAULT_CAPACITY: usize = 20_000;
/// Default time a key is remembered (Event Grid retries within minutes; later redeliveries are
/// stale anyway and ACS refuses to answer them).
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(3600);

type Key = [u8; 32];

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<Key, Instant>,
    order: VecDeque<(Key, Instant)>,
}

/// The set.
#[derive(Debug)]
pub(crate) struct Dedupe {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
}

/// The keys an IncomingCall is known by: its event id and its context (empty values ignored).
fn keys(event_id: &str, incoming_call_context: &str) -> Vec<Key> {
    [("id", event_id), ("ctx", incoming_call_context)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| digest(k, v))
        .collect()
}

fn digest(kind: &str, v: &str) -> Key {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(v.as_bytes());
    h.finalize().into()
}

impl Dedupe {
    /// At most `capacity` keys, each kept for `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Records the event id and context of an IncomingCall; `true` when neither was seen
    /// before (the call is new), `false` for a duplicate. Empty values are ignored.
    pub(crate) fn first_time(
        &self,
        event_id: &str,
        incoming_call_context: &str,
        now: Instant,
    ) -> bool {
        let keys = keys(event_id, incoming_call_context);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(k, t)) = g.order.front() {
            if now.saturating_duration_since(t) < self.ttl {
                break;
            }
            g.order.pop_front();
            g.seen.remove(&k);
        }
        let dup = keys.iter().any(|k| g.seen.contains_key(k));
        let new: Vec<Key> = keys
            .into_iter()
            .filter(|k| !g.seen.contains_key(k))
            .collect();
        while g.order.len() + new.len() > self.capacity {
            match g.order.pop_front() {
                Some((k, _)) => {
                    g.seen.remove(&k);
                }
                None => break,
            }
        }
        for k in new {
            g.seen.insert(k, now);
            g.order.push_back((k, now));
        }
        !dup
    }

    /// Forgets an IncomingCall recorded by [`Self::first_time`] that could not be taken after
    /// all (cluster mode, NATS unreachable), so that its redelivery counts as new.
    pub(crate) fn forget(&self, event_id: &str, incoming_call_context: &str) {
        let keys = keys(event_id, incoming_call_context);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for k in &keys {
            g.seen.remove(k);
        }
        g.order.retain(|(k, _)| !keys.contains(k));
    }

    /// Keys held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_id_or_context_bounded_and_expiring() {
        let d = Dedupe::new(4, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(d.first_time("e1", "ctx1", t0));
        assert!(!d.first_time("e1", "ctx1", t0), "same delivery");
        assert!(!d.first_time("e2", "ctx1", t0), "same call, new event id");
        assert!(!d.first_time("e1", "ctx9", t0), "same event id");
        assert!(d.first_time("e3", "ctx3", t0));
        // capacity 4: old keys go first
        assert!(d.first_time("e4", "ctx4", t0));
        assert!(d.len() <= 6);
        assert!(d.first_time("e1", "ctx1", t0), "evicted by capacity");
        // expiry
        let d = Dedupe::new(100, Duration::from_secs(10));
        assert!(d.first_time("a", "b", t0));
        assert!(!d.first_time("a", "b", t0 + Duration::from_secs(9)));
        assert!(d.first_time("a", "b", t0 + Duration::from_secs(30)));
        assert!(d.first_time("", "", t0), "nothing to compare");
        d.forget("a", "b");
        assert!(d.first_time("a", "b", t0), "forgotten: new again");
        assert!(!d.first_time("a", "b", t0));
    }
}
