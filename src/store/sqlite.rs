//! Embedded SQLite: the zero-setup default. One file, WAL mode, a small pool of blocking
//! connections driven through `deadpool-sqlite` so queries never block the async runtime.

mod conn;
mod migrate;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use deadpool_sqlite::rusqlite::{self, Connection};
use deadpool_sqlite::{Hook, HookError, Pool, Runtime};

use super::sql::{Database, Dialect};
use super::{Backend, Store, StoreError, StoreOptions, StoreResult};

/// Pragmas every connection needs: WAL so readers never wait for the writer, a busy timeout so
/// two writers (or two processes) queue instead of failing, and enforced foreign keys.
const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
PRAGMA foreign_keys = ON;";

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: Pool,
    /// The Event API switch (see [`EventDomain`]).
    events: arc_swap::ArcSwapOption<String>,
}

impl SqliteStore {
    /// Opens (creating the file and its directory on first start) the database at `path`.
    pub async fn open(path: &str, options: &StoreOptions) -> StoreResult<Self> {
        if path.is_empty() {
            return Err(StoreError::Backend("sqlite:// needs a file path".into()));
        }
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = deadpool_sqlite::Config::new(path)
            .builder(Runtime::Tokio1)
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.connect_timeout.max(Duration::from_secs(5))))
            .post_create(Hook::async_fn(|conn, _| {
                Box::pin(async move {
                    conn.interact(|c| c.execute_batch(CONNECTION_PRAGMAS))
                        .await
                        .map_err(|e| HookError::message(e.to_string()))?
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = Self {
            pool,
            events: arc_swap::ArcSwapOption::empty(),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection in a blocking thread.
    async fn with_conn<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.interact(f)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map_err(map_error)
    }
}

use conn::map_error;

/// Timestamps are RFC 3339 text with milliseconds, so they sort and compare as strings.
pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[async_trait]
impl Database for SqliteStore {
    type Conn = conn::SqliteConn;
    const DIALECT: Dialect = Dialect::Sqlite;

    async fn conn(&self) -> StoreResult<conn::SqliteConn> {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(conn::SqliteConn(conn))
    }

    fn event_switch(&self) -> &arc_swap::ArcSwapOption<String> {
        &self.events
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn pool_status(&self) -> crate::store::PoolStatus {
        self.pool.status().into()
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.interact(migrate::apply)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with_conn(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn notify_invalidation(&self, _message: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn listen_invalidations(
        &self,
        _sink: tokio::sync::mpsc::Sender<String>,
    ) -> StoreResult<()> {
        Ok(())
    }
}
