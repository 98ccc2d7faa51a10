//! Plain types and rules of Barong's domain: users, labels, levels, permissions, restrictions.
//! Nothing here does I/O; storage and HTTP build on these types.

mod access;
mod activity;
mod api_key;
pub mod client_ip;
pub mod password;
mod session;
mod user;

pub use access::{Level, NewLevel, NewPermission, NewRestriction, Permission, Restriction};
pub use activity::{Activity, NewActivity};
pub use api_key::{
    ApiKey, KeyHolder, NewApiKey, NewServiceAccount, ServiceAccount, scope_from_column,
    scope_to_column,
};
pub use session::{NewSession, Session, session_key};
pub use user::{NewLabel, NewUser, User, generate_uid};
