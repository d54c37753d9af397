//! What a developer (or an operator, or a client registering itself) asks for: the
//! registration request of one app revision, stored as JSON in `app_revisions.request`.
//! Empty strings mean "not given", so a form maps onto it field by field.

use serde::{Deserialize, Serialize};

/// Who uses the app, which decides its scopes, grants and client type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Patients reach their own records (`patient/` scopes).
    Patient,
    /// Clinicians inside the EHR (`user/` and `patient/` scopes).
    Practitioner,
    /// A backend service without a user (`system/` scopes, client credentials).
    Backend,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Patient => "patient",
            Audience::Practitioner => "practitioner",
            Audience::Backend => "backend",
        }
    }
}

/// How the app authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientType {
    /// No credentials (a browser or native app; PKCE only).
    Public,
    /// A shared secret, shown once at approval.
    ConfidentialSymmetric,
    /// A key pair: the public keys at `jwks_uri` or pasted as `jwks`.
    ConfidentialAsymmetric,
}

impl ClientType {
    /// The name `auth_clients.client_type` stores.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::ConfidentialSymmetric => "confidential-symmetric",
            ClientType::ConfidentialAsymmetric => "confidential-asymmetric",
        }
    }
}

/// SMART scope syntax: App Launch 1.0 (`.read`/`.write`) or 2.x (`.cruds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeVersion {
    V1,
    V2,
}

/// A registration request (one revision of an app).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppRequest {
    pub audience: Option<Audience>,
    /// The use case: what the app does with the data.
    pub purpose: String,
    pub intended_users: String,
    pub contact_name: String,
    pub contact_email: String,
    pub name: String,
    pub description: String,
    /// The digest of a logo stored with `apps::logo::store`.
    pub logo: Option<String>,
    pub app_url: String,
    pub privacy_url: String,
    pub terms_url: String,
    /// Sign-off (logout) URL.
    pub logout_url: String,
    pub client_type: Option<ClientType>,
    /// JWK Set URL (confidential-asymmetric; or `jwks`).
    pub jwks_uri: String,
    /// A pasted JWK Set (confidential-asymmetric; or `jwks_uri`).
    pub jwks: String,
    pub redirect_uris: Vec<String>,
    /// EHR launch URL.
    pub launch_url: String,
    pub refresh_tokens: bool,
    pub scope_version: Option<ScopeVersion>,
    pub scopes: Vec<String>,
    /// The sites or practices the app will serve.
    pub sites: String,
    /// The operator's terms were accepted.
    pub accepted_terms: bool,
}

impl AppRequest {
    /// The OAuth grant types the approved client gets.
    pub fn grant_types(&self) -> Vec<String> {
        let names: &[&str] = match (self.audience, self.refresh_tokens) {
            (Some(Audience::Backend), _) => &["client_credentials"],
            (_, true) => &["authorization_code", "refresh_token"],
            (_, false) => &["authorization_code"],
        };
        names.iter().map(|name| name.to_string()).collect()
    }

    /// The scopes, space separated (what the client may be granted at most).
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    /// `Some` text of an optional field that was given.
    pub fn given(text: &str) -> Option<String> {
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}
