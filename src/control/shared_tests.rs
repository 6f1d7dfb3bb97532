//! Two control planes ("replicas") sharing one [`MemoryLink`] (socket-free): IncomingCall
//! claimed once, callbacks on the other replica, compare-and-set retries, routing failures.

use super::*;
use crate::control::mock::MockAcs;
use crate::control::registry::{CallState, NewCall};
use crate::control::testkit::{cfg, eventually, op, plane, read, req, vector};
use crate::protocol::events::{callbacks_body, IncomingCallEventData};
use crate::protocol::events::{CallbackEvent, CallbackKind, EventGridEvent};
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;

fn replica(link: MemoryLink) -> (Arc<ControlPlane>, Arc<MockAcs>) {
    let mock = Arc::new(MockAcs::new());
    let cp = plane(&cfg(), Some(mock.clone()));
    cp.set_link(Arc::new(link));
    (cp, mock)
}

fn incoming(event_id: &str, context: &str) -> String {
    let mut data: IncomingCallEventData = serde_json::from_str(&vector(
        "eventgrid_incoming_call_data_teams_resource_account_tpe.json",
    ))
    .unwrap();
    data.incoming_call_context = context.into();
    let ev =
        EventGridEvent::incoming_call(event_id, "/subscriptions/x", "2025-01-01T00:00:00Z", &data);
    serde_json::to_string(&vec![ev]).unwrap()
}

fn post(body: &str) -> hyper::Request<http_body_util::Full<Bytes>> {
    req(
        Method::POST,
        "/api/incomingCall",
        &[("aeg-event-type", "Notification")],
        body,
    )
}

#[tokio::test]
async fn incoming_call_delivered_to_two_replicas_is_answered_once() {
    let link = MemoryLink::new("a");
    let (a, mock_a) = replica(link.peer("a"));
    let (b, mock_b) = replica(link.peer("b"));
    let body = incoming("ev-1", "ctx-1");
    let (sa, ra) = read(a.handle(post(&body)).await).await;
    let (sb, rb) = read(b.handle(post(&body)).await).await;
    assert_eq!((sa, sb), (200, 200), "{ra} {rb}");
    assert_eq!(ra["accepted"].as_array().unwrap().len(), 1);
    assert_eq!(
        rb["duplicates"], 1,
        "the second replica sees the claim: {rb}"
    );
    mock_a.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answers = mock_a.requests_of("answer_call").len() + mock_b.requests_of("answer_call").len();
    assert_eq!(answers, 1, "answered exactly once across replicas");
    assert_eq!(b.metrics.control.incoming_count("duplicate"), 1);
    // A redelivery with a new event id but the same context: still a duplicate, anywhere.
    let (_, rb) = read(b.handle(post(&incoming("ev-2", "ctx-1"))).await).await;
    assert_eq!(rb["duplicates"], 1);

    // The call is in the shared bucket: B finds it, and a callback on B (for the call A
    // answered) updates the record A reads.
    let id = ra["accepted"][0].as_str().unwrap().to_owned();
    eventually("answered", || {
        a.registry.get(&id).is_some_and(|r| r.answered_at.is_some())
    })
    .await;
    let token = a.registry.get(&id).unwrap().token.clone();
    let ev = CallbackEvent::new(CallbackKind::CallConnected, "cb-1", "mock-conn-1");
    let cb = String::from_utf8(callbacks_body(&[ev])).unwrap();
    let (s, r) = read(
        b.handle(req(
            Method::POST,
            &format!("/api/callbacks/{token}"),
            &[],
            &cb,
        ))
        .await,
    )
    .await;
    assert_eq!((s, r["applied"].as_u64()), (200, Some(1)), "{r}");
    // A reads the shared record through the operator API (by callConnectionId).
    let (s, r) = read(
        a.handle(op(Method::GET, "/api/calls/mock-conn-1", ""))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["state"], "connected", "{r}");
    assert!(r["answeredAt"].is_string(), "A's answer kept: {r}");
    assert!(a.metrics.cluster.cas_retries.get() + b.metrics.cluster.cas_retries.get() < 8);
}

/// A link whose first store loses a compare-and-set race: another replica changes the record
/// between the read and the write.
#[derive(Debug)]
struct RacingLink {
    inner: MemoryLink,
    raced: std::sync::atomic::AtomicBool,
}

impl ClusterLink for RacingLink {
    fn replica(&self) -> &str {
        self.inner.replica()
    }
    fn reachable(&self) -> bool {
        true
    }
    fn claim(&self, key: String) -> LinkFuture<'_, bool> {
        self.inner.claim(key)
    }
    fn load(&self, key: String) -> LinkFuture<'_, Option<(Bytes, u64)>> {
        self.inner.load(key)
    }
    fn store(&self, key: String, value: Bytes, revision: Option<u64>) -> LinkFuture<'_, u64> {
        Box::pin(async move {
            if revision.is_some() && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // the other replica's change: DTMF recognition started
                let (b, rev) = self.inner.load(key.clone()).await?.unwrap();
                let mut rec = decode(&b).unwrap();
                rec.dtmf.recognition = Some("active".into());
                self.inner
                    .store(key.clone(), encode(&rec), Some(rev))
                    .await?;
            }
            self.inner.store(key, value, revision).await
        })
    }
    fn list(&self, prefix: String) -> LinkFuture<'_, Vec<Bytes>> {
        self.inner.list(prefix)
    }
    fn forward(&self, replica: String, req: Forwarded) -> LinkFuture<'_, ForwardReply> {
        self.inner.forward(replica, req)
    }
}

fn new_call(cp: &ControlPlane, id: &str) {
    let now = crate::control::registry::now_ms();
    let (token, expires) = cp.tokens.issue(id, now / 1000).unwrap();
    cp.registry
        .insert(
            NewCall {
                id: id.into(),
                from: "4:+1".into(),
                to: "8:acs:x".into(),
                caller_display_name: None,
                server_call_id: None,
                correlation_id: None,
                decision: "answer:default".into(),
                rule: None,
                token,
                token_expires_unix: expires,
            },
            now,
        )
        .unwrap();
}

#[tokio::test]
async fn a_lost_compare_and_set_is_retried_on_the_fresh_record_and_counted() {
    let link = MemoryLink::new("a");
    let (cp, _) = replica(link.peer("unused"));
    let cp2 = plane(&cfg(), None);
    cp2.set_link(Arc::new(RacingLink {
        inner: link.peer("b"),
        raced: false.into(),
    }));
    let _ = cp; // the bucket is shared; cp2 is the replica under test
    new_call(&cp2, "c1");
    cp2.publish_new("c1").await;
    let ev = CallbackEvent::new(CallbackKind::CallConnected, "e1", "conn-1");
    let now = crate::control::registry::now_ms();
    let applied = cp2
        .commit("c1", |reg, id| reg.apply_callback(id, &ev, now))
        .await;
    assert_eq!(applied, crate::control::registry::Applied::Changed);
    assert_eq!(
        cp2.metrics.cluster.cas_retries.get(),
        1,
        "one retry counted"
    );
    let (b, _) = link.load("call.c1".into()).await.unwrap().unwrap();
    let rec = decode(&b).unwrap();
    assert_eq!(rec.state, CallState::Connected, "this replica's change");
    assert_eq!(
        rec.dtmf.recognition.as_deref(),
        Some("active"),
        "the other replica's change survives"
    );
    assert_eq!(rec.callbacks, 1, "applied once, not once per attempt");
    assert_eq!(
        rec.token,
        cp2.registry.get("c1").unwrap().token,
        "hidden fields stored"
    );
}

#[tokio::test]
async fn a_media_operation_for_a_gone_replica_is_503_json_and_counted() {
    let link = MemoryLink::new("a");
    let (a, _) = replica(link.peer("a"));
    new_call(&a, "c2");
    a.registry.update("c2", 1, |r| r.bidirectional = true);
    a.registry.media_connected("c2", 2, Some("b"));
    a.publish_new("c2").await;
    let (s, r) = read(
        a.handle(op(Method::POST, "/api/calls/c2/stop-audio", ""))
            .await,
    )
    .await;
    assert_eq!(s, 503, "{r}");
    assert_eq!(r["code"], "routing_replica_gone", "{r}");
    assert_eq!(r["replica"], "b");
    let text = a.metrics.render();
    assert!(
        text.contains("acs_gateway_cluster_routing_failures_total{reason=\"replica_gone\"} 1"),
        "{text}"
    );
    // Single-process mode is unchanged: no link, no routing, the local 409.
    let solo = plane(&cfg(), None);
    new_call(&solo, "c3");
    solo.registry.media_connected("c3", 2, Some("b"));
    let (s, _) = read(
        solo.handle(op(Method::POST, "/api/calls/c3/stop-audio", ""))
            .await,
    )
    .await;
    assert_eq!(s, 409);
    assert!(solo.replica_id().is_none() && solo.cluster_reachable().is_none());
}

#[tokio::test]
async fn nats_unreachable_is_503_for_what_needs_the_shared_state_and_media_carries_on() {
    let link = MemoryLink::new("a");
    let (a, mock) = replica(link.peer("a"));
    link.set_down(true);
    assert_eq!(a.cluster_reachable(), Some(false), "/readyz says so");

    // An IncomingCall that cannot be claimed cluster-wide: 503, not answered on a guess.
    let body = incoming("ev-9", "ctx-9");
    let (s, r) = read(a.handle(post(&body)).await).await;
    assert_eq!(s, 503, "{r}");
    assert_eq!(r["code"], "nats_unreachable", "{r}");
    assert_eq!(a.metrics.cluster.nats_unreachable_count("incoming_call"), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(mock.requests_of("answer_call").is_empty(), "not answered");
    // Event Grid's redelivery once NATS is back is taken as new, and answered once.
    link.set_down(false);
    let (s, r) = read(a.handle(post(&body)).await).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["accepted"].as_array().unwrap().len(), 1, "{r}");
    mock.wait_for(1, Duration::from_secs(5)).await;
    let id = r["accepted"][0].as_str().unwrap().to_owned();
    eventually("answered", || {
        a.registry.get(&id).is_some_and(|r| r.answered_at.is_some())
    })
    .await;
    assert_eq!(mock.requests_of("answer_call").len(), 1);

    // A callback while NATS is down: 503 JSON (ACS redelivers), nothing applied.
    link.set_down(true);
    let token = a.registry.get(&id).unwrap().token.clone();
    let ev = CallbackEvent::new(CallbackKind::CallConnected, "cb-9", "mock-conn-1");
    let cb = String::from_utf8(callbacks_body(&[ev])).unwrap();
    let callback = || req(Method::POST, &format!("/api/callbacks/{token}"), &[], &cb);
    let (s, r) = read(a.handle(callback()).await).await;
    assert_eq!((s, &r["code"]), (503, &"nats_unreachable".into()), "{r}");
    assert_eq!(a.metrics.cluster.nats_unreachable_count("callbacks"), 1);
    assert_ne!(a.registry.get(&id).unwrap().state, CallState::Connected);
    // A bad token is still a 401, not a 503.
    let (s, _) = read(
        a.handle(req(Method::POST, "/api/callbacks/not-a-token", &[], &cb))
            .await,
    )
    .await;
    assert_eq!(s, 401);
    // An operator request: 503 JSON.
    let (s, r) = read(
        a.handle(op(Method::GET, &format!("/api/calls/{id}"), ""))
            .await,
    )
    .await;
    assert_eq!((s, &r["code"]), (503, &"nats_unreachable".into()), "{r}");
    let (s, _) = read(a.handle(op(Method::GET, "/api/calls", "")).await).await;
    assert_eq!(s, 503);
    assert_eq!(a.metrics.cluster.nats_unreachable_count("operator"), 2);
    // Media opened meanwhile is kept locally: the connection is admitted and recorded here.
    let now = crate::control::registry::now_ms();
    a.commit(&id, |reg, id| reg.media_connected(id, now, Some("a")))
        .await;
    assert!(a.registry.get(&id).unwrap().media_connection.connected);
    // each failed request counted: the claim, the reads (callback, operator, media) and the list
    let c = &a.metrics.cluster;
    assert_eq!(c.request_count("claim", "error"), 1);
    assert_eq!(c.request_count("load", "error"), 3);
    assert_eq!(c.request_count("list", "error"), 1);

    // NATS back: the redelivered callback applies.
    link.set_down(false);
    let (s, r) = read(a.handle(callback()).await).await;
    assert_eq!((s, r["applied"].as_u64()), (200, Some(1)), "{r}");
}
