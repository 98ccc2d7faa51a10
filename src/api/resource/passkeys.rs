//! `resource/passkeys`: the logged-in user's passkeys (WebAuthn credentials): register (options,
//! then the authenticator's answer), list, rename, delete. The ceremonies are `crate::service::passkeys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities::iso8601;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::domain::User;
use crate::domain::passkey::{Passkey, PasskeyDeletion, passkey_name};
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::confirm::password_matches;
use crate::service::error::Key;
use crate::service::passkeys::{self, PasskeyError};
use crate::service::totp::check_totp;

/// The resource scope's key of a ceremony failure.
fn refused(e: PasskeyError) -> ApiError {
    match e {
        PasskeyError::Disabled => ApiError::from(Key::ResourcePasskeyDisabled),
        PasskeyError::UnknownChallenge => ApiError::from(Key::ResourcePasskeyInvalidChallenge),
        PasskeyError::ChallengeExpired => ApiError::from(Key::ResourcePasskeyChallengeExpired),
        PasskeyError::AlreadyRegistered => ApiError::from(Key::ResourcePasskeyAlreadyRegistered),
        PasskeyError::Store(e) => e.into(),
        PasskeyError::Malformed
        | PasskeyError::UnknownCredential
        | PasskeyError::NoPasskeys
        | PasskeyError::Cloned { .. }
        | PasskeyError::Refused(_) => ApiError::from(Key::ResourcePasskeyInvalidCredential),
    }
}

fn reason_of(e: &PasskeyError) -> &'static str {
    match e {
        PasskeyError::Refused(reason) => reason,
        PasskeyError::UnknownChallenge => "unknown or used challenge",
        PasskeyError::ChallengeExpired => "challenge expired",
        PasskeyError::AlreadyRegistered => "credential already registered",
        PasskeyError::Malformed => "malformed credential",
        _ => "refused",
    }
}

fn time(epoch: i64) -> Value {
    chrono::DateTime::from_timestamp(epoch, 0).map_or(Value::Null, |t| json!(iso8601(&t)))
}

/// What the owner sees of a passkey: never the credential or its key.
fn entity(passkey: &Passkey) -> Value {
    json!({
        "id": passkey.id,
        "name": passkey.name,
        "created_at": time(passkey.created_at),
        "last_used_at": passkey.last_used_at.map_or(Value::Null, time),
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `POST passkeys/options`: the options for `navigator.credentials.create`; 201. Starting a
/// registration needs `otp_code` (with TOTP on) or else `password`: a passkey is a way in and,
/// for a TOTP user, a second factor, so a session alone (a stolen cookie) must not add one.
pub async fn options(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let proof = Proof::read(&params)?;
    let settings = state.config.passkeys();
    if settings.is_none() {
        return Err(refused(PasskeyError::Disabled));
    }
    let user = &current.user;
    // With TOTP on only the code proves the change: the password is the factor a phished
    // user loses first.
    if !confirm(&state, user, &meta, "register passkey", proof, user.otp).await? {
        return Err(ApiError::from(Key::ResourcePasskeyConfirmationRequired));
    }
    let options = passkeys::start_registration(
        state.store.as_ref(),
        settings.as_ref(),
        &current.user,
        now(),
    )
    .await
    .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(options)).into_response())
}

/// `POST passkeys`: the authenticator's answer (`credential`, as `PublicKeyCredential.toJSON()`
/// gives it) and an optional `name`; 201 with the new passkey.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.passkey", &params);
    let credential = v.required_any("credential").cloned();
    let name = v.optional_string("name");
    v.finish()?;
    let name = match name {
        None => "Passkey".to_owned(),
        Some(raw) => {
            passkey_name(&raw).ok_or_else(|| ApiError::from(Key::ResourcePasskeyInvalidName))?
        }
    };
    let user = current.user;
    let settings = state.config.passkeys();
    let created = passkeys::finish_registration(
        state.store.as_ref(),
        settings.as_ref(),
        &user,
        credential.as_ref().unwrap_or(&Value::Null),
        &name,
        now(),
    )
    .await;
    let action = "register passkey";
    match created {
        Ok(passkey) => {
            record_activity(&state, user.id, &meta, "otp", action, "succeed", None).await;
            Ok((StatusCode::CREATED, Json(entity(&passkey))).into_response())
        }
        Err(e) => {
            if !matches!(e, PasskeyError::Store(_) | PasskeyError::Disabled) {
                let reason = reason_of(&e);
                record_activity(
                    &state,
                    user.id,
                    &meta,
                    "otp",
                    action,
                    "failed",
                    Some(reason),
                )
                .await;
            }
            Err(refused(e))
        }
    }
}

/// `GET passkeys`: the caller's passkeys, oldest first.
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let passkeys = state.store.passkey_list(current.user.id).await?;
    let body: Vec<Value> = passkeys.iter().map(entity).collect();
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn passkey_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::from(Key::ResourcePasskeyNotFound))
}

/// `PATCH passkeys/{id}`: a new `name`; 200 with the passkey.
pub async fn update(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.passkey", &params);
    let name = v.required_string("name");
    v.finish()?;
    let name = passkey_name(&name.unwrap_or_default())
        .ok_or_else(|| ApiError::from(Key::ResourcePasskeyInvalidName))?;
    let id = passkey_id(&id)?;
    let user = current.user;
    let Some(passkey) = state.store.passkey_rename(user.id, id, &name).await? else {
        return Err(ApiError::from(Key::ResourcePasskeyNotFound));
    };
    record_activity(
        &state,
        user.id,
        &meta,
        "otp",
        "rename passkey",
        "succeed",
        None,
    )
    .await;
    Ok((StatusCode::OK, Json(entity(&passkey))).into_response())
}

/// `DELETE passkeys/{id}`: 204. The user's last passkey also needs `otp_code` (with 2FA on) or
/// `password`: a session alone must not be able to remove a second factor.
pub async fn destroy(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let proof = Proof::read(&params)?;
    let id = passkey_id(&id)?;
    let user = current.user;
    let action = "delete passkey";
    let confirmed = confirm(&state, &user, &meta, action, proof, false).await?;
    match state.store.passkey_delete(user.id, id, confirmed).await? {
        PasskeyDeletion::Deleted => {
            record_activity(&state, user.id, &meta, "otp", action, "succeed", None).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        PasskeyDeletion::NotFound => Err(ApiError::from(Key::ResourcePasskeyNotFound)),
        PasskeyDeletion::NeedsConfirmation => {
            Err(ApiError::from(Key::ResourcePasskeyConfirmationRequired))
        }
    }
}

/// What a user sends to prove a change to their passkeys is theirs, not a stolen session's.
struct Proof {
    otp_code: Option<String>,
    password: Option<String>,
}

impl Proof {
    fn read(params: &Params) -> Result<Self, ApiError> {
        let mut v = Validator::new("resource.passkey", params);
        let otp_code = v.optional_nonblank_string("otp_code");
        let password = v.optional_nonblank_string("password");
        v.finish()?;
        Ok(Self { otp_code, password })
    }
}

/// Checks the proof: the TOTP code when the user has TOTP on and sent one, else the password
/// (unless `code_only`). Ok(false) when nothing usable was sent; a wrong one records a failed
/// `otp` activity and answers the endpoint's key. Both checks count against their abuse limits
/// (`totp::check_totp`, `confirm::password_matches`).
async fn confirm(
    state: &ApiState,
    user: &User,
    meta: &RequestMeta,
    action: &str,
    proof: Proof,
    code_only: bool,
) -> Result<bool, ApiError> {
    let (right, reason, key) = match (proof.otp_code.filter(|_| user.otp), proof.password) {
        (Some(code), _) => (
            check_totp(state, user.id, &code).await?,
            "OTP code is invalid",
            Key::ResourcePasskeyInvalidOtp,
        ),
        (None, Some(password)) if !code_only => (
            password_matches(state, user, password).await?,
            "Invalid password",
            Key::ResourcePasskeyInvalidPassword,
        ),
        _ => return Ok(false),
    };
    if !right {
        record_activity(state, user.id, meta, "otp", action, "failed", Some(reason)).await;
        return Err(ApiError::from(key));
    }
    Ok(true)
}
