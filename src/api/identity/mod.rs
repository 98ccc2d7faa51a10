//! The identity namespace: sign-up, login/logout, e-mail confirmation,
//! password reset, whitelink access and the GeeTest registration helper. The informational
//! endpoints shared with `public/` live in `api::public`.

mod passkeys;
mod sessions;
mod users;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{get, post};

use super::ApiState;
pub(crate) use super::entities::user_full_info;
use super::error::ApiError;
use crate::captcha::CaptchaError;
use crate::config::Environment;
use crate::crypto::tokens::random_hex;
use crate::domain::{NewSession, User, session_key};
use crate::invalidation::Invalidation;
use crate::service::activity::RequestMeta;

/// The identity routes (mounted under `/identity` next to the shared informational ones).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/sessions",
            post(sessions::create).delete(sessions::destroy),
        )
        .route("/sessions/passkey", post(passkeys::create))
        .route("/sessions/passkey/options", post(passkeys::options))
        .route("/users", post(users::create))
        .route("/users/register_geetest", get(users::register_geetest))
        .route("/users/access", post(users::access))
        .route(
            "/users/email/generate_code",
            post(users::email_generate_code),
        )
        .route("/users/email/confirm_code", post(users::email_confirm_code))
        .route(
            "/users/password/generate_code",
            post(users::password_generate_code),
        )
        .route(
            "/users/password/confirm_code",
            post(users::password_confirm_code),
        )
}

/// An API error with one key.
pub(crate) fn error(status: StatusCode, key: &str) -> ApiError {
    ApiError::new(status, key)
}

pub(crate) fn captcha_error(e: CaptchaError) -> ApiError {
    let status = match e {
        CaptchaError::VerificationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.key())
}

/// A freshly opened session: the `Set-Cookie` value and the CSRF token for the body.
pub(crate) struct OpenedSession {
    pub set_cookie: HeaderValue,
    pub csrf_token: String,
}

/// Barong's `open_session`, with a new id at every login: a session the request carried
/// is deleted first (no fixation). `authenticated_with` says how the caller proved who it is
/// (`password`, `password+2fa`, `email` for a confirmation link), for the sessions list.
pub(crate) async fn open_session(
    state: &ApiState,
    user: &User,
    meta: &RequestMeta,
    authenticated_with: &str,
) -> Result<OpenedSession, ApiError> {
    if let Some(old) = &meta.cookie {
        let id = session_key(old);
        if state.store.delete_session(&id).await? {
            state
                .invalidation
                .publish_applied(Invalidation::Session(id))
                .await;
        }
    }
    let cookie = random_hex(16);
    let csrf_token = random_hex(10);
    let policies = state.config.session_policies();
    let policy = policies.for_agent(meta.user_agent.as_deref());
    let expire_at = chrono::Utc::now().timestamp() + policy.expire_time;
    state
        .store
        .create_session(&NewSession {
            id: session_key(&cookie),
            user_id: user.id,
            uid: user.uid.clone(),
            user_ip: meta.ip.to_string(),
            user_agent: meta.user_agent.clone(),
            csrf_token: csrf_token.clone(),
            expire_at,
            authenticated_with: authenticated_with.to_owned(),
            user_ip_country: state.country_of(meta.ip),
        })
        .await?;
    let set_cookie = HeaderValue::from_str(&cookie_attributes(state, &cookie, false))
        .map_err(|_| ApiError::internal())?;
    Ok(OpenedSession {
        set_cookie,
        csrf_token,
    })
}

/// The session cookie as this server sets it; `expire` clears it.
pub(crate) fn cookie_attributes(state: &ApiState, value: &str, expire: bool) -> String {
    let secure = !matches!(
        state.config.server.env,
        Environment::Development | Environment::Test
    );
    session_cookie_header(&state.config.session.session_name, value, expire, secure)
}

/// `name=value; Path=/; HttpOnly; SameSite=Lax[; Max-Age=0; Expires=...][; Secure]`.
pub fn session_cookie_header(name: &str, value: &str, expire: bool, secure: bool) -> String {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if expire {
        text.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

/// The language and mail settings used by the templates.
pub(crate) fn mail_settings(state: &ApiState) -> crate::mail::MailSettings {
    crate::mail::MailSettings {
        domain: state.config.users.domain.clone(),
        logo: state.config.mail.smtp_logo_link.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_and_lookup() {
        assert_eq!(
            session_cookie_header("_barong_session", "ab", false, true),
            "_barong_session=ab; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            session_cookie_header("s", "", true, false),
            "s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
