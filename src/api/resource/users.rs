//! `resource/users/...`: the current user's account.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities::{self, user_full_info};
use crate::api::error::ApiError;
use crate::api::pagination;
use crate::api::params::{Params, Validator};
use crate::api::system_events;
use crate::crypto::password_hash;
use crate::domain::{DATA_MAX, data_is_valid, session_key};
use crate::invalidation::Invalidation;
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::changes::publish_change;
use crate::service::confirm::password_matches;
use crate::service::error::Key;
use crate::service::totp::check_totp;

/// `GET users/me`: UserWithFullInfo, without `csrf_token`.
pub async fn me(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_full_info(&state, &current.user, None).await?))
}

/// `PUT users/me`: replaces `data` (JSON text, at most 1024 characters).
pub async fn update_me(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new("resource.user", &params);
    let data = v.required_string("data");
    v.finish()?;
    let data = data.unwrap_or_default();
    let mut errors = Vec::new();
    if data.chars().count() > DATA_MAX {
        errors.push("data.too_long".to_owned());
    }
    if !data_is_valid(&data) {
        errors.push("data.invalid_format".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let user = state.store.update_user_data(current.user.id, &data).await?;
    state
        .invalidation
        .publish(Invalidation::User(user.uid.clone()));
    Ok(Json(user_full_info(&state, &user, None).await?))
}

/// `DELETE users/me`: self-deletion after the password (and, with 2FA on, a code).
pub async fn delete_me(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.user", &params);
    let password = v.required_string("password");
    let otp_code = v.optional_nonblank_string("otp_code");
    v.finish()?;
    let user = current.user;
    if !password_matches(&state, &user, password.unwrap_or_default()).await? {
        return Err(ApiError::from(Key::ResourceUserInvalidPassword));
    }
    if user.otp {
        let Some(code) = otp_code else {
            return Err(ApiError::from(Key::ResourceUserMissingOtpCode));
        };
        if !check_totp(&state, user.id, &code).await? {
            return Err(ApiError::from(Key::ResourceUserInvalidOtp));
        }
    }
    let change = state
        .store
        .delete_own_account(user.id, &state.state_rules)
        .await?;
    publish_change(&state, &change).await;
    system_events::emit(&state, "user.account.deleted", &change.user, &[]).await;
    Ok((StatusCode::OK, Json(json!(200))).into_response())
}

/// `PUT users/password`: old password, new one (policy), confirmation; the other sessions of
/// the user are revoked (the one in the request's cookie, if any, is kept).
pub async fn change_password(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.user", &params);
    let old = v.required_string("old_password");
    let new = v.required_string("new_password");
    let confirm = v.required_string("confirm_password");
    v.finish()?;
    let (old, new, confirm) = (
        old.unwrap_or_default(),
        new.unwrap_or_default(),
        confirm.unwrap_or_default(),
    );
    let user = current.user;
    let fail = async |reason: &str| {
        record_activity(
            &state,
            user.id,
            &meta,
            "password",
            "password change",
            "failed",
            Some(reason),
        )
        .await;
    };
    if new != confirm {
        fail("New passwords don't match").await;
        return Err(ApiError::from(Key::ResourcePasswordDoesntMatch));
    }
    if !password_matches(&state, &user, old.clone()).await? {
        fail("Previous password is not correct").await;
        return Err(ApiError::from(Key::ResourcePasswordPrevPassNotCorrect));
    }
    if old == new {
        fail("New password cant be the same, as old one").await;
        return Err(ApiError::from(Key::ResourcePasswordNoChangeProvided));
    }
    let mut problems = Vec::new();
    if new.len() > 72 {
        problems.push("password.too_long".to_owned());
    }
    if let Err(problem) = state.password_policy.check(&new) {
        problems.push(problem.key().to_owned());
    }
    if !problems.is_empty() {
        fail(&problems.join(", ")).await;
        return Err(ApiError::unprocessable(problems));
    }
    let digest = state
        .observe
        .hashing
        .run(move || password_hash::hash_password(&new))
        .await?
        .map_err(|_| ApiError::internal())?;
    let keep = meta.cookie.as_deref().map(session_key);
    let revoked = state
        .store
        .change_password(user.id, &digest, keep.as_deref())
        .await?;
    crate::service::sessions::forget(&state, revoked).await;
    system_events::emit_with_domain(&state, "user.password.change", &user, None).await;
    record_activity(
        &state,
        user.id,
        &meta,
        "password",
        "password change",
        "succeed",
        None,
    )
    .await;
    Ok((StatusCode::CREATED, Json(json!(201))).into_response())
}

/// `GET users/activity/{topic}`: the user's activities, newest first, filtered and paginated.
pub async fn activity(
    State(state): State<ApiState>,
    current: CurrentUser,
    Path(topic): Path<String>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.user", &params);
    let time_from = v.optional_integer(
        "time_from",
        "resource.user.non_integer_time_from",
        "resource.user.empty_time_from",
    );
    let time_to = v.optional_integer(
        "time_to",
        "resource.user.non_integer_time_to",
        "resource.user.empty_time_to",
    );
    let result = v.optional_string_keys(
        "result",
        "resource.user.non_string_result",
        "resource.user.empty_result",
    );
    let page = v.page();
    v.finish()?;
    if !matches!(
        topic.as_str(),
        "all" | "session" | "otp" | "password" | "account"
    ) {
        return Err(ApiError::from(Key::ResourceUserWrongTopic));
    }
    let all = state.store.list_user_activities(current.user.id).await?;
    let selected: Vec<_> = all
        .iter()
        .filter(|a| a.category == "user")
        .filter(|a| topic == "all" || a.topic == topic)
        .filter(|a| time_from.is_none_or(|t| a.created_at.timestamp() >= t))
        .filter(|a| time_to.is_none_or(|t| a.created_at.timestamp() < t))
        .filter(|a| result.as_deref().is_none_or(|r| a.result == r))
        .collect();
    if selected.is_empty() {
        return Err(ApiError::from(Key::ResourceUserNoActivity));
    }
    let total = selected.len() as i64;
    let body: Vec<Value> = selected
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit as usize)
        .map(entities::activity)
        .collect();
    Ok((pagination::headers(&uri, page, total), Json(body)).into_response())
}
