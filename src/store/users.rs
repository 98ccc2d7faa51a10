//! Users: lookups, admin listings and changes, with Barong's after-update side effects.

#![allow(
    dead_code,
    reason = "helpers of the aggregates still migrating to the shared layer"
)]

use async_trait::async_trait;

use super::sql::{Exec, Row, args};
use super::*;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user together with its private labels, in one transaction.
    /// A clash on e-mail, uid or username is [`StoreError::Conflict`] naming the column.
    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>>;

    async fn count_users(&self) -> StoreResult<i64>;

    async fn find_user_by_id(&self, id: i64) -> StoreResult<Option<User>>;

    /// Changes what the authz decision depends on; the caller publishes the invalidation.
    async fn update_user_access(
        &self,
        id: i64,
        role: &str,
        state: &str,
        level: i32,
        otp: bool,
    ) -> StoreResult<()>;

    /// Exact (already lower-cased) username.
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;

    /// Replaces a password digest (rehash of a Barong bcrypt digest at login).
    async fn update_password_digest(&self, user_id: i64, digest: &str) -> StoreResult<()>;

    /// Replaces a user's `data` (already validated).
    async fn update_user_data(&self, user_id: i64, data: &str) -> StoreResult<User>;

    /// Self-deletion in one transaction: private label `delete:by_user`, state and level
    /// recomputed (the `delete` trigger makes the user `deleted`), the side effects of a state
    /// change (keys deactivated, service accounts get the state), every session deleted.
    async fn delete_own_account(&self, user_id: i64, rules: &StateRules)
    -> StoreResult<UserChange>;

    // The admin API. Every write returns what the caller must publish on the
    // invalidation bus; none publishes by itself.
    /// One page of users matching `filter` (distinct, ordered), with the total count.
    async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;

    /// Applies one admin change with Barong's after-update side effects (keys deactivated
    /// when 2FA goes off or the state leaves `active`, service accounts follow a non-active
    /// state); a changed `otp` flag deletes the private `otp` label. An e-mail clash is
    /// [`StoreError::Conflict`]`("email")`.
    async fn update_user(&self, user_id: i64, update: &UserUpdate) -> StoreResult<UserChange>;

    /// One page of the users having a label that matches the filter, by user id, with the
    /// total (each user once).
    async fn users_with_label(
        &self,
        filter: &crate::domain::LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;

    /// Users with the private label `document` at `pending` or `replaced`, by that label's
    /// `updated_at`.
    async fn users_with_pending_documents(&self) -> StoreResult<Vec<User>>;
}

pub(super) const USER_COLUMNS: &str = "id, uid, username, email, password_digest, role, data, \
     level, otp, state, referral_id, created_at, updated_at";

pub(super) fn user_from_row(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: row.get("id")?,
        uid: row.get("uid")?,
        username: row.get("username")?,
        email: row.get("email")?,
        password_digest: row.get("password_digest")?,
        role: row.get("role")?,
        data: row.get("data")?,
        level: row.get("level")?,
        otp: row.get("otp")?,
        state: row.get("state")?,
        referral_id: row.get("referral_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The user with this id (it must exist).
pub(super) async fn user_by_id(c: &mut impl Exec, id: i64) -> StoreResult<User> {
    let row = c
        .query_one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            args![id],
        )
        .await?;
    user_from_row(&row)
}
