//! PURE: ACS participant identifiers (docs/PROTOCOL.md §6).
//!
//! This module owns:
//!
//! * [`CommunicationIdentifier`], the value type for "who": an ACS user, a phone number, a Teams
//!   user, a Teams app (resource account / bot), a Teams Phone extensibility user, or an unknown
//!   id. Its canonical string form is the `rawId`: [`parse_raw_id`] reads one,
//!   [`CommunicationIdentifier::raw_id`] writes it, and the two round-trip for every string
//!   (`parse_raw_id(s).raw_id() == s`).
//! * [`CommunicationIdentifierModel`], the REST/event wire model
//!   (`{"kind":"phoneNumber","rawId":"4:+1…","phoneNumber":{"value":"+1…"}}`), kept faithful to
//!   what was received so that a request body deserializes and serializes back to the same JSON.
//!   [`CommunicationIdentifierModel::to_identifier`] and `From<&CommunicationIdentifier>` convert
//!   between the two.
//! * The crate-internal `string_enum!` macro used by the control-plane modules for the many
//!   "modelAsString" enums of the REST API: known values parse ASCII-case-insensitively, unknown
//!   values are kept verbatim in an `Other(String)` variant, so nothing is rejected and everything
//!   round-trips.
//!
//! # rawId rules (as the JS/.NET/Python SDKs)
//!
//! | prefix | identifier |
//! |---|---|
//! | `4:` | [`PhoneNumber`](CommunicationIdentifier::PhoneNumber): value = the rest verbatim; `4:anonymous` is anonymous; the text after the last `_`, if non-empty, is the asserted id |
//! | `8:teamsvisitor:` | anonymous [`MicrosoftTeamsUser`](CommunicationIdentifier::MicrosoftTeamsUser) |
//! | `8:orgid:`, `8:dod:`, `8:gcch:` | [`MicrosoftTeamsUser`](CommunicationIdentifier::MicrosoftTeamsUser) in the public / DoD / GCCH cloud |
//! | `28:orgid:`, `28:dod:`, `28:gcch:` | [`MicrosoftTeamsApp`](CommunicationIdentifier::MicrosoftTeamsApp) (`28:*-global:` and bare `28:<id>` are unknown) |
//! | `8:acs:`, `8:dod-acs:`, `8:gcch-acs:` + exactly three non-empty `_`-separated parts | [`TeamsExtensionUser`](CommunicationIdentifier::TeamsExtensionUser) `{resourceId}_{tenantId}_{userId}` |
//! | `8:acs:`, `8:dod-acs:`, `8:gcch-acs:`, `8:spool:` otherwise | [`CommunicationUser`](CommunicationIdentifier::CommunicationUser) (id = the whole rawId) |
//! | anything else, including `""` | [`Unknown`](CommunicationIdentifier::Unknown) |
//!
//! The prefix is the first two `:`-separated segments; the rest (which may itself contain `:`)
//! is the suffix, as in the JS and Python SDKs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a string-valued wire enum: known values (matched ASCII-case-insensitively) plus an
/// `Other(String)` variant that keeps any other value verbatim. Generates `as_str`, `parse`,
/// `Display`, `From<&str>`, `Serialize` (the wire spelling) and `Deserialize` (never fails on a
/// string).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, kept verbatim so that it round-trips.
            Other(String),
        }

        impl $name {
            /// The wire spelling: the canonical one for known values, the original for `Other`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(s) => s.as_str(),
                }
            }

            /// Parses a wire value ASCII-case-insensitively; any other value becomes `Other`.
            pub fn parse(s: &str) -> Self {
                $( if s.eq_ignore_ascii_case($wire) { return Self::$variant; } )+
                Self::Other(s.to_owned())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct StrVisitor;
                impl ::serde::de::Visitor<'_> for StrVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::parse(v))
                    }
                }
                d.deserialize_str(StrVisitor)
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// The cloud an identifier belongs to (`cloud` on the wire; absent means public).
    #[derive(Default)]
    pub enum CommunicationCloud {
        /// `public`: the commercial cloud (the default).
        #[default]
        Public = "public",
        /// `dod`: US Department of Defense cloud.
        Dod = "dod",
        /// `gcch`: US Government Community Cloud High.
        Gcch = "gcch",
    }
}

string_enum! {
    /// The `kind` discriminator of a [`CommunicationIdentifierModel`] ("only required in
    /// responses").
    pub enum IdentifierKind {
        /// `unknown`: only `rawId` is meaningful.
        Unknown = "unknown",
        /// `communicationUser`.
        CommunicationUser = "communicationUser",
        /// `phoneNumber`.
        PhoneNumber = "phoneNumber",
        /// `microsoftTeamsUser`.
        MicrosoftTeamsUser = "microsoftTeamsUser",
        /// `microsoftTeamsApp`.
        MicrosoftTeamsApp = "microsoftTeamsApp",
        /// `teamsExtensionUser`.
        TeamsExtensionUser = "teamsExtensionUser",
    }
}

// ---------------------------------------------------------------------------------------------
// rawId prefixes
// ---------------------------------------------------------------------------------------------

const PHONE: &str = "4:";
const TEAMS_USER_ANONYMOUS: &str = "8:teamsvisitor:";
const TEAMS_USER_PUBLIC: &str = "8:orgid:";
const TEAMS_USER_DOD: &str = "8:dod:";
const TEAMS_USER_GCCH: &str = "8:gcch:";
const TEAMS_APP_PUBLIC: &str = "28:orgid:";
const TEAMS_APP_DOD: &str = "28:dod:";
const TEAMS_APP_GCCH: &str = "28:gcch:";
const ACS_USER: &str = "8:acs:";
const ACS_USER_DOD: &str = "8:dod-acs:";
const ACS_USER_GCCH: &str = "8:gcch-acs:";
const SPOOL_USER: &str = "8:spool:";

/// The text `4:anonymous` carries for an anonymous (withheld) caller.
const ANONYMOUS_PHONE: &str = "anonymous";

// ---------------------------------------------------------------------------------------------
// CommunicationIdentifier
// ---------------------------------------------------------------------------------------------

/// Who a participant is. Equality and hashing are by value; two identifiers that describe the
/// same participant produce the same [`raw_id`](Self::raw_id).
///
/// The `raw_id: Option<String>` fields hold a wire `rawId` only when it differs from the one
/// computed from the other fields (e.g. a phone number whose service rawId carries an asserted
/// id that the `value` does not). [`parse_raw_id`] never sets them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommunicationIdentifier {
    /// An ACS user (`8:acs:…`, `8:spool:…`, `8:dod-acs:…`, `8:gcch-acs:…`).
    CommunicationUser {
        /// The full id, which is also the rawId.
        id: String,
    },
    /// A phone number (`4:+E164`).
    PhoneNumber {
        /// The number as it appears after `4:` (normally E.164 with `+`; kept verbatim).
        value: String,
        /// Whether this is an anonymous (withheld) number (`4:anonymous`).
        is_anonymous: bool,
        /// The asserted id (text after the last `_` of the value), if any.
        asserted_id: Option<String>,
        /// The wire rawId, only when it differs from `4:{value}`.
        raw_id: Option<String>,
    },
    /// A Microsoft Teams user (`8:orgid:`, `8:dod:`, `8:gcch:`, anonymous `8:teamsvisitor:`).
    MicrosoftTeamsUser {
        /// The Entra object id of the user (or the visitor id when anonymous).
        user_id: String,
        /// Whether the user is an anonymous meeting visitor.
        is_anonymous: bool,
        /// The cloud of the user.
        cloud: CommunicationCloud,
        /// The wire rawId, only when it differs from the computed one.
        raw_id: Option<String>,
    },
    /// A Microsoft Teams app: a Teams resource account or bot (`28:orgid:`, `28:dod:`,
    /// `28:gcch:`). Teams Phone extensibility calls to a resource account arrive with this `to`.
    MicrosoftTeamsApp {
        /// The app (resource account) object id.
        app_id: String,
        /// The cloud of the app.
        cloud: CommunicationCloud,
        /// The wire rawId, only when it differs from the computed one.
        raw_id: Option<String>,
    },
    /// A Teams Phone extensibility user acting through an ACS resource
    /// (`8:acs:{resourceId}_{tenantId}_{userId}`, `8:dod-acs:…`, `8:gcch-acs:…`).
    TeamsExtensionUser {
        /// The Entra object id of the Teams user.
        user_id: String,
        /// The Entra tenant id of the user.
        tenant_id: String,
        /// The ACS resource (immutable) id.
        resource_id: String,
        /// The cloud, from the rawId prefix.
        cloud: CommunicationCloud,
        /// The wire rawId, only when it differs from the computed one.
        raw_id: Option<String>,
    },
    /// Anything else; the string is the rawId.
    Unknown(String),
}

impl CommunicationIdentifier {
    /// An ACS user with the given id (e.g. `8:acs:…`).
    pub fn communication_user(id: impl Into<String>) -> Self {
        CommunicationIdentifier::CommunicationUser { id: id.into() }
    }

    /// A (non-anonymous) phone number, e.g. `+14255550123`.
    pub fn phone_number(value: impl Into<String>) -> Self {
        CommunicationIdentifier::PhoneNumber {
            value: value.into(),
            is_anonymous: false,
            asserted_id: None,
            raw_id: None,
        }
    }

    /// A Teams user in the public cloud.
    pub fn teams_user(user_id: impl Into<String>) -> Self {
        CommunicationIdentifier::MicrosoftTeamsUser {
            user_id: user_id.into(),
            is_anonymous: false,
            cloud: CommunicationCloud::Public,
            raw_id: None,
        }
    }

    /// A Teams app (resource account) in the public cloud (`28:orgid:{app_id}`).
    pub fn teams_app(app_id: impl Into<String>) -> Self {
        CommunicationIdentifier::MicrosoftTeamsApp {
            app_id: app_id.into(),
            cloud: CommunicationCloud::Public,
            raw_id: None,
        }
    }

    /// A Teams Phone extensibility user in the public cloud
    /// (`8:acs:{resource_id}_{tenant_id}_{user_id}`).
    pub fn teams_extension_user(
        user_id: impl Into<String>,
        tenant_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        CommunicationIdentifier::TeamsExtensionUser {
            user_id: user_id.into(),
            tenant_id: tenant_id.into(),
            resource_id: resource_id.into(),
            cloud: CommunicationCloud::Public,
            raw_id: None,
        }
    }

    /// The wire `kind` of this identifier.
    pub fn kind(&self) -> IdentifierKind {
        match self {
            CommunicationIdentifier::CommunicationUser { .. } => IdentifierKind::CommunicationUser,
            CommunicationIdentifier::PhoneNumber { .. } => IdentifierKind::PhoneNumber,
            CommunicationIdentifier::MicrosoftTeamsUser { .. } => {
                IdentifierKind::MicrosoftTeamsUser
            }
            CommunicationIdentifier::MicrosoftTeamsApp { .. } => IdentifierKind::MicrosoftTeamsApp,
            CommunicationIdentifier::TeamsExtensionUser { .. } => {
                IdentifierKind::TeamsExtensionUser
            }
            CommunicationIdentifier::Unknown(_) => IdentifierKind::Unknown,
        }
    }

    /// The rawId: the stored wire rawId where there is one, else the canonical one computed from
    /// the fields (see the module table). `parse_raw_id(s).raw_id() == s` for every `s`.
    pub fn raw_id(&self) -> String {
        match self {
            CommunicationIdentifier::CommunicationUser { id } => id.clone(),
            CommunicationIdentifier::Unknown(id) => id.clone(),
            CommunicationIdentifier::PhoneNumber {
                raw_id: Some(r), ..
            }
            | CommunicationIdentifier::MicrosoftTeamsUser {
                raw_id: Some(r), ..
            }
            | CommunicationIdentifier::MicrosoftTeamsApp {
                raw_id: Some(r), ..
            }
            | CommunicationIdentifier::TeamsExtensionUser {
                raw_id: Some(r), ..
            } => r.clone(),
            _ => self.computed_raw_id(),
        }
    }

    /// The rawId computed from the fields, ignoring any stored `raw_id`.
    fn computed_raw_id(&self) -> String {
        match self {
            CommunicationIdentifier::CommunicationUser { id } => id.clone(),
            CommunicationIdentifier::Unknown(id) => id.clone(),
            CommunicationIdentifier::PhoneNumber { value, .. } => format!("{PHONE}{value}"),
            CommunicationIdentifier::MicrosoftTeamsUser {
                user_id,
                is_anonymous,
                cloud,
                ..
            } => {
                let prefix = if *is_anonymous {
                    TEAMS_USER_ANONYMOUS
                } else {
                    match cloud {
                        CommunicationCloud::Dod => TEAMS_USER_DOD,
                        CommunicationCloud::Gcch => TEAMS_USER_GCCH,
                        _ => TEAMS_USER_PUBLIC,
                    }
                };
                format!("{prefix}{user_id}")
            }
            CommunicationIdentifier::MicrosoftTeamsApp { app_id, cloud, .. } => {
                let prefix = match cloud {
                    CommunicationCloud::Dod => TEAMS_APP_DOD,
                    CommunicationCloud::Gcch => TEAMS_APP_GCCH,
                    _ => TEAMS_APP_PUBLIC,
                };
                format!("{prefix}{app_id}")
            }
            CommunicationIdentifier::TeamsExtensionUser {
                user_id,
                tenant_id,
                resource_id,
                cloud,
                ..
            } => {
                let prefix = match cloud {
                    CommunicationCloud::Dod => ACS_USER_DOD,
                    CommunicationCloud::Gcch => ACS_USER_GCCH,
                    _ => ACS_USER,
                };
                format!("{prefix}{resource_id}_{tenant_id}_{user_id}")
            }
        }
    }

    /// Replaces a stored `raw_id` equal to the computed one by `None` (the canonical form).
    fn normalized(mut self) -> Self {
        let computed = self.computed_raw_id();
        match &mut self {
            CommunicationIdentifier::PhoneNumber { raw_id, .. }
            | CommunicationIdentifier::MicrosoftTeamsUser { raw_id, .. }
            | CommunicationIdentifier::MicrosoftTeamsApp { raw_id, .. }
            | CommunicationIdentifier::TeamsExtensionUser { raw_id, .. } => {
                if raw_id.as_deref() == Some(computed.as_str()) {
                    *raw_id = None;
                }
            }
            CommunicationIdentifier::CommunicationUser { .. }
            | CommunicationIdentifier::Unknown(_) => {}
        }
        self
    }
}

impl fmt::Display for CommunicationIdentifier {
    /// Writes the rawId.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw_id())
    }
}

/// Parses a rawId (see the module table). Never fails: anything unrecognised is
/// [`CommunicationIdentifier::Unknown`].
pub fn parse_raw_id(raw: &str) -> CommunicationIdentifier {
    if let Some(value) = raw.strip_prefix(PHONE) {
        let is_anonymous = value == ANONYMOUS_PHONE;
        let asserted_id = if is_anonymous {
            None
        } else {
            value
                .rfind('_')
                .map(|i| &value[i + 1..])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        return CommunicationIdentifier::PhoneNumber {
            value: value.to_owned(),
            is_anonymous,
            asserted_id,
            raw_id: None,
        };
    }

    let Some(first) = raw.find(':') else {
        return CommunicationIdentifier::Unknown(raw.to_owned());
    };
    let Some(second) = raw[first + 1..].find(':') else {
        return CommunicationIdentifier::Unknown(raw.to_owned());
    };
    let split = first + 1 + second + 1;
    let (prefix, suffix) = raw.split_at(split);

    let teams_user = |is_anonymous: bool, cloud: CommunicationCloud| {
        CommunicationIdentifier::MicrosoftTeamsUser {
            user_id: suffix.to_owned(),
            is_anonymous,
            cloud,
            raw_id: None,
        }
    };
    let teams_app = |cloud: CommunicationCloud| CommunicationIdentifier::MicrosoftTeamsApp {
        app_id: suffix.to_owned(),
        cloud,
        raw_id: None,
    };
    match prefix {
        TEAMS_USER_ANONYMOUS => teams_user(true, CommunicationCloud::Public),
        TEAMS_USER_PUBLIC => teams_user(false, CommunicationCloud::Public),
        TEAMS_USER_DOD => teams_user(false, CommunicationCloud::Dod),
        TEAMS_USER_GCCH => teams_user(false, CommunicationCloud::Gcch),
        TEAMS_APP_PUBLIC => teams_app(CommunicationCloud::Public),
        TEAMS_APP_DOD => teams_app(CommunicationCloud::Dod),
        TEAMS_APP_GCCH => teams_app(CommunicationCloud::Gcch),
        ACS_USER | ACS_USER_DOD | ACS_USER_GCCH => {
            let cloud = match prefix {
                ACS_USER_DOD => CommunicationCloud::Dod,
                ACS_USER_GCCH => CommunicationCloud::Gcch,
                _ => CommunicationCloud::Public,
            };
            teams_extension_user(suffix, cloud).unwrap_or_else(|| {
                CommunicationIdentifier::CommunicationUser { id: raw.to_owned() }
            })
        }
        SPOOL_USER => CommunicationIdentifier::CommunicationUser { id: raw.to_owned() },
        _ => CommunicationIdentifier::Unknown(raw.to_owned()),
    }
}

/// `{resourceId}_{tenantId}_{userId}` with exactly three non-empty parts.
fn teams_extension_user(
    suffix: &str,
    cloud: CommunicationCloud,
) -> Option<CommunicationIdentifier> {
    let mut parts = suffix.split('_');
    let (resource_id, tenant_id, user_id) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || resource_id.is_empty()
        || tenant_id.is_empty()
        || user_id.is_empty()
    {
        return None;
    }
    Some(CommunicationIdentifier::TeamsExtensionUser {
        user_id: user_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        resource_id: resource_id.to_owned(),
        cloud,
        raw_id: None,
    })
}

mod model;
pub use model::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    use crate::testvec::json as vector;

    fn cloud_of(expect: &Value) -> CommunicationCloud {
        CommunicationCloud::parse(expect["cloud"].as_str().unwrap_or("public"))
    }

    /// Every case of the JS SDK's `createIdentifierFromRawId` test: the parsed fields, then the
    /// rawId round trip, then the wire-model round trip.
    #[test]
    fn js_sdk_raw_id_vectors() {
        let v = vector("rawid_parsing_js_sdk_test_vectors.json");
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 33);
        for case in cases {
            let raw = case["rawId"].as_str().unwrap();
            let e = &case["expect"];
            let id = parse_raw_id(raw);
            match e["kind"].as_str().unwrap() {
                "communicationUser" => assert_eq!(
                    id,
                    CommunicationIdentifier::CommunicationUser {
                        id: e["communicationUserId"].as_str().unwrap().to_owned()
                    },
                    "{raw}"
                ),
                "phoneNumber" => assert_eq!(
                    id,
                    CommunicationIdentifier::PhoneNumber {
                        value: e["phoneNumber"].as_str().unwrap().to_owned(),
                        is_anonymous: e["isAnonymous"].as_bool().unwrap(),
                        asserted_id: e["assertedId"].as_str().map(str::to_owned),
                        raw_id: None,
                    },
                    "{raw}"
                ),
                "microsoftTeamsUser" => assert_eq!(
                    id,
                    CommunicationIdentifier::MicrosoftTeamsUser {
                        user_id: e["microsoftTeamsUserId"].as_str().unwrap().to_owned(),
                        is_anonymous: e["isAnonymous"].as_bool().unwrap(),
                        cloud: cloud_of(e),
                        raw_id: None,
                    },
                    "{raw}"
                ),
                "microsoftTeamsApp" => assert_eq!(
                    id,
                    CommunicationIdentifier::MicrosoftTeamsApp {
                        app_id: e["teamsAppId"].as_str().unwrap().to_owned(),
                        cloud: cloud_of(e),
                        raw_id: None,
                    },
                    "{raw}"
                ),
                "teamsExtensionUser" => assert_eq!(
                    id,
                    CommunicationIdentifier::TeamsExtensionUser {
                        user_id: e["userId"].as_str().unwrap().to_owned(),
                        tenant_id: e["tenantId"].as_str().unwrap().to_owned(),
                        resource_id: e["resourceId"].as_str().unwrap().to_owned(),
                        cloud: cloud_of(e),
                        raw_id: None,
                    },
                    "{raw}"
                ),
                "unknown" => assert_eq!(
                    id,
                    CommunicationIdentifier::Unknown(e["id"].as_str().unwrap().to_owned()),
                    "{raw}"
                ),
                other => panic!("unexpected kind {other}"),
            }
            assert_eq!(id.kind().as_str(), e["kind"].as_str().unwrap(), "{raw}");
            assert_eq!(id.raw_id(), raw, "raw id round trip");
            assert_eq!(id.to_string(), raw);

            // identifier → wire JSON → identifier.
            let model = CommunicationIdentifierModel::from(&id);
            assert_eq!(model.raw_id.as_deref(), Some(raw));
            assert_eq!(model.kind.as_ref(), Some(&id.kind()));
            model.validate().unwrap();
            let json = serde_json::to_string(&model).unwrap();
            let back: CommunicationIdentifierModel = serde_json::from_str(&json).unwrap();
            assert_eq!(back, model);
            assert_eq!(back.to_identifier(), id, "{json}");
            let direct: CommunicationIdentifier = serde_json::from_str(&json).unwrap();
            assert_eq!(direct, id);
        }
    }

    /// The round trips the JS test lists in prose: `8:spool:…` and two-part `8:acs:…` ids.
    #[test]
    fn spool_and_two_part_acs_ids_are_communication_users() {
        for raw in [
            "8:spool:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_45ab2481-1c1c-4005-be24-0ffb879b1130",
            "8:spool:a_b_c",
            "8:acs:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_45ab2481-1c1c-4005-be24-0ffb879b1130",
            "8:acs:a_b_c_d",
            "8:acs:a__c",
            "8:acs:_b_c",
            "8:acs:",
        ] {
            let id = parse_raw_id(raw);
            assert_eq!(
                id,
                CommunicationIdentifier::communication_user(raw),
                "{raw}"
            );
            assert_eq!(id.raw_id(), raw);
        }
    }

    #[test]
    fn odd_raw_ids_round_trip() {
        for raw in [
            "",
            ":",
            "::",
            "8:",
            "8:orgid:",
            "8:orgid:a:b",
            "28:orgid:x:y",
            "4:",
            "4:+1",
            "8:teamsvisitor:",
            "8:ORGID:abc",
            "é:ü:ö",
            "8:acs:x_y_z",
            "8:gcch-acs:x_y_z",
        ] {
            assert_eq!(parse_raw_id(raw).raw_id(), raw, "{raw:?}");
        }
        // Prefixes are case-sensitive, like the SDKs.
        assert_eq!(
            parse_raw_id("8:ORGID:abc"),
            CommunicationIdentifier::Unknown("8:ORGID:abc".into())
        );
        // The suffix may contain ':'.
        assert_eq!(
            parse_raw_id("8:orgid:a:b"),
            CommunicationIdentifier::MicrosoftTeamsUser {
                user_id: "a:b".into(),
                is_anonymous: false,
                cloud: CommunicationCloud::Public,
                raw_id: None
            }
        );
    }

    #[test]
    fn constructors_compute_raw_ids() {
        assert_eq!(
            CommunicationIdentifier::phone_number("+14255550123").raw_id(),
            "4:+14255550123"
        );
        assert_eq!(
            CommunicationIdentifier::teams_app("cc12").raw_id(),
            "28:orgid:cc12"
        );
        assert_eq!(
            CommunicationIdentifier::teams_user("u1").raw_id(),
            "8:orgid:u1"
        );
        assert_eq!(
            CommunicationIdentifier::teams_extension_user("u", "t", "r").raw_id(),
            "8:acs:r_t_u"
        );
        let dod_app = CommunicationIdentifier::MicrosoftTeamsApp {
            app_id: "a".into(),
            cloud: CommunicationCloud::Dod,
            raw_id: None,
        };
        assert_eq!(dod_app.raw_id(), "28:dod:a");
        let visitor = CommunicationIdentifier::MicrosoftTeamsUser {
            user_id: "v".into(),
            is_anonymous: true,
            cloud: CommunicationCloud::Gcch,
            raw_id: None,
        };
        assert_eq!(visitor.raw_id(), "8:teamsvisitor:v");
    }

    #[test]
    fn model_serializes_camel_case_both_directions() {
        let id = CommunicationIdentifier::phone_number("+14255550123");
        let v = serde_json::to_value(&id).unwrap();
        assert_eq!(
            v,
            json!({"kind":"phoneNumber","rawId":"4:+14255550123","phoneNumber":{"value":"+14255550123"}})
        );
        let teams = serde_json::to_value(CommunicationIdentifier::teams_user("u1")).unwrap();
        assert_eq!(
            teams,
            json!({"kind":"microsoftTeamsUser","rawId":"8:orgid:u1",
                   "microsoftTeamsUser":{"userId":"u1","isAnonymous":false,"cloud":"public"}})
        );
        let teu =
            serde_json::to_value(CommunicationIdentifier::teams_extension_user("u", "t", "r"))
                .unwrap();
        assert_eq!(
            teu,
            json!({"kind":"teamsExtensionUser","rawId":"8:acs:r_t_u",
                   "teamsExtensionUser":{"userId":"u","tenantId":"t","resourceId":"r","cloud":"public"}})
        );
        let unknown =
            serde_json::to_value(CommunicationIdentifier::Unknown("48:x".into())).unwrap();
        assert_eq!(unknown, json!({"kind":"unknown","rawId":"48:x"}));
    }

    #[test]
    fn model_without_raw_id_or_kind_uses_nested_object() {
        // REST example shape: kind + nested, no rawId.
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "kind": "communicationUser",
            "communicationUser": {"id": "8:acs:b9614373_ae9e3307"}
        }))
        .unwrap();
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::communication_user("8:acs:b9614373_ae9e3307")
        );
        assert_eq!(m.raw_id(), "8:acs:b9614373_ae9e3307");
        // No kind: SDK request shape.
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "rawId": "4:+12065551212", "phoneNumber": {"value": "+12065551212"}
        }))
        .unwrap();
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::phone_number("+12065551212")
        );
        // Re-serializes exactly as received.
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"rawId": "4:+12065551212", "phoneNumber": {"value": "+12065551212"}})
        );
    }

    #[test]
    fn unknown_kind_with_teams_app_raw_id_is_a_teams_app() {
        // Teams Phone extensibility docs sample (older kind mapping).
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "kind": "unknown", "rawId": "28:orgid:cc123456-5678-5678-1234-ccc123456789"
        }))
        .unwrap();
        assert_eq!(m.kind, Some(IdentifierKind::Unknown));
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::teams_app("cc123456-5678-5678-1234-ccc123456789")
        );
    }

    #[test]
    fn differing_wire_raw_id_is_kept() {
        // As in the Java test vector: a placeholder rawId with a phone number.
        let m: CommunicationIdentifierModel =
            serde_json::from_value(json!({"rawId": "rawId", "phoneNumber": {"value": "value"}}))
                .unwrap();
        let id = m.to_identifier();
        assert_eq!(
            id,
            CommunicationIdentifier::PhoneNumber {
                value: "value".into(),
                is_anonymous: false,
                asserted_id: None,
                raw_id: Some("rawId".into()),
            }
        );
        assert_eq!(id.raw_id(), "rawId");
        assert_eq!(CommunicationIdentifierModel::from(&id).to_identifier(), id);
        // A rawId equal to the computed one is normalised away.
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "rawId": "8:dod:u", "microsoftTeamsUser": {"userId": "u", "cloud": "dod"}
        }))
        .unwrap();
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::MicrosoftTeamsUser {
                user_id: "u".into(),
                is_anonymous: false,
                cloud: CommunicationCloud::Dod,
                raw_id: None
            }
        );
    }

    #[test]
    fn enums_are_case_insensitive_and_keep_unknown_values() {
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "kind": "MicrosoftTeamsApp", "microsoftTeamsApp": {"appId": "a", "cloud": "GCCH"}
        }))
        .unwrap();
        assert_eq!(m.kind, Some(IdentifierKind::MicrosoftTeamsApp));
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::MicrosoftTeamsApp {
                app_id: "a".into(),
                cloud: CommunicationCloud::Gcch,
                raw_id: None
            }
        );
        let m: CommunicationIdentifierModel =
            serde_json::from_value(json!({"kind": "botUser", "rawId": "99:x", "extra": [1, 2]}))
                .unwrap();
        assert_eq!(m.kind, Some(IdentifierKind::Other("botUser".into())));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"kind": "botUser", "rawId": "99:x"})
        );
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::Unknown("99:x".into())
        );
        // Non-string kind is a type error.
        assert!(
            serde_json::from_value::<CommunicationIdentifierModel>(json!({"kind": 3})).is_err()
        );
    }

    #[test]
    fn validate_rejects_invalid_unions() {
        let two: CommunicationIdentifierModel = serde_json::from_value(json!({
            "rawId": "4:+1", "phoneNumber": {"value": "+1"}, "communicationUser": {"id": "8:acs:x"}
        }))
        .unwrap();
        assert_eq!(
            two.validate(),
            Err(IdentifierError::MultipleNestedModels(vec![
                "communicationUser",
                "phoneNumber"
            ]))
        );
        // Invalid union falls back to the rawId.
        assert_eq!(
            two.to_identifier(),
            CommunicationIdentifier::phone_number("+1")
        );
        assert_eq!(
            CommunicationIdentifierModel::default().validate(),
            Err(IdentifierError::Empty)
        );
        assert_eq!(
            CommunicationIdentifierModel::default().to_identifier(),
            CommunicationIdentifier::Unknown(String::new())
        );
        let mismatch: CommunicationIdentifierModel = serde_json::from_value(json!({
            "kind": "phoneNumber", "communicationUser": {"id": "8:acs:x"}
        }))
        .unwrap();
        assert!(matches!(
            mismatch.validate(),
            Err(IdentifierError::KindMismatch {
                nested: "communicationUser",
                ..
            })
        ));
        // Missing required nested field is a deserialization error.
        assert!(serde_json::from_value::<CommunicationIdentifierModel>(
            json!({"phoneNumber": {"isAnonymous": true}})
        )
        .is_err());
    }

    #[test]
    fn teams_extension_model_without_resource_id_uses_raw_id() {
        let m: CommunicationIdentifierModel = serde_json::from_value(json!({
            "rawId": "8:acs:r_t_u",
            "teamsExtensionUser": {"userId": "u", "tenantId": "t"}
        }))
        .unwrap();
        assert_eq!(
            m.to_identifier(),
            CommunicationIdentifier::teams_extension_user("u", "t", "r")
        );
    }
}
