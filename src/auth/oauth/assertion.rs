//! `private_key_jwt` client authentication (RFC 7523, SMART Backend Services): a JWT of at
//! most [`MAX_BYTES`], signed with RS384 or ES384 by a key from the client's registered JWK
//! Set, with no critical header extension (RFC 7515 §4.1.11: Kiln understands none) and
//! issued no later than now.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::endpoint::OAuthError;
use super::jwks_fetch;
use crate::store::Store;
use crate::store::auth::Client;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Tolerated clock difference between the client and Kiln, in seconds.
const CLOCK_SKEW: i64 = 30;
/// The furthest ahead an assertion's `exp` may be (SMART: five minutes).
const LONGEST_LIFETIME: i64 = 300;
/// The largest client assertion read: a signed JWT with a certificate chain fits easily.
pub const MAX_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
struct Claims {
    /// Required by the validation; optional here so its absence is reported as such.
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// Refuses an assertion larger than [`MAX_BYTES`] before anything decodes it.
pub fn check_size(assertion: &str) -> Result<(), OAuthError> {
    if assertion.len() > MAX_BYTES {
        return Err(OAuthError::invalid_client(format!(
            "the client assertion is larger than {MAX_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The client an assertion claims to come from (`sub`), read before it is verified, only
/// to know whose keys verify it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        sub: Option<String>,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Subject>(assertion)
        .ok()?
        .sub
}

/// Verifies `assertion` as `client`'s proof of identity; its `aud` must be one of
/// `audiences` (the token endpoint, or the endpoint called).
pub async fn verify(
    store: &Store,
    client: &Client,
    assertion: &str,
    audiences: &[&str],
    now: i64,
) -> Result<(), OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        OAuthError::invalid_client("the client assertion is not a JWT signed with RS384 or ES384")
    })?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(OAuthError::invalid_client(
            "the client assertion must be signed with RS384 or ES384",
        ));
    }
    if header.crit.is_some() {
        return Err(OAuthError::invalid_client(
            "the client assertion's crit header names extensions Kiln does not understand",
        ));
    }
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_client("the client assertion has no kid"))?;
    if let Some(jku) = &header.jku
        && client.jwks_uri.as_deref() != Some(jku.as_str())
    {
        return Err(OAuthError::invalid_client(
            "the client assertion's jku is not the client's registered JWK Set URL",
        ));
    }
    let keys = client_keys(client, kid).await?;
    let jwk = keys.find(kid).ok_or_else(|| {
        OAuthError::invalid_client(format!("no key {kid} in the client's JWK Set"))
    })?;
    let alg_fits = jwk
        .common
        .key_algorithm
        .is_none_or(|alg| alg.to_string() == format!("{:?}", header.alg));
    let use_fits = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature);
    if !alg_fits || !use_fits {
        return Err(OAuthError::invalid_client(format!(
            "the key {kid} is not for {:?} signatures",
            header.alg
        )));
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| OAuthError::invalid_client(format!("the key {kid} cannot be used")))?;
    let mut validation = Validation::new(header.alg);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_audience(audiences);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.leeway = CLOCK_SKEW as u64;
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|error| OAuthError::invalid_client(refusal(error.kind())))?
        .claims;
    let exp = claims
        .exp
        .ok_or_else(|| OAuthError::invalid_client("the client assertion has no exp"))?;
    if exp > now + LONGEST_LIFETIME + CLOCK_SKEW {
        return Err(OAuthError::invalid_client(
            "the client assertion's exp is more than five minutes ahead",
        ));
    }
    if claims.iat.is_some_and(|iat| iat > now + CLOCK_SKEW) {
        return Err(OAuthError::invalid_client(
            "the client assertion's iat is in the future",
        ));
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| OAuthError::invalid_client("the client assertion has no jti"))?;
    // Remembered until the assertion could no longer pass the exp check.
    if !store
        .record_assertion_jti(&client.client_id, &jti, exp + CLOCK_SKEW, now)
        .await?
    {
        return Err(OAuthError::invalid_client(
            "the client assertion's jti was already used",
        ));
    }
    Ok(())
}

async fn client_keys(client: &Client, kid: &str) -> Result<JwkSet, OAuthError> {
    if let Some(url) = &client.jwks_uri {
        return jwks_fetch::keys_with(url, kid)
            .await
            .map_err(OAuthError::invalid_client);
    }
    client
        .jwks
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| OAuthError::invalid_client("the client has no usable JWK Set"))
}

fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the client assertion has expired",
        ErrorKind::ImmatureSignature => "the client assertion is not valid yet",
        ErrorKind::InvalidAudience => "the client assertion's aud must be the token endpoint URL",
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            "the client assertion's iss and sub must both be the client_id"
        }
        ErrorKind::MissingRequiredClaim(_) => {
            "the client assertion needs exp, iss, sub and aud claims"
        }
        ErrorKind::InvalidSignature => "the client assertion's signature does not verify",
        _ => "the client assertion is not valid",
    }
}
