//! Whether a presented token is live: known, of the right kind, unexpired, not revoked, its
//! grant not revoked and its client still registered and usable (`Client::usable`: not
//! disabled by a suspension or retirement). Checked in the database; the bearer check of
//! FHIR requests keeps what it found for a short while (`token_cache`), and every revocation
//! clears that on every replica.

use crate::crypto::digest_hex;
use crate::store::auth::{TokenKind, TokenRecord};
use crate::store::{Store, StoreResult};

pub async fn live_token(
    store: &Store,
    raw_token: &str,
    kind: TokenKind,
    now: i64,
) -> StoreResult<Option<TokenRecord>> {
    live_record(store, &digest_hex(raw_token), kind, now).await
}

/// [`live_token`] by the token's digest (hex), as stored.
pub async fn live_record(
    store: &Store,
    token_hash: &str,
    kind: TokenKind,
    now: i64,
) -> StoreResult<Option<TokenRecord>> {
    let Some(record) = store.token(token_hash).await? else {
        return Ok(None);
    };
    let live = record.kind == kind
        && record.expires_at > now
        && !record.revoked
        && !record.grant.revoked
        && record.client_usable;
    Ok(live.then_some(record))
}
