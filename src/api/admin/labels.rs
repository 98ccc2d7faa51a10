//! `admin/users/labels`: labels of any scope, with descriptions. Private-label changes
//! recompute the user's state and level in the same transaction, and the authz caches forget
//! the user (and any key the change deactivated).

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Admin, optional_bool, superadmin_guard, target_user};
use crate::api::ApiState;
use crate::api::entities::admin::user;
use crate::api::error::ApiError;
use crate::api::pagination;
use crate::api::params::{Params, Validator};
use crate::domain::abilities::{Action, Resource};
use crate::domain::{LabelFilter, LabelScope, LabelWrite, User};
use crate::service::error::Key;
use crate::service::labels::{check, normalize};
use crate::store::{StoreError, UserChange};

const SCOPE: &str = "admin.user";

fn label_not_found() -> ApiError {
    ApiError::from(Key::AdminLabelDoesntExist)
}

/// `GET labels/list`: private labels counted by `["key", "value"]` (Ruby's array inspect).
pub async fn counts(State(state): State<ApiState>, admin: Admin) -> Result<Json<Value>, ApiError> {
    admin.authorize(Action::Read, Resource::User)?;
    let mut body = Map::new();
    for (key, value, count) in state.store.count_private_labels().await? {
        body.insert(format!("[{key:?}, {value:?}]"), json!(count));
    }
    Ok(Json(Value::Object(body)))
}

/// `GET labels`: the users having a label `key: value` (any scope), paginated.
pub async fn filter_users(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let key = v.raw("key").and_then(crate::api::params::coerce_string);
    if key.is_none() {
        v.error("admin.user.missing_key");
    }
    let value = v.raw("value").and_then(crate::api::params::coerce_string);
    if value.is_none() {
        v.error("admin.user.missing_value");
    }
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::User)?;
    let (users, total) = state
        .store
        .users_with_label(
            &LabelFilter {
                key: key.unwrap_or_default(),
                value,
                ..LabelFilter::default()
            },
            page.limit,
            page.offset(),
        )
        .await?;
    let mut body = Vec::with_capacity(users.len());
    for u in &users {
        body.push(user(&state, u).await?);
    }
    Ok((pagination::headers(&uri, page, total), Json(body)).into_response())
}

/// The label as the model validates it: normalised key and value, scope in the list.
fn validated(key: &str, value: &str, scope: &str) -> Result<(String, String), ApiError> {
    let (key, value) = (normalize(key), normalize(value));
    let mut errors = Vec::new();
    check("key", &key, &mut errors);
    check("value", &value, &mut errors);
    if LabelScope::parse(scope).is_none() {
        errors.push("scope.inclusion".into());
    }
    if errors.is_empty() {
        Ok((key, value))
    } else {
        Err(ApiError::unprocessable(errors))
    }
}

/// Writes, publishes and names the target for the audit; `None` from the store is
/// `admin.label.doesnt_exist`.
#[allow(
    clippy::too_many_arguments,
    reason = "the one writer behind three admin label routes; each argument is one field of the request"
)]
async fn write(
    state: &ApiState,
    admin: &Admin,
    target: &User,
    key: &str,
    scope: &str,
    value: &str,
    how: LabelWrite,
) -> Result<Json<Value>, ApiError> {
    let (key, value) = validated(key, value, scope)?;
    let change = match state
        .store
        .write_label(target.id, &key, scope, &value, &how, &state.state_rules)
        .await
    {
        Ok(Some(change)) => change,
        Ok(None) => return Err(label_not_found()),
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::unprocessable(vec!["key.taken".into()]));
        }
        Err(other) => return Err(other.into()),
    };
    finish(state, admin, &change).await;
    Ok(Json(json!(200)))
}

async fn finish(state: &ApiState, admin: &Admin, change: &UserChange) {
    crate::service::changes::publish_change(state, change).await;
    admin.target(&change.user.uid);
}

/// `POST labels`: a new label (scope `public` unless given).
pub async fn create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let key = v.required_string("key");
    let value = v.required_string("value");
    let description = v.optional_nonblank_string("description");
    let scope = v.optional_nonblank_string("scope");
    v.finish()?;
    admin.authorize(Action::Create, Resource::Label)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    superadmin_guard(&admin, &target)?;
    let scope = scope.unwrap_or_else(|| LabelScope::Public.as_str().into());
    write(
        &state,
        &admin,
        &target,
        &key.unwrap_or_default(),
        &scope,
        &value.unwrap_or_default(),
        LabelWrite::Create { description },
    )
    .await
}

/// `POST labels/update`: sets value and description (cleared when not sent); a missing label
/// is created when `replace` (default true), else `404 admin.label.doesnt_exist`.
pub async fn update_or_create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let key = v.required_string("key");
    let scope = v.required_string("scope");
    let value = v.required_string("value");
    let description = v.optional_nonblank_string("description");
    let replace =
        optional_bool(&mut v, "replace", "admin.user.non_boolean_replace").unwrap_or(true);
    v.finish()?;
    admin.authorize(Action::Update, Resource::Label)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    superadmin_guard(&admin, &target)?;
    write(
        &state,
        &admin,
        &target,
        &key.unwrap_or_default(),
        &scope.unwrap_or_default(),
        &value.unwrap_or_default(),
        LabelWrite::Update {
            description,
            clear_description: true,
            upsert: replace,
        },
    )
    .await
}

/// `PUT labels`: the label must exist; value and (when sent) description change.
pub async fn update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let key = v.required_string("key");
    let scope = v.required_string("scope");
    let description = v.optional_string("description");
    let value = v.required_string("value");
    v.finish()?;
    admin.authorize(Action::Update, Resource::Label)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    superadmin_guard(&admin, &target)?;
    write(
        &state,
        &admin,
        &target,
        &key.unwrap_or_default(),
        &scope.unwrap_or_default(),
        &value.unwrap_or_default(),
        LabelWrite::Update {
            description,
            clear_description: false,
            upsert: false,
        },
    )
    .await
}

/// `DELETE labels`.
pub async fn destroy(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let key = v.required_string("key");
    let scope = v.required_string("scope");
    v.finish()?;
    admin.authorize(Action::Destroy, Resource::Label)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    superadmin_guard(&admin, &target)?;
    let change = state
        .store
        .delete_label(
            target.id,
            &normalize(&key.unwrap_or_default()),
            &scope.unwrap_or_default(),
            &state.state_rules,
        )
        .await?
        .ok_or_else(label_not_found)?;
    finish(&state, &admin, &change).await;
    Ok(Json(json!(200)))
}
