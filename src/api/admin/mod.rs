//! The admin namespace: operators manage users, labels, permissions,
//! restrictions, keys and read activities. Every call carries the bearer JWT the authz path
//! minted (`api::auth::CurrentUser`); what the caller's role may do is decided by
//! [`Admin::authorize`] from `domain::abilities`, the one place abilities are checked.
//! Every call an AUDIT permission covers writes one admin activity whatever its outcome
//! (`audit`), and every change the authz caches hold is published on the invalidation bus.

mod access;
mod activities;
mod audit;
mod labels;
mod profiles;
mod sessions;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde_json::Value;

use super::ApiState;
use super::auth::CurrentUser;
use super::error::ApiError;
use super::params::Validator;
use crate::domain::abilities::{self, Action, Resource};
use crate::domain::{User, role};
use crate::service::error::Key;

/// The admin routes (mounted under `/admin`), each call audited as its permissions say.
pub fn routes(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/abilities", get(access::abilities))
        .route("/levels", get(access::levels))
        .route("/users", get(users::list).put(users::update))
        .route("/users/update", post(users::update_state_otp))
        .route("/users/role", post(users::role))
        .route("/users/documents/pending", get(users::documents_pending))
        .route(
            "/users/data_storage",
            axum::routing::delete(users::delete_data_storage),
        )
        .route(
            "/users/labels",
            get(labels::filter_users)
                .post(labels::create)
                .put(labels::update)
                .delete(labels::destroy),
        )
        .route("/users/labels/list", get(labels::counts))
        .route("/users/labels/update", post(labels::update_or_create))
        .route(
            "/users/comments",
            post(users::comment_create)
                .put(users::comment_update)
                .delete(users::comment_delete),
        )
        .route(
            "/users/sessions",
            get(sessions::list).delete(sessions::destroy),
        )
        .route("/users/{uid}", get(users::show))
        .route("/api_keys", get(activities::api_keys))
        .route(
            "/permissions",
            get(access::permissions)
                .post(access::permission_create)
                .put(access::permission_update)
                .delete(access::permission_delete),
        )
        .route(
            "/restrictions",
            get(access::restrictions)
                .post(access::restriction_create)
                .put(access::restriction_update)
                .delete(access::restriction_delete),
        )
        .route("/restrictions/whitelink", post(access::whitelink))
        .route(
            "/profiles",
            get(profiles::list)
                .put(profiles::update)
                .post(profiles::create),
        )
        .route("/activities", get(activities::user_activities))
        .route("/activities/admin", get(activities::admin_activities))
        .route("/metrics", get(activities::metrics))
        .layer(axum::middleware::from_fn_with_state(state, audit::layer))
}

/// The caller of an admin endpoint: the bearer's user.
pub struct Admin {
    pub user: User,
    /// Where the audit layer takes the call's target from (absent when no AUDIT row applies).
    note: Option<audit::AuditNote>,
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        Ok(Self {
            user: current.user,
            note: parts.extensions.get::<audit::AuditNote>().cloned(),
        })
    }
}

impl Admin {
    /// Barong's `admin_authorize!(action, Model)`: `401 admin.ability.not_permitted` unless
    /// the caller's role has the ability.
    pub fn authorize(&self, action: Action, resource: Resource) -> Result<(), ApiError> {
        if abilities::permits(&self.user.role, action, resource) {
            Ok(())
        } else {
            Err(ApiError::from(Key::AdminAbilityNotPermitted))
        }
    }

    /// Names the user this call was about, for its audit row (see `audit`), when the handler
    /// knows it better than the `uid`/`user_uid` parameter says.
    pub fn target(&self, uid: &str) {
        if let Some(note) = &self.note {
            note.target(uid);
        }
    }
}

/// `404 admin.user.doesnt_exist`.
fn user_not_found() -> ApiError {
    ApiError::from(Key::AdminUserDoesntExist)
}

/// The user named by `uid`, or `404 admin.user.doesnt_exist`.
async fn target_user(state: &ApiState, uid: &str) -> Result<User, ApiError> {
    state
        .store
        .find_user_by_uid(uid)
        .await?
        .ok_or_else(user_not_found)
}

/// Barong's superadmin guard: only a superadmin changes a superadmin.
fn superadmin_guard(admin: &Admin, target: &User) -> Result<(), ApiError> {
    if target.role == role::SUPERADMIN && admin.user.role != role::SUPERADMIN {
        return Err(ApiError::unprocessable(vec![
            "admin.user.superadmin_change".into(),
        ]));
    }
    Ok(())
}

/// An optional Grape Boolean: `true`/`false` (any case) or a JSON boolean, else `invalid_key`.
fn optional_bool(v: &mut Validator<'_>, name: &str, invalid_key: &str) -> Option<bool> {
    match v.raw(name)? {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => {
            v.error(invalid_key);
            None
        }
    }
}

/// `ordering` (`asc`/`desc`) and `order_by` (one of `columns`) with the given error prefix.
fn ordering(v: &mut Validator<'_>, prefix: &str, columns: &[&str]) -> (String, bool) {
    let descending = match v.optional_string("ordering").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            v.error(&format!("{prefix}.ordering.invalid_ordering"));
            false
        }
    };
    let order_by = v.optional_string("order_by").unwrap_or_else(|| "id".into());
    if !columns.contains(&order_by.as_str()) {
        v.error(&format!("{prefix}.ordering.invalid_attribute"));
    }
    (order_by, descending)
}

/// A required Integer `id` with Barong's `admin.<scope>.missing_id` / `non_integer_id`.
fn required_id(v: &mut Validator<'_>, scope: &str) -> Option<i64> {
    match v.raw("id") {
        None => {
            v.error(&format!("{scope}.missing_id"));
            None
        }
        Some(raw) => {
            let id = super::pagination::coerce_integer(raw);
            if id.is_none() {
                v.error(&format!("{scope}.non_integer_id"));
            }
            id
        }
    }
}
