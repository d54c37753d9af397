//! Application state: what every handler reaches — the store, the settings, the
//! CapabilityStatement, Kiln's signing keys, the export file storage and the mailer. It sits
//! above the engine and below every HTTP-facing module (`rest`, `auth`, `bulk`, `portal`),
//! which import it; it must not import them, the router (`app`) or the CLI.

pub mod export_files;
pub mod keys;
pub mod replicas;

use std::sync::Arc;

use axum::extract::FromRef;
use serde_json::Value;

use crate::audit::Recorder;
use crate::config::ServeConfig;
use crate::mail::{MailError, Mailer};
use crate::store::Store;
use export_files::{ExportStorage, StorageError};
use keys::KeyRing;
use replicas::{Draining, ReadReplica};

/// What every handler can reach: one shared allocation, so the clone each extractor and
/// layer takes per request is a single reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`], reached through it by `Deref`.
pub struct Shared {
    pub store: Store,
    pub config: Arc<ServeConfig>,
    pub capability: Arc<Value>,
    pub keys: Arc<KeyRing>,
    /// Where export files are written and read: shared by replicas when it is a bucket.
    pub exports: ExportStorage,
    /// Outgoing mail (SMTP, or the log when none is configured).
    pub mailer: Mailer,
    /// Set when shutdown begins (`/readyz` then answers 503).
    pub draining: Draining,
    /// The standby that answers reads, when `KILN_DATABASE_READ_URL` is set.
    pub read_replica: Option<Arc<ReadReplica>>,
    /// The audit log's batched writer (off under `--disable-audit`).
    pub audit: Recorder,
}

/// Settings the state cannot be built with.
#[derive(Debug)]
pub enum StateError {
    Storage(StorageError),
    Mail(MailError),
    /// The audit spool cannot be opened (or another server holds it).
    AuditSpool(std::io::Error),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Storage(error) => error.fmt(formatter),
            StateError::Mail(error) => error.fmt(formatter),
            StateError::AuditSpool(error) => error.fmt(formatter),
        }
    }
}

impl std::error::Error for StateError {}

impl AppState {
    /// The store that answers `client`'s searches, history and reads of exports: the
    /// standby when one is configured and has replayed the client's writes, else the primary.
    pub async fn reads_for(&self, client: &str) -> Store {
        match &self.read_replica {
            Some(replica) => replica.for_client(client).await,
            None => self.store.clone(),
        }
    }

    /// Page sizes from the configuration.
    pub fn page_limits(&self) -> crate::engine::search::PageLimits {
        crate::engine::search::PageLimits {
            default: self.config.default_page_size,
            max: self.config.max_page_size,
        }
    }

    /// `capability` is the CapabilityStatement served at `/metadata`. Fails when the export
    /// store settings are unusable. Starts the audit log's writer task: call it on the
    /// runtime.
    pub fn new(
        store: Store,
        config: ServeConfig,
        capability: Value,
        read_replica: Option<Arc<ReadReplica>>,
    ) -> Result<Self, StateError> {
        // Retired keys stay published as long as anything they signed may still be checked.
        let keys = KeyRing::new(store.clone(), config.auth.access_token_lifetime + 300);
        let exports = ExportStorage::from_config(&config.export).map_err(StateError::Storage)?;
        let mailer = Mailer::from_config(&config.mail).map_err(StateError::Mail)?;
        let audit = match (&config.audit_spool_dir, config.disable_audit) {
            (Some(dir), false) => Recorder::spooled(store.clone(), config.fhir_base(), dir)
                .map_err(StateError::AuditSpool)?,
            _ => Recorder::start(store.clone(), config.fhir_base(), !config.disable_audit),
        };
        Ok(AppState(Arc::new(Shared {
            store,
            config: Arc::new(config),
            capability: Arc::new(capability),
            keys: Arc::new(keys),
            exports,
            mailer,
            draining: Draining::default(),
            read_replica,
            audit,
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Handlers that need only part of the state take just that part (`State<Store>`,
/// `State<Arc<ServeConfig>>`, `State<Arc<KeyRing>>`, `State<ExportStorage>`, `State<Mailer>`).
impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<ServeConfig> {
    fn from_ref(state: &AppState) -> Arc<ServeConfig> {
        state.config.clone()
    }
}

impl FromRef<AppState> for Arc<KeyRing> {
    fn from_ref(state: &AppState) -> Arc<KeyRing> {
        state.keys.clone()
    }
}

impl FromRef<AppState> for ExportStorage {
    fn from_ref(state: &AppState) -> ExportStorage {
        state.exports.clone()
    }
}

impl FromRef<AppState> for Mailer {
    fn from_ref(state: &AppState) -> Mailer {
        state.mailer.clone()
    }
}
