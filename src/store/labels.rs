//! Labels; every write recomputes the user's state and level in its transaction.

#![allow(
    dead_code,
    reason = "helpers of the aggregates still migrating to the shared layer"
)]

use async_trait::async_trait;

use super::label_rows::recompute_state_level;
use super::rows::{label_by_key, label_from_row, user_by_id};
use super::sql::{Database, Exec, all, args};
use super::users::user_side_effects;
use super::{EventDomain, StoreError, StoreResult, UserChange, events};
use crate::domain::{Label, LabelWrite, StateRules, User};

#[async_trait]
pub trait LabelStore: Send + Sync {
    /// A user's labels of every scope, oldest first.
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>>;

    /// Creates a label and recomputes state and level, in one transaction. A clash on
    /// (user, key, scope) is `Conflict(Clash::Label)`.
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
    /// that finds one is `Conflict(Clash::Label)`.
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

/// The tail of every label change: state and level recomputed from the labels, then Barong's
/// user side effects; the change to publish (no session revoked).
pub(super) async fn relabelled(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: &User,
    rules: &StateRules,
) -> StoreResult<UserChange> {
    recompute_state_level(c, before.id, rules).await?;
    let (user, kids) = user_side_effects(c, domain, before).await?;
    Ok(UserChange {
        user,
        sessions: Vec::new(),
        kids,
    })
}

#[async_trait]
impl<S: Database> LabelStore for S {
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM labels WHERE user_id = $1 ORDER BY id",
                args![user_id],
            )
            .await?;
        all(rows, label_from_row)
    }

    async fn create_label(
        &self,
        user_id: i64,
        key: &str,
        value: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<(Label, UserChange)> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let row = tx
            .query_one(
                "INSERT INTO labels (user_id, key, value, scope, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, now(), now()) RETURNING *",
                args![user_id, key, value, scope],
            )
            .await?;
        let label = label_from_row(&row)?;
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        events::label_changed(&mut tx, &domain, None, user_id, key, scope).await?;
        tx.commit().await?;
        Ok((label, change))
    }

    async fn update_label_value(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<(Label, UserChange)>> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let old = events::label_before(&mut tx, &domain, user_id, key, scope).await?;
        let n = tx
            .execute(
                "UPDATE labels SET value = $4, updated_at = now()
                 WHERE user_id = $1 AND key = $2 AND scope = $3",
                args![user_id, key, scope, value],
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        events::label_changed(&mut tx, &domain, old, user_id, key, scope).await?;
        let (_, label) = label_by_key(&mut tx, user_id, key, scope)
            .await?
            .ok_or_else(|| StoreError::Backend("updated label vanished".into()))?;
        tx.commit().await?;
        Ok(Some((label, change)))
    }

    async fn delete_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let n = tx
            .execute(
                "DELETE FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
                args![user_id, key, scope],
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        tx.commit().await?;
        Ok(Some(change))
    }

    async fn write_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        write: &LabelWrite,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let existing = tx
            .query_opt(
                "SELECT * FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3
                 FOR UPDATE",
                args![user_id, key, scope],
            )
            .await?;
        let existing = existing.as_ref().map(label_from_row).transpose()?;
        match (write, existing) {
            (LabelWrite::Create { description }, _)
            | (
                LabelWrite::Update {
                    description,
                    upsert: true,
                    ..
                },
                None,
            ) => {
                tx.execute(
                    "INSERT INTO labels (user_id, key, value, scope, description, created_at,
                         updated_at)
                     VALUES ($1, $2, $3, $4, $5, now(), now())",
                    args![user_id, key, value, scope, description],
                )
                .await?;
            }
            (LabelWrite::Update { .. }, None) => return Ok(None),
            (
                LabelWrite::Update {
                    description,
                    clear_description,
                    ..
                },
                Some(label),
            ) => {
                let description = match description {
                    Some(d) => Some(d.clone()),
                    None if *clear_description => None,
                    None => label.description,
                };
                tx.execute(
                    "UPDATE labels SET value = $4, description = $5, updated_at = now()
                     WHERE user_id = $1 AND key = $2 AND scope = $3",
                    args![user_id, key, scope, value, description],
                )
                .await?;
            }
        }
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        tx.commit().await?;
        Ok(Some(change))
    }

    async fn count_private_labels(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT key, value, COUNT(*) FROM labels WHERE scope = 'private'
                 GROUP BY key, value ORDER BY key, value",
                args![],
            )
            .await?;
        all(rows, |r| Ok((r.at(0)?, r.at(1)?, r.at(2)?)))
    }
}
