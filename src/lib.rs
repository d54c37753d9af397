//! Kiln: a SMART-on-FHIR R4 server.

pub mod access;
pub mod admin;
pub mod app;
pub mod apps;
pub mod auth;
pub mod bench;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod docs;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod import;
pub mod logging;
pub mod mail;
pub mod portal;
pub mod rest;
pub mod router;
pub mod sample;
pub mod search;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
