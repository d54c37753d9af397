//! Bulk Data Access (Flat FHIR) export: kick-off, a database-backed job queue with a
//! worker, status and manifest, and the ndjson files. Imports the engine, `access`, `http`,
//! the application state and the bearer check of `auth`; never `rest`, `app` or the CLI.

mod job;
pub mod kickoff;
mod members;
mod organize;
mod output;
mod params;
mod run;
pub mod status;
mod stream;
pub mod worker;
