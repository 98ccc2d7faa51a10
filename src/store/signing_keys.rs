//! The JWT signing keys and their rotation.

use async_trait::async_trait;

use super::StoreResult;
use super::sql::{Database, Exec, all, args};
use crate::domain::StoredSigningKey;

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// The current key and the keys retired after `retired_after`, newest first.
    async fn list_signing_keys(&self, retired_after: i64) -> StoreResult<Vec<StoredSigningKey>>;

    /// Makes `new` the current key in one transaction: the current one (or, on the first
    /// rotation, `first`: the configured key, recorded so it keeps verifying) is retired at
    /// `new.created_at`. Concurrent rotations are serialised.
    async fn rotate_signing_key(
        &self,
        new: &StoredSigningKey,
        first: &StoredSigningKey,
    ) -> StoreResult<()>;
}

const INSERT: &str = "INSERT INTO signing_keys (kid, algorithm, private_key, created_at)
     VALUES ($1, $2, $3, $4)";

#[async_trait]
impl<S: Database> SigningKeyStore for S {
    async fn list_signing_keys(&self, retired_after: i64) -> StoreResult<Vec<StoredSigningKey>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT kid, algorithm, private_key, created_at, retired_at FROM signing_keys
                 WHERE retired_at IS NULL OR retired_at > $1
                 ORDER BY created_at DESC, kid",
                args![retired_after],
            )
            .await?;
        all(rows, |r| {
            Ok(StoredSigningKey {
                kid: r.at(0)?,
                algorithm: r.at(1)?,
                private_key: r.at(2)?,
                created_at: r.at(3)?,
                retired_at: r.at(4)?,
            })
        })
    }

    async fn rotate_signing_key(
        &self,
        new: &StoredSigningKey,
        first: &StoredSigningKey,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Two rotations at once would both retire the same key and leave two current ones.
        tx.lock("LOCK TABLE signing_keys IN EXCLUSIVE MODE", args![])
            .await?;
        let empty: bool = tx
            .scalar("SELECT NOT EXISTS (SELECT 1 FROM signing_keys)", args![])
            .await?;
        if empty {
            let f = first;
            tx.execute(
                INSERT,
                args![&f.kid, &f.algorithm, &f.private_key, f.created_at],
            )
            .await?;
        }
        tx.execute(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL",
            args![new.created_at],
        )
        .await?;
        tx.execute(
            INSERT,
            args![&new.kid, &new.algorithm, &new.private_key, new.created_at],
        )
        .await?;
        tx.commit().await
    }
}
