//! Signing keys: generation per algorithm, encryption at rest under a master
//! key, the rotation lifecycle, the in-memory key ring, JWKS and discovery.

pub mod algorithms;
pub mod commands;
pub mod master;
pub mod model;
pub mod ring;
pub mod rotation;
pub mod service;
pub mod signer;
