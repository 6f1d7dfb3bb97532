//! Teams Phone extensibility (§7, §11): Teams user token exchange, Teams extension assignment,
//! Graph resource accounts.

#[allow(unused_imports)]
use super::*;

/// `POST /teamsUser/:exchangeAccessToken?api-version=2023-10-01` body: exchange a Teams user's
/// Entra token for an ACS token (the server half of the dual-persona agent sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsUserExchangeTokenRequest {
    /// The Entra access token of the Teams user.
    pub token: String,
    /// The Entra application (client) id.
    pub app_id: String,
    /// The Teams user's object id.
    pub user_id: String,
}

/// 200 response of the token exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentityAccessToken {
    /// The ACS token.
    pub token: String,
    /// Expiry, ISO 8601.
    pub expires_on: String,
}

/// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}?api-version=2025-06-30`
/// body: let the ACS resource receive calls for a Teams resource account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsExtensionAssignmentRequest {
    /// `teamsResourceAccount`.
    pub principal_type: TeamsExtensionPrincipalType,
}

/// 201 response of the assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsExtensionAssignment {
    /// The resource account object id.
    pub object_id: String,
    /// The tenant id.
    pub tenant_id: String,
    /// `teamsResourceAccount`.
    pub principal_type: TeamsExtensionPrincipalType,
}

/// One Teams resource account from Microsoft Graph ([`GRAPH_RESOURCE_ACCOUNTS_URL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccount {
    /// Object id: the IncomingCall `to` is `28:orgid:{id}`.
    pub id: String,
    /// UPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// The Teams app id the account is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `tel:+1234567890`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The ACS resource id the account is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acs_resource_id: Option<String>,
}

impl ResourceAccount {
    /// The identifier calls to this account carry (`28:orgid:{id}`).
    pub fn identifier(&self) -> CommunicationIdentifier {
        CommunicationIdentifier::teams_app(self.id.clone())
    }

    /// The phone number without the `tel:` scheme.
    pub fn e164(&self) -> Option<&str> {
        self.phone_number.as_deref().map(|p| {
            p.strip_prefix("tel:")
                .or_else(|| p.strip_prefix("TEL:"))
                .unwrap_or(p)
        })
    }
}

/// Graph list response `{"@odata.context", "value": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccountList {
    /// OData context URL.
    #[serde(
        default,
        rename = "@odata.context",
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_context: Option<String>,
    /// The accounts.
    #[serde(default)]
    pub value: Vec<ResourceAccount>,
}
