//! A password asked again of a signed-in user (`PUT users/password`, `DELETE users/me`, the
//! proofs of `resource/passkeys`). A stolen session must not turn into unlimited password
//! guesses: each check takes one of the account's login slots (`BARONG_RATE_LIMIT_LOGIN_ACCOUNT`,
//! the limit a login counts against), so guesses behind a cookie and guesses at the login page
//! share one budget.

use super::ApiState;
use super::error::ApiError;
use crate::crypto::password_hash::{self, Verification};
use crate::domain::User;

/// Whether `password` is the user's. A wrong one keeps its slot; a right one gives it back.
/// False, unchecked, when the account has no slot left in its window (as `totp::check_totp`
/// answers a locked-out code), so the answer does not tell a locked account from a wrong guess.
pub async fn password_matches(
    state: &ApiState,
    user: &User,
    password: String,
) -> Result<bool, ApiError> {
    let limits = &state.observe.limits;
    if !limits.account_reserve(&user.email).await? {
        return Ok(false);
    }
    let digest = user.password_digest.clone();
    let verification = state
        .observe
        .hashing
        .run(move || password_hash::verify_password(&password, &digest))
        .await;
    match verification {
        Ok(Verification::Mismatch) => Ok(false),
        Ok(_) => {
            limits.account_release(&user.email).await;
            Ok(true)
        }
        Err(busy) => {
            // Not checked: the attempt does not count.
            limits.account_release(&user.email).await;
            Err(busy.into())
        }
    }
}
