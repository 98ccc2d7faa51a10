//! Sign-up, e-mail confirmation, passwords, one-time tokens and 2FA secrets.

use async_trait::async_trait;

use super::label_rows::{recompute_state_level, set_label, upsert_label};
use super::outbox::insert_mail;
use super::rows::user_by_id;
use super::sessions::delete_sessions_except;
use super::sql::{Database, Exec, args};
use super::users::{insert_user, user_side_effects};
use super::{ClaimUse, StoreResult, UserChange, events};
use crate::domain::{LabelScope, NewMail, NewUser, StateRules, User};

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

/// Consumes the stored one-time claim of `email` in `table` if it is `token` and unexpired.
async fn take_claim(
    c: &mut impl Exec,
    table: &str,
    column: &str,
    email: &str,
    token: &str,
) -> StoreResult<bool> {
    let n = c
        .execute(
            &format!("DELETE FROM {table} WHERE email = $1 AND {column} = $2 AND expires_at > $3"),
            args![email, token, chrono::Utc::now().timestamp()],
        )
        .await?;
    Ok(n == 1)
}

/// Marks a one-time token used; false when it already was.
async fn use_token(c: &mut impl Exec, jti: &str, expires_at: i64) -> StoreResult<bool> {
    c.execute(
        "DELETE FROM one_time_tokens WHERE expires_at < $1",
        args![chrono::Utc::now().timestamp()],
    )
    .await?;
    let n = c
        .execute(
            "INSERT INTO one_time_tokens (jti, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti) DO NOTHING",
            args![jti, expires_at],
        )
        .await?;
    Ok(n > 0)
}

/// Both a stored claim and its one-time `jti` are consumed, or neither counts.
async fn take_claim_once(
    c: &mut impl Exec,
    table: &str,
    column: &str,
    claim: &ClaimUse<'_>,
) -> StoreResult<bool> {
    Ok(
        take_claim(c, table, column, claim.email, claim.token).await?
            && use_token(c, claim.jti, claim.expires_at).await?,
    )
}

#[async_trait]
impl<S: Database> CredentialStore for S {
    async fn register_user(
        &self,
        user: &NewUser,
        superadmin_if_first: bool,
        mail: Option<&NewMail>,
        rules: &StateRules,
    ) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        // Serialises sign-ups so that "the first user" is decided once.
        tx.lock("SELECT pg_advisory_xact_lock(7205759403792793)", args![])
            .await?;
        let id = insert_user(&mut tx, user).await?;
        let count: i64 = tx.scalar("SELECT COUNT(*) FROM users", args![]).await?;
        if superadmin_if_first && count == 1 {
            // The first user becomes superadmin (when that role has permissions), verified.
            tx.execute(
                "UPDATE users SET role = 'superadmin'
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM permissions WHERE role = 'superadmin')",
                args![id],
            )
            .await?;
            upsert_label(
                &mut tx,
                id,
                "email",
                "verified",
                LabelScope::Private.as_str(),
            )
            .await?;
            recompute_state_level(&mut tx, id, rules).await?;
        } else if let Some(mail) = mail {
            insert_mail(&mut tx, mail).await?;
        }
        let created = user_by_id(&mut tx, id).await?;
        events::user_created(&mut tx, &self.event_domain(), &created).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn confirm_email(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        rules: &StateRules,
    ) -> StoreResult<Option<User>> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        if !take_claim_once(&mut tx, "confirmation_tokens", "token", claim).await? {
            return Ok(None);
        }
        let before = user_by_id(&mut tx, user_id).await?;
        let label = events::label_before(
            &mut tx,
            &domain,
            user_id,
            "email",
            LabelScope::Private.as_str(),
        )
        .await?;
        upsert_label(
            &mut tx,
            user_id,
            "email",
            "verified",
            LabelScope::Private.as_str(),
        )
        .await?;
        recompute_state_level(&mut tx, user_id, rules).await?;
        let user = user_by_id(&mut tx, user_id).await?;
        events::user_updated(&mut tx, &domain, &before, &user).await?;
        events::label_changed(
            &mut tx,
            &domain,
            label,
            user_id,
            "email",
            LabelScope::Private.as_str(),
        )
        .await?;
        events::email_confirmed(&mut tx, &domain, &user).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn use_once(&self, key: &str, expires_at: i64) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let fresh = use_token(&mut tx, key, expires_at).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    async fn set_reset_token(
        &self,
        email: &str,
        reset_token: &str,
        expires_at: i64,
        mail: &NewMail,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO password_reset_tokens (email, reset_token, expires_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET reset_token = excluded.reset_token,
                 expires_at = excluded.expires_at",
            args![email, reset_token, expires_at],
        )
        .await?;
        insert_mail(&mut tx, mail).await?;
        tx.commit().await
    }

    async fn find_reset_token(&self, email: &str, now: i64) -> StoreResult<Option<String>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT reset_token FROM password_reset_tokens WHERE email = $1 AND expires_at > $2",
                args![email, now],
            )
            .await?;
        row.map(|r| r.at(0)).transpose()
    }

    async fn reset_password(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        digest: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.begin().await?;
        if !take_claim_once(&mut tx, "password_reset_tokens", "reset_token", claim).await? {
            return Ok(None);
        }
        tx.execute(
            "UPDATE users SET password_digest = $2, updated_at = now() WHERE id = $1",
            args![user_id, digest],
        )
        .await?;
        tx.execute(
            "DELETE FROM password_reset_tokens WHERE email = $1",
            args![claim.email],
        )
        .await?;
        let ids = delete_sessions_except(&mut tx, user_id, None).await?;
        tx.commit().await?;
        Ok(Some(ids))
    }

    async fn change_password(
        &self,
        user_id: i64,
        digest: &str,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.begin().await?;
        tx.execute(
            "UPDATE users SET password_digest = $2, updated_at = now() WHERE id = $1",
            args![user_id, digest],
        )
        .await?;
        let ids = delete_sessions_except(&mut tx, user_id, keep).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn create_whitelink_token(&self, token: &str, expires_at: i64) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "INSERT INTO whitelink_tokens (token, expires_at) VALUES ($1, $2)
                 ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at",
                args![token, expires_at],
            )
            .await?;
        Ok(())
    }

    async fn whitelink_token_valid(&self, token: &str, now: i64) -> StoreResult<bool> {
        let n: i64 = self
            .conn()
            .await?
            .scalar(
                "SELECT COUNT(*) FROM whitelink_tokens WHERE token = $1 AND expires_at > $2",
                args![token, now],
            )
            .await?;
        Ok(n > 0)
    }

    async fn set_otp_secret(&self, user_id: i64, secret_encrypted: &str) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "INSERT INTO otp_secrets (user_id, secret_encrypted, created_at, updated_at)
                 VALUES ($1, $2, now(), now())
                 ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = excluded.secret_encrypted,
                     last_step = 0, updated_at = excluded.updated_at",
                args![user_id, secret_encrypted],
            )
            .await?;
        Ok(())
    }

    async fn find_otp_secret(&self, user_id: i64) -> StoreResult<Option<(String, i64)>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT secret_encrypted, last_step FROM otp_secrets WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        row.map(|r| Ok((r.at(0)?, r.at(1)?))).transpose()
    }

    async fn accept_otp_step(&self, user_id: i64, step: i64) -> StoreResult<bool> {
        let n = self
            .conn()
            .await?
            .execute(
                "UPDATE otp_secrets SET last_step = $2, updated_at = now()
                 WHERE user_id = $1 AND last_step < $2",
                args![user_id, step],
            )
            .await?;
        Ok(n > 0)
    }

    async fn set_user_otp(
        &self,
        user_id: i64,
        enabled: bool,
        keep: Option<&str>,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        tx.execute(
            "UPDATE users SET otp = $2, updated_at = now() WHERE id = $1",
            args![user_id, enabled],
        )
        .await?;
        let mut sessions = Vec::new();
        if enabled {
            set_label(
                &mut tx,
                &domain,
                user_id,
                "otp",
                "enabled",
                LabelScope::Private.as_str(),
            )
            .await?;
            sessions = delete_sessions_except(&mut tx, user_id, keep).await?;
        } else {
            tx.execute(
                "DELETE FROM labels WHERE user_id = $1 AND key = 'otp'",
                args![user_id],
            )
            .await?;
        }
        recompute_state_level(&mut tx, user_id, rules).await?;
        // 2FA off deactivates the user's keys (Barong's after-update rule).
        let (user, kids) = user_side_effects(&mut tx, &domain, &before).await?;
        tx.commit().await?;
        Ok(UserChange {
            user,
            sessions,
            kids,
        })
    }
}
