//! User accounts: registration, the password scheme and policy, `/me`,
//! importing users from Django.

pub mod commands;
pub mod import;
pub mod model;
pub mod password;
pub mod rules;
pub mod service;
pub mod throttle;
pub mod username;
