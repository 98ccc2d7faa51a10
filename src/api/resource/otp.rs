//! `resource/otp/...`: two-factor authentication with TOTP (see `crypto::totp`). The secret is
//! generated here, stored encrypted, and shown once in the otpauth URL and QR code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::crypto::totp;
use crate::domain::session_key;
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::changes::publish_change;
use crate::service::error::Key;
use crate::service::totp::check_totp;

const QR_SIZE: u32 = 300;

fn already_enabled() -> ApiError {
    ApiError::from(Key::ResourceOtpAlreadyEnabled)
}

fn invalid() -> ApiError {
    ApiError::from(Key::ResourceOtpInvalid)
}

async fn failed(state: &ApiState, user_id: i64, meta: &RequestMeta, action: &str, reason: &str) {
    record_activity(state, user_id, meta, "otp", action, "failed", Some(reason)).await;
}

fn code_param(params: &Params) -> Result<String, ApiError> {
    let mut v = Validator::new("resource.otp", params);
    let code = v.required_string("code");
    v.finish()?;
    Ok(code.unwrap_or_default())
}

/// `POST otp/generate_qrcode`: a new secret (overwriting any earlier one), answered as Vault's
/// response object with `data.barcode` (base64 PNG) and `data.url` (otpauth URL); 201.
pub async fn generate_qrcode(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    let user = current.user;
    let action = "request QR code for 2FA";
    if user.otp {
        failed(
            &state,
            user.id,
            &meta,
            action,
            "2FA has been already enabled for this account",
        )
        .await;
        return Err(already_enabled());
    }
    let secret = totp::generate_secret();
    let url = totp::otpauth_url(&state.config.users.app_name, &user.email, &secret);
    let barcode = totp::qr_png_base64(&url, QR_SIZE).ok_or_else(ApiError::internal)?;
    state
        .store
        .set_otp_secret(user.id, &state.encryptor.encrypt(&secret))
        .await?;
    record_activity(&state, user.id, &meta, "otp", action, "succeed", None).await;
    let body = json!({
        "request_id": "",
        "lease_id": "",
        "lease_duration": 0,
        "renewable": false,
        "data": { "barcode": barcode, "url": url },
        "metadata": null,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `POST otp/enable`: turns 2FA on with a valid code; the user's other sessions are revoked.
pub async fn enable(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let code = code_param(&params)?;
    let user = current.user;
    let action = "enable 2FA";
    if user.otp {
        failed(
            &state,
            user.id,
            &meta,
            action,
            "2FA has been already enabled for this account",
        )
        .await;
        return Err(already_enabled());
    }
    if !check_totp(&state, user.id, &code).await? {
        failed(&state, user.id, &meta, action, "OTP code is invalid").await;
        return Err(invalid());
    }
    let keep = meta.cookie.as_deref().map(session_key);
    let change = state
        .store
        .set_user_otp(user.id, true, keep.as_deref(), &state.state_rules)
        .await?;
    publish_change(&state, &change).await;
    record_activity(&state, user.id, &meta, "otp", action, "succeed", None).await;
    Ok((StatusCode::CREATED, Json(json!(200))).into_response())
}

/// `POST otp/disable`: turns 2FA off with a valid code; every active API key of the user and of
/// its service accounts is deactivated in the same transaction.
pub async fn disable(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let code = code_param(&params)?;
    let user = current.user;
    let action = "disable 2FA";
    if !user.otp {
        failed(
            &state,
            user.id,
            &meta,
            action,
            "2FA has not been enabled for this account",
        )
        .await;
        return Err(ApiError::from(Key::ResourceOtpNotEnabled));
    }
    if !check_totp(&state, user.id, &code).await? {
        failed(&state, user.id, &meta, action, "OTP code is invalid").await;
        return Err(invalid());
    }
    let change = state
        .store
        .set_user_otp(user.id, false, None, &state.state_rules)
        .await?;
    publish_change(&state, &change).await;
    record_activity(&state, user.id, &meta, "otp", action, "succeed", None).await;
    Ok((StatusCode::OK, Json(json!(200))).into_response())
}

/// `POST otp/verify`: checks a code; 201 with `null`. With 2FA off Barong answers
/// `resource.otp.already_enabled` (sic).
pub async fn verify(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let code = code_param(&params)?;
    let user = current.user;
    let action = "verify 2FA code";
    if !user.otp {
        failed(
            &state,
            user.id,
            &meta,
            action,
            "2FA has not been enabled for this account",
        )
        .await;
        return Err(already_enabled());
    }
    if !check_totp(&state, user.id, &code).await? {
        failed(&state, user.id, &meta, action, "OTP code is invalid").await;
        return Err(invalid());
    }
    Ok((StatusCode::CREATED, Json(Value::Null)).into_response())
}
