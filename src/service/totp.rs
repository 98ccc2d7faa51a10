//! The TOTP check every namespace applies (login, OTP management, password change,
//! management's `otp/sign`), with its abuse limit and replay refusal.

use super::ApiState;
use super::error::ApiError;
use crate::crypto::totp;

/// Checks a TOTP code of the user as Vault does (SHA-1, 6 digits, 30 s, ±1 step): false when
/// there is no secret, the code is wrong, it was already accepted in its window (replay), or
/// the user sent too many wrong codes lately (`BARONG_RATE_LIMIT_OTP`, see `limits`).
pub async fn check_totp(state: &ApiState, user_id: i64, code: &str) -> Result<bool, ApiError> {
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
