//! Every role name signet itself gives meaning to, and the route-guard
//! markers built from them. Other role names are the operators' own.

/// Every account has it from registration on.
pub const USER: &str = "user";
/// May use the admin API (`/v1/admin/*`); Django superusers import with it.
pub const ADMIN: &str = "admin";
/// Django staff users import with it.
pub const STAFF: &str = "staff";

/// Roles with a meaning inside signet: never granted by accident (for
/// example by an imported group that happens to share the name).
pub const RESERVED: [&str; 3] = [USER, ADMIN, STAFF];

// `RequireRole<Admin>` for services built on signet-verify; signet's own admin
// routes take `http::caller::RequireAdmin`, which checks `ADMIN`.
signet_verify::roles!(Admin = "admin");
