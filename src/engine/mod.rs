//! FHIR interactions independent of HTTP: preparing resources, planning versioned writes,
//! conditional references and transaction/batch Bundles. Used by the REST layer and import.

pub mod conditional;
mod cursor;
pub mod index;
pub mod prepare;
pub mod read;
pub mod reindex;
pub mod search;
pub mod transaction;
pub mod write;
