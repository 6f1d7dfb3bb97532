//! PURE: inbound webhook payloads — Event Grid deliveries (docs/PROTOCOL.md §3.3, §7) and Call
//! Automation callback CloudEvents (§8).
//!
//! This module owns:
//!
//! * the two envelopes: [`EventGridEvent`] (Event Grid schema, always a JSON array) and
//!   [`CloudEvent`] (CloudEvents 1.0, one object or a batch array); both serialize to the wire
//!   shape, so the Event Grid emulator and the fake ACS build deliveries with them;
//! * [`parse_webhook_events`] for the incoming-call webhook: either schema →
//!   [`WebhookEvent`]s with a typed [`WebhookPayload`]: [`SubscriptionValidationEventData`]
//!   (answer with [`SubscriptionValidationResponse`]), [`IncomingCallEventData`], or anything
//!   else as JSON;
//! * [`parse_callbacks`] for the callback webhook: an array or a single CloudEvent →
//!   [`CallbackEvent`]s with a [`CallbackKind`] and typed common fields; both the 2024 envelope
//!   and the 2022/2023 one (`/<EventName>` appended to `source`, `data.type`) parse; unknown event
//!   types become [`CallbackKind::Unknown`]; [`CallbackEvent::to_cloud_event`] emits the 2024
//!   shape.
//!
//! Event type names are matched ASCII-case-insensitively; unknown fields are ignored (callback
//! `data` fields without a typed home are kept in [`CallbackEvent::extra`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::identifier::{string_enum, CommunicationIdentifierModel};
use super::rest::{CallParticipant, CustomCallingContext, RecordingKind, RecordingState};

/// Event Grid's subscription validation event type.
pub const EVENT_TYPE_SUBSCRIPTION_VALIDATION: &str =
    "Microsoft.EventGrid.SubscriptionValidationEvent";
/// Event Grid's subscription deletion event type.
pub const EVENT_TYPE_SUBSCRIPTION_DELETED: &str = "Microsoft.EventGrid.SubscriptionDeletedEvent";
/// The ACS incoming call event type.
pub const EVENT_TYPE_INCOMING_CALL: &str = "Microsoft.Communication.IncomingCall";
/// Prefix of every Call Automation callback `type`.
pub const CALLBACK_TYPE_PREFIX: &str = "Microsoft.Communication.";
/// Event Grid delivery header: `SubscriptionValidation`, `Notification` or `SubscriptionDeletion`.
pub const HEADER_AEG_EVENT_TYPE: &str = "aeg-event-type";
/// CloudEvents webhook validation (HTTP `OPTIONS`) request header.
pub const HEADER_WEBHOOK_REQUEST_ORIGIN: &str = "WebHook-Request-Origin";
/// CloudEvents webhook validation response header (echo the request origin).
pub const HEADER_WEBHOOK_ALLOWED_ORIGIN: &str = "WebHook-Allowed-Origin";
/// CloudEvents webhook validation optional response header (requests per minute, or `*`).
pub const HEADER_WEBHOOK_ALLOWED_RATE: &str = "WebHook-Allowed-Rate";

/// Longest error message kept in [`EventError`] (serde messages can quote whole values).
const MAX_ERROR_MESSAGE_LEN: usize = 200;

mod callbacks;
mod webhook;
pub use callbacks::*;
pub use webhook::*;

#[cfg(test)]
mod tests {
    use super::super::identifier::CommunicationIdentifier;
    use super::*;
    use serde_json::json;

    use crate::testvec::{bytes as vector_bytes, json as vector};

    fn one_callback(name: &str) -> CallbackEvent {
        let mut v = parse_callbacks(&vector_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.len(), 1, "{name}");
        v.remove(0)
    }

    /// `CallbackEvent` → CloudEvent → JSON → `CallbackEvent` is the identity, and the JSON is
    /// the vector's (as a single-element array).
    fn assert_round_trip(name: &str, e: &CallbackEvent) {
        let body = callbacks_body(std::slice::from_ref(e));
        let back = parse_callbacks(&body).unwrap();
        assert_eq!(back, vec![e.clone()], "{name}");
        let original = match vector(name) {
            Value::Array(a) => Value::Array(a),
            obj => Value::Array(vec![obj]),
        };
        let emitted: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(emitted, original, "{name}");
    }

    #[test]
    fn subscription_validation_vector() {
        let events = parse_webhook_events(&vector_bytes(
            "eventgrid_subscription_validation_event.json",
        ))
        .unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.schema, EventSchema::EventGrid);
        assert_eq!(e.id, "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66");
        assert_eq!(e.time.as_deref(), Some("2018-01-25T22:12:19.4556811Z"));
        let WebhookPayload::SubscriptionValidation(d) = &e.payload else {
            panic!("{:?}", e.payload)
        };
        assert_eq!(d.validation_code, "512d38b6-c7b8-40c8-89fe-f46f9e9622b6");
        assert!(d
            .validation_url
            .as_deref()
            .unwrap()
            .starts_with("https://rp-eastus2"));
        // The response body is exactly the documented one.
        assert_eq!(
            serde_json::to_value(d.response()).unwrap(),
            vector("eventgrid_subscription_validation_response.json")
        );
        // Building the same event for the emulator reproduces the vector.
        let built = EventGridEvent::subscription_validation(
            &e.id,
            "/subscriptions/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            "2018-01-25T22:12:19.4556811Z",
            d,
        );
        assert_eq!(
            serde_json::to_value(vec![built]).unwrap(),
            vector("eventgrid_subscription_validation_event.json")
        );
    }

    #[test]
    fn incoming_call_vector() {
        let bytes = vector_bytes("eventgrid_incoming_call_eventgrid_schema.json");
        let events = parse_webhook_events(&bytes).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event_type, EVENT_TYPE_INCOMING_CALL);
        assert_eq!(
            e.subject.as_deref(),
            Some("/caller/{caller-id}/recipient/{recipient-id}")
        );
        let WebhookPayload::IncomingCall(d) = &e.payload else {
            panic!("{:?}", e.payload)
        };
        assert_eq!(
            d.to.to_identifier(),
            CommunicationIdentifier::communication_user("{recipient-id}")
        );
        assert_eq!(d.from.raw_id.as_deref(), Some("{caller-id}"));
        assert_eq!(d.server_call_id.as_deref(), Some("{server-call-id}"));
        assert_eq!(d.caller_display_name.as_deref(), Some("VOIP Caller"));
        assert_eq!(d.incoming_call_context, "{incoming-call-contextValue}");
        assert_eq!(d.correlation_id.as_deref(), Some("correlationId"));
        let cc = d.custom_context.as_ref().unwrap();
        let sip = cc.sip_headers.as_ref().unwrap();
        assert_eq!(sip["userToUser"], "616d617a6f6e5f6368696;encoding=hex");
        assert_eq!(sip["X-MS-Custom-myheader1"], "35567842");
        assert_eq!(sip["X-MS-Custom-myheader2"], "customsipheadervalue");
        assert_eq!(
            cc.voip_headers.as_ref().unwrap()["customHeader"],
            "customValue"
        );
        assert_eq!(d.on_behalf_of_callee, None);

        // Round trip: the builder reproduces the delivered array exactly.
        let built = EventGridEvent::incoming_call(
            &e.id,
            "/subscriptions/{subscription-id}/resourceGroups/{group-name}/providers/Microsoft.Communication/communicationServices/{communication-services-resource-name}",
            "2023-04-04T17:18:42.5542219Z",
            d,
        );
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_value(vec![built]).unwrap(), original);
    }

    #[test]
    fn teams_resource_account_incoming_call_data() {
        let v = vector("eventgrid_incoming_call_data_teams_resource_account_tpe.json");
        let d: IncomingCallEventData = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(
            d.to.to_identifier(),
            CommunicationIdentifier::teams_app("cc123456-5678-5678-1234-ccc123456789")
        );
        assert_eq!(
            d.from.to_identifier(),
            CommunicationIdentifier::phone_number("+12065551212")
        );
        assert_eq!(d.caller_display_name.as_deref(), Some("+12065551212"));
        assert_eq!(d.incoming_call_context, "<CALL_CONTEXT VALUE>");
        assert_eq!(
            d.correlation_id.as_deref(),
            Some("2e0fa6fe-bf3e-4351-9beb-568add4f5315")
        );
        let cc = d.custom_context.as_ref().unwrap();
        assert_eq!(cc.sip_headers, None);
        assert_eq!(
            cc.voip_headers.as_ref().unwrap()["X-myCustomVoipHeaderName"],
            "myValue"
        );
        assert!(d.server_call_id.as_deref().unwrap().starts_with("aHR0cHM6"));
        assert_eq!(serde_json::to_value(&d).unwrap(), v);
        assert_eq!(
            d.subject(),
            "/caller/4:+12065551212/recipient/28:orgid:cc123456-5678-5678-1234-ccc123456789"
        );

        // The same data delivered as a CloudEvent (single object and batch).
        let ce = CloudEvent::incoming_call("ev1", "/subscriptions/s/x", "2025-01-01T00:00:00Z", &d);
        let single = serde_json::to_vec(&ce).unwrap();
        let batch = serde_json::to_vec(&vec![ce.clone(), ce]).unwrap();
        for (body, n) in [(single, 1), (batch, 2)] {
            let events = parse_webhook_events(&body).unwrap();
            assert_eq!(events.len(), n);
            for e in events {
                assert_eq!(e.schema, EventSchema::CloudEvents);
                assert_eq!(e.id, "ev1");
                assert_eq!(e.time.as_deref(), Some("2025-01-01T00:00:00Z"));
                assert_eq!(e.payload, WebhookPayload::IncomingCall(Box::new(d.clone())));
            }
        }
    }

    #[test]
    fn webhook_tolerance_and_errors() {
        // Unknown event type, extra fields, lower-case type.
        let body = json!([
            {"id": "1", "eventType": "Microsoft.Communication.CallEnded", "subject": "s",
             "data": {"x": 1}, "eventTime": "t", "dataVersion": "1.0", "futureField": true},
            {"id": "2", "eventType": "microsoft.communication.incomingcall", "subject": "s",
             "data": {"to": {"rawId": "4:+1"}, "from": {"rawId": "4:+2"}, "incomingCallContext": "c",
                      "newField": [1]},
             "eventTime": "t", "dataVersion": "1.0"}
        ]);
        let events = parse_webhook_events(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(events[0].payload, WebhookPayload::Other(json!({"x": 1})));
        let WebhookPayload::IncomingCall(d) = &events[1].payload else {
            panic!()
        };
        assert_eq!(d.incoming_call_context, "c");
        assert_eq!(parse_webhook_events(b"[]").unwrap(), vec![]);

        assert!(matches!(
            parse_webhook_events(b"{"),
            Err(EventError::Json(_))
        ));
        assert_eq!(
            parse_webhook_events(b"\"x\""),
            Err(EventError::NotAnEvent { index: 0 })
        );
        assert_eq!(
            parse_webhook_events(br#"[{"id":"1","eventType":"x"}, 3]"#),
            Err(EventError::NotAnEvent { index: 1 })
        );
        let e = parse_webhook_events(br#"[{"eventType":"x"}]"#).unwrap_err();
        assert!(
            matches!(e, EventError::InvalidEnvelope { index: 0, .. }),
            "{e}"
        );
        // IncomingCall without its context is refused.
        let e = parse_webhook_events(
            br#"[{"id":"1","eventType":"Microsoft.Communication.IncomingCall","data":{"to":{"rawId":"a"},"from":{"rawId":"b"}}}]"#,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "invalid_data");
        assert!(e.to_string().contains("incomingCallContext"), "{e}");
        // Huge values in error messages are bounded.
        let huge = format!(
            r#"[{{"id":"1","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{{"validationCode":["{}"]}}}}]"#,
            "x".repeat(100_000)
        );
        let e = parse_webhook_events(huge.as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 400, "{}", e.to_string().len());
    }

    #[test]
    fn media_streaming_callbacks() {
        let started = one_callback("callback_media_streaming_started.json");
        assert_eq!(started.kind, CallbackKind::MediaStreamingStarted);
        assert_eq!(
            started.raw_type,
            "Microsoft.Communication.MediaStreamingStarted"
        );
        assert_eq!(
            started.call_connection_id.as_deref(),
            Some("4c1f5600-a9c6-4343-8979-b638a98de98f")
        );
        assert_eq!(
            started.correlation_id.as_deref(),
            Some("30f0ad34-d615-4bf3-8476-5630ae7fc3db")
        );
        assert_eq!(
            started.operation_context.as_deref(),
            Some("startMediaStreamingContext")
        );
        let ri = started.result_information.as_ref().unwrap();
        assert_eq!((ri.code, ri.sub_code), (Some(200), Some(0)));
        assert_eq!(
            ri.message.as_deref(),
            Some("Action completed successfully.")
        );
        assert_eq!(started.succeeded(), Some(true));
        let u = started.media_streaming_update.as_ref().unwrap();
        assert_eq!(u.content_type.as_deref(), Some("Audio"));
        assert!(u.is_audio());
        assert_eq!(
            u.media_streaming_status,
            Some(MediaStreamingStatus::MediaStreamingStarted)
        );
        assert_eq!(
            u.media_streaming_status_details,
            Some(MediaStreamingStatusDetails::SubscriptionStarted)
        );
        assert_eq!(started.version.as_deref(), Some("2024-06-15-preview"));
        assert_eq!(
            started.public_event_type.as_deref(),
            Some("Microsoft.Communication.MediaStreamingStarted")
        );
        assert_eq!(
            started.time.as_deref(),
            Some("2024-05-02T11:20:42.9110236+00:00")
        );
        assert!(started.extra.is_empty(), "{:?}", started.extra);
        assert_round_trip("callback_media_streaming_started.json", &started);

        let stopped = one_callback("callback_media_streaming_stopped.json");
        assert_eq!(stopped.kind, CallbackKind::MediaStreamingStopped);
        assert_eq!(
            stopped
                .media_streaming_update
                .as_ref()
                .unwrap()
                .media_streaming_status_details,
            Some(MediaStreamingStatusDetails::SubscriptionStopped)
        );
        assert_round_trip("callback_media_streaming_stopped.json", &stopped);

        let failed = one_callback("callback_media_streaming_failed.json");
        assert_eq!(failed.kind, CallbackKind::MediaStreamingFailed);
        let ri = failed.result_information.as_ref().unwrap();
        assert_eq!((ri.code, ri.sub_code), (Some(500), Some(8603)));
        assert_eq!(failed.succeeded(), Some(false));
        let u = failed.media_streaming_update.as_ref().unwrap();
        assert_eq!(
            u.media_streaming_status,
            Some(MediaStreamingStatus::MediaStreamingFailed)
        );
        assert_eq!(
            u.media_streaming_status_details,
            Some(MediaStreamingStatusDetails::StreamConnectionUnsuccessful)
        );
        assert_eq!(
            failed.call_connection_id.as_deref(),
            Some("761f5600-43ab-48a0-bbad-ecc5ad5b15bb")
        );
        assert_round_trip("callback_media_streaming_failed.json", &failed);
    }

    #[test]
    fn call_connected_2022_single_object() {
        let e = one_callback("callback_call_connected_2022.json");
        assert_eq!(e.kind, CallbackKind::CallConnected);
        assert_eq!(
            e.call_connection_id.as_deref(),
            Some("401f3500-62bd-46a9-8c09-9e1b06caca01")
        );
        assert_eq!(
            e.correlation_id.as_deref(),
            Some("ebd8bf1f-0794-494f-bdda-913042c06ef7")
        );
        assert_eq!(
            e.source,
            "calling/callConnections/401f3500-62bd-46a9-8c09-9e1b06caca01/CallConnected"
        );
        assert_eq!(e.extra.get("type"), Some(&json!("callConnected")));
        assert_eq!(e.result_information, None);
        assert_eq!(e.succeeded(), None);
        assert_round_trip("callback_call_connected_2022.json", &e);
    }

    #[test]
    fn participants_updated_2022() {
        let e = one_callback("callback_participants_updated_2022.json");
        assert_eq!(e.kind, CallbackKind::ParticipantsUpdated);
        let ps = e.participants.as_ref().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(
            ps[0].identifier.to_identifier(),
            CommunicationIdentifier::communication_user(
                "8:acs:816df1ca-971b-44d7-b8b1-8fba90748500_00000013-2ff6-dd51-54b7-a43a0d001998"
            )
        );
        assert_eq!(ps[1].is_muted, Some(false));
        assert_eq!(ps[1].is_on_hold, Some(false));
        assert_eq!(e.sequence_number, None);
        assert_round_trip("callback_participants_updated_2022.json", &e);
    }

    #[test]
    fn recording_state_changed() {
        let e = one_callback("callback_recording_state_changed.json");
        assert_eq!(e.kind, CallbackKind::RecordingStateChanged);
        assert_eq!(e.recording_id.as_deref(), Some("recordingId"));
        assert_eq!(e.recording_state, Some(RecordingState::Active));
        assert_eq!(
            e.start_date_time.as_deref(),
            Some("2022-08-11T23:42:45.4394211+00:00")
        );
        assert_eq!(e.call_connection_id.as_deref(), Some("callConnectionId"));
        assert_eq!(e.server_call_id.as_deref(), Some("serverCallId"));
        assert!(e.source.starts_with("calling/recordings/"));
        assert_round_trip("callback_recording_state_changed.json", &e);
    }

    #[test]
    fn play_failed_and_remove_participant() {
        let e = one_callback("callback_play_failed.json");
        assert_eq!(e.kind, CallbackKind::PlayFailed);
        let ri = e.result_information.as_ref().unwrap();
        assert_eq!((ri.code, ri.sub_code), (Some(400), Some(8536)));
        assert_eq!(
            ri.message.as_deref(),
            Some("Action failed, file could not be downloaded.")
        );
        assert_eq!(e.call_connection_id.as_deref(), Some("callConnectionId"));
        assert_round_trip("callback_play_failed.json", &e);

        let e = one_callback("callback_remove_participant_succeeded.json");
        assert_eq!(e.kind, CallbackKind::RemoveParticipantSucceeded);
        assert_eq!(e.operation_context.as_deref(), Some("context"));
        let p = e.participant.as_ref().unwrap();
        assert_eq!(p.raw_id.as_deref(), Some("rawId"));
        assert_eq!(p.phone_number.as_ref().unwrap().value, "value");
        assert_eq!(
            e.correlation_id.as_deref(),
            Some("b880bd5a-1916-470a-b43d-aabf3caff91c")
        );
        assert_round_trip("callback_remove_participant_succeeded.json", &e);
    }

    #[test]
    fn every_callback_vector_parses() {
        let dir = crate::testvec::dir();
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !(name.starts_with("callback_") && name.ends_with(".json")) {
                continue;
            }
            n += 1;
            let e = one_callback(&name);
            assert!(!matches!(e.kind, CallbackKind::Unknown(_)), "{name}");
            assert!(e.call_connection_id.is_some(), "{name}");
            assert_round_trip(&name, &e);
        }
        assert!(n >= 8, "{n}");
    }

    #[test]
    fn callback_kinds() {
        for k in CallbackKind::KNOWN {
            assert_eq!(&CallbackKind::from_type(&k.event_type()), k);
            assert_eq!(&CallbackKind::from_name(&k.name().to_ascii_lowercase()), k);
        }
        assert_eq!(CallbackKind::KNOWN.len(), 44);
        assert_eq!(
            CallbackKind::from_type("microsoft.communication.callDisconnected"),
            CallbackKind::CallDisconnected
        );
        assert_eq!(
            CallbackKind::from_type("Microsoft.Communication.DialogStarted"),
            CallbackKind::Unknown("DialogStarted".into())
        );
        assert_eq!(
            CallbackKind::from_type("Custom.Thing"),
            CallbackKind::Unknown("Custom.Thing".into())
        );
        assert_eq!(
            CallbackKind::from_type(""),
            CallbackKind::Unknown(String::new())
        );
        // A multi-byte char where the prefix would end must not panic.
        let _ = CallbackKind::from_type("Microsoft.Communicatioé.X");
        assert_eq!(CallbackKind::CallConnected.to_string(), "CallConnected");
    }

    #[test]
    fn unknown_callback_types_and_fields_are_tolerated() {
        let body = json!([
            {"id": "a", "source": "calling/callConnections/c1", "type": "Microsoft.Communication.RecognizeCompleted",
             "data": {"callConnectionId": "c1", "recognitionType": "dtmf",
                      "dtmfResult": {"tones": ["one", "two"]}},
             "specversion": "1.0"},
            {"id": "b", "source": "calling/callConnections/c1", "type": "Microsoft.Communication.BrandNewEvent",
             "data": {"whatever": {"deep": true}}, "specversion": "1.0", "time": "t"},
            {"id": "c", "source": "calling/callConnections/c2/CallDisconnected",
             "type": "Microsoft.Communication.CallDisconnected"}
        ]);
        let events = parse_callbacks(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].kind, CallbackKind::RecognizeCompleted);
        assert_eq!(events[0].extra["dtmfResult"]["tones"][1], "two");
        assert_eq!(
            events[1].kind,
            CallbackKind::Unknown("BrandNewEvent".into())
        );
        assert_eq!(events[1].extra["whatever"], json!({"deep": true}));
        // callConnectionId from the source when data has none (and data is absent).
        assert_eq!(events[1].call_connection_id.as_deref(), Some("c1"));
        assert_eq!(events[2].call_connection_id.as_deref(), Some("c2"));
        assert_eq!(events[2].kind, CallbackKind::CallDisconnected);

        // Errors.
        assert!(matches!(parse_callbacks(b"nope"), Err(EventError::Json(_))));
        assert_eq!(parse_callbacks(b"[]").unwrap(), vec![]);
        assert_eq!(
            parse_callbacks(b"[1]"),
            Err(EventError::NotAnEvent { index: 0 })
        );
        assert_eq!(
            parse_callbacks(br#"[{"id":"a","type":"x"}, null]"#),
            Err(EventError::NotAnEvent { index: 1 })
        );
        assert!(matches!(
            parse_callbacks(br#"{"id":"a"}"#),
            Err(EventError::InvalidEnvelope { index: 0, .. })
        ));
        assert!(matches!(
            parse_callbacks(
                br#"{"id":"a","type":"Microsoft.Communication.CallConnected","data":"x"}"#
            ),
            Err(EventError::InvalidData { .. })
        ));
        assert!(matches!(
            parse_callbacks(
                br#"{"id":"a","type":"Microsoft.Communication.PlayFailed","data":{"resultInformation":{"code":"400"}}}"#
            ),
            Err(EventError::InvalidData { .. })
        ));
    }

    #[test]
    fn callback_builder_for_the_fake_acs() {
        let e = CallbackEvent {
            correlation_id: Some("corr".into()),
            operation_context: Some("ctx".into()),
            result_information: Some(ResultInformation {
                code: Some(500),
                sub_code: Some(8603),
                message: Some("Action failed, not able to establish websocket connection.".into()),
            }),
            media_streaming_update: Some(MediaStreamingUpdate {
                content_type: Some("Audio".into()),
                media_streaming_status: Some(MediaStreamingStatus::MediaStreamingFailed),
                media_streaming_status_details: Some(
                    MediaStreamingStatusDetails::StreamConnectionUnsuccessful,
                ),
            }),
            time: Some("2024-05-02T12:38:31.242039+00:00".into()),
            ..CallbackEvent::new(CallbackKind::MediaStreamingFailed, "ev-1", "call-1")
        };
        let body = callbacks_body(std::slice::from_ref(&e));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!([{
                "id": "ev-1",
                "source": "calling/callConnections/call-1",
                "type": "Microsoft.Communication.MediaStreamingFailed",
                "data": {
                    "callConnectionId": "call-1",
                    "correlationId": "corr",
                    "operationContext": "ctx",
                    "resultInformation": {"code": 500, "subCode": 8603,
                        "message": "Action failed, not able to establish websocket connection."},
                    "mediaStreamingUpdate": {"contentType": "Audio",
                        "mediaStreamingStatus": "mediaStreamingFailed",
                        "mediaStreamingStatusDetails": "streamConnectionUnsuccessful"}
                },
                "time": "2024-05-02T12:38:31.242039+00:00",
                "specversion": "1.0",
                "datacontenttype": "application/json",
                "subject": "calling/callConnections/call-1"
            }])
        );
        assert_eq!(parse_callbacks(&body).unwrap(), vec![e]);
    }
}
