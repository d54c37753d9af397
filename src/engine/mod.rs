//! FHIR interactions independent of HTTP: reads and history ([`read`]), searches, preparing
//! resources, planning versioned writes, patches ([`patch`]), conditional references,
//! transaction/batch Bundles and the pages a bulk export reads ([`export`]), each applying
//! the caller's access (`crate::access`). Used by the REST layer, bulk export and import; it
//! imports `fhir`, `search`, `store` and `access`, never the application state or an
//! HTTP-facing module.

pub mod append_only;
pub mod conditional;
mod cursor;
pub mod export;
pub mod index;
pub mod patch;
pub mod prepare;
pub mod prepared;
pub mod read;
pub mod reindex;
pub mod search;
pub mod transaction;
pub mod write;
