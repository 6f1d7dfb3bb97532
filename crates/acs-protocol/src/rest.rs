//! PURE: the ACS Call Automation REST API bodies and routes (docs/PROTOCOL.md §4, §11).
//!
//! This module owns:
//!
//! * request and response bodies (camelCase, absent optional fields are not serialized) for
//!   answer / create / reject / redirect, participants (add, remove, transfer, mute, cancel add,
//!   list), hold / unhold, DTMF (send, continuous recognition start/stop, [`DtmfTone`]), media
//!   streaming start/stop, recording start and its state, and
//!   [`CallConnectionProperties`]; [`MediaStreamingOptions`] and [`TranscriptionOptions`] (the
//!   `transportType: "websocket"` shapes of §4.3);
//! * the ACS error body `{"error":{"code","message",…}}` as [`AcsError`];
//! * [`AcsOperation`]: every route's method, path, metric label, success statuses and whether it
//!   takes Repeatability headers (the §4.1 table), plus [`AcsOperation::parse`] so a fake ACS can
//!   route a request to an operation;
//! * Teams Phone extensibility server pieces (§7, §11): the Teams user token exchange, the Teams
//!   extension assignment, and Microsoft Graph resource accounts.
//!
//! Bodies are faithful: a request deserializes and serializes back to the same JSON (ignoring
//! `null`s and unknown fields), so the gateway and the fake ACS agree on one wire format.
//! Identifiers are kept as [`CommunicationIdentifierModel`] for that reason; convert with
//! [`CommunicationIdentifierModel::to_identifier`] / `From<&CommunicationIdentifier>`.
//! String enums accept any casing and keep unknown values (`Other`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::identifier::{
    string_enum, CommunicationIdentifier, CommunicationIdentifierModel,
    CommunicationUserIdentifierModel, IdentifierError, MicrosoftTeamsAppIdentifierModel,
    PhoneNumberIdentifierModel,
};

/// Call Automation `api-version` the gateway uses by default: what the official SDKs 1.6.0
/// (JS `@azure/communication-call-automation`, Python `azure-communication-callautomation`)
/// send. Against the 2025-06-15 bodies this crate was written for, 2026-03-12 (per the JS 1.6.0
/// generated mappers and the spec's 2026-03-12 examples) changes nothing the gateway sends: same
/// request and response fields, routes, success statuses and Repeatability operations. It
/// adds `participants:moveHere` (not used here), makes `teamsPhoneCallDetails` of
/// `customCallingContext` stable, and `teamsExtensionUser.resourceId` is required (the operator
/// API always sends it). `enableLoopbackAudio` is preview-only (never set by the gateway).
pub const CALL_AUTOMATION_API_VERSION: &str = "2026-03-12";
/// Identity `api-version` of the Teams user token exchange.
pub const IDENTITY_API_VERSION: &str = "2023-10-01";
/// `api-version` of the Teams extension assignment API.
pub const TEAMS_EXTENSION_API_VERSION: &str = "2025-06-30";
/// Microsoft Graph (beta) list of Teams resource accounts (delegated
/// `TeamsResourceAccount.Read.All`); add `?$filter=appId eq '<app id>'` to narrow it.
pub const GRAPH_RESOURCE_ACCOUNTS_URL: &str =
    "https://graph.microsoft.com/beta/admin/teams/resourceAccounts";
/// Content type of every JSON body.
pub const CONTENT_TYPE_JSON: &str = "application/json";

mod enums;
mod operations;
mod requests;
mod responses;
mod teams;
pub use enums::*;
pub use operations::*;
pub use requests::*;
pub use responses::*;
pub use teams::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    use crate::testvec::json as vector;

    /// Removes `null` members recursively: `null` and absent mean the same for optional fields.
    fn strip_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
            other => other.clone(),
        }
    }

    /// Deserializes `v` as `T`, serializes it back, and checks the JSON is the same.
    fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> T {
        let t: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{e}: {}", serde_json::to_string(v).unwrap()));
        assert_eq!(serde_json::to_value(&t).unwrap(), strip_nulls(v));
        t
    }

    #[test]
    fn answer_call_vector() {
        let v = vector("rest_answer_call_2025-06-15.json");
        let req: AnswerCallRequest = round_trip(&v["parameters"]["answerCallRequest"]);
        assert_eq!(req.callback_uri, "https://app.contoso.com/callback");
        assert_eq!(req.operation_context.as_deref(), Some("operationContext"));
        assert_eq!(req.answered_by.as_ref().unwrap().id, "+11234567890");
        let m = req.media_streaming_options.as_ref().unwrap();
        assert_eq!(m.transport_type, StreamingTransportType::Websocket);
        assert_eq!(m.audio_channel_type, MediaStreamingAudioChannelType::Mixed);
        assert_eq!(m.content_type, Some(MediaStreamingContentType::Audio));
        assert_eq!(m.audio_format, Some(AudioFormat::Pcm16KMono));
        assert_eq!(m.start_media_streaming, Some(true));
        assert_eq!(m.enable_bidirectional, Some(true));
        assert_eq!(m.enable_dtmf_tones, None);
        let t = req.transcription_options.as_ref().unwrap();
        assert_eq!(t.locale, "en-US");
        assert_eq!(t.speech_model_endpoint_id.as_deref(), Some("string"));
        assert_eq!(
            req.call_intelligence_options
                .as_ref()
                .unwrap()
                .cognitive_services_endpoint
                .as_deref(),
            Some("string")
        );
        // The example's transportUrl is "string", which a fake ACS refuses.
        assert!(req.validate().is_err());

        let resp: CallConnectionProperties = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(
            resp.call_connection_id.as_deref(),
            Some("18dea47f-b081-4107-9a5c-4300819d2c6c")
        );
        assert_eq!(
            resp.call_connection_state,
            Some(CallConnectionState::Connected)
        );
        let sub = resp.media_streaming_subscription.as_ref().unwrap();
        assert_eq!(sub.state, Some(SubscriptionState::Active));
        assert_eq!(
            sub.subscribed_content_types,
            Some(vec![MediaStreamingContentType::Audio])
        );
        assert_eq!(resp.answered_for.as_ref().unwrap().value, "+11234567890");
        assert_eq!(
            resp.targets.as_ref().unwrap()[0].to_identifier(),
            CommunicationIdentifier::communication_user(
                "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_0f50d091-5bd3-448b-884d-44be7037d9b9"
            )
        );
        assert_eq!(
            resp.source.as_ref().unwrap().kind,
            Some(super::super::identifier::IdentifierKind::CommunicationUser)
        );
    }

    #[test]
    fn create_call_vector() {
        let v = vector("rest_create_call_2025-06-15.json");
        let req: CreateCallRequest = round_trip(&v["parameters"]["createCallRequest"]);
        assert_eq!(req.targets.len(), 1);
        assert_eq!(
            req.media_streaming_options
                .as_ref()
                .unwrap()
                .enable_dtmf_tones,
            Some(true)
        );
        let resp: CallConnectionProperties = round_trip(&v["responses"]["201"]["body"]);
        assert_eq!(
            resp.transcription_subscription
                .unwrap()
                .subscribed_result_types,
            Some(vec!["final".to_owned()])
        );
    }

    #[test]
    fn reject_call_vector() {
        let v = vector("rest_reject_call_2025-06-15.json");
        let req: RejectCallRequest = round_trip(&v["parameters"]["rejectCallRequest"]);
        assert!(req.incoming_call_context.starts_with("<elided"));
        assert_eq!(req.call_reject_reason, None);
        req.validate().unwrap();
        let busy: RejectCallRequest =
            round_trip(&json!({"incomingCallContext": "c", "callRejectReason": "busy"}));
        assert_eq!(busy.call_reject_reason, Some(CallRejectReason::Busy));
        assert_eq!(
            RejectCallRequest {
                incoming_call_context: " ".into(),
                call_reject_reason: None
            }
            .validate(),
            Err(RequestError::Invalid {
                field: "incomingCallContext",
                problem: "must not be empty"
            })
        );
    }

    #[test]
    fn add_participant_vector() {
        let v = vector("rest_add_participant_2025-05-15.json");
        let req: AddParticipantRequest = round_trip(&v["parameters"]["addParticipantRequest"]);
        assert_eq!(
            req.participant_to_add.to_identifier(),
            CommunicationIdentifier::communication_user(
                "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_ae9e3307-f56e-44be-8934-80a63f080538"
            )
        );
        assert_eq!(
            req.source_caller_id_number.as_ref().unwrap().value,
            "+18440123456"
        );
        assert_eq!(
            req.operation_callback_uri.as_deref(),
            Some("https://app.contoso.com/callback")
        );
        req.validate().unwrap();
        let resp: AddParticipantResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            resp.invitation_id.as_deref(),
            Some("7b4244f8-d2ff-46d1-a629-4f9fb5f73d40")
        );
        assert_eq!(resp.participant.as_ref().unwrap().is_muted, Some(false));
        assert_eq!(resp.participant.as_ref().unwrap().is_on_hold, None);
    }

    #[test]
    fn add_participant_builders_and_validation() {
        // A Teams Phone extensibility agent and a PSTN user.
        let agent = CommunicationIdentifier::teams_extension_user("u", "t", "r");
        let mut req = AddParticipantRequest::new(&agent);
        req.invitation_timeout_in_seconds = Some(30);
        req.operation_context = Some("add-agent".into());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({
                "participantToAdd": {"kind":"teamsExtensionUser","rawId":"8:acs:r_t_u",
                    "teamsExtensionUser":{"userId":"u","tenantId":"t","resourceId":"r","cloud":"public"}},
                "invitationTimeoutInSeconds": 30,
                "operationContext": "add-agent"
            })
        );
        req.validate().unwrap();
        req.invitation_timeout_in_seconds = Some(181);
        assert!(matches!(
            req.validate(),
            Err(RequestError::Invalid {
                field: "invitationTimeoutInSeconds",
                ..
            })
        ));
        let pstn =
            AddParticipantRequest::new(&CommunicationIdentifier::phone_number("+14255550123"));
        assert_eq!(
            serde_json::to_value(&pstn).unwrap()["participantToAdd"]["rawId"],
            "4:+14255550123"
        );
        // Invalid identifier union.
        let bad: AddParticipantRequest = serde_json::from_value(json!({
            "participantToAdd": {"communicationUser": {"id": "8:acs:a"}, "phoneNumber": {"value": "+1"}}
        }))
        .unwrap();
        assert!(matches!(
            bad.validate(),
            Err(RequestError::Identifier {
                field: "participantToAdd",
                ..
            })
        ));
        // A request without its required field does not deserialize.
        assert!(
            serde_json::from_value::<AddParticipantRequest>(json!({"operationContext": "x"}))
                .is_err()
        );
    }

    #[test]
    fn transfer_vector() {
        let v = vector("rest_transfer_to_participant_2025-06-15.json");
        let req: TransferToParticipantRequest =
            round_trip(&v["parameters"]["transferToParticipantRequest"]);
        assert!(req.transferee.is_some());
        assert_eq!(req.operation_context.as_deref(), Some("trasferring call"));
        let resp: OperationContextResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(resp.operation_context.as_deref(), Some("trasferring call"));
    }

    #[test]
    fn get_call_and_participants_vectors() {
        let v = vector("rest_get_call_2025-06-15.json");
        let resp: CallConnectionProperties = round_trip(&v["responses"]["200"]["body"]);
        let targets = resp.targets.unwrap();
        assert_eq!(
            targets[1].to_identifier(),
            CommunicationIdentifier::phone_number("+14250123456")
        );
        let v = vector("rest_get_participants_2025-06-15.json");
        let resp: GetParticipantsResponse = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(resp.value.len(), 1);
        assert_eq!(resp.value[0].is_muted, Some(true));
        assert_eq!(resp.next_link.as_deref(), Some("string"));
    }

    /// The 2026-03-12 examples (the version the SDKs 1.6.0 send) of the operations the operator
    /// API reaches: each request body round-trips through its type and validates.
    #[test]
    fn vectors_2026_03_12() {
        let acs_user = super::super::identifier::parse_raw_id(
            "8:acs:b9614373-fd0b-480c-8fd2-cb58b70eab9f_da7be3a9-8788-42a6-85c6-56b2cf784fce",
        );
        let v = vector("rest_hold_2026-03-12.json");
        assert_eq!(v["parameters"]["api-version"], CALL_AUTOMATION_API_VERSION);
        let req: HoldRequest = round_trip(&v["parameters"]["holdRequest"]);
        req.validate().unwrap();
        assert_eq!(
            req.play_source_info,
            Some(PlaySource::file("https://some.file.azure.com/sample.wav"))
        );
        assert!(v["responses"]["200"].as_object().unwrap().is_empty());
        let v = vector("rest_unhold_2026-03-12.json");
        let req: UnholdRequest = round_trip(&v["parameters"]["unholdRequest"]);
        identifier("targetParticipant", &req.target_participant).unwrap();

        let v = vector("rest_send_dtmf_tones_2026-03-12.json");
        let req: SendDtmfTonesRequest = round_trip(&v["parameters"]["sendDtmfTonesRequest"]);
        req.validate().unwrap();
        assert_eq!(req.tones, vec![DtmfTone::Zero]);
        assert_eq!(req.target_participant.to_identifier(), acs_user);
        let resp: OperationContextResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(resp.operation_context, req.operation_context);

        for name in [
            "rest_start_continuous_dtmf_recognition_2026-03-12.json",
            "rest_stop_continuous_dtmf_recognition_2026-03-12.json",
        ] {
            let v = vector(name);
            let req: ContinuousDtmfRecognitionRequest =
                round_trip(&v["parameters"]["continuousDtmfRecognitionRequest"]);
            assert_eq!(req.target_participant.to_identifier(), acs_user, "{name}");
        }

        let v = vector("rest_mute_2026-03-12.json");
        let req: MuteParticipantsRequest = round_trip(&v["parameters"]["muteParticipantsRequest"]);
        assert_eq!(req.target_participants[0].to_identifier(), acs_user);
        let _: OperationContextResponse = round_trip(&v["responses"]["200"]["body"]);

        let v = vector("rest_cancel_add_participant_2026-03-12.json");
        let req: CancelAddParticipantRequest =
            round_trip(&v["parameters"]["cancelAddParticipantRequest"]);
        let resp: CancelAddParticipantResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            resp.invitation_id.as_deref(),
            Some(req.invitation_id.as_str())
        );
    }

    #[test]
    fn dtmf_tones_and_play_sources() {
        let keys = "0123456789ABCD#*";
        let tones: Vec<DtmfTone> = keys
            .chars()
            .map(|c| DtmfTone::from_key(c).unwrap())
            .collect();
        assert_eq!(
            serde_json::to_string(&tones[10..]).unwrap(),
            r#"["a","b","c","d","pound","asterisk"]"#
        );
        let back: String = tones.iter().map(|t| t.key().unwrap()).collect();
        assert_eq!(back, keys);
        assert_eq!(DtmfTone::from_key('b'), Some(DtmfTone::B));
        assert_eq!(DtmfTone::from_key('x'), None);
        assert_eq!(DtmfTone::parse("hash").key(), None);

        let target: CommunicationIdentifierModel =
            (&CommunicationIdentifier::phone_number("+14255550123")).into();
        let mut req = SendDtmfTonesRequest {
            tones: vec![DtmfTone::One; MAX_DTMF_TONES],
            target_participant: target.clone(),
            operation_context: None,
            operation_callback_uri: None,
        };
        req.validate().unwrap();
        req.tones.push(DtmfTone::Two);
        assert!(req.validate().is_err(), "19 tones");
        req.tones.clear();
        assert!(req.validate().is_err(), "no tones");
        req.tones = vec![DtmfTone::Other("hash".into())];
        assert!(req.validate().is_err(), "unknown tone");

        let mut hold = HoldRequest {
            target_participant: target,
            play_source_info: Some(PlaySource::file("ftp://x/y.wav")),
            operation_context: None,
            operation_callback_uri: None,
        };
        assert!(hold.validate().is_err(), "file uri must be http(s)");
        hold.play_source_info = Some(PlaySource {
            file: None,
            ..PlaySource::file("https://x/y.wav")
        });
        assert!(hold.validate().is_err(), "file kind without file");
        hold.play_source_info = None;
        hold.validate().unwrap();
        assert_eq!(
            serde_json::to_value(&hold).unwrap(),
            serde_json::json!({"targetParticipant": {"kind": "phoneNumber", "rawId": "4:+14255550123", "phoneNumber": {"value": "+14255550123"}}})
        );
    }

    #[test]
    fn media_streaming_vectors() {
        let v = vector("rest_start_media_streaming_2025-05-15.json");
        let req: StartMediaStreamingRequest =
            round_trip(&v["parameters"]["startMediaStreamingRequest"]);
        assert_eq!(req, StartMediaStreamingRequest::default());
        assert_eq!(serde_json::to_string(&req).unwrap(), "{}");
        let v = vector("rest_stop_media_streaming_2025-06-15.json");
        let req: StopMediaStreamingRequest =
            round_trip(&v["parameters"]["stopMediaStreamingRequest"]);
        assert_eq!(req, StopMediaStreamingRequest::default());
        let with: StartMediaStreamingRequest =
            round_trip(&json!({"operationContext": "ctx", "operationCallbackUri": "https://x/cb"}));
        assert_eq!(with.operation_context.as_deref(), Some("ctx"));
    }

    #[test]
    fn start_recording_vectors() {
        let v = vector("rest_start_recording_call_connection_id_2025-08-15-preview.json");
        let req: StartCallRecordingRequest = round_trip(&v["parameters"]["startCallRecording"]);
        assert_eq!(
            req.call_connection_id.as_deref(),
            Some("0400a480-ab14-4f1a-bce6-9041d4e55959")
        );
        assert_eq!(req.call_locator, None);
        assert_eq!(req.recording_content_type, None);
        assert_eq!(req.pause_on_start, Some(false));
        req.validate().unwrap();
        let r200: RecordingStateResponse = round_trip(&v["responses"]["200"]["body"]);
        assert_eq!(r200.recording_state, Some(RecordingState::Inactive));
        assert_eq!(r200.recording_kind, Some(RecordingKind::TeamsCompliance));
        let r202: RecordingStateResponse = round_trip(&v["responses"]["202"]["body"]);
        assert_eq!(
            r202.recording_kind,
            Some(RecordingKind::AzureCommunicationServices)
        );

        let v = vector("rest_start_recording_call_locator_2025-05-15.json");
        let req: StartCallRecordingRequest = round_trip(&v["parameters"]["startCallRecording"]);
        let loc = req.call_locator.as_ref().unwrap();
        assert_eq!(loc.kind, Some(CallLocatorKind::ServerCallLocator));
        assert!(loc
            .server_call_id
            .as_deref()
            .unwrap()
            .starts_with("aHR0cHM6"));
        assert_eq!(
            req.external_storage
                .as_ref()
                .unwrap()
                .recording_storage_kind,
            RecordingStorageKind::AzureBlobStorage
        );
        req.validate().unwrap();
        round_trip::<RecordingStateResponse>(&v["responses"]["200"]["body"]);

        // §11 shape: by call connection id, audio, unmixed, wav.
        let ours = StartCallRecordingRequest {
            call_connection_id: Some("c1".into()),
            recording_content_type: Some(RecordingContentType::Audio),
            recording_channel_type: Some(RecordingChannelType::Unmixed),
            recording_format_type: Some(RecordingFormatType::Wav),
            recording_state_callback_uri: Some("https://gw/callbacks/t".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&ours).unwrap(),
            json!({"callConnectionId":"c1","recordingStateCallbackUri":"https://gw/callbacks/t",
                   "recordingContentType":"audio","recordingChannelType":"unmixed","recordingFormatType":"wav"})
        );
        ours.validate().unwrap();
        let both = StartCallRecordingRequest {
            call_locator: Some(CallLocator::default()),
            ..ours.clone()
        };
        assert!(both.validate().is_err());
        assert!(StartCallRecordingRequest::default().validate().is_err());
        let bad_channel: StartCallRecordingRequest = serde_json::from_value(json!({
            "callConnectionId": "c1",
            "channelAffinity": [{"channel": 5, "participant": {"rawId": "4:+1"}}]
        }))
        .unwrap();
        assert!(bad_channel.validate().is_err());
    }

    #[test]
    fn media_streaming_options_shape_and_casing() {
        let opts = MediaStreamingOptions {
            start_media_streaming: Some(true),
            enable_bidirectional: Some(true),
            audio_format: Some(AudioFormat::Pcm24KMono),
            enable_dtmf_tones: Some(true),
            ..MediaStreamingOptions::websocket(
                "wss://host/ws/tok",
                MediaStreamingAudioChannelType::Mixed,
            )
        };
        // Exactly the §4.3 example.
        assert_eq!(
            serde_json::to_value(&opts).unwrap(),
            json!({"transportType":"websocket","transportUrl":"wss://host/ws/tok",
                   "contentType":"audio","audioChannelType":"mixed","startMediaStreaming":true,
                   "enableBidirectional":true,"audioFormat":"pcm24KMono","enableDtmfTones":true})
        );
        opts.validate().unwrap();
        // JS docs spell "Pcm24KMono"; the 2025-05-15 example adds "kind". Both are accepted.
        let v: MediaStreamingOptions = serde_json::from_value(json!({
            "kind": "websocket", "transportType": "WebSocket", "transportUrl": "wss://h/ws",
            "audioChannelType": "Unmixed", "audioFormat": "Pcm24KMono", "contentType": "Audio"
        }))
        .unwrap();
        assert_eq!(v.transport_type, StreamingTransportType::Websocket);
        assert_eq!(
            v.audio_channel_type,
            MediaStreamingAudioChannelType::Unmixed
        );
        assert_eq!(v.audio_format.as_ref().unwrap().sample_rate(), Some(24_000));
        assert_eq!(v.content_type, Some(MediaStreamingContentType::Audio));
        // Unknown enum values are kept.
        let v: MediaStreamingOptions = serde_json::from_value(json!({
            "transportType": "quic", "audioChannelType": "mixed", "audioFormat": "opus48K"
        }))
        .unwrap();
        assert_eq!(
            v.transport_type,
            StreamingTransportType::Other("quic".into())
        );
        assert_eq!(v.audio_format.as_ref().unwrap().sample_rate(), None);
        assert_eq!(serde_json::to_value(&v).unwrap()["audioFormat"], "opus48K");
        assert!(v.validate().is_err()); // no transportUrl
                                        // Missing the required channel type.
        assert!(serde_json::from_value::<MediaStreamingOptions>(
            json!({"transportType": "websocket"})
        )
        .is_err());
        let http =
            MediaStreamingOptions::websocket("https://h/ws", MediaStreamingAudioChannelType::Mixed);
        assert!(http.validate().is_err());
    }

    #[test]
    fn answer_request_builder_and_validation() {
        let mut req = AnswerCallRequest::new("ctx", "https://gw.example/callbacks/tok");
        req.media_streaming_options = Some(MediaStreamingOptions::websocket(
            "wss://gw.example/ws/tok",
            MediaStreamingAudioChannelType::Unmixed,
        ));
        req.validate().unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["incomingCallContext"], "ctx");
        assert!(v.get("operationContext").is_none());
        let back: AnswerCallRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
        req.callback_uri = "ftp://x".into();
        assert!(req.validate().is_err());
        assert!(
            serde_json::from_value::<AnswerCallRequest>(json!({"incomingCallContext": "c"}))
                .is_err()
        );
    }

    #[test]
    fn transcription_alias() {
        let t: TranscriptionOptions = serde_json::from_value(json!({
            "transportType": "websocket", "locale": "en-US",
            "speechRecognitionModelEndpointId": "m1"
        }))
        .unwrap();
        assert_eq!(t.speech_model_endpoint_id.as_deref(), Some("m1"));
        assert_eq!(
            serde_json::to_value(&t).unwrap()["speechModelEndpointId"],
            "m1"
        );
    }

    #[test]
    fn acs_error_body() {
        let body = br#"{"error":{"code":"8523","message":"Invalid request.","target":"callbackUri",
            "details":[{"code":"x","message":"y"}],
            "innererror":{"code":"8501","message":"Action is not valid when call is not in Established state."}}}"#;
        let e = AcsError::from_body(body).unwrap();
        assert_eq!(e.code, "8523");
        assert_eq!(e.message, "Invalid request.");
        assert_eq!(e.target.as_deref(), Some("callbackUri"));
        assert_eq!(e.details.as_ref().unwrap()[0].code, "x");
        assert_eq!(e.inner_error.as_ref().unwrap().code, "8501");
        assert_eq!(e.to_string(), "ACS error 8523: Invalid request.");
        let again = AcsError::from_body(&e.to_body()).unwrap();
        assert_eq!(again, e);
        // §11 token exchange 401 body.
        let e = AcsError::from_body(
            br#"{"error":{"code":"InvalidAccessToken","message":"Provided access token is not valid."}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "InvalidAccessToken");
        assert!(e.inner_error.is_none());
        // Not an ACS error body.
        assert_eq!(AcsError::from_body(b"<html>502</html>"), None);
        assert_eq!(AcsError::from_body(br#"{"message":"x"}"#), None);
        // Numeric code is a type error → not an ACS error body.
        assert_eq!(
            AcsError::from_body(br#"{"error":{"code":1,"message":"x"}}"#),
            None
        );

        let stale = AcsError {
            inner_error: Some(Box::new(AcsError::new(
                "401",
                "Lifetime validation of the signed http request failed.",
            ))),
            ..AcsError::new("8523", "Invalid request.")
        };
        assert!(stale.is_stale_incoming_call());
        assert!(!AcsError::new("8523", "Invalid request.").is_stale_incoming_call());

        let re = RequestError::Invalid {
            field: "callbackUri",
            problem: "must be an http(s):// URL",
        }
        .to_acs_error();
        assert_eq!(re.code, "BadRequest");
        assert_eq!(re.target.as_deref(), Some("callbackUri"));
        assert_eq!(re.message, "callbackUri must be an http(s):// URL");
    }

    #[test]
    fn teams_extension_assignment_vector() {
        let v = vector("teams_extension_assignment_request_response.json");
        let req: TeamsExtensionAssignmentRequest = round_trip(&v["request"]["body"]);
        assert_eq!(
            req.principal_type,
            TeamsExtensionPrincipalType::TeamsResourceAccount
        );
        let resp: TeamsExtensionAssignment = round_trip(&v["response"]["body"]);
        assert_eq!(resp.object_id, "e5b7f628-ea94-4fdc-b3d9-1af1fe231111");
        assert_eq!(resp.tenant_id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
        assert_eq!(v["response"]["status"], 201);
        // The vector's path is the operation's path.
        let op = AcsOperation::PutTeamsExtensionAssignment {
            tenant_id: resp.tenant_id.clone(),
            object_id: resp.object_id.clone(),
        };
        let path = v["request"]["path"].as_str().unwrap();
        assert_eq!(path, format!("{{endpoint}}{}", op.path_and_query()));
        assert_eq!(v["request"]["method"], op.method());
        assert_eq!(op.success_statuses()[0], 201);
        assert_eq!(
            AcsOperation::parse("PUT", path.strip_prefix("{endpoint}").unwrap()),
            Some(op)
        );
    }

    #[test]
    fn teams_token_exchange_and_graph_shapes() {
        let req: TeamsUserExchangeTokenRequest =
            round_trip(&json!({"token": "eyJ0", "appId": "app", "userId": "user"}));
        assert_eq!(req.app_id, "app");
        let resp: CommunicationIdentityAccessToken =
            round_trip(&json!({"token": "acs", "expiresOn": "2025-07-01T13:00:00Z"}));
        assert_eq!(resp.expires_on, "2025-07-01T13:00:00Z");
        assert_eq!(
            AcsOperation::ExchangeTeamsUserAccessToken.path_and_query(),
            "/teamsUser/:exchangeAccessToken?api-version=2023-10-01"
        );

        let list: ResourceAccountList = round_trip(&json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#admin/teams/resourceAccounts",
            "value": [{"id": "cc123456-5678-5678-1234-ccc123456789", "userPrincipalName": "ivr@contoso.com",
                       "appId": "ce933385-9390-45d1-9512-c8d228074e07", "displayName": "IVR",
                       "phoneNumber": "tel:+1234567890", "acsResourceId": "r1"}]
        }));
        let acct = &list.value[0];
        assert_eq!(acct.e164(), Some("+1234567890"));
        assert_eq!(
            acct.identifier().raw_id(),
            "28:orgid:cc123456-5678-5678-1234-ccc123456789"
        );
    }

    fn sample_ops() -> Vec<AcsOperation> {
        use AcsOperation as O;
        let id = || "18dea47f-b081-4107-9a5c-4300819d2c6c".to_owned();
        let mut ops = vec![
            O::CreateCall,
            O::AnswerCall,
            O::RedirectCall,
            O::RejectCall,
            O::ConnectCall,
            O::GetCall {
                call_connection_id: id(),
            },
            O::HangUpCall {
                call_connection_id: id(),
            },
            O::GetParticipants {
                call_connection_id: id(),
            },
            O::GetParticipant {
                call_connection_id: id(),
                participant_raw_id: "8:acs:r_u".into(),
            },
            O::StartRecording,
            O::GetRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::StopRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::PauseRecording {
                recording_id: "eyJQ+/a==".into(),
            },
            O::ResumeRecording {
                recording_id: "r".into(),
            },
            O::ExchangeTeamsUserAccessToken,
            O::PutTeamsExtensionAssignment {
                tenant_id: "t".into(),
                object_id: "o".into(),
            },
        ];
        for (_, make) in CALL_ACTIONS.iter().chain(PARTICIPANT_ACTIONS) {
            ops.push(make(id()));
        }
        ops
    }

    #[test]
    fn operation_table() {
        use AcsOperation as O;
        let id = "18dea47f-b081-4107-9a5c-4300819d2c6c".to_owned();
        let cases: Vec<(AcsOperation, &str, &str, bool, u16)> = vec![
            (O::CreateCall, "POST", "/calling/callConnections", true, 201),
            (O::AnswerCall, "POST", "/calling/callConnections:answer", true, 200),
            (O::RedirectCall, "POST", "/calling/callConnections:redirect", true, 204),
            (O::RejectCall, "POST", "/calling/callConnections:reject", true, 204),
            (O::ConnectCall, "POST", "/calling/callConnections:connect", true, 200),
            (
                O::GetCall { call_connection_id: id.clone() },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c",
                false,
                200,
            ),
            (
                O::HangUpCall { call_connection_id: id.clone() },
                "DELETE",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c",
                false,
                204,
            ),
            (
                O::TerminateCall { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:terminate",
                true,
                204,
            ),
            (
                O::TransferToParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:transferToParticipant",
                true,
                202,
            ),
            (
                O::StartMediaStreaming { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:startMediaStreaming",
                false,
                202,
            ),
            (
                O::StopMediaStreaming { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:stopMediaStreaming",
                false,
                202,
            ),
            (
                O::GetParticipants { call_connection_id: id.clone() },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants",
                false,
                200,
            ),
            (
                O::AddParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:add",
                true,
                202,
            ),
            (
                O::RemoveParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:remove",
                true,
                202,
            ),
            (
                O::MuteParticipants { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:mute",
                true,
                200,
            ),
            (
                O::CancelAddParticipant { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants:cancelAddParticipant",
                true,
                202,
            ),
            (
                O::GetParticipant {
                    call_connection_id: id.clone(),
                    participant_raw_id: "8:acs:r_u".into(),
                },
                "GET",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c/participants/8%3Aacs%3Ar_u",
                false,
                200,
            ),
            (
                O::SendDtmfTones { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:sendDtmfTones",
                true,
                202,
            ),
            (
                O::Hold { call_connection_id: id.clone() },
                "POST",
                "/calling/callConnections/18dea47f-b081-4107-9a5c-4300819d2c6c:hold",
                false,
                200,
            ),
            (O::StartRecording, "POST", "/calling/recordings", true, 200),
            (
                O::StopRecording { recording_id: "eyJQ+/a==".into() },
                "DELETE",
                "/calling/recordings/eyJQ%2B%2Fa%3D%3D",
                false,
                204,
            ),
            (
                O::PauseRecording { recording_id: "r1".into() },
                "POST",
                "/calling/recordings/r1:pause",
                false,
                202,
            ),
        ];
        for (op, method, path, repeat, status) in cases {
            assert_eq!(op.method(), method, "{op:?}");
            assert_eq!(op.path(), path, "{op:?}");
            assert_eq!(op.needs_repeatability(), repeat, "{op:?}");
            assert_eq!(op.success_statuses()[0], status, "{op:?}");
            assert_eq!(
                op.path_and_query(),
                format!("{path}?api-version=2026-03-12")
            );
        }
        assert_eq!(AcsOperation::StartRecording.success_statuses(), &[200, 202]);
    }

    #[test]
    fn every_operation_routes_back_and_has_a_unique_name() {
        let ops = sample_ops();
        let mut names = std::collections::HashSet::new();
        for op in &ops {
            assert!(names.insert(op.name()), "duplicate name {}", op.name());
            assert!(op
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(
                AcsOperation::parse(op.method(), &op.path_and_query()).as_ref(),
                Some(op),
                "{}",
                op.path()
            );
            assert_eq!(
                AcsOperation::parse(&op.method().to_ascii_lowercase(), &op.path()).as_ref(),
                Some(op)
            );
            // Wrong method → no route.
            let wrong = if op.method() == "PATCH" {
                "GET"
            } else {
                "PATCH"
            };
            assert_eq!(AcsOperation::parse(wrong, &op.path()), None);
        }
        assert_eq!(ops.len(), 35);
    }

    #[test]
    fn parse_refuses_unknown_routes() {
        for (m, p) in [
            ("POST", "/calling/callConnections:explode"),
            ("POST", "/calling/callConnections/abc:explode"),
            ("POST", "/calling/callConnections/abc"),
            ("POST", "/calling/callConnections/abc/participants:explode"),
            ("GET", "/calling/callConnections/%ZZ"),
            ("GET", "/calling/callConnections/%FF"),
            ("GET", "/calling/callConnections/"),
            ("GET", "/"),
            ("GET", ""),
            ("GET", "calling/callConnections/abc"),
            ("GET", "/calling/callConnections/a/b/c/d"),
            ("POST", "/calling/recordings/r:explode"),
            ("GET", "/other"),
        ] {
            assert_eq!(AcsOperation::parse(m, p), None, "{m} {p}");
        }
        // Unencoded ids and trailing slashes are tolerated.
        assert_eq!(
            AcsOperation::parse("GET", "/calling/callConnections/abc/?api-version=x"),
            Some(AcsOperation::GetCall {
                call_connection_id: "abc".into()
            })
        );
    }

    #[test]
    fn segment_encoding() {
        assert_eq!(encode_segment("8:acs:a_b"), "8%3Aacs%3Aa_b");
        assert_eq!(encode_segment("a/b+c=é"), "a%2Fb%2Bc%3D%C3%A9");
        assert_eq!(encode_segment("-_.!~*'()"), "-_.!~*'()");
        for s in ["8:acs:a_b", "a/b+c=é ?#%", "🦀", "plain"] {
            assert_eq!(decode_segment(&encode_segment(s)).as_deref(), Some(s));
        }
        assert_eq!(decode_segment("%"), None);
        assert_eq!(decode_segment("%4"), None);
        assert_eq!(decode_segment("%C3"), None);
        assert_eq!(decode_segment("%é1"), None);
        assert_eq!(decode_segment(""), None);
    }

    #[test]
    fn repeatability_ids_are_uuid_v4() {
        let id = repeatability_request_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = repeatability_request_id([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
        assert_eq!(id.len(), 36);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let req: RemoveParticipantRequest = serde_json::from_value(json!({
            "participantToRemove": {"rawId": "4:+1", "phoneNumber": {"value": "+1"}},
            "futureField": {"x": 1}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"participantToRemove": {"rawId": "4:+1", "phoneNumber": {"value": "+1"}}})
        );
    }
}
