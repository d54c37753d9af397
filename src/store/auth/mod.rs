//! Rows of the SMART authorization server (migration 0004): clients, users, signing keys,
//! browser sessions, launches, grants, codes, tokens and assertion ids; the signal every
//! revoking write sends to the caches of verified tokens (`revocation`).

mod browser;
pub(crate) mod clients;
mod grants;
mod keys;
pub mod revocation;
mod signin;
mod throttle;
mod users;

pub use browser::{Launch, Pending, Session};
pub use clients::Client;
pub use grants::{Code, Grant, TokenKind, TokenRecord};
pub use keys::SigningKeyRow;
pub use users::{User, UserSummary};
