#![expect(clippy::unwrap_used, reason = "a test should fail loudly at the first surprise")]

//! The one integration-test binary (one link step for all API tests).
//! Each test spawns the real service on port 0 with its own database, on
//! SQLite and, when SIGNET_TEST_POSTGRES_URL is set, on PostgreSQL.

mod helpers;

mod abuse;
mod accounts;
mod admin;
mod attacks;
mod audit;
mod bearer;
mod cli;
mod cookies;
mod data_files;
mod drf;
mod errors;
mod hardening;
mod import;
mod import_limits;
mod interop;
mod keys;
mod logs;
mod metrics;
mod oauth;
mod openapi;
mod proptests;
mod purge;
mod resilience;
mod rotation;
mod schema;
mod sessions;
mod shutdown;
mod status_list_outage;
mod status_lists;
mod tokens;
