//! API keys and service accounts.

use async_trait::async_trait;

use super::sql::{Database, Exec, Row, all, args, opt, values};
use super::{API_KEY_COLUMNS, StoreError, StoreResult};
use crate::domain::{
    ApiKey, KeyHolder, NewApiKey, NewServiceAccount, ServiceAccount, UserState, scope_from_column,
    scope_to_column,
};

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
        state: &UserState,
        level: i32,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>>;
}

fn api_key_from_row(row: &Row) -> StoreResult<ApiKey> {
    let holder_type: String = row.get("key_holder_account_type")?;
    let holder = KeyHolder::from_columns(&holder_type, row.get("key_holder_account_id")?)
        .ok_or_else(|| StoreError::Backend(format!("unknown key holder type {holder_type}")))?;
    let scope: Option<String> = row.get("scope")?;
    Ok(ApiKey {
        id: row.get("id")?,
        holder,
        kid: row.get("kid")?,
        algorithm: row.get("algorithm")?,
        scope: scope_from_column(scope.as_deref()),
        secret_encrypted: row.get("secret_encrypted")?,
        state: row.get("state")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        last_used_at: row.get("last_used_at")?,
    })
}

fn service_account_from_row(row: &Row) -> StoreResult<ServiceAccount> {
    Ok(ServiceAccount {
        id: row.get("id")?,
        uid: row.get("uid")?,
        owner_id: row.get("owner_id")?,
        email: row.get("email")?,
        role: row.get("role")?,
        level: row.get("level")?,
        state: row.get("state")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Makes the active keys of service account `id` inactive; their kids (for the caches).
async fn deactivate_account_keys(c: &mut impl Exec, id: i64) -> StoreResult<Vec<String>> {
    let rows = c
        .query(
            "UPDATE api_keys SET state = 'inactive', updated_at = now()
             WHERE state = 'active' AND key_holder_account_type = 'ServiceAccount'
               AND key_holder_account_id = $1
             RETURNING kid",
            args![id],
        )
        .await?;
    all(rows, |r| r.at(0))
}

/// Rows per statement of a batched update: well under both backends' parameter limits.
const BATCH: usize = 500;

#[async_trait]
impl<S: Database> KeyStore for S {
    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                "INSERT INTO api_keys (key_holder_account_type, key_holder_account_id, kid,
                     algorithm, scope, secret_encrypted, state, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now()) RETURNING *",
                args![
                    key.holder.type_name(),
                    key.holder.id(),
                    &key.kid,
                    &key.algorithm,
                    scope_to_column(&key.scope),
                    &key.secret_encrypted,
                    &key.state,
                ],
            )
            .await?;
        api_key_from_row(&row)
    }

    async fn find_api_key(&self, kid: &str) -> StoreResult<Option<ApiKey>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("SELECT * FROM api_keys WHERE kid = $1", args![kid])
            .await?;
        opt(row, api_key_from_row)
    }

    async fn set_api_key_state(&self, kid: &str, state: &str) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute(
                "UPDATE api_keys SET state = $2, updated_at = now() WHERE kid = $1",
                args![kid, state],
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_api_key_uses(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in uses.chunks(BATCH) {
            let sql = format!(
                "WITH v (kid, at) AS (VALUES {})
                 UPDATE api_keys SET last_used_at = v.at FROM v
                 WHERE api_keys.kid = v.kid
                   AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.at)",
                values(chunk.len(), &["TEXT", "BIGINT"])
            );
            let args: Vec<_> = chunk
                .iter()
                .flat_map(|(kid, at)| [kid.into(), (*at).into()])
                .collect();
            tx.execute(&sql, &args).await?;
        }
        tx.commit().await
    }

    async fn list_api_keys(
        &self,
        holder: KeyHolder,
        order_by: &str,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ApiKey>, i64)> {
        let column = API_KEY_COLUMNS
            .iter()
            .find(|c| **c == order_by)
            .copied()
            .unwrap_or("id");
        let direction = if descending { "DESC" } else { "ASC" };
        let filter = "key_holder_account_type = $1 AND key_holder_account_id = $2";
        let mut c = self.conn().await?;
        let total = c
            .scalar(
                &format!("SELECT COUNT(*) FROM api_keys WHERE {filter}"),
                args![holder.type_name(), holder.id()],
            )
            .await?;
        let rows = c
            .query(
                &format!(
                    "SELECT * FROM api_keys WHERE {filter}
                     ORDER BY {column} {direction}, id {direction} LIMIT $3 OFFSET $4"
                ),
                args![holder.type_name(), holder.id(), limit, offset],
            )
            .await?;
        Ok((all(rows, api_key_from_row)?, total))
    }

    async fn update_api_key(
        &self,
        id: i64,
        scope: &[String],
        state: Option<&str>,
    ) -> StoreResult<Option<ApiKey>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "UPDATE api_keys SET scope = $2, state = COALESCE(CAST($3 AS TEXT), state),
                     updated_at = now()
                 WHERE id = $1 RETURNING *",
                args![id, scope_to_column(scope), state],
            )
            .await?;
        opt(row, api_key_from_row)
    }

    async fn delete_api_key(&self, id: i64) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute("DELETE FROM api_keys WHERE id = $1", args![id])
            .await?;
        Ok(n > 0)
    }

    async fn create_service_account(&self, a: &NewServiceAccount) -> StoreResult<ServiceAccount> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                "INSERT INTO service_accounts (uid, owner_id, email, role, level, state,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now(), now()) RETURNING *",
                args![&a.uid, a.owner_id, &a.email, &a.role, a.level, &a.state],
            )
            .await?;
        service_account_from_row(&row)
    }

    async fn find_service_account_by_id(&self, id: i64) -> StoreResult<Option<ServiceAccount>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("SELECT * FROM service_accounts WHERE id = $1", args![id])
            .await?;
        opt(row, service_account_from_row)
    }

    async fn list_owned_service_accounts(&self, owner_id: i64) -> StoreResult<Vec<ServiceAccount>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM service_accounts WHERE owner_id = $1 ORDER BY id",
                args![owner_id],
            )
            .await?;
        all(rows, service_account_from_row)
    }

    async fn find_service_account_by_uid(&self, uid: &str) -> StoreResult<Option<ServiceAccount>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("SELECT * FROM service_accounts WHERE uid = $1", args![uid])
            .await?;
        opt(row, service_account_from_row)
    }

    async fn find_service_account_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<ServiceAccount>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT * FROM service_accounts WHERE email = $1",
                args![email],
            )
            .await?;
        opt(row, service_account_from_row)
    }

    async fn list_service_accounts(
        &self,
        owner_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ServiceAccount>, i64)> {
        let filter = "(CAST($1 AS BIGINT) IS NULL OR owner_id = $1)";
        let mut c = self.conn().await?;
        let total = c
            .scalar(
                &format!("SELECT COUNT(*) FROM service_accounts WHERE {filter}"),
                args![owner_id],
            )
            .await?;
        let rows = c
            .query(
                &format!(
                    "SELECT * FROM service_accounts WHERE {filter} ORDER BY id LIMIT $2 OFFSET $3"
                ),
                args![owner_id, limit, offset],
            )
            .await?;
        Ok((all(rows, service_account_from_row)?, total))
    }

    async fn disable_service_account(
        &self,
        id: i64,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>> {
        let mut tx = self.begin().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE service_accounts SET state = 'disabled', updated_at = now()
                 WHERE id = $1 RETURNING *",
                args![id],
            )
            .await?
        else {
            return Ok(None);
        };
        let account = service_account_from_row(&row)?;
        let kids = deactivate_account_keys(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some((account, kids)))
    }

    async fn reassign_service_account(
        &self,
        id: i64,
        owner_id: i64,
        state: &UserState,
        level: i32,
    ) -> StoreResult<Option<(ServiceAccount, Vec<String>)>> {
        let mut tx = self.begin().await?;
        // Locked, so the state seen before is the one this update replaces.
        let Some(previous) = tx
            .query_opt(
                "SELECT state FROM service_accounts WHERE id = $1 FOR UPDATE",
                args![id],
            )
            .await?
        else {
            return Ok(None);
        };
        let previous: UserState = previous.at(0)?;
        let row = tx
            .query_one(
                "UPDATE service_accounts SET owner_id = $2, state = $3, level = $4,
                     updated_at = now()
                 WHERE id = $1 RETURNING *",
                args![id, owner_id, state, level],
            )
            .await?;
        let account = service_account_from_row(&row)?;
        let mut kids = Vec::new();
        if *state == UserState::Disabled && previous != UserState::Disabled {
            kids = deactivate_account_keys(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(Some((account, kids)))
    }
}
