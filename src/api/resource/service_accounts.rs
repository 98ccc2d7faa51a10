//! `resource/service_accounts`: the service accounts the user owns and their API keys. Another
//! user's account is `404 resource.service_account.doesnt_exist`, never its data.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::api_keys::{create_key, delete_key, list_keys, otp_guard, own_key};
use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator, coerce_string};
use crate::domain::{KeyHolder, ServiceAccount, User};
use crate::service::api_keys::update_key;
use crate::service::error::Key;

const GUARD: &str = "resource.service_accounts";

/// Rails' JSON time: milliseconds and `Z`.
fn json_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `service_account_uid`: required String.
fn uid_param(v: &mut Validator<'_>) -> Option<String> {
    match v.raw("service_account_uid") {
        None => {
            v.error("resource.serviceaccount.missing_service_account_uid");
            None
        }
        Some(raw) => {
            let uid = coerce_string(raw);
            if uid.is_none() && !raw.is_null() {
                v.error("resource.service_account.non_string_service_account_uid");
            }
            uid
        }
    }
}

/// The user's service account with that uid, else 404.
async fn owned(state: &ApiState, user: &User, uid: &str) -> Result<ServiceAccount, ApiError> {
    state
        .store
        .find_service_account_by_uid(uid)
        .await?
        .filter(|sa| sa.owner_id == Some(user.id))
        .ok_or_else(|| ApiError::from(Key::ResourceServiceAccountDoesntExist))
}

/// `GET service_accounts`: the raw records (Barong does not use the entity here).
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Vec<Value>>, ApiError> {
    let accounts = state
        .store
        .list_owned_service_accounts(current.user.id)
        .await?;
    Ok(Json(
        accounts
            .iter()
            .map(|sa| {
                json!({
                    "id": sa.id,
                    "uid": sa.uid,
                    "owner_id": sa.owner_id,
                    "email": sa.email,
                    "role": sa.role,
                    "level": sa.level,
                    "state": sa.state,
                    "created_at": json_time(&sa.created_at),
                    "updated_at": json_time(&sa.updated_at),
                })
            })
            .collect(),
    ))
}

/// `GET service_accounts/api_keys`.
pub async fn list_keys_of(
    State(state): State<ApiState>,
    current: CurrentUser,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.serviceaccount", &params);
    let uid = uid_param(&mut v);
    let ordering = v.optional_string("ordering");
    let order_by = v.optional_string("order_by");
    let page = v.page();
    v.finish()?;
    let sa = owned(&state, &current.user, &uid.unwrap_or_default()).await?;
    list_keys(
        &state,
        KeyHolder::ServiceAccount(sa.id),
        ordering.as_deref(),
        order_by.as_deref(),
        page,
        &uri,
        GUARD,
    )
    .await
}

/// `POST service_accounts/api_keys`.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.serviceaccount", &params);
    let uid = uid_param(&mut v);
    let algorithm = v.required_string("algorithm");
    let scope = v.optional_nonblank_string("scope");
    let totp_code = v.required_string_as("totp_code", "resource.service_accounts.missing_totp");
    v.finish()?;
    let user = current.user;
    let sa = owned(&state, &user, &uid.unwrap_or_default()).await?;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    create_key(
        &state,
        KeyHolder::ServiceAccount(sa.id),
        &sa.state,
        &algorithm.unwrap_or_default(),
        scope.as_deref(),
    )
    .await
}

/// `PUT service_accounts/api_keys/{kid}`.
pub async fn update(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new("resource.serviceaccount", &params);
    let uid = uid_param(&mut v);
    let scope = v.optional_nonblank_string("scope");
    let new_state = v.optional_nonblank_string("state");
    let totp_code = v.required_string("totp_code");
    v.finish()?;
    let user = current.user;
    let sa = owned(&state, &user, &uid.unwrap_or_default()).await?;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    let key = own_key(&state, KeyHolder::ServiceAccount(sa.id), &kid).await?;
    let updated = update_key(
        &state,
        &key,
        &sa.state,
        scope.as_deref(),
        new_state.as_deref(),
    )
    .await?;
    Ok(Json(crate::api::entities::api_key(&updated, None)))
}

/// `DELETE service_accounts/api_keys/{kid}`.
pub async fn destroy(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(kid): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.serviceaccount", &params);
    let uid = uid_param(&mut v);
    let totp_code = v.required_string("totp_code");
    v.finish()?;
    let user = current.user;
    let sa = owned(&state, &user, &uid.unwrap_or_default()).await?;
    otp_guard(&state, &user, totp_code.as_deref(), GUARD).await?;
    let key = own_key(&state, KeyHolder::ServiceAccount(sa.id), &kid).await?;
    delete_key(&state, &key).await
}
