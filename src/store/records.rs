//! What users and admins record about a user: data storages and comments.

use async_trait::async_trait;

use super::label_rows::set_label;
use super::labels::relabelled;
use super::rows::user_by_id;
use super::sql::{Database, Exec, Row, all, args, opt};
use super::{Clash, StoreError, StoreResult, UserChange, events};
use crate::domain::{Comment, DataStorage, LabelScope, StateRules};

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Stores a data storage row and sets the private label `<title>:recorded` (state and level
    /// recomputed), in one transaction; a title the user already has (any case) is
    /// `Conflict(Clash::Title)`.
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

fn data_storage_from_row(row: &Row) -> StoreResult<DataStorage> {
    Ok(DataStorage {
        title: row.get("title")?,
        data: row.get("data")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn comment_from_row(row: &Row) -> StoreResult<Comment> {
    Ok(Comment {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        author_uid: row.get("author_uid")?,
        title: row.get("title")?,
        data: row.get("data")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

#[async_trait]
impl<S: Database> RecordStore for S {
    async fn create_data_storage(
        &self,
        user_id: i64,
        title: &str,
        data: &str,
        rules: &StateRules,
    ) -> StoreResult<(DataStorage, UserChange)> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        // One writer per user at a time, so the case-insensitive check below holds.
        tx.lock(
            "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
            args![user_id],
        )
        .await?;
        let taken: bool = tx
            .scalar(
                "SELECT EXISTS (SELECT 1 FROM data_storages
                     WHERE user_id = $1 AND lower(title) = lower($2))",
                args![user_id, title],
            )
            .await?;
        if taken {
            return Err(StoreError::Conflict(Clash::Title));
        }
        let before = user_by_id(&mut tx, user_id).await?;
        let row = tx
            .query_one(
                "INSERT INTO data_storages (user_id, title, data, created_at, updated_at)
                 VALUES ($1, $2, $3, now(), now()) RETURNING *",
                args![user_id, title, data],
            )
            .await?;
        let storage = data_storage_from_row(&row)?;
        let key = title.to_lowercase();
        set_label(
            &mut tx,
            &domain,
            user_id,
            &key,
            "recorded",
            LabelScope::Private.as_str(),
        )
        .await?;
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        events::data_storage_created(&mut tx, &domain, &storage, &change.user).await?;
        tx.commit().await?;
        Ok((storage, change))
    }

    async fn list_data_storages(&self, user_id: i64) -> StoreResult<Vec<DataStorage>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM data_storages WHERE user_id = $1 ORDER BY id",
                args![user_id],
            )
            .await?;
        all(rows, data_storage_from_row)
    }

    async fn delete_data_storage(&self, user_id: i64, title: &str) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute(
                "DELETE FROM data_storages WHERE user_id = $1 AND lower(title) = lower($2)",
                args![user_id, title],
            )
            .await?;
        Ok(n > 0)
    }

    async fn create_comment(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                "INSERT INTO comments (user_id, author_uid, title, data, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, now(), now()) RETURNING *",
                args![user_id, author_uid, title, data],
            )
            .await?;
        comment_from_row(&row)
    }

    async fn find_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("SELECT * FROM comments WHERE id = $1", args![id])
            .await?;
        opt(row, comment_from_row)
    }

    async fn update_comment(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "UPDATE comments SET title = COALESCE(CAST($2 AS TEXT), title),
                     data = COALESCE(CAST($3 AS TEXT), data), updated_at = now()
                 WHERE id = $1 RETURNING *",
                args![id, title, data],
            )
            .await?;
        opt(row, comment_from_row)
    }

    async fn delete_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("DELETE FROM comments WHERE id = $1 RETURNING *", args![id])
            .await?;
        opt(row, comment_from_row)
    }

    async fn list_comments(&self, user_id: i64) -> StoreResult<Vec<Comment>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM comments WHERE user_id = $1 ORDER BY id",
                args![user_id],
            )
            .await?;
        all(rows, comment_from_row)
    }
}
