//! The role names the code itself decides on. A role stays text: in Barong any permission row
//! may name a new one, so the set is open; only these few have a meaning here.

/// Manages everything, and is the only role that may change another superadmin or an e-mail.
pub const SUPERADMIN: &str = "superadmin";
/// Barong's default abilities give it most of the admin API.
pub const ADMIN: &str = "admin";
/// The role of a new user.
pub const MEMBER: &str = "member";
