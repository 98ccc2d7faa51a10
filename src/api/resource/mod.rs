//! The resource namespace (reference §6.4): the logged-in user's own account, authenticated by
//! the bearer JWT the authz path minted (see `api::auth::CurrentUser`).

mod api_keys;
mod data_storage;
mod documents;
mod labels;
mod otp;
mod phones;
mod service_accounts;
mod users;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        .route("/api_keys", get(api_keys::list).post(api_keys::create))
        .route(
            "/api_keys/{kid}",
            delete(api_keys::destroy).patch(api_keys::update),
        )
        .route("/data_storage", post(data_storage::create))
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

/// Most failed TOTP codes a user may send per [`OTP_FAILURE_WINDOW`]; further codes are refused
/// unchecked (with the endpoint's usual invalid-code key and status, as Barong has no other).
pub const OTP_MAX_FAILURES: u32 = 5;
/// The window of [`OTP_MAX_FAILURES`].
pub const OTP_FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Failed TOTP codes per user id, in memory (per instance).
#[derive(Debug, Default)]
pub struct OtpFailures {
    counts: Mutex<HashMap<i64, (Instant, u32)>>,
}

impl OtpFailures {
    fn blocked(&self, user_id: i64) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&user_id).is_some_and(|(since, n)| {
            since.elapsed() < OTP_FAILURE_WINDOW && *n >= OTP_MAX_FAILURES
        })
    }

    fn failed(&self, user_id: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > 100_000 {
            counts.retain(|_, (since, _)| since.elapsed() < OTP_FAILURE_WINDOW);
        }
        let entry = counts.entry(user_id).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= OTP_FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    fn succeeded(&self, user_id: i64) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user_id);
    }
}

/// Checks a TOTP code of the user as Vault does (SHA-1, 6 digits, 30 s, ±1 step): false when
/// there is no secret, the code is wrong, it was already accepted in its window (replay), or
/// the user sent too many wrong codes lately.
pub(crate) async fn check_totp(
    state: &ApiState,
    user_id: i64,
    code: &str,
) -> Result<bool, ApiError> {
    if state.otp_failures.blocked(user_id) {
        return Ok(false);
    }
    let Some((encrypted, _)) = state.store.find_otp_secret(user_id).await? else {
        state.otp_failures.failed(user_id);
        return Ok(false);
    };
    let secret = state.encryptor.decrypt(&encrypted).map_err(|error| {
        tracing::error!(%error, "TOTP secret unreadable");
        ApiError::internal()
    })?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let accepted = match totp::verify(&secret, code, now) {
        Some(step) => state.store.accept_otp_step(user_id, step as i64).await?,
        None => false,
    };
    if accepted {
        state.otp_failures.succeeded(user_id);
    } else {
        state.otp_failures.failed(user_id);
    }
    Ok(accepted)
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
