//! Login sessions and the refresh-token chain: login, refresh rotation with
//! reuse detection, logout.

pub mod cookie;
pub mod flows;
pub mod handlers;
pub mod model;
pub mod service;
