//! Login sessions and the refresh-token chain: login, refresh rotation with
//! reuse detection, logout.

pub mod account_changes;
pub mod model;
pub mod service;
