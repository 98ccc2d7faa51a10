//! `resource/api_keys`: the user's API keys. Creating, changing and deleting a key needs 2FA
//! and a valid TOTP code; the secret is shown once, at creation, and stored encrypted.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::pagination;
use crate::api::params::{Params, Validator};
use crate::domain::{ApiKey, KeyHolder, User, UserState};
use crate::invalidation::Invalidation;
use crate::service::api_keys::{issue_key, update_key};
use crate::service::error::Key;
use crate::service::totp::check_totp;
use crate::store::API_KEY_COLUMNS;

fn unprocessable(key: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, key)
}

/// Barong's `otp_protected`: 2FA on and a valid code; keys `<prefix>.2fa_disabled`,
/// `<prefix>.missing_totp`, `<prefix>.invalid_totp`.
pub(crate) async fn otp_guard(
    state: &ApiState,
    user: &User,
    code: Option<&str>,
    prefix: &str,
) -> Result<(), ApiError> {
    if !user.otp {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{prefix}.2fa_disabled"),
        ));
    }
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        return Err(unprocessable(&format!("{prefix}.missing_totp")));
    };
    if !check_totp(state, user.id, code).await? {
        return Err(unprocessable(&format!("{prefix}.invalid_totp")));
    }
    Ok(())
}

const GUARD: &str = "resource.api_key";

/// `GET api_keys`: the user's keys, paginated, ordered by `order_by` (any column) and
/// `ordering`; no secret, no 2FA needed.
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.apikey", &params);
    let ordering = v.optional_string("ordering");
    let order_by = v.optional_string("order_by");
    let page = v.page();
    v.finish()?;
    list_keys(
        &state,
        KeyHolder::User(current.user.id),
        ordering.as_deref(),
        order_by.as_deref(),
        page,
        &uri,
        "resource.api_key",
    )
    .await
}

/// One page of a holder's keys; `<prefix>.invalid_ordering` / `<prefix>.invalid_attribute`.
pub(crate) async fn list_keys(
    state: &ApiState,
    holder: KeyHolder,
    ordering: Option<&str>,
    order_by: Option<&str>,
    page: pagination::Page,
    uri: &axum::http::Uri,
    prefix: &str,
) -> Result<Response, ApiError> {
    let descending = match ordering.map(str::to_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(unprocessable(&format!("{prefix}.invalid_ordering"))),
    };
    let order_by = order_by.unwrap_or("id");
    if !API_KEY_COLUMNS.contains(&order_by) {
        return Err(unprocessable(&format!("{prefix}.invalid_attribute")));
    }
    let (keys, total) = state
        .store
        .list_api_keys(holder, order_by, descending, page.limit, page.offset())
        .await?;
    let body: Vec<Value> = keys.iter().map(entities::api_key_with_use).collect();
    Ok((pagination::headers(uri, page, total), Json(body)).into_response())
}

/// Creates a key for `holder` (whose state is `holder_state`); 201 with the secret.
pub(crate) async fn create_key(
    state: &ApiState,
    holder: KeyHolder,
    holder_state: &UserState,
    algorithm: &str,
    scope: Option<&str>,
) -> Result<Response, ApiError> {
    let (key, secret) = issue_key(state, holder, holder_state, algorithm, scope).await?;
    Ok((
        StatusCode::CREATED,
        Json(entities::api_key(&key, Some(&secret))),
    )
        .into_response())
}

/// Deletes a key; 204.
pub(crate) async fn delete_key(state: &ApiState, key: &ApiKey) -> Result<Response, ApiError> {
    state.store.delete_api_key(key.id).await?;
    // Answered once this instance's caches dropped the key: a deleted key never signs again here.
    state
        .invalidation
        .publish_applied(Invalidation::ApiKey(key.kid.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST api_keys`.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.apikey", &params);
    let algorithm = v.required_string("algorithm");
    let scope = v.optional_nonblank_string("scope");
    let totp_code = v.required_string_as("totp_code", "resource.api_key.missing_totp");
    v.finish()?;
    let user = current.user;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    create_key(
        &state,
        KeyHolder::User(user.id),
        &user.state,
        &algorithm.unwrap_or_default(),
        scope.as_deref(),
    )
    .await
}

/// The holder's own key with that kid, else 404 (never someone else's).
pub(crate) async fn own_key(
    state: &ApiState,
    holder: KeyHolder,
    kid: &str,
) -> Result<ApiKey, ApiError> {
    state
        .store
        .find_api_key(kid)
        .await?
        .filter(|k| k.holder == holder)
        .ok_or_else(|| ApiError::from(Key::RecordNotFound))
}

/// `PATCH api_keys/{kid}`.
pub async fn update(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new("resource.apikey", &params);
    let scope = v.optional_nonblank_string("scope");
    let new_state = v.optional_nonblank_string("state");
    let totp_code = v.required_string("totp_code");
    v.finish()?;
    let user = current.user;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    let key = own_key(&state, KeyHolder::User(user.id), &kid).await?;
    let updated = update_key(
        &state,
        &key,
        &user.state,
        scope.as_deref(),
        new_state.as_deref(),
    )
    .await?;
    Ok(Json(entities::api_key(&updated, None)))
}

/// `DELETE api_keys/{kid}`.
pub async fn destroy(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.apikey", &params);
    let totp_code = v.required_string("totp_code");
    v.finish()?;
    let user = current.user;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    let key = own_key(&state, KeyHolder::User(user.id), &kid).await?;
    delete_key(&state, &key).await
}
