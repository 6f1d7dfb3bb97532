//! The wire model of identifiers ([`CommunicationIdentifierModel`] and its kinds) and its
//! conversions to and from [`CommunicationIdentifier`].

#[allow(unused_imports)]
use super::*;

/// `communicationUser`: `{"id": …}` (also the shape of `answeredBy` and `source` in requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunicationUserIdentifierModel {
    /// The ACS user id (`8:acs:…`).
    pub id: String,
}

/// `phoneNumber`: `{"value": …, "isAnonymous"?, "assertedId"?}` (also the shape of
/// `sourceCallerIdNumber` and `answeredFor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberIdentifierModel {
    /// The phone number, E.164 (`+14255550123`).
    pub value: String,
    /// Whether the number is anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// The asserted id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asserted_id: Option<String>,
}

impl PhoneNumberIdentifierModel {
    /// `{"value": value}`.
    pub fn new(value: impl Into<String>) -> Self {
        PhoneNumberIdentifierModel {
            value: value.into(),
            is_anonymous: None,
            asserted_id: None,
        }
    }
}

/// `microsoftTeamsUser`: `{"userId", "isAnonymous"?, "cloud"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MicrosoftTeamsUserIdentifierModel {
    /// The Entra object id of the user.
    pub user_id: String,
    /// Whether the user is anonymous (absent = false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// The cloud (absent = public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
}

/// `microsoftTeamsApp`: `{"appId", "cloud"?}` (also the shape of `teamsAppSource`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MicrosoftTeamsAppIdentifierModel {
    /// The app (resource account) object id.
    pub app_id: String,
    /// The cloud (absent = public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
}

/// `teamsExtensionUser`: `{"userId", "tenantId", "resourceId"?, "cloud"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsExtensionUserIdentifierModel {
    /// The Entra object id of the Teams user.
    pub user_id: String,
    /// The Entra tenant id.
    pub tenant_id: String,
    /// The ACS resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The cloud (absent = public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CommunicationCloud>,
}

/// The wire model of an identifier (`CommunicationIdentifierModel`): an optional `kind`, an
/// optional `rawId` ("optional in requests, required in responses") and at most one nested
/// object. Unknown fields are ignored; absent fields stay absent when serialized again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentifierModel {
    /// The kind discriminator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IdentifierKind>,
    /// The rawId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_id: Option<String>,
    /// Set for an ACS user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_user: Option<CommunicationUserIdentifierModel>,
    /// Set for a phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumberIdentifierModel>,
    /// Set for a Teams user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_teams_user: Option<MicrosoftTeamsUserIdentifierModel>,
    /// Set for a Teams app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_teams_app: Option<MicrosoftTeamsAppIdentifierModel>,
    /// Set for a Teams Phone extensibility user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_extension_user: Option<TeamsExtensionUserIdentifierModel>,
}

/// Why a [`CommunicationIdentifierModel`] is not a valid request identifier (see
/// [`CommunicationIdentifierModel::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// More than one nested object is set (the model is a union).
    #[error("identifier has more than one nested model: {0:?}")]
    MultipleNestedModels(Vec<&'static str>),
    /// Neither a nested object nor a `rawId` is set.
    #[error("identifier has neither a nested model nor a rawId")]
    Empty,
    /// `kind` names a different kind than the nested object.
    #[error("identifier kind {kind} does not match its nested model {nested}")]
    KindMismatch {
        /// The `kind` value.
        kind: String,
        /// The nested object's name.
        nested: &'static str,
    },
}

impl CommunicationIdentifierModel {
    /// Names of the nested objects that are set, in wire order.
    fn nested(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.communication_user.is_some() {
            v.push("communicationUser");
        }
        if self.phone_number.is_some() {
            v.push("phoneNumber");
        }
        if self.microsoft_teams_user.is_some() {
            v.push("microsoftTeamsUser");
        }
        if self.microsoft_teams_app.is_some() {
            v.push("microsoftTeamsApp");
        }
        if self.teams_extension_user.is_some() {
            v.push("teamsExtensionUser");
        }
        v
    }

    /// Strict check for a request identifier (what a fake ACS rejects with 400): at most one
    /// nested object, something to identify by, and a `kind` (if given, and known) that matches
    /// the nested object. `kind: "unknown"` with a nested object is accepted.
    pub fn validate(&self) -> Result<(), IdentifierError> {
        let nested = self.nested();
        match nested.as_slice() {
            [] if self.raw_id.is_none() => Err(IdentifierError::Empty),
            [] => Ok(()),
            [one] => match &self.kind {
                Some(IdentifierKind::Other(_)) | Some(IdentifierKind::Unknown) | None => Ok(()),
                Some(k) if k.as_str() == *one => Ok(()),
                Some(k) => Err(IdentifierError::KindMismatch {
                    kind: k.as_str().to_owned(),
                    nested: one,
                }),
            },
            _ => Err(IdentifierError::MultipleNestedModels(nested)),
        }
    }

    /// The identifier this model describes. Never fails:
    ///
    /// * exactly one nested object → that kind, with its fields (`isAnonymous` absent = false,
    ///   `cloud` absent = public); a `rawId` that differs from the computed one is kept;
    /// * otherwise (`{"kind":"unknown","rawId":…}`, only a `rawId`, or an invalid union) →
    ///   [`parse_raw_id`] of the `rawId`, so a Teams resource account sent as
    ///   `{"kind":"unknown","rawId":"28:orgid:…"}` becomes
    ///   [`MicrosoftTeamsApp`](CommunicationIdentifier::MicrosoftTeamsApp);
    /// * nothing at all → `Unknown("")`.
    pub fn to_identifier(&self) -> CommunicationIdentifier {
        let raw_id = self.raw_id.clone();
        let from_nested = if self.nested().len() != 1 {
            None
        } else if let Some(u) = &self.communication_user {
            Some(CommunicationIdentifier::CommunicationUser { id: u.id.clone() })
        } else if let Some(p) = &self.phone_number {
            Some(CommunicationIdentifier::PhoneNumber {
                value: p.value.clone(),
                is_anonymous: p.is_anonymous.unwrap_or(false),
                asserted_id: p.asserted_id.clone(),
                raw_id,
            })
        } else if let Some(t) = &self.microsoft_teams_user {
            Some(CommunicationIdentifier::MicrosoftTeamsUser {
                user_id: t.user_id.clone(),
                is_anonymous: t.is_anonymous.unwrap_or(false),
                cloud: t.cloud.clone().unwrap_or_default(),
                raw_id,
            })
        } else if let Some(a) = &self.microsoft_teams_app {
            Some(CommunicationIdentifier::MicrosoftTeamsApp {
                app_id: a.app_id.clone(),
                cloud: a.cloud.clone().unwrap_or_default(),
                raw_id,
            })
        } else if let Some(x) = &self.teams_extension_user {
            // Without a resourceId the rawId cannot be computed: use the wire rawId instead.
            x.resource_id
                .as_ref()
                .map(|resource_id| CommunicationIdentifier::TeamsExtensionUser {
                    user_id: x.user_id.clone(),
                    tenant_id: x.tenant_id.clone(),
                    resource_id: resource_id.clone(),
                    cloud: x.cloud.clone().unwrap_or_default(),
                    raw_id,
                })
        } else {
            None
        };
        match from_nested {
            Some(id) => id.normalized(),
            None => match &self.raw_id {
                Some(r) => parse_raw_id(r),
                None => CommunicationIdentifier::Unknown(String::new()),
            },
        }
    }

    /// The rawId: the wire `rawId` if present, else the one computed from the nested object.
    pub fn raw_id(&self) -> String {
        match &self.raw_id {
            Some(r) => r.clone(),
            None => self.to_identifier().raw_id(),
        }
    }
}

impl From<&CommunicationIdentifier> for CommunicationIdentifierModel {
    /// The full response shape: `kind`, `rawId` and the nested object (the unknown kind has only
    /// `kind` and `rawId`). Teams users always carry `isAnonymous` and `cloud`, like the SDKs.
    fn from(id: &CommunicationIdentifier) -> Self {
        let mut m = CommunicationIdentifierModel {
            kind: Some(id.kind()),
            raw_id: Some(id.raw_id()),
            ..Default::default()
        };
        match id {
            CommunicationIdentifier::CommunicationUser { id } => {
                m.communication_user = Some(CommunicationUserIdentifierModel { id: id.clone() });
            }
            CommunicationIdentifier::PhoneNumber {
                value,
                is_anonymous,
                asserted_id,
                ..
            } => {
                m.phone_number = Some(PhoneNumberIdentifierModel {
                    value: value.clone(),
                    is_anonymous: is_anonymous.then_some(true),
                    asserted_id: asserted_id.clone(),
                });
            }
            CommunicationIdentifier::MicrosoftTeamsUser {
                user_id,
                is_anonymous,
                cloud,
                ..
            } => {
                m.microsoft_teams_user = Some(MicrosoftTeamsUserIdentifierModel {
                    user_id: user_id.clone(),
                    is_anonymous: Some(*is_anonymous),
                    cloud: Some(cloud.clone()),
                });
            }
            CommunicationIdentifier::MicrosoftTeamsApp { app_id, cloud, .. } => {
                m.microsoft_teams_app = Some(MicrosoftTeamsAppIdentifierModel {
                    app_id: app_id.clone(),
                    cloud: Some(cloud.clone()),
                });
            }
            CommunicationIdentifier::TeamsExtensionUser {
                user_id,
                tenant_id,
                resource_id,
                cloud,
                ..
            } => {
                m.teams_extension_user = Some(TeamsExtensionUserIdentifierModel {
                    user_id: user_id.clone(),
                    tenant_id: tenant_id.clone(),
                    resource_id: Some(resource_id.clone()),
                    cloud: Some(cloud.clone()),
                });
            }
            CommunicationIdentifier::Unknown(_) => {}
        }
        m
    }
}

impl From<CommunicationIdentifier> for CommunicationIdentifierModel {
    fn from(id: CommunicationIdentifier) -> Self {
        CommunicationIdentifierModel::from(&id)
    }
}

impl From<&CommunicationIdentifierModel> for CommunicationIdentifier {
    fn from(m: &CommunicationIdentifierModel) -> Self {
        m.to_identifier()
    }
}

impl From<CommunicationIdentifierModel> for CommunicationIdentifier {
    fn from(m: CommunicationIdentifierModel) -> Self {
        m.to_identifier()
    }
}

impl Serialize for CommunicationIdentifier {
    /// Serializes as the full [`CommunicationIdentifierModel`] shape.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CommunicationIdentifierModel::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for CommunicationIdentifier {
    /// Deserializes a [`CommunicationIdentifierModel`] and converts it with
    /// [`CommunicationIdentifierModel::to_identifier`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CommunicationIdentifierModel::deserialize(d).map(|m| m.to_identifier())
    }
}
