//! Kiln's SMART App Launch authorization server, grouped by role: `oauth`, the protocol that
//! apps and services speak (token endpoint and grants, client authentication, introspection,
//! revocation, discovery, the bearer check on every FHIR request); `pages`, the browser pages a
//! person sees (authorize, login, patient and encounter pickers, consent, EHR launcher,
//! connected apps); and what both use: `crypto`, `form`, the endpoint URLs and the clock.
//! Scopes and what a token reaches live in `crate::access`, the signing keys in
//! `crate::state::keys`, the operator commands (`kiln client …`) in `cli/auth.rs`.
//! It imports `access`, the engine, the store and the application state; never `rest`,
//! `bulk`, `app` or the CLI.

pub mod oauth;
pub mod pages;

/// Seconds since the Unix epoch: the unit of every time in the auth tables and in JWTs.
pub use crate::fhir::instant::now_secs as now;

/// The endpoints a SMART app uses, relative to `{base-url}`.
pub struct Endpoints {
    /// The FHIR base URL (`{base-url}/fhir`), the `aud` of every token and the `iss` of an
    /// EHR launch.
    pub fhir_base: String,
    pub authorize: String,
    pub token: String,
    pub introspect: String,
    pub revoke: String,
    pub jwks: String,
    pub manage: String,
    pub style: String,
    /// Dynamic client registration (RFC 7591), when it is enabled.
    pub register: String,
}

impl Endpoints {
    pub fn new(base_url: &str) -> Endpoints {
        let base = base_url.trim_end_matches('/');
        Endpoints {
            fhir_base: format!("{base}/fhir"),
            authorize: format!("{base}/auth/authorize"),
            token: format!("{base}/auth/token"),
            introspect: format!("{base}/auth/introspect"),
            revoke: format!("{base}/auth/revoke"),
            jwks: format!("{base}/auth/jwks"),
            manage: format!("{base}/auth/apps"),
            style: format!("{base}/auth/smart-style.json"),
            register: format!("{base}/auth/register"),
        }
    }

    /// A registered client's configuration endpoint (RFC 7592).
    pub fn registration_client(&self, client_id: &str) -> String {
        format!("{}/{client_id}", self.register)
    }
}
