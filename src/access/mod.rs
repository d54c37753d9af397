//! Access policy: what the caller of a FHIR request may do. SMART scopes ([`scope`]), what
//! a token reaches on a type ([`reach`]), and the checks the engine applies to every read,
//! search, include, history entry, write, Bundle entry and export page ([`check`]).
//!
//! Sits between the store and the engine: it may import `fhir`, `search` and `store`, never
//! `engine`, the application state or any HTTP-facing module (`auth`, `rest`, `bulk`).

pub mod check;
pub mod reach;
pub mod scope;
