//! Plain types and rules of Barong's domain: users, labels, levels, permissions, restrictions.
//! Nothing here does I/O; storage and HTTP build on these types.

mod access;
mod activity;
pub mod password;
mod session;
mod user;

pub use access::{Level, NewLevel, NewPermission, NewRestriction, Permission, Restriction};
pub use activity::{Activity, NewActivity};
pub use session::{NewSession, Session, session_key};
pub use user::{NewLabel, NewUser, User, generate_uid};
