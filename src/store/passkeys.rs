//! The passkey part of the storage: a trait of its own that [`super::Store`] requires, so both
//! backends implement it in a file of their own (`sqlite/passkeys.rs`, `postgres/passkeys.rs`).

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::passkey::{NewPasskey, Passkey, PasskeyChallenge, PasskeyDeletion};

/// Passkeys and their open challenges.
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
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
    /// Stores a passkey; `Conflict("credential_id")` when that credential is registered already.
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
