//! HTTP helpers shared by the HTTP-facing modules (`rest`, `bulk`): media types and content
//! negotiation, path-segment validation, typed extractors (validated path segments, the FHIR
//! request body), and the HTTP response for a `FhirError`.
//!
//! Imports `fhir`, `engine` and the access types only; must not import `rest`, `bulk`, `auth`
//! handlers, `app` or the router.

pub mod error;
pub mod extract;
pub mod form;
pub mod negotiate;
pub mod path;
