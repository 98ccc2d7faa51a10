//! Labels; every write recomputes the user's state and level in its transaction.

#![allow(
    dead_code,
    reason = "helpers of the aggregates still migrating to the shared layer"
)]

use async_trait::async_trait;

use super::sql::{Exec, Row, args};
use super::*;

#[async_trait]
pub trait LabelStore: Send + Sync {
    /// A user's labels of every scope, oldest first.
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>>;

    /// Creates a label and recomputes state and level, in one transaction. A clash on
    /// (user, key, scope) is [`StoreError::Conflict`]`("key")`.
    async fn create_label(
        &self,
        user_id: i64,
        key: &str,
        value: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<(Label, UserChange)>;

    /// Changes the value of the user's label (key, scope) and recomputes; `None` when absent.
    async fn update_label_value(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<(Label, UserChange)>>;

    /// Deletes the user's label (key, scope) and recomputes; `None` when absent.
    async fn delete_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;

    /// Creates or updates the label (key, scope) of a user with its description, and recomputes
    /// state and level, in one transaction. `None` when an update finds no label; a create
    /// that finds one is [`StoreError::Conflict`]`("key")`.
    async fn write_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        write: &LabelWrite,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;

    /// Private labels counted by (key, value), ordered by key then value.
    async fn count_private_labels(&self) -> StoreResult<Vec<(String, String, i64)>>;
}

pub(super) fn label_from_row(row: &Row) -> StoreResult<Label> {
    Ok(Label {
        key: row.get("key")?,
        value: row.get("value")?,
        scope: row.get("scope")?,
        description: row.get("description")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The user's label (key, scope) with its id, if any.
pub(super) async fn label_by_key(
    c: &mut impl Exec,
    user_id: i64,
    key: &str,
    scope: &str,
) -> StoreResult<Option<(i64, Label)>> {
    let row = c
        .query_opt(
            "SELECT * FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
            args![user_id, key, scope],
        )
        .await?;
    match row {
        Some(row) => Ok(Some((row.get("id")?, label_from_row(&row)?))),
        None => Ok(None),
    }
}
