//! [`AcsOperation`]: every route's method, path, metric label, success statuses and Repeatability
//! (§4.1), and [`AcsOperation::parse`].

#[allow(unused_imports)]
use super::*;

/// An ACS data-plane operation: its route (§4.1 table, §7, §11) and properties. Path
/// parameters are carried unencoded and percent-encoded by [`path`](Self::path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AcsOperation {
    /// `POST /calling/callConnections` → 201.
    CreateCall,
    /// `POST /calling/callConnections:answer` → 200.
    AnswerCall,
    /// `POST /calling/callConnections:redirect` → 204.
    RedirectCall,
    /// `POST /calling/callConnections:reject` → 204.
    RejectCall,
    /// `POST /calling/callConnections:connect` → 200.
    ConnectCall,
    /// `GET /calling/callConnections/{id}` → 200.
    GetCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `DELETE /calling/callConnections/{id}` (leave) → 204.
    HangUpCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:terminate` (end for everyone) → 204.
    TerminateCall {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:transferToParticipant` → 202.
    TransferToParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:play` → 202.
    Play {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:recognize` → 202.
    Recognize {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:cancelAllMediaOperations` → 202.
    CancelAllMediaOperations {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startTranscription` → 202.
    StartTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopTranscription` → 202.
    StopTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:updateTranscription` → 202.
    UpdateTranscription {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startContinuousDtmfRecognition` → 200.
    StartContinuousDtmfRecognition {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopContinuousDtmfRecognition` → 200.
    StopContinuousDtmfRecognition {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:sendDtmfTones` → 202.
    SendDtmfTones {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:hold` → 200.
    Hold {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:unhold` → 200.
    Unhold {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:startMediaStreaming` → 202.
    StartMediaStreaming {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}:stopMediaStreaming` → 202.
    StopMediaStreaming {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `GET …/{id}/participants` → 200.
    GetParticipants {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:add` → 202.
    AddParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:remove` → 202.
    RemoveParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:mute` → 200.
    MuteParticipants {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `POST …/{id}/participants:cancelAddParticipant` → 202.
    CancelAddParticipant {
        /// The call connection id.
        call_connection_id: String,
    },
    /// `GET …/{id}/participants/{participantRawId}` → 200.
    GetParticipant {
        /// The call connection id.
        call_connection_id: String,
        /// The participant's rawId.
        participant_raw_id: String,
    },
    /// `POST /calling/recordings` → 200 or 202.
    StartRecording,
    /// `GET /calling/recordings/{recordingId}` → 200.
    GetRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `DELETE /calling/recordings/{recordingId}` → 204.
    StopRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /calling/recordings/{recordingId}:pause` → 202.
    PauseRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /calling/recordings/{recordingId}:resume` → 202.
    ResumeRecording {
        /// The recording id.
        recording_id: String,
    },
    /// `POST /teamsUser/:exchangeAccessToken` → 200 (Identity API).
    ExchangeTeamsUserAccessToken,
    /// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}` → 201.
    PutTeamsExtensionAssignment {
        /// The Entra tenant id.
        tenant_id: String,
        /// The resource account object id.
        object_id: String,
    },
}

/// Builds an operation from its call connection id.
pub(super) type CallOpCtor = fn(String) -> AcsOperation;

/// POST actions on `/calling/callConnections/{id}:{action}`, by wire name.
pub(super) const CALL_ACTIONS: &[(&str, CallOpCtor)] = &[
    ("terminate", |id| AcsOperation::TerminateCall {
        call_connection_id: id,
    }),
    ("transferToParticipant", |id| {
        AcsOperation::TransferToParticipant {
            call_connection_id: id,
        }
    }),
    ("play", |id| AcsOperation::Play {
        call_connection_id: id,
    }),
    ("recognize", |id| AcsOperation::Recognize {
        call_connection_id: id,
    }),
    ("cancelAllMediaOperations", |id| {
        AcsOperation::CancelAllMediaOperations {
            call_connection_id: id,
        }
    }),
    ("startTranscription", |id| {
        AcsOperation::StartTranscription {
            call_connection_id: id,
        }
    }),
    ("stopTranscription", |id| AcsOperation::StopTranscription {
        call_connection_id: id,
    }),
    ("updateTranscription", |id| {
        AcsOperation::UpdateTranscription {
            call_connection_id: id,
        }
    }),
    ("startContinuousDtmfRecognition", |id| {
        AcsOperation::StartContinuousDtmfRecognition {
            call_connection_id: id,
        }
    }),
    ("stopContinuousDtmfRecognition", |id| {
        AcsOperation::StopContinuousDtmfRecognition {
            call_connection_id: id,
        }
    }),
    ("sendDtmfTones", |id| AcsOperation::SendDtmfTones {
        call_connection_id: id,
    }),
    ("hold", |id| AcsOperation::Hold {
        call_connection_id: id,
    }),
    ("unhold", |id| AcsOperation::Unhold {
        call_connection_id: id,
    }),
    ("startMediaStreaming", |id| {
        AcsOperation::StartMediaStreaming {
            call_connection_id: id,
        }
    }),
    ("stopMediaStreaming", |id| {
        AcsOperation::StopMediaStreaming {
            call_connection_id: id,
        }
    }),
];

/// POST actions on `/calling/callConnections/{id}/participants:{action}`.
pub(super) const PARTICIPANT_ACTIONS: &[(&str, CallOpCtor)] = &[
    ("add", |id| AcsOperation::AddParticipant {
        call_connection_id: id,
    }),
    ("remove", |id| AcsOperation::RemoveParticipant {
        call_connection_id: id,
    }),
    ("mute", |id| AcsOperation::MuteParticipants {
        call_connection_id: id,
    }),
    ("cancelAddParticipant", |id| {
        AcsOperation::CancelAddParticipant {
            call_connection_id: id,
        }
    }),
];

pub(super) const CALLS: &str = "/calling/callConnections";
pub(super) const RECORDINGS: &str = "/calling/recordings";

impl AcsOperation {
    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        use AcsOperation as O;
        match self {
            O::GetCall { .. }
            | O::GetParticipants { .. }
            | O::GetParticipant { .. }
            | O::GetRecording { .. } => "GET",
            O::HangUpCall { .. } | O::StopRecording { .. } => "DELETE",
            O::PutTeamsExtensionAssignment { .. } => "PUT",
            _ => "POST",
        }
    }

    /// A short, stable snake_case label for metrics and logs (no ids).
    pub fn name(&self) -> &'static str {
        use AcsOperation as O;
        match self {
            O::CreateCall => "create_call",
            O::AnswerCall => "answer_call",
            O::RedirectCall => "redirect_call",
            O::RejectCall => "reject_call",
            O::ConnectCall => "connect_call",
            O::GetCall { .. } => "get_call",
            O::HangUpCall { .. } => "hang_up_call",
            O::TerminateCall { .. } => "terminate_call",
            O::TransferToParticipant { .. } => "transfer_to_participant",
            O::Play { .. } => "play",
            O::Recognize { .. } => "recognize",
            O::CancelAllMediaOperations { .. } => "cancel_all_media_operations",
            O::StartTranscription { .. } => "start_transcription",
            O::StopTranscription { .. } => "stop_transcription",
            O::UpdateTranscription { .. } => "update_transcription",
            O::StartContinuousDtmfRecognition { .. } => "start_continuous_dtmf_recognition",
            O::StopContinuousDtmfRecognition { .. } => "stop_continuous_dtmf_recognition",
            O::SendDtmfTones { .. } => "send_dtmf_tones",
            O::Hold { .. } => "hold",
            O::Unhold { .. } => "unhold",
            O::StartMediaStreaming { .. } => "start_media_streaming",
            O::StopMediaStreaming { .. } => "stop_media_streaming",
            O::GetParticipants { .. } => "get_participants",
            O::AddParticipant { .. } => "add_participant",
            O::RemoveParticipant { .. } => "remove_participant",
            O::MuteParticipants { .. } => "mute_participants",
            O::CancelAddParticipant { .. } => "cancel_add_participant",
            O::GetParticipant { .. } => "get_participant",
            O::StartRecording => "start_recording",
            O::GetRecording { .. } => "get_recording",
            O::StopRecording { .. } => "stop_recording",
            O::PauseRecording { .. } => "pause_recording",
            O::ResumeRecording { .. } => "resume_recording",
            O::ExchangeTeamsUserAccessToken => "exchange_teams_user_access_token",
            O::PutTeamsExtensionAssignment { .. } => "put_teams_extension_assignment",
        }
    }

    /// Whether the request carries `Repeatability-Request-ID` / `Repeatability-First-Sent`
    /// (§4.1, §5; reuse both on retries).
    pub fn needs_repeatability(&self) -> bool {
        use AcsOperation as O;
        matches!(
            self,
            O::CreateCall
                | O::AnswerCall
                | O::RedirectCall
                | O::RejectCall
                | O::ConnectCall
                | O::TerminateCall { .. }
                | O::TransferToParticipant { .. }
                | O::SendDtmfTones { .. }
                | O::AddParticipant { .. }
                | O::RemoveParticipant { .. }
                | O::MuteParticipants { .. }
                | O::CancelAddParticipant { .. }
                | O::StartRecording
        )
    }

    /// The success statuses (the first is the usual one).
    pub fn success_statuses(&self) -> &'static [u16] {
        use AcsOperation as O;
        match self {
            O::CreateCall => &[201],
            O::PutTeamsExtensionAssignment { .. } => &[201, 200],
            O::StartRecording => &[200, 202],
            O::RedirectCall
            | O::RejectCall
            | O::HangUpCall { .. }
            | O::TerminateCall { .. }
            | O::StopRecording { .. } => &[204],
            O::TransferToParticipant { .. }
            | O::Play { .. }
            | O::Recognize { .. }
            | O::CancelAllMediaOperations { .. }
            | O::StartTranscription { .. }
            | O::StopTranscription { .. }
            | O::UpdateTranscription { .. }
            | O::SendDtmfTones { .. }
            | O::StartMediaStreaming { .. }
            | O::StopMediaStreaming { .. }
            | O::AddParticipant { .. }
            | O::RemoveParticipant { .. }
            | O::CancelAddParticipant { .. }
            | O::PauseRecording { .. }
            | O::ResumeRecording { .. } => &[202],
            _ => &[200],
        }
    }

    /// The `api-version` this crate uses for the operation.
    pub fn api_version(&self) -> &'static str {
        match self {
            AcsOperation::ExchangeTeamsUserAccessToken => IDENTITY_API_VERSION,
            AcsOperation::PutTeamsExtensionAssignment { .. } => TEAMS_EXTENSION_API_VERSION,
            _ => CALL_AUTOMATION_API_VERSION,
        }
    }

    /// The call connection id in the path, if any.
    pub fn call_connection_id(&self) -> Option<&str> {
        use AcsOperation as O;
        match self {
            O::GetCall { call_connection_id }
            | O::HangUpCall { call_connection_id }
            | O::TerminateCall { call_connection_id }
            | O::TransferToParticipant { call_connection_id }
            | O::Play { call_connection_id }
            | O::Recognize { call_connection_id }
            | O::CancelAllMediaOperations { call_connection_id }
            | O::StartTranscription { call_connection_id }
            | O::StopTranscription { call_connection_id }
            | O::UpdateTranscription { call_connection_id }
            | O::StartContinuousDtmfRecognition { call_connection_id }
            | O::StopContinuousDtmfRecognition { call_connection_id }
            | O::SendDtmfTones { call_connection_id }
            | O::Hold { call_connection_id }
            | O::Unhold { call_connection_id }
            | O::StartMediaStreaming { call_connection_id }
            | O::StopMediaStreaming { call_connection_id }
            | O::GetParticipants { call_connection_id }
            | O::AddParticipant { call_connection_id }
            | O::RemoveParticipant { call_connection_id }
            | O::MuteParticipants { call_connection_id }
            | O::CancelAddParticipant { call_connection_id }
            | O::GetParticipant {
                call_connection_id, ..
            } => Some(call_connection_id),
            _ => None,
        }
    }

    /// The path, with path parameters percent-encoded (like `encodeURIComponent`).
    pub fn path(&self) -> String {
        use AcsOperation as O;
        let call = |id: &str, suffix: &str| format!("{CALLS}/{}{suffix}", encode_segment(id));
        let action = |id: &str, name: &str| call(id, &format!(":{name}"));
        let rec = |id: &str, suffix: &str| format!("{RECORDINGS}/{}{suffix}", encode_segment(id));
        let call_action_name = |op: &AcsOperation| {
            CALL_ACTIONS
                .iter()
                .chain(PARTICIPANT_ACTIONS)
                .find(|(_, make)| make(String::new()).name() == op.name())
                .map(|(name, _)| *name)
                .unwrap_or_default()
        };
        match self {
            O::CreateCall => CALLS.to_owned(),
            O::AnswerCall => format!("{CALLS}:answer"),
            O::RedirectCall => format!("{CALLS}:redirect"),
            O::RejectCall => format!("{CALLS}:reject"),
            O::ConnectCall => format!("{CALLS}:connect"),
            O::GetCall { call_connection_id } | O::HangUpCall { call_connection_id } => {
                call(call_connection_id, "")
            }
            O::GetParticipants { call_connection_id } => call(call_connection_id, "/participants"),
            O::AddParticipant { call_connection_id }
            | O::RemoveParticipant { call_connection_id }
            | O::MuteParticipants { call_connection_id }
            | O::CancelAddParticipant { call_connection_id } => call(
                call_connection_id,
                &format!("/participants:{}", call_action_name(self)),
            ),
            O::GetParticipant {
                call_connection_id,
                participant_raw_id,
            } => call(
                call_connection_id,
                &format!("/participants/{}", encode_segment(participant_raw_id)),
            ),
            O::StartRecording => RECORDINGS.to_owned(),
            O::GetRecording { recording_id } | O::StopRecording { recording_id } => {
                rec(recording_id, "")
            }
            O::PauseRecording { recording_id } => rec(recording_id, ":pause"),
            O::ResumeRecording { recording_id } => rec(recording_id, ":resume"),
            O::ExchangeTeamsUserAccessToken => "/teamsUser/:exchangeAccessToken".to_owned(),
            O::PutTeamsExtensionAssignment {
                tenant_id,
                object_id,
            } => format!(
                "/access/teamsExtension/tenants/{}/assignments/{}",
                encode_segment(tenant_id),
                encode_segment(object_id)
            ),
            // Every remaining variant is a call action.
            other => action(
                other.call_connection_id().unwrap_or_default(),
                call_action_name(other),
            ),
        }
    }

    /// `path()?api-version=…` with [`api_version`](Self::api_version): what is signed and sent.
    pub fn path_and_query(&self) -> String {
        format!("{}?api-version={}", self.path(), self.api_version())
    }

    /// Routes a request (for a fake ACS): `method` (any case) and the path, with or without a
    /// query. Path parameters are percent-decoded. `None` for anything that is not one of the
    /// operations above.
    pub fn parse(method: &str, path_and_query: &str) -> Option<AcsOperation> {
        use AcsOperation as O;
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let path = path.strip_suffix('/').unwrap_or(path);
        let m = method.to_ascii_uppercase();
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let op = match segs.as_slice() {
            ["calling", root] => match *root {
                "callConnections" => O::CreateCall,
                "callConnections:answer" => O::AnswerCall,
                "callConnections:redirect" => O::RedirectCall,
                "callConnections:reject" => O::RejectCall,
                "callConnections:connect" => O::ConnectCall,
                "recordings" => O::StartRecording,
                _ => return None,
            },
            ["calling", "callConnections", seg] => {
                if m == "POST" {
                    let (id, action) = seg.rsplit_once(':')?;
                    let make = CALL_ACTIONS.iter().find(|(n, _)| *n == action)?.1;
                    make(decode_segment(id)?)
                } else if m == "DELETE" {
                    O::HangUpCall {
                        call_connection_id: decode_segment(seg)?,
                    }
                } else {
                    O::GetCall {
                        call_connection_id: decode_segment(seg)?,
                    }
                }
            }
            ["calling", "callConnections", id, "participants"] => O::GetParticipants {
                call_connection_id: decode_segment(id)?,
            },
            ["calling", "callConnections", id, action_seg] => {
                let action = action_seg.strip_prefix("participants:")?;
                let make = PARTICIPANT_ACTIONS.iter().find(|(n, _)| *n == action)?.1;
                make(decode_segment(id)?)
            }
            ["calling", "callConnections", id, "participants", raw] => O::GetParticipant {
                call_connection_id: decode_segment(id)?,
                participant_raw_id: decode_segment(raw)?,
            },
            ["calling", "recordings", seg] => {
                if m == "POST" {
                    let (id, action) = seg.rsplit_once(':')?;
                    let recording_id = decode_segment(id)?;
                    match action {
                        "pause" => O::PauseRecording { recording_id },
                        "resume" => O::ResumeRecording { recording_id },
                        _ => return None,
                    }
                } else if m == "DELETE" {
                    O::StopRecording {
                        recording_id: decode_segment(seg)?,
                    }
                } else {
                    O::GetRecording {
                        recording_id: decode_segment(seg)?,
                    }
                }
            }
            ["teamsUser", ":exchangeAccessToken"] => O::ExchangeTeamsUserAccessToken,
            ["access", "teamsExtension", "tenants", tenant, "assignments", object] => {
                O::PutTeamsExtensionAssignment {
                    tenant_id: decode_segment(tenant)?,
                    object_id: decode_segment(object)?,
                }
            }
            _ => return None,
        };
        (op.method() == m).then_some(op)
    }
}

/// Percent-encodes a path parameter like JavaScript's `encodeURIComponent` (keeps
/// `A–Z a–z 0–9 - _ . ! ~ * ' ( )`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes `%XX` escapes of one path segment; `None` for a bad escape, invalid UTF-8, or an
/// empty result.
pub fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    (!decoded.is_empty()).then_some(decoded)
}

/// A `Repeatability-Request-ID` (UUID v4 text) from 16 random bytes supplied by the caller.
pub fn repeatability_request_id(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}
