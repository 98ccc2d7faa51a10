//! Management `api_keys` and `api_keys/update`: keys of a user or of a service account, named
//! by its uid. Each kind of holder is served only when its `BARONG_MGN_API_KEYS_*` setting
//! allows it; no 2FA is asked (a user key still needs 2FA at authz, as in Barong).

use axum::http::StatusCode;

use super::{MgmtError, MgmtResult, Params, check_presence, present, text};
use crate::api::ApiState;
use crate::api::entities;
use crate::domain::{KeyHolder, UserState};
use crate::service::api_keys::{issue_key, update_key};

/// The prefix of generated service-account uids.
const SERVICE_ACCOUNT_PREFIX: &str = "SI";

/// The holder named by `uid` and its state, routed by the uid's prefix as Barong does (the
/// user prefix first, case-sensitive).
async fn holder(state: &ApiState, uid: &str) -> Result<(KeyHolder, UserState), MgmtError> {
    let config = &state.config;
    let disabled = || MgmtError::unprocessable("disabled_management_endpoint");
    if uid.starts_with(config.users.uid_prefix.as_str()) {
        if !config.management.mgn_api_keys_user {
            return Err(disabled());
        }
        let user = state
            .store
            .find_user_by_uid(uid)
            .await?
            .ok_or_else(|| MgmtError::unprocessable("user_doesnt_exist"))?;
        Ok((KeyHolder::User(user.id), user.state))
    } else if uid.starts_with(SERVICE_ACCOUNT_PREFIX) {
        if !config.management.mgn_api_keys_sa {
            return Err(disabled());
        }
        let account = state
            .store
            .find_service_account_by_uid(uid)
            .await?
            .ok_or_else(|| MgmtError::unprocessable("service_account_doesnt_exist"))?;
        Ok((KeyHolder::ServiceAccount(account.id), account.state))
    } else {
        Err(MgmtError::unprocessable("uid_prefix_doesnt_exist"))
    }
}

/// POST /api_keys: `algorithm`, `uid`, `scopes` (comma-separated); 201 with the secret, the
/// only time it is shown.
pub async fn create(state: ApiState, params: Params) -> MgmtResult {
    check_presence(&params, &["algorithm", "uid"], &["scopes"])?;
    let uid = text(&params, "uid").unwrap_or_default();
    let (holder, holder_state) = holder(&state, &uid).await?;
    let algorithm = text(&params, "algorithm").unwrap_or_default();
    let scopes = present(&params, "scopes");
    let (key, secret) =
        issue_key(&state, holder, &holder_state, &algorithm, scopes.as_deref()).await?;
    Ok((StatusCode::CREATED, entities::api_key(&key, Some(&secret))))
}

/// POST /api_keys/update: `kid`, `uid`, `scopes` (replacing the scope, or clearing it when
/// absent), `state`; 201 without the secret. The authz caches drop the key at once.
pub async fn update(state: ApiState, params: Params) -> MgmtResult {
    check_presence(&params, &["kid", "uid"], &["scopes", "state"])?;
    let uid = text(&params, "uid").unwrap_or_default();
    let (holder, holder_state) = holder(&state, &uid).await?;
    let kid = text(&params, "kid").unwrap_or_default();
    let key = state
        .store
        .find_api_key(&kid)
        .await?
        .filter(|k| k.holder == holder)
        .ok_or_else(|| MgmtError::unprocessable("api_key_doesnt_exist"))?;
    let scopes = present(&params, "scopes");
    let new_state = present(&params, "state");
    let updated = update_key(
        &state,
        &key,
        &holder_state,
        scopes.as_deref(),
        new_state.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, entities::api_key(&updated, None)))
}
