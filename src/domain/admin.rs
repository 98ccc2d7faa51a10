//! Plain types of the admin area: comments, and the filters and changes the admin API asks
//! the store for.

use chrono::{DateTime, Utc};

use super::UserState;

/// An admin's note on a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub user_id: i64,
    pub author_uid: String,
    pub title: String,
    pub data: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of `GET /admin/users`; `None` means no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub uid: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    /// Any of the user's profiles has this country.
    pub country: Option<String>,
    pub level: Option<i64>,
    pub state: Option<String>,
    /// Filter on `updated_at` instead of `created_at`.
    pub range_updated: bool,
    /// Epoch seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// A column of [`USER_ORDER_COLUMNS`].
    pub order_by: String,
    pub descending: bool,
}

/// Filters of the users-by-label listings (`GET /admin/users/labels`, management
/// `labels/filter/users`): a user matches when one of its labels matches every given field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
    pub scope: Option<String>,
    /// Bound the label's `updated_at` instead of its `created_at`.
    pub range_updated: bool,
    /// Epoch seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// The users columns a listing may be ordered by (Barong accepts any column of the table).
pub const USER_ORDER_COLUMNS: &[&str] = &[
    "id",
    "uid",
    "username",
    "email",
    "password_digest",
    "role",
    "data",
    "level",
    "otp",
    "state",
    "referral_id",
    "created_at",
    "updated_at",
];

/// Filters of `GET /admin/activities` and `.../admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// `user` or `admin`.
    pub category: String,
    pub topic: Option<String>,
    pub action: Option<String>,
    /// Of the acting user.
    pub uid: Option<String>,
    pub email: Option<String>,
    pub target_uid: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One change of `PUT /admin/users`, `POST /admin/users/update` or `POST /admin/users/role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserUpdate {
    State(UserState),
    Otp(bool),
    Email(String),
    Role(String),
}

/// How an admin label write treats an existing or missing (user, key, scope) label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelWrite {
    /// `POST labels`: a new label; an existing one is a conflict on `key`.
    Create { description: Option<String> },
    /// `PUT labels` (`replace` false: must exist) and `POST labels/update` (`upsert`: created
    /// when missing). `description: None` keeps it when `clear_description` is false.
    Update {
        description: Option<String>,
        clear_description: bool,
        upsert: bool,
    },
}
