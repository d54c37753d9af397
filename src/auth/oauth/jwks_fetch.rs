//! A client's JWK Set from its registered URL, fetched by `crate::apps::jwks_check::fetch`
//! (short timeouts, no redirects, a size cap) and cached no longer than the response's
//! `Cache-Control` allows.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use reqwest::header::{CACHE_CONTROL, HeaderMap};

/// How long a JWK Set without caching directives is kept.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest any JWK Set is kept, whatever its server says.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches at most this often per URL, so forged assertions cannot
/// make Kiln hammer a client's server.
const REFETCH_FLOOR: Duration = Duration::from_secs(1);

struct Cached {
    keys: JwkSet,
    fetched: Instant,
    max_age: Duration,
}

static CACHE: LazyLock<Mutex<HashMap<String, Cached>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The client's JWK Set, refetched once when it lacks `kid`.
pub async fn keys_with(url: &str, kid: &str) -> Result<JwkSet, String> {
    let refetch = match cached(url) {
        Some((keys, _)) if keys.find(kid).is_some() => return Ok(keys),
        Some((_, fetched)) => fetched.elapsed() >= REFETCH_FLOOR,
        None => true,
    };
    if !refetch {
        return Err(format!("no key {kid} in the client's JWK Set"));
    }
    let (keys, max_age) = fetch(url).await?;
    if !max_age.is_zero() {
        let mut cache = CACHE.lock().unwrap_or_else(|poison| poison.into_inner());
        cache.insert(
            url.to_owned(),
            Cached {
                keys: keys.clone(),
                fetched: Instant::now(),
                max_age,
            },
        );
    }
    Ok(keys)
}

fn cached(url: &str) -> Option<(JwkSet, Instant)> {
    let cache = CACHE.lock().unwrap_or_else(|poison| poison.into_inner());
    cache
        .get(url)
        .filter(|entry| entry.fetched.elapsed() < entry.max_age)
        .map(|entry| (entry.keys.clone(), entry.fetched))
}

async fn fetch(url: &str) -> Result<(JwkSet, Duration), String> {
    let (keys, headers) = crate::apps::jwks_check::fetch(url)
        .await
        .map_err(|error| format!("the client's JWK Set: {error}"))?;
    Ok((keys, max_age(&headers)))
}

/// How long a response may be cached: zero for `no-store`/`no-cache`, else its `max-age`
/// (default five minutes), never more than an hour.
fn max_age(headers: &HeaderMap) -> Duration {
    let mut max_age: Option<Duration> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            return Duration::ZERO;
        };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Duration::ZERO;
            }
            if let Some(seconds) = lower.strip_prefix("max-age=") {
                let seconds = seconds.trim_matches('"').parse().unwrap_or(0);
                let seconds = Duration::from_secs(seconds);
                max_age = Some(max_age.map_or(seconds, |age| age.min(seconds)));
            }
        }
    }
    max_age.unwrap_or(DEFAULT_MAX_AGE).min(LONGEST_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn cache_lifetime_follows_cache_control() {
        assert_eq!(max_age(&HeaderMap::new()), DEFAULT_MAX_AGE);
        assert_eq!(
            max_age(&headers("public, max-age=60")),
            Duration::from_secs(60)
        );
        assert_eq!(max_age(&headers("max-age=86400")), LONGEST_MAX_AGE);
        assert_eq!(max_age(&headers("no-store")), Duration::ZERO);
        assert_eq!(max_age(&headers("max-age=60, no-cache")), Duration::ZERO);
        assert_eq!(max_age(&headers("max-age=junk")), Duration::ZERO);
    }
}
