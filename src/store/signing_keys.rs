//! The JWT signing keys and their rotation.

use async_trait::async_trait;

use super::*;

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
