//! One file per domain. A handler extracts, calls one domain function and
//! maps the result; the work itself lives in the domain.

pub mod accounts;
pub mod admin;
pub mod api_tokens;
pub mod audit;
pub mod clients;
pub mod keys;
pub mod meta;
pub mod oauth;
pub mod sessions;
pub mod status_lists;
