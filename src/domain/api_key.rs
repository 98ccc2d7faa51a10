//! API keys and the service accounts that may hold them.

use chrono::{DateTime, Utc};

use super::UserState;

/// Who holds an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHolder {
    User(i64),
    ServiceAccount(i64),
}

impl KeyHolder {
    /// Barong's `key_holder_account_type` column value.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::User(_) => "User",
            Self::ServiceAccount(_) => "ServiceAccount",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            Self::User(id) | Self::ServiceAccount(id) => id,
        }
    }

    /// Rebuilds a holder from the two columns; unknown types are refused.
    pub fn from_columns(type_name: &str, id: i64) -> Option<Self> {
        match type_name {
            "User" => Some(Self::User(id)),
            "ServiceAccount" => Some(Self::ServiceAccount(id)),
            _ => None,
        }
    }
}

/// A stored API key; `secret_encrypted` is never shown after creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub holder: KeyHolder,
    pub kid: String,
    pub algorithm: String,
    pub scope: Vec<String>,
    pub secret_encrypted: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Epoch seconds of the last authenticated use (written behind by the authz path, so up to
    /// `BARONG_SESSION_WRITE_BEHIND` late); `None` before the first.
    pub last_used_at: Option<i64>,
}

/// What it takes to create a key (the secret already encrypted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub holder: KeyHolder,
    pub kid: String,
    pub algorithm: String,
    pub scope: Vec<String>,
    pub secret_encrypted: String,
    pub state: String,
}

/// A service account: authenticates only through API keys, on behalf of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: i64,
    pub uid: String,
    pub owner_id: Option<i64>,
    pub email: String,
    pub role: String,
    pub level: i32,
    pub state: UserState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create a service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceAccount {
    pub uid: String,
    pub owner_id: Option<i64>,
    pub email: String,
    pub role: String,
    pub level: i32,
    pub state: UserState,
}

/// The scope column holds the list as comma-separated text (Barong serializes it; we keep a
/// plain, greppable form).
pub fn scope_to_column(scope: &[String]) -> String {
    scope.join(",")
}

/// Inverse of [`scope_to_column`]; an empty column is an empty list.
pub fn scope_from_column(column: Option<&str>) -> Vec<String> {
    match column {
        Some(text) if !text.is_empty() => text.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A new service account as the management API asks for it, before the rules ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRequest {
    pub uid: String,
    pub email: String,
    pub role: String,
    /// The role has a permission row.
    pub role_known: bool,
    /// The uid or e-mail is already a user's.
    pub clashes_with_user: bool,
}

/// Barong's service account validation keys (`role.doesnt_exist`, `email_or_uid.not_uniq`,
/// `email.blank`, `email.invalid`), in the model's order.
pub fn validate_service_account(request: &ServiceAccountRequest) -> Vec<String> {
    let mut errors = Vec::new();
    if !request.role_known {
        errors.push("role.doesnt_exist".to_owned());
    }
    if request.clashes_with_user {
        errors.push("email_or_uid.not_uniq".to_owned());
    }
    if request.email.trim().is_empty() {
        errors.push("email.blank".to_owned());
    } else if !crate::domain::email_is_valid(&request.email) {
        errors.push("email.invalid".to_owned());
    }
    errors
}

/// The e-mail of an owned service account without one: `<local>+<uid>@<domain>` of the owner's.
pub fn service_account_email(owner_email: &str, uid: &str) -> String {
    match owner_email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{uid}@{domain}"),
        None => String::new(),
    }
}
