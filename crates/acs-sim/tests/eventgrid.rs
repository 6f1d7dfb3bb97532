//! The Event Grid emulator (`acs_sim::eventgrid`) against a local webhook
//! receiver: both validation handshakes, Event Grid's headers, IncomingCall bodies in both
//! schemas for phone / ACS user / Teams resource account callees, retries with their bound,
//! no retry on 400/413, timeouts, and duplicate deliveries of the same event id.

mod sim_support;

use std::time::Duration;

use acs_protocol::events::{parse_webhook_events, EventSchema, WebhookPayload};
use acs_protocol::IdentifierKind;
use acs_sim::acs::IncomingCallSpec;
use acs_sim::eventgrid::{deliver_incoming_call, validate_subscription, EventGridTarget, Schema};
use sim_support::*;

fn target(url: String, schema: Schema) -> EventGridTarget {
    EventGridTarget {
        schema,
        retry_delays: vec![Duration::from_millis(50), Duration::from_millis(100)],
        attempt_timeout: Duration::from_secs(5),
        ..EventGridTarget::new(url)
    }
}

#[tokio::test]
async fn validation_handshakes() {
    let hook = Receiver::start().await;
    let url = hook.url("/api/incomingCall?secret=s3");
    // Event Grid schema: POST with aeg-event-type SubscriptionValidation, validationResponse echoed.
    let h = validate_subscription(&target(url.clone(), Schema::EventGrid))
        .await
        .unwrap();
    assert!(h.ok, "{h:?}");
    let req = &hook.wait_for(1).await[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/incomingCall?secret=s3");
    assert_eq!(req.header("aeg-event-type"), Some("SubscriptionValidation"));
    let events = parse_webhook_events(&req.body).unwrap();
    assert!(matches!(
        events[0].payload,
        WebhookPayload::SubscriptionValidation(_)
    ));
    // CloudEvents: OPTIONS with WebHook-Request-Origin, the origin echoed.
    let h = validate_subscription(&target(url.clone(), Schema::CloudEvents))
        .await
        .unwrap();
    assert!(h.ok, "{h:?}");
    let req = &hook.wait_for(2).await[1];
    assert_eq!(req.method, "OPTIONS");
    assert_eq!(
        req.header("webhook-request-origin"),
        Some("eventgrid.azure.net")
    );
    // An endpoint that does not do the handshakes fails them.
    hook.set_handshakes(false);
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        let h = validate_subscription(&target(url.clone(), schema))
            .await
            .unwrap();
        assert!(!h.ok, "{h:?}");
    }
    hook.script(&[202]);
    hook.set_handshakes(true);
    let h = validate_subscription(&target(url, Schema::EventGrid))
        .await
        .unwrap();
    assert!(!h.ok && h.status == Some(202), "202 is not accepted: {h:?}");
}

#[tokio::test]
async fn incoming_calls_in_both_schemas_for_every_callee_kind() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    let specs = [
        IncomingCallSpec::phone("+14255550123", "+18005550100"),
        IncomingCallSpec::to_acs_user(
            "+14255550123",
            "8:acs:11111111-2222-3333-4444-555555555555_0000-1",
        ),
        IncomingCallSpec::to_teams_resource_account(
            "+14255550123",
            "cc123456-5678-5678-1234-ccc123456789",
        ),
        IncomingCallSpec {
            to_as_unknown: true,
            ..IncomingCallSpec::to_teams_resource_account(
                "+14255550123",
                "cc123456-5678-5678-1234-ccc123456789",
            )
        },
    ];
    let mut n = 0;
    for schema in [Schema::EventGrid, Schema::CloudEvents] {
        for spec in &specs {
            let data = acs.incoming_call(spec.clone());
            let d =
                deliver_incoming_call(&target(hook.url("/hook"), schema), &acs.topic(), &data, 0)
                    .await
                    .unwrap();
            assert!(d.delivered);
            n += 1;
            let req = hook.wait_for(n).await.pop().unwrap();
            assert_eq!(req.header("aeg-event-type"), Some("Notification"));
            assert_eq!(req.header("aeg-delivery-count"), Some("0"));
            assert!(req.header("aeg-subscription-name").is_some());
            let events = parse_webhook_events(&req.body).unwrap();
            assert_eq!(events.len(), 1);
            let e = &events[0];
            assert_eq!(e.id, d.event_id);
            assert_eq!(e.event_type, "Microsoft.Communication.IncomingCall");
            let WebhookPayload::IncomingCall(got) = &e.payload else {
                panic!("{e:?}")
            };
            assert_eq!(**got, data);
            assert_eq!(
                e.subject.as_deref(),
                Some(format!("/caller/4:+14255550123/recipient/{}", data.to.raw_id()).as_str())
            );
            match schema {
                Schema::EventGrid => {
                    assert_eq!(e.schema, EventSchema::EventGrid);
                    assert!(req.body.starts_with(b"["));
                    assert_eq!(req.header("content-type"), Some("application/json"));
                }
                Schema::CloudEvents => {
                    assert_eq!(e.schema, EventSchema::CloudEvents);
                    assert!(req
                        .header("content-type")
                        .unwrap()
                        .starts_with("application/cloudevents+json"));
                }
            }
            let sip = got
                .custom_context
                .as_ref()
                .unwrap()
                .sip_headers
                .as_ref()
                .unwrap();
            assert!(sip.contains_key("X-MS-Custom-acs-sim"));
        }
    }
    // The Teams resource account callee, both shapes.
    let log = hook.log();
    let to = |i: usize| match &parse_webhook_events(&log[i].body).unwrap()[0].payload {
        WebhookPayload::IncomingCall(d) => d.to.clone(),
        _ => unreachable!(),
    };
    assert_eq!(to(2).kind, Some(IdentifierKind::MicrosoftTeamsApp));
    assert_eq!(to(3).kind, Some(IdentifierKind::Unknown));
    assert_eq!(
        to(3).raw_id.as_deref(),
        Some("28:orgid:cc123456-5678-5678-1234-ccc123456789")
    );
    assert_eq!(
        to(1).raw_id(),
        "8:acs:11111111-2222-3333-4444-555555555555_0000-1"
    );
    acs.shutdown().await;
}

#[tokio::test]
async fn retries_until_accepted_then_duplicates() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    hook.script(&[500, 503]);
    let data = acs.incoming_call(IncomingCallSpec::default());
    let d = deliver_incoming_call(
        &target(hook.url("/hook"), Schema::EventGrid),
        &acs.topic(),
        &data,
        2,
    )
    .await
    .unwrap();
    assert!(d.delivered && !d.dead_lettered);
    let statuses: Vec<_> = d
        .attempts
        .iter()
        .map(|a| (a.status, a.duplicate, a.delivery_count))
        .collect();
    assert_eq!(
        statuses,
        [
            (Some(500), false, 0),
            (Some(503), false, 1),
            (Some(200), false, 2),
            (Some(200), true, 3),
            (Some(200), true, 4)
        ]
    );
    let log = hook.wait_for(5).await;
    let counts: Vec<_> = log
        .iter()
        .map(|r| r.header("aeg-delivery-count").unwrap().to_owned())
        .collect();
    assert_eq!(counts, ["0", "1", "2", "3", "4"]);
    // Backoff: the retries waited at least 50 ms and 100 ms.
    assert!(log[1].at - log[0].at >= Duration::from_millis(50));
    assert!(log[2].at - log[1].at >= Duration::from_millis(100));
    // Every delivery is the same event (same id, same body).
    let ids: Vec<String> = log
        .iter()
        .map(|r| parse_webhook_events(&r.body).unwrap()[0].id.clone())
        .collect();
    assert!(ids.iter().all(|i| *i == d.event_id));
    assert!(log.iter().all(|r| r.body == log[0].body));
    acs.shutdown().await;
}

#[tokio::test]
async fn retries_are_bounded_and_400_is_not_retried() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    let t = target(hook.url("/hook"), Schema::CloudEvents);
    hook.script(&[500, 500, 500]);
    let data = acs.incoming_call(IncomingCallSpec::default());
    let d = deliver_incoming_call(&t, &acs.topic(), &data, 1)
        .await
        .unwrap();
    assert!(!d.delivered);
    assert_eq!(
        d.attempts.len(),
        3,
        "first attempt + 2 retries, no duplicates"
    );
    hook.script(&[400]);
    let d = deliver_incoming_call(&t, &acs.topic(), &data, 0)
        .await
        .unwrap();
    assert!(d.dead_lettered && !d.delivered);
    assert_eq!(d.attempts.len(), 1);
    // Nothing listening: connection errors are retried too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = deliver_incoming_call(
        &target(format!("http://{closed}/hook"), Schema::EventGrid),
        &acs.topic(),
        &data,
        0,
    )
    .await
    .unwrap();
    assert_eq!(d.attempts.len(), 3);
    assert!(d
        .attempts
        .iter()
        .all(|a| a.status.is_none() && a.error.is_some()));
    acs.shutdown().await;
}

#[tokio::test]
async fn a_slow_webhook_times_out_and_is_retried() {
    let acs = start_fake(test_config()).await;
    let hook = Receiver::start().await;
    hook.set_delay(Some(Duration::from_millis(400)));
    let t = EventGridTarget {
        attempt_timeout: Duration::from_millis(150),
        retry_delays: vec![Duration::from_millis(10)],
        ..EventGridTarget::new(hook.url("/hook"))
    };
    let data = acs.incoming_call(IncomingCallSpec::default());
    let d = deliver_incoming_call(&t, &acs.topic(), &data, 0)
        .await
        .unwrap();
    assert!(!d.delivered);
    assert_eq!(d.attempts.len(), 2);
    assert!(
        d.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("no response"),
        "{:?}",
        d.attempts[0]
    );
    hook.wait_for(2).await;
    acs.shutdown().await;
}
