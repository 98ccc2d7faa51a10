//! API keys and service accounts.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// A clash on `kid` is [`StoreError::Conflict`].
    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey>;

    async fn find_api_key(&self, kid: &str) -> StoreResult<Option<ApiKey>>;

    /// Sets a key's state; true when the key exists.
    async fn set_api_key_state(&self, kid: &str, state: &str) -> StoreResult<bool>;

    /// Records the last authenticated use of keys in one batch (the authz path's write-behind);
    /// a use never moves backwards.
    async fn record_api_key_uses(&self, uses: &[(String, i64)]) -> StoreResult<()>;

    async fn create_service_account(
        &self,
        account: &NewServiceAccount,
    ) -> StoreResult<ServiceAccount>;

    async fn find_service_account_by_id(&self, id: i64) -> StoreResult<Option<ServiceAccount>>;

    /// One page of a holder's keys ordered by `order_by` (a column name from
    /// [`API_KEY_COLUMNS`]; others are refused by the caller), with the total count.
    async fn list_api_keys(
        &self,
        holder: KeyHolder,
        order_by: &str,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ApiKey>, i64)>;

    /// Replaces a key's scope and, when given, its state; the updated key.
    async fn update_api_key(
        &self,
        id: i64,
        scope: &[String],
        state: Option<&str>,
    ) -> StoreResult<Option<ApiKey>>;

    /// Deletes a key; true when it existed.
    async fn delete_api_key(&self, id: i64) -> StoreResult<bool>;

    /// The service accounts a user owns, by id.
    async fn list_owned_service_accounts(&self, owner_id: i64) -> StoreResult<Vec<ServiceAccount>>;

    async fn find_service_account_by_uid(&self, uid: &str) -> StoreResult<Option<ServiceAccount>>;

    async fn find_service_account_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<ServiceAccount>>;

    /// One page of the service accounts (of one owner, or all), by id, with the total.
    async fn list_service_accounts(
        &self,
        owner_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ServiceAccount>, i64)>;

    /// Sets the account `disabled` and its active keys `inactive`, in one transaction; the
    /// account now and the deactivated kids, `None` when there is no such account.
    async fn disable_service_account(
        &self,
        id: i64,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>>;

    /// Gives the account to `owner_id` with that owner's `state` and `level`, in one
    /// transaction; when the state becomes `disabled` its active keys become `inactive`. The
    /// account now and the deactivated kids, `None` when there is no such account.
    async fn reassign_service_account(
        &self,
        id: i64,
        owner_id: i64,
        state: &str,
        level: i32,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>>;
}
