//! An app's JWK Set, checked when its request is submitted: fetched from its URL (short
//! timeouts, no redirects, at most [`MAX_BYTES`]) or read as pasted, and searched for a
//! public key Kiln can verify client assertions with (RS384 or ES384, with a `kid`). The
//! bounded fetch is also what the token endpoint uses (`auth::oauth::jwks_fetch`).

use std::sync::LazyLock;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWK Set read.
pub const MAX_BYTES: usize = 64 * 1024;

static HTTP: LazyLock<Option<reqwest::Client>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
});

/// What the check found, as the admin queue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksCheck {
    /// The URL fetched, or `pasted`.
    pub source: String,
    /// The usable keys, as `kid (alg)`.
    pub usable_keys: Vec<String>,
    /// Keys that cannot be used, and why.
    pub ignored_keys: Vec<String>,
    /// Why the JWK Set as a whole is refused (unreachable, not JSON, no usable key…).
    pub error: Option<String>,
}

impl JwksCheck {
    fn failed(source: &str, error: impl Into<String>) -> JwksCheck {
        JwksCheck {
            source: source.to_string(),
            usable_keys: Vec::new(),
            ignored_keys: Vec::new(),
            error: Some(error.into()),
        }
    }

    /// `Err` with the reason the JWK Set cannot be accepted.
    pub fn verdict(&self) -> Result<(), String> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// Fetches the JWK Set at `url` (parsed), with the response headers (for caching).
pub async fn fetch(url: &str) -> Result<(JwkSet, HeaderMap), String> {
    let (body, headers) = fetch_bytes(url).await?;
    let keys = serde_json::from_slice(&body)
        .map_err(|error| format!("the JWK Set is not valid: {error}"))?;
    Ok((keys, headers))
}

async fn fetch_bytes(url: &str) -> Result<(Vec<u8>, HeaderMap), String> {
    let http = HTTP.as_ref().ok_or("no HTTP client")?;
    let mut response = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|error| format!("fetching the JWK Set failed: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("the JWK Set URL answered {}", response.status()));
    }
    let too_large = || format!("the JWK Set is larger than {MAX_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BYTES as u64)
    {
        return Err(too_large());
    }
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("reading the JWK Set failed: {error}"))?
    {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, headers))
}

/// Fetches and checks the JWK Set at `url` (whose form `validate` already checked).
pub async fn check_url(url: &str) -> JwksCheck {
    match fetch_bytes(url).await {
        Ok((body, _)) => check_bytes(url, &body),
        Err(error) => JwksCheck::failed(url, error),
    }
}

/// Checks a pasted JWK Set.
pub fn check_text(text: &str) -> JwksCheck {
    if text.len() > MAX_BYTES {
        return JwksCheck::failed(
            "pasted",
            format!("the JWK Set is larger than {MAX_BYTES} bytes"),
        );
    }
    check_bytes("pasted", text.as_bytes())
}

fn check_bytes(source: &str, body: &[u8]) -> JwksCheck {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return JwksCheck::failed(source, "the JWK Set is not JSON");
    };
    let Some(keys) = value.get("keys").and_then(Value::as_array) else {
        return JwksCheck::failed(source, "the JWK Set has no \"keys\" array");
    };
    let mut check = JwksCheck {
        source: source.to_string(),
        usable_keys: Vec::new(),
        ignored_keys: Vec::new(),
        error: None,
    };
    for (index, key) in keys.iter().enumerate() {
        let label = key
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("key {}", index + 1), str::to_string);
        if ["d", "p", "q", "k"]
            .iter()
            .any(|private| key.get(private).is_some())
        {
            return JwksCheck::failed(
                source,
                format!("{label} contains private key material: publish only public keys"),
            );
        }
        match serde_json::from_value::<Jwk>(key.clone()) {
            Ok(jwk) => match usable(&jwk) {
                Ok(alg) => check.usable_keys.push(format!("{label} ({alg})")),
                Err(why) => check.ignored_keys.push(format!("{label}: {why}")),
            },
            Err(_) => check
                .ignored_keys
                .push(format!("{label}: not a key Kiln can read")),
        }
    }
    if check.usable_keys.is_empty() {
        check.error = Some(
            "the JWK Set has no key Kiln can verify client assertions with: it needs an RSA key \
             (RS384) or an EC P-384 key (ES384), each with a kid"
                .into(),
        );
    }
    check
}

/// The algorithm a key serves for client assertions, or why it cannot.
fn usable(jwk: &Jwk) -> Result<&'static str, String> {
    if jwk.common.key_id.as_deref().is_none_or(str::is_empty) {
        return Err("no kid".into());
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err("not a signature key (use)".into());
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => ("RS384", KeyAlgorithm::RS384),
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P384 => {
            ("ES384", KeyAlgorithm::ES384)
        }
        AlgorithmParameters::EllipticCurve(_) => return Err("an EC key not on P-384".into()),
        _ => return Err("neither RSA nor EC P-384".into()),
    };
    if jwk
        .common
        .key_algorithm
        .is_some_and(|declared| declared != alg.1)
    {
        return Err(format!("its alg is not {}", alg.0));
    }
    DecodingKey::from_jwk(jwk).map_err(|_| "its parameters are not valid".to_string())?;
    Ok(alg.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = r#"{"kty":"RSA","kid":"r1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;

    fn set(keys: &[&str]) -> String {
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    #[test]
    fn an_rsa_key_with_a_kid_is_usable() {
        let check = check_text(&set(&[RSA]));
        assert_eq!(check.verdict(), Ok(()));
        assert_eq!(check.usable_keys, ["r1 (RS384)"]);
    }

    #[test]
    fn unsuitable_keys_are_refused_with_a_reason() {
        let rs256 = RSA.replace(r#""kid":"r1""#, r#""kid":"r1","alg":"RS256""#);
        let no_kid = RSA.replace(r#""kid":"r1","#, "");
        let p256 = r#"{"kty":"EC","crv":"P-256","kid":"e1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let encryption = RSA.replace(r#""kid":"r1""#, r#""kid":"r1","use":"enc""#);
        for keys in [
            vec![rs256.as_str()],
            vec![no_kid.as_str()],
            vec![p256],
            vec![encryption.as_str()],
            vec![],
        ] {
            let check = check_text(&set(&keys));
            assert!(check.verdict().is_err(), "{keys:?} accepted");
        }
        let private = RSA.replace(r#""e":"AQAB""#, r#""e":"AQAB","d":"secret""#);
        let check = check_text(&set(&[&private]));
        assert!(check.verdict().unwrap_err().contains("private"));
        for junk in ["", "[]", r#"{"keys":{}}"#, "not json"] {
            assert!(check_text(junk).verdict().is_err(), "{junk} accepted");
        }
    }
}
