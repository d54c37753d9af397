//! The OAuth 2.0 protocol side of the authorization server, as typed outcomes and JSON: the
//! checks of an authorization request (`authorize`; its page is `pages/authorize.rs`), the
//! token endpoint (`token`) and its grants (`code_grant`, `refresh_grant`, `backend_grant`),
//! client authentication (`client_auth`, `assertion`, `jwks_fetch`), token issuing (`issue`,
//! and `operator` for tokens minted on the command line),
//! introspection, revocation, discovery, dynamic client registration (`registration`, with
//! the RFC 7591 metadata mapping in `client_metadata`), and the bearer-token check in front
//! of the FHIR API (`bearer`, `active`, and the replica's cache of verified tokens
//! `token_cache`). The signing keys live in `crate::state::keys`. Errors are the RFC 6749 §5.2 answer
//! (`endpoint`); nothing here renders HTML or imports `pages`.

mod active;
mod assertion;
pub mod authorize;
mod backend_grant;
pub mod bearer;
mod client_auth;
mod client_metadata;
pub mod code_grant;
pub mod discovery;
mod endpoint;
pub mod introspect;
pub mod issue;
mod jwks_fetch;
pub mod operator;
mod refresh_grant;
pub mod registration;
pub mod revoke;
pub mod token;
pub mod token_cache;
