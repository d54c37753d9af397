//! Resource-agnostic FHIR: ids, instants, meta stamping, how a person's name reads,
//! OperationOutcome, validation.
//!
//! The base layer: imports nothing else from the crate (its HTTP response lives in `http`).

pub mod id;
pub mod instant;
pub mod meta;
pub mod name;
pub mod outcome;
pub mod subset;
pub mod validate;
