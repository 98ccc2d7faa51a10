//! The admin namespace (reference §10): operators manage users, labels, permissions,
//! restrictions, keys and read activities. Every call carries the bearer JWT the authz path
//! minted (`api::auth::CurrentUser`); what the caller's role may do is decided by
//! [`Admin::authorize`] from `domain::abilities`, the one place abilities are checked.
//! Every successful state-changing call writes an admin activity (who, what, target), and
//! every change the authz caches hold is published on the invalidation bus.

mod access;
mod activities;
pub(crate) mod entities;
mod labels;
mod profiles;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

use super::ApiState;
use super::auth::CurrentUser;
use super::error::ApiError;
use super::identity::RequestMeta;
use super::params::{Params, Validator};
use crate::domain::abilities::{self, Action, Resource};
use crate::domain::{NewActivity, User};

/// The admin routes (mounted under `/admin`).
pub fn routes() -> Router<ApiState> {
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
}

/// The caller of an admin endpoint: the bearer's user and where the request came from.
pub struct Admin {
    pub user: User,
    meta: RequestMeta,
    method: Method,
    path: String,
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        Ok(Self {
            user: current.user,
            meta,
            method: parts.method.clone(),
            // Nested routers see the path without their prefix; the activity names the
            // path the client called.
            path: parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.path(), |o| o.0.path())
                .to_owned(),
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
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "admin.ability.not_permitted",
            ))
        }
    }

    /// Writes the admin activity of a successful change, in the shape of the authz audit rows
    /// (§4.5): topic = the path segment after `admin/`, action from the method, data = the
    /// request parameters with the path. Failures to write are logged, never answered.
    pub async fn record(&self, state: &ApiState, target_uid: Option<&str>, params: &Params) {
        let mut data = params.0.clone();
        data.remove("password");
        data.insert("path".into(), Value::String(self.path.clone()));
        let topic = self
            .path
            .split_once("/admin/")
            .and_then(|(_, rest)| rest.split('/').next())
            .filter(|t| !t.is_empty())
            .unwrap_or("general");
        let action = match self.method.as_str() {
            "POST" => "create",
            "PUT" | "PATCH" => "update",
            "DELETE" => "delete",
            _ => "system",
        };
        let activity = NewActivity {
            user_id: self.user.id,
            target_uid: target_uid.map(str::to_owned),
            category: "admin".into(),
            user_ip: self.meta.ip.to_string(),
            user_ip_country: None,
            user_agent: self.meta.user_agent.clone().unwrap_or_default(),
            topic: topic.into(),
            action: action.into(),
            result: "succeed".into(),
            data: Some(Value::Object(data).to_string()),
        };
        if let Err(error) = state.store.insert_activities(&[activity]).await {
            tracing::warn!(%error, topic, "admin activity not recorded");
        }
    }
}

/// `404 admin.user.doesnt_exist`.
fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "admin.user.doesnt_exist")
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
    if target.role == "superadmin" && admin.user.role != "superadmin" {
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
