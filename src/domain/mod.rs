//! Plain types and rules of Barong's domain: users, labels, levels, permissions, restrictions.
//! Nothing here does I/O; storage and HTTP build on these types.

pub mod abilities;
mod access;
pub mod activity;
mod admin;
mod api_key;
pub mod client_ip;
mod document;
pub mod event;
mod label;
mod mail;
pub mod passkey;
pub mod password;
mod phone;
mod profile;
pub mod role;
pub mod session;
mod signing_key;
mod user;
mod user_state;

pub use access::{
    Level, NewLevel, NewPermission, NewRestriction, Permission, Restriction,
    default_restriction_code, is_restriction_code,
};
pub use activity::{Activity, NewActivity};
pub use admin::{
    ActivityFilter, Comment, LabelFilter, LabelWrite, USER_ORDER_COLUMNS, UserFilter, UserUpdate,
};
pub use api_key::{
    ApiKey, KeyHolder, NewApiKey, NewServiceAccount, ServiceAccount, ServiceAccountRequest,
    scope_from_column, scope_to_column, service_account_email, validate_service_account,
};
pub use client_ip::TrustedProxies;
pub use document::{
    ADDRESS_DOC_TYPE, DOC_CATEGORIES, Document, NewDocument, UploadKind, doc_number_is_valid,
    mask_doc_number, normalise_doc_number,
};
pub use event::{NewEvent, OutboxEvent};
pub use label::{Label, LabelScope, StateRules, derive_level, derive_state};
pub use mail::{NewMail, OneTimeClaim, OutboxMail};
pub use phone::{
    NewPhone, NormalisedPhone, PHONE_CHANNELS, Phone, mask_phone, normalise_phone, phone_code,
};
pub use profile::{
    NewProfile, Profile, ProfileChanges, ProfileData, ProfileState, country_is_valid, mask_dob,
    mask_last_name, parse_date, squish, validate_profile,
};
pub use session::{
    Binding, NewSession, Session, SessionCookie, SessionDigest, SessionPolicies, SessionPolicy,
    describe_device, mask_ip, network_of, session_cookie, session_digest, session_digest_of_key,
    session_key,
};
pub use signing_key::StoredSigningKey;
pub use user::{
    DATA_MAX, DATA_STORAGE_MAX, DataStorage, NewLabel, NewUser, User, UserInput, data_is_valid,
    email_is_valid, generate_uid, user_language, validate_user,
};
pub use user_state::{CustomState, UserState};
