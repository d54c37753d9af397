//! Throttling of password guessing on the sign-in pages (the EHR user's `auth::pages::login`
//! and the developer portal's): failed sign-ins are counted per account and source address,
//! and per source address whatever the account, in the store's attempt counters.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::store::{Store, StoreResult};

/// Failed sign-ins of one account from one source address within [`LOGIN_WINDOW`] after
/// which that account's sign-in from that source waits for the window to end (OWASP:
/// throttle password guessing per account). Per source, so guessing from one address does
/// not lock the account out everywhere else.
const MAX_LOGIN_FAILURES: i64 = 5;
/// Failed sign-ins from one source address, whatever the accounts, within [`LOGIN_WINDOW`]
/// after which sign-in from that source waits (one password sprayed over many accounts).
const MAX_SOURCE_FAILURES: i64 = 25;
/// Seconds of the window failed sign-ins are counted in.
const LOGIN_WINDOW: i64 = 15 * 60;

/// The source a sign-in is counted against: the socket peer's address (no proxy header is
/// trusted), an IPv6 peer by its /64 network, which one host can hop around freely.
pub fn source_of(peer: Option<SocketAddr>) -> String {
    match peer.map(|peer| peer.ip().to_canonical()) {
        Some(IpAddr::V6(ip)) => {
            let network = u128::from(ip) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
        Some(IpAddr::V4(ip)) => ip.to_string(),
        None => "unknown".to_string(),
    }
}

/// One sign-in attempt, reserved before its password is checked.
pub struct Attempt {
    account_key: String,
    source_key: String,
}

/// Whether an attempt may go on.
pub enum Reserved {
    /// Check the password, then report the outcome.
    Go(Attempt),
    /// Too many failures: the message to show (with the minutes to wait).
    Throttled(String),
}

impl Attempt {
    /// Reserves an attempt to sign in to `account` (kind: `user` on the EHR sign-in,
    /// `developer` on the portal's) from `source` ([`source_of`]). Each attempt is reserved
    /// before its password is checked, so concurrent guesses get no more checks than the
    /// limit; refused before any check, guessing gains nothing.
    pub async fn reserve(
        store: &Store,
        kind: &str,
        account: &str,
        source: &str,
        now: i64,
    ) -> StoreResult<Reserved> {
        let account_key = format!(
            "{kind} {source} {}",
            account.chars().take(256).collect::<String>()
        );
        let source_key = format!("source {source}");
        let window_after = now - LOGIN_WINDOW;
        let refusal = |started: i64, message: &str| {
            let minutes = (started + LOGIN_WINDOW - now + 59) / 60;
            format!("{message} Try again in {minutes} minute(s).")
        };
        let attempts = store
            .reserve_login_attempt(&account_key, now, window_after, MAX_LOGIN_FAILURES)
            .await?;
        if attempts.count > MAX_LOGIN_FAILURES {
            return Ok(Reserved::Throttled(refusal(
                attempts.window_start,
                "Too many failed sign-ins for this account.",
            )));
        }
        let from_source = store
            .reserve_login_attempt(&source_key, now, window_after, MAX_SOURCE_FAILURES)
            .await?;
        if from_source.count > MAX_SOURCE_FAILURES {
            store.release_login_attempt(&account_key).await?;
            return Ok(Reserved::Throttled(refusal(
                from_source.window_start,
                "Too many failed sign-ins from your network.",
            )));
        }
        Ok(Reserved::Go(Attempt {
            account_key,
            source_key,
        }))
    }

    /// The password was right: the account's failures are forgotten and the source's
    /// reservation given back.
    pub async fn succeeded(self, store: &Store) -> StoreResult<()> {
        store.clear_login_attempts(&self.account_key).await?;
        store.release_login_attempt(&self.source_key).await
    }
}
