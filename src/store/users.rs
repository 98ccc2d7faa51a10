//! Users: lookups, admin listings and changes, with Barong's after-update side effects.

#![allow(
    dead_code,
    reason = "helpers of the aggregates still migrating to the shared layer"
)]

use async_trait::async_trait;

use super::label_rows::{recompute_state_level, set_label};
use super::rows::{USER_COLUMNS, user_by_id, user_from_row};
use super::sessions::delete_sessions_except;
use super::sql::{Database, Exec, Value, all, args, opt};
use super::{EventDomain, StoreResult, UserChange, admin_sql, events};
use crate::domain::{LabelFilter, LabelScope, NewUser, StateRules, User, UserFilter, UserUpdate};

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user together with its private labels, in one transaction.
    /// A clash on e-mail, uid or username is [`StoreError::Conflict`] saying which.
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
    /// `Conflict(Clash::Email)`.
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

/// Inserts a user (its private labels too); its id.
pub(super) async fn insert_user(c: &mut impl Exec, user: &NewUser) -> StoreResult<i64> {
    let id: i64 = c
        .scalar(
            "INSERT INTO users (uid, username, email, password_digest, role, data, level,
                 otp, state, referral_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), now()) RETURNING id",
            args![
                &user.uid,
                &user.username,
                &user.email,
                &user.password_digest,
                &user.role,
                &user.data,
                user.level,
                user.otp,
                &user.state,
                user.referral_id,
            ],
        )
        .await?;
    for label in &user.labels {
        super::label_rows::upsert_label(c, id, &label.key, &label.value, &label.scope).await?;
    }
    Ok(id)
}

/// Barong's after-update side effects, given the user before the change: when 2FA went off
/// or the state changed to anything but `active`, every active key of the user and of its
/// service accounts becomes `inactive`; a non-active state is copied to the service accounts.
/// The user now and the deactivated kids.
pub(super) async fn user_side_effects(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: &User,
) -> StoreResult<(User, Vec<String>)> {
    let after = user_by_id(c, before.id).await?;
    events::user_updated(c, domain, before, &after).await?;
    let state_changed = after.state != before.state && !after.state.is_active();
    let mut kids = Vec::new();
    if (before.otp && !after.otp) || state_changed {
        let rows = c
            .query(
                "UPDATE api_keys SET state = 'inactive', updated_at = now()
                 WHERE state = 'active' AND (
                     (key_holder_account_type = 'User' AND key_holder_account_id = $1)
                     OR (key_holder_account_type = 'ServiceAccount' AND key_holder_account_id IN
                         (SELECT id FROM service_accounts WHERE owner_id = $1)))
                 RETURNING kid",
                args![before.id],
            )
            .await?;
        kids = all(rows, |r| r.at(0))?;
    }
    if state_changed {
        c.execute(
            "UPDATE service_accounts SET state = $2, updated_at = now() WHERE owner_id = $1",
            args![before.id, &after.state],
        )
        .await?;
    }
    Ok((after, kids))
}

/// `users.<column>`, for queries joining users with another table.
fn qualified_columns() -> String {
    USER_COLUMNS
        .split(", ")
        .map(|c| format!("users.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One page of users `FROM <from_where>`, with the total.
async fn users_page(
    c: &mut impl Exec,
    from_where: &str,
    order: &str,
    args: &[Value],
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<User>, i64)> {
    let total = c
        .scalar(&format!("SELECT COUNT(*) FROM {from_where}"), args)
        .await?;
    let (page, page_args) = admin_sql::page(args, limit, offset);
    let rows = c
        .query(
            &format!(
                "SELECT {} FROM {from_where} ORDER BY {order} {page}",
                qualified_columns()
            ),
            &page_args,
        )
        .await?;
    Ok((all(rows, user_from_row)?, total))
}

async fn find_by(c: &mut impl Exec, condition: &str, value: Value) -> StoreResult<Option<User>> {
    let row = c
        .query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}"),
            &[value],
        )
        .await?;
    opt(row, user_from_row)
}

#[async_trait]
impl<S: Database> UserStore for S {
    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let id = insert_user(&mut tx, user).await?;
        let created = user_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let condition = S::DIALECT.email_eq("email", "$1");
        find_by(&mut self.conn().await?, &condition, email.into()).await
    }

    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>> {
        find_by(&mut self.conn().await?, "uid = $1", uid.into()).await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        self.conn()
            .await?
            .scalar("SELECT COUNT(*) FROM users", args![])
            .await
    }

    async fn find_user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        find_by(&mut self.conn().await?, "id = $1", id.into()).await
    }

    async fn update_user_access(
        &self,
        id: i64,
        role: &str,
        state: &str,
        level: i32,
        otp: bool,
    ) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "UPDATE users SET role = $2, state = $3, level = $4, otp = $5, updated_at = now()
                 WHERE id = $1",
                args![id, role, state, level, otp],
            )
            .await?;
        Ok(())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        find_by(&mut self.conn().await?, "username = $1", username.into()).await
    }

    async fn update_user_data(&self, user_id: i64, data: &str) -> StoreResult<User> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        tx.execute(
            "UPDATE users SET data = $2, updated_at = now() WHERE id = $1",
            args![user_id, data],
        )
        .await?;
        let user = user_by_id(&mut tx, user_id).await?;
        events::user_updated(&mut tx, &domain, &before, &user).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn update_password_digest(&self, user_id: i64, digest: &str) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "UPDATE users SET password_digest = $2 WHERE id = $1",
                args![user_id, digest],
            )
            .await?;
        Ok(())
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::users_where(filter, admin_sql::numbered);
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let order = admin_sql::users_order(filter);
        let from_where = format!("users WHERE {clause}");
        users_page(
            &mut self.conn().await?,
            &from_where,
            &order,
            &args,
            limit,
            offset,
        )
        .await
    }

    async fn update_user(&self, user_id: i64, update: &UserUpdate) -> StoreResult<UserChange> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let (column, value): (&str, Value) = match update {
            UserUpdate::State(s) => ("state", s.into()),
            UserUpdate::Otp(o) => ("otp", (*o).into()),
            UserUpdate::Email(e) => ("email", e.into()),
            UserUpdate::Role(r) => ("role", r.into()),
        };
        tx.execute(
            &format!("UPDATE users SET {column} = $2, updated_at = now() WHERE id = $1"),
            &[user_id.into(), value],
        )
        .await?;
        if matches!(update, UserUpdate::Otp(_)) {
            tx.execute(
                "DELETE FROM labels WHERE user_id = $1 AND key = 'otp' AND scope = 'private'",
                args![user_id],
            )
            .await?;
        }
        let (user, kids) = user_side_effects(&mut tx, &domain, &before).await?;
        tx.commit().await?;
        Ok(UserChange {
            user,
            sessions: Vec::new(),
            kids,
        })
    }

    async fn users_with_label(
        &self,
        filter: &LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::labels_where(filter, admin_sql::numbered);
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let from_where = format!(
            "users WHERE EXISTS (SELECT 1 FROM labels l WHERE l.user_id = users.id AND {clause})"
        );
        let mut c = self.conn().await?;
        users_page(&mut c, &from_where, "users.id ASC", &args, limit, offset).await
    }

    async fn users_with_pending_documents(&self) -> StoreResult<Vec<User>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM users JOIN labels l ON l.user_id = users.id
                     WHERE l.key = 'document' AND l.scope = 'private'
                         AND l.value IN ('pending', 'replaced')
                     ORDER BY l.updated_at ASC, l.id ASC",
                    qualified_columns()
                ),
                args![],
            )
            .await?;
        all(rows, user_from_row)
    }

    async fn delete_own_account(
        &self,
        user_id: i64,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        set_label(
            &mut tx,
            &domain,
            user_id,
            "delete",
            "by_user",
            LabelScope::Private.as_str(),
        )
        .await?;
        recompute_state_level(&mut tx, user_id, rules).await?;
        let (user, kids) = user_side_effects(&mut tx, &domain, &before).await?;
        let sessions = delete_sessions_except(&mut tx, user_id, None).await?;
        tx.commit().await?;
        Ok(UserChange {
            user,
            sessions,
            kids,
        })
    }
}
