//! `resource/labels`: the user's labels. Every label is visible; only `public` ones are the
//! user's to create, change and delete. State and level are recomputed in the same transaction.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::domain::{Label, LabelScope};
use crate::service::changes::publish_change;
use crate::service::error::Key;
use crate::service::labels::{check, normalize};
use crate::store::StoreError;

fn not_found() -> ApiError {
    ApiError::from(Key::RecordNotFound)
}

fn private() -> ApiError {
    ApiError::from(Key::ResourceLabelsPrivate)
}

async fn find(state: &ApiState, user_id: i64, key: &str) -> Result<Label, ApiError> {
    state
        .store
        .list_user_labels(user_id)
        .await?
        .into_iter()
        .find(|l| l.key == key)
        .ok_or_else(not_found)
}

/// `GET labels`: every label of the user by `created_at` (`ordering` asc or desc).
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Json<Vec<Value>>, ApiError> {
    let mut v = Validator::new("resource.label", &params);
    let ordering = v.optional_string("ordering");
    let descending = match ordering.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            v.error("value");
            false
        }
    };
    v.finish()?;
    let mut labels = state.store.list_user_labels(current.user.id).await?;
    labels.sort_by_key(|l| l.created_at);
    if descending {
        labels.reverse();
    }
    Ok(Json(labels.iter().map(entities::label).collect()))
}

/// `GET labels/{key}`: the first label with that key, any scope.
pub async fn show(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(entities::label(
        &find(&state, current.user.id, &key).await?,
    )))
}

/// `POST labels`: a new public label.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.label", &params);
    let key = v.required_string("key");
    let value = v.required_string("value");
    v.finish()?;
    let key = normalize(&key.unwrap_or_default());
    let value = normalize(&value.unwrap_or_default());
    let user_id = current.user.id;
    let mut errors = Vec::new();
    check("key", &key, &mut errors);
    let taken = state
        .store
        .list_user_labels(user_id)
        .await?
        .iter()
        .any(|l| l.key == key && LabelScope::Public.is(&l.scope));
    if taken {
        errors.push("key.taken".into());
    }
    check("value", &value, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let (label, change) = match state
        .store
        .create_label(
            user_id,
            &key,
            &value,
            LabelScope::Public.as_str(),
            &state.state_rules,
        )
        .await
    {
        Ok(done) => done,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::unprocessable(vec!["key.taken".into()]));
        }
        Err(other) => return Err(other.into()),
    };
    publish_change(&state, &change).await;
    Ok((StatusCode::CREATED, Json(entities::label(&label))).into_response())
}

/// `PATCH labels/{key}`: a new value for a public label. As in Barong, a value that fails
/// validation is not saved but still echoed with 200.
pub async fn update(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(key): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new("resource.label", &params);
    let value = v.required_string("value");
    v.finish()?;
    let value = normalize(&value.unwrap_or_default());
    let mut label = find(&state, current.user.id, &key).await?;
    if !LabelScope::Public.is(&label.scope) {
        return Err(private());
    }
    let mut errors = Vec::new();
    check("value", &value, &mut errors);
    if !errors.is_empty() {
        label.value = value;
        return Ok(Json(entities::label(&label)));
    }
    match state
        .store
        .update_label_value(
            current.user.id,
            &label.key,
            LabelScope::Public.as_str(),
            &value,
            &state.state_rules,
        )
        .await?
    {
        Some((label, change)) => {
            publish_change(&state, &change).await;
            Ok(Json(entities::label(&label)))
        }
        None => Err(not_found()),
    }
}

/// `DELETE labels/{key}`: removes a public label; 204.
pub async fn destroy(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let label = find(&state, current.user.id, &key).await?;
    if !LabelScope::Public.is(&label.scope) {
        return Err(private());
    }
    match state
        .store
        .delete_label(
            current.user.id,
            &label.key,
            LabelScope::Public.as_str(),
            &state.state_rules,
        )
        .await?
    {
        Some(change) => {
            publish_change(&state, &change).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(not_found()),
    }
}
