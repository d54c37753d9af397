//! Black-box tests: the real `kiln` binary over real HTTP, on SQLite and on PostgreSQL.

mod common;

mod admin_console;
mod apps;
mod auth_admin;
mod auth_authorize;
mod auth_token;
mod auth_token_grants;
mod browser;
mod bulk_export;
mod bulk_export_s3;
mod capability;
mod cli;
mod composite_search;
mod concurrency;
mod crud;
mod db_trouble;
mod developer_portal;
mod docref;
mod docs;
mod errors;
mod first_run;
mod history;
mod indexing;
mod negotiation;
mod operations;
mod paging;
mod postman;
mod search;
mod smart_access;
mod smart_access_limits;
mod tls;
mod token_create;
mod transaction;
mod us_core_search;
mod validation;
