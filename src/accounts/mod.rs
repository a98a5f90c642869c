//! User accounts: registration, the password scheme and policy, `/me`.

pub mod handlers;
pub mod model;
pub mod password;
pub mod rules;
pub mod service;
pub mod throttle;
