//! The per-replica cache of verified access tokens, in front of the database check of
//! `active` on every FHIR request. Keyed by the token's SHA-256 (the raw token is never kept);
//! an entry holds what the handlers need, already parsed (the [`Granted`] with its scopes) and
//! the token's expiry, so a hit costs a hash and a lookup.
//!
//! - Bounded ([`CAPACITY`] entries) and short-lived: an entry lives the configured TTL
//!   (`--token-cache-ttl`, default 30 s; 0 turns the cache off) and never past the token's
//!   own expiry, which is also checked on every hit.
//! - Revocation: an entry is trusted only while the revocation generation
//!   (`store::auth::revocation`: the process's epoch, and on SQLite the stamp every process
//!   on the file moves on) is the one read before its database lookup; every revoking write
//!   moves it on (in this process directly, on other replicas through PostgreSQL
//!   `LISTEN/NOTIFY`, in other processes on a SQLite file through the stamp). On PostgreSQL
//!   the cache is bypassed (every token checked in the database) while this replica's
//!   listener is not connected; on SQLite while the stamp cannot be read.
//! - Hits and misses are counted for `kiln bench` ([`counts`]) and `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::active::live_record;
use crate::access::reach::Granted;
use crate::access::scope::ScopeSet;
use crate::crypto::{hex, sha256};
use crate::store::auth::TokenKind;
use crate::store::auth::revocation::{Listening, epoch, read_stamp};
use crate::store::{Backend, Store, StoreResult};

/// Tokens held at most; past it the least used go first.
pub const CAPACITY: u64 = 100_000;

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// Token checks of this process answered from the cache (hits) and from the database
/// (misses: unknown, bypassed or stale entries), since it started.
pub fn counts() -> (u64, u64) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

#[derive(Clone)]
struct Entry {
    granted: Arc<Granted>,
    /// Unix seconds.
    expires_at: i64,
    /// The revocation generation read before the database lookup that found the token live.
    generation: Generation,
    /// How long the entry may live: the TTL or the token's remaining life, if shorter.
    lifetime: Duration,
}

struct Lifetime;

impl Expiry<[u8; 32], Entry> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        entry: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }
}

/// The process's revocation epoch and the database's revocation stamp.
type Generation = (u64, u64);

/// When the cache may be trusted.
enum Trust {
    /// SQLite: while the stamp (this file; none in memory) can be read.
    WhileStamped(Option<PathBuf>),
    /// PostgreSQL: while this replica's listener of revocations is connected.
    WhileListening(Listening),
}

pub struct TokenCache {
    /// `None` when the TTL is 0: every token is checked in the database.
    entries: Option<Cache<[u8; 32], Entry>>,
    ttl: Duration,
    trust: Trust,
    /// The epoch the entries were last cleared at.
    cleared_at: AtomicU64,
    /// The stamp the entries were last cleared at.
    cleared_at_stamp: AtomicU64,
}

impl TokenCache {
    /// A cache for `store` with entries living at most `ttl`; on PostgreSQL it starts this
    /// replica's listener of revocations.
    pub fn new(store: &Store, ttl: Duration) -> TokenCache {
        let trust = match (store.backend(), store.listen_revocations()) {
            (Backend::Postgres, Some(listening)) => Trust::WhileListening(listening),
            _ => Trust::WhileStamped(store.revocation_stamp_path()),
        };
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(Lifetime)
                .build()
        });
        let stamp = match &trust {
            Trust::WhileStamped(path) => read_stamp(path.as_deref()).unwrap_or(0),
            Trust::WhileListening(_) => 0,
        };
        TokenCache {
            entries,
            ttl,
            trust,
            cleared_at: AtomicU64::new(epoch()),
            cleared_at_stamp: AtomicU64::new(stamp),
        }
    }

    /// The grant of a live access token, from the cache or the database; `None` when the
    /// token is unknown, expired or revoked.
    pub async fn granted(
        &self,
        store: &Store,
        raw_token: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<Granted>>> {
        let key = sha256(raw_token.as_bytes());
        // Read before the database lookup: a revocation committed after it moves the epoch
        // on, and what this lookup found is then never trusted.
        let current = self.generation();
        let trusted = current.and_then(|current| {
            self.entries
                .as_ref()
                .filter(|_| self.trusted(current))
                .map(|entries| (entries, current))
        });
        if let Some((entries, current)) = trusted
            && let Some(entry) = entries.get(&key).await
            && entry.generation == current
            && entry.expires_at > now
        {
            HITS.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::token_cache(true);
            return Ok(Some(entry.granted));
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::token_cache(false);
        let token_id = hex(&key);
        let Some(record) = live_record(store, &token_id, TokenKind::Access, now).await? else {
            return Ok(None);
        };
        let granted = Arc::new(Granted {
            client_id: record.grant.client_id,
            scopes: ScopeSet::parse(&record.scope),
            patient: record.grant.patient,
            fhir_user: record.grant.fhir_user,
            username: record.grant.username,
            token_id: Some(token_id),
        });
        if let Some((entries, current)) = trusted {
            let remaining = u64::try_from(record.expires_at - now).unwrap_or(0);
            let entry = Entry {
                granted: granted.clone(),
                expires_at: record.expires_at,
                generation: current,
                lifetime: self.ttl.min(Duration::from_secs(remaining)),
            };
            entries.insert(key, entry).await;
        }
        Ok(Some(granted))
    }

    /// The revocation generation now; `None` when it cannot be known (the SQLite stamp is
    /// unreadable).
    fn generation(&self) -> Option<Generation> {
        let stamp = match &self.trust {
            Trust::WhileStamped(path) => read_stamp(path.as_deref())?,
            Trust::WhileListening(_) => 0,
        };
        Some((epoch(), stamp))
    }

    /// Whether entries may be used now; clears them once after every change of generation
    /// (entries of an older one are never used; this frees them).
    fn trusted(&self, (epoch, stamp): Generation) -> bool {
        let trusted = match &self.trust {
            Trust::WhileStamped(_) => true,
            Trust::WhileListening(listening) => listening.is_live(),
        };
        let moved = self.cleared_at.swap(epoch, Ordering::AcqRel) != epoch;
        let stamped = self.cleared_at_stamp.swap(stamp, Ordering::AcqRel) != stamp;
        if (moved || stamped)
            && let Some(entries) = &self.entries
        {
            entries.invalidate_all();
        }
        trusted
    }
}
