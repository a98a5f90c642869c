//! Admin API over users, guarded by role `admin`.

pub mod handlers;
