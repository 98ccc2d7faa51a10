//! `identity/users`: sign-up, e-mail confirmation, password reset, whitelink access and the
//! GeeTest registration helper.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{captcha_error, error, mail_settings, open_session, user_full_info};
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::api::system_events;
use crate::crypto::constant_time_eq;
use crate::crypto::password_hash;
use crate::crypto::tokens::random_hex;
use crate::domain::{
    NewMail, NewRestriction, NewUser, OneTimeClaim, UserInput, UserState, generate_uid, role,
    user_language, validate_user,
};
use crate::invalidation::Invalidation;
use crate::mail::templates;
use crate::service::activity::{RequestMeta, record_activity};
use crate::service::error::Key;
use crate::service::error::too_many;
use crate::store::{ClaimUse, Clash, StoreError};

fn created() -> Response {
    (StatusCode::CREATED, Json(json!(201))).into_response()
}

fn unprocessable(key: &str) -> ApiError {
    error(StatusCode::UNPROCESSABLE_ENTITY, key)
}

async fn hash(state: &ApiState, password: String) -> Result<String, ApiError> {
    state
        .observe
        .hashing
        .run(move || password_hash::hash_password(&password))
        .await?
        .map_err(|_| ApiError::internal())
}

/// Answers with the user and a new session (sign-up and e-mail confirmation).
async fn with_session(
    state: &ApiState,
    user: &crate::domain::User,
    meta: &RequestMeta,
    status: StatusCode,
    authenticated_with: &str,
) -> Result<Response, ApiError> {
    let session = open_session(state, user, meta, authenticated_with).await?;
    let body = user_full_info(state, user, Some(&session.csrf_token)).await?;
    Ok((
        status,
        [(header::SET_COOKIE, session.set_cookie)],
        Json(body),
    )
        .into_response())
}

/// `POST identity/users`: sign-up.
pub async fn create(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let email = v.required_string("email");
    let password = v.required_string("password");
    let username = v.optional_string("username");
    let refid = v.optional_string("refid");
    let captcha = v.optional_string_or_object("captcha_response", "invalid");
    // A blank `data` is no data (Barong validates it only when present).
    let data = v.optional_string("data").filter(|d| !d.trim().is_empty());
    v.finish()?;
    if !state.observe.limits.signup_reserve(meta.ip).await? {
        return Err(too_many("identity.user"));
    }
    let email = email.unwrap_or_default().trim().to_owned();
    let password = password.unwrap_or_default();
    state
        .captcha
        .verify("user_create", captcha.as_ref())
        .await
        .map_err(captcha_error)?;

    let mut referral_id = None;
    if let Some(refid) = refid.filter(|r| !r.trim().is_empty()) {
        if !refid.starts_with(&state.config.users.uid_prefix.to_uppercase()) {
            return Err(ApiError::from(Key::IdentityUserInvalidReferralFormat));
        }
        match state.store.find_user_by_uid(&refid).await? {
            Some(referrer) => referral_id = Some(referrer.id),
            None => return Err(ApiError::from(Key::IdentityUserReferralDoesntExist)),
        }
    }

    let username = username.map(|u| u.to_lowercase());
    let email_taken = state.store.find_user_by_email(&email).await?.is_some();
    let username_taken = match username.as_deref() {
        Some(name) if !name.is_empty() => state.store.find_user_by_username(name).await?.is_some(),
        _ => false,
    };
    let errors = validate_user(
        &UserInput {
            email: &email,
            password: &password,
            username: username.as_deref(),
            data: data.as_deref(),
            email_taken,
            username_taken,
        },
        &state.password_policy,
    );
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let digest = hash(&state, password).await?;
    let language = user_language(data.as_deref(), &state.config.mail.default_language);

    let mut attempt = 0;
    let (user, token) = loop {
        attempt += 1;
        let mut random = [0u8; 5];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| ApiError::internal())?;
        let uid = generate_uid(&state.config.users.uid_prefix, random);
        let token = confirmation_token(&state, &email, &uid)?;
        let mail = confirmation_mail(&state, &email, &token, &language);
        let new_user = NewUser {
            uid,
            username: username.clone(),
            email: email.clone(),
            password_digest: digest.clone(),
            role: role::MEMBER.into(),
            data: data.clone(),
            level: 0,
            otp: false,
            state: UserState::Pending,
            referral_id,
            labels: Vec::new(),
        };
        match state
            .store
            .register_user(
                &new_user,
                state.config.users.first_registration_superadmin,
                Some(&mail),
                &state.state_rules,
            )
            .await
        {
            Ok(user) => break (user, token.token),
            Err(StoreError::Conflict(Clash::Uid)) if attempt < 5 => continue,
            Err(StoreError::Conflict(clash @ (Clash::Email | Clash::Username))) => {
                return Err(ApiError::unprocessable(vec![format!("{clash}.taken")]));
            }
            Err(other) => return Err(other.into()),
        }
    };
    state.mail_wakeup.notify_one();
    // A first superadmin is active at once: no confirmation for it.
    if !user.state.is_active() {
        let name = "user.email.confirmation.token";
        system_events::emit_with_domain(&state, name, &user, Some(&token)).await;
    }
    record_activity(&state, user.id, &meta, "account", "signup", "succeed", None).await;
    with_session(&state, &user, &meta, StatusCode::CREATED, "password").await
}

/// `GET identity/users/register_geetest`.
pub async fn register_geetest(State(state): State<ApiState>) -> Json<Value> {
    Json(state.captcha.register_geetest().await)
}

/// `POST identity/users/access`: whitelists the caller's IP with a whitelink token.
pub async fn access(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let token = v.required_string("whitelink_token");
    v.finish()?;
    let token = token.unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if !state.store.whitelink_token_valid(&token, now).await? {
        return Err(ApiError::from(Key::IdentityUserAccessInvalidToken));
    }
    if matches!(meta.ip, IpAddr::V6(_)) {
        return Err(ApiError::from(Key::ValueInvalid));
    }
    let inserted = state
        .store
        .insert_restriction_if_absent(&NewRestriction {
            category: "whitelist".into(),
            scope: "ip".into(),
            value: meta.ip.to_string(),
            code: None,
            state: "enabled".into(),
        })
        .await?;
    if !inserted {
        return Err(ApiError::from(Key::ValueTaken));
    }
    state.invalidation.publish(Invalidation::Restrictions);
    Ok(created())
}

/// `POST identity/users/email/generate_code`: sends the confirmation mail again.
pub async fn email_generate_code(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let email = v.required_string("email");
    let captcha = v.optional_string_or_object("captcha_response", "invalid");
    v.finish()?;
    mail_allowed(&state, email.as_deref(), &meta).await?;
    state
        .captcha
        .verify("email_confirmation", captcha.as_ref())
        .await
        .map_err(captcha_error)?;
    let email = email.unwrap_or_default();
    if let Some(user) = state.store.find_user_by_email(&email).await?
        && !user.state.is_active()
    {
        let token = confirmation_token(&state, &user.email, &user.uid)?;
        let language = user_language(user.data.as_deref(), &state.config.mail.default_language);
        let mail = confirmation_mail(&state, &user.email, &token, &language);
        state.store.queue_mail(&mail).await?;
        state.mail_wakeup.notify_one();
        let name = "user.email.confirmation.token";
        system_events::emit_with_domain(&state, name, &user, Some(&token.token)).await;
    }
    Ok(created())
}

/// A confirmation token for `email`: its one-time claim (`confirmation_token`) is stored with
/// the mail that carries it, and a confirmation is accepted only with the latest one.
fn confirmation_token(
    state: &ApiState,
    email: &str,
    uid: &str,
) -> Result<ConfirmationToken, ApiError> {
    let one_time = random_hex(10);
    let mut claims = Map::new();
    claims.insert("email".into(), json!(email));
    claims.insert("uid".into(), json!(uid));
    claims.insert("confirmation_token".into(), json!(one_time));
    let issued = state
        .tokens
        .issue("confirmation", claims)
        .map_err(|_| ApiError::internal())?;
    Ok(ConfirmationToken {
        claim: OneTimeClaim {
            token: one_time,
            expires_at: issued.exp,
        },
        token: issued.token,
    })
}

struct ConfirmationToken {
    token: String,
    claim: OneTimeClaim,
}

fn confirmation_mail(
    state: &ApiState,
    email: &str,
    token: &ConfirmationToken,
    language: &str,
) -> NewMail {
    let mut mail = templates::confirmation(&mail_settings(state), email, &token.token, language);
    mail.confirmation = Some(token.claim.clone());
    mail
}

fn claim_str(claims: &Map<String, Value>, name: &str) -> String {
    claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn claim_exp(claims: &Map<String, Value>) -> i64 {
    claims
        .get("exp")
        .and_then(Value::as_f64)
        .map(|e| e as i64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp() + 3600)
}

/// `POST identity/users/email/confirm_code`.
pub async fn email_confirm_code(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let token = v.required_string("token");
    v.finish()?;
    let claims = state
        .tokens
        .verify(&token.unwrap_or_default(), "confirmation")
        .map_err(|key| unprocessable(&key))?;
    let email = claim_str(&claims, "email");
    let user = match state.store.find_user_by_email(&email).await? {
        Some(user) if !user.state.is_active() => user,
        _ => return Err(ApiError::from(Key::IdentityUserActiveOrDoesntExist)),
    };
    // A token without its one-time claim never matches a stored one.
    let Some(one_time) = claims.get("confirmation_token").and_then(Value::as_str) else {
        return Err(ApiError::from(Key::IdentityUserUtilizedToken));
    };
    let jti = claim_str(&claims, "jti");
    let claim = ClaimUse {
        email: &email,
        token: one_time,
        jti: &jti,
        expires_at: claim_exp(&claims),
    };
    let Some(user) = state
        .store
        .confirm_email(user.id, &claim, &state.state_rules)
        .await?
    else {
        return Err(ApiError::from(Key::IdentityUserUtilizedToken));
    };
    state
        .invalidation
        .publish(Invalidation::User(user.uid.clone()));
    with_session(&state, &user, &meta, StatusCode::CREATED, "email").await
}

/// `POST identity/users/password/generate_code`: mails a reset link (201 for any e-mail).
///
/// The answer does not wait for the lookup and the mail: known and unknown e-mails are answered
/// after the same work (parameters, limits, captcha), so its timing tells nothing about which
/// addresses are registered. A failure of the deferred part is logged.
pub async fn password_generate_code(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let email = v.required_string("email");
    let captcha = v.optional_string_or_object("captcha_response", "invalid");
    v.finish()?;
    mail_allowed(&state, email.as_deref(), &meta).await?;
    state
        .captcha
        .verify("password_reset", captcha.as_ref())
        .await
        .map_err(captcha_error)?;
    let email = email.unwrap_or_default();
    tokio::spawn(async move {
        if let Err(error) = send_reset(&state, &email, &meta).await {
            tracing::warn!(error = ?error.body, "password reset mail not queued");
        }
    });
    Ok(created())
}

/// Queues the reset mail of `email` if it is registered.
async fn send_reset(state: &ApiState, email: &str, meta: &RequestMeta) -> Result<(), ApiError> {
    let Some(user) = state.store.find_user_by_email(email).await? else {
        return Ok(());
    };
    let reset_token = random_hex(10);
    let mut claims = Map::new();
    claims.insert("email".into(), json!(user.email));
    claims.insert("uid".into(), json!(user.uid));
    claims.insert("reset_token".into(), json!(reset_token));
    let token = state
        .tokens
        .issue("reset", claims)
        .map_err(|_| ApiError::internal())?;
    let language = user_language(user.data.as_deref(), &state.config.mail.default_language);
    let mail =
        templates::password_reset(&mail_settings(state), &user.email, &token.token, &language);
    state
        .store
        .set_reset_token(&user.email, &reset_token, token.exp, &mail)
        .await?;
    state.mail_wakeup.notify_one();
    let name = "user.password.reset.token";
    system_events::emit_with_domain(state, name, &user, Some(&token.token)).await;
    record_activity(
        state,
        user.id,
        meta,
        "password",
        "request password reset",
        "succeed",
        None,
    )
    .await;
    Ok(())
}

/// Mail-sending endpoints count per address and per client IP (`BARONG_RATE_LIMIT_MAIL_*`).
async fn mail_allowed(
    state: &ApiState,
    email: Option<&str>,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    if state
        .observe
        .limits
        .mail_reserve(email.unwrap_or_default(), meta.ip)
        .await?
    {
        Ok(())
    } else {
        Err(too_many("identity.user"))
    }
}

/// `POST identity/users/password/confirm_code`: sets the new password, revokes every session.
pub async fn password_confirm_code(
    State(state): State<ApiState>,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("identity.user", &params);
    let token = v.required_string_as("reset_password_token", "identity.user.missing_pass_token");
    let password = v.required_string("password");
    let confirm = v.required_string("confirm_password");
    v.finish()?;
    let (token, password) = (token.unwrap_or_default(), password.unwrap_or_default());
    if Some(&password) != confirm.as_ref() {
        return Err(ApiError::from(Key::IdentityUserPasswordsDoesntMatch));
    }
    let claims = state
        .tokens
        .verify(&token, "reset")
        .map_err(|key| unprocessable(&key))?;
    let email = claim_str(&claims, "email");
    let latest = state
        .store
        .find_reset_token(&email, chrono::Utc::now().timestamp())
        .await?;
    let presented = claims
        .get("reset_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Only a stored, unexpired token matches: a missing claim never does (Barong lets an absent
    // claim equal an absent stored token). Compared in constant time.
    let same = match (&latest, &presented) {
        (Some(latest), Some(presented)) => constant_time_eq(latest, presented),
        _ => false,
    };
    let Some(presented) = presented.filter(|_| same) else {
        return Err(ApiError::from(Key::IdentityUserUtilizedToken));
    };
    let Some(user) = state.store.find_user_by_email(&email).await? else {
        return Err(ApiError::from(Key::RecordNotFound));
    };
    let mut problems = Vec::new();
    if password.len() > 72 {
        problems.push("password.too_long".to_owned());
    }
    if let Err(problem) = state.password_policy.check(&password) {
        problems.push(problem.key().to_owned());
    }
    if !problems.is_empty() {
        record_activity(
            &state,
            user.id,
            &meta,
            "password",
            "password reset",
            "failed",
            Some(&problems.join(", ")),
        )
        .await;
        return Err(ApiError::unprocessable(problems));
    }
    let digest = hash(&state, password).await?;
    let jti = claim_str(&claims, "jti");
    let claim = ClaimUse {
        email: &email,
        token: &presented,
        jti: &jti,
        expires_at: claim_exp(&claims),
    };
    let Some(revoked) = state.store.reset_password(user.id, &claim, &digest).await? else {
        return Err(ApiError::from(Key::IdentityUserUtilizedToken));
    };
    // Answered once this instance's caches dropped the sessions: a reset is often a reaction
    // to a stolen session.
    let sessions = revoked.into_iter().map(Invalidation::Session);
    let user_changed = Invalidation::User(user.uid.clone());
    state
        .invalidation
        .publish_all_applied(sessions.chain(std::iter::once(user_changed)))
        .await;
    system_events::emit_with_domain(&state, "user.password.reset", &user, None).await;
    record_activity(
        &state,
        user.id,
        &meta,
        "password",
        "password reset",
        "succeed",
        None,
    )
    .await;
    Ok(created())
}
