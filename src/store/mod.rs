//! Storage: one [`Store`] trait that the rest of the server talks to, with an embedded SQLite
//! implementation (the zero-setup default) and a PostgreSQL one (production, several instances).
//!
//! The trait speaks in domain types; SQL stays inside the two implementations. Both run the same
//! test suite (`tests/storage.rs`), so a behaviour that differs between them is a bug.

mod migrate;
mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{
    Activity, ApiKey, Level, NewActivity, NewApiKey, NewLevel, NewPermission, NewRestriction,
    NewServiceAccount, NewSession, NewUser, Permission, Restriction, ServiceAccount, Session, User,
};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What can go wrong below the domain: the HTTP layer maps these to Barong's keys in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connect refused, pool timeout): callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write; carries the column (or constraint) that clashed.
    #[error("conflict on {0}")]
    Conflict(String),
    /// A migration failed; the message names the file.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else the driver reported.
    #[error("database error: {0}")]
    Backend(String),
}

/// Shorthand used by every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which implementation is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store: the URL from `BARONG_DATABASE_URL` plus pool limits.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

/// The persistence interface of the server.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (for logs and `barong config`).
    fn backend(&self) -> Backend;

    /// Applies pending migrations from `sql/<backend>/`; returns the versions it applied.
    /// Safe to run twice and from two processes at once.
    async fn migrate(&self) -> StoreResult<Vec<String>>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

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

    /// Creates a user together with its private labels, in one transaction.
    /// A clash on e-mail, uid or username is [`StoreError::Conflict`] naming the column.
    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>>;
    async fn count_users(&self) -> StoreResult<i64>;

    // ---- sessions -------------------------------------------------------------------------
    /// Stores a new session (its id is already the hash of the cookie value).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    async fn find_session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// Deletes one session; true when it existed.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;
    /// Deletes every session of a user except `keep`; returns the deleted ids so caches can
    /// forget them.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>>;
    /// Pushes sliding expiries forward in one batch (the write-behind of the authz path);
    /// an expiry never moves backwards.
    async fn extend_sessions(&self, expiries: &[(String, i64)]) -> StoreResult<()>;

    // ---- activities ------------------------------------------------------------------------
    /// Inserts a batch of activities in one transaction, skipping invalid rows (Barong drops
    /// them silently) and rows whose `target_uid` names no user; returns how many were stored.
    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize>;
    /// A user's activities, newest first (filters are applied by the caller's query builder).
    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>>;

    // ---- authz -----------------------------------------------------------------------------
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
    /// A clash on `kid` is [`StoreError::Conflict`].
    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey>;
    async fn find_api_key(&self, kid: &str) -> StoreResult<Option<ApiKey>>;
    /// Sets a key's state; true when the key exists.
    async fn set_api_key_state(&self, kid: &str, state: &str) -> StoreResult<bool>;
    async fn create_service_account(
        &self,
        account: &NewServiceAccount,
    ) -> StoreResult<ServiceAccount>;
    async fn find_service_account_by_id(&self, id: i64) -> StoreResult<Option<ServiceAccount>>;
    /// Deletes a permission row; true when it existed.
    async fn delete_permission(&self, id: i64) -> StoreResult<bool>;
    /// Announces an invalidation to every instance sharing this database (PostgreSQL
    /// `NOTIFY`; a no-op for the single-process SQLite backend).
    async fn notify_invalidation(&self, message: &str) -> StoreResult<()>;
    /// Streams invalidations announced by any instance into `sink` until it closes or the
    /// connection drops (PostgreSQL `LISTEN`; SQLite returns at once).
    async fn listen_invalidations(
        &self,
        sink: tokio::sync::mpsc::Sender<String>,
    ) -> StoreResult<()>;
}

/// Opens the store named by `options.url` (`sqlite://PATH` or `postgres://...`).
pub async fn open(options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let url = options.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(SqliteStore::open(path, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(options).await?))
    } else {
        Err(StoreError::Backend(
            "BARONG_DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
