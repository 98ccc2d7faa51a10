//! `POST identity/sessions` (login) and `DELETE identity/sessions` (logout)

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{captcha_error, cookie_attributes, error, mail_settings, open_session, user_full_info};
use crate::api::ApiState;
use crate::api::entities::iso8601;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator, coerce_string};
use crate::api::system_events;
use crate::crypto::password_hash::{self, Verification};
use crate::domain::session::DeviceSighting;
use crate::domain::{User, UserState, describe_device, network_of};
use crate::domain::{session_key, user_language};
use crate::invalidation::Invalidation;
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::error::Key;
use crate::service::error::too_many;

/// An argon2id digest of nothing in particular, checked against when the e-mail is unknown.
static DUMMY_DIGEST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    password_hash::hash_password("not a password of anyone").unwrap_or_default()
});

fn as_text(value: Option<&Value>) -> String {
    value
        .map(|v| coerce_string(v).unwrap_or_else(|| v.to_string()))
        .unwrap_or_default()
}

/// Login.
pub async fn create(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.session", &params);
    let email = v.required_any("email").cloned();
    let password = v.required_any("password").cloned();
    let captcha = v.optional_string_or_object(
        "captcha_response",
        "identity.session.invalid_captcha_format",
    );
    let otp_code = v.optional_string("otp_code");
    v.finish()?;
    let (email, password) = (as_text(email.as_ref()), as_text(password.as_ref()));
    let limits = state.observe.limits.clone();
    let checked = check_password(&state, &meta, &email, password.clone(), captcha.as_ref()).await?;
    let (user, verification) = (checked.user, checked.verification);
    if user.otp {
        if otp_code.as_deref().is_none_or(|c| c.trim().is_empty()) {
            // The right password without a code is the first step of a 2FA login, not a
            // failed guess: its slots go back.
            limits.login_release(&email, meta.ip).await;
            return Err(ApiError::from(Key::IdentitySessionMissingOtp));
        }
        let code = otp_code.as_deref().unwrap_or_default();
        if !crate::service::totp::check_totp(&state, user.id, code).await? {
            record_activity(
                &state,
                user.id,
                &meta,
                "session",
                "login::2fa",
                "failed",
                Some("OTP code is invalid"),
            )
            .await;
            return Err(ApiError::from(Key::IdentitySessionInvalidOtp));
        }
    } else if crate::service::passkeys::second_factors(&state, &user)
        .await?
        .passkey
    {
        // A user whose only second factor is a passkey finishes at `sessions/passkey`.
        limits.login_release(&email, meta.ip).await;
        return Err(ApiError::from(Key::IdentitySessionMissingPasskey));
    }
    if verification == Verification::MatchNeedsRehash {
        rehash(&state, user.id, password).await;
    }
    limits.login_succeeded(&email, meta.ip).await;
    // Barong names a login that passed its 2FA code apart.
    let action = if user.otp { "login::2fa" } else { "login" };
    record_activity(&state, user.id, &meta, "session", action, "succeed", None).await;
    let proven = if user.otp { "password+2fa" } else { "password" };
    complete_login(&state, &user, &meta, proven).await
}

/// A user whose e-mail and password were right.
pub(super) struct Checked {
    pub user: User,
    pub verification: Verification,
}

/// Why a user in `user.state` may not log in: the activity's reason and the error key.
pub(super) fn refused_state(user: &User) -> Option<(&'static str, &'static str)> {
    match user.state {
        UserState::Active | UserState::Pending => None,
        UserState::Banned => Some(("Your account is banned", "identity.session.banned")),
        UserState::Deleted => Some(("Your account is deleted", "identity.session.deleted")),
        UserState::Locked | UserState::Disabled | UserState::Other(_) => {
            Some(("Your account is not active", "identity.session.not_active"))
        }
    }
}

/// The first step of every password login (`sessions`, `sessions/passkey/options`): the abuse
/// limits, the captcha, the user's state and the password. A wrong one keeps its limit slots.
pub(super) async fn check_password(
    state: &ApiState,
    meta: &RequestMeta,
    email: &str,
    password: String,
    captcha: Option<&Value>,
) -> Result<Checked, ApiError> {
    let limits = state.observe.limits.clone();
    // A locked account or address is refused before the captcha, so it costs nothing more
    // (`BARONG_RATE_LIMIT_LOGIN_*`, see `api::limits`).
    if limits.login_locked(email, meta.ip).await? {
        return Err(too_many("identity.session"));
    }
    state
        .captcha
        .verify("session_create", captcha)
        .await
        .map_err(captcha_error)?;
    // The attempt takes its slot before any password is checked: a burst released at once
    // gets at most the limit's checks, the rest are refused here. A failed attempt keeps it.
    if !limits.login_reserve(email, meta.ip).await? {
        return Err(too_many("identity.session"));
    }
    let invalid = || ApiError::from(Key::IdentitySessionInvalidParams);
    let Some(user) = state.store.find_user_by_email(email).await? else {
        // Spend the time a password check takes, so the answer time does not tell whether
        // the e-mail is registered.
        state
            .observe
            .dummy_password_checks
            .fetch_add(1, Ordering::Relaxed);
        let checked = state
            .observe
            .hashing
            .run(move || password_hash::verify_password(&password, &DUMMY_DIGEST))
            .await;
        if let Err(busy) = checked {
            limits.login_release(email, meta.ip).await;
            return Err(busy.into());
        }
        return Err(invalid());
    };
    if let Some((reason, key)) = refused_state(&user) {
        record_activity(
            state,
            user.id,
            meta,
            "session",
            "login",
            "failed",
            Some(reason),
        )
        .await;
        return Err(error(StatusCode::UNAUTHORIZED, key));
    }
    let digest = user.password_digest.clone();
    let verification = match state
        .observe
        .hashing
        .run(move || password_hash::verify_password(&password, &digest))
        .await
    {
        Ok(verification) => verification,
        Err(busy) => {
            // Not checked: the attempt does not count.
            limits.login_release(email, meta.ip).await;
            return Err(busy.into());
        }
    };
    if verification == Verification::Mismatch {
        record_activity(
            state,
            user.id,
            meta,
            "session",
            "login",
            "failed",
            Some("Invalid Email or Password"),
        )
        .await;
        return Err(invalid());
    }
    Ok(Checked { user, verification })
}

/// The last step of every login: the session, its event and notices, and the answer (the
/// user with the CSRF token, and the cookie).
pub(super) async fn complete_login(
    state: &ApiState,
    user: &User,
    meta: &RequestMeta,
    proven: &str,
) -> Result<Response, ApiError> {
    let session = open_session(state, user, meta, proven).await?;
    let origin = [
        ("user_ip", json!(meta.ip.to_string())),
        (
            "user_agent",
            json!(meta.user_agent.as_deref().unwrap_or("")),
        ),
    ];
    system_events::emit(state, "session.create", user, &origin).await;
    let language = user_language(user.data.as_deref(), &state.config.mail.default_language);
    let mail = crate::mail::templates::new_login(
        &mail_settings(state),
        &user.email,
        &meta.ip.to_string(),
        meta.user_agent.as_deref().unwrap_or(""),
        &language,
    );
    match state.store.queue_mail(&mail).await {
        Ok(()) => state.mail_wakeup.notify_one(),
        Err(e) => tracing::warn!(error = %e, "new-login notice not queued"),
    }
    notice_new_device(state, user, meta, &language).await;
    let body = user_full_info(state, user, Some(&session.csrf_token)).await?;
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, session.set_cookie)],
        Json(body),
    )
        .into_response())
}

/// With `BARONG_SESSION_NEW_DEVICE_NOTICE` on: remembers the login's device and network and,
/// when the pair is new to the user, mails a notice and raises `system.session.new_device`.
/// Best effort: the login has succeeded whatever happens here.
async fn notice_new_device(state: &ApiState, user: &User, meta: &RequestMeta, language: &str) {
    if !state.config.session.session_new_device_notice {
        return;
    }
    let device = describe_device(meta.user_agent.as_deref());
    let now = chrono::Utc::now();
    let network = network_of(meta.ip);
    let sighting = state
        .store
        .record_user_device(user.id, &device, &network, now.timestamp())
        .await;
    match sighting {
        Ok(DeviceSighting::New) => {}
        Ok(DeviceSighting::First | DeviceSighting::Known) => return,
        Err(error) => {
            tracing::warn!(%error, "login device not recorded; no new-device notice");
            return;
        }
    }
    let ip = meta.ip.to_string();
    let country = state.country_of(meta.ip);
    let time = iso8601(&now);
    let fields = [
        ("device", json!(device)),
        ("user_ip", json!(ip)),
        ("user_ip_country", json!(country)),
        (
            "user_agent",
            json!(meta.user_agent.as_deref().unwrap_or("")),
        ),
        ("time", json!(time)),
    ];
    system_events::emit(state, "session.new_device", user, &fields).await;
    let mail = crate::mail::templates::new_device(
        &mail_settings(state),
        &user.email,
        &crate::mail::templates::DeviceNotice {
            device: &device,
            ip: &ip,
            country: country.as_deref(),
            time: &time,
        },
        language,
    );
    match state.store.queue_mail(&mail).await {
        Ok(()) => state.mail_wakeup.notify_one(),
        Err(e) => tracing::warn!(error = %e, "new-device notice not queued"),
    }
}

/// Replaces a Barong bcrypt digest (or a weaker argon2 one) with a current argon2id hash.
pub(super) async fn rehash(state: &ApiState, user_id: i64, password: String) {
    let hashed = state
        .observe
        .hashing
        .run(move || password_hash::hash_password(&password))
        .await;
    match hashed {
        Ok(Ok(digest)) => {
            if let Err(error) = state.store.update_password_digest(user_id, &digest).await {
                tracing::warn!(%error, "password rehash not stored");
            }
        }
        _ => tracing::warn!("password rehash failed"),
    }
}

/// Logout.
pub async fn destroy(
    State(state): State<ApiState>,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::from(Key::IdentitySessionNotFound);
    let Some(cookie) = &meta.cookie else {
        return Err(not_found());
    };
    let id = session_key(cookie);
    let Some(session) = state.store.find_session(&id).await? else {
        return Err(not_found());
    };
    if session.expire_at <= chrono::Utc::now().timestamp() {
        state.store.delete_session(&id).await?;
        state
            .invalidation
            .publish_applied(Invalidation::Session(id))
            .await;
        return Err(not_found());
    }
    let Some(user) = state.store.find_user_by_id(session.user_id).await? else {
        return Err(not_found());
    };
    record_activity(&state, user.id, &meta, "session", "logout", "succeed", None).await;
    state.store.delete_session(&id).await?;
    state
        .invalidation
        .publish_applied(Invalidation::Session(id))
        .await;
    let expired = HeaderValue::from_str(&cookie_attributes(&state, "", true))
        .map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, expired)],
        Json(json!(200)),
    )
        .into_response())
}
