//! Passkeys (WebAuthn credentials) and their open challenges, written once for both backends.

use async_trait::async_trait;

use super::sql::{Database, Exec, Row, all, args, opt};
use super::{StoreError, StoreResult};
use crate::domain::passkey::{
    ChallengePurpose, NewPasskey, Passkey, PasskeyChallenge, PasskeyDeletion,
};

/// Passkeys and their open challenges.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Stores an open challenge, and forgets the ones that expired before `now` (epoch seconds).
    async fn passkey_challenge_insert(
        &self,
        challenge: &PasskeyChallenge,
        now: i64,
    ) -> StoreResult<()>;
    /// Takes (deletes and returns) a challenge: of two requests answering the same challenge,
    /// on any instance, only one gets it. An expired one is returned too (the caller refuses it).
    async fn passkey_challenge_take(
        &self,
        challenge: &str,
    ) -> StoreResult<Option<PasskeyChallenge>>;
    /// Stores a passkey; `Conflict` when that credential is registered already.
    async fn passkey_insert(&self, passkey: &NewPasskey) -> StoreResult<Passkey>;
    /// A user's passkeys, oldest first.
    async fn passkey_list(&self, user_id: i64) -> StoreResult<Vec<Passkey>>;
    /// The passkey of a credential id, any user.
    async fn passkey_find(&self, credential_id: &str) -> StoreResult<Option<Passkey>>;
    /// Renames a passkey of the user; `None` when the user has no such passkey.
    async fn passkey_rename(
        &self,
        user_id: i64,
        id: i64,
        name: &str,
    ) -> StoreResult<Option<Passkey>>;
    /// Deletes a passkey of the user. The user's last one only when `confirmed` (see
    /// [`PasskeyDeletion::NeedsConfirmation`]); the count and the delete are one transaction.
    async fn passkey_delete(
        &self,
        user_id: i64,
        id: i64,
        confirmed: bool,
    ) -> StoreResult<PasskeyDeletion>;
    /// Records a use: the new counter and credential, and `last_used_at`, only if the stored
    /// counter is still `expected` (compare-and-set: of two assertions racing with the same
    /// counter only one wins). False when it moved meanwhile or the passkey is gone.
    async fn passkey_used(
        &self,
        id: i64,
        expected: i64,
        counter: i64,
        credential: &str,
        at: i64,
    ) -> StoreResult<bool>;
}

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, credential, counter, \
                       created_at, last_used_at";

fn passkey_from(row: &Row) -> StoreResult<Passkey> {
    Ok(Passkey {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        credential_id: row.get("credential_id")?,
        user_handle: row.get("user_handle")?,
        name: row.get("name")?,
        credential: row.get("credential")?,
        counter: row.get("counter")?,
        created_at: row.get("created_at")?,
        last_used_at: row.get("last_used_at")?,
    })
}

fn challenge_from(row: &Row) -> StoreResult<PasskeyChallenge> {
    let purpose: String = row.get("purpose")?;
    // A row this server did not write is a bad row: refused, never guessed.
    let purpose = ChallengePurpose::parse(&purpose)
        .ok_or_else(|| StoreError::Backend(format!("unknown challenge purpose {purpose:?}")))?;
    Ok(PasskeyChallenge {
        challenge: row.get("challenge")?,
        purpose,
        user_id: row.get("user_id")?,
        state: row.get("state")?,
        expires_at: row.get("expires_at")?,
    })
}

#[async_trait]
impl<S: Database> PasskeyStore for S {
    async fn passkey_challenge_insert(
        &self,
        challenge: &PasskeyChallenge,
        now: i64,
    ) -> StoreResult<()> {
        let mut c = self.conn().await?;
        c.execute(
            "DELETE FROM passkey_challenges WHERE expires_at < $1",
            args![now],
        )
        .await?;
        c.execute(
            "INSERT INTO passkey_challenges (challenge, purpose, user_id, state, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            args![
                challenge.challenge.as_str(),
                challenge.purpose.as_str(),
                challenge.user_id,
                challenge.state.as_str(),
                challenge.expires_at
            ],
        )
        .await?;
        Ok(())
    }

    async fn passkey_challenge_take(
        &self,
        challenge: &str,
    ) -> StoreResult<Option<PasskeyChallenge>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "DELETE FROM passkey_challenges WHERE challenge = $1
                 RETURNING challenge, purpose, user_id, state, expires_at",
                args![challenge],
            )
            .await?;
        opt(row, challenge_from)
    }

    async fn passkey_insert(&self, p: &NewPasskey) -> StoreResult<Passkey> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO passkeys (user_id, credential_id, user_handle, name, credential,
                                           counter, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ),
                args![
                    p.user_id,
                    p.credential_id.as_str(),
                    p.user_handle.as_str(),
                    p.name.as_str(),
                    p.credential.as_str(),
                    p.counter,
                    p.created_at
                ],
            )
            .await?;
        passkey_from(&row)
    }

    async fn passkey_list(&self, user_id: i64) -> StoreResult<Vec<Passkey>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                &format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY id"),
                args![user_id],
            )
            .await?;
        all(rows, passkey_from)
    }

    async fn passkey_find(&self, credential_id: &str) -> StoreResult<Option<Passkey>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                &format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"),
                args![credential_id],
            )
            .await?;
        opt(row, passkey_from)
    }

    async fn passkey_rename(
        &self,
        user_id: i64,
        id: i64,
        name: &str,
    ) -> StoreResult<Option<Passkey>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                &format!(
                    "UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2
                     RETURNING {COLUMNS}"
                ),
                args![id, user_id, name],
            )
            .await?;
        opt(row, passkey_from)
    }

    async fn passkey_delete(
        &self,
        user_id: i64,
        id: i64,
        confirmed: bool,
    ) -> StoreResult<PasskeyDeletion> {
        let mut tx = self.begin().await?;
        // The user's row locked (SQLite: the transaction's write lock): two deletes of a user's
        // last two passkeys run one after the other, so they cannot both see two.
        tx.query_opt(
            "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            args![user_id],
        )
        .await?;
        let owned: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM passkeys WHERE id = $1 AND user_id = $2",
                args![id, user_id],
            )
            .await?;
        if owned == 0 {
            return Ok(PasskeyDeletion::NotFound);
        }
        let count: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM passkeys WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        if count <= 1 && !confirmed {
            return Ok(PasskeyDeletion::NeedsConfirmation);
        }
        tx.execute("DELETE FROM passkeys WHERE id = $1", args![id])
            .await?;
        tx.commit().await?;
        Ok(PasskeyDeletion::Deleted)
    }

    async fn passkey_used(
        &self,
        id: i64,
        expected: i64,
        counter: i64,
        credential: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let changed = c
            .execute(
                "UPDATE passkeys SET counter = $3, credential = $4, last_used_at = $5
                 WHERE id = $1 AND counter = $2",
                args![id, expected, counter, credential, at],
            )
            .await?;
        Ok(changed == 1)
    }
}
