//! The answer policy: the `[answer]` configuration (named streaming profiles, ordered rules, the
//! default action), its validation, and the decision for one IncomingCall — answer with a
//! profile, reject with a reason, or redirect to a target — plus the `mediaStreamingOptions` /
//! `transcriptionOptions` a profile turns into.
//!
//! Rules are tried in order; the first whose `to` and `from` patterns both match wins. A pattern
//! is matched against the rawId (docs/PROTOCOL.md §6, e.g. `28:orgid:<id>`, `4:+14255550123`,
//! `8:acs:…`), ASCII case-insensitively; `*` matches any run of characters and `?` one
//! character, so `4:+1425*` is a prefix match and a pattern without wildcards is exact. An empty
//! pattern matches anything.

use crate::protocol::identifier::{parse_raw_id, CommunicationIdentifier, IdentifierKind};
use crate::protocol::rest::{
    AudioFormat, CallRejectReason, MediaStreamingAudioChannelType, MediaStreamingOptions,
    StreamingTransportType, TranscriptionOptions,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the built-in profile (mixed, 16 kHz, streaming from the start).
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// `[answer]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerConfig {
    /// What happens when no rule matches.
    pub default: DefaultAction,
    /// Streaming profiles by name (`[answer.profiles.<name>]`).
    pub profiles: BTreeMap<String, StreamingProfile>,
    /// Ordered rules (`[[answer.rules]]`).
    pub rules: Vec<AnswerRule>,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            default: DefaultAction::default(),
            profiles: BTreeMap::from([(DEFAULT_PROFILE.to_owned(), StreamingProfile::default())]),
            rules: Vec::new(),
        }
    }
}

/// `[answer.default]`: the action for calls no rule matches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultAction {
    /// `answer`, `reject` or `redirect`.
    pub action: String,
    /// Profile for `answer`.
    pub profile: String,
    /// `none`, `busy` or `forbidden` for `reject`.
    pub reject_reason: String,
    /// Target rawId for `redirect`.
    pub redirect_to: String,
}

impl Default for DefaultAction {
    fn default() -> Self {
        Self {
            action: "answer".into(),
            profile: DEFAULT_PROFILE.into(),
            reject_reason: "none".into(),
            redirect_to: String::new(),
        }
    }
}

/// `[answer.profiles.<name>]`: how an answered call is streamed to the gateway.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingProfile {
    /// `mixed` (one stream) or `unmixed` (one per dominant speaker).
    pub audio_channel: String,
    /// `pcm16KMono` or `pcm24KMono`.
    pub audio_format: String,
    /// Stream from the moment the call connects (else start it with the operator API).
    pub start_media_streaming: bool,
    /// Allow audio back to the call on the same WebSocket.
    pub enable_bidirectional: bool,
    /// Also stream DTMF tones.
    pub enable_dtmf_tones: bool,
    /// Optional real-time transcription (frames arrive on the same media WebSocket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<TranscriptionProfile>,
}

impl Default for StreamingProfile {
    fn default() -> Self {
        Self {
            audio_channel: "mixed".into(),
            audio_format: "pcm16KMono".into(),
            start_media_streaming: true,
            enable_bidirectional: false,
            enable_dtmf_tones: false,
            transcription: None,
        }
    }
}

/// `[answer.profiles.<name>.transcription]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TranscriptionProfile {
    /// Locale, e.g. `en-US`.
    pub locale: String,
    /// Custom speech model endpoint id (empty = none).
    pub speech_model_endpoint_id: String,
    /// Start transcribing when the call connects.
    pub start_transcription: bool,
    /// Also send intermediate results.
    pub enable_intermediate_results: bool,
}

impl Default for TranscriptionProfile {
    fn default() -> Self {
        Self {
            locale: "en-US".into(),
            speech_model_endpoint_id: String::new(),
            start_transcription: true,
            enable_intermediate_results: false,
        }
    }
}

/// `[[answer.rules]]`: one rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerRule {
    /// Name shown in logs and the call registry.
    pub name: String,
    /// Pattern on the called rawId (`to.rawId`); empty = any.
    pub to: String,
    /// Pattern on the caller rawId (`from.rawId`); empty = any.
    pub from: String,
    /// `answer`, `reject` or `redirect`.
    pub action: String,
    /// Profile for `answer` (empty = the default action's profile).
    pub profile: String,
    /// `none`, `busy` or `forbidden` for `reject`.
    pub reject_reason: String,
    /// Target rawId for `redirect`.
    pub redirect_to: String,
}

impl Default for AnswerRule {
    fn default() -> Self {
        Self {
            name: String::new(),
            to: String::new(),
            from: String::new(),
            action: "answer".into(),
            profile: String::new(),
            reject_reason: "none".into(),
            redirect_to: String::new(),
        }
    }
}

/// Why an answer configuration cannot be used; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid answer policy: {}", .0.join("; "))]
pub struct PolicyError(pub Vec<String>);

impl StreamingProfile {
    fn problems(&self, name: &str, p: &mut Vec<String>) {
        if !["mixed", "unmixed"]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&self.audio_channel))
        {
            p.push(format!(
                "answer.profiles.{name}.audio_channel {:?} must be \"mixed\" or \"unmixed\"",
                self.audio_channel
            ));
        }
        if AudioFormat::parse(&self.audio_format)
            .sample_rate()
            .is_none()
        {
            p.push(format!(
                "answer.profiles.{name}.audio_format {:?} must be \"pcm16KMono\" or \"pcm24KMono\"",
                self.audio_format
            ));
        }
        if let Some(t) = &self.transcription {
            if t.locale.trim().is_empty() {
                p.push(format!(
                    "answer.profiles.{name}.transcription.locale must not be empty"
                ));
            }
        }
    }

    /// The `mediaStreamingOptions` for a call whose media URL is `transport_url`.
    pub fn media_streaming_options(&self, transport_url: &str) -> MediaStreamingOptions {
        MediaStreamingOptions {
            start_media_streaming: Some(self.start_media_streaming),
            enable_bidirectional: Some(self.enable_bidirectional),
            audio_format: Some(AudioFormat::parse(&self.audio_format)),
            enable_dtmf_tones: Some(self.enable_dtmf_tones),
            ..MediaStreamingOptions::websocket(
                transport_url,
                MediaStreamingAudioChannelType::parse(&self.audio_channel),
            )
        }
    }

    /// The `transcriptionOptions`, when the profile has transcription.
    pub fn transcription_options(&self, transport_url: &str) -> Option<TranscriptionOptions> {
        self.transcription.as_ref().map(|t| TranscriptionOptions {
            transport_type: StreamingTransportType::Websocket,
            locale: t.locale.clone(),
            transport_url: Some(transport_url.to_owned()),
            speech_model_endpoint_id: (!t.speech_model_endpoint_id.is_empty())
                .then(|| t.speech_model_endpoint_id.clone()),
            start_transcription: Some(t.start_transcription),
            enable_intermediate_results: Some(t.enable_intermediate_results),
        })
    }
}

fn action_problems(
    p: &mut Vec<String>,
    at: &str,
    action: &str,
    profile: &str,
    reject_reason: &str,
    redirect_to: &str,
    profiles: &BTreeMap<String, StreamingProfile>,
) {
    match action {
        "answer" => {
            if !profile.is_empty() && !profiles.contains_key(profile) {
                p.push(format!(
                    "{at}.profile {profile:?} is not a profile (known: {})",
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        "reject" => {
            if matches!(
                CallRejectReason::parse(reject_reason),
                CallRejectReason::Other(_)
            ) {
                p.push(format!(
                    "{at}.reject_reason {reject_reason:?} must be \"none\", \"busy\" or \"forbidden\""
                ));
            }
        }
        "redirect" => {
            if redirect_to.trim().is_empty() {
                p.push(format!(
                    "{at}.redirect_to is required for action \"redirect\""
                ));
            } else if parse_raw_id(redirect_to).kind() == IdentifierKind::Unknown {
                p.push(format!(
                    "{at}.redirect_to {redirect_to:?} is not a known rawId (4:+E164, 8:acs:…, 8:orgid:…, 28:orgid:…)"
                ));
            }
        }
        other => p.push(format!(
            "{at}.action {other:?} must be \"answer\", \"reject\" or \"redirect\""
        )),
    }
}

impl AnswerConfig {
    /// Every problem, as `answer.…` messages.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, profile) in &self.profiles {
            if name.trim().is_empty() {
                p.push("answer.profiles has a profile with an empty name".into());
            }
            profile.problems(name, &mut p);
        }
        let d = &self.default;
        if d.action == "answer" && d.profile.is_empty() {
            p.push("answer.default.profile must name a profile".into());
        }
        action_problems(
            &mut p,
            "answer.default",
            &d.action,
            &d.profile,
            &d.reject_reason,
            &d.redirect_to,
            &self.profiles,
        );
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("answer.rules[{i}]");
            let profile = if r.profile.is_empty() {
                &d.profile
            } else {
                &r.profile
            };
            action_problems(
                &mut p,
                &at,
                &r.action,
                profile,
                &r.reject_reason,
                &r.redirect_to,
                &self.profiles,
            );
            for (field, pat) in [("to", &r.to), ("from", &r.from)] {
                if pat.len() > 512 {
                    p.push(format!("{at}.{field} is longer than 512 bytes"));
                }
            }
        }
        p
    }
}

/// What to do with one IncomingCall.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Answer, streaming with `profile`.
    Answer {
        /// The matching rule's name (`None` for the default action).
        rule: Option<String>,
        /// The profile's name.
        profile_name: String,
        /// The profile.
        profile: StreamingProfile,
    },
    /// Reject.
    Reject {
        /// The matching rule's name.
        rule: Option<String>,
        /// Why.
        reason: CallRejectReason,
    },
    /// Redirect.
    Redirect {
        /// The matching rule's name.
        rule: Option<String>,
        /// Where to.
        target: CommunicationIdentifier,
    },
}

impl Decision {
    /// `answer:<profile>`, `reject:<reason>` or `redirect:<rawId>` (for the registry and logs).
    pub(crate) fn summary(&self) -> String {
        match self {
            Decision::Answer { profile_name, .. } => format!("answer:{profile_name}"),
            Decision::Reject { reason, .. } => format!("reject:{}", reason.as_str()),
            Decision::Redirect { target, .. } => format!("redirect:{}", target.raw_id()),
        }
    }

    /// The rule that decided (`None` = default action).
    pub(crate) fn rule(&self) -> Option<&str> {
        match self {
            Decision::Answer { rule, .. }
            | Decision::Reject { rule, .. }
            | Decision::Redirect { rule, .. } => rule.as_deref(),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    to: String,
    from: String,
    decision: Decision,
}

/// A validated policy, ready to decide.
#[derive(Debug, Clone)]
pub(crate) struct AnswerPolicy {
    rules: Vec<CompiledRule>,
    default: Decision,
}

impl AnswerPolicy {
    /// Compiles a configuration (refused with every problem if it is not valid).
    pub(crate) fn new(cfg: &AnswerConfig) -> Result<Self, PolicyError> {
        let p = cfg.problems();
        if !p.is_empty() {
            return Err(PolicyError(p));
        }
        let d = &cfg.default;
        let decision =
            |rule: Option<String>, action: &str, profile: &str, reason: &str, target: &str| {
                match action {
                    "reject" => Decision::Reject {
                        rule,
                        reason: CallRejectReason::parse(reason),
                    },
                    "redirect" => Decision::Redirect {
                        rule,
                        target: parse_raw_id(target),
                    },
                    _ => {
                        let name = if profile.is_empty() {
                            d.profile.as_str()
                        } else {
                            profile
                        };
                        Decision::Answer {
                            rule,
                            profile_name: name.to_owned(),
                            profile: cfg.profiles.get(name).cloned().unwrap_or_default(),
                        }
                    }
                }
            };
        let rules = cfg
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| CompiledRule {
                to: r.to.clone(),
                from: r.from.clone(),
                decision: decision(
                    Some(if r.name.is_empty() {
                        format!("rules[{i}]")
                    } else {
                        r.name.clone()
                    }),
                    &r.action,
                    &r.profile,
                    &r.reject_reason,
                    &r.redirect_to,
                ),
            })
            .collect();
        let default = decision(
            None,
            &d.action,
            &d.profile,
            &d.reject_reason,
            &d.redirect_to,
        );
        Ok(Self { rules, default })
    }

    /// The decision for a call to `to_raw_id` from `from_raw_id`.
    pub(crate) fn decide(&self, to_raw_id: &str, from_raw_id: &str) -> Decision {
        self.rules
            .iter()
            .find(|r| glob_match(&r.to, to_raw_id) && glob_match(&r.from, from_raw_id))
            .map_or_else(|| self.default.clone(), |r| r.decision.clone())
    }
}

/// `*` / `?` glob, ASCII case-insensitive; an empty pattern matches anything.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::testkit::vector;
    use crate::protocol::events::IncomingCallEventData;

    #[test]
    fn globs() {
        assert!(glob_match("", "anything"));
        assert!(glob_match("4:+1425*", "4:+14255550123"));
        assert!(!glob_match("4:+1425*", "4:+12065551212"));
        assert!(glob_match("28:orgid:*", "28:ORGID:abc"));
        assert!(glob_match("8:acs:*_*", "8:acs:res_user"));
        assert!(!glob_match("8:acs:*_*", "8:acs:resuser"));
        assert!(glob_match("4:+1???5550123", "4:+14255550123"));
        assert!(glob_match("exact", "EXACT"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
    }

    fn cfg_with_rules() -> AnswerConfig {
        let mut c = AnswerConfig::default();
        c.profiles.insert(
            "tpe".into(),
            StreamingProfile {
                audio_channel: "unmixed".into(),
                audio_format: "pcm24KMono".into(),
                enable_bidirectional: true,
                enable_dtmf_tones: true,
                transcription: Some(TranscriptionProfile::default()),
                ..Default::default()
            },
        );
        c.rules = vec![
            AnswerRule {
                name: "teams resource account".into(),
                to: "28:orgid:cc123456-5678-5678-1234-ccc123456789".into(),
                profile: "tpe".into(),
                ..Default::default()
            },
            AnswerRule {
                name: "blocked caller".into(),
                from: "4:+1900*".into(),
                action: "reject".into(),
                reject_reason: "forbidden".into(),
                ..Default::default()
            },
            AnswerRule {
                name: "overflow".into(),
                to: "4:+1425555*".into(),
                action: "redirect".into(),
                redirect_to: "4:+14255550199".into(),
                ..Default::default()
            },
        ];
        c
    }

    #[test]
    fn rules_in_order_with_the_teams_resource_account_vector() {
        let p = AnswerPolicy::new(&cfg_with_rules()).unwrap();
        let data: IncomingCallEventData = serde_json::from_str(&vector(
            "eventgrid_incoming_call_data_teams_resource_account_tpe.json",
        ))
        .unwrap();
        let d = p.decide(&data.to.raw_id(), &data.from.raw_id());
        let Decision::Answer {
            rule,
            profile_name,
            profile,
        } = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(rule.as_deref(), Some("teams resource account"));
        assert_eq!(profile_name, "tpe");
        let m = profile.media_streaming_options("wss://gw/ws/T");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"transportType":"websocket","transportUrl":"wss://gw/ws/T",
                "contentType":"audio","audioChannelType":"unmixed","startMediaStreaming":true,
                "enableBidirectional":true,"audioFormat":"pcm24KMono","enableDtmfTones":true})
        );
        let t = profile.transcription_options("wss://gw/ws/T").unwrap();
        assert_eq!(t.locale, "en-US");
        assert_eq!(d.summary(), "answer:tpe");

        // A blocked caller is rejected even when calling a number with a later rule.
        let d = p.decide("4:+14255550100", "4:+19005550000");
        assert_eq!(
            d,
            Decision::Reject {
                rule: Some("blocked caller".into()),
                reason: CallRejectReason::Forbidden
            }
        );
        let d = p.decide("4:+14255550100", "4:+12065551212");
        assert_eq!(d.summary(), "redirect:4:+14255550199");
        assert_eq!(d.rule(), Some("overflow"));
        // Nothing matches: the built-in default, mixed 16 kHz.
        let d = p.decide("8:acs:someone", "4:+12065551212");
        let Decision::Answer {
            rule: None,
            profile,
            ..
        } = &d
        else {
            panic!("{d:?}")
        };
        let v = serde_json::to_value(profile.media_streaming_options("ws://x/ws/T")).unwrap();
        assert_eq!(v["audioChannelType"], "mixed");
        assert_eq!(v["audioFormat"], "pcm16KMono");
        assert_eq!(v["startMediaStreaming"], true);
        assert!(profile.transcription_options("x").is_none());
    }

    #[test]
    fn every_problem_is_listed() {
        let mut c = cfg_with_rules();
        c.rules.push(AnswerRule {
            profile: "nope".into(),
            ..Default::default()
        });
        c.rules.push(AnswerRule {
            action: "hold".into(),
            ..Default::default()
        });
        c.rules.push(AnswerRule {
            action: "redirect".into(),
            ..Default::default()
        });
        c.rules.push(AnswerRule {
            action: "reject".into(),
            reject_reason: "later".into(),
            ..Default::default()
        });
        c.profiles.insert(
            "bad".into(),
            StreamingProfile {
                audio_channel: "stereo".into(),
                audio_format: "pcm8KMono".into(),
                ..Default::default()
            },
        );
        let PolicyError(p) = AnswerPolicy::new(&c).unwrap_err();
        assert_eq!(p.len(), 6, "{p:#?}");
        assert!(p.iter().any(|m| m.contains("rules[3].profile \"nope\"")));
        assert!(p.iter().any(|m| m.contains("rules[4].action \"hold\"")));
        assert!(p
            .iter()
            .any(|m| m.contains("rules[5].redirect_to is required")));
        assert!(p.iter().any(|m| m.contains("rules[6].reject_reason")));
        assert!(p.iter().any(|m| m.contains("profiles.bad.audio_channel")));
        assert!(p.iter().any(|m| m.contains("profiles.bad.audio_format")));
    }
}
