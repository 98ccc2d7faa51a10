//! Management `service_accounts/*`: accounts that authenticate only
//! with API keys, owned by a user (whose state they follow) or by nobody.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::full_messages;
use super::handlers::exactly_one;
use super::{
    MgmtError, MgmtResult, Paged, Params, check_presence, integer, page, present, refuse, require,
    text,
};
use crate::api::ApiState;
use crate::api::entities::admin::user;
use crate::api::entities::iso8601;
use crate::domain::{
    NewServiceAccount, ServiceAccount, ServiceAccountRequest, UserState, generate_uid,
    service_account_email, validate_service_account,
};
use crate::invalidation::Invalidation;
use crate::store::{Clash, StoreError};

/// The `ServiceAccounts` entity: `email uid role level state user created_at updated_at`,
/// the owner as a `User` entity (or null).
async fn entity(state: &ApiState, account: &ServiceAccount) -> Result<Value, MgmtError> {
    let owner = match account.owner_id {
        Some(id) => match state.store.find_user_by_id(id).await? {
            Some(owner) => user(state, &owner).await?,
            None => Value::Null,
        },
        None => Value::Null,
    };
    Ok(json!({
        "email": account.email,
        "uid": account.uid,
        "role": account.role,
        "level": account.level,
        "state": account.state,
        "user": owner,
        "created_at": iso8601(&account.created_at),
        "updated_at": iso8601(&account.updated_at),
    }))
}

/// The account named by `uid` or `email`, else 404.
async fn find(state: &ApiState, params: &Params) -> Result<ServiceAccount, MgmtError> {
    let account = match (text(params, "uid"), text(params, "email")) {
        (Some(uid), _) => state.store.find_service_account_by_uid(&uid).await?,
        (None, Some(email)) => state.store.find_service_account_by_email(&email).await?,
        (None, None) => None,
    };
    account.ok_or_else(MgmtError::not_found)
}

/// POST /service_accounts/get: by `uid` or `email`; 200.
pub async fn get(state: ApiState, params: Params) -> MgmtResult {
    exactly_one(&params, &["uid", "email"])?;
    let account = find(&state, &params).await?;
    Ok((StatusCode::OK, entity(&state, &account).await?))
}

/// POST /service_accounts/list: the accounts of `owner_uid` / `owner_email` when that user
/// exists, otherwise all; 200, paginated.
pub async fn list(state: ApiState, params: Params) -> Result<Paged, MgmtError> {
    let mut messages = Vec::new();
    let page = page(&params, &mut messages);
    refuse(messages)?;
    let owner = match (text(&params, "owner_uid"), text(&params, "owner_email")) {
        (Some(uid), _) => state.store.find_user_by_uid(&uid).await?,
        (None, Some(email)) => state.store.find_user_by_email(&email).await?,
        (None, None) => None,
    };
    let (accounts, total) = state
        .store
        .list_service_accounts(owner.map(|o| o.id), page.limit, page.offset())
        .await?;
    let mut body = Vec::with_capacity(accounts.len());
    for account in &accounts {
        body.push(entity(&state, account).await?);
    }
    Ok(Paged { page, total, body })
}

/// POST /service_accounts/create: 201. An owner's account takes the owner's state (and level,
/// unless one is given); without an owner an e-mail is required.
pub async fn create(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["service_account_role"])?;
    let mut messages = Vec::new();
    let level = integer(&params, "service_account_level", &mut messages);
    refuse(messages)?;
    let owner = match text(&params, "owner_uid") {
        Some(uid) => state.store.find_user_by_uid(&uid).await?,
        None => None,
    };
    let uid = present(&params, "service_account_uid")
        .unwrap_or_else(|| generate_uid("SI", rand::random()));
    let email = present(&params, "service_account_email")
        .or_else(|| {
            owner
                .as_ref()
                .map(|o| service_account_email(&o.email, &uid))
        })
        .unwrap_or_default();
    let role = text(&params, "service_account_role").unwrap_or_default();
    let store = &state.store;
    let request = ServiceAccountRequest {
        role_known: store
            .list_permissions()
            .await?
            .iter()
            .any(|p| p.role == role),
        clashes_with_user: store.find_user_by_uid(&uid).await?.is_some()
            || store.find_user_by_email(&email).await?.is_some(),
        uid,
        email,
        role,
    };
    let errors = validate_service_account(&request);
    if !errors.is_empty() {
        return Err(MgmtError::model(full_messages(&errors)));
    }
    let new = NewServiceAccount {
        owner_id: owner.as_ref().map(|o| o.id),
        state: match &owner {
            Some(o) => o.state.clone(),
            None => {
                text(&params, "service_account_state").map_or(UserState::Pending, UserState::from)
            }
        },
        level: level
            .or(owner.as_ref().map(|o| i64::from(o.level)))
            .and_then(|l| i32::try_from(l).ok())
            .unwrap_or(0),
        uid: request.uid,
        email: request.email,
        role: request.role,
    };
    match store.create_service_account(&new).await {
        Ok(account) => Ok((StatusCode::CREATED, entity(&state, &account).await?)),
        Err(StoreError::Conflict(column)) => {
            let attribute = if column == Clash::Uid { "Uid" } else { "Email" };
            Err(MgmtError::model(vec![format!(
                "{attribute} has already been taken"
            )]))
        }
        Err(other) => Err(other.into()),
    }
}

/// POST /service_accounts/update: `uid`, `owner_uid`. When `owner_uid` names a user the
/// account becomes theirs; an owned account then takes its owner's state and level again (an
/// owner's `disabled` deactivates its keys). 201; the authz caches drop the account.
pub async fn update(state: ApiState, params: Params) -> MgmtResult {
    check_presence(&params, &["uid"], &["owner_uid"])?;
    let store = &state.store;
    let uid = text(&params, "uid").unwrap_or_default();
    let account = store
        .find_service_account_by_uid(&uid)
        .await?
        .ok_or_else(|| MgmtError::unprocessable("Service account doesnt exist"))?;
    let new_owner = match text(&params, "owner_uid") {
        Some(owner_uid) => store.find_user_by_uid(&owner_uid).await?,
        None => None,
    };
    let owner = match (new_owner, account.owner_id) {
        (Some(owner), _) => Some(owner),
        (None, Some(id)) => store.find_user_by_id(id).await?,
        (None, None) => None,
    };
    // The model is validated again on every save, as in Barong.
    let request = ServiceAccountRequest {
        role_known: store
            .list_permissions()
            .await?
            .iter()
            .any(|p| p.role == account.role),
        clashes_with_user: store.find_user_by_uid(&account.uid).await?.is_some()
            || store.find_user_by_email(&account.email).await?.is_some(),
        uid: account.uid.clone(),
        email: account.email.clone(),
        role: account.role.clone(),
    };
    let errors = validate_service_account(&request);
    if !errors.is_empty() {
        return Err(crate::api::ApiError::unprocessable(errors).into());
    }
    let Some(owner) = owner else {
        return Ok((StatusCode::CREATED, entity(&state, &account).await?));
    };
    let (account, kids) = store
        .reassign_service_account(account.id, owner.id, &owner.state, owner.level)
        .await?
        .ok_or_else(|| MgmtError::unprocessable("Service account doesnt exist"))?;
    forget_keys(&state, kids, &account.uid).await;
    Ok((StatusCode::CREATED, entity(&state, &account).await?))
}

/// POST /service_accounts/delete: the account becomes `disabled` and its keys inactive; 200.
pub async fn delete(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid"])?;
    let account = find(&state, &params).await?;
    let (account, kids) = state
        .store
        .disable_service_account(account.id)
        .await?
        .ok_or_else(MgmtError::not_found)?;
    forget_keys(&state, kids, &account.uid).await;
    Ok((StatusCode::OK, entity(&state, &account).await?))
}

/// Drops the account's keys and the account from this instance's caches before answering.
async fn forget_keys(state: &ApiState, kids: Vec<String>, uid: &str) {
    let keys = kids.into_iter().map(Invalidation::ApiKey);
    let account = Invalidation::User(uid.to_owned());
    state
        .invalidation
        .publish_all_applied(keys.chain(std::iter::once(account)))
        .await;
}
