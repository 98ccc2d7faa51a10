//! PostgreSQL SQL for passkeys and their challenges (see `store/passkeys.rs`).

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{PostgresStore, map_error};
use crate::domain::passkey::{
    ChallengePurpose, NewPasskey, Passkey, PasskeyChallenge, PasskeyDeletion,
};
use crate::store::{PasskeyStore, StoreError, StoreResult};

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, credential, counter, \
                       created_at, last_used_at";

fn passkey_from(row: &Row) -> Passkey {
    Passkey {
        id: row.get("id"),
        user_id: row.get("user_id"),
        credential_id: row.get("credential_id"),
        user_handle: row.get("user_handle"),
        name: row.get("name"),
        credential: row.get("credential"),
        counter: row.get("counter"),
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
    }
}

fn challenge_from(row: &Row) -> StoreResult<PasskeyChallenge> {
    let purpose: String = row.get("purpose");
    let purpose = ChallengePurpose::parse(&purpose)
        .ok_or_else(|| StoreError::Backend(format!("unknown challenge purpose {purpose:?}")))?;
    Ok(PasskeyChallenge {
        challenge: row.get("challenge"),
        purpose,
        user_id: row.get("user_id"),
        state: row.get("state"),
        expires_at: row.get("expires_at"),
    })
}

#[async_trait]
impl PasskeyStore for PostgresStore {
    async fn passkey_challenge_insert(
        &self,
        challenge: &PasskeyChallenge,
        now: i64,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM passkey_challenges WHERE expires_at < $1",
                &[&now],
            )
            .await
            .map_err(map_error)?;
        client
            .execute(
                "INSERT INTO passkey_challenges (challenge, purpose, user_id, state, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &challenge.challenge,
                    &challenge.purpose.as_str(),
                    &challenge.user_id,
                    &challenge.state,
                    &challenge.expires_at,
                ],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn passkey_challenge_take(
        &self,
        challenge: &str,
    ) -> StoreResult<Option<PasskeyChallenge>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM passkey_challenges WHERE challenge = $1
                 RETURNING challenge, purpose, user_id, state, expires_at",
                &[&challenge],
            )
            .await
            .map_err(map_error)?;
        row.as_ref().map(challenge_from).transpose()
    }

    async fn passkey_insert(&self, passkey: &NewPasskey) -> StoreResult<Passkey> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO passkeys (user_id, credential_id, user_handle, name, credential,
                                           counter, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ),
                &[
                    &passkey.user_id,
                    &passkey.credential_id,
                    &passkey.user_handle,
                    &passkey.name,
                    &passkey.credential,
                    &passkey.counter,
                    &passkey.created_at,
                ],
            )
            .await
            .map_err(map_error)?;
        Ok(passkey_from(&row))
    }

    async fn passkey_list(&self, user_id: i64) -> StoreResult<Vec<Passkey>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY id"),
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(passkey_from).collect())
    }

    async fn passkey_find(&self, credential_id: &str) -> StoreResult<Option<Passkey>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"),
                &[&credential_id],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(passkey_from))
    }

    async fn passkey_rename(
        &self,
        user_id: i64,
        id: i64,
        name: &str,
    ) -> StoreResult<Option<Passkey>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2
                     RETURNING {COLUMNS}"
                ),
                &[&id, &user_id, &name],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(passkey_from))
    }

    async fn passkey_delete(
        &self,
        user_id: i64,
        id: i64,
        confirmed: bool,
    ) -> StoreResult<PasskeyDeletion> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // The user's row locked: two deletes of a user's last two passkeys run one after the
        // other, and the second sees the first's.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await
            .map_err(map_error)?;
        let owned: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM passkeys WHERE id = $1 AND user_id = $2",
                &[&id, &user_id],
            )
            .await
            .map_err(map_error)?
            .get(0);
        if owned == 0 {
            return Ok(PasskeyDeletion::NotFound);
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM passkeys WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(map_error)?
            .get(0);
        if count <= 1 && !confirmed {
            return Ok(PasskeyDeletion::NeedsConfirmation);
        }
        tx.execute("DELETE FROM passkeys WHERE id = $1", &[&id])
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
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
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE passkeys SET counter = $3, credential = $4, last_used_at = $5
                 WHERE id = $1 AND counter = $2",
                &[&id, &expected, &counter, &credential, &at],
            )
            .await
            .map_err(map_error)?;
        Ok(changed == 1)
    }
}
