//! SQLite SQL for passkeys and their challenges (see `store/passkeys.rs`).

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use crate::domain::passkey::{
    ChallengePurpose, NewPasskey, Passkey, PasskeyChallenge, PasskeyDeletion,
};
use crate::store::{PasskeyStore, StoreResult};

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, credential, counter, \
                       created_at, last_used_at";

fn passkey_from(row: &Row<'_>) -> rusqlite::Result<Passkey> {
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

fn challenge_from(row: &Row<'_>) -> rusqlite::Result<PasskeyChallenge> {
    let purpose: String = row.get("purpose")?;
    let purpose = ChallengePurpose::parse(&purpose).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown challenge purpose {purpose:?}").into(),
        )
    })?;
    Ok(PasskeyChallenge {
        challenge: row.get("challenge")?,
        purpose,
        user_id: row.get("user_id")?,
        state: row.get("state")?,
        expires_at: row.get("expires_at")?,
    })
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn passkey_challenge_insert(
        &self,
        challenge: &PasskeyChallenge,
        now: i64,
    ) -> StoreResult<()> {
        let c = challenge.clone();
        self.with_conn(move |conn| {
            conn.execute(
                "DELETE FROM passkey_challenges WHERE expires_at < ?1",
                [now],
            )?;
            conn.execute(
                "INSERT INTO passkey_challenges (challenge, purpose, user_id, state, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    c.challenge,
                    c.purpose.as_str(),
                    c.user_id,
                    c.state,
                    c.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn passkey_challenge_take(
        &self,
        challenge: &str,
    ) -> StoreResult<Option<PasskeyChallenge>> {
        let challenge = challenge.to_owned();
        self.with_conn(move |conn| {
            conn.query_row(
                "DELETE FROM passkey_challenges WHERE challenge = ?1
                 RETURNING challenge, purpose, user_id, state, expires_at",
                [challenge],
                challenge_from,
            )
            .optional()
        })
        .await
    }

    async fn passkey_insert(&self, passkey: &NewPasskey) -> StoreResult<Passkey> {
        let p = passkey.clone();
        self.with_conn(move |conn| {
            conn.query_row(
                &format!(
                    "INSERT INTO passkeys (user_id, credential_id, user_handle, name, credential,
                                           counter, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {COLUMNS}"
                ),
                params![
                    p.user_id,
                    p.credential_id,
                    p.user_handle,
                    p.name,
                    p.credential,
                    p.counter,
                    p.created_at
                ],
                passkey_from,
            )
        })
        .await
    }

    async fn passkey_list(&self, user_id: i64) -> StoreResult<Vec<Passkey>> {
        self.with_conn(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM passkeys WHERE user_id = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map([user_id], passkey_from)?;
            rows.collect()
        })
        .await
    }

    async fn passkey_find(&self, credential_id: &str) -> StoreResult<Option<Passkey>> {
        let credential_id = credential_id.to_owned();
        self.with_conn(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = ?1"),
                [credential_id],
                passkey_from,
            )
            .optional()
        })
        .await
    }

    async fn passkey_rename(
        &self,
        user_id: i64,
        id: i64,
        name: &str,
    ) -> StoreResult<Option<Passkey>> {
        let name = name.to_owned();
        self.with_conn(move |conn| {
            conn.query_row(
                &format!(
                    "UPDATE passkeys SET name = ?3 WHERE id = ?1 AND user_id = ?2
                     RETURNING {COLUMNS}"
                ),
                params![id, user_id, name],
                passkey_from,
            )
            .optional()
        })
        .await
    }

    async fn passkey_delete(
        &self,
        user_id: i64,
        id: i64,
        confirmed: bool,
    ) -> StoreResult<PasskeyDeletion> {
        self.with_conn(move |conn| {
            // The write lock first: two deletes of a user's last two passkeys see each other.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let owned: i64 = tx.query_row(
                "SELECT COUNT(*) FROM passkeys WHERE id = ?1 AND user_id = ?2",
                [id, user_id],
                |r| r.get(0),
            )?;
            if owned == 0 {
                return Ok(PasskeyDeletion::NotFound);
            }
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM passkeys WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )?;
            if count <= 1 && !confirmed {
                return Ok(PasskeyDeletion::NeedsConfirmation);
            }
            tx.execute("DELETE FROM passkeys WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(PasskeyDeletion::Deleted)
        })
        .await
    }

    async fn passkey_used(
        &self,
        id: i64,
        expected: i64,
        counter: i64,
        credential: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let credential = credential.to_owned();
        self.with_conn(move |conn| {
            let changed = conn.execute(
                "UPDATE passkeys SET counter = ?3, credential = ?4, last_used_at = ?5
                 WHERE id = ?1 AND counter = ?2",
                params![id, expected, counter, credential, at],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}
