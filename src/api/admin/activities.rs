//! `admin/api_keys`, `admin/activities`, `admin/activities/admin` and `admin/metrics`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Admin, ordering, target_user};
use crate::api::ApiState;
use crate::api::entities::admin::UserCache;
use crate::api::entities::api_key;
use crate::api::error::ApiError;
use crate::api::pagination;
use crate::api::params::{Params, Validator};
use crate::domain::abilities::{Action, Resource};
use crate::domain::{ActivityFilter, KeyHolder};
use crate::store::API_KEY_COLUMNS;

/// `GET api_keys`: a user's keys without secrets.
pub async fn api_keys(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("admin.apikey", &params);
    let uid = v.required_string("uid");
    let (order_by, descending) = ordering(&mut v, "api_keys", API_KEY_COLUMNS);
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::ApiKey)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    let (keys, total) = state
        .store
        .list_api_keys(
            KeyHolder::User(target.id),
            &order_by,
            descending,
            page.limit,
            page.offset(),
        )
        .await?;
    let body: Vec<Value> = keys.iter().map(|k| api_key(k, None)).collect();
    Ok((pagination::headers(&uri, page, total), Json(body)).into_response())
}

/// The filters both activity listings take; `admin` adds `target_uid` and `range`.
fn activity_filter(v: &mut Validator<'_>, category: &str) -> ActivityFilter {
    let text = |v: &mut Validator<'_>, name: &str| {
        let raw = v.raw(name)?;
        let value = crate::api::params::coerce_string(raw);
        if value.is_none() {
            v.error(&format!("admin.activity.non_string_{name}"));
        }
        value
    };
    let mut filter = ActivityFilter {
        category: category.into(),
        topic: text(v, "topic"),
        action: text(v, "action"),
        uid: text(v, "uid"),
        email: text(v, "email"),
        ..ActivityFilter::default()
    };
    for (name, slot) in [("from", &mut filter.from), ("to", &mut filter.to)] {
        if let Some(raw) = v.raw(name) {
            *slot = pagination::coerce_integer(raw);
            if slot.is_none() {
                v.error(&format!("admin.activity.non_integer_{name}"));
            }
        }
    }
    if category == "admin" {
        filter.target_uid = text(v, "target_uid");
        if v.optional_string("range").is_some_and(|r| r != "created") {
            v.error("admin.activity.invalid_range");
        }
    }
    filter
}

/// `GET activities`: user-category activities, newest first, with their user.
pub async fn user_activities(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    listing(state, admin, uri, params, "user").await
}

/// `GET activities/admin`: admin-category activities with the admin and the target.
pub async fn admin_activities(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    listing(state, admin, uri, params, "admin").await
}

async fn listing(
    state: ApiState,
    admin: Admin,
    uri: Uri,
    params: Params,
    category: &str,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("admin.activity", &params);
    let filter = activity_filter(&mut v, category);
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::Activity)?;
    let (rows, total) = state
        .store
        .list_activities(&filter, page.limit, page.offset())
        .await?;
    let mut users = UserCache::new(&state);
    let mut body = Vec::with_capacity(rows.len());
    for a in &rows {
        body.push(if category == "admin" {
            users.admin_activity(a).await?
        } else {
            users.activity_with_user(a).await?
        });
    }
    Ok((pagination::headers(&uri, page, total), Json(body)).into_response())
}

/// `GET metrics`: sign-ups and logins per day over all time, and pending applications.
/// `created_from` / `created_to` are accepted and ignored, as in Barong.
pub async fn metrics(State(state): State<ApiState>, admin: Admin) -> Result<Json<Value>, ApiError> {
    admin.authorize(Action::Read, Resource::User)?;
    let mut body = Map::new();
    for (name, topic, action, result) in [
        ("signups", "account", "signup", "succeed"),
        ("sucessful_logins", "session", "login", "succeed"),
        ("failed_logins", "session", "login", "failed"),
    ] {
        let days: BTreeMap<String, i64> = state
            .store
            .activity_counts_per_day(topic, action, result)
            .await?
            .into_iter()
            .collect();
        body.insert(name.into(), json!(days));
    }
    let pending = state
        .store
        .count_private_labels()
        .await?
        .iter()
        .filter(|(k, v, _)| k == "document" && v == "pending")
        .map(|(_, _, n)| n)
        .sum::<i64>();
    body.insert("pending_applications".into(), json!(pending));
    Ok(Json(Value::Object(body)))
}
