//! Running as one replica of several: the drain flag that takes this process out of the load
//! balancer when it shuts down (`/readyz`), and the choice between the primary and a
//! streaming standby for reads (`KILN_DATABASE_READ_URL`).
//!
//! Read-your-writes compares WAL positions rather than routing to the primary for a fixed
//! window after a write: a window is either too long (needless primary reads) or too short
//! (a lagging standby serves a stale read), while a fence is exact whatever the lag. The
//! fence lives in the primary database, not in this process, because the client's next
//! request may land on another replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::store::Store;

/// Set once shutdown has begun: `/readyz` answers 503 from then on.
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How long an export run waits for the standby to catch up before it reads the primary.
const EXPORT_CATCH_UP: Duration = Duration::from_secs(5);
const CATCH_UP_POLL: Duration = Duration::from_millis(100);

/// The primary and its standby.
pub struct ReadReplica {
    primary: Store,
    standby: Store,
}

impl ReadReplica {
    pub fn new(primary: Store, standby: Store) -> ReadReplica {
        ReadReplica { primary, standby }
    }

    /// After `client` wrote: its reads stay on the primary until the standby replays this.
    pub async fn wrote(&self, client: &str) {
        if let Err(error) = self.primary.record_read_fence(client).await {
            tracing::warn!(%error, "could not record the write position for read-your-writes");
        }
    }

    /// Where `client` reads: the standby, unless it has not yet replayed the client's
    /// latest write (or cannot say), then the primary.
    pub async fn for_client(&self, client: &str) -> Store {
        let fence = match self.primary.read_fence(client).await {
            Ok(None) => return self.standby.clone(),
            Ok(Some(fence)) => fence,
            Err(error) => {
                tracing::warn!(%error, "could not read the write position; reading the primary");
                return self.primary.clone();
            }
        };
        match self.standby.replayed_past(&fence).await {
            Ok(true) => self.standby.clone(),
            Ok(false) => self.primary.clone(),
            Err(error) => {
                tracing::warn!(%error, "the read replica does not answer; reading the primary");
                self.primary.clone()
            }
        }
    }

    /// Where an export run reads: the standby once it holds everything committed before the
    /// run started (so every write before the kick-off), else the primary.
    pub async fn for_export(&self) -> Store {
        let Ok(Some(fence)) = self.primary.current_wal_position().await else {
            return self.primary.clone();
        };
        let deadline = tokio::time::Instant::now() + EXPORT_CATCH_UP;
        loop {
            if let Ok(true) = self.standby.replayed_past(&fence).await {
                return self.standby.clone();
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::info!("the read replica lags; this export reads the primary");
                return self.primary.clone();
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }
}
