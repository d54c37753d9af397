//! The audit log's storage (migration 0017): AuditEvents appended to one hash chain, never
//! updated or deleted, and read back for search, verification and export.

pub mod chain;
pub mod hash;
pub mod query;
pub mod stored;
pub mod verify;
