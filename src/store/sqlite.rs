//! Embedded SQLite: the zero-setup default. One file, WAL mode, a small pool of blocking
//! connections driven through `deadpool-sqlite` so queries never block the async runtime.

mod admin;
mod conn;
mod kyc;
mod migrate;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, params};
use deadpool_sqlite::{Hook, HookError, Pool, Runtime};

mod profiles;

use super::prelude::*;
use super::sql::{Database, Dialect};
use super::{
    Backend, ClaimUse, EventDomain, Store, StoreError, StoreOptions, StoreResult, UserChange,
};
use crate::crypto::encryption::Encryptor;
use crate::domain::{
    Comment, DataStorage, Document, Label, LabelWrite, Level, NewDocument, NewMail, NewPhone,
    NewProfile, NewUser, Phone, Profile, ProfileChanges, ProfileState, StateRules, User,
    UserFilter, UserUpdate, derive_level, derive_state,
};

/// Pragmas every connection needs: WAL so readers never wait for the writer, a busy timeout so
/// two writers (or two processes) queue instead of failing, and enforced foreign keys.
const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
PRAGMA foreign_keys = ON;";

mod events;

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

const USER_COLUMNS: &str = "id, uid, username, email, password_digest, role, data, level, otp, \
     state, referral_id, created_at, updated_at";

// ---- identity helpers ----------------------------------------------------------------------

fn label_from_row(row: &Row<'_>) -> rusqlite::Result<Label> {
    Ok(Label {
        key: row.get("key")?,
        value: row.get("value")?,
        scope: row.get("scope")?,
        description: row.get("description")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// Sets (or overwrites) a label inside a transaction.
/// [`upsert_label`] with its `model.label.*` event (and Barong's `system.document.*`).
fn set_label(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> rusqlite::Result<()> {
    let before = events::label_before(tx, domain, user_id, key, scope)?;
    upsert_label(tx, user_id, key, value, scope)?;
    events::label_changed(tx, domain, before, user_id, key, scope)
}

fn upsert_label(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> rusqlite::Result<()> {
    let now = now_text();
    tx.execute(
        "INSERT INTO labels (user_id, key, value, scope, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = excluded.value,
             updated_at = excluded.updated_at",
        params![user_id, key, value, scope, now],
    )?;
    Ok(())
}

/// The tail of every label change: state and level recomputed from the labels, then Barong's
/// user side effects; the change to publish (no session revoked).
fn relabelled(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    before: &User,
    rules: &StateRules,
) -> rusqlite::Result<UserChange> {
    recompute_state_level(tx, before.id, rules)?;
    let (user, kids) = user_side_effects(tx, domain, before)?;
    Ok(UserChange {
        user,
        sessions: Vec::new(),
        kids,
    })
}

/// Recomputes state and level of a user from its labels, inside a transaction.
fn recompute_state_level(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    rules: &StateRules,
) -> rusqlite::Result<()> {
    let labels: Vec<(String, String, String)> = {
        let mut stmt = tx.prepare("SELECT key, value, scope FROM labels WHERE user_id = ?1")?;
        stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let levels: Vec<Level> = {
        let mut stmt = tx.prepare("SELECT id, key, value, description FROM levels")?;
        stmt.query_map([], |r| {
            Ok(Level {
                id: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
                description: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let state = derive_state(&labels, rules);
    let level = derive_level(&labels, &levels);
    tx.execute(
        "UPDATE users SET state = ?2, level = ?3, updated_at = ?4
         WHERE id = ?1 AND (state <> ?2 OR level <> ?3)",
        params![user_id, state, level, now_text()],
    )?;
    Ok(())
}

fn insert_mail(tx: &rusqlite::Transaction<'_>, mail: &NewMail) -> rusqlite::Result<()> {
    let now = now_text();
    tx.execute(
        "INSERT INTO mail_outbox (kind, recipient, language, subject, body_html,
             next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            mail.kind,
            mail.recipient,
            mail.language,
            mail.subject,
            mail.body_html,
            now
        ],
    )?;
    if let Some(claim) = &mail.confirmation {
        tx.execute(
            "INSERT INTO confirmation_tokens (email, token, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (email) DO UPDATE SET token = excluded.token,
                 expires_at = excluded.expires_at",
            params![mail.recipient, claim.token, claim.expires_at],
        )?;
    }
    Ok(())
}

/// Consumes the stored one-time claim of `email` in `table` if it is `token` and unexpired.
fn take_claim(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    column: &str,
    email: &str,
    token: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        &format!("DELETE FROM {table} WHERE email = ?1 AND {column} = ?2 AND expires_at > ?3"),
        params![email, token, Utc::now().timestamp()],
    )?;
    Ok(n == 1)
}

/// Marks a one-time token used; false when it already was.
fn use_token(tx: &rusqlite::Transaction<'_>, jti: &str, expires_at: i64) -> rusqlite::Result<bool> {
    tx.execute(
        "DELETE FROM one_time_tokens WHERE expires_at < ?1",
        [Utc::now().timestamp()],
    )?;
    let n = tx.execute(
        "INSERT INTO one_time_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
        params![jti, expires_at],
    )?;
    Ok(n > 0)
}

fn user_by_id(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<User> {
    tx.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_from_row,
    )
}

// ---- resource ----------------------------------------------------------------------------------

/// Barong's after-update side effects, given the user before the change: when 2FA went
/// off or the state changed to anything but `active`, every active key of the user and of its
/// service accounts becomes `inactive`; a non-active state is copied to the service accounts.
/// Returns the user now and the deactivated kids.
fn user_side_effects(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    before: &User,
) -> rusqlite::Result<(User, Vec<String>)> {
    let after = user_by_id(tx, before.id)?;
    events::user_updated(tx, domain, before, &after)?;
    let state_changed = after.state != before.state && after.state != "active";
    let mut kids = Vec::new();
    if (before.otp && !after.otp) || state_changed {
        let now = now_text();
        let mut stmt = tx.prepare(
            "UPDATE api_keys SET state = 'inactive', updated_at = ?2
             WHERE state = 'active' AND (
                 (key_holder_account_type = 'User' AND key_holder_account_id = ?1)
                 OR (key_holder_account_type = 'ServiceAccount' AND key_holder_account_id IN
                     (SELECT id FROM service_accounts WHERE owner_id = ?1)))
             RETURNING kid",
        )?;
        kids = stmt
            .query_map(params![before.id, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
    if state_changed {
        tx.execute(
            "UPDATE service_accounts SET state = ?2, updated_at = ?3 WHERE owner_id = ?1",
            params![before.id, after.state, now_text()],
        )?;
    }
    Ok((after, kids))
}

fn data_storage_from_row(row: &Row<'_>) -> rusqlite::Result<DataStorage> {
    Ok(DataStorage {
        title: row.get("title")?,
        data: row.get("data")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn label_by_key(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> rusqlite::Result<Option<Label>> {
    tx.query_row(
        "SELECT * FROM labels WHERE user_id = ?1 AND key = ?2 AND scope = ?3",
        params![user_id, key, scope],
        label_from_row,
    )
    .optional()
}

fn delete_sessions_except(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    keep: Option<&str>,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2) RETURNING id",
    )?;
    stmt.query_map(params![user_id, keep], |r| r.get(0))?
        .collect()
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

    fn event_domain(&self) -> EventDomain {
        self.events.load_full()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn pool_status(&self) -> crate::store::PoolStatus {
        let status = self.pool.status();
        crate::store::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
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

    fn enable_events(&self, domain: &str) {
        self.events
            .store(Some(std::sync::Arc::new(domain.to_owned())));
    }
}

#[async_trait]
impl UserStore for SqliteStore {
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

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [username],
                user_from_row,
            )
            .optional()
        })
        .await
    }

    async fn update_password_digest(&self, user_id: i64, digest: &str) -> StoreResult<()> {
        let digest = digest.to_owned();
        self.with_conn(move |c| {
            c.execute(
                "UPDATE users SET password_digest = ?2 WHERE id = ?1",
                params![user_id, digest],
            )
            .map(|_| ())
        })
        .await
    }

    async fn update_user_data(&self, user_id: i64, data: &str) -> StoreResult<User> {
        let data = data.to_owned();
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            tx.execute(
                "UPDATE users SET data = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, data, now_text()],
            )?;
            let user = user_by_id(&tx, user_id)?;
            events::user_updated(&tx, &domain, &before, &user)?;
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn delete_own_account(
        &self,
        user_id: i64,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let rules = rules.clone();
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            set_label(&tx, &domain, user_id, "delete", "by_user", "private")?;
            recompute_state_level(&tx, user_id, &rules)?;
            let (user, kids) = user_side_effects(&tx, &domain, &before)?;
            let sessions = delete_sessions_except(&tx, user_id, None)?;
            tx.commit()?;
            Ok(UserChange {
                user,
                sessions,
                kids,
            })
        })
        .await
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        self.admin_list_users_impl(filter, limit, offset).await
    }

    async fn update_user(&self, user_id: i64, update: &UserUpdate) -> StoreResult<UserChange> {
        self.admin_update_user_impl(user_id, update).await
    }

    async fn users_with_label(
        &self,
        filter: &crate::domain::LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        self.users_with_label_impl(filter, limit, offset).await
    }

    async fn users_with_pending_documents(&self) -> StoreResult<Vec<User>> {
        self.users_with_pending_documents_impl().await
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn register_user(
        &self,
        user: &NewUser,
        superadmin_if_first: bool,
        mail: Option<&NewMail>,
        rules: &StateRules,
    ) -> StoreResult<User> {
        let user = user.clone();
        let mail = mail.cloned();
        let rules = rules.clone();
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
                upsert_label(&tx, id, &label.key, &label.value, &label.scope)?;
            }
            let count: i64 = tx.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
            if superadmin_if_first && count == 1 {
                tx.execute(
                    "UPDATE users SET role = 'superadmin'
                     WHERE id = ?1 AND EXISTS (SELECT 1 FROM permissions WHERE role = 'superadmin')",
                    [id],
                )?;
                upsert_label(&tx, id, "email", "verified", "private")?;
                recompute_state_level(&tx, id, &rules)?;
            } else if let Some(mail) = &mail {
                insert_mail(&tx, mail)?;
            }
            let created = user_by_id(&tx, id)?;
            events::user_created(&tx, &domain, &created)?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn confirm_email(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        rules: &StateRules,
    ) -> StoreResult<Option<User>> {
        let (email, token, jti) = (
            claim.email.to_owned(),
            claim.token.to_owned(),
            claim.jti.to_owned(),
        );
        let expires_at = claim.expires_at;
        let rules = rules.clone();
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !take_claim(&tx, "confirmation_tokens", "token", &email, &token)?
                || !use_token(&tx, &jti, expires_at)?
            {
                return Ok(None);
            }
            let before = user_by_id(&tx, user_id)?;
            let label = events::label_before(&tx, &domain, user_id, "email", "private")?;
            upsert_label(&tx, user_id, "email", "verified", "private")?;
            recompute_state_level(&tx, user_id, &rules)?;
            let user = user_by_id(&tx, user_id)?;
            events::user_updated(&tx, &domain, &before, &user)?;
            events::label_changed(&tx, &domain, label, user_id, "email", "private")?;
            events::email_confirmed(&tx, &domain, &user)?;
            tx.commit()?;
            Ok(Some(user))
        })
        .await
    }

    async fn use_once(&self, key: &str, expires_at: i64) -> StoreResult<bool> {
        let key = key.to_owned();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let fresh = use_token(&tx, &key, expires_at)?;
            tx.commit()?;
            Ok(fresh)
        })
        .await
    }

    async fn set_reset_token(
        &self,
        email: &str,
        reset_token: &str,
        expires_at: i64,
        mail: &NewMail,
    ) -> StoreResult<()> {
        let (email, reset_token, mail) = (email.to_owned(), reset_token.to_owned(), mail.clone());
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO password_reset_tokens (email, reset_token, expires_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (email) DO UPDATE SET reset_token = excluded.reset_token,
                     expires_at = excluded.expires_at",
                params![email, reset_token, expires_at],
            )?;
            insert_mail(&tx, &mail)?;
            tx.commit()
        })
        .await
    }

    async fn find_reset_token(&self, email: &str, now: i64) -> StoreResult<Option<String>> {
        let email = email.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                "SELECT reset_token FROM password_reset_tokens WHERE email = ?1 AND expires_at > ?2",
                params![email, now],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn reset_password(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        digest: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let (email, token, jti, digest) = (
            claim.email.to_owned(),
            claim.token.to_owned(),
            claim.jti.to_owned(),
            digest.to_owned(),
        );
        let expires_at = claim.expires_at;
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !take_claim(&tx, "password_reset_tokens", "reset_token", &email, &token)?
                || !use_token(&tx, &jti, expires_at)?
            {
                return Ok(None);
            }
            tx.execute(
                "UPDATE users SET password_digest = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, digest, now_text()],
            )?;
            tx.execute(
                "DELETE FROM password_reset_tokens WHERE email = ?1",
                [&email],
            )?;
            let ids: Vec<String> = {
                let mut stmt =
                    tx.prepare("DELETE FROM sessions WHERE user_id = ?1 RETURNING id")?;
                stmt.query_map([user_id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            tx.commit()?;
            Ok(Some(ids))
        })
        .await
    }

    async fn create_whitelink_token(&self, token: &str, expires_at: i64) -> StoreResult<()> {
        let token = token.to_owned();
        self.with_conn(move |c| {
            c.execute(
                "INSERT INTO whitelink_tokens (token, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at",
                params![token, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn whitelink_token_valid(&self, token: &str, now: i64) -> StoreResult<bool> {
        let token = token.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM whitelink_tokens WHERE token = ?1 AND expires_at > ?2",
                params![token, now],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn change_password(
        &self,
        user_id: i64,
        digest: &str,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let (digest, keep) = (digest.to_owned(), keep.map(str::to_owned));
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE users SET password_digest = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, digest, now_text()],
            )?;
            let ids = delete_sessions_except(&tx, user_id, keep.as_deref())?;
            tx.commit()?;
            Ok(ids)
        })
        .await
    }

    async fn set_otp_secret(&self, user_id: i64, secret_encrypted: &str) -> StoreResult<()> {
        let secret = secret_encrypted.to_owned();
        self.with_conn(move |c| {
            let now = now_text();
            c.execute(
                "INSERT INTO otp_secrets (user_id, secret_encrypted, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = excluded.secret_encrypted,
                     last_step = 0, updated_at = excluded.updated_at",
                params![user_id, secret, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn find_otp_secret(&self, user_id: i64) -> StoreResult<Option<(String, i64)>> {
        self.with_conn(move |c| {
            c.query_row(
                "SELECT secret_encrypted, last_step FROM otp_secrets WHERE user_id = ?1",
                [user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
    }

    async fn accept_otp_step(&self, user_id: i64, step: i64) -> StoreResult<bool> {
        self.with_conn(move |c| {
            c.execute(
                "UPDATE otp_secrets SET last_step = ?2, updated_at = ?3
                 WHERE user_id = ?1 AND last_step < ?2",
                params![user_id, step, now_text()],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn set_user_otp(
        &self,
        user_id: i64,
        enabled: bool,
        keep: Option<&str>,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let (keep, rules) = (keep.map(str::to_owned), rules.clone());
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            tx.execute(
                "UPDATE users SET otp = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, enabled, now_text()],
            )?;
            let mut sessions = Vec::new();
            if enabled {
                set_label(&tx, &domain, user_id, "otp", "enabled", "private")?;
                sessions = delete_sessions_except(&tx, user_id, keep.as_deref())?;
            } else {
                tx.execute(
                    "DELETE FROM labels WHERE user_id = ?1 AND key = 'otp'",
                    [user_id],
                )?;
            }
            recompute_state_level(&tx, user_id, &rules)?;
            let (user, kids) = user_side_effects(&tx, &domain, &before)?;
            tx.commit()?;
            Ok(UserChange {
                user,
                sessions,
                kids,
            })
        })
        .await
    }
}

#[async_trait]
impl LabelStore for SqliteStore {
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare("SELECT * FROM labels WHERE user_id = ?1 ORDER BY id")?;
            stmt.query_map([user_id], label_from_row)?.collect()
        })
        .await
    }

    async fn create_label(
        &self,
        user_id: i64,
        key: &str,
        value: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<(Label, UserChange)> {
        let (key, value, scope, rules) = (
            key.to_owned(),
            value.to_owned(),
            scope.to_owned(),
            rules.clone(),
        );
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let now = now_text();
            let label = tx.query_row(
                "INSERT INTO labels (user_id, key, value, scope, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING *",
                params![user_id, key, value, scope, now],
                label_from_row,
            )?;
            let change = relabelled(&tx, &domain, &before, &rules)?;
            events::label_changed(&tx, &domain, None, user_id, &key, &scope)?;
            tx.commit()?;
            Ok((label, change))
        })
        .await
    }

    async fn update_label_value(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<(Label, UserChange)>> {
        let (key, value, scope, rules) = (
            key.to_owned(),
            value.to_owned(),
            scope.to_owned(),
            rules.clone(),
        );
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let old_label = events::label_before(&tx, &domain, user_id, &key, &scope)?;
            let n = tx.execute(
                "UPDATE labels SET value = ?4, updated_at = ?5
                 WHERE user_id = ?1 AND key = ?2 AND scope = ?3",
                params![user_id, key, scope, value, now_text()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let change = relabelled(&tx, &domain, &before, &rules)?;
            events::label_changed(&tx, &domain, old_label, user_id, &key, &scope)?;
            let label = label_by_key(&tx, user_id, &key, &scope)?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Some((label, change)))
        })
        .await
    }

    async fn delete_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let (key, scope, rules) = (key.to_owned(), scope.to_owned(), rules.clone());
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let n = tx.execute(
                "DELETE FROM labels WHERE user_id = ?1 AND key = ?2 AND scope = ?3",
                params![user_id, key, scope],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let change = relabelled(&tx, &domain, &before, &rules)?;
            tx.commit()?;
            Ok(Some(change))
        })
        .await
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
        self.admin_write_label_impl(user_id, key, scope, value, write, rules)
            .await
    }

    async fn count_private_labels(&self) -> StoreResult<Vec<(String, String, i64)>> {
        self.count_private_labels_impl().await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn create_data_storage(
        &self,
        user_id: i64,
        title: &str,
        data: &str,
        rules: &StateRules,
    ) -> StoreResult<(DataStorage, UserChange)> {
        let (title, data, rules) = (title.to_owned(), data.to_owned(), rules.clone());
        let domain = self.event_domain();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM data_storages
                     WHERE user_id = ?1 AND lower(title) = lower(?2))",
                params![user_id, title],
                |r| r.get(0),
            )?;
            if taken {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
                    Some("UNIQUE constraint failed: data_storages.title".into()),
                ));
            }
            let before = user_by_id(&tx, user_id)?;
            let now = now_text();
            let row = tx.query_row(
                "INSERT INTO data_storages (user_id, title, data, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4) RETURNING *",
                params![user_id, title, data, now],
                data_storage_from_row,
            )?;
            set_label(
                &tx,
                &domain,
                user_id,
                &title.to_lowercase(),
                "recorded",
                "private",
            )?;
            let change = relabelled(&tx, &domain, &before, &rules)?;
            events::data_storage_created(&tx, &domain, &row, &change.user)?;
            tx.commit()?;
            Ok((row, change))
        })
        .await
    }

    async fn list_data_storages(&self, user_id: i64) -> StoreResult<Vec<DataStorage>> {
        self.with_conn(move |c| {
            let mut stmt =
                c.prepare("SELECT * FROM data_storages WHERE user_id = ?1 ORDER BY id")?;
            stmt.query_map([user_id], data_storage_from_row)?.collect()
        })
        .await
    }

    async fn create_comment(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment> {
        self.create_comment_impl(user_id, author_uid, title, data)
            .await
    }

    async fn find_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.find_comment_impl(id).await
    }

    async fn update_comment(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>> {
        self.update_comment_impl(id, title, data).await
    }

    async fn delete_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.delete_comment_impl(id).await
    }

    async fn list_comments(&self, user_id: i64) -> StoreResult<Vec<Comment>> {
        self.list_comments_impl(user_id).await
    }

    async fn delete_data_storage(&self, user_id: i64, title: &str) -> StoreResult<bool> {
        self.delete_data_storage_impl(user_id, title).await
    }
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn create_profile(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)> {
        self.profile_create(user_id, profile, enc, rules).await
    }

    async fn update_profile(
        &self,
        id: i64,
        changes: &ProfileChanges,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<Option<(Profile, UserChange)>> {
        self.profile_update(id, changes, enc, rules).await
    }

    async fn list_user_profiles(&self, user_id: i64, enc: &Encryptor) -> StoreResult<Vec<Profile>> {
        self.profiles_of_user(user_id, enc).await
    }

    async fn find_user_profile_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        self.profile_of_user_in_state(user_id, state, enc).await
    }

    async fn find_profile(&self, id: i64, enc: &Encryptor) -> StoreResult<Option<Profile>> {
        self.profile_by_id(id, enc).await
    }

    async fn find_profile_by_applicant_id(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        self.profile_by_applicant(applicant_id, enc).await
    }

    async fn list_profiles(
        &self,
        limit: i64,
        offset: i64,
        enc: &Encryptor,
    ) -> StoreResult<(Vec<Profile>, i64)> {
        self.profiles_page(limit, offset, enc).await
    }
}

#[async_trait]
impl PhoneStore for SqliteStore {
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone> {
        self.kyc_create_phone(phone).await
    }

    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>> {
        self.kyc_list_user_phones(user_id).await
    }

    async fn find_user_phone(
        &self,
        user_id: i64,
        number_index: &str,
    ) -> StoreResult<Option<Phone>> {
        self.kyc_find_user_phone(user_id, number_index).await
    }

    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>> {
        self.kyc_list_phones_by_number_index(number_index).await
    }

    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool> {
        self.kyc_claim_phone_code_send(phone_id, now, min_interval, window, max_in_window)
            .await
    }

    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        self.kyc_verify_phone(phone_id, rules).await
    }

    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool> {
        self.kyc_delete_phone(phone_id).await
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &crate::store::DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)> {
        self.kyc_create_documents(user_id, documents, label, rules, events)
            .await
    }

    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64> {
        self.kyc_count_user_documents(user_id, identificator).await
    }

    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>> {
        self.kyc_list_user_documents(user_id).await
    }

    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>> {
        self.kyc_list_documents_by_number_index(index).await
    }

    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)> {
        self.kyc_list_pending_documents(limit, offset).await
    }
}
