//! Resource-agnostic FHIR: ids, instants, meta stamping, OperationOutcome, validation.

pub mod id;
pub mod instant;
pub mod meta;
pub mod outcome;
pub mod subset;
pub mod validate;
