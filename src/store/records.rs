//! What users and admins record about a user: data storages and comments.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Stores a data storage row and sets the private label `<title>:recorded` (state and level
    /// recomputed), in one transaction; a title the user already has (any case) is
    /// [`StoreError::Conflict`]`("title")`.
    async fn create_data_storage(
        &self,
        user_id: i64,
        title: &str,
        data: &str,
        rules: &StateRules,
    ) -> StoreResult<(DataStorage, UserChange)>;

    /// A user's data storage rows, oldest first.
    async fn list_data_storages(&self, user_id: i64) -> StoreResult<Vec<DataStorage>>;

    async fn create_comment(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment>;

    async fn find_comment(&self, id: i64) -> StoreResult<Option<Comment>>;

    /// Replaces the given fields; `None` when the comment does not exist.
    async fn update_comment(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>>;

    /// Deletes a comment and returns it; `None` when it did not exist.
    async fn delete_comment(&self, id: i64) -> StoreResult<Option<Comment>>;

    /// A user's comments by id.
    async fn list_comments(&self, user_id: i64) -> StoreResult<Vec<Comment>>;

    /// Deletes the user's data storage row `title` (any case; its label stays); true when it
    /// existed.
    async fn delete_data_storage(&self, user_id: i64, title: &str) -> StoreResult<bool>;
}
