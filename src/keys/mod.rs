//! Signing keys: storage, the in-memory key ring, JWKS and discovery.

pub mod handlers;
pub mod model;
pub mod ring;
