//! Embedded SQLite: the zero-setup default. One file, WAL mode, a small pool of blocking
//! connections driven through `deadpool-sqlite` so queries never block the async runtime.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, params};
use deadpool_sqlite::{Hook, HookError, Pool, Runtime};

use super::{Backend, Store, StoreError, StoreOptions, StoreResult, migrate};
use crate::domain::{
    Activity, ApiKey, KeyHolder, Level, NewActivity, NewApiKey, NewLevel, NewPermission,
    NewRestriction, NewServiceAccount, NewSession, NewUser, Permission, Restriction,
    ServiceAccount, Session, User, scope_from_column, scope_to_column,
};

/// Pragmas every connection needs: WAL so readers never wait for the writer, a busy timeout so
/// two writers (or two processes) queue instead of failing, and enforced foreign keys.
const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
PRAGMA foreign_keys = ON;";

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: Pool,
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
        let store = Self { pool };
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

/// Maps driver errors, naming the clashing column of a unique violation
/// (SQLite says `UNIQUE constraint failed: users.email`).
fn map_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, Some(message)) = &error
        && code.code == rusqlite::ErrorCode::ConstraintViolation
        && let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ")
    {
        let column = columns.split(',').next().unwrap_or(columns).trim();
        let column = column.rsplit('.').next().unwrap_or(column);
        return StoreError::Conflict(column.to_owned());
    }
    StoreError::Backend(error.to_string())
}

/// Timestamps are RFC 3339 text with milliseconds, so they sort and compare as strings.
pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn timestamp(row: &Row<'_>, column: &str) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(column)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
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
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        uid: row.get("uid")?,
        user_ip: row.get("user_ip")?,
        user_agent: row.get("user_agent")?,
        csrf_token: row.get("csrf_token")?,
        expire_at: row.get("expire_at")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn activity_from_row(row: &Row<'_>) -> rusqlite::Result<Activity> {
    Ok(Activity {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        target_uid: row.get("target_uid")?,
        category: row.get("category")?,
        user_ip: row.get("user_ip")?,
        user_ip_country: row.get("user_ip_country")?,
        user_agent: row.get("user_agent")?,
        topic: row.get("topic")?,
        action: row.get("action")?,
        result: row.get("result")?,
        data: row.get("data")?,
        created_at: timestamp(row, "created_at")?,
    })
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let holder_type: String = row.get("key_holder_account_type")?;
    let holder_id: i64 = row.get("key_holder_account_id")?;
    let holder = KeyHolder::from_columns(&holder_type, holder_id).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, holder_type.clone(), rusqlite::types::Type::Text)
    })?;
    let scope: Option<String> = row.get("scope")?;
    Ok(ApiKey {
        id: row.get("id")?,
        holder,
        kid: row.get("kid")?,
        algorithm: row.get("algorithm")?,
        scope: scope_from_column(scope.as_deref()),
        secret_encrypted: row.get("secret_encrypted")?,
        state: row.get("state")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn service_account_from_row(row: &Row<'_>) -> rusqlite::Result<ServiceAccount> {
    Ok(ServiceAccount {
        id: row.get("id")?,
        uid: row.get("uid")?,
        owner_id: row.get("owner_id")?,
        email: row.get("email")?,
        role: row.get("role")?,
        level: row.get("level")?,
        state: row.get("state")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn permission_from_row(row: &Row<'_>) -> rusqlite::Result<Permission> {
    Ok(Permission {
        id: row.get("id")?,
        role: row.get("role")?,
        verb: row.get("verb")?,
        path: row.get("path")?,
        action: row.get("action")?,
        topic: row.get("topic")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn restriction_from_row(row: &Row<'_>) -> rusqlite::Result<Restriction> {
    Ok(Restriction {
        id: row.get("id")?,
        category: row.get("category")?,
        scope: row.get("scope")?,
        value: row.get("value")?,
        code: row.get("code")?,
        state: row.get("state")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

const USER_COLUMNS: &str = "id, uid, username, email, password_digest, role, data, level, otp, \
     state, referral_id, created_at, updated_at";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.interact(migrate::apply_sqlite)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with_conn(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn is_unseeded(&self) -> StoreResult<bool> {
        self.with_conn(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM levels) + (SELECT COUNT(*) FROM permissions)",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n == 0)
    }

    async fn insert_level_if_absent(&self, level: &NewLevel) -> StoreResult<bool> {
        let level = level.clone();
        self.with_conn(move |c| {
            let now = now_text();
            c.execute(
                "INSERT INTO levels (id, key, value, description, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM levels WHERE key = ?2 AND value = ?3)
                   AND NOT EXISTS (SELECT 1 FROM levels WHERE id = ?1)",
                params![level.id, level.key, level.value, level.description, now],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn list_levels(&self) -> StoreResult<Vec<Level>> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare("SELECT id, key, value, description FROM levels ORDER BY id")?;
            stmt.query_map([], |r| {
                Ok(Level {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    value: r.get(2)?,
                    description: r.get(3)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn insert_permission_if_absent(&self, p: &NewPermission) -> StoreResult<bool> {
        let p = p.clone().normalized();
        self.with_conn(move |c| {
            let now = now_text();
            c.execute(
                "INSERT INTO permissions (role, verb, path, action, topic, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM permissions
                     WHERE role = ?1 AND verb = ?2 AND path = ?3 AND action = ?4)",
                params![p.role, p.verb, p.path, p.action, p.topic, now],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT * FROM permissions ORDER BY id")?;
            stmt.query_map([], permission_from_row)?.collect()
        })
        .await
    }

    async fn insert_restriction_if_absent(&self, r: &NewRestriction) -> StoreResult<bool> {
        let r = r.clone();
        let code = r.effective_code();
        self.with_conn(move |c| {
            let now = now_text();
            c.execute(
                "INSERT INTO restrictions (category, scope, value, code, state, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM restrictions
                     WHERE category = ?1 AND scope = ?2 AND value = ?3 AND state = ?5)",
                params![r.category, r.scope, r.value, code, r.state, now],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn list_restrictions(&self) -> StoreResult<Vec<Restriction>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT * FROM restrictions ORDER BY id")?;
            stmt.query_map([], restriction_from_row)?.collect()
        })
        .await
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        let user = user.clone();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let now = now_text();
            let id: i64 = tx.query_row(
                "INSERT INTO users (uid, username, email, password_digest, role, data, level,
                     otp, state, referral_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) RETURNING id",
                params![
                    user.uid,
                    user.username,
                    user.email,
                    user.password_digest,
                    user.role,
                    user.data,
                    user.level,
                    user.otp,
                    user.state,
                    user.referral_id,
                    now
                ],
                |r| r.get(0),
            )?;
            for label in &user.labels {
                tx.execute(
                    "INSERT INTO labels (user_id, key, value, scope, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![id, label.key, label.value, label.scope, now],
                )?;
            }
            let created = tx.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_from_row,
            )?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 COLLATE NOCASE"),
                [email],
                user_from_row,
            )
            .optional()
        })
        .await
    }

    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>> {
        let uid = uid.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE uid = ?1"),
                [uid],
                user_from_row,
            )
            .optional()
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        self.with_conn(|c| c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)))
            .await
    }

    async fn create_session(&self, session: &NewSession) -> StoreResult<()> {
        let s = session.clone();
        self.with_conn(move |c| {
            let now = now_text();
            c.execute(
                "INSERT INTO sessions (id, user_id, uid, user_ip, user_agent, csrf_token,
                     expire_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![
                    s.id,
                    s.user_id,
                    s.uid,
                    s.user_ip,
                    s.user_agent,
                    s.csrf_token,
                    s.expire_at,
                    now
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let id = id.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                "SELECT * FROM sessions WHERE id = ?1",
                [id],
                session_from_row,
            )
            .optional()
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.with_conn(move |c| {
            c.execute("DELETE FROM sessions WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
        .await
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let keep = keep.unwrap_or("").to_owned();
        self.with_conn(move |c| {
            let mut stmt =
                c.prepare("DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2 RETURNING id")?;
            stmt.query_map(params![user_id, keep], |r| r.get(0))?
                .collect()
        })
        .await
    }

    async fn extend_sessions(&self, expiries: &[(String, i64)]) -> StoreResult<()> {
        let expiries = expiries.to_vec();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            {
                let now = now_text();
                let mut stmt = tx.prepare(
                    "UPDATE sessions SET expire_at = ?2, updated_at = ?3
                     WHERE id = ?1 AND expire_at < ?2",
                )?;
                for (id, expire_at) in &expiries {
                    stmt.execute(params![id, expire_at, now])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize> {
        let valid: Vec<NewActivity> = activities
            .iter()
            .filter(|a| a.is_valid())
            .cloned()
            .collect();
        if valid.is_empty() {
            return Ok(0);
        }
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let mut stored = 0;
            {
                let now = now_text();
                let mut stmt = tx.prepare(
                    "INSERT INTO activities (user_id, target_uid, category, user_ip,
                         user_ip_country, user_agent, topic, action, result, data, created_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
                     WHERE ?2 IS NULL OR ?2 = '' OR EXISTS (SELECT 1 FROM users WHERE uid = ?2)",
                )?;
                for a in &valid {
                    stored += stmt.execute(params![
                        a.user_id,
                        a.target_uid,
                        a.category,
                        a.user_ip,
                        a.user_ip_country,
                        a.user_agent,
                        a.topic,
                        a.action,
                        a.result,
                        a.data,
                        now
                    ])?;
                }
            }
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>> {
        self.with_conn(move |c| {
            let mut stmt =
                c.prepare("SELECT * FROM activities WHERE user_id = ?1 ORDER BY id DESC")?;
            stmt.query_map([user_id], activity_from_row)?.collect()
        })
        .await
    }

    async fn find_user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.with_conn(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_from_row,
            )
            .optional()
        })
        .await
    }

    async fn update_user_access(
        &self,
        id: i64,
        role: &str,
        state: &str,
        level: i32,
        otp: bool,
    ) -> StoreResult<()> {
        let (role, state) = (role.to_owned(), state.to_owned());
        self.with_conn(move |c| {
            c.execute(
                "UPDATE users SET role = ?2, state = ?3, level = ?4, otp = ?5, updated_at = ?6
                 WHERE id = ?1",
                params![id, role, state, level, otp, now_text()],
            )
            .map(|_| ())
        })
        .await
    }

    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey> {
        let key = key.clone();
        self.with_conn(move |c| {
            let now = now_text();
            c.query_row(
                "INSERT INTO api_keys (key_holder_account_type, key_holder_account_id, kid,
                     algorithm, scope, secret_encrypted, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING *",
                params![
                    key.holder.type_name(),
                    key.holder.id(),
                    key.kid,
                    key.algorithm,
                    scope_to_column(&key.scope),
                    key.secret_encrypted,
                    key.state,
                    now
                ],
                api_key_from_row,
            )
        })
        .await
    }

    async fn find_api_key(&self, kid: &str) -> StoreResult<Option<ApiKey>> {
        let kid = kid.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                "SELECT * FROM api_keys WHERE kid = ?1",
                [kid],
                api_key_from_row,
            )
            .optional()
        })
        .await
    }

    async fn set_api_key_state(&self, kid: &str, state: &str) -> StoreResult<bool> {
        let (kid, state) = (kid.to_owned(), state.to_owned());
        self.with_conn(move |c| {
            c.execute(
                "UPDATE api_keys SET state = ?2, updated_at = ?3 WHERE kid = ?1",
                params![kid, state, now_text()],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn create_service_account(
        &self,
        account: &NewServiceAccount,
    ) -> StoreResult<ServiceAccount> {
        let a = account.clone();
        self.with_conn(move |c| {
            let now = now_text();
            c.query_row(
                "INSERT INTO service_accounts (uid, owner_id, email, role, level, state,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING *",
                params![a.uid, a.owner_id, a.email, a.role, a.level, a.state, now],
                service_account_from_row,
            )
        })
        .await
    }

    async fn find_service_account_by_id(&self, id: i64) -> StoreResult<Option<ServiceAccount>> {
        self.with_conn(move |c| {
            c.query_row(
                "SELECT * FROM service_accounts WHERE id = ?1",
                [id],
                service_account_from_row,
            )
            .optional()
        })
        .await
    }

    async fn delete_permission(&self, id: i64) -> StoreResult<bool> {
        self.with_conn(move |c| {
            c.execute("DELETE FROM permissions WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
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
