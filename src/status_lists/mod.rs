//! Token status lists (draft-ietf-oauth-status-list): every session and every
//! API token's exchanged access tokens hold an index in a bounded list; a
//! revocation flips the index's bit in the revoking transaction; the lists are
//! served signed and zlib-compressed, and changes are announced.
//!
//! - `model`: the tables, race-free index allocation, flips, retirement.
//! - `bits`: the draft's bit layout and its zlib/base64url encoding.
//! - `jwt`: the signed `statuslist+jwt`.
//! - `service`: per-instance cache of signed lists, version poll, event fan-out.

pub mod bits;
pub mod jwt;
pub mod model;
pub mod service;

pub use model::StatusRef;
