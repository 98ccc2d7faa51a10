//! The activity log.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Inserts a batch of activities in one transaction, skipping invalid rows (Barong drops
    /// them silently) and rows whose `target_uid` names no user; returns how many were stored.
    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize>;

    /// A user's activities, newest first (filters are applied by the caller's query builder).
    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>>;

    /// One page of activities matching `filter`, newest first, with the total count.
    async fn list_activities(
        &self,
        filter: &ActivityFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Activity>, i64)>;

    /// Activities `topic`/`action`/`result` of category `user` counted per UTC day
    /// (`YYYY-MM-DD`), oldest day first.
    async fn activity_counts_per_day(
        &self,
        topic: &str,
        action: &str,
        result: &str,
    ) -> StoreResult<Vec<(String, i64)>>;
}
