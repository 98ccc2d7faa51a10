//! `identity/sessions/passkey`: logging in with a passkey, as the second step of a password
//! login or (with `BARONG_PASSKEY_PASSWORDLESS`) alone. The ceremonies are `crate::service::passkeys`;
//! the password step and the session are the ones of `sessions`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error;
use super::sessions::{Checked, check_password, complete_login, refused_state, rehash};
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator, coerce_string};
use crate::crypto::password_hash::Verification;
use crate::domain::passkey::ChallengePurpose;
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::error::Key;
use crate::service::error::too_many;
use crate::service::passkeys::{self, PasskeyError};

/// The identity scope's key of a ceremony failure.
fn refused(e: PasskeyError) -> ApiError {
    let unauthorized = |key| error(StatusCode::UNAUTHORIZED, key);
    match e {
        PasskeyError::Disabled => ApiError::from(Key::IdentitySessionPasskeyDisabled),
        PasskeyError::NoPasskeys => ApiError::from(Key::IdentitySessionNoPasskeys),
        PasskeyError::UnknownChallenge => unauthorized("identity.session.invalid_challenge"),
        PasskeyError::ChallengeExpired => unauthorized("identity.session.challenge_expired"),
        PasskeyError::Cloned { .. } => unauthorized("identity.session.passkey_cloned"),
        PasskeyError::Store(e) => e.into(),
        PasskeyError::Malformed
        | PasskeyError::UnknownCredential
        | PasskeyError::AlreadyRegistered
        | PasskeyError::Refused(_) => unauthorized("identity.session.invalid_passkey"),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `POST sessions/passkey/options`: with `email` and `password` (and the captcha, as for
/// `sessions`), the options of the second step for that user's passkeys; with neither, the
/// options of a passwordless login when the settings allow it. 201.
pub async fn options(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let settings = state.config.passkeys();
    let Some(enabled) = settings.as_ref() else {
        return Err(refused(PasskeyError::Disabled));
    };
    if !params.0.contains_key("email") && !params.0.contains_key("password") {
        if !enabled.passwordless {
            return Err(ApiError::from(Key::IdentitySessionPasswordlessDisabled));
        }
        // Anyone may ask, and each answer is a row until it expires: each takes a login slot of
        // the address (`BARONG_RATE_LIMIT_LOGIN_IP`), given back by a login that succeeds.
        if !state
            .observe
            .limits
            .login_ip
            .reserve(&meta.ip.to_string())
            .await?
        {
            return Err(too_many("identity.session"));
        }
        let options = passkeys::start_passwordless(state.store.as_ref(), settings.as_ref(), now())
            .await
            .map_err(refused)?;
        return Ok((StatusCode::CREATED, Json(options)).into_response());
    }
    let mut v = Validator::new("identity.session", &params);
    let email = v.required_any("email").and_then(coerce_string);
    let password = v.required_any("password").and_then(coerce_string);
    let captcha = v.optional_string_or_object(
        "captcha_response",
        "identity.session.invalid_captcha_format",
    );
    v.finish()?;
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let Checked { user, verification } =
        check_password(&state, &meta, &email, password.clone(), captcha.as_ref()).await?;
    // The right password is the first step of a 2FA login, not a failed guess: its slots go
    // back, as for a login that waits for its TOTP code.
    state.observe.limits.login_release(&email, meta.ip).await;
    if verification == Verification::MatchNeedsRehash {
        rehash(&state, user.id, password).await;
    }
    let options = passkeys::start_login(state.store.as_ref(), settings.as_ref(), &user, now())
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(options)).into_response())
}

/// `POST sessions/passkey`: the authenticator's answer (`credential`, as
/// `PublicKeyCredential.toJSON()` gives it) to an open login challenge; the session as
/// `sessions` opens it, recorded as `password+passkey` (or `passkey` alone).
pub async fn create(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.session", &params);
    let credential = v.required_any("credential").cloned();
    v.finish()?;
    let settings = state.config.passkeys();
    let answer = credential.unwrap_or_default();
    let logged_in =
        match passkeys::finish_login(state.store.as_ref(), settings.as_ref(), &answer, now()).await
        {
            Ok(logged_in) => logged_in,
            Err(PasskeyError::Cloned { user_id }) => {
                tracing::warn!(user_id, "passkey counter did not move forward: refused");
                record_activity(
                    &state,
                    user_id,
                    &meta,
                    "session",
                    "login::passkey",
                    "failed",
                    Some(
                        "Passkey signature counter did not increase: possible cloned authenticator",
                    ),
                )
                .await;
                return Err(refused(PasskeyError::Cloned { user_id }));
            }
            Err(e) => return Err(refused(e)),
        };
    let Some(user) = state.store.find_user_by_id(logged_in.user_id).await? else {
        return Err(refused(PasskeyError::UnknownCredential));
    };
    let action = match logged_in.purpose {
        ChallengePurpose::Passwordless => "login::passkey",
        _ => "login::2fa",
    };
    if let Some((reason, key)) = refused_state(&user) {
        record_activity(
            &state,
            user.id,
            &meta,
            "session",
            action,
            "failed",
            Some(reason),
        )
        .await;
        return Err(error(StatusCode::UNAUTHORIZED, key));
    }
    state
        .observe
        .limits
        .login_succeeded(&user.email, meta.ip)
        .await;
    record_activity(&state, user.id, &meta, "session", action, "succeed", None).await;
    complete_login(&state, &user, &meta, logged_in.purpose.authenticated_with()).await
}
