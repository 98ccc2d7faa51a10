//! The resource namespace: the logged-in user's own account, authenticated by
//! the bearer JWT the authz path minted (see `api::auth::CurrentUser`).

pub(crate) mod api_keys;
mod data_storage;
pub(crate) mod documents;
pub(crate) mod labels;
mod otp;
mod passkeys;
mod phones;
mod profiles;
mod service_accounts;
pub(crate) mod sessions;
mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

use super::ApiState;
use super::error::ApiError;
use crate::crypto::totp;
use crate::invalidation::Invalidation;
use crate::store::UserChange;

/// The resource routes (mounted under `/resource`).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/users/me",
            get(users::me)
                .put(users::update_me)
                .delete(users::delete_me),
        )
        .route("/users/password", put(users::change_password))
        .route("/users/activity/{topic}", get(users::activity))
        .route("/labels", get(labels::list).post(labels::create))
        .route(
            "/labels/{key}",
            get(labels::show)
                .patch(labels::update)
                .delete(labels::destroy),
        )
        .route("/otp/generate_qrcode", post(otp::generate_qrcode))
        .route("/otp/enable", post(otp::enable))
        .route("/otp/disable", post(otp::disable))
        .route("/otp/verify", post(otp::verify))
        .route("/passkeys", get(passkeys::list).post(passkeys::create))
        .route("/passkeys/options", post(passkeys::options))
        .route(
            "/passkeys/{id}",
            delete(passkeys::destroy).patch(passkeys::update),
        )
        .route("/api_keys", get(api_keys::list).post(api_keys::create))
        .route(
            "/api_keys/{kid}",
            delete(api_keys::destroy).patch(api_keys::update),
        )
        .route(
            "/sessions",
            get(sessions::list).delete(sessions::destroy_others),
        )
        .route("/sessions/{id}", delete(sessions::destroy))
        .route("/data_storage", post(data_storage::create))
        .route("/profiles", post(profiles::create).put(profiles::update))
        .route("/profiles/me", get(profiles::me))
        .route("/phones", get(phones::list).post(phones::create))
        .route("/phones/send_code", post(phones::send_code))
        .route("/phones/verify", post(phones::verify))
        .route(
            "/documents",
            get(documents::list)
                .post(documents::create)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/addresses",
            post(documents::create_address).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/service_accounts", get(service_accounts::list))
        .route(
            "/service_accounts/api_keys",
            get(service_accounts::list_keys_of).post(service_accounts::create),
        )
        .route(
            "/service_accounts/api_keys/{kid}",
            put(service_accounts::update).delete(service_accounts::destroy),
        )
}

/// Checks a TOTP code of the user as Vault does (SHA-1, 6 digits, 30 s, ±1 step): false when
/// there is no secret, the code is wrong, it was already accepted in its window (replay), or
/// the user sent too many wrong codes lately (`BARONG_RATE_LIMIT_OTP`, see `api::limits`).
pub(crate) async fn check_totp(
    state: &ApiState,
    user_id: i64,
    code: &str,
) -> Result<bool, ApiError> {
    let limiter = &state.observe.limits.otp;
    let key = user_id.to_string();
    // The code takes its slot before it is compared: concurrent guesses get at most the
    // limit's comparisons per window; a wrong code keeps its slot.
    if !limiter.reserve(&key).await? {
        return Ok(false);
    }
    let Some((encrypted, _)) = state.store.find_otp_secret(user_id).await? else {
        return Ok(false);
    };
    let secret = state.encryptor.decrypt(&encrypted).map_err(|error| {
        tracing::error!(%error, "TOTP secret unreadable");
        ApiError::internal()
    })?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let Some(step) = totp::verify(&secret, code, now) else {
        return Ok(false);
    };
    // A right code already used in its time step: Barong surfaces Vault's "code already used"
    // as `422 totp.error` wherever a code is checked, not as the endpoint's wrong-code key.
    if !state.store.accept_otp_step(user_id, step as i64).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "totp.error",
        ));
    }
    limiter.clear(&key).await;
    Ok(true)
}

/// Tells the caches what a user change made stale.
pub(crate) fn publish_change(state: &ApiState, change: &UserChange) {
    for id in &change.sessions {
        state
            .invalidation
            .publish(Invalidation::Session(id.clone()));
    }
    for kid in &change.kids {
        state
            .invalidation
            .publish(Invalidation::ApiKey(kid.clone()));
    }
    state
        .invalidation
        .publish(Invalidation::User(change.user.uid.clone()));
}
