//! Levels, permissions and restrictions: what the authz decision is made of.

use async_trait::async_trait;

use super::StoreResult;
use super::sql::{Database, Exec, Row, all, args, opt};
use crate::domain::{Level, NewLevel, NewPermission, NewRestriction, Permission, Restriction};

#[async_trait]
pub trait AccessStore: Send + Sync {
    /// True when no level and no permission exists yet: the signal to load the default seeds.
    async fn is_unseeded(&self) -> StoreResult<bool>;

    /// Inserts a level unless one with the same key and value exists; true when inserted.
    async fn insert_level_if_absent(&self, level: &NewLevel) -> StoreResult<bool>;

    async fn list_levels(&self) -> StoreResult<Vec<Level>>;

    /// Inserts a permission unless an identical (role, verb, path, action) exists.
    async fn insert_permission_if_absent(&self, p: &NewPermission) -> StoreResult<bool>;

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>>;

    /// Inserts a restriction unless an identical (category, scope, value, state) exists.
    async fn insert_restriction_if_absent(&self, r: &NewRestriction) -> StoreResult<bool>;

    async fn list_restrictions(&self) -> StoreResult<Vec<Restriction>>;

    /// Deletes a permission row; true when it existed.
    async fn delete_permission(&self, id: i64) -> StoreResult<bool>;

    /// Inserts a permission as given (verb and action already upper-cased).
    async fn create_permission(&self, p: &NewPermission) -> StoreResult<Permission>;

    /// Replaces every field of a permission; `None` when it does not exist.
    async fn update_permission(
        &self,
        id: i64,
        p: &NewPermission,
    ) -> StoreResult<Option<Permission>>;

    /// Replaces the whole permissions table in one transaction; returns how many rows it holds.
    async fn replace_permissions(&self, permissions: &[NewPermission]) -> StoreResult<usize>;

    /// Inserts a restriction with its effective code.
    async fn create_restriction(&self, r: &NewRestriction) -> StoreResult<Restriction>;

    /// Replaces every field of a restriction (code as given); `None` when it does not exist.
    async fn update_restriction(
        &self,
        id: i64,
        r: &NewRestriction,
    ) -> StoreResult<Option<Restriction>>;

    /// Deletes a restriction; true when it existed.
    async fn delete_restriction(&self, id: i64) -> StoreResult<bool>;
}

pub(super) fn level_from_row(r: &Row) -> StoreResult<Level> {
    Ok(Level {
        id: r.get("id")?,
        key: r.get("key")?,
        value: r.get("value")?,
        description: r.get("description")?,
    })
}

pub(super) fn permission_from_row(row: &Row) -> StoreResult<Permission> {
    Ok(Permission {
        id: row.get("id")?,
        role: row.get("role")?,
        verb: row.get("verb")?,
        path: row.get("path")?,
        action: row.get("action")?,
        topic: row.get("topic")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn restriction_from_row(row: &Row) -> StoreResult<Restriction> {
    Ok(Restriction {
        id: row.get("id")?,
        category: row.get("category")?,
        scope: row.get("scope")?,
        value: row.get("value")?,
        code: row.get("code")?,
        state: row.get("state")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Every level, for the level a user's labels earn.
pub(super) async fn all_levels(c: &mut impl Exec) -> StoreResult<Vec<Level>> {
    let rows = c
        .query(
            "SELECT id, key, value, description FROM levels ORDER BY id",
            args![],
        )
        .await?;
    all(rows, level_from_row)
}

const INSERT_PERMISSION: &str = "INSERT INTO permissions (role, verb, path, action, topic,
         created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING *";

#[async_trait]
impl<S: Database> AccessStore for S {
    async fn is_unseeded(&self) -> StoreResult<bool> {
        let n: i64 = self
            .conn()
            .await?
            .scalar(
                "SELECT (SELECT COUNT(*) FROM levels) + (SELECT COUNT(*) FROM permissions)",
                args![],
            )
            .await?;
        Ok(n == 0)
    }

    async fn insert_level_if_absent(&self, level: &NewLevel) -> StoreResult<bool> {
        let n = self
            .conn()
            .await?
            .execute(
                "INSERT INTO levels (id, key, value, description, created_at, updated_at)
                 SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), CAST($3 AS TEXT),
                     CAST($4 AS TEXT), now(), now()
                 WHERE NOT EXISTS (SELECT 1 FROM levels WHERE key = $2 AND value = $3)
                   AND NOT EXISTS (SELECT 1 FROM levels WHERE id = $1)",
                args![level.id, &level.key, &level.value, &level.description],
            )
            .await?;
        Ok(n > 0)
    }

    async fn list_levels(&self) -> StoreResult<Vec<Level>> {
        all_levels(&mut self.conn().await?).await
    }

    async fn insert_permission_if_absent(&self, p: &NewPermission) -> StoreResult<bool> {
        let p = p.clone().normalized();
        let n = self
            .conn()
            .await?
            .execute(
                "INSERT INTO permissions (role, verb, path, action, topic, created_at, updated_at)
                 SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT),
                     CAST($5 AS TEXT), now(), now()
                 WHERE NOT EXISTS (SELECT 1 FROM permissions
                     WHERE role = $1 AND verb = $2 AND path = $3 AND action = $4)",
                args![p.role, p.verb, p.path, p.action, p.topic],
            )
            .await?;
        Ok(n > 0)
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        let mut c = self.conn().await?;
        let rows = c
            .query("SELECT * FROM permissions ORDER BY id", args![])
            .await?;
        all(rows, permission_from_row)
    }

    async fn insert_restriction_if_absent(&self, r: &NewRestriction) -> StoreResult<bool> {
        let n = self
            .conn()
            .await?
            .execute(
                "INSERT INTO restrictions (category, scope, value, code, state, created_at,
                     updated_at)
                 SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS INTEGER),
                     CAST($5 AS TEXT), now(), now()
                 WHERE NOT EXISTS (SELECT 1 FROM restrictions
                     WHERE category = $1 AND scope = $2 AND value = $3 AND state = $5)",
                args![
                    &r.category,
                    &r.scope,
                    &r.value,
                    r.effective_code(),
                    &r.state
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn list_restrictions(&self) -> StoreResult<Vec<Restriction>> {
        let mut c = self.conn().await?;
        let rows = c
            .query("SELECT * FROM restrictions ORDER BY id", args![])
            .await?;
        all(rows, restriction_from_row)
    }

    async fn delete_permission(&self, id: i64) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute("DELETE FROM permissions WHERE id = $1", args![id])
            .await?;
        Ok(n > 0)
    }

    async fn create_permission(&self, p: &NewPermission) -> StoreResult<Permission> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                INSERT_PERMISSION,
                args![&p.role, &p.verb, &p.path, &p.action, &p.topic],
            )
            .await?;
        permission_from_row(&row)
    }

    async fn update_permission(
        &self,
        id: i64,
        p: &NewPermission,
    ) -> StoreResult<Option<Permission>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "UPDATE permissions SET role = $2, verb = $3, path = $4, action = $5, topic = $6,
                     updated_at = now() WHERE id = $1 RETURNING *",
                args![id, &p.role, &p.verb, &p.path, &p.action, &p.topic],
            )
            .await?;
        opt(row, permission_from_row)
    }

    async fn replace_permissions(&self, permissions: &[NewPermission]) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM permissions", args![]).await?;
        for p in permissions {
            tx.query(
                INSERT_PERMISSION,
                args![&p.role, &p.verb, &p.path, &p.action, &p.topic],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(permissions.len())
    }

    async fn create_restriction(&self, r: &NewRestriction) -> StoreResult<Restriction> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                "INSERT INTO restrictions (category, scope, value, code, state, created_at,
                     updated_at)
                 VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING *",
                args![
                    &r.category,
                    &r.scope,
                    &r.value,
                    r.effective_code(),
                    &r.state
                ],
            )
            .await?;
        restriction_from_row(&row)
    }

    async fn update_restriction(
        &self,
        id: i64,
        r: &NewRestriction,
    ) -> StoreResult<Option<Restriction>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "UPDATE restrictions SET category = $2, scope = $3, value = $4, code = $5,
                     state = $6, updated_at = now() WHERE id = $1 RETURNING *",
                args![
                    id,
                    &r.category,
                    &r.scope,
                    &r.value,
                    r.effective_code(),
                    &r.state
                ],
            )
            .await?;
        opt(row, restriction_from_row)
    }

    async fn delete_restriction(&self, id: i64) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute("DELETE FROM restrictions WHERE id = $1", args![id])
            .await?;
        Ok(n > 0)
    }
}
