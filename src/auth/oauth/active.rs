//! Whether a presented token is live: known, of the right kind, unexpired, not revoked, its
//! grant not revoked and its client still registered and usable (`Client::usable`: not
//! disabled by a suspension or retirement). Checked in the database on every use,
//! so a revocation takes effect at once on every replica.

use crate::crypto::digest_hex;
use crate::store::auth::{TokenKind, TokenRecord};
use crate::store::{Store, StoreResult};

pub async fn live_token(
    store: &Store,
    raw_token: &str,
    kind: TokenKind,
    now: i64,
) -> StoreResult<Option<TokenRecord>> {
    let Some(record) = store.token(&digest_hex(raw_token)).await? else {
        return Ok(None);
    };
    let live = record.kind == kind
        && record.expires_at > now
        && !record.revoked
        && !record.grant.revoked
        && record.client_usable;
    Ok(live.then_some(record))
}
