//! Plain types and rules of Barong's domain: users, labels, levels, permissions, restrictions.
//! Nothing here does I/O; storage and HTTP build on these types.

mod access;
mod activity;
mod api_key;
pub mod client_ip;
pub mod event;
mod label;
mod mail;
pub mod password;
mod session;
mod user;

pub use access::{Level, NewLevel, NewPermission, NewRestriction, Permission, Restriction};
pub use activity::{Activity, NewActivity};
pub use api_key::{
    ApiKey, KeyHolder, NewApiKey, NewServiceAccount, ServiceAccount, scope_from_column,
    scope_to_column,
};
pub use client_ip::client_ip;
pub use event::{NewEvent, OutboxEvent};
pub use label::{Label, StateRules, derive_level, derive_state};
pub use mail::{NewMail, OutboxMail};
pub use session::{NewSession, Session, session_key};
pub use user::{
    DATA_MAX, DATA_STORAGE_MAX, DataStorage, NewLabel, NewUser, User, UserInput, data_is_valid,
    email_is_valid, generate_uid, user_language, validate_user,
};
