//! Levels, permissions and restrictions: what the authz decision is made of.

use async_trait::async_trait;

use super::*;

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
