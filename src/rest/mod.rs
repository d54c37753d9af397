//! HTTP handlers, one module per FHIR interaction. They parse the request, call the engine
//! and write the answer; they import the engine, `http`, the application state and, for
//! the endpoint URLs in the CapabilityStatement, `auth` — never `bulk`, the router, `app` or
//! the CLI. Their routes are listed in `crate::router`.

pub mod audit;
pub mod audit_trail;
pub mod body_budget;
pub mod capability;
pub mod docref;
pub mod health;
pub mod history;
pub mod metrics;
pub mod operations;
pub mod outcome_layer;
pub mod patch;
pub mod read;
pub mod read_routing;
pub mod search;
pub mod system;
pub mod write;
