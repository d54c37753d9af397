//! Client authentication at the token, introspection and revocation endpoints: public
//! clients by `client_id` alone (or, when refreshing, by their refresh token), symmetric
//! ones by `client_secret_basic` or `client_secret_post` (a rotated-out secret until its
//! overlap ends), asymmetric ones by `private_key_jwt`. A disabled client (an app awaiting
//! review, suspended or retired) is refused, saying which.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::active::live_token;
use super::assertion::{self, JWT_BEARER};
use super::endpoint::{OAuthError, Params};
use crate::apps::Status;
use crate::crypto::verify_secret;
use crate::store::auth::{Client, TokenKind};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A public client: `client_id` only.
    None,
    SecretBasic,
    SecretPost,
    PrivateKeyJwt,
}

/// A client whose identity was proven (or, for a public client, stated).
pub struct Authenticated {
    pub client: Client,
    pub method: Method,
}

/// Authenticates the calling client; `audiences` are the `aud` values a client assertion
/// may carry.
pub async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
    params: &Params,
    audiences: &[&str],
    now: i64,
) -> Result<Authenticated, OAuthError> {
    let basic = basic_credentials(headers)?;
    let assertion_sent =
        params.get("client_assertion_type").is_some() || params.get("client_assertion").is_some();
    let secret_sent = params.get("client_secret").is_some();
    let methods = [basic.is_some(), secret_sent, assertion_sent];
    if methods.iter().filter(|sent| **sent).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let form_id = params.get("client_id");
    let (client_id, method) = if let Some((id, _)) = &basic {
        (id.clone(), Method::SecretBasic)
    } else if secret_sent {
        (
            form_id
                .ok_or_else(|| OAuthError::invalid_client("client_id is missing"))?
                .to_owned(),
            Method::SecretPost,
        )
    } else if assertion_sent {
        if params.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let jwt = params.require("client_assertion")?;
        assertion::check_size(jwt)?;
        let claimed = assertion::claimed_client(jwt)
            .or(form_id.map(str::to_owned))
            .ok_or_else(|| OAuthError::invalid_client("the client assertion names no client"))?;
        (claimed, Method::PrivateKeyJwt)
    } else {
        (
            form_id
                .ok_or_else(|| OAuthError::invalid_client("the client is not identified"))?
                .to_owned(),
            Method::None,
        )
    };
    let refuse = |description: &str| {
        let mut error = OAuthError::invalid_client(description);
        error.basic_challenge = method == Method::SecretBasic;
        error
    };
    if form_id.is_some_and(|id| id != client_id) {
        return Err(refuse("client_id does not match the client's credentials"));
    }
    let Some(client) = store.client(&client_id).await? else {
        return Err(refuse("unknown client"));
    };
    if !client.usable() {
        return Err(refuse(unusable(store, &client).await?));
    }
    match method {
        Method::None => {
            if client.client_type != "public" {
                return Err(refuse("this client must authenticate"));
            }
        }
        Method::SecretBasic | Method::SecretPost => {
            let secret = match &basic {
                Some((_, secret)) => secret.as_str(),
                None => params.get("client_secret").unwrap_or_default(),
            };
            let verified = client.client_type == "confidential-symmetric"
                && secret_matches(&client, secret, now);
            if !verified {
                return Err(refuse("client authentication failed"));
            }
        }
        Method::PrivateKeyJwt => {
            if client.client_type != "confidential-asymmetric" {
                return Err(refuse("this client does not authenticate with a key pair"));
            }
            let jwt = params.require("client_assertion")?;
            assertion::verify(store, &client, jwt, audiences, now).await?;
        }
    }
    Ok(Authenticated { client, method })
}

/// Whether `secret` is the client's secret, or its previous one while a rotation's overlap
/// lasts. Both hashes are checked (argon2id, constant time) whatever the first answer.
fn secret_matches(client: &Client, secret: &str, now: i64) -> bool {
    let current = client
        .secret_hash
        .as_deref()
        .is_some_and(|hash| verify_secret(secret, hash));
    let previous = client
        .previous_secret_expires_at
        .is_some_and(|expires_at| expires_at > now)
        && client
            .previous_secret_hash
            .as_deref()
            .is_some_and(|hash| verify_secret(secret, hash));
    current | previous
}

/// The client of a `refresh_token` grant. A request that identifies no client at all (no
/// `client_id`, no credentials) is a public client's: RFC 6749 §6 requires authentication
/// only of clients that have credentials, and the refresh token names its client (this is
/// how the SMART JavaScript client refreshes). That client must be public; any other
/// request is authenticated as usual.
pub async fn authenticate_refresh(
    store: &Store,
    headers: &HeaderMap,
    params: &Params,
    audiences: &[&str],
    now: i64,
) -> Result<Authenticated, OAuthError> {
    let identified = basic_credentials(headers)?.is_some()
        || [
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
        ]
        .iter()
        .any(|name| params.get(name).is_some());
    if identified {
        return authenticate(store, headers, params, audiences, now).await;
    }
    let raw = params.require("refresh_token")?;
    let client = match live_token(store, raw, TokenKind::Refresh, now).await? {
        Some(record) => store.client(&record.grant.client_id).await?,
        None => None,
    };
    let Some(client) = client else {
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    };
    if client.client_type != "public" {
        return Err(OAuthError::invalid_client(
            "this client must authenticate to refresh its tokens",
        ));
    }
    Ok(Authenticated {
        client,
        method: Method::None,
    })
}

/// `Authorization: Basic` credentials: each part form-urlencoded (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || {
        let mut error = OAuthError::invalid_client("malformed Basic credentials");
        error.basic_challenge = true;
        error
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

/// Decodes `application/x-www-form-urlencoded` text (`+` and `%XX`); `None` if malformed.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = (input.next()? as char).to_digit(16)?;
                let low = (input.next()? as char).to_digit(16)?;
                (high * 16 + low) as u8
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

/// Why a disabled client is refused: its app's status ("this client is awaiting review").
pub async fn unusable(store: &Store, client: &Client) -> Result<&'static str, StoreError> {
    let app = store.app_by_client(&client.client_id).await?;
    Ok(app
        .and_then(|app| Status::parse(&app.status))
        .map_or("this client is disabled", Status::refusal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my%20app:p%3Ass+w" per RFC 6749 §2.3.1.
        let encoded = STANDARD.encode("my%20app:p%3Ass+w");
        let parsed = basic_credentials(&with_authorization(&format!("Basic {encoded}")))
            .unwrap()
            .unwrap();
        assert_eq!(parsed, ("my app".to_string(), "p:ss w".to_string()));
        assert!(
            basic_credentials(&with_authorization("Bearer abc"))
                .unwrap()
                .is_none()
        );
        for bad in ["Basic !!!", "Basic bm9jb2xvbg==", "Basic JXp6OnNlY3JldA=="] {
            let error = basic_credentials(&with_authorization(bad)).unwrap_err();
            assert_eq!(error.error, "invalid_client");
            assert!(error.basic_challenge);
        }
    }

    #[test]
    fn form_decoding_refuses_bad_escapes() {
        assert_eq!(form_decode("a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%ff"), None);
    }
}
