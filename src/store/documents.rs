//! KYC documents.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Inserts the documents of one upload request (files already stored) and, when given, sets
    /// the private `label` (key, value) with state and level recomputed, in one transaction.
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)>;

    /// How many documents the user has (of one `identificator` when given).
    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64>;

    /// A user's documents (addresses included), oldest first.
    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>>;

    /// Every document with this number index, any user, oldest first (duplicate numbers).
    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>>;

    /// One page of the documents of users whose private `document` label is `pending` (awaiting
    /// review), oldest first, with the total count.
    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)>;
}
