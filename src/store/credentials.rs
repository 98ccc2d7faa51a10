//! Sign-up, e-mail confirmation, passwords, one-time tokens and 2FA secrets.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Sign-up in one transaction: inserts the user; if `superadmin_if_first` and it is now the
    /// only user, it becomes an active `superadmin` (the role only when a `superadmin`
    /// permission exists) with the private label `email:verified` and its level recomputed;
    /// otherwise `mail` (the confirmation) is queued. Clashes are [`StoreError::Conflict`].
    async fn register_user(
        &self,
        user: &NewUser,
        superadmin_if_first: bool,
        mail: Option<&NewMail>,
        rules: &StateRules,
    ) -> StoreResult<User>;

    /// E-mail confirmation in one transaction: consumes the stored confirmation claim of the
    /// e-mail (it must be `claim.token` and unexpired), marks `jti` used (until `expires_at`),
    /// sets the private label `email:verified` and recomputes state and level. `None` when the
    /// claim does not match or the token was already used.
    async fn confirm_email(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        rules: &StateRules,
    ) -> StoreResult<Option<User>>;

    /// Marks `key` used until `expires_at`; `false` when it already was (a replay).
    async fn use_once(&self, key: &str, expires_at: i64) -> StoreResult<bool>;

    /// Remembers `reset_token` as the only valid reset for `email` and queues its mail, in one
    /// transaction.
    async fn set_reset_token(
        &self,
        email: &str,
        reset_token: &str,
        expires_at: i64,
        mail: &NewMail,
    ) -> StoreResult<()>;

    /// The latest unexpired reset token of `email`.
    async fn find_reset_token(&self, email: &str, now: i64) -> StoreResult<Option<String>>;

    /// Password reset in one transaction: consumes the stored reset token of the e-mail (it
    /// must be `claim.token` and unexpired), marks `jti` used, stores the new digest and
    /// deletes every session of the user (their ids are returned). `None` when the claim does
    /// not match or the token was already used.
    async fn reset_password(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        digest: &str,
    ) -> StoreResult<Option<Vec<String>>>;

    /// Stores an active whitelink token until `expires_at`.
    async fn create_whitelink_token(&self, token: &str, expires_at: i64) -> StoreResult<()>;

    /// Whether `token` is an active, unexpired whitelink token.
    async fn whitelink_token_valid(&self, token: &str, now: i64) -> StoreResult<bool>;

    /// Replaces the password digest and deletes the user's sessions except `keep`, in one
    /// transaction; returns the deleted session ids.
    async fn change_password(
        &self,
        user_id: i64,
        digest: &str,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>>;

    /// Stores (or overwrites, as `generate_qrcode` does) the user's encrypted TOTP secret; a new
    /// secret starts with no accepted step (codes of the old one mean nothing for it).
    async fn set_otp_secret(&self, user_id: i64, secret_encrypted: &str) -> StoreResult<()>;

    /// The encrypted TOTP secret and the last accepted time step.
    async fn find_otp_secret(&self, user_id: i64) -> StoreResult<Option<(String, i64)>>;

    /// Records `step` as the last accepted one; false (a replay) when a step at or after it was
    /// already accepted. Atomic, so two concurrent uses of one code cannot both pass.
    async fn accept_otp_step(&self, user_id: i64, step: i64) -> StoreResult<bool>;

    /// Turns 2FA on (otp=true, private label `otp:enabled`, the user's sessions except `keep`
    /// deleted) or off (otp=false, labels with key `otp` deleted, active keys of the user and of
    /// its service accounts deactivated), with state and level recomputed, in one transaction.
    async fn set_user_otp(
        &self,
        user_id: i64,
        enabled: bool,
        keep: Option<&str>,
        rules: &StateRules,
    ) -> StoreResult<UserChange>;
}
