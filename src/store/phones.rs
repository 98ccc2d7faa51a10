//! KYC phones.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait PhoneStore: Send + Sync {
    // Numbers are stored encrypted by the caller (`Encryptor::encrypt`) with their blind index
    // (`Encryptor::blind_index` of the E.164 number / `normalise_doc_number`); stores compare
    // indexes only and never see a number in clear.
    /// Inserts a phone (verified at once when `phone.validated`). The user already having the
    /// number is [`StoreError::Conflict`]`("number")`; creating it verified while another account
    /// verified it is `Conflict("verified")`.
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone>;

    /// A user's phones, oldest first.
    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>>;

    /// The user's phone with this number index.
    async fn find_user_phone(&self, user_id: i64, number_index: &str)
    -> StoreResult<Option<Phone>>;

    /// Every phone with this number index, any user, oldest first (at most one is verified).
    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>>;

    /// Records that a code is being sent to the phone, if the resend limits allow it: the last
    /// code at least `min_interval` s before `now` (unix seconds) and fewer than `max_in_window`
    /// codes in the current `window` s. Atomic; false (nothing recorded) when refused.
    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool>;

    /// Marks the phone verified, sets the private label `phone: verified` and recomputes state
    /// and level, in one transaction. `None` when the phone is gone; `Conflict("verified")` when
    /// another account verified the number first.
    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;

    /// Deletes a phone; true when it existed.
    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool>;
}
